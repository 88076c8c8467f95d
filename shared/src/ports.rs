//! The small traits the handlers need. Adapters implement them over DynamoDB, SQS and the
//! publishing service; tests may implement them in memory.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::domain::{Connection, EventId, PostId, PostReport, ProfileId, ProjectId, Timestamp};

/// What became of one piece of evidence. Expected outcomes are values, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Taken and joined into the stored state; `changed` is false when it told nothing new.
    Applied { changed: bool },
    /// The event id was already taken: nothing was written.
    Duplicate,
    /// Nothing to apply it to (an account event for a profile we do not know).
    Ignored,
    /// It cannot be applied yet (it names a publication we have not stored); try again later.
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, throttled, timed out: worth trying again later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Lost the optimistic-concurrency race too many times in a row.
    #[error("too many concurrent writers on one item")]
    Contention,
    /// An item that does not read back as what we write: a bug or a hand edit.
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
}

/// Applies webhook evidence together with taking its event id, so that an id counts as taken
/// only once its effect is stored.
pub trait EventStore: Send + Sync {
    fn apply_post_report(
        &self,
        event: &EventId,
        project: &ProjectId,
        post: &PostId,
        report: &PostReport,
        now: Timestamp,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    fn apply_connection_evidence(
        &self,
        event: &EventId,
        profile: &ProfileId,
        evidence: &Connection,
        now: Timestamp,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;
}

/// A verified event that could not be applied at once, as it travels on the retry queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryMessage {
    pub event_id: EventId,
    /// When the webhook received it: the evidence time of an event without a timestamp.
    pub received_at: Timestamp,
    /// The raw (already verified) body, so the retry applies exactly what was signed.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the retry queue is unavailable: {0}")]
pub struct QueueError(pub String);

pub trait RetryQueue: Send + Sync {
    fn enqueue(&self, message: &RetryMessage) -> impl Future<Output = Result<(), QueueError>> + Send;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
