//! The publishing service (Zernio, formerly Late) over HTTPS: the only place its wire format
//! and reqwest appear. Every failure to get an answer in time is `Unavailable`, and so is every
//! answer that is not the service's own (an HTML 404 from a proxy is not "gone").

pub mod answers;
pub mod webhook;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::domain::post::ServiceAnswer;
use crate::domain::{Platform, ProfileId, ServicePostId, Timestamp};
use crate::metrics::{self, Metric};
use crate::ports::{AccountHealth, LiveAccount, PostPublisher, Publication, PublishRefusal, Publisher, PublisherError};
use crate::reloading::Reloading;

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

    /// Sends a request within `budget`, retries included: when the service refuses our key, the
    /// key is read again and the call made once more with what is left of the budget. A key still
    /// refused is an outage on our side, never the caller's mistake.
    async fn send(&self, request: reqwest::RequestBuilder, budget: Duration) -> Result<Response, PublisherError> {
        let started = Instant::now();
        let again = request.try_clone();
        let mut response = self.attempt(request.timeout(budget)).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(again) = again
            && let Some(left) = remaining(budget, started.elapsed())
            && self.api_key.refresh().await
        {
            tracing::info!("publishing-service API key read again after a 401");
            response = self.attempt(again.timeout(left)).await?;
        }
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            tracing::error!("the publishing service refuses our API key");
            metrics::count(Metric::PublisherKeyRefused, 1);
            return Err(PublisherError::Unavailable { retry_after: None, reason: "our API key was refused".into() });
        }
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
        Ok(answers::json(&bytes))
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

    /// A read: `None` for the service's own 404 (its JSON error envelope); any other 404 (an HTML
    /// page, a wrong base URL, a proxy) means the service was not reached.
    async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Value>, PublisherError> {
        let response = self.send(self.http.get(self.url(path)).query(query), READ_TIMEOUT).await?;
        match response.status() {
            StatusCode::NOT_FOUND => {
                let body = Self::body(response).await?;
                if is_service_error(&body) {
                    Ok(None)
                } else {
                    Err(PublisherError::Unavailable {
                        retry_after: None,
                        reason: "a 404 that is not the service's own answer".into(),
                    })
                }
            }
            s if s.is_success() => Self::body(response).await.map(Some),
            _ => Err(Self::refused(response).await),
        }
    }
}

/// What is left of a budget after `elapsed`, if anything worth a second attempt.
fn remaining(budget: Duration, elapsed: Duration) -> Option<Duration> {
    budget.checked_sub(elapsed).filter(|left| *left >= Duration::from_millis(500))
}

/// The service's own error envelope: a JSON object with a string `error`.
fn is_service_error(body: &Value) -> bool {
    body.get("error").is_some_and(Value::is_string)
}

impl Publisher for ZernioClient {
    async fn accounts(&self, profile: &ProfileId) -> Result<Option<Vec<LiveAccount>>, PublisherError> {
        let Some(body) = self.get_json("/accounts", &[("profileId", profile.as_str())]).await? else {
            return Ok(None);
        };
        Ok(Some(answers::accounts(&body)))
    }

    async fn health(&self, profile: &ProfileId) -> Result<Option<Vec<AccountHealth>>, PublisherError> {
        let Some(body) = self.get_json("/accounts/health", &[("profileId", profile.as_str())]).await? else {
            return Ok(None);
        };
        Ok(Some(answers::health(&body)))
    }

    async fn profile_exists(&self, profile: &ProfileId) -> Result<bool, PublisherError> {
        Ok(self.get_json(&format!("/profiles/{profile}"), &[]).await?.is_some())
    }

    async fn create_profile(&self, name: &str) -> Result<ProfileId, PublisherError> {
        let request =
            self.http.post(self.url("/profiles")).json(&json!({"name": name, "description": "theStacc project"}));
        let response = self.send(request, READ_TIMEOUT).await?;
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

impl PostPublisher for ZernioClient {
    async fn publish(
        &self,
        publication: &Publication,
    ) -> Result<Result<crate::domain::PostReport, PublishRefusal>, PublisherError> {
        let platforms: Vec<Value> = publication
            .targets
            .iter()
            .map(|t| json!({"platform": t.platform.wire_name(), "accountId": t.account_id.as_str()}))
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
        if !publication.media.is_empty() {
            body["mediaItems"] =
                publication.media.iter().map(|m| json!({"type": m.kind.name(), "url": m.url})).collect();
        }
        let request = self.http.post(self.url("/posts")).header("x-request-id", &publication.request_id).json(&body);
        let response = self.send(request, PUBLISH_TIMEOUT).await?;
        let status = response.status();
        if status.is_success() {
            let body = Self::body(response).await?;
            let mut report = answers::post(&body, publication.sent_at).ok_or_else(|| PublisherError::Refused {
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

    async fn post(&self, id: &ServicePostId, asked_at: Timestamp) -> Result<ServiceAnswer, PublisherError> {
        let Some(body) = self.get_json(&format!("/posts/{id}"), &[]).await? else {
            return Ok(ServiceAnswer::Gone);
        };
        match answers::post(&body, asked_at) {
            Some(report) => Ok(ServiceAnswer::Found(report)),
            None => Err(PublisherError::Refused {
                status: 200,
                code: None,
                message: "the answer carries no post id".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_attempt_gets_only_what_is_left_of_the_budget() {
        let budget = PUBLISH_TIMEOUT;
        assert_eq!(remaining(budget, Duration::from_secs(4)), Some(Duration::from_secs(11)));
        assert_eq!(remaining(budget, Duration::from_millis(14_800)), None);
        assert_eq!(remaining(budget, Duration::from_secs(20)), None);
    }

    #[test]
    fn only_the_services_json_error_is_its_own_answer() {
        assert!(is_service_error(&json!({"error": "Not found"})));
        assert!(!is_service_error(&json!({})));
        assert!(!is_service_error(&json!({"error": {"nested": true}})));
    }
}
