//! The retry worker: applies queued events with the same code as the webhook, runs publish
//! follow-ups, and reports the messages that still failed, one by one, so only those are
//! delivered again. A batch's messages run side by side: each has the invocation's whole time, so
//! none is handed back untried (a hand-back counts toward the queue's `maxReceiveCount`, and ten
//! follow-ups one after another, each waiting for a slow service, would outlive the invocation).

use std::time::Duration;

// Tokio's clock: the same as the system's, but one a test can move on.
use tokio::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::events;
use crate::domain::ProjectId;
use crate::domain::event::EventParser;
use crate::ports::{Clock, EventStore, FollowUp, Outcome, QueueReader, Queued, RetryMessage};

pub struct RetryWorker<S, C, F> {
    pub store: S,
    /// "Now" is when a message is processed: a redrive days later never moves `updated_at` back.
    pub clock: C,
    /// The vendor's webhook format.
    pub parse: EventParser,
    /// The queue's message format.
    pub read: QueueReader,
    /// Publish follow-ups.
    pub follow_ups: F,
}

/// Runs one publish follow-up, or one step of a project's erasure: `Ok` when done with, `Err` to
/// be delivered again.
pub trait FollowUps: Send + Sync {
    fn run(&self, follow_up: &FollowUp) -> impl std::future::Future<Output = Result<(), String>> + Send;
    fn erase(&self, project: &ProjectId) -> impl std::future::Future<Output = Result<(), String>> + Send {
        let _ = project;
        std::future::ready(Err("this worker runs no erasures".to_owned()))
    }
}

/// For a worker that is never handed follow-ups: each one is left for the dead-letter queue.
pub struct NoFollowUps;

impl FollowUps for NoFollowUps {
    async fn run(&self, _: &FollowUp) -> Result<(), String> {
        Err("this worker runs no follow-ups".into())
    }
}

/// A message is begun only with at least this much time left before the invocation's deadline.
pub const MESSAGE_BUDGET: Duration = Duration::from_secs(3);

/// The time a message needs: a follow-up waits for the service.
fn budget(queued: &Result<Queued, String>) -> Duration {
    match queued {
        Ok(Queued::FollowUp(_) | Queued::Erase(_)) => FOLLOW_UP_BUDGET,
        _ => MESSAGE_BUDGET,
    }
}

/// A follow-up is begun only with this much time left: the route's wait and a few writes.
pub const FOLLOW_UP_BUDGET: Duration = Duration::from_secs(25);

/// The invocation's deadline as Lambda gives it (Unix milliseconds), on this process's clock.
pub fn deadline(epoch_ms: u64) -> Instant {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(epoch_ms);
    Instant::now() + at.duration_since(std::time::SystemTime::now()).unwrap_or_default()
}

impl<S: EventStore, C: Clock, F: FollowUps> RetryWorker<S, C, F> {
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        self.handle_until(batch, None).await
    }

    /// Handles the batch's messages side by side, leaving one it has no time for (begun too near
    /// `deadline`: only when the invocation itself began late) to be delivered again, reported as
    /// a failure like any other.
    pub async fn handle_until(&self, batch: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        // Each on the heap: ten follow-ups' futures side by side would not fit a worker's stack.
        let runs = batch.records.into_iter().map(|record| {
            Box::pin(async move {
                let id = record.message_id.clone().unwrap_or_default();
                let queued = (self.read)(&record);
                let in_time = deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= budget(&queued));
                if !in_time {
                    tracing::warn!(message_id = %id, "no time left for this message; it will be delivered again");
                }
                let done = in_time && self.apply(queued, &id).await;
                (id, done)
            })
        });
        let mut response = SqsBatchResponse::default();
        for (id, done) in futures::future::join_all(runs).await {
            if !done {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// True when the message is done with (applied, a duplicate, nothing to apply it to, or a
    /// follow-up run).
    async fn apply(&self, queued: Result<Queued, String>, message_id: &str) -> bool {
        let message: RetryMessage = match queued {
            Ok(Queued::Event(m)) => m,
            Ok(Queued::FollowUp(follow_up)) => {
                return match self.follow_ups.run(&follow_up).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(message_id, post = %follow_up.post, error = %e, "follow-up failed; delivered again");
                        false
                    }
                };
            }
            Ok(Queued::Erase(project)) => {
                return match self.follow_ups.erase(&project).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(message_id, project = %project, error = %e, "erasure step failed; delivered again");
                        false
                    }
                };
            }
            Err(e) => {
                tracing::error!(message_id, error = %e, "retry message unreadable; left for the dead-letter queue");
                return false;
            }
        };
        let event = match (self.parse)(message.body.as_bytes(), message.received_at) {
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
    use aws_lambda_events::event::sqs::SqsMessage;

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

    /// Follow-ups that each meet a service taking 25 s, and count how often they were tried.
    struct SlowService {
        tried: std::sync::Mutex<Vec<String>>,
    }

    impl FollowUps for SlowService {
        async fn run(&self, follow_up: &FollowUp) -> Result<(), String> {
            self.tried.lock().unwrap().push(follow_up.post.to_string());
            tokio::time::sleep(Duration::from_secs(25)).await;
            Ok(()) // (the follow-up queues its next try itself, with its delay)
        }
    }

    /// A queue whose every message is a follow-up, its body the follow-up as JSON.
    fn follow_ups_only(message: &SqsMessage) -> Result<Queued, String> {
        serde_json::from_str(message.body.as_deref().unwrap_or_default())
            .map(Queued::FollowUp)
            .map_err(|e| e.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn ten_follow_ups_each_meeting_a_25_s_service_are_each_tried_once_within_the_invocation() {
        // GIVEN a batch of ten follow-ups, and an invocation of 60 s (the template's Timeout)
        let worker = RetryWorker {
            store: Untouchable,
            clock: SystemClock,
            parse: crate::wiring::WEBHOOK_FORMAT,
            read: follow_ups_only,
            follow_ups: SlowService { tried: Default::default() },
        };
        let mut batch = SqsEvent::default();
        for n in 0..10 {
            let follow_up = FollowUp {
                project: ProjectId::parse("p1").unwrap(),
                post: PostId::parse(format!("post_{n}")).unwrap(),
                generation: 1,
                attempt: 1,
                booking: None,
            };
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("m{n}"));
            message.body = Some(serde_json::to_string(&follow_up).unwrap());
            batch.records.push(message);
        }
        let started = Instant::now();
        // WHEN the worker handles it
        let response = worker.handle_until(batch, Some(started + Duration::from_secs(60))).await;
        // THEN every follow-up was tried, once, and none is handed back to count toward the DLQ
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
        let mut tried = worker.follow_ups.tried.lock().unwrap().clone();
        tried.sort();
        assert_eq!(tried, (0..10).map(|n| format!("post_{n}")).collect::<Vec<_>>());
        // AND within the invocation
        assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn messages_it_has_no_time_for_are_left_to_be_delivered_again() {
        let worker = RetryWorker {
            store: Untouchable,
            clock: SystemClock,
            parse: crate::wiring::WEBHOOK_FORMAT,
            read: crate::wiring::QUEUE_FORMAT,
            follow_ups: NoFollowUps,
        };
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
