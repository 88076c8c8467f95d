//! The post routes: publish (with stale-connection detection), read, Sync, and manual delete.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::app::{self, Refusal};
use super::http;
use super::publishing::{Attempt, Sent, Timing, status_of};
use crate::domain::limits::{CallKind, Limits, Seen, Spend};
use crate::domain::media::{self, Media, MediaType};
use crate::domain::post::{
    ManualDelete as Deletion, PlatformEntry, manual_delete, publications, sync_evidence, sync_news,
};
use crate::domain::publish::{self, Draft, Sender, SendingChange};
use crate::domain::text::is_http_url;
use crate::domain::{AccountId, Connection, Platform, PostId, PostState, ProfileId, ProjectId, Timestamp};
use crate::ports::{
    BudgetStore, Clock, ConnectionStore, FollowUpQueue, PostChange, PostPublisher, PostStore, PublishRead, Publisher,
    SealStore, Source, StoredPost,
};

/// Longest post text accepted, in bytes.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Most media URLs a post may carry, and the longest one (presigned links are long).
pub const MAX_MEDIA_URLS: usize = 20;
pub const MAX_MEDIA_URL_BYTES: usize = 8 * 1024;

/// `GET /projects/{projectId}/posts/{postId}`: the store only.
pub struct ReadPost<S, C> {
    pub store: S,
    pub clock: C,
    /// The project's budgets (its reads).
    pub limits: Limits,
}

/// `POST /projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete`: the store only.
pub struct ManualDelete<S, C> {
    pub store: S,
    pub clock: C,
    /// The project's budgets (a removal is a post write).
    pub limits: Limits,
}

/// `POST /projects/{projectId}/posts/{postId}/sync`.
pub struct Sync<S, P, C> {
    pub store: S,
    pub publisher: P,
    pub clock: C,
    /// The project's budgets.
    pub limits: Limits,
}

/// `POST /projects/{projectId}/posts`.
pub struct Publish<S, P, Q, C> {
    pub store: S,
    pub publisher: P,
    /// Where a publish that outlasts the route waits for its follow-up.
    pub queue: Q,
    pub clock: C,
    /// The project's budgets (publishes and post writes).
    pub limits: Limits,
    pub timing: Timing,
}

fn entry_view(state: &PostState, platform: Platform, e: &PlatformEntry) -> Value {
    json!({"platform": platform.api_name(), "status": state.shown(e).as_str(), "url": e.url,
           "platform_post_id": e.platform_post_id, "published_at": e.published_at.map(Timestamp::to_rfc3339),
           "error": e.error, "account_id": e.account_id.as_ref().map(AccountId::as_str)})
}

/// The API shape of a post, its overall status derived at `now`.
pub fn post_view(project: &ProjectId, post: &PostId, stored: &StoredPost, now: Timestamp) -> Value {
    let state = &stored.shown();
    json!({
        "post_id": post.as_str(), "project_id": project.as_str(), "status": state.overall(now).as_str(),
        "content": stored.draft.as_ref().map(|d| &d.content),
        "media_urls": stored.draft.as_ref().map(|d| d.media.iter().map(|m| m.url.as_str()).collect::<Vec<_>>()),
        "media": stored.draft.as_ref().map(|d| &d.media),
        "scheduled_for": state.scheduled_for().map(Timestamp::to_rfc3339),
        "published_at": state.published_at.map(Timestamp::to_rfc3339),
        "updated_at": stored.updated_at.to_rfc3339(),
        "platforms": state.entries.iter().map(|(p, e)| entry_view(state, *p, e)).collect::<Vec<_>>(),
    })
}

fn post_id(request: &Request) -> Result<PostId, Refusal> {
    let raw = app::path_param(request, "postId").unwrap_or_default();
    PostId::parse(raw).map_err(|e| Refusal::InvalidRequest(format!("postId: {e}.")))
}

fn no_such_post(post: &PostId) -> Refusal {
    Refusal::NotFound(format!("There is no post {post} in this project."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    media: Option<Vec<MediaBody>>,
    #[serde(default)]
    draft: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaBody {
    url: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A publish request, parsed at the edge.
#[derive(Debug)]
pub struct PublishRequest {
    pub post: PostId,
    pub content: Option<String>,
    pub platforms: Vec<Platform>,
    pub scheduled_for: Option<Timestamp>,
    /// The request's media, typed (`None`: keep the stored ones).
    pub media: Option<Vec<Media>>,
    pub draft: bool,
}

/// The body of `POST /projects/{projectId}/posts`, checked at `now`; a refusal says what is wrong.
pub fn parse_publish(body: Value, now: Timestamp) -> Result<PublishRequest, Refusal> {
    let invalid = |why: String| Refusal::InvalidRequest(why);
    let body: PublishBody = app::fields(body)?;
    let post = match body.post_id {
        Some(id) => PostId::parse(id).map_err(|e| invalid(format!("post_id: {e}.")))?,
        None => PostId::parse(format!("post_{}", uuid::Uuid::new_v4().simple())).map_err(|e| invalid(e.to_string()))?,
    };
    if let Some(content) = &body.content
        && (content.trim().is_empty() || content.len() > MAX_CONTENT_BYTES)
    {
        return Err(invalid(format!("content must be 1 to {MAX_CONTENT_BYTES} bytes of text.")));
    }
    let names = body.platforms.unwrap_or_default();
    if names.len() > Platform::ALL.len() {
        return Err(invalid("platforms may name at most 4 platforms: instagram, facebook, linkedin, x.".into()));
    }
    let mut platforms = Vec::new();
    for name in names {
        let platform = Platform::from_api(&name).map_err(|_| Refusal::InvalidPlatform(name.clone()))?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    let draft = body.draft.unwrap_or(false);
    if platforms.is_empty() && !draft {
        return Err(invalid("platforms must name at least one of instagram, facebook, linkedin, x.".into()));
    }
    let scheduled_for = match body.scheduled_for {
        Some(raw) => {
            let at = Timestamp::parse(&raw).ok_or_else(|| invalid("scheduled_for must be an RFC 3339 time.".into()))?;
            if publish::schedule_in_the_past(at, now) {
                return Err(invalid(format!(
                    "scheduled_for {raw} is in the past: give a later time, or leave it out to publish now."
                )));
            }
            Some(at)
        }
        None => None,
    };
    let media = parse_media(body.media_urls, body.media)?;
    Ok(PublishRequest { post, content: body.content, platforms, scheduled_for, media, draft })
}

/// `media_urls` (typed by extension) and `media` (typed by the caller), bounded together.
fn parse_media(bare: Option<Vec<String>>, typed: Option<Vec<MediaBody>>) -> Result<Option<Vec<Media>>, Refusal> {
    let invalid = |why: String| Refusal::InvalidRequest(why);
    if bare.is_none() && typed.is_none() {
        return Ok(None);
    }
    let (bare, typed) = (bare.unwrap_or_default(), typed.unwrap_or_default());
    if bare.len() + typed.len() > MAX_MEDIA_URLS {
        return Err(invalid(format!("media_urls and media together may hold at most {MAX_MEDIA_URLS} URLs.")));
    }
    let urls = bare.iter().map(String::as_str).chain(typed.iter().map(|m| m.url.as_str()));
    if !urls.into_iter().all(|u| is_http_url(u, MAX_MEDIA_URL_BYTES)) {
        return Err(invalid(format!("media URLs must be http(s) URLs of at most {MAX_MEDIA_URL_BYTES} bytes.")));
    }
    let mut items = Vec::new();
    for (n, item) in typed.into_iter().enumerate() {
        let Some(kind) = MediaType::from_name(&item.kind) else {
            return Err(invalid(format!("media[{n}].type must be one of image, video, gif, document.")));
        };
        items.push(Media { url: item.url, kind });
    }
    Ok(Some(media::combine(&bare, &items)))
}

impl<S: PostStore + BudgetStore + SealStore, C: Clock> ReadPost<S, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                // The request is checked whole before the project is read (and its seal).
                let post = post_id(&request)?;
                let project = app::reader(&request, &self.store, &self.limits, self.clock.now()).await?;
                let stored = self.store.post(&project, &post).await?.ok_or_else(|| no_such_post(&post))?;
                Ok(http::json(200, &post_view(&project, &post, &stored, self.clock.now())))
            }
            .await,
        )
    }
}

impl<S: PostStore + BudgetStore, C: Clock> ManualDelete<S, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                let platform = app::platform(&request)?;
                // The seal is read with the post and the budget.
                let project = app::caller(&request)?;
                let post = post_id(&request)?;
                let app::NoFields {} = app::body(&request)?;
                let (stored, budget) = self.store.post_and_budget(&project, &post, CallKind::Publish).await?;
                let stored = stored.ok_or_else(|| no_such_post(&post))?;
                let now = self.clock.now();
                let saved = match manual_delete(&stored.state, platform) {
                    Deletion::NoEntry => {
                        let never = format!("This post was never published to {}.", platform.display_name());
                        return Err(Refusal::NotFound(never));
                    }
                    Deletion::NotLive => return Err(Refusal::NotPublishedOnPlatform(platform)),
                    Deletion::AlreadyRemoved => stored,
                    Deletion::Remove(evidence) => {
                        app::spend(&self.store, &project, Spend::ManualDelete, (budget, &self.limits), now).await?;
                        self.store.save_post(&project, &post, Some(&stored), PostChange::new(&Source::ManualDelete, &evidence), now).await?
                    }
                };
                tracing::info!(project = %project, post = %post, platform = %platform, "marked deleted on the platform");
                Ok(http::json(200, &post_view(&project, &post, &saved, now)))
            }
            .await,
        )
    }
}

impl<S: PostStore + BudgetStore, P: PostPublisher, C: Clock> Sync<S, P, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer_in_time(async {
            // The seal is read with the post and the budget.
            let project = app::caller(&request)?;
            let post = post_id(&request)?;
            let app::NoFields {} = app::body(&request)?;
            let (stored, budget) = self.store.post_and_budget(&project, &post, CallKind::Sync).await?;
            let stored = stored.ok_or_else(|| no_such_post(&post))?;
            let asked = publications(&stored.state);
            if asked.is_empty() {
                return Err(Refusal::NotPublished);
            }
            let now = self.clock.now();
            app::spend(&self.store, &project, Spend::Sync, (budget, &self.limits), now).await?;
            let saved =
                sync_post(&self.store, &self.publisher, &self.clock, (&project, &post, &stored), &Source::Sync).await?;
            let changed = saved.version != stored.version;
            let now = self.clock.now();
            Ok(http::json(200, &json!({"post": post_view(&project, &post, &saved, now), "changed": changed})))
        })
        .await
    }
}

/// One Sync of a stored post against the service (one read per generation it asks about): the
/// route's and the reconciler's alike (`source` names which). Returns the post as stored afterwards.
pub async fn sync_post<S: PostStore, P: PostPublisher, C: Clock>(
    store: &S,
    publisher: &P,
    clock: &C,
    (project, post, stored): (&ProjectId, &PostId, &StoredPost),
    source: &Source,
) -> Result<StoredPost, Refusal> {
    // One read per generation, one after another: the service's rate limit is low.
    let asked_at = clock.now();
    let mut answers = Vec::new();
    for (generation, id) in publications(&stored.state) {
        answers.push((generation, publisher.post(&id, asked_at).await?));
    }
    let news = sync_news(&answers);
    let evidence = sync_evidence(&stored.state, answers);
    let saved = store
        .save_post(project, post, Some(stored), PostChange::new(source, &evidence).with_news(&news), clock.now())
        .await?;
    tracing::info!(project = %project, post = %post, changed = saved.version != stored.version, "post synced");
    crate::metrics::count(crate::metrics::Metric::Syncs, 1);
    Ok(saved)
}

impl<S, P, Q, C> Publish<S, P, Q, C>
where
    S: PostStore + ConnectionStore + BudgetStore,
    P: Publisher + PostPublisher,
    Q: FollowUpQueue,
    C: Clock,
{
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer_in_time(self.try_publish(&request)).await
    }

    async fn try_publish(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        // The seal is read with the post, the profile and the budget.
        let project = app::caller(request)?;
        let body = parse_publish(app::json_body(request)?, self.clock.now())?;
        let post = &body.post;
        let PublishRead { post: existing, profile, budget } =
            self.store.post_profile_and_budget(&project, post).await?;
        let stored_draft = existing.as_ref().and_then(|s| s.draft.as_ref());
        let draft = publish::draft_for(body.content.as_deref(), body.media.as_deref(), stored_draft)
            .ok_or_else(|| Refusal::InvalidRequest("content is required for a new post.".into()))?;
        if body.draft {
            let sending = existing.as_ref().and_then(|s| s.sending.as_ref());
            let saved = match (publish::save_draft(stored_draft, sending, &draft), existing) {
                (Ok(publish::DraftSave::Unchanged), Some(unchanged)) => unchanged,
                (Ok(_), existing) => {
                    app::spend(&self.store, &project, Spend::Draft, (budget, &self.limits), self.clock.now()).await?;
                    self.store_draft(&project, post, existing.as_ref(), &draft).await?
                }
                (Err(refused), _) => return Err(refused.into()),
            };
            return Ok(http::json(201, &post_view(&project, post, &saved, self.clock.now())));
        }
        let sent = self.publish_once(&project, &body, &draft, existing.as_ref(), profile.as_ref(), budget).await?;
        let (status, saved) = status_of(&sent);
        Ok(http::json(status, &post_view(&project, post, saved, self.clock.now())))
    }

    async fn store_draft(
        &self,
        project: &ProjectId,
        post: &PostId,
        existing: Option<&StoredPost>,
        draft: &Draft,
    ) -> Result<StoredPost, Refusal> {
        let now = self.clock.now();
        let nothing = PostState::default();
        Ok(self
            .store
            .save_post(project, post, existing, PostChange::new(&Source::Publish, &nothing).with_draft(draft), now)
            .await?)
    }

    /// The checks, then the publication stored with the content it goes out with, then the call.
    async fn publish_once(
        &self,
        project: &ProjectId,
        body: &PublishRequest,
        draft: &Draft,
        existing: Option<&StoredPost>,
        profile: Option<&ProfileId>,
        budget: Seen,
    ) -> Result<Sent, Refusal> {
        let state = existing.map(StoredPost::shown).unwrap_or_default();
        let stored_connections = match profile {
            Some(profile) => self.store.connections(profile).await?,
            None => Vec::new(),
        };
        let connections: Vec<Connection> = stored_connections.iter().map(|s| s.connection.clone()).collect();
        let sending = existing.and_then(|s| s.sending.as_ref());
        let planned = publish::already_sending(sending)
            .and_then(|()| publish::plan(project, &body.post, &state, &body.platforms, &connections));
        let plan = match planned {
            Ok(plan) => plan,
            Err(refused) => {
                // A refused new post is kept as a draft with the request's content: a post write.
                if existing.is_none() {
                    app::spend(&self.store, project, Spend::Draft, (budget, &self.limits), self.clock.now()).await?;
                    self.keep_draft(project, &body.post, draft).await;
                }
                return Err(refused.into());
            }
        };
        let now = self.clock.now();
        app::spend(&self.store, project, Spend::Publish, (budget, &self.limits), now).await?;
        let sending = plan.sending(body.scheduled_for, now, existing.is_none());
        let nothing = PostState::default();
        let begin =
            PostChange::new(&Source::Publish, &nothing).with_draft(draft).with_sending(SendingChange::Begin(&sending));
        let begun = self.store.save_post(project, &body.post, existing, begin, now).await?;
        let attempt = Attempt {
            store: &self.store,
            publisher: &self.publisher,
            queue: &self.queue,
            clock: &self.clock,
            timing: self.timing,
        };
        attempt.send((project, &body.post), begun, existing, Sender::Route, (0, None)).await
    }

    async fn keep_draft(&self, project: &ProjectId, post: &PostId, draft: &Draft) {
        if let Err(e) = self.store_draft(project, post, None, draft).await {
            tracing::warn!(project = %project, post = %post, error = ?e, "a refused new post could not be kept");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-29T12:00:00Z").unwrap()
    }

    fn refused(body: Value) -> String {
        match parse_publish(body, now()) {
            Err(Refusal::InvalidRequest(why)) => why,
            other => panic!("expected a 400, got {:?}", other.map(|r| r.post)),
        }
    }

    #[test]
    fn a_post_body_is_bounded_at_the_door() {
        assert!(refused(json!({"content": "x".repeat(MAX_CONTENT_BYTES + 1), "platforms": ["x"]})).contains("65536"));
        let many: Vec<String> = (0..=MAX_MEDIA_URLS).map(|i| format!("https://m/{i}.png")).collect();
        assert!(refused(json!({"content": "hi", "platforms": ["x"], "media_urls": many})).contains("at most 20"));
        let long = format!("https://m/{}", "a".repeat(MAX_MEDIA_URL_BYTES));
        assert!(refused(json!({"content": "hi", "platforms": ["x"], "media_urls": [long]})).contains("8192"));
        assert!(refused(json!({"content": "hi", "platforms": ["x"], "media_urls": ["ftp://m/a"]})).contains("http(s)"));
        assert!(refused(json!({"content": "hi", "platforms": ["x", "x", "x", "x", "x"]})).contains("at most 4"));
        assert!(refused(json!({"content": "hi", "platforms": []})).contains("at least one"));
        assert!(refused(json!({"content": "hi", "platforms": ["x"], "scheduled_for": "soon"})).contains("RFC 3339"));
        assert!(matches!(
            parse_publish(json!({"content": "hi", "platforms": ["tiktok"]}), now()),
            Err(Refusal::InvalidPlatform(_))
        ));
        let presigned = format!("https://m/clip.mp4?X-Amz-Signature={}", "a".repeat(4000));
        let ok =
            parse_publish(json!({"content": "hi", "platforms": ["x", "x"], "media_urls": [presigned]}), now()).unwrap();
        assert_eq!(ok.platforms, vec![Platform::X]);
    }

    #[test]
    fn media_urls_and_typed_media_are_one_list_bounded_together_with_known_types_only() {
        let bare: Vec<String> = (0..15).map(|i| format!("https://m/{i}.png")).collect();
        let typed: Vec<Value> = (0..6).map(|i| json!({"url": format!("https://m/{i}"), "type": "video"})).collect();
        let body = json!({"content": "hi", "platforms": ["x"], "media_urls": bare, "media": typed});
        assert!(refused(body).contains("together may hold at most 20"));
        let odd = json!({"content": "hi", "platforms": ["x"], "media": [{"url": "https://m/a", "type": "audio"}]});
        assert!(refused(odd).contains("media[0].type must be one of image, video, gif, document"));
        let ftp = json!({"content": "hi", "platforms": ["x"], "media": [{"url": "ftp://m/a", "type": "image"}]});
        assert!(refused(ftp).contains("http(s)"));
        let body = json!({"content": "hi", "platforms": ["x"], "media_urls": ["https://m/reel.MP4?sig=1.jpg"],
                          "media": [{"url": "https://m/cover", "type": "gif"}]});
        let media = parse_publish(body, now()).unwrap().media.unwrap();
        let kinds: Vec<MediaType> = media.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, vec![MediaType::Video, MediaType::Gif], "bare URLs first, typed by extension");
        let none = parse_publish(json!({"content": "hi", "platforms": ["x"]}), now()).unwrap();
        assert_eq!(none.media, None, "no media given: the stored media stay");
    }

    #[test]
    fn a_time_to_publish_that_has_passed_is_refused_and_an_offset_is_read_as_utc() {
        let past = json!({"content": "hi", "platforms": ["x"], "scheduled_for": "2026-11-29T11:00:00Z"});
        assert!(refused(past).contains("in the past"));
        let moment_ago = json!({"content": "hi", "platforms": ["x"], "scheduled_for": "2026-11-29T11:59:30Z"});
        assert!(parse_publish(moment_ago, now()).is_ok());
        let offset = json!({"content": "hi", "platforms": ["x"], "scheduled_for": "2026-11-29T15:00:00+02:00"});
        let at = parse_publish(offset, now()).unwrap().scheduled_for.unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-29T13:00:00Z");
    }
}
