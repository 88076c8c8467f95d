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
        }
    }
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
