//! The retry worker: applies queued events with the same code as the webhook and reports the
//! messages that still failed, one by one, so only those are delivered again.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::events;
use crate::adapters::zernio::webhook::parse_event;
use crate::ports::{Clock, EventStore, Outcome, RetryMessage};

pub struct RetryWorker<S, C> {
    pub store: S,
    /// "Now" is when a message is processed: a redrive days later never moves `updated_at` back.
    pub clock: C,
}

impl<S: EventStore, C: Clock> RetryWorker<S, C> {
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in batch.records {
            let id = record.message_id.clone().unwrap_or_default();
            if !self.apply(record.body.as_deref().unwrap_or_default(), &id).await {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// True when the message is done with (applied, a duplicate, or nothing to apply it to).
    async fn apply(&self, body: &str, message_id: &str) -> bool {
        let message: RetryMessage = match serde_json::from_str(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(message_id, error = %e, "retry message unreadable; left for the dead-letter queue");
                return false;
            }
        };
        let event = match parse_event(message.body.as_bytes(), Some(message.event_id.as_str()), message.received_at) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(message_id, event_id = %message.event_id, error = %e, "queued event unreadable");
                return false;
            }
        };
        match events::apply(&self.store, &event, self.clock.now()).await {
            Ok(Outcome::Applied { .. } | Outcome::Duplicate | Outcome::Ignored) => {
                tracing::info!(message_id, event_id = %event.id, "queued event applied");
                true
            }
            Ok(Outcome::Deferred) => {
                tracing::warn!(message_id, event_id = %event.id, "queued event still not applicable");
                false
            }
            Err(e) => {
                tracing::warn!(message_id, event_id = %event.id, error = %e, "queued event failed again");
                false
            }
        }
    }
}
