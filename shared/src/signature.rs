//! The service signs each webhook body: lowercase hex HMAC-SHA256 of the raw bytes.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The secrets a signature may be made with: the current one and any being rotated out.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<Vec<u8>>);

impl WebhookSecrets {
    /// From a comma-separated list; blanks are dropped.
    pub fn from_list(list: &str) -> Self {
        Self(list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `signature_hex` is the HMAC of `body` under any of the secrets. The comparison
    /// is constant-time (`verify_slice`).
    pub fn verify(&self, body: &[u8], signature_hex: &str) -> bool {
        let Ok(signature) = hex::decode(signature_hex.trim()) else {
            return false;
        };
        self.0.iter().any(|secret| {
            let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&signature).is_ok()
        })
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets({} redacted)", self.0.len())
    }
}

/// Signs a body the way the service does (for the simulator, samples and tests).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_secret_and_nothing_else() {
        let secrets = WebhookSecrets::from_list("new-secret, old-secret");
        let body = br#"{"event":"webhook.test"}"#;
        assert!(secrets.verify(body, &sign("new-secret", body)));
        assert!(secrets.verify(body, &sign("old-secret", body)));
        assert!(!secrets.verify(body, &sign("retired-secret", body)));
        assert!(!secrets.verify(b"tampered", &sign("new-secret", body)));
        assert!(!secrets.verify(body, "not hex"));
        assert!(!secrets.verify(body, ""));
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        assert!(!format!("{:?}", WebhookSecrets::from_list("s3cret")).contains("s3cret"));
    }
}
