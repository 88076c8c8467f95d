//! What every app route shares: the caller from the verified claims, path parameters parsed at
//! the edge, and one mapping from refusals to answers.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use super::http;
use crate::domain::{Platform, ProjectId};
use crate::ports::{PublisherError, StoreError};

/// Why a request is refused, each with its stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized,
    Forbidden,
    InvalidPlatform(String),
    InvalidRequest(String),
    NotFound(String),
    PublisherUnavailable { retry_after: u64 },
    StoreUnavailable,
}

/// The `Retry-After` given when the service did not say.
pub const DEFAULT_RETRY_AFTER: u64 = 5;

impl Refusal {
    pub fn response(&self) -> Response<Body> {
        match self {
            Refusal::Unauthorized => {
                http::error(401, "unauthorized", "Sign in again: the request carries no verified identity.")
            }
            Refusal::Forbidden => http::error(403, "forbidden", "This token is for another project."),
            Refusal::InvalidPlatform(name) => http::error(
                400,
                "invalid_platform",
                &format!("Unknown platform {name:?}: use instagram, facebook, linkedin or x."),
            ),
            Refusal::InvalidRequest(why) => http::error(400, "invalid_request", why),
            Refusal::NotFound(what) => http::error(404, "not_found", what),
            Refusal::PublisherUnavailable { retry_after } => {
                let mut response = http::error(
                    503,
                    "publisher_unavailable",
                    "The publishing service could not be reached; nothing was changed. Try again in a moment.",
                );
                response.headers_mut().insert("retry-after", (*retry_after).into());
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
        tracing::warn!(error = %e, "publishing service call failed");
        crate::metrics::count(crate::metrics::Metric::PublisherErrors, 1);
        match e {
            PublisherError::Unavailable { retry_after, .. } => {
                Refusal::PublisherUnavailable { retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER) }
            }
            // An answer we cannot use is, for the user, the service not working right now.
            PublisherError::Refused { .. } => Refusal::PublisherUnavailable { retry_after: DEFAULT_RETRY_AFTER },
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store call failed");
        Refusal::StoreUnavailable
    }
}

/// A path parameter, by name.
pub fn path_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.path_parameters_ref().and_then(|p| p.first(name))
}

/// The project the caller may act on: the verified `project_id` claim, which must be the path's.
pub fn caller(request: &Request) -> Result<ProjectId, Refusal> {
    let claims = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims)
        }
        _ => None,
    };
    let claimed = claims.and_then(|c| c.get("project_id")).ok_or(Refusal::Unauthorized)?;
    let path = path_param(request, "projectId").unwrap_or_default();
    let project = ProjectId::parse(path).map_err(|e| Refusal::InvalidRequest(format!("projectId: {e}.")))?;
    if claimed != project.as_str() {
        tracing::warn!(project = %project, "token for another project");
        return Err(Refusal::Forbidden);
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

/// Runs a route: its refusals become answers.
pub fn answer(result: Result<Response<Body>, Refusal>) -> Response<Body> {
    result.unwrap_or_else(|refusal| refusal.response())
}
