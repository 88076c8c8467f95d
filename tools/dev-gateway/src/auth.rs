//! Plays API Gateway's JWT authorizer: verifies `Authorization: Bearer <JWT>` (HS256,
//! `LOCAL_JWT_SECRET`, `exp` checked) and hands on the claims as strings, as API Gateway does.

use std::collections::HashMap;

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::Value;

/// The verified claims, or `None` for a missing, bad or expired token.
pub fn verify(headers: &HeaderMap, secret: &str) -> Option<HashMap<String, String>> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_aud = false;
    let data =
        decode::<HashMap<String, Value>>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation).ok()?;
    Some(
        data.claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
    )
}

/// Makes a token the way the app's identity provider would (for tests and trying things out).
pub fn token(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing does not fail")
}
