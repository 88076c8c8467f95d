//! The publishing service (Zernio, formerly Late) over HTTPS: the only place its wire format
//! and reqwest appear. Every failure to get an answer in time is `Unavailable`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::ServicePostId;
use crate::domain::post::EntryStatus;
use crate::domain::text::{bounded_text, bounded_url};
use crate::domain::{Platform, ProfileId};
use crate::ports::{
    AccountHealth, HealthStatus, LiveAccount, PostPublisher, Publication, PublishRefusal, Publisher, PublisherError,
    ServicePost,
};
use crate::reloading::Reloading;
use crate::wire::WirePost;
use crate::wire::{id_or_object, lenient_string};

/// A read gets 5 seconds; past that the service counts as unreachable.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A publish gets 15 seconds, inside API Gateway's 30-second limit.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct ZernioClient {
    http: Client,
    base_url: String,
    /// Read again (and the call made once more) when the service answers 401: a rotated key.
    api_key: Arc<Reloading<String>>,
}

impl std::fmt::Debug for ZernioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZernioClient").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLiveAccount {
    #[serde(default, rename = "_id", deserialize_with = "lenient_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    platform: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    profile_picture: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    profile_url: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    needs_reconnection: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHealth {
    #[serde(default, deserialize_with = "id_or_object")]
    account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    status: Option<String>,
    #[serde(default)]
    needs_reconnect: Option<bool>,
}

fn list<T: for<'de> Deserialize<'de>>(body: &Value, field: &str) -> Vec<T> {
    body.get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect())
        .unwrap_or_default()
}

impl ZernioClient {
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self, reqwest::Error> {
        Self::with_key(base_url, Reloading::fixed(api_key.into()))
    }

    /// A client whose key may be read again when the service refuses it.
    pub fn with_key(base_url: impl Into<String>, api_key: Reloading<String>) -> Result<Self, reqwest::Error> {
        let http = Client::builder().connect_timeout(Duration::from_secs(2)).timeout(READ_TIMEOUT).build()?;
        Ok(Self { http, base_url: base_url.into().trim_end_matches('/').to_owned(), api_key: Arc::new(api_key) })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, PublisherError> {
        let again = request.try_clone();
        let mut response = self.attempt(request).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(again) = again
            && self.api_key.refresh().await
        {
            tracing::info!("publishing-service API key read again after a 401");
            response = self.attempt(again).await?;
        }
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
            return Err(PublisherError::Unavailable { retry_after, reason: format!("answered {status}") });
        }
        Ok(response)
    }

    async fn attempt(&self, request: reqwest::RequestBuilder) -> Result<Response, PublisherError> {
        self.api_key.with(|key| request.bearer_auth(key)).send().await.map_err(|e| PublisherError::Unavailable {
            retry_after: None,
            reason: if e.is_timeout() { "timed out".into() } else { format!("unreachable: {e}") },
        })
    }

    /// The JSON body of an answer (`{}` when it has none or it is not JSON).
    async fn body(response: Response) -> Result<Value, PublisherError> {
        let bytes = response.bytes().await.map_err(|e| PublisherError::Unavailable {
            retry_after: None,
            reason: if e.is_timeout() { "timed out".into() } else { format!("answer cut off: {e}") },
        })?;
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({})))
    }

    async fn refused(response: Response) -> PublisherError {
        let status = response.status().as_u16();
        let body = Self::body(response).await.unwrap_or_else(|_| json!({}));
        PublisherError::Refused {
            status,
            code: body.get("code").and_then(Value::as_str).map(str::to_owned),
            message: body.get("error").and_then(Value::as_str).unwrap_or("no message").to_owned(),
        }
    }

    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Value>, PublisherError> {
        let response = self.send(self.http.get(self.url(path)).query(query)).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Self::body(response).await.map(Some),
            _ => Err(Self::refused(response).await),
        }
    }
}

impl Publisher for ZernioClient {
    async fn accounts(&self, profile: &ProfileId) -> Result<Option<Vec<LiveAccount>>, PublisherError> {
        let Some(body) = self.get_json("/accounts", &[("profileId", profile.as_str())]).await? else {
            return Ok(None);
        };
        let accounts = list::<WireLiveAccount>(&body, "accounts")
            .into_iter()
            .filter_map(|a| {
                Some(LiveAccount {
                    id: a.id?,
                    platform: Platform::from_wire(a.platform.as_deref()?).ok()?,
                    username: bounded_text(a.username.as_deref()),
                    display_name: bounded_text(a.display_name.as_deref()),
                    avatar_url: bounded_url(a.profile_picture.as_deref()),
                    profile_url: bounded_url(a.profile_url.as_deref()),
                    usable: a.is_active.unwrap_or(true) && !a.needs_reconnection.unwrap_or(false),
                })
            })
            .collect();
        Ok(Some(accounts))
    }

    async fn health(&self, profile: &ProfileId) -> Result<Option<Vec<AccountHealth>>, PublisherError> {
        let Some(body) = self.get_json("/accounts/health", &[("profileId", profile.as_str())]).await? else {
            return Ok(None);
        };
        let health = list::<WireHealth>(&body, "accounts")
            .into_iter()
            .filter_map(|h| {
                Some(AccountHealth {
                    account_id: h.account_id?,
                    status: match h.status.as_deref() {
                        Some("healthy") => Some(HealthStatus::Healthy),
                        Some("warning") => Some(HealthStatus::Warning),
                        Some("error") => Some(HealthStatus::Error),
                        _ => None,
                    },
                    needs_reconnect: h.needs_reconnect.unwrap_or(false),
                })
            })
            .collect();
        Ok(Some(health))
    }

    async fn profile_exists(&self, profile: &ProfileId) -> Result<bool, PublisherError> {
        Ok(self.get_json(&format!("/profiles/{profile}"), &[]).await?.is_some())
    }

    async fn create_profile(&self, name: &str) -> Result<ProfileId, PublisherError> {
        let request =
            self.http.post(self.url("/profiles")).json(&json!({"name": name, "description": "theStacc project"}));
        let response = self.send(request).await?;
        let status = response.status();
        if !(status.is_success() || status == StatusCode::CONFLICT) {
            return Err(Self::refused(response).await);
        }
        let body = Self::body(response).await?;
        let id = if status == StatusCode::CONFLICT {
            // A retried create after a timeout lands here: adopt the profile that exists.
            body.pointer("/details/existingProfileId")
        } else {
            body.pointer("/profile/_id").or_else(|| body.pointer("/profile/id"))
        };
        id.and_then(Value::as_str).and_then(|id| ProfileId::parse(id).ok()).ok_or_else(|| PublisherError::Refused {
            status: status.as_u16(),
            code: None,
            message: "the answer carries no profile id".into(),
        })
    }

    async fn connect_link(
        &self,
        platform: Platform,
        profile: &ProfileId,
        redirect_url: Option<&str>,
    ) -> Result<Option<String>, PublisherError> {
        let mut query = vec![("profileId", profile.as_str())];
        if let Some(url) = redirect_url {
            query.push(("redirect_url", url));
        }
        let Some(body) = self.get_json(&format!("/connect/{}", platform.wire_name()), &query).await? else {
            return Ok(None);
        };
        body.get("authUrl").and_then(Value::as_str).map(|u| Some(u.to_owned())).ok_or_else(|| PublisherError::Refused {
            status: 200,
            code: None,
            message: "the answer carries no authUrl".into(),
        })
    }
}

/// The status a platform listed without its own takes from the post's status.
fn default_status(post: &WirePost) -> EntryStatus {
    match post.status.as_deref() {
        Some("published") => EntryStatus::Published,
        Some("failed") => EntryStatus::Failed,
        _ => EntryStatus::Queued,
    }
}

impl PostPublisher for ZernioClient {
    async fn publish(
        &self,
        publication: &Publication,
    ) -> Result<Result<crate::domain::PostReport, PublishRefusal>, PublisherError> {
        let platforms: Vec<Value> = publication
            .targets
            .iter()
            .map(|t| json!({"platform": t.platform.wire_name(), "accountId": t.account_id}))
            .collect();
        let mut body = json!({
            "content": publication.content,
            "platforms": platforms,
            "metadata": {"stacc_project_id": publication.project.as_str(), "stacc_post_id": publication.post.as_str(),
                         "stacc_generation": publication.generation},
        });
        match publication.scheduled_for {
            Some(at) => body["scheduledFor"] = json!(at.to_rfc3339()),
            None => body["publishNow"] = json!(true),
        }
        if !publication.media_urls.is_empty() {
            body["mediaItems"] =
                publication.media_urls.iter().map(|url| json!({"type": "image", "url": url})).collect();
        }
        let request = self
            .http
            .post(self.url("/posts"))
            .timeout(PUBLISH_TIMEOUT)
            .header("x-request-id", &publication.request_id)
            .json(&body);
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_success() {
            let body = Self::body(response).await?;
            let post: WirePost =
                body.get("post").and_then(|p| serde_json::from_value(p.clone()).ok()).unwrap_or_default();
            let mut report = post.report(default_status(&post), false).ok_or_else(|| PublisherError::Refused {
                status: status.as_u16(),
                code: None,
                message: "the answer carries no post id".into(),
            })?;
            report.generation = Some(publication.generation);
            return Ok(Ok(report));
        }
        let refused = Self::refused(response).await;
        let PublisherError::Refused { status, code, message } = &refused else { return Err(refused) };
        Ok(Err(match (*status, code.as_deref()) {
            (403, None | Some("ACCOUNT_DISCONNECTED")) => PublishRefusal::StaleAccounts,
            (409, _) => PublishRefusal::DuplicateContent,
            _ => PublishRefusal::Other(message.clone()),
        }))
    }

    async fn post(&self, id: &ServicePostId) -> Result<ServicePost, PublisherError> {
        let Some(body) = self.get_json(&format!("/posts/{id}"), &[]).await? else {
            return Ok(ServicePost::Gone);
        };
        let post: WirePost = body.get("post").and_then(|p| serde_json::from_value(p.clone()).ok()).unwrap_or_default();
        let cancelled = post.status.as_deref() == Some("cancelled");
        match post.report(default_status(&post), cancelled) {
            Some(report) => Ok(ServicePost::Found(report)),
            None => Err(PublisherError::Refused {
                status: 200,
                code: None,
                message: "the answer carries no post id".into(),
            }),
        }
    }
}
