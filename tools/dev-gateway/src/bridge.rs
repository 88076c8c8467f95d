//! Turns a plain HTTP request into the event API Gateway (HTTP API, payload 2.0) or a function
//! URL would send, parsed by `lambda_http` exactly as in Lambda, and the handler's response back.

use std::collections::HashMap;

use axum::body::{Body as AxumBody, to_bytes};
use axum::http::{Request as HttpRequest, Response as HttpResponse};
use base64::Engine;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// Largest body the gateway reads (a function URL accepts 6 MB).
const MAX_GATEWAY_BODY: usize = 6 * 1024 * 1024;

/// What API Gateway adds to the raw request: the matched route, path parameters, and the
/// verified JWT claims (none for a function URL).
#[derive(Debug, Clone, Default)]
pub struct RouteContext {
    pub route_key: String,
    pub path_parameters: HashMap<String, String>,
    pub jwt_claims: Option<HashMap<String, String>>,
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| ct.starts_with("text/") || ct.contains("json") || ct.contains("xml"))
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("the body is over the gateway's 6 MB limit")]
    TooLarge,
    #[error("unreadable request: {0}")]
    Malformed(String),
}

impl BridgeError {
    /// The answer API Gateway would give.
    pub fn response(&self) -> Response<Body> {
        match self {
            BridgeError::TooLarge => shared::handlers::http::error(413, "payload_too_large", &self.to_string()),
            BridgeError::Malformed(_) => shared::handlers::http::error(400, "invalid_request", &self.to_string()),
        }
    }
}

/// Builds the Lambda event JSON for `request`, then parses it with `lambda_http`.
pub async fn to_lambda(request: HttpRequest<AxumBody>, route: RouteContext) -> Result<Request, BridgeError> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_GATEWAY_BODY).await.map_err(|_| BridgeError::TooLarge)?;
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if let Ok(v) = value.to_str() {
            // Like API Gateway, repeated headers are joined with commas.
            let entry = headers.entry(name.as_str().to_owned()).or_insert_with(|| Value::String(String::new()));
            if let Value::String(existing) = entry {
                if !existing.is_empty() {
                    existing.push(',');
                }
                existing.push_str(v);
            }
        }
    }
    let content_type = parts.headers.get("content-type").and_then(|v| v.to_str().ok());
    // Function URLs pass text as is and base64-encode anything else.
    let (body, base64) = match std::str::from_utf8(&bytes) {
        _ if bytes.is_empty() => (Value::Null, false),
        Ok(text) if is_text(content_type) => (Value::String(text.to_owned()), false),
        _ => (Value::String(base64::engine::general_purpose::STANDARD.encode(&bytes)), true),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut context = json!({
        "accountId": "anonymous",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "requestId": uuid_like(now),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.unix_timestamp().to_string(),
        "timeEpoch": now.unix_timestamp() * 1000,
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
        },
    });
    if let Some(claims) = route.jwt_claims {
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    let event = json!({
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "pathParameters": route.path_parameters,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": base64,
    });
    lambda_http::request::from_str(&event.to_string()).map_err(|e| BridgeError::Malformed(e.to_string()))
}

fn uuid_like(now: time::OffsetDateTime) -> String {
    format!("local-{}", now.unix_timestamp_nanos())
}

/// The handler's response, as API Gateway would send it on.
pub fn from_lambda(response: Response<Body>) -> HttpResponse<AxumBody> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    HttpResponse::from_parts(parts, AxumBody::from(bytes))
}
