//! A verified webhook event, as what it asks us to do. The vendor's payload shapes are read into
//! this at the edge (`adapters::zernio::webhook`).

use super::connection::ConnectionEvidence;
use super::ids::{EventId, PostId, ProfileId, ProjectId};
use super::post::PostReport;
use super::time::Timestamp;

/// The body is not an event at all: answered 400 `invalid_event`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body has no string \"event\" field")]
    NoEventName,
}

/// Reads a verified webhook body, received at the given time, into an event: the vendor's
/// format, given to the handlers as a port (`adapters::zernio::webhook::parse_event`).
pub type EventParser = fn(&[u8], Timestamp) -> Result<WebhookEvent, InvalidEvent>;

/// Why an acknowledged event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    UnhandledType,
    /// A known type whose `post` / `account` object is missing or malformed: a 400 would make the
    /// service retry it for two days, and no retry can mend it.
    Malformed,
    NoPostMetadata,
    NoProfile,
    UnmanagedPlatform,
    /// A sample (`"test": true`) from the dashboard or `POST /v1/webhooks/test`.
    Sample,
    /// Made more than [`MAX_EVENT_AGE_SECONDS`] before it was received: a replay of a captured
    /// body whose de-duplication record may have expired.
    TooOld,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UnhandledType => "event type not handled",
            IgnoreReason::Malformed => "event carries no usable post or account object",
            IgnoreReason::NoPostMetadata => "post carries no project/post metadata of ours",
            IgnoreReason::NoProfile => "account event names no usable profile",
            IgnoreReason::UnmanagedPlatform => "account is on a platform we do not manage",
            IgnoreReason::Sample => "a sample event, never applied",
            IgnoreReason::TooOld => "made more than 7 days before it was received",
        }
    }
}

/// The oldest an event may be when received. The service retries a delivery for about 51 hours,
/// and an event's de-duplication record outlives this: a body replayed later is acknowledged and
/// ignored, never applied a second time.
pub const MAX_EVENT_AGE_SECONDS: i64 = 7 * 24 * 3600;

/// Whether an event made at `made_at` (its own `timestamp`) is too old to apply when received at
/// `received_at`. An event without a readable time is judged by what it says.
pub fn too_old(made_at: Option<Timestamp>, received_at: Timestamp) -> bool {
    made_at.is_some_and(|at| at < received_at.plus_seconds(-MAX_EVENT_AGE_SECONDS))
}

/// What an event asks of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Post { project: ProjectId, post: PostId, report: PostReport },
    Account { profile: ProfileId, news: ConnectionEvidence },
    Ignore(IgnoreReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: EventId,
    pub name: String,
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_older_than_seven_days_is_too_old_and_one_a_moment_younger_is_not() {
        let received = Timestamp::from_unix(1_780_000_000);
        assert!(too_old(Some(received.plus_seconds(-MAX_EVENT_AGE_SECONDS - 1)), received));
        assert!(!too_old(Some(received.plus_seconds(-MAX_EVENT_AGE_SECONDS)), received));
        assert!(!too_old(Some(received.plus_seconds(60)), received));
        assert!(!too_old(None, received));
    }
}
