//! The post routes: publish (with stale-connection detection), read, Sync, and manual delete.

use std::collections::BTreeSet;

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::app::{self, Refusal};
use super::http;
use crate::domain::connection::reason;
use crate::domain::post::{EntryStatus, PlatformEntry, Schedule, manual_delete};
use crate::domain::text::bounded_url;
use crate::domain::{Connection, ConnectionStatus, Platform, PostId, PostState, ProjectId, Timestamp};
use crate::ports::{
    Clock, ConnectionStore, Draft, PostPublisher, PostStore, Publication, PublishRefusal, Publisher, ServicePost,
    StoredConnection, StoredPost, Target,
};

/// Longest post text accepted, in bytes.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

pub struct Posts<S, P, C> {
    pub store: S,
    pub publisher: P,
    pub clock: C,
}

fn entry_view(platform: Platform, e: &PlatformEntry) -> Value {
    let status = match e.status {
        EntryStatus::Queued => "queued",
        EntryStatus::Failed => "failed",
        EntryStatus::Published => "published",
        EntryStatus::Removed => "removed",
    };
    json!({"platform": platform.api_name(), "status": status, "url": e.url, "platform_post_id": e.platform_post_id,
           "published_at": e.published_at.map(Timestamp::to_rfc3339), "error": e.error, "account_id": e.account_id})
}

/// The API shape of a post, its overall status derived at `now`.
pub fn post_view(project: &ProjectId, post: &PostId, stored: &StoredPost, now: Timestamp) -> Value {
    let state = &stored.state;
    let scheduled_for =
        state.schedule.filter(|s| state.latest_generation().is_none_or(|g| s.generation >= g)).map(|s| s.at);
    json!({
        "post_id": post.as_str(), "project_id": project.as_str(), "status": state.overall(now).as_str(),
        "content": stored.draft.as_ref().map(|d| &d.content),
        "scheduled_for": scheduled_for.map(Timestamp::to_rfc3339),
        "published_at": state.published_at.map(Timestamp::to_rfc3339),
        "updated_at": stored.updated_at.to_rfc3339(),
        "platforms": state.entries.iter().map(|(p, e)| entry_view(*p, e)).collect::<Vec<_>>(),
    })
}

/// "Reconnect LinkedIn and X, then publish again."
fn reconnect_message(platforms: &[Platform]) -> String {
    let names: Vec<&str> = platforms.iter().map(|p| p.display_name()).collect();
    let list = match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("Reconnect {list}, then publish again.")
}

fn reconnect_required(platforms: &[Platform], verified: bool) -> Response<Body> {
    let names: Vec<&str> = platforms.iter().map(|p| p.api_name()).collect();
    http::json(
        409,
        &json!({"error": {"code": "reconnect_required", "message": reconnect_message(platforms), "platforms": names, "verified": verified}}),
    )
}

#[derive(Deserialize)]
struct PublishBody {
    #[serde(default)]
    post_id: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    platforms: Option<Vec<String>>,
    #[serde(default)]
    scheduled_for: Option<String>,
    #[serde(default)]
    media_urls: Option<Vec<String>>,
    #[serde(default)]
    draft: Option<bool>,
}

/// A publish request, parsed at the edge.
struct PublishRequest {
    post: PostId,
    content: Option<String>,
    platforms: Vec<Platform>,
    scheduled_for: Option<Timestamp>,
    media_urls: Option<Vec<String>>,
    draft: bool,
}

fn parse_publish(body: Value) -> Result<PublishRequest, Refusal> {
    let invalid = |why: &str| Refusal::InvalidRequest(why.to_owned());
    let body: PublishBody =
        serde_json::from_value(body).map_err(|e| Refusal::InvalidRequest(format!("The body does not fit: {e}.")))?;
    let post = match body.post_id {
        Some(id) => PostId::parse(id).map_err(|e| Refusal::InvalidRequest(format!("post_id: {e}.")))?,
        None => PostId::parse(format!("post_{}", uuid::Uuid::new_v4().simple()))
            .map_err(|e| Refusal::InvalidRequest(e.to_string()))?,
    };
    if let Some(content) = &body.content
        && (content.trim().is_empty() || content.len() > MAX_CONTENT_BYTES)
    {
        return Err(invalid("content must be 1 to 65536 bytes of text."));
    }
    let mut platforms = Vec::new();
    for name in body.platforms.unwrap_or_default() {
        let platform = Platform::from_api(&name).map_err(|_| Refusal::InvalidPlatform(name.clone()))?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    let draft = body.draft.unwrap_or(false);
    if platforms.is_empty() && !draft {
        return Err(invalid("platforms must name at least one of instagram, facebook, linkedin, x."));
    }
    let scheduled_for = match body.scheduled_for {
        Some(raw) => Some(Timestamp::parse(&raw).ok_or_else(|| invalid("scheduled_for must be an RFC 3339 time."))?),
        None => None,
    };
    let media_urls = match body.media_urls {
        Some(urls) => Some(
            urls.iter()
                .map(|u| bounded_url(Some(u)).ok_or_else(|| invalid("media_urls must be URLs of at most 2048 bytes.")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(PublishRequest { post, content: body.content, platforms, scheduled_for, media_urls, draft })
}

/// The same publish retried derives the same id, so the service answers with the first post.
fn request_id(project: &ProjectId, post: &PostId, generation: u32, platforms: &[Platform]) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{project}\n{post}\n{generation}\n"));
    for p in platforms {
        hash.update(p.api_name());
    }
    let h = hex::encode(&hash.finalize()[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn next_generation(state: &PostState) -> u32 {
    let highest = [state.latest_generation(), state.cancelled_generation, state.schedule.map(|s| s.generation)];
    highest.into_iter().flatten().max().unwrap_or(0) + 1
}

impl<S, P, C> Posts<S, P, C>
where
    S: PostStore + ConnectionStore,
    P: Publisher + PostPublisher,
    C: Clock,
{
    fn post_id(request: &Request) -> Result<PostId, Refusal> {
        let raw = app::path_param(request, "postId").unwrap_or_default();
        PostId::parse(raw).map_err(|e| Refusal::InvalidRequest(format!("postId: {e}.")))
    }

    async fn existing(&self, project: &ProjectId, post: &PostId) -> Result<StoredPost, Refusal> {
        self.store
            .post(project, post)
            .await?
            .ok_or_else(|| Refusal::NotFound(format!("There is no post {post} in this project.")))
    }

    /// `GET /projects/{projectId}/posts/{postId}`
    pub async fn read(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                let project = app::caller(&request)?;
                let post = Self::post_id(&request)?;
                let stored = self.existing(&project, &post).await?;
                Ok(http::json(200, &post_view(&project, &post, &stored, self.clock.now())))
            }
            .await,
        )
    }

    /// `POST /projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete`
    pub async fn manual_delete(&self, request: Request) -> Response<Body> {
        app::answer(async {
            let project = app::caller(&request)?;
            let post = Self::post_id(&request)?;
            let platform = app::platform(&request)?;
            let stored = self.existing(&project, &post).await?;
            let now = self.clock.now();
            let entry = stored.state.entries.get(&platform).ok_or_else(|| {
                Refusal::NotFound(format!("This post was never published to {}.", platform.display_name()))
            })?;
            let saved = match entry.status {
                EntryStatus::Removed => stored,
                EntryStatus::Published => {
                    let removed = manual_delete(&stored.state, platform).unwrap_or_default();
                    self.store.save_post(&project, &post, Some(&stored), None, &removed, now).await?
                }
                EntryStatus::Queued | EntryStatus::Failed => {
                    return Ok(http::error(
                        409,
                        "not_published_on_platform",
                        &format!("This post is not live on {}, so there is nothing to mark deleted.", platform.display_name()),
                    ));
                }
            };
            tracing::info!(project = %project, post = %post, platform = %platform, "marked deleted on the platform");
            Ok(http::json(200, &post_view(&project, &post, &saved, now)))
        }.await)
    }

    /// `POST /projects/{projectId}/posts/{postId}/sync`
    pub async fn sync(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                let project = app::caller(&request)?;
                let post = Self::post_id(&request)?;
                let stored = self.existing(&project, &post).await?;
                let generations: BTreeSet<(u32, crate::domain::ServicePostId)> = stored
                    .state
                    .entries
                    .values()
                    .filter_map(|e| e.service_post_id.clone().map(|id| (e.generation, id)))
                    .collect();
                if generations.is_empty() {
                    return Ok(http::error(
                        409,
                        "not_published",
                        "This post was never published, so there is nothing to sync.",
                    ));
                }
                // One read per generation, one after another: the service's rate limit is low.
                let mut answers = Vec::new();
                for (generation, id) in &generations {
                    answers.push((*generation, self.publisher.post(id).await));
                }
                let mut evidence = PostState::default();
                let all_gone = answers.iter().all(|(_, a)| matches!(a, Ok(ServicePost::Gone)));
                for (generation, answer) in answers {
                    match answer? {
                        ServicePost::Found(mut report) => {
                            report.generation = Some(generation);
                            if let Ok(state) = report.to_state(Some(&stored.state)) {
                                evidence = evidence.join(&state);
                            }
                        }
                        ServicePost::Gone if all_gone => {
                            evidence.cancelled_generation = evidence.cancelled_generation.max(Some(generation))
                        }
                        ServicePost::Gone => {
                            for (platform, entry) in &stored.state.entries {
                                if entry.generation == generation {
                                    let removed = PlatformEntry { status: EntryStatus::Removed, ..entry.clone() };
                                    evidence.entries.insert(*platform, removed);
                                }
                            }
                        }
                    }
                }
                let now = self.clock.now();
                let saved = self.store.save_post(&project, &post, Some(&stored), None, &evidence, now).await?;
                let changed = saved.version != stored.version;
                tracing::info!(project = %project, post = %post, changed, "post synced");
                crate::metrics::count(crate::metrics::Metric::Syncs, 1);
                Ok(http::json(200, &json!({"post": post_view(&project, &post, &saved, now), "changed": changed})))
            }
            .await,
        )
    }

    /// `POST /projects/{projectId}/posts`
    pub async fn publish(&self, request: Request) -> Response<Body> {
        app::answer(self.try_publish(&request).await)
    }

    async fn try_publish(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        let project = app::caller(request)?;
        let body = parse_publish(app::json_body(request)?)?;
        let post = body.post.clone();
        let (existing, profile) = self.store.post_and_profile(&project, &post).await?;
        let stored_draft = existing.as_ref().and_then(|s| s.draft.clone());
        let content = body
            .content
            .clone()
            .or(stored_draft.as_ref().map(|d| d.content.clone()))
            .ok_or_else(|| Refusal::InvalidRequest("content is required for a new post.".into()))?;
        let media_urls =
            body.media_urls.clone().or(stored_draft.as_ref().map(|d| d.media_urls.clone())).unwrap_or_default();
        let draft = Draft { content, media_urls };
        let now = self.clock.now();
        let state = existing.as_ref().map(|s| s.state.clone()).unwrap_or_default();
        // Stores a post that is new, as a draft, before any refusal: a refused publish keeps it.
        let keep_new = async |this: &Self| -> Result<StoredPost, Refusal> {
            Ok(this
                .store
                .save_post(&project, &post, existing.as_ref(), Some(&draft), &PostState::default(), now)
                .await?)
        };
        if body.draft {
            let saved = keep_new(self).await?;
            return Ok(http::json(201, &post_view(&project, &post, &saved, now)));
        }
        let live: Vec<Platform> = body
            .platforms
            .iter()
            .copied()
            .filter(|p| {
                state.entries.get(p).is_some_and(|e| matches!(e.status, EntryStatus::Queued | EntryStatus::Published))
            })
            .collect();
        if !live.is_empty() {
            if existing.is_none() {
                keep_new(self).await?;
            }
            let names: Vec<&str> = live.iter().map(|p| p.display_name()).collect();
            return Ok(http::error(
                409,
                "already_published",
                &format!(
                    "This post is already queued or live on {}; mark it deleted there first to publish again.",
                    names.join(", ")
                ),
            ));
        }
        let connections = match &profile {
            Some(profile) => self.store.connections(profile).await?,
            None => Vec::new(),
        };
        let connected = |p: Platform| {
            connections
                .iter()
                .find(|c| c.connection.platform == p && c.connection.status == ConnectionStatus::Connected)
                .and_then(|c| c.connection.account_id.clone())
        };
        let not_connected: Vec<Platform> = body.platforms.iter().copied().filter(|p| connected(*p).is_none()).collect();
        if !not_connected.is_empty() {
            if existing.is_none() {
                keep_new(self).await?;
            }
            return Ok(reconnect_required(&not_connected, true));
        }
        let profile = profile.expect("connected platforms imply a profile");
        // The post (and its new content) is stored before the service is asked.
        let kept = if existing.is_none() || body.content.is_some() || body.media_urls.is_some() {
            Some(keep_new(self).await?)
        } else {
            existing.clone()
        };
        let generation = next_generation(&state);
        let targets: Vec<Target> = body
            .platforms
            .iter()
            .map(|p| Target { platform: *p, account_id: connected(*p).unwrap_or_default() })
            .collect();
        let publication = Publication {
            request_id: request_id(&project, &post, generation, &body.platforms),
            content: draft.content.clone(),
            targets,
            scheduled_for: body.scheduled_for,
            media_urls: draft.media_urls.clone(),
            project: project.clone(),
            post: post.clone(),
            generation,
        };
        let report = match self.publisher.publish(&publication).await? {
            Ok(report) => report,
            Err(PublishRefusal::StaleAccounts) => {
                return self.stale_connections(&project, &profile, connections, &body.platforms).await;
            }
            Err(PublishRefusal::DuplicateContent) => {
                return Ok(http::error(
                    409,
                    "duplicate_content",
                    "The same text went to the same account in the last 24 hours; change it or wait.",
                ));
            }
            Err(PublishRefusal::Other(message)) => {
                return Err(Refusal::InvalidRequest(format!("The publishing service refused this post: {message}")));
            }
        };
        let mut evidence = report.to_state(Some(&state)).unwrap_or_default();
        // Every target belongs to this generation, even one the answer left out.
        for t in &publication.targets {
            evidence.entries.entry(t.platform).or_insert_with(|| PlatformEntry {
                generation,
                status: EntryStatus::Queued,
                service_post_id: Some(report.service_post_id.clone()),
                account_id: Some(t.account_id.clone()),
                url: None,
                platform_post_id: None,
                published_at: None,
                error: None,
            });
        }
        if let Some(at) = body.scheduled_for {
            evidence.schedule = evidence.schedule.max(Some(Schedule { generation, at }));
        }
        let saved = self.store.save_post(&project, &post, kept.as_ref(), None, &evidence, now).await?;
        tracing::info!(project = %project, post = %post, generation, service_post = %report.service_post_id, "published");
        Ok(http::json(201, &post_view(&project, &post, &saved, now)))
    }

    /// After a 403 about accounts: one read of the live list decides which of this publish's
    /// platforms are stale; exactly those are marked expired.
    async fn stale_connections(
        &self,
        project: &ProjectId,
        profile: &crate::domain::ProfileId,
        connections: Vec<StoredConnection>,
        platforms: &[Platform],
    ) -> Result<Response<Body>, Refusal> {
        let Ok(Some(live)) = self.publisher.accounts(profile).await else {
            tracing::warn!(project = %project, "live list unreadable after a stale-account refusal; nothing marked");
            return Ok(reconnect_required(platforms, false));
        };
        let read_at = self.clock.now();
        let mut evidence: Vec<Connection> = Vec::new();
        for p in platforms {
            let Some(stored) = connections.iter().find(|c| c.connection.platform == *p) else { continue };
            let account =
                live.iter().find(|a| a.platform == *p && Some(&a.id) == stored.connection.account_id.as_ref());
            let why = match account {
                Some(a) if a.usable => continue,
                Some(_) => reason::TOKEN_EXPIRED,
                None => reason::ACCOUNT_REMOVED,
            };
            evidence.push(Connection {
                status: ConnectionStatus::Expired,
                evidence_at: read_at,
                reason: Some(why.to_owned()),
                ..stored.connection.clone()
            });
        }
        if evidence.is_empty() {
            return Ok(reconnect_required(platforms, false));
        }
        let stale: Vec<Platform> = evidence.iter().map(|c| c.platform).collect();
        self.store.save_connections(project, profile, connections, evidence, read_at).await?;
        tracing::warn!(project = %project, stale = ?stale, "stale connections found at publish");
        crate::metrics::count(crate::metrics::Metric::StaleConnectionsFound, stale.len() as u64);
        Ok(reconnect_required(&stale, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_is_stable_for_a_retry_and_new_for_a_new_generation() {
        let (project, post) = (ProjectId::parse("p").unwrap(), PostId::parse("q").unwrap());
        let a = request_id(&project, &post, 1, &[Platform::X]);
        assert_eq!(a, request_id(&project, &post, 1, &[Platform::X]));
        assert_ne!(a, request_id(&project, &post, 2, &[Platform::X]));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn the_reconnect_message_names_each_platform() {
        assert_eq!(
            reconnect_message(&[Platform::Linkedin, Platform::X]),
            "Reconnect LinkedIn and X, then publish again."
        );
        assert_eq!(reconnect_message(&[Platform::Instagram]), "Reconnect Instagram, then publish again.");
    }

    #[test]
    fn content_over_the_limit_and_unknown_platforms_are_refused() {
        let too_long = json!({"content": "x".repeat(MAX_CONTENT_BYTES + 1), "platforms": ["x"]});
        assert!(matches!(parse_publish(too_long), Err(Refusal::InvalidRequest(_))));
        assert!(matches!(
            parse_publish(json!({"content": "hi", "platforms": ["tiktok"]})),
            Err(Refusal::InvalidPlatform(_))
        ));
        assert!(matches!(parse_publish(json!({"content": "hi", "platforms": []})), Err(Refusal::InvalidRequest(_))));
        assert!(matches!(
            parse_publish(json!({"content": "hi", "platforms": ["x"], "scheduled_for": "soon"})),
            Err(Refusal::InvalidRequest(_))
        ));
    }
}
