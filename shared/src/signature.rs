//! The service signs each webhook body: lowercase hex HMAC-SHA256 of the raw bytes.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::reloading::{Reloading, Source};

type HmacSha256 = Hmac<Sha256>;

/// The secrets a signature may be made with: the current one and any being rotated out.
#[derive(Clone, PartialEq, Eq)]
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

/// The secrets a webhook is checked with. When they come from a source, a signature that
/// matches none of them makes the list be read again (at most once per interval), so rotating the
/// secret needs no redeploy: the first event signed with a new secret finds it.
pub struct WebhookKeys(Reloading<WebhookSecrets>);

impl From<WebhookSecrets> for WebhookKeys {
    fn from(secrets: WebhookSecrets) -> Self {
        Self(Reloading::fixed(secrets))
    }
}

impl WebhookKeys {
    pub fn reloading(secrets: WebhookSecrets, interval: Duration, source: Source<WebhookSecrets>) -> Self {
        Self(Reloading::new(secrets, interval, source))
    }

    /// True when the signature matches a known secret, or one the source now lists.
    pub async fn verify(&self, body: &[u8], signature_hex: &str) -> bool {
        if self.0.with(|secrets| secrets.verify(body, signature_hex)) {
            return true;
        }
        if self.0.refresh().await {
            tracing::info!("webhook secrets read again");
            return self.0.with(|secrets| secrets.verify(body, signature_hex));
        }
        false
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

    use std::sync::Arc;

    fn source(list: &'static str, reads: Arc<std::sync::atomic::AtomicUsize>) -> Source<WebhookSecrets> {
        Arc::new(move || {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { Some(WebhookSecrets::from_list(list)) })
        })
    }

    #[tokio::test]
    async fn a_rotated_secret_is_found_by_reading_the_source_again() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let keys = WebhookKeys::reloading(
            WebhookSecrets::from_list("old-secret"),
            Duration::ZERO,
            source("new-secret,old-secret", reads.clone()),
        );
        let body = br#"{"event":"post.published"}"#;
        assert!(keys.verify(body, &sign("old-secret", body)).await);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0, "a known secret needs no read");
        assert!(keys.verify(body, &sign("new-secret", body)).await);
        assert!(!keys.verify(body, &sign("forged", body)).await);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn wrong_signatures_read_the_source_at_most_once_per_interval() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let keys = WebhookKeys::reloading(
            WebhookSecrets::from_list("s1"),
            Duration::from_secs(60),
            source("s2", reads.clone()),
        );
        let body = b"{}";
        for _ in 0..5 {
            assert!(!keys.verify(body, &sign("s2", body)).await, "read at start-up: not again within a minute");
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
        let fixed = WebhookKeys::from(WebhookSecrets::from_list("s1"));
        assert!(fixed.verify(body, &sign("s1", body)).await);
        assert!(!fixed.verify(body, &sign("s2", body)).await);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        assert!(!format!("{:?}", WebhookSecrets::from_list("s3cret")).contains("s3cret"));
    }
}
