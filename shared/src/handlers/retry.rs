//! The retry worker: applies queued events with the same code as the webhook and reports the
//! messages that still failed, one by one, so only those are delivered again.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use super::events;
use crate::adapters::zernio::webhook::parse_event;
use crate::ports::{Clock, EventStore, Outcome, RetryMessage};

pub struct RetryWorker<S, C> {
    pub store: S,
    /// "Now" is when a message is processed: a redrive days later never moves `updated_at` back.
    pub clock: C,
}

/// A message is begun only with at least this much time left before the invocation's deadline.
pub const MESSAGE_BUDGET: Duration = Duration::from_secs(3);

/// The invocation's deadline as Lambda gives it (Unix milliseconds), on this process's clock.
pub fn deadline(epoch_ms: u64) -> Instant {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(epoch_ms);
    Instant::now() + at.duration_since(std::time::SystemTime::now()).unwrap_or_default()
}

impl<S: EventStore, C: Clock> RetryWorker<S, C> {
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        self.handle_until(batch, None).await
    }

    /// Handles the batch, leaving the messages it has no time for (before `deadline`) to be
    /// delivered again, reported as failures like any other.
    pub async fn handle_until(&self, batch: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in batch.records {
            let id = record.message_id.clone().unwrap_or_default();
            let in_time = deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= MESSAGE_BUDGET);
            if !in_time {
                tracing::warn!(message_id = %id, "no time left for this message; it will be delivered again");
            }
            if !in_time || !self.apply(&record, &id).await {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// True when the message is done with (applied, a duplicate, or nothing to apply it to).
    async fn apply(&self, record: &SqsMessage, message_id: &str) -> bool {
        let message: RetryMessage = match crate::adapters::sqs::retry_message(record) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::connection::ConnectionEvidence;
    use crate::domain::{EventId, PostId, PostReport, ProfileId, ProjectId, Timestamp};
    use crate::ports::{StoreError, SystemClock};

    /// A store no message may reach.
    struct Untouchable;

    impl EventStore for Untouchable {
        async fn apply_post_report(
            &self,
            _: &EventId,
            _: &ProjectId,
            _: &PostId,
            _: &PostReport,
            _: Timestamp,
        ) -> Result<Outcome, StoreError> {
            panic!("a message begun with no time left")
        }
        async fn apply_account_news(
            &self,
            _: &EventId,
            _: &ProfileId,
            _: &ConnectionEvidence,
            _: Timestamp,
        ) -> Result<Outcome, StoreError> {
            panic!("a message begun with no time left")
        }
    }

    #[tokio::test]
    async fn messages_it_has_no_time_for_are_left_to_be_delivered_again() {
        let worker = RetryWorker { store: Untouchable, clock: SystemClock };
        let mut batch = SqsEvent::default();
        for id in ["m1", "m2"] {
            let mut message = SqsMessage::default();
            message.message_id = Some(id.into());
            message.body = Some("{}".into());
            batch.records.push(message);
        }
        let soon = Instant::now() + MESSAGE_BUDGET / 2;
        let response = worker.handle_until(batch, Some(soon)).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m1", "m2"]);
    }
}
