//! The publishing service (Zernio, formerly Late) over HTTPS: the only place its wire format
//! and reqwest appear. Every failure to get an answer in time is `Unavailable`, and so is every
//! answer that is not the service's own (an HTML 404 from a proxy is not "gone").

pub mod answers;
pub mod webhook;
pub mod wire;

#[cfg(test)]
mod confusion_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::domain::budget::{TooMany, Whose};
use crate::domain::ids::profile_name;
use crate::domain::post::ServiceAnswer;
use crate::domain::publish::AccountLimit;
use crate::domain::{AccountId, Platform, ProfileId, ProjectId, ServicePostId, Timestamp};
use crate::metrics::{self, Metric};
use crate::ports::{
    AccountHealth, Answer, CallGate, Delivery, LiveAccount, PostPublisher, Publication, Publisher, PublisherError,
    Subscription, SubscriptionWatch, Ungated,
};
use crate::reloading::Reloading;

/// A read gets 5 seconds; past that the service counts as unreachable.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// What a route keeps of its deadline for the writes after its last call.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);
/// A call with less time than this is not sent.
const SHORTEST_CALL: Duration = Duration::from_secs(1);
/// The most pages of the accounts list read (a profile has a handful of accounts).
const MAX_ACCOUNT_PAGES: usize = 50;

/// Why a request got no answer: never sent (nothing taken), or sent with its answer lost (a
/// publish may have been taken).
enum NoAnswer {
    Unreachable(String),
    Lost(String),
    /// Not sent: the shared budget has no room for this many seconds.
    Budget(u64),
}

impl From<NoAnswer> for PublisherError {
    fn from(e: NoAnswer) -> Self {
        match e {
            NoAnswer::Unreachable(reason) | NoAnswer::Lost(reason) => {
                PublisherError::Unavailable { retry_after: None, reason }
            }
            NoAnswer::Budget(retry_after) => PublisherError::Busy { retry_after },
        }
    }
}

/// An id from the service as one path segment: percent-encoded, so no id can change the path.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// How long the service asks us to wait: `Retry-After` (seconds), else `X-RateLimit-Reset` (a Unix
/// time in seconds).
fn retry_after(response: &Response) -> Option<u64> {
    let header = |name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
    };
    header("retry-after").or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        header("x-ratelimit-reset").map(|reset| reset.saturating_sub(now).max(1))
    })
}

#[derive(Clone)]
pub struct ZernioClient {
    http: Client,
    base_url: String,
    /// The service's host, as traces name it.
    host: String,
    /// Read again (and the call made once more) when the service answers 401: a rotated key.
    api_key: Arc<Reloading<String>>,
    /// Passed before every request; shut by every 429 (capacity.md).
    gate: Arc<dyn CallGate>,
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
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let host =
            reqwest::Url::parse(&base_url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Ok(Self { http, host, base_url, api_key: Arc::new(api_key), gate: Arc::new(Ungated) })
    }

    /// What every request passes first.
    pub fn gate(&self) -> Arc<dyn CallGate> {
        self.gate.clone()
    }

    /// The same client, every request of which passes `gate` first.
    pub fn with_gate(self, gate: Arc<dyn CallGate>) -> Self {
        Self { gate, ..self }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base_url)
    }

    /// A path with an id from the service in it, percent-encoded.
    fn url_of(&self, path: &str, id: &str) -> String {
        self.url(&format!("{path}/{}", segment(id)))
    }

    /// Sends a request within `budget`, retries included: when the service refuses our key, the
    /// key is read again and the call made once more with what is left of the budget. A key still
    /// refused is an outage on our side, never the caller's mistake.
    async fn send(&self, request: reqwest::RequestBuilder, budget: Duration) -> Result<Response, PublisherError> {
        let response = self.answer(request, budget).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(key_refused());
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(&response).unwrap_or(crate::domain::budget::DEFAULT_SHUT_SECONDS);
            return Err(PublisherError::Busy {
                retry_after: retry_after.clamp(1, crate::domain::budget::MAX_SHUT_SECONDS),
            });
        }
        if status.is_server_error() {
            return Err(PublisherError::Unavailable {
                retry_after: retry_after(&response),
                reason: format!("answered {status}"),
            });
        }
        Ok(response)
    }

    /// The service's answer, whatever its status (after one re-read of a refused key).
    async fn answer(&self, request: reqwest::RequestBuilder, budget: Duration) -> Result<Response, NoAnswer> {
        self.gate.admit().await.map_err(|limited| NoAnswer::Budget(limited.retry_after))?;
        self.admitted(request, budget).await
    }

    /// As `answer`, for a request the shared budget already admitted. Within a route's deadline
    /// the call gets only what is left of it (less the margin the route's writes need), and is
    /// not sent when that is too little.
    async fn admitted(&self, request: reqwest::RequestBuilder, budget: Duration) -> Result<Response, NoAnswer> {
        let budget = match crate::deadline::left() {
            None => budget,
            Some(left) => match left.checked_sub(DEADLINE_MARGIN).filter(|usable| *usable >= SHORTEST_CALL) {
                Some(usable) => budget.min(usable),
                None => return Err(NoAnswer::Unreachable("not sent: the route's deadline is near".into())),
            },
        };
        let started = Instant::now();
        let again = request.try_clone();
        let mut response = self.attempt(request.timeout(budget)).await?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(again) = again
            && let Some(left) = remaining(budget, started.elapsed())
            && self.api_key.refresh().await
        {
            tracing::info!("publishing-service API key read again after a 401");
            self.gate.admit().await.map_err(|limited| NoAnswer::Budget(limited.retry_after))?;
            response = self.attempt(again.timeout(left)).await?;
        }
        Ok(response)
    }

    /// One request (the shared budget had room for it); the team's throughput 429 shuts the
    /// budget for everyone, and no other 429 does (capacity.md).
    async fn attempt(&self, request: reqwest::RequestBuilder) -> Result<Response, NoAnswer> {
        let response = self.send_now(request).await?;
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return Ok(response);
        }
        let (signs, _, response) = too_many(response).await;
        if signs.whose() == Whose::Team {
            self.gate.shut(signs.retry_after).await;
        } else {
            tracing::info!("a 429 that limits an account, not the team: the shared budget stays open");
            metrics::count(Metric::AccountLimited, 1);
        }
        Ok(response)
    }

    async fn send_now(&self, request: reqwest::RequestBuilder) -> Result<Response, NoAnswer> {
        // Traced invocations only: the method and path are read from a copy of the request.
        let traced = crate::adapters::xray::traced().then(|| {
            let route = request.try_clone().and_then(|r| r.build().ok());
            let route = route.map(|r| format!("{} {}", r.method(), r.url().path())).unwrap_or_default();
            (route, crate::adapters::xray::now())
        });
        let sent = self.api_key.with(|key| request.bearer_auth(key)).send().await;
        if let Some((operation, start)) = traced {
            crate::adapters::xray::record(crate::adapters::xray::Call {
                name: self.host.clone(),
                namespace: "remote",
                operation,
                start,
                end: crate::adapters::xray::now(),
                status: sent.as_ref().ok().map(|r| r.status().as_u16()),
            });
        }
        sent.map_err(|e| {
            if e.is_connect() {
                NoAnswer::Unreachable(format!("unreachable: {e}"))
            } else if e.is_timeout() {
                NoAnswer::Lost("timed out".into())
            } else {
                NoAnswer::Lost(format!("no answer: {e}"))
            }
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
        if response.status() == StatusCode::PAYMENT_REQUIRED {
            return Self::needs_operator(response).await;
        }
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
        self.get_json_at(self.url(path), query).await
    }

    async fn get_json_at(&self, url: String, query: &[(&str, &str)]) -> Result<Option<Value>, PublisherError> {
        let response = self.send(self.http.get(url).query(query), READ_TIMEOUT).await?;
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

/// A 429 read whole: whose limit it is, what it names, and the answer again for its caller.
async fn too_many(response: Response) -> (TooMany, AccountLimit, Response) {
    let retry_after = retry_after(&response);
    let remaining_zero =
        response.headers().get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == "0");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.bytes().await.unwrap_or_default();
    let (signs, limit) = answers::too_many(
        remaining_zero,
        retry_after,
        &answers::json(&bytes),
        Timestamp::from(time::OffsetDateTime::now_utc()),
    );
    let mut again = http::Response::new(bytes);
    *again.status_mut() = status;
    *again.headers_mut() = headers;
    (signs, limit, Response::from(again))
}

fn key_refused() -> PublisherError {
    tracing::error!("the publishing service refuses our API key");
    metrics::count(Metric::PublisherKeyRefused, 1);
    PublisherError::Unavailable { retry_after: None, reason: "our API key was refused".into() }
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
        // Accounts over the plan's limit are listed only when asked for: one missing only because of
        // the plan must never read as removed.
        let mut found = Vec::new();
        let mut next: Option<answers::NextPage> = None;
        for _ in 0..MAX_ACCOUNT_PAGES {
            let mut query = vec![("profileId", profile.as_str().to_owned()), ("includeOverLimit", "true".to_owned())];
            query.extend(next.as_ref().map(answers::NextPage::query).unwrap_or_default());
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let Some(body) = self.get_json("/accounts", &query).await? else {
                return Ok(None);
            };
            found.extend(answers::accounts(&body));
            next = answers::next_page(&body);
            if next.is_none() {
                return Ok(Some(found));
            }
        }
        Err(PublisherError::Unavailable { retry_after: None, reason: "the accounts list does not end".into() })
    }

    async fn health(&self, profile: &ProfileId) -> Result<Option<Vec<AccountHealth>>, PublisherError> {
        let Some(body) = self.get_json("/accounts/health", &[("profileId", profile.as_str())]).await? else {
            return Ok(None);
        };
        Ok(Some(answers::health(&body)))
    }

    async fn profile_exists(&self, profile: &ProfileId) -> Result<bool, PublisherError> {
        Ok(self.get_json_at(self.url_of("/profiles", profile.as_str()), &[]).await?.is_some())
    }

    async fn create_profile(&self, project: &ProjectId) -> Result<ProfileId, PublisherError> {
        // The name is derived from the project, so it is the key too: a retried create replays.
        let name = profile_name(project);
        let request = self
            .http
            .post(self.url("/profiles"))
            .header("idempotency-key", format!("profile-{name}"))
            .json(&wire::create_profile(&name, project));
        let response = self.send(request, READ_TIMEOUT).await?;
        let status = response.status();
        if status == StatusCode::FORBIDDEN {
            return Err(Self::needs_operator(response).await);
        }
        if !(status.is_success() || status == StatusCode::CONFLICT) {
            return Err(Self::refused(response).await);
        }
        let after = retry_after(&response);
        let body = Self::body(response).await?;
        let id = if status == StatusCode::CONFLICT {
            // A profile of this name or this externalId exists: adopt it (`link_profile` then
            // checks it is this project's). A 409 naming none is the same key still in flight,
            // which a create cut off mid-way keeps for 24 hours: look the profile up, never loop.
            match body.pointer("/details/existingProfileId").and_then(Value::as_str) {
                Some(existing) => Some(existing.to_owned()),
                None => return self.find_profile(project, &name, after).await,
            }
        } else {
            body.pointer("/profile/_id")
                .or_else(|| body.pointer("/profile/id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        id.and_then(|id| ProfileId::parse(id).ok()).ok_or_else(|| PublisherError::Refused {
            status: status.as_u16(),
            code: None,
            message: "the answer carries no profile id".into(),
        })
    }

    async fn delete_profile(&self, profile: &ProfileId) -> Result<(), PublisherError> {
        self.delete_gone(self.url_of("/profiles", profile.as_str())).await
    }

    async fn disconnect_account(&self, account: &AccountId) -> Result<(), PublisherError> {
        self.delete_gone(self.url_of("/accounts", account.as_str())).await
    }

    async fn connect_link(
        &self,
        platform: Platform,
        profile: &ProfileId,
        redirect_url: Option<&str>,
        reconnect: Option<&AccountId>,
    ) -> Result<Option<String>, PublisherError> {
        let mut query = vec![("profileId", profile.as_str())];
        if let Some(url) = redirect_url {
            query.push(("redirect_url", url));
        }
        if let Some(account) = reconnect {
            query.push(("reconnectAccountId", account.as_str()));
        }
        let Some(body) = self.get_json_at(self.url_of("/connect", platform.wire_name()), &query).await? else {
            return Ok(None);
        };
        body.get("authUrl").and_then(Value::as_str).map(|u| Some(u.to_owned())).ok_or_else(|| PublisherError::Refused {
            status: 200,
            code: None,
            message: "the answer carries no authUrl".into(),
        })
    }
}

impl ZernioClient {
    /// A DELETE whose target may already be gone: the service's own 404 is gone too (a proxy's
    /// page is no answer).
    async fn delete_gone(&self, url: String) -> Result<(), PublisherError> {
        let request = self.http.delete(url);
        let response = self.send(request, READ_TIMEOUT).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            // Already gone, if it is the service's own 404 (a proxy's page is no answer).
            let body = Self::body(response).await?;
            return if is_service_error(&body) {
                Ok(())
            } else {
                Err(PublisherError::Unavailable {
                    retry_after: None,
                    reason: "a 404 that is not the service's own answer".into(),
                })
            };
        }
        Err(Self::refused(response).await)
    }
}

/// Delivery logs are read 100 to a page (the service's most).
const LOGS_PER_PAGE: usize = 100;

impl SubscriptionWatch for ZernioClient {
    async fn subscriptions(&self) -> Result<Vec<Subscription>, PublisherError> {
        let body = self.get_json("/webhooks/settings", &[]).await?.unwrap_or_default();
        Ok(answers::subscriptions(&body))
    }

    async fn switch_on(&self, id: &str) -> Result<(), PublisherError> {
        let request = self.http.put(self.url("/webhooks/settings")).json(&json!({"webhookId": id, "isActive": true}));
        let response = self.send(request, READ_TIMEOUT).await?;
        if response.status().is_success() { Ok(()) } else { Err(Self::refused(response).await) }
    }

    async fn deliveries(&self, id: &str, skip: usize) -> Result<(Vec<Delivery>, bool), PublisherError> {
        let (limit, skip) = (LOGS_PER_PAGE.to_string(), skip.to_string());
        let query = [("webhookId", id), ("limit", limit.as_str()), ("skip", skip.as_str())];
        let body = self.get_json("/webhooks/logs", &query).await?.unwrap_or_default();
        Ok(answers::deliveries(&body))
    }

    async fn redeliver(&self, id: &str, event_id: &str) -> Result<bool, PublisherError> {
        let request =
            self.http.post(self.url("/webhooks/logs/redeliver")).json(&json!({"webhookId": id, "eventId": event_id}));
        let response = self.send(request, READ_TIMEOUT).await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            // Our endpoint failed it again (502), or the log no longer holds it (422): not now.
            StatusCode::BAD_GATEWAY | StatusCode::UNPROCESSABLE_ENTITY => Ok(false),
            _ => Err(Self::refused(response).await),
        }
    }

    async fn endpoint_answers(&self, url: &str) -> bool {
        // A GET is refused by our webhook handler with its own 405 (`allow: POST`, our error
        // envelope): that answer means our code is deployed there and running.
        let Ok(response) = self.http.get(url).timeout(READ_TIMEOUT).send().await else { return false };
        let ours = response.status() == StatusCode::METHOD_NOT_ALLOWED
            && response.headers().get("allow").is_some_and(|v| v.as_bytes() == b"POST");
        let body = response.bytes().await.unwrap_or_default();
        ours && answers::json(&body).pointer("/error/code").and_then(Value::as_str) == Some("method_not_allowed")
    }
}

impl ZernioClient {
    /// The project's profile, found after a create whose key is still in flight: by `externalId`,
    /// then by exact name. Not found yet: try again later (the Connect answers 503).
    async fn find_profile(
        &self,
        project: &ProjectId,
        name: &str,
        retry_after: Option<u64>,
    ) -> Result<ProfileId, PublisherError> {
        for filter in [("externalId", project.as_str()), ("name", name)] {
            let Some(body) = self.get_json("/profiles", &[filter]).await? else { continue };
            if let Some(id) = answers::first_profile(&body) {
                tracing::info!(project = %project, profile = %id, by = filter.0, "profile found after an unanswered create");
                return Ok(id);
            }
        }
        Err(PublisherError::Unavailable {
            retry_after: retry_after.or(Some(5)),
            reason: "a profile create is still in flight and its profile cannot be found yet".into(),
        })
    }

    /// A refusal that is about our own service account (its plan, its billing, its profile
    /// limit): logged, counted for the alarm, and never the user's to fix.
    async fn needs_operator(response: Response) -> PublisherError {
        let status = response.status().as_u16();
        let body = Self::body(response).await.unwrap_or_else(|_| json!({}));
        let code = body.get("code").and_then(Value::as_str).unwrap_or("none");
        let reason = body.pointer("/details/reason").and_then(Value::as_str).unwrap_or("not given");
        let words = body.get("error").and_then(Value::as_str).unwrap_or("no message");
        tracing::error!(status, code, reason, message = words, "the publishing service's account needs an operator");
        metrics::count(Metric::PublisherAccountNeedsAttention, 1);
        PublisherError::NeedsOperator { reason: format!("{status} {code} ({reason}): {words}") }
    }
}

impl PostPublisher for ZernioClient {
    async fn publish(&self, publication: &Publication, wait: Duration) -> Answer {
        let request = self
            .http
            .post(self.url("/posts"))
            .header("x-request-id", &publication.request_id)
            .header("idempotency-key", &publication.request_id)
            .json(&wire::create_post(publication));
        // Past the shared budget a publish takes a place in line (or, holding one, waits for room
        // on its shard): it is sent by its follow-up, oldest first.
        let admitted = match publication.booking {
            Some(place) => self.gate.admit_booked(place).await.map(|()| None),
            None => self.gate.admit_or_book().await,
        };
        match admitted {
            Ok(None) => {}
            Ok(Some(place)) => return Answer::Queued(place),
            Err(limited) => return Answer::Throttled(Some(limited.retry_after)),
        }
        let response = match self.admitted(request, wait).await {
            Ok(response) => response,
            Err(NoAnswer::Unreachable(reason)) => {
                tracing::warn!(reason, "publish not sent");
                return Answer::NotTaken(None);
            }
            Err(NoAnswer::Lost(reason)) => {
                tracing::info!(reason, "publish sent, its answer lost: it may have been taken");
                return Answer::Unanswered(None);
            }
            Err(NoAnswer::Budget(retry_after)) => return Answer::Throttled(Some(retry_after)),
        };
        let status = response.status();
        let after = retry_after(&response);
        if status == StatusCode::UNAUTHORIZED {
            let _ = key_refused();
            return Answer::NotTaken(None);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let (signs, limit, _) = too_many(response).await;
            return match signs.whose() {
                Whose::Team => Answer::Throttled(after),
                Whose::Account => Answer::AccountLimited(limit),
            };
        }
        let Ok(body) = Self::body(response).await else { return Answer::Unanswered(after) };
        let code = body.get("code").and_then(Value::as_str);
        match status.as_u16() {
            200..=299 => match answers::created_post(&body, publication.sent_at) {
                Some(mut report) => {
                    report.generation = Some(publication.generation);
                    Answer::Taken(report)
                }
                // A 202 with only a `postId`: the original request is still being saved.
                None if status == StatusCode::ACCEPTED => Answer::InFlight(after),
                None => Answer::Unanswered(after),
            },
            // Any 5xx, the service's own `temporarily_unavailable` among them, may come after the
            // service took it: only the same keys, sent again, can tell.
            500..=599 => Answer::Unanswered(after),
            409 if code == Some("idempotency_conflict") => Answer::InFlight(after),
            409 => match answers::existing_post_id(&body) {
                Some(existing) => Answer::Duplicate(Some(existing)),
                None => Answer::InFlight(after),
            },
            403 if matches!(code, None | Some("ACCOUNT_DISCONNECTED")) => Answer::StaleAccounts,
            // Our own service account needs an operator: not taken, and not the user's doing.
            402 => {
                tracing::error!(code, "the publishing service's account needs an operator (publish)");
                metrics::count(Metric::PublisherAccountNeedsAttention, 1);
                Answer::NotTaken(after)
            }
            _ => Answer::Refused(body.get("error").and_then(Value::as_str).unwrap_or("no message").to_owned()),
        }
    }

    async fn post(&self, id: &ServicePostId, asked_at: Timestamp) -> Result<ServiceAnswer, PublisherError> {
        let Some(body) = self.get_json_at(self.url_of("/posts", id.as_str()), &[]).await? else {
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
    fn an_id_in_a_path_is_one_segment_whatever_it_holds() {
        assert_eq!(segment("65f1a2"), "65f1a2");
        assert_eq!(segment("../accounts?x=1"), "%2E%2E%2Faccounts%3Fx%3D1");
    }

    #[test]
    fn a_second_attempt_gets_only_what_is_left_of_the_budget() {
        let budget = Duration::from_secs(15);
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
