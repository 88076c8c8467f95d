//! What every app route shares: the caller from the verified claims, path parameters parsed at
//! the edge, and one mapping from refusals to answers.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use super::http;
use crate::domain::erasure;
use crate::domain::limits::{Limits, Seen, Spend};
use crate::domain::platform::spoken_list;
use crate::domain::{Platform, ProjectId, Timestamp};
use crate::ports::{BudgetStore, PublisherError, SealStore, StoreError};

/// App request bodies above this are refused unread (413): every body that passes the post
/// bounds is well under it.
pub const MAX_APP_BODY_BYTES: usize = 256 * 1024;

/// Why a request is refused, each with its stable code: every 4xx and 5xx an app route writes
/// comes from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized,
    Forbidden,
    /// The body is over [`MAX_APP_BODY_BYTES`]: refused unread.
    BodyTooLarge,
    InvalidPlatform(String),
    InvalidRequest(String),
    NotFound(String),
    /// These platforms' copies are queued or live: publishing again would post twice.
    AlreadyPublished(Vec<Platform>),
    /// These platforms need reconnecting; `verified` when the live list (or our records) said so.
    ReconnectRequired {
        platforms: Vec<Platform>,
        verified: bool,
    },
    DuplicateContent,
    NotPublished,
    NotPublishedOnPlatform(Platform),
    /// The service's profile of this project's name is held by another project.
    ProfileConflict,
    /// The project spent its budget of this kind of call for now.
    RateLimited {
        retry_after: u64,
    },
    /// The service refused the publish for these platforms' accounts, at their posting limit
    /// (velocity, daily cap, cooldown, a provider's quota); `retry_after` when it said when.
    AccountLimited {
        platforms: Vec<Platform>,
        retry_after: Option<u64>,
        message: String,
    },
    /// The shared budget of the API key (capacity.md) has no room for now.
    Busy {
        retry_after: u64,
    },
    PublisherUnavailable {
        retry_after: u64,
    },
    /// The project is sealed for erasure (lifecycle.md): 410 on every route but its erasure's.
    ProjectErased,
    /// The service refused for our own service account (its plan or billing): an operator acts.
    PublisherAccountNeedsAttention,
    StoreUnavailable,
}

/// The `Retry-After` given when the service did not say.
pub const DEFAULT_RETRY_AFTER: u64 = 5;
/// The longest `Retry-After` passed on from the service: past it, the app had better try again.
pub const MAX_RETRY_AFTER: u64 = 300;

impl Refusal {
    pub fn response(&self) -> Response<Body> {
        match self {
            Refusal::Unauthorized => {
                http::error(401, "unauthorized", "Sign in again: the request carries no verified identity.")
            }
            Refusal::Forbidden => http::error(403, "forbidden", "This token is for another project."),
            Refusal::BodyTooLarge => http::error(
                413,
                "payload_too_large",
                &format!("The body is over {} KB; nothing was read or stored.", MAX_APP_BODY_BYTES / 1024),
            ),
            Refusal::InvalidPlatform(name) => http::error(
                400,
                "invalid_platform",
                &format!("Unknown platform {name:?}: use instagram, facebook, linkedin or x."),
            ),
            Refusal::InvalidRequest(why) => http::error(400, "invalid_request", why),
            Refusal::NotFound(what) => http::error(404, "not_found", what),
            Refusal::AlreadyPublished(platforms) => http::error(
                409,
                "already_published",
                &format!(
                    "This post is already queued or live on {}; mark it deleted there first to publish again.",
                    spoken_list(platforms)
                ),
            ),
            Refusal::ReconnectRequired { platforms, verified } => {
                let names: Vec<&str> = platforms.iter().map(|p| p.api_name()).collect();
                let message = format!("Reconnect {}, then publish again.", spoken_list(platforms));
                http::json(
                    409,
                    &json!({"error": {"code": "reconnect_required", "message": message, "platforms": names, "verified": verified}}),
                )
            }
            Refusal::DuplicateContent => http::error(
                409,
                "duplicate_content",
                "The same text went to the same account in the last 24 hours; change it or wait.",
            ),
            Refusal::NotPublished => {
                http::error(409, "not_published", "This post was never published, so there is nothing to sync.")
            }
            Refusal::NotPublishedOnPlatform(platform) => http::error(
                409,
                "not_published_on_platform",
                &format!("This post is not live on {}, so there is nothing to mark deleted.", platform.display_name()),
            ),
            Refusal::ProfileConflict => http::error(
                409,
                "profile_conflict",
                "The publishing service holds a profile of this project's name that belongs to another project; nothing was changed. Contact support.",
            ),
            Refusal::RateLimited { retry_after } => {
                let mut response = http::error(
                    429,
                    "rate_limited",
                    &format!(
                        "This project made too many of these calls in the last minute; nothing was called or changed. Try again in {retry_after} s."
                    ),
                );
                response.headers_mut().insert("retry-after", (*retry_after).into());
                response
            }
            Refusal::AccountLimited { platforms, retry_after, message } => {
                let names: Vec<&str> = platforms.iter().map(|p| p.api_name()).collect();
                let message = format!(
                    "The publishing service refused this publish for {}: {message} Nothing was published or changed.",
                    spoken_list(platforms)
                );
                let mut response = http::json(
                    429,
                    &json!({"error": {"code": "rate_limited", "message": message, "platforms": names}}),
                );
                if let Some(after) = retry_after {
                    response.headers_mut().insert("retry-after", (*after).into());
                }
                response
            }
            Refusal::Busy { retry_after } => {
                let mut response = http::error(
                    429,
                    "rate_limited",
                    &format!(
                        "The publishing service's budget, shared by every project, has no room for now; nothing was called or changed. Try again in {retry_after} s."
                    ),
                );
                response.headers_mut().insert("retry-after", (*retry_after).into());
                response
            }
            Refusal::PublisherUnavailable { retry_after } => {
                let mut response = http::error(
                    503,
                    "publisher_unavailable",
                    "The publishing service could not be reached; nothing was changed. Try again in a moment.",
                );
                response.headers_mut().insert("retry-after", (*retry_after).into());
                response
            }
            Refusal::ProjectErased => http::error(
                410,
                "project_erased",
                "This project was erased at its owner's request; nothing of it is kept but the record of its erasure (GET /projects/{projectId}/erasure).",
            ),
            Refusal::PublisherAccountNeedsAttention => {
                let mut response = http::error(
                    503,
                    "publisher_unavailable",
                    "theStacc's account with the publishing service needs attention from our team; nothing is wrong with your accounts and there is nothing to reconnect. Nothing was changed. Try again later.",
                );
                response.headers_mut().insert("retry-after", MAX_RETRY_AFTER.into());
                response
            }
            Refusal::StoreUnavailable => {
                let mut response = http::error(
                    503,
                    "unavailable",
                    "Your data could not be reached; nothing was changed. Try again in a moment.",
                );
                response.headers_mut().insert("retry-after", DEFAULT_RETRY_AFTER.into());
                response
            }
        }
    }
}

impl From<PublisherError> for Refusal {
    fn from(e: PublisherError) -> Self {
        if let PublisherError::NeedsOperator { .. } = e {
            // Logged and counted where it was read (the adapter); the alarm calls an operator.
            return Refusal::PublisherAccountNeedsAttention;
        }
        if let PublisherError::Busy { retry_after } = e {
            tracing::warn!(retry_after, "the shared budget has no room");
            return Refusal::Busy { retry_after: retry_after.clamp(1, MAX_RETRY_AFTER) };
        }
        tracing::warn!(error = %e, "publishing service call failed");
        crate::metrics::count(crate::metrics::Metric::PublisherErrors, 1);
        crate::metrics::count(crate::metrics::Metric::PublisherUnavailable, 1);
        match e {
            PublisherError::Unavailable { retry_after, .. } => Refusal::PublisherUnavailable {
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER).clamp(1, MAX_RETRY_AFTER),
            },
            // An answer we cannot use is, for the user, the service not working right now.
            PublisherError::Refused { .. } | PublisherError::Busy { .. } | PublisherError::NeedsOperator { .. } => {
                Refusal::PublisherUnavailable { retry_after: DEFAULT_RETRY_AFTER }
            }
        }
    }
}

impl From<crate::domain::limits::Limited> for Refusal {
    fn from(limited: crate::domain::limits::Limited) -> Self {
        tracing::warn!(retry_after = limited.retry_after, "call budget spent");
        Refusal::RateLimited { retry_after: limited.retry_after }
    }
}

/// A publish refused by its checks: our records said so, before any call.
impl From<crate::domain::publish::Refused> for Refusal {
    fn from(refused: crate::domain::publish::Refused) -> Self {
        use crate::domain::publish::Refused;
        match refused {
            Refused::AlreadyPublished(platforms) => Refusal::AlreadyPublished(platforms),
            Refused::ReconnectRequired(platforms) => Refusal::ReconnectRequired { platforms, verified: true },
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        if e == StoreError::Sealed {
            return Refusal::ProjectErased;
        }
        if e == StoreError::TooLarge {
            tracing::warn!("refused: the item would be too large to store");
            return Refusal::InvalidRequest("This post is too large to store; shorten its text or media list.".into());
        }
        tracing::error!(error = %e, "store call failed");
        Refusal::StoreUnavailable
    }
}

/// A path parameter, by name.
pub fn path_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.path_parameters_ref().and_then(|p| p.first(name))
}

/// The claim that names the caller's project: `PROJECT_CLAIM` (the template's `ProjectClaim`),
/// `project_id` when unset; read once.
pub fn project_claim() -> &'static str {
    static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::env::var("PROJECT_CLAIM")
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_PROJECT_CLAIM.to_owned())
    });
    &CLAIM
}

/// The claim that names the project unless `PROJECT_CLAIM` says otherwise.
pub const DEFAULT_PROJECT_CLAIM: &str = "project_id";

/// The project the caller may act on: the verified project claim ([`project_claim`]), which must
/// be the path's.
/// Every app route asks this first, so a body over [`MAX_APP_BODY_BYTES`] is refused here, unread.
pub fn caller(request: &Request) -> Result<ProjectId, Refusal> {
    let bytes = AsRef::<[u8]>::as_ref(request.body()).len();
    if bytes > MAX_APP_BODY_BYTES {
        tracing::warn!(bytes, "refused unread: the body is too large");
        return Err(Refusal::BodyTooLarge);
    }
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims)
        }
        _ => None,
    };
    let claimed = claims.ok_or(Refusal::Unauthorized)?.get(project_claim()).ok_or(Refusal::Forbidden)?;
    let path = path_param(request, "projectId").unwrap_or_default();
    let project = ProjectId::parse(path).map_err(|e| Refusal::InvalidRequest(format!("projectId: {e}.")))?;
    if claimed != project.as_str() {
        tracing::warn!(project = %project, "token for another project");
        return Err(Refusal::Forbidden);
    }
    Ok(project)
}

/// The caller's project, if it is not sealed for erasure (410 `project_erased`): one read.
pub async fn project<S: SealStore>(request: &Request, store: &S) -> Result<ProjectId, Refusal> {
    let project = caller(request)?;
    if !erasure::allows(store.erasure(&project).await?.map(|(e, _)| e).as_ref(), erasure::Action::Route) {
        return Err(Refusal::ProjectErased);
    }
    Ok(project)
}

/// The `{platform}` path parameter.
pub fn platform(request: &Request) -> Result<Platform, Refusal> {
    let raw = path_param(request, "platform").unwrap_or_default();
    Platform::from_api(raw).map_err(|_| Refusal::InvalidPlatform(raw.to_owned()))
}

/// The JSON body, if any; `{}` for an empty one.
pub fn json_body(request: &Request) -> Result<serde_json::Value, Refusal> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(bytes) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(Refusal::InvalidRequest("The body must be a JSON object.".into())),
        Err(e) => Err(Refusal::InvalidRequest(format!("The body is not JSON: {e}."))),
    }
}

/// The JSON body as `T`, read strictly (app-api.md): 400 `invalid_request` naming the field of
/// the wrong type (by its path, as `media[0].type`) or the field `T` does not know, before
/// anything is read or written.
pub fn body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, Refusal> {
    fields(json_body(request)?)
}

/// A JSON object as `T`, read strictly (`body`).
pub fn fields<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Refusal> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        Refusal::InvalidRequest(match path.as_str() {
            "." => format!("The body does not fit: {}.", e.inner()),
            // The field's path, then what is wrong with it (an unknown field's path is its own name).
            _ => format!("{path}: {}.", e.inner()),
        })
    })
}

/// A body that carries no fields: `{}`, or nothing.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// Takes what `spend` costs of the project's budgets (`domain::limits::Spend`), from what the
/// route read of them: 429 `rate_limited` when they are spent, nothing written.
pub async fn spend<S: BudgetStore>(
    store: &S,
    project: &ProjectId,
    spend: Spend,
    (seen, limits): (Seen, &Limits),
    now: Timestamp,
) -> Result<(), Refusal> {
    let (item, lanes) = spend.lanes(limits);
    Ok(store.take_budget(project, item, seen, &lanes, now).await??)
}

/// The caller of a read route, once its read is taken from the project's read budget: 429
/// `rate_limited` past it, nothing read. Nothing is read first either: the take assumes a level
/// lane, and a refusal shows what is stored.
pub async fn reader<S: BudgetStore + SealStore>(
    request: &Request,
    store: &S,
    limits: &Limits,
    now: Timestamp,
) -> Result<ProjectId, Refusal> {
    let project = project(request, store).await?;
    spend(store, &project, Spend::Read, (Seen::default(), limits), now).await?;
    Ok(project)
}

/// Runs a route that calls the service within the route's deadline (`deadline::ROUTE_DEADLINE`):
/// its refusals become answers.
pub async fn answer_in_time(
    route: impl std::future::Future<Output = Result<Response<Body>, Refusal>>,
) -> Response<Body> {
    // On the heap: a route's future is large, and a task-local scope around it would otherwise
    // be copied on the worker thread's stack with it.
    answer(crate::deadline::within(crate::deadline::ROUTE_DEADLINE, Box::pin(route)).await)
}

/// Runs a route: its refusals become answers.
pub fn answer(result: Result<Response<Body>, Refusal>) -> Response<Body> {
    result.unwrap_or_else(|refusal| refusal.response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        #[serde(default)]
        names: Option<Vec<String>>,
        #[serde(default)]
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        kind: String,
    }

    fn refused(body: serde_json::Value) -> String {
        match fields::<Body>(body) {
            Err(Refusal::InvalidRequest(why)) => why,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_body_is_read_strictly_naming_the_field_that_does_not_fit() {
        assert_eq!(refused(json!({"names": "x"})), "names: invalid type: string \"x\", expected a sequence.");
        assert!(refused(json!({"items": [{"kind": 7}]})).starts_with("items[0].kind: invalid type: integer `7`"));
        assert!(refused(json!({"nmes": []})).contains("unknown field `nmes`, expected `names` or `items`"));
        assert!(refused(json!({"items": [{"kind": "a", "alt": 1}]})).starts_with("items[0].alt: unknown field `alt`"));
        assert!(fields::<Body>(json!({})).is_ok() && fields::<NoFields>(json!({})).is_ok());
        assert!(matches!(fields::<NoFields>(json!({"x": 1})), Err(Refusal::InvalidRequest(_))));
    }

    #[test]
    fn the_services_retry_after_is_passed_on_at_most_five_minutes() {
        let refusal = |retry_after| Refusal::from(PublisherError::Unavailable { retry_after, reason: "429".into() });
        assert_eq!(refusal(Some(86_400)), Refusal::PublisherUnavailable { retry_after: MAX_RETRY_AFTER });
        assert_eq!(refusal(Some(12)), Refusal::PublisherUnavailable { retry_after: 12 });
        assert_eq!(refusal(None), Refusal::PublisherUnavailable { retry_after: DEFAULT_RETRY_AFTER });
        let response = refusal(Some(86_400)).response();
        assert_eq!(response.headers()["retry-after"], "300");
    }

    fn request(claims: Option<serde_json::Value>) -> Request {
        let authorizer = claims.map(|c| json!({"jwt": {"claims": c, "scopes": null}}));
        let event = json!({
            "version": "2.0", "routeKey": "GET /projects/{projectId}/connections", "rawPath": "/projects/p1/connections",
            "rawQueryString": "", "headers": {}, "pathParameters": {"projectId": "p1"}, "isBase64Encoded": false,
            "requestContext": {"http": {"method": "GET", "path": "/projects/p1/connections"}, "authorizer": authorizer,
                               "routeKey": "GET /projects/{projectId}/connections", "stage": "$default"},
        });
        lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event")
    }

    #[test]
    fn the_caller_is_the_verified_project_claim_and_nothing_else() {
        assert_eq!(caller(&request(Some(json!({"project_id": "p1"})))).map(|p| p.to_string()), Ok("p1".to_owned()));
        assert_eq!(caller(&request(Some(json!({"project_id": "p2"})))), Err(Refusal::Forbidden));
        assert_eq!(
            caller(&request(Some(json!({"sub": "user"})))),
            Err(Refusal::Forbidden),
            "claims without project_id"
        );
        assert_eq!(caller(&request(None)), Err(Refusal::Unauthorized));
    }

    #[test]
    fn an_item_too_large_is_the_callers_400_not_a_503() {
        assert_eq!(Refusal::from(StoreError::TooLarge).response().status(), 400);
        assert_eq!(Refusal::from(StoreError::Unavailable("x".into())).response().status(), 503);
    }
}
