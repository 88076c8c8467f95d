//! Plays API Gateway's HTTP API JWT authorizer, and the identity provider in front of it.
//!
//! The authorizer ([`Authorizer`]) takes `Authorization: Bearer <JWT>` (or the bare token), and
//! verifies it as AWS does: an asymmetric algorithm (RS256/384/512, ES256/384), a `kid` naming a
//! key of the issuer's JWKS (found from its OpenID discovery document, or `LOCAL_JWKS_URL`, or a
//! file), the signature, `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, and `nbf`
//! and `iat` when present. Any failure is 401 with API Gateway's own body; the claims of a token
//! that passes are handed on as strings, as API Gateway does. A `kid` it does not know makes it
//! read the JWKS again (at most every [`REFETCH_INTERVAL`]), so a key rotation needs no restart.
//!
//! The issuer ([`Issuer`]) is `make run`'s and the tests' identity provider: an RSA key pair, its
//! JWKS and discovery document served on loopback, and tokens minted with RS256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 5;
/// An unknown `kid` reads the JWKS again at most this often (a flood of made-up kids cannot make
/// the gateway hammer the issuer).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// The algorithms API Gateway's JWT authorizer takes: asymmetric only, never a shared secret.
pub const ALGORITHMS: [Algorithm; 5] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::ES256, Algorithm::ES384];

/// Where the authorizer finds the issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    /// The issuer's discovery document names it (`{issuer}/.well-known/openid-configuration`).
    Discovered,
    /// `LOCAL_JWKS_URL`.
    Url(String),
    /// `LOCAL_JWKS_FILE`, read again like a URL.
    File(std::path::PathBuf),
}

/// What a token must show, as the deployed authorizer is configured (`JwtIssuer`, `JwtAudience`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub issuer: String,
    pub audience: String,
    pub jwks: Jwks,
}

/// Why a token was refused: logged by the gateway (never the token), answered 401 alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no Authorization header")]
    Missing,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("algorithm {0} is not an asymmetric one the authorizer takes")]
    Algorithm(String),
    #[error("the token names no key (kid)")]
    NoKeyId,
    #[error("key {0:?} is in no JWKS of the issuer")]
    UnknownKey(String),
    #[error("the issuer's JWKS could not be read: {0}")]
    JwksUnavailable(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience (aud, or client_id without aud)")]
    WrongAudience,
    #[error("a required claim is missing or malformed: {0}")]
    Claim(String),
}

struct Cached {
    keys: JwkSet,
    read_at: Option<Instant>,
}

/// The JWT authorizer: its settings and the keys last read from the issuer.
#[derive(Clone)]
pub struct Authorizer {
    expect: Expect,
    refetch_interval: Duration,
    cached: Arc<RwLock<Cached>>,
    /// One reader of the JWKS at a time.
    reading: Arc<tokio::sync::Mutex<()>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("expect", &self.expect).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Authorizer {
    pub fn new(expect: Expect) -> Authorizer {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client with rustls builds");
        Authorizer {
            expect,
            refetch_interval: REFETCH_INTERVAL,
            cached: Arc::new(RwLock::new(Cached { keys: JwkSet { keys: Vec::new() }, read_at: None })),
            reading: Arc::new(tokio::sync::Mutex::new(())),
            http,
        }
    }

    /// The same, reading the JWKS again for an unknown `kid` at most this often.
    pub fn with_refetch_interval(self, refetch_interval: Duration) -> Authorizer {
        Authorizer { refetch_interval, ..self }
    }

    pub fn expect(&self) -> &Expect {
        &self.expect
    }

    /// The verified claims, as strings, or why the token is refused.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<HashMap<String, String>, Refused> {
        let raw = headers.get("authorization").ok_or(Refused::Missing)?.to_str().map_err(|_| Refused::Malformed)?;
        let token = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refused::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(Refused::NoKeyId)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.validate_aud = false; // `aud`, or `client_id` without one: checked below
        validation.set_issuer(&[&self.expect.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => Refused::BadSignature,
                ErrorKind::ExpiredSignature => Refused::Expired,
                ErrorKind::ImmatureSignature => Refused::NotYetValid,
                ErrorKind::InvalidIssuer => Refused::WrongIssuer,
                ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => Refused::Claim(c.clone()),
                ErrorKind::InvalidAlgorithm => Refused::Algorithm(format!("{:?} for this key", header.alg)),
                _ => Refused::Malformed,
            }
        })?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_i64().ok_or_else(|| Refused::Claim("iat".into()))?;
            if iat > now() + LEEWAY_SECONDS as i64 {
                return Err(Refused::NotYetValid);
            }
        }
        let audience = &self.expect.audience;
        let for_us = match (claims.get("aud"), claims.get("client_id")) {
            (Some(Value::String(aud)), _) => aud == audience,
            (Some(Value::Array(auds)), _) => auds.iter().any(|a| a.as_str() == Some(audience)),
            (Some(_), _) => false,
            (None, Some(Value::String(client))) => client == audience,
            (None, _) => false,
        };
        if !for_us {
            return Err(Refused::WrongAudience);
        }
        Ok(claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect())
    }

    /// The issuer's key `kid`, reading the JWKS again when it is not known (a rotation).
    async fn key(&self, kid: &str) -> Result<DecodingKey, Refused> {
        if let Some(key) = self.known(kid) {
            return key;
        }
        let _one = self.reading.lock().await;
        if let Some(key) = self.known(kid) {
            return key; // another request read it meanwhile
        }
        let recent = self.cached.read().expect("lock").read_at.is_some_and(|at| at.elapsed() < self.refetch_interval);
        if recent {
            return Err(Refused::UnknownKey(kid.to_owned()));
        }
        let keys = self.read_jwks().await;
        let mut cached = self.cached.write().expect("lock");
        cached.read_at = Some(Instant::now());
        cached.keys = keys.map_err(Refused::JwksUnavailable)?;
        drop(cached);
        self.known(kid).unwrap_or_else(|| Err(Refused::UnknownKey(kid.to_owned())))
    }

    fn known(&self, kid: &str) -> Option<Result<DecodingKey, Refused>> {
        let cached = self.cached.read().expect("lock");
        let jwk = cached.keys.find(kid)?;
        Some(DecodingKey::from_jwk(jwk).map_err(|_| Refused::UnknownKey(kid.to_owned())))
    }

    async fn read_jwks(&self) -> Result<JwkSet, String> {
        let text = match &self.expect.jwks {
            Jwks::File(path) => std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            Jwks::Url(url) => self.get(url).await?,
            Jwks::Discovered => {
                let discovery =
                    format!("{}/.well-known/openid-configuration", self.expect.issuer.trim_end_matches('/'));
                let document: Value = serde_json::from_str(&self.get(&discovery).await?)
                    .map_err(|e| format!("{discovery} is not JSON: {e}"))?;
                let url = document["jwks_uri"].as_str().ok_or_else(|| format!("{discovery} names no jwks_uri"))?;
                self.get(url).await?
            }
        };
        serde_json::from_str(&text).map_err(|e| format!("not a JWKS: {e}"))
    }

    async fn get(&self, url: &str) -> Result<String, String> {
        let answer = self.http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("{url}: {}", answer.status()));
        }
        answer.text().await.map_err(|e| format!("{url}: {e}"))
    }
}

/// An RSA signing key of the development issuer, with the `kid` its JWKS names it by.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    /// The public half, as a JWK.
    pub jwk: Value,
    /// The private key, PKCS#8 PEM (what `make run` keeps under `LOCAL_DATA_DIR`).
    pub pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new RSA 2048 key.
    pub fn generate() -> SigningKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8 of a new key");
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        SigningKey::from_pem(&pem).expect("a key just made reads back")
    }

    /// A key kept as PKCS#8 PEM; its `kid` is its JWK thumbprint's start, so the same key keeps its name.
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        let parsed = pem::parse(pem).map_err(|e| format!("not PEM: {e}"))?;
        let pair = KeyPair::from_pkcs8(parsed.contents()).map_err(|e| format!("not an RSA private key: {e}"))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let kid = {
            use sha2::Digest;
            // RFC 7638's thumbprint members, in their order.
            let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))[..16].to_owned()
        };
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("not an RSA key: {e}"))?;
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(SigningKey { kid, encoding, jwk, pem: pem.to_owned() })
    }

    /// A token of these claims, RS256, naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("RS256 signing does not fail")
    }
}

/// The development identity provider: its issuer URL (where it serves its discovery document and
/// JWKS), the audience it issues for, and its keys, newest first (the JWKS lists them all, so a
/// token of the key before a rotation verifies until it expires).
#[derive(Clone, Debug)]
pub struct Issuer {
    pub url: String,
    pub audience: String,
    keys: Arc<Mutex<Vec<SigningKey>>>,
}

pub use shared::handlers::app::DEFAULT_PROJECT_CLAIM;

impl Issuer {
    pub fn new(url: &str, audience: &str, key: SigningKey) -> Issuer {
        Issuer {
            url: url.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            keys: Arc::new(Mutex::new(vec![key])),
        }
    }

    /// A token for `project` (under `claim`), valid for `ttl_seconds`, as the app's sign-in gives.
    pub fn token_for(&self, claim: &str, project: &str, ttl_seconds: i64) -> String {
        let now = now();
        self.mint(&json!({"sub": "local-user", claim: project, "iat": now, "exp": now + ttl_seconds}))
    }

    /// A token of exactly these claims, plus `iss` and `aud` unless given, signed by the newest key.
    pub fn mint(&self, claims: &Value) -> String {
        let mut claims = claims.clone();
        if claims.get("iss").is_none() {
            claims["iss"] = self.url.clone().into();
        }
        if claims.get("aud").is_none() && claims.get("client_id").is_none() {
            claims["aud"] = self.audience.clone().into();
        }
        self.keys.lock().expect("lock")[0].sign(&claims)
    }

    /// A new key, first in the JWKS from now on (the old ones stay listed).
    pub fn rotate(&self) -> SigningKey {
        let key = SigningKey::generate();
        self.keys.lock().expect("lock").insert(0, key.clone());
        key
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.lock().expect("lock").iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.url),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        })
    }

    /// What the gateway's authorizer is configured with to take this issuer's tokens.
    pub fn expect(&self) -> Expect {
        Expect { issuer: self.url.clone(), audience: self.audience.clone(), jwks: Jwks::Discovered }
    }

    /// Serves the discovery document, the JWKS, and `GET /token?project_id=…[&ttl=seconds]` (a
    /// development sign-in) on `listener`, until the task is dropped.
    pub fn serve(
        &self,
        listener: tokio::net::TcpListener,
        project_claim: &str,
    ) -> tokio::task::JoinHandle<std::io::Result<()>> {
        use axum::extract::Query;
        use axum::routing::get;
        let (discovery, jwks, mint) = (self.clone(), self.clone(), self.clone());
        let claim = project_claim.to_owned();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery.discovery()) }))
            .route("/.well-known/jwks.json", get(move || async move { axum::Json(jwks.jwks()) }))
            .route(
                "/token",
                get(move |Query(query): Query<HashMap<String, String>>| async move {
                    let project = query.get(&claim).or_else(|| query.get("project")).cloned().unwrap_or_default();
                    if project.is_empty() {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            format!("name the project: /token?{claim}=proj_demo\n"),
                        );
                    }
                    let ttl = query.get("ttl").and_then(|t| t.parse().ok()).unwrap_or(3600);
                    (axum::http::StatusCode::OK, mint.token_for(&claim, &project, ttl))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        headers
    }

    fn now() -> i64 {
        super::now()
    }

    async fn issuer_and_authorizer() -> (Issuer, Authorizer) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = Issuer::new(&url, "stacc-app", SigningKey::generate());
        issuer.serve(listener, DEFAULT_PROJECT_CLAIM);
        let authorizer = Authorizer::new(issuer.expect());
        (issuer, authorizer)
    }

    #[tokio::test]
    async fn a_token_is_verified_as_api_gateways_jwt_authorizer_verifies_it() {
        let (issuer, authorizer) = issuer_and_authorizer().await;
        let good = issuer.token_for("project_id", "p", 60);
        assert_eq!(authorizer.verify(&bearer(&good)).await.unwrap()["project_id"], "p");
        let base = json!({"project_id": "p", "exp": now() + 60, "iat": now()});
        let with = |extra: Value| {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            claims
        };
        let hs256 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &with(json!({"iss": issuer.url, "aud": "stacc-app"})),
            &EncodingKey::from_secret(b"shared"),
        )
        .unwrap();
        let stranger = SigningKey::generate();
        let mut impostor = stranger.clone();
        impostor.kid = issuer.keys.lock().unwrap()[0].kid.clone();
        let unsigned = {
            let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let body = URL_SAFE_NO_PAD.encode(with(json!({"iss": issuer.url, "aud": "stacc-app"})).to_string());
            format!("{head}.{body}.")
        };
        let cases = [
            (hs256, "an HS256 token"),
            (issuer.mint(&with(json!({"aud": "another-app"}))), "a wrong aud"),
            (issuer.mint(&with(json!({"iss": "https://other.example"}))), "a wrong iss"),
            (issuer.mint(&with(json!({"exp": now() - 60}))), "an expired token"),
            (issuer.mint(&with(json!({"nbf": now() + 600}))), "a token not valid yet (nbf)"),
            (issuer.mint(&with(json!({"iat": now() + 600}))), "a token issued in the future"),
            (issuer.mint(&json!({"project_id": "p", "iat": now()})), "a token without exp"),
            (
                impostor.sign(&with(json!({"iss": issuer.url, "aud": "stacc-app"}))),
                "a key in no JWKS, under a known kid",
            ),
            (stranger.sign(&with(json!({"iss": issuer.url, "aud": "stacc-app"}))), "an unknown kid"),
            (unsigned, "an unsigned token"),
            ("garbage".to_owned(), "garbage"),
        ];
        for (token, what) in cases {
            assert!(authorizer.verify(&bearer(&token)).await.is_err(), "{what} was taken");
        }
        assert_eq!(authorizer.verify(&HeaderMap::new()).await, Err(Refused::Missing));
        // client_id stands for aud only where there is no aud (Cognito's access tokens)
        let client = issuer.mint(&json!({"project_id": "p", "exp": now() + 60, "client_id": "stacc-app"}));
        assert!(authorizer.verify(&bearer(&client)).await.is_ok());
    }

    #[tokio::test]
    async fn a_rotated_key_is_taken_without_a_restart() {
        let (issuer, authorizer) = issuer_and_authorizer().await;
        let authorizer = authorizer.with_refetch_interval(Duration::ZERO);
        let before = issuer.token_for("project_id", "p", 60);
        assert!(authorizer.verify(&bearer(&before)).await.is_ok());
        issuer.rotate();
        let after = issuer.token_for("project_id", "p", 60);
        assert!(authorizer.verify(&bearer(&after)).await.is_ok(), "a new kid reads the JWKS again");
        assert!(authorizer.verify(&bearer(&before)).await.is_ok(), "the old key is still listed");
    }

    #[test]
    fn a_kept_key_reads_back_with_the_same_kid() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pem(&key.pem).unwrap();
        assert_eq!((again.kid.clone(), again.jwk.clone()), (key.kid.clone(), key.jwk.clone()));
    }
}
