//! A verified webhook body, read into a domain event: the envelope, the event id, the evidence time.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::wire::{WireAccount, WirePost, object};
use crate::domain::connection::{Connection, ConnectionEvidence, ConnectionStatus, reason};
use crate::domain::event::{Action, IgnoreReason, InvalidEvent, WebhookEvent, too_old};
use crate::domain::post::EntryStatus;
use crate::domain::text::bounded_text;
use crate::domain::time::evidence_time;
use crate::domain::{AccountId, EventId, Platform, ProfileId, Timestamp};

/// The events we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    PostScheduled,
    PostPublished,
    PostFailed,
    PostPartial,
    PostCancelled,
    AccountConnected,
    AccountDisconnected,
}

impl EventKind {
    fn from_name(name: &str) -> Option<Self> {
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
    #[serde(default)]
    test: Value,
}

/// The event's id: the body's `id`, else a hash of the body. Only the body is signed: the
/// `X-Zernio-Event-Id` header is never read, so a replayed body cannot take another id.
fn event_id(body_id: &Value, body: &[u8]) -> EventId {
    body_id.as_str().and_then(|id| EventId::parse(id).ok()).unwrap_or_else(|| {
        let digest = hex::encode(Sha256::digest(body));
        EventId::parse(format!("sha256:{digest}")).expect("a hex digest is a valid event id")
    })
}

/// Reads a verified body. `received_at` is the receiving function's clock: it stands in for a
/// missing or unreadable `timestamp`, and for one too far in the future.
pub fn parse_event(body: &[u8], received_at: Timestamp) -> Result<WebhookEvent, InvalidEvent> {
    let json: Value = serde_json::from_slice(body).map_err(|e| InvalidEvent::NotJson(e.to_string()))?;
    // Only an object is an envelope: anything else has no `event` field.
    let envelope: Envelope = object(json).ok_or(InvalidEvent::NoEventName)?;
    let name = envelope.event.as_str().ok_or(InvalidEvent::NoEventName)?.to_owned();
    let id = event_id(&envelope.id, body);
    if envelope.test == Value::Bool(true) {
        // A sample from the dashboard or `POST /v1/webhooks/test`: never applied, whatever it names.
        return Ok(WebhookEvent { id, name, action: Action::Ignore(IgnoreReason::Sample) });
    }
    let Some(kind) = EventKind::from_name(&name) else {
        return Ok(WebhookEvent { id, name, action: Action::Ignore(IgnoreReason::UnhandledType) });
    };
    let made_at = envelope.timestamp.as_str().and_then(Timestamp::parse);
    if too_old(made_at, received_at) {
        return Ok(WebhookEvent { id, name, action: Action::Ignore(IgnoreReason::TooOld) });
    }
    let evidence_at = evidence_time(made_at, received_at);
    let action = match kind {
        EventKind::AccountConnected | EventKind::AccountDisconnected => {
            match envelope.account.and_then(object::<WireAccount>) {
                Some(account) => account_action(kind, &account, evidence_at),
                None => Action::Ignore(IgnoreReason::Malformed),
            }
        }
        _ => match envelope.post.and_then(object::<WirePost>) {
            Some(post) => post_action(kind, &post, evidence_at),
            None => Action::Ignore(IgnoreReason::Malformed),
        },
    };
    Ok(WebhookEvent { id, name, action })
}

fn post_action(kind: EventKind, post: &WirePost, evidence_at: Timestamp) -> Action {
    let Some(report) = post.report(kind.default_entry_status(), kind == EventKind::PostCancelled, evidence_at) else {
        return Action::Ignore(IgnoreReason::Malformed);
    };
    match report.owner.clone() {
        Some((project, post)) => Action::Post { project, post, report },
        None => Action::Ignore(IgnoreReason::NoPostMetadata),
    }
}

fn account_action(kind: EventKind, account: &WireAccount, evidence_at: Timestamp) -> Action {
    let Some(profile) = account.profile_id.as_deref().and_then(|p| ProfileId::parse(p).ok()) else {
        return Action::Ignore(IgnoreReason::NoProfile);
    };
    let Some(platform) = account.platform.as_deref().and_then(|p| Platform::from_wire(p).ok()) else {
        return Action::Ignore(IgnoreReason::UnmanagedPlatform);
    };
    let account_id = account.account_id.as_deref().or(account.object_id.as_deref());
    let Some(account_id) = account_id.and_then(|id| AccountId::parse(id).ok()) else {
        return Action::Ignore(IgnoreReason::Malformed);
    };
    let (status, why) = match (kind, account.disconnection_type.as_deref()) {
        (EventKind::AccountConnected, _) => (ConnectionStatus::Connected, None),
        (_, Some("intentional")) => (ConnectionStatus::Revoked, Some(reason::REVOKED)),
        _ => (ConnectionStatus::Expired, Some(reason::TOKEN_EXPIRED)),
    };
    let evidence = Connection {
        platform,
        status,
        evidence_at,
        account_id: Some(account_id),
        username: bounded_text(account.username.as_deref()),
        display_name: bounded_text(account.display_name.as_deref()),
        reason: why.map(str::to_owned),
        looks: None,
    };
    let news = match kind {
        EventKind::AccountConnected => ConnectionEvidence::Linked(evidence),
        _ => ConnectionEvidence::Disconnected(evidence),
    };
    Action::Account { profile, news }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day after the samples' `timestamp` (2026-03-01T10:00:00Z).
    const NOW: i64 = 1_772_409_600;

    fn parse(body: &str) -> Result<WebhookEvent, InvalidEvent> {
        parse_event(body.as_bytes(), Timestamp::from_unix(NOW))
    }

    fn post_event(event: &str, platforms: &str) -> String {
        format!(
            r#"{{"id":"e","event":"{event}","timestamp":"2026-03-01T10:00:00Z","post":{{"id":"p1","status":"published",
               "platforms":{platforms},"metadata":{{"stacc_project_id":"proj","stacc_post_id":"post","stacc_generation":1}}}}}}"#
        )
    }

    #[test]
    fn not_json_and_no_event_name_are_invalid() {
        assert!(matches!(parse("hello"), Err(InvalidEvent::NotJson(_))));
        assert_eq!(parse(r#"{"id":"e"}"#), Err(InvalidEvent::NoEventName));
        assert_eq!(parse(r#"{"event":7}"#), Err(InvalidEvent::NoEventName));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_not_an_event() {
        assert_eq!(parse(r#"["e","post.published","2026-03-01T10:00:00Z"]"#), Err(InvalidEvent::NoEventName));
        assert_eq!(parse(r#""post.published""#), Err(InvalidEvent::NoEventName));
    }

    #[test]
    fn an_event_made_more_than_seven_days_before_it_arrived_is_ignored() {
        let made = |age: i64| Timestamp::from_unix(NOW - age).to_rfc3339();
        let body = |at: String| {
            format!(
                r#"{{"id":"e","event":"account.connected","timestamp":"{at}","account":{{"accountId":"a","profileId":"pr","platform":"twitter"}}}}"#
            )
        };
        let week = crate::domain::event::MAX_EVENT_AGE_SECONDS;
        assert_eq!(parse(&body(made(week + 1))).unwrap().action, Action::Ignore(IgnoreReason::TooOld));
        assert!(matches!(parse(&body(made(week - 60))).unwrap().action, Action::Account { .. }));
    }

    #[test]
    fn unknown_types_are_ignored_and_keep_their_id() {
        let e = parse(r#"{"id":"evt_1","event":"webhook.test"}"#).unwrap();
        assert_eq!(e.id.as_str(), "evt_1");
        assert_eq!(e.action, Action::Ignore(IgnoreReason::UnhandledType));
    }

    #[test]
    fn the_id_is_the_bodys_else_a_hash_of_the_body() {
        let body = r#"{"event":"webhook.test"}"#;
        let hashed = parse(body).unwrap();
        assert!(hashed.id.as_str().starts_with("sha256:"));
        assert_eq!(hashed.id, parse(body).unwrap().id);
    }

    #[test]
    fn a_sample_is_ignored_whatever_it_names() {
        let body = post_event("post.published", r#"[{"platform":"twitter","status":"published"}]"#);
        let sample = body.replacen(r#""id":"e","#, r#""id":"e","test":true,"#, 1);
        assert!(matches!(parse(&body).unwrap().action, Action::Post { .. }));
        assert_eq!(parse(&sample).unwrap().action, Action::Ignore(IgnoreReason::Sample));
    }

    #[test]
    fn metadata_that_is_not_an_object_is_no_metadata() {
        let body =
            r#"{"id":"e","event":"post.published","post":{"id":"p","platforms":[],"metadata":["proj","post",1]}}"#;
        assert_eq!(parse(body).unwrap().action, Action::Ignore(IgnoreReason::NoPostMetadata));
    }

    #[test]
    fn a_post_event_without_our_metadata_is_ignored() {
        let e = parse(r#"{"id":"e","event":"post.published","post":{"id":"p","platforms":[]}}"#).unwrap();
        assert_eq!(e.action, Action::Ignore(IgnoreReason::NoPostMetadata));
    }

    #[test]
    fn a_known_event_without_its_object_is_acknowledged_and_ignored() {
        for body in [
            r#"{"id":"e","event":"post.failed"}"#,
            r#"{"id":"e","event":"post.published","post":"nope"}"#,
            r#"{"id":"e","event":"post.published","post":{"platforms":[]}}"#,
            r#"{"id":"e","event":"account.connected"}"#,
            r#"{"id":"e","event":"account.disconnected","account":[1]}"#,
        ] {
            assert_eq!(parse(body).unwrap().action, Action::Ignore(IgnoreReason::Malformed), "{body}");
        }
    }

    #[test]
    fn a_timestamp_far_in_the_future_is_taken_as_the_receiving_clock() {
        let body = r#"{"id":"e","event":"account.connected","timestamp":"2099-01-01T00:00:00Z",
                       "account":{"accountId":"a","profileId":"pr","platform":"twitter"}}"#;
        let Action::Account { news: ConnectionEvidence::Linked(evidence), .. } = parse(body).unwrap().action else {
            panic!()
        };
        assert_eq!(evidence.evidence_at, Timestamp::from_unix(NOW));
    }

    #[test]
    fn type_confused_platforms_are_no_news() {
        let Action::Post { report, .. } = parse(&post_event("post.published", "123")).unwrap().action else { panic!() };
        assert!(report.platforms.is_empty());
        let odd = r#"[{"platform":"twitter","status":{"$gt":""}},{"platform":"linkedin","status":"published"}]"#;
        let Action::Post { report, .. } = parse(&post_event("post.published", odd)).unwrap().action else { panic!() };
        let listed: Vec<Platform> = report.platforms.iter().map(|p| p.platform).collect();
        assert_eq!(listed, vec![Platform::Linkedin]);
    }

    #[test]
    fn disconnection_types_map_to_expired_and_revoked() {
        let body = |kind: &str| {
            format!(
                r#"{{"id":"e","event":"account.disconnected","timestamp":"2026-03-01T10:00:00Z","account":{{"accountId":"a","profileId":"pr","platform":"twitter","disconnectionType":"{kind}"}}}}"#
            )
        };
        let Action::Account { news: ConnectionEvidence::Disconnected(evidence), .. } =
            parse(&body("unintentional")).unwrap().action
        else {
            panic!()
        };
        assert_eq!((evidence.status, evidence.reason.as_deref()), (ConnectionStatus::Expired, Some("token_expired")));
        assert_eq!(evidence.platform, Platform::X);
        let Action::Account { news: ConnectionEvidence::Disconnected(evidence), .. } =
            parse(&body("intentional")).unwrap().action
        else {
            panic!()
        };
        assert_eq!(evidence.status, ConnectionStatus::Revoked);
        assert_eq!(evidence.evidence_at, Timestamp::parse("2026-03-01T10:00:00Z").unwrap());
    }
}
