//! A verified webhook body, parsed into what it asks us to do.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::connection::{Connection, ConnectionStatus, reason};
use super::ids::{EventId, PostId, ProfileId, ProjectId};
use super::platform::Platform;
use super::post::{EntryStatus, PostReport};
use super::text::bounded_text;
use super::time::Timestamp;
use crate::wire::{WireAccount, WirePost};

/// The body is not an event at all: answered 400 `invalid_event`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body has no string \"event\" field")]
    NoEventName,
    #[error("a {0} event must carry {1}")]
    Missing(&'static str, &'static str),
}

/// The events we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    PostScheduled,
    PostPublished,
    PostFailed,
    PostPartial,
    PostCancelled,
    AccountConnected,
    AccountDisconnected,
}

impl EventKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "post.scheduled" => EventKind::PostScheduled,
            "post.published" => EventKind::PostPublished,
            "post.failed" => EventKind::PostFailed,
            "post.partial" => EventKind::PostPartial,
            "post.cancelled" => EventKind::PostCancelled,
            "account.connected" => EventKind::AccountConnected,
            "account.disconnected" => EventKind::AccountDisconnected,
            _ => return None,
        })
    }

    /// The status of a platform the event lists without a status of its own.
    fn default_entry_status(self) -> EntryStatus {
        match self {
            EventKind::PostPublished => EntryStatus::Published,
            EventKind::PostFailed => EntryStatus::Failed,
            _ => EntryStatus::Queued,
        }
    }
}

/// Why an acknowledged event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    UnhandledType,
    NoPostMetadata,
    NoProfile,
    UnmanagedPlatform,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UnhandledType => "event type not handled",
            IgnoreReason::NoPostMetadata => "post carries no project/post metadata of ours",
            IgnoreReason::NoProfile => "account event names no usable profile",
            IgnoreReason::UnmanagedPlatform => "account is on a platform we do not manage",
        }
    }
}

/// What an event asks of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Post { project: ProjectId, post: PostId, report: PostReport },
    Connection { profile: ProfileId, evidence: Connection },
    Ignore(IgnoreReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: EventId,
    pub name: String,
    pub action: Action,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    event: Value,
    #[serde(default)]
    timestamp: Value,
    #[serde(default)]
    post: Option<Value>,
    #[serde(default)]
    account: Option<Value>,
}

/// The event's id: the body's `id`, else the `X-Zernio-Event-Id` header, else a hash of the body.
fn event_id(body_id: &Value, header_id: Option<&str>, body: &[u8]) -> EventId {
    body_id
        .as_str()
        .and_then(|id| EventId::parse(id).ok())
        .or_else(|| header_id.and_then(|id| EventId::parse(id.trim()).ok()))
        .unwrap_or_else(|| {
            let digest = hex::encode(Sha256::digest(body));
            EventId::parse(format!("sha256:{digest}")).expect("a hex digest is a valid event id")
        })
}

/// Parses a verified body. `received_at` stands in for a missing or unreadable `timestamp`.
pub fn parse_event(body: &[u8], header_id: Option<&str>, received_at: Timestamp) -> Result<WebhookEvent, InvalidEvent> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| InvalidEvent::NotJson(e.to_string()))?;
    let name = envelope.event.as_str().ok_or(InvalidEvent::NoEventName)?.to_owned();
    let id = event_id(&envelope.id, header_id, body);
    let Some(kind) = EventKind::from_name(&name) else {
        return Ok(WebhookEvent { id, name, action: Action::Ignore(IgnoreReason::UnhandledType) });
    };
    let evidence_at = envelope.timestamp.as_str().and_then(Timestamp::parse).unwrap_or(received_at);
    let action = match kind {
        EventKind::AccountConnected | EventKind::AccountDisconnected => {
            let account: WireAccount = envelope
                .account
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or(InvalidEvent::Missing("account", "an \"account\" object"))?;
            connection_action(kind, &account, evidence_at)
        }
        _ => {
            let post: WirePost = envelope
                .post
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or(InvalidEvent::Missing("post", "a \"post\" object"))?;
            post_action(kind, &post, evidence_at)?
        }
    };
    Ok(WebhookEvent { id, name, action })
}

fn post_action(kind: EventKind, post: &WirePost, evidence_at: Timestamp) -> Result<Action, InvalidEvent> {
    let mut report = post
        .report(kind.default_entry_status(), kind == EventKind::PostCancelled)
        .ok_or(InvalidEvent::Missing("post", "a post id"))?;
    // A copy reported live without its own time went live no later than the event.
    for platform in &mut report.platforms {
        if platform.status.unwrap_or(report.default_status) == EntryStatus::Published && platform.published_at.is_none()
        {
            platform.published_at = report.published_at.or(Some(evidence_at));
        }
    }
    let metadata = post.metadata.clone().unwrap_or_default();
    let project = metadata.stacc_project_id.and_then(|p| ProjectId::parse(p).ok());
    let post_id = metadata.stacc_post_id.and_then(|p| PostId::parse(p).ok());
    Ok(match (project, post_id) {
        (Some(project), Some(post)) => Action::Post { project, post, report },
        _ => Action::Ignore(IgnoreReason::NoPostMetadata),
    })
}

fn connection_action(kind: EventKind, account: &WireAccount, evidence_at: Timestamp) -> Action {
    let Some(profile) = account.profile_id.as_deref().and_then(|p| ProfileId::parse(p).ok()) else {
        return Action::Ignore(IgnoreReason::NoProfile);
    };
    let Some(platform) = account.platform.as_deref().and_then(|p| Platform::from_wire(p).ok()) else {
        return Action::Ignore(IgnoreReason::UnmanagedPlatform);
    };
    let (status, why) = match (kind, account.disconnection_type.as_deref()) {
        (EventKind::AccountConnected, _) => (ConnectionStatus::Connected, None),
        (_, Some("intentional")) => (ConnectionStatus::Revoked, Some(reason::REVOKED)),
        _ => (ConnectionStatus::Expired, Some(reason::TOKEN_EXPIRED)),
    };
    Action::Connection {
        profile,
        evidence: Connection {
            platform,
            status,
            evidence_at,
            account_id: bounded_text(account.account_id.as_deref().or(account.object_id.as_deref())),
            username: bounded_text(account.username.as_deref()),
            display_name: bounded_text(account.display_name.as_deref()),
            reason: why.map(str::to_owned),
            looks: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn parse(body: &str) -> Result<WebhookEvent, InvalidEvent> {
        parse_event(body.as_bytes(), None, Timestamp::from_unix(NOW))
    }

    #[test]
    fn not_json_and_no_event_name_are_invalid() {
        assert!(matches!(parse("hello"), Err(InvalidEvent::NotJson(_))));
        assert_eq!(parse(r#"{"id":"e"}"#), Err(InvalidEvent::NoEventName));
        assert_eq!(parse(r#"{"event":7}"#), Err(InvalidEvent::NoEventName));
    }

    #[test]
    fn unknown_types_are_ignored_and_keep_their_id() {
        let e = parse(r#"{"id":"evt_1","event":"webhook.test"}"#).unwrap();
        assert_eq!(e.id.as_str(), "evt_1");
        assert_eq!(e.action, Action::Ignore(IgnoreReason::UnhandledType));
    }

    #[test]
    fn the_id_falls_back_to_the_header_then_to_a_hash_of_the_body() {
        let body = r#"{"event":"webhook.test"}"#;
        let from_header = parse_event(body.as_bytes(), Some("evt_h"), Timestamp::from_unix(NOW)).unwrap();
        assert_eq!(from_header.id.as_str(), "evt_h");
        let hashed = parse(body).unwrap();
        assert!(hashed.id.as_str().starts_with("sha256:"));
        assert_eq!(hashed.id, parse(body).unwrap().id);
    }

    #[test]
    fn a_post_event_without_our_metadata_is_ignored() {
        let e = parse(r#"{"id":"e","event":"post.published","post":{"id":"p","platforms":[]}}"#).unwrap();
        assert_eq!(e.action, Action::Ignore(IgnoreReason::NoPostMetadata));
    }

    #[test]
    fn a_post_event_without_a_post_is_invalid() {
        assert!(matches!(parse(r#"{"event":"post.failed"}"#), Err(InvalidEvent::Missing(..))));
    }

    #[test]
    fn disconnection_types_map_to_expired_and_revoked() {
        let body = |kind: &str| {
            format!(
                r#"{{"id":"e","event":"account.disconnected","timestamp":"2026-03-01T10:00:00Z","account":{{"accountId":"a","profileId":"pr","platform":"twitter","disconnectionType":"{kind}"}}}}"#
            )
        };
        let Action::Connection { evidence, .. } = parse(&body("unintentional")).unwrap().action else { panic!() };
        assert_eq!((evidence.status, evidence.reason.as_deref()), (ConnectionStatus::Expired, Some("token_expired")));
        assert_eq!(evidence.platform, Platform::X);
        let Action::Connection { evidence, .. } = parse(&body("intentional")).unwrap().action else { panic!() };
        assert_eq!(evidence.status, ConnectionStatus::Revoked);
        assert_eq!(evidence.evidence_at, Timestamp::parse("2026-03-01T10:00:00Z").unwrap());
    }
}
