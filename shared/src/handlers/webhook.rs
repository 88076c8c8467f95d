//! Webhook receipt: verify the raw bytes, parse, apply with the event id taken in the same
//! write, and hand what cannot be applied now to the retry queue. Never calls the service.

use lambda_http::{Body, Request, Response};
use serde_json::json;
use tracing::Instrument;

use super::{events, http};
use crate::domain::event::{Action, EventParser, WebhookEvent};
use crate::domain::{EventId, Timestamp};
use crate::metrics::{self, Metric};
use crate::ports::{Clock, EventStore, Outcome, RetryMessage, RetryQueue};
use crate::signature::WebhookKeys;

/// Bodies above this are refused unread.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-zernio-signature", "x-late-signature"];
/// How long applying may take before the event goes to the retry queue instead: the service counts
/// a delivery only if answered within 5 seconds, and a slow store must give `queued`, not a timeout.
pub const APPLY_BUDGET: std::time::Duration = std::time::Duration::from_millis(2500);

/// Everything the webhook needs, built once per process.
pub struct Webhook<S, Q, C> {
    pub store: S,
    pub queue: Q,
    pub clock: C,
    pub secrets: WebhookKeys,
    /// The vendor's webhook format.
    pub parse: EventParser,
}

fn status(word: &str) -> Response<Body> {
    http::json(200, &json!({ "status": word }))
}

impl<S: EventStore, Q: RetryQueue, C: Clock> Webhook<S, Q, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != lambda_http::http::Method::POST {
            let mut refused =
                http::error(405, "method_not_allowed", "Webhooks are delivered with POST; nothing was stored.");
            refused.headers_mut().insert("allow", lambda_http::http::HeaderValue::from_static("POST"));
            return refused;
        }
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return http::error(413, "payload_too_large", "The body is over 1 MiB; nothing was stored.");
        }
        let signature = SIGNATURE_HEADERS.iter().find_map(|h| request.headers().get(*h)).and_then(|v| v.to_str().ok());
        let verified = match signature {
            Some(sig) => self.secrets.verify(body, sig).await,
            None => false,
        };
        if !verified {
            tracing::warn!(has_signature = signature.is_some(), "webhook refused: signature missing or wrong");
            metrics::count(Metric::SignaturesRefused, 1);
            return http::error(
                401,
                "invalid_signature",
                "The signature is missing or does not match; nothing was stored.",
            );
        }
        let received_at = self.clock.now();
        let event = match (self.parse)(body, received_at) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "webhook refused: not an event");
                return http::error(
                    400,
                    "invalid_event",
                    &format!("The body is not a webhook event ({e}); nothing was stored."),
                );
            }
        };
        let span = tracing::info_span!("webhook", event_id = %event.id, event = %event.name);
        self.apply(event, received_at, body).instrument(span).await
    }

    /// Applies a verified event, or queues it; every log line carries its id (the span).
    async fn apply(&self, event: WebhookEvent, received_at: Timestamp, body: &[u8]) -> Response<Body> {
        if let Action::Ignore(reason) = event.action {
            tracing::info!(reason = reason.as_str(), "event ignored");
            metrics::count(Metric::EventsIgnored, 1);
            return status("ignored");
        }
        let applied = tokio::time::timeout(APPLY_BUDGET, events::apply(&self.store, &event, received_at)).await;
        // Past the budget the write may or may not have landed: queued, it is applied once either way.
        let applied =
            applied.unwrap_or_else(|_| Err(crate::ports::StoreError::Unavailable("over the time budget".into())));
        match applied {
            Ok(Outcome::Applied { changed }) => {
                tracing::info!(changed, "event processed");
                metrics::count(Metric::EventsProcessed, 1);
                status("processed")
            }
            Ok(Outcome::Duplicate) => {
                tracing::info!("event already taken");
                metrics::count(Metric::EventsDuplicate, 1);
                status("duplicate")
            }
            Ok(Outcome::Ignored) => {
                tracing::info!("event ignored: no project for its profile");
                metrics::count(Metric::EventsIgnored, 1);
                status("ignored")
            }
            Ok(Outcome::Deferred) => self.queue(event.id, received_at, body, "not applicable yet").await,
            Err(e) => self.queue(event.id, received_at, body, &e.to_string()).await,
        }
    }

    async fn queue(&self, event_id: EventId, received_at: Timestamp, body: &[u8], why: &str) -> Response<Body> {
        // The body verified and parsed as JSON, so it is UTF-8.
        let message = RetryMessage { event_id, received_at, body: String::from_utf8_lossy(body).into_owned() };
        match self.queue.enqueue(&message).await {
            Ok(()) => {
                tracing::warn!(why, "event queued for retry");
                metrics::count(Metric::EventsQueued, 1);
                status("queued")
            }
            Err(e) => {
                tracing::error!(why, error = %e, "event neither applied nor queued; the service will deliver it again");
                http::error(500, "internal", "The event could not be stored now; deliver it again.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::connection::ConnectionEvidence;
    use crate::domain::{PostId, PostReport, ProfileId, ProjectId};
    use crate::ports::{QueueError, StoreError, SystemClock};
    use crate::signature::WebhookSecrets;

    /// A store that answers only after the service would have given up.
    struct Slow;

    impl EventStore for Slow {
        async fn apply_post_report(
            &self,
            _: &EventId,
            _: &ProjectId,
            _: &PostId,
            _: &PostReport,
            _: Timestamp,
        ) -> Result<Outcome, StoreError> {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok(Outcome::Applied { changed: true })
        }
        async fn apply_account_news(
            &self,
            _: &EventId,
            _: &ProfileId,
            _: &ConnectionEvidence,
            _: Timestamp,
        ) -> Result<Outcome, StoreError> {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok(Outcome::Applied { changed: true })
        }
    }

    #[derive(Default)]
    struct Kept(Mutex<Vec<RetryMessage>>);

    impl RetryQueue for Kept {
        async fn enqueue(&self, message: &RetryMessage) -> Result<(), QueueError> {
            self.0.lock().expect("queue").push(message.clone());
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_gives_queued_within_the_services_budget_not_a_timeout() {
        let secrets = WebhookSecrets::from_list("s");
        let webhook = Webhook {
            store: Slow,
            queue: Kept::default(),
            clock: SystemClock,
            secrets: secrets.into(),
            parse: crate::wiring::WEBHOOK_FORMAT,
        };
        let body = r#"{"id":"evt_slow","event":"account.connected","account":{"accountId":"a","profileId":"p","platform":"twitter"}}"#;
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = lambda_http::http::Method::POST;
        let signature = crate::signature::sign("s", body.as_bytes());
        request.headers_mut().insert("x-zernio-signature", signature.parse().unwrap());
        let started = tokio::time::Instant::now();
        let answer = webhook.handle(request).await;
        assert!(started.elapsed() <= APPLY_BUDGET + std::time::Duration::from_millis(10));
        assert_eq!(answer.body().as_ref(), br#"{"status":"queued"}"#);
        assert_eq!(webhook.queue.0.lock().unwrap()[0].event_id.as_str(), "evt_slow");
    }
}
