//! Publishing a post (again): the checks before any call to the service, the request id that makes
//! a retry safe, and what the service's answer adds to the post.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::connection::{Connection, ConnectionStatus};
use super::ids::{AccountId, PostId, ProjectId};
use super::media::Media;
use super::platform::Platform;
use super::post::{EntryStatus, Generation, PlatformEntry, PostReport, PostState, Schedule};
use super::time::Timestamp;

/// What the user wrote: kept with the post, replaced only by a publish that brings new content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Draft {
    pub content: String,
    pub media: Vec<Media>,
}

/// Why a publish is refused before the service is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// These platforms' current copies are queued or live (and not cancelled).
    AlreadyPublished(Vec<Platform>),
    /// These platforms have no connected account (never connected, expired, revoked, error).
    ReconnectRequired(Vec<Platform>),
}

/// One platform of a publish: where to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub platform: Platform,
    pub account_id: AccountId,
}

/// A publish that passed every check: the generation it starts and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub generation: Generation,
    pub targets: Vec<Target>,
    /// Derived from project, post, generation and the set of platforms: a retry is the same request.
    pub request_id: String,
}

/// The checks of a publish, in the order the contract gives them: a copy already queued or live,
/// then a platform not connected; otherwise the next generation, to every named platform.
pub fn plan(
    project: &ProjectId,
    post: &PostId,
    state: &PostState,
    platforms: &[Platform],
    connections: &[Connection],
) -> Result<Plan, Refused> {
    let active = state.still_active(platforms);
    if !active.is_empty() {
        return Err(Refused::AlreadyPublished(active));
    }
    let connected = |p: Platform| {
        connections
            .iter()
            .find(|c| c.platform == p && c.status == ConnectionStatus::Connected)
            .and_then(|c| c.account_id.clone())
    };
    let not_connected: Vec<Platform> = platforms.iter().copied().filter(|p| connected(*p).is_none()).collect();
    if !not_connected.is_empty() {
        return Err(Refused::ReconnectRequired(not_connected));
    }
    let generation = state.next_generation();
    let targets =
        platforms.iter().filter_map(|p| connected(*p).map(|account_id| Target { platform: *p, account_id })).collect();
    Ok(Plan { generation, targets, request_id: request_id(project, post, generation, platforms) })
}

/// The `x-request-id` of a publication, as a UUID-shaped string: the same for the same project,
/// post, generation and set of platforms, in whatever order they were listed.
pub fn request_id(project: &ProjectId, post: &PostId, generation: Generation, platforms: &[Platform]) -> String {
    let set: BTreeSet<Platform> = platforms.iter().copied().collect();
    let mut hash = Sha256::new();
    hash.update(format!("{project}\n{post}\n{generation}\n"));
    for p in set {
        hash.update(p.api_name());
        hash.update(b"\n");
    }
    let h = hex::encode(&hash.finalize()[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// What the service's answer to a publish adds to the post: its report, every target in this
/// generation (even one the answer left out), and the schedule.
pub fn evidence(plan: &Plan, report: &PostReport, scheduled_for: Option<Timestamp>, stored: &PostState) -> PostState {
    let mut report = report.clone();
    report.generation = Some(plan.generation);
    let mut evidence = report.to_state(Some(stored)).unwrap_or_default();
    for t in &plan.targets {
        evidence.entries.entry(t.platform).or_insert_with(|| PlatformEntry {
            service_post_id: Some(report.service_post_id.clone()),
            account_id: Some(t.account_id.clone()),
            ..PlatformEntry::bare(plan.generation, EntryStatus::Queued)
        });
    }
    if let Some(at) = scheduled_for {
        evidence.schedule = evidence.schedule.max(Some(Schedule { generation: plan.generation, at }));
    }
    evidence
}

/// The content a publish goes out with: the request's, else the stored draft's; a new post
/// must bring its own. `None` when there is no content at all.
pub fn draft_for(content: Option<&str>, media: Option<&[Media]>, stored: Option<&Draft>) -> Option<Draft> {
    let content = content.map(str::to_owned).or_else(|| stored.map(|d| d.content.clone()))?;
    let media = media.map(<[Media]>::to_vec).or_else(|| stored.map(|d| d.media.clone()));
    Some(Draft { content, media: media.unwrap_or_default() })
}

/// How far in the past a `scheduled_for` may be (clocks differ, a form takes a while to send).
pub const SCHEDULE_SLACK_SECONDS: i64 = 60;

/// A time to publish at that has already passed (by more than the slack) is refused: the post
/// would go out at once while the user believes it scheduled.
pub fn schedule_in_the_past(at: Timestamp, now: Timestamp) -> bool {
    at.unix_millis() < now.unix_millis() - SCHEDULE_SLACK_SECONDS * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (ProjectId, PostId) {
        (ProjectId::parse("p").unwrap(), PostId::parse("q").unwrap())
    }

    fn connected(platform: Platform, account: &str) -> Connection {
        Connection {
            platform,
            status: ConnectionStatus::Connected,
            evidence_at: Timestamp::from_unix(1),
            account_id: Some(AccountId::parse(account).unwrap()),
            username: None,
            display_name: None,
            reason: None,
            looks: None,
        }
    }

    #[test]
    fn the_request_id_is_stable_for_a_retry_in_any_order_and_new_for_a_new_generation() {
        let (project, post) = ids();
        let a = request_id(&project, &post, 1, &[Platform::X, Platform::Linkedin]);
        assert_eq!(a, request_id(&project, &post, 1, &[Platform::Linkedin, Platform::X]));
        assert_ne!(a, request_id(&project, &post, 2, &[Platform::X, Platform::Linkedin]));
        assert_ne!(a, request_id(&project, &post, 1, &[Platform::X]));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn a_platform_without_a_connected_account_is_refused_before_any_call() {
        let (project, post) = ids();
        let mut expired = connected(Platform::Linkedin, "li");
        expired.status = ConnectionStatus::Expired;
        let refused =
            plan(&project, &post, &PostState::default(), &[Platform::X, Platform::Linkedin], &[expired.clone()]);
        assert_eq!(refused, Err(Refused::ReconnectRequired(vec![Platform::X, Platform::Linkedin])));
        let ok = plan(&project, &post, &PostState::default(), &[Platform::X], &[connected(Platform::X, "x1"), expired])
            .unwrap();
        assert_eq!((ok.generation, ok.targets[0].account_id.as_str()), (1, "x1"));
    }

    #[test]
    fn new_content_wins_and_a_new_post_must_bring_some() {
        let stored = Draft { content: "old".into(), media: vec![Media::bare("https://m/1")] };
        assert_eq!(draft_for(None, None, Some(&stored)), Some(stored.clone()));
        let new = draft_for(Some("new"), None, Some(&stored)).unwrap();
        assert_eq!((new.content.as_str(), new.media.len()), ("new", 1));
        assert_eq!(draft_for(None, None, None), None);
    }

    #[test]
    fn a_time_more_than_a_minute_gone_is_in_the_past_and_a_moment_ago_is_not() {
        let now = Timestamp::parse("2026-11-29T12:00:00Z").unwrap();
        assert!(schedule_in_the_past(now.plus_seconds(-3600), now));
        assert!(schedule_in_the_past(now.plus_seconds(-61), now));
        assert!(!schedule_in_the_past(now.plus_seconds(-60), now));
        assert!(!schedule_in_the_past(now.plus_seconds(-5), now));
        assert!(!schedule_in_the_past(now.plus_seconds(3600), now));
    }
}
