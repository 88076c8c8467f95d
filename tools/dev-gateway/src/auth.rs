//! Plays API Gateway's JWT authorizer: verifies `Authorization: Bearer <JWT>` (HS256,
//! `LOCAL_JWT_SECRET`; `exp` required, `nbf` checked, the issuer and audience when configured, at
//! most a few seconds of leeway) and hands on the claims as strings, as API Gateway does.

use std::collections::HashMap;

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::Value;

/// What a token must show, as the deployed authorizer is configured.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub secret: String,
    /// `iss` must be this, when set (`LOCAL_JWT_ISSUER`).
    pub issuer: Option<String>,
    /// `aud` must include this, when set (`LOCAL_JWT_AUDIENCE`).
    pub audience: Option<String>,
}

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 5;

/// The verified claims, or `None` for a missing, bad or expired token.
pub fn verify(headers: &HeaderMap, expect: &Expect) -> Option<HashMap<String, String>> {
    let token = headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let secret = &expect.secret;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &expect.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &expect.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn the_issuer_audience_and_expiry_are_checked_as_the_authorizer_would() {
        let expect =
            Expect { secret: "k".into(), issuer: Some("https://id.example".into()), audience: Some("stacc".into()) };
        let good = json!({"project_id": "p", "exp": now() + 60, "iss": "https://id.example", "aud": "stacc"});
        assert_eq!(verify(&bearer(&token("k", &good)), &expect).unwrap()["project_id"], "p");
        for bad in [
            json!({"project_id": "p", "exp": now() + 60, "iss": "https://other.example", "aud": "stacc"}),
            json!({"project_id": "p", "exp": now() + 60, "iss": "https://id.example", "aud": "other"}),
            json!({"project_id": "p", "exp": now() + 60, "aud": "stacc"}),
            json!({"project_id": "p", "exp": now() - 30, "iss": "https://id.example", "aud": "stacc"}),
            json!({"project_id": "p", "iss": "https://id.example", "aud": "stacc"}),
        ] {
            assert!(verify(&bearer(&token("k", &bad)), &expect).is_none(), "{bad}");
        }
        assert!(verify(&bearer(&token("other key", &good)), &expect).is_none());
    }
}
