//! Publishing a post (again): the checks before any call to the service, the request id that makes
//! a retry safe, and what the service's answer adds to the post.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::connection::{Connection, ConnectionStatus};
use super::ids::{AccountId, PostId, ProjectId, ServicePostId};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// One publication of a post goes out at a time: while one is being sent (its service post not
/// known yet), another publish of the post is refused as already publishing, naming its platforms
/// (the post holds one publication being sent, and its follow-up sends its draft unchanged).
pub fn already_sending(sending: Option<&Sending>) -> Result<(), Refused> {
    match sending {
        Some(s) => Err(Refused::AlreadyPublished(s.targets.iter().map(|t| t.platform).collect())),
        None => Ok(()),
    }
}

/// What a draft request does to the post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftSave {
    /// The post holds this very draft (an autosave sent again): nothing is written, and no post
    /// write is spent.
    Unchanged,
    /// The draft is stored: one post write.
    Store,
}

/// A draft is stored unless the post already holds it; a changed draft is refused while a
/// publication of the post is being sent, whose follow-up sends the draft it began with.
pub fn save_draft(stored: Option<&Draft>, sending: Option<&Sending>, draft: &Draft) -> Result<DraftSave, Refused> {
    if stored == Some(draft) {
        return Ok(DraftSave::Unchanged);
    }
    already_sending(sending).map(|()| DraftSave::Store)
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

/// What the service's answer to a publication adds to the post: its report, every target in this
/// generation (even one the answer left out), and the schedule.
pub fn evidence(sending: &Sending, report: &PostReport, stored: &PostState) -> PostState {
    let mut report = report.clone();
    report.generation = Some(sending.generation);
    let mut evidence = report.to_state(Some(stored)).unwrap_or_default();
    for t in &sending.targets {
        evidence.entries.entry(t.platform).or_insert_with(|| PlatformEntry {
            service_post_id: Some(report.service_post_id.clone()),
            account_id: Some(t.account_id.clone()),
            ..PlatformEntry::bare(sending.generation, EntryStatus::Queued)
        });
    }
    evidence.join(&schedule_of(sending))
}

fn schedule_of(sending: &Sending) -> PostState {
    let schedule = sending.scheduled_for.map(|at| Schedule { generation: sending.generation, at });
    PostState { schedule, ..PostState::default() }
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

/// A publication asked of the service: one generation of our post, as the request sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// Sent as `x-request-id` and `Idempotency-Key`: a retry is the same request.
    pub request_id: String,
    pub content: String,
    pub targets: Vec<Target>,
    /// `None` publishes now.
    pub scheduled_for: Option<Timestamp>,
    pub media: Vec<Media>,
    pub project: ProjectId,
    pub post: PostId,
    pub generation: Generation,
    /// When the request was sent: the evidence time of the answer.
    pub sent_at: Timestamp,
    /// Its place in the shared budget's line, when it was queued past the budget.
    pub booking: Option<super::budget::Booking>,
}

/// A publication handed to the service whose outcome is not recorded yet. It is stored before the
/// service is called, so a publish that outlasts its request is known, shown `publishing`, and
/// sent again by its follow-up with the same ids (content and media are the post's draft, which
/// cannot change while a publication is being sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sending {
    pub generation: Generation,
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Timestamp>,
    /// When it was first sent.
    pub since: Timestamp,
    /// The post was created by this publication (nobody saw it as a draft first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_post: bool,
    /// The route answered 202 with it: the app saw the post `publishing`, so its history says so
    /// (and the outcome is recorded from there).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shown: bool,
}

impl Plan {
    /// The publication this plan starts, first sent at `now` (`new_post`: it creates the post).
    pub fn sending(&self, scheduled_for: Option<Timestamp>, now: Timestamp, new_post: bool) -> Sending {
        Sending {
            generation: self.generation,
            targets: self.targets.clone(),
            scheduled_for,
            since: now,
            new_post,
            shown: false,
        }
    }
}

impl Sending {
    fn platforms(&self) -> Vec<Platform> {
        self.targets.iter().map(|t| t.platform).collect()
    }

    /// The request that sends it, the same every time.
    pub fn publication(&self, project: &ProjectId, post: &PostId, draft: &Draft, sent_at: Timestamp) -> Publication {
        Publication {
            request_id: request_id(project, post, self.generation, &self.platforms()),
            content: draft.content.clone(),
            targets: self.targets.clone(),
            scheduled_for: self.scheduled_for,
            media: draft.media.clone(),
            project: project.clone(),
            post: post.clone(),
            generation: self.generation,
            sent_at,
            booking: None,
        }
    }

    /// Its copies as they stand until the service answers: queued, with their accounts.
    pub fn queued(&self) -> PostState {
        let entries = self
            .targets
            .iter()
            .map(|t| {
                let entry = PlatformEntry {
                    account_id: Some(t.account_id.clone()),
                    ..PlatformEntry::bare(self.generation, EntryStatus::Queued)
                };
                (t.platform, entry)
            })
            .collect();
        PostState { entries, ..schedule_of(self) }
    }

    /// Its copies failed for `error` (the service refused it after the route had answered).
    pub fn failed(&self, error: &str) -> PostState {
        let mut state = self.queued();
        for entry in state.entries.values_mut() {
            entry.status = EntryStatus::Failed;
            entry.error = Some(error.to_owned());
        }
        state
    }

    /// Its copies refused for accounts at their limit: each limited one with the service's words,
    /// the others saying why they did not go either.
    pub fn limited(&self, limit: &AccountLimit) -> PostState {
        let limited = limit.platforms_of(&self.targets);
        let mut state = self.failed(&format!(
            "Not published: {} is at its posting limit; publish again later.",
            super::platform::spoken_list(&limited)
        ));
        for (platform, entry) in state.entries.iter_mut() {
            if limited.contains(platform) {
                entry.error = Some(limit.explained());
            }
        }
        state
    }

    /// Whether it still waits for the service's word in `state`: not once the service's id for it
    /// is recorded (an answer, a webhook or an adoption), it is cancelled or settled everywhere, or
    /// a newer publication exists.
    pub fn waits_in(&self, state: &PostState) -> bool {
        let g = self.generation;
        let ours = || state.entries.values().filter(|e| e.generation == g);
        let has_id = ours().any(|e| e.service_post_id.is_some());
        let newer = state.latest_generation().is_some_and(|latest| latest > g);
        let settled = self.targets.iter().all(|t| {
            state.entries.get(&t.platform).is_some_and(|e| e.generation == g && e.status > EntryStatus::Queued)
        });
        !(has_id || newer || settled || state.cancelled.contains(&g))
    }

    /// Whether a follow-up stops trying: the service keeps its idempotency keys 24 hours, and a
    /// publication unconfirmed that long is recorded failed rather than sent blind.
    pub fn given_up(&self, now: Timestamp) -> bool {
        now.unix() - self.since.unix() > GIVE_UP_AFTER_SECONDS
    }
}

/// The state a post's history speaks of: none for a post that holds nothing yet but the
/// publication that created it (its first records come with that publication's outcome, so a
/// publication the service did not take leaves no record behind); once the route answered 202
/// (`Sending::shown`), what the app was shown: its copies queued, the post `publishing`.
pub fn recorded<'a>(state: &'a PostState, sending: Option<&Sending>) -> Option<Cow<'a, PostState>> {
    match sending {
        Some(sending) if sending.shown => Some(Cow::Owned(shown(state, Some(sending)))),
        Some(sending) if sending.new_post && *state == PostState::default() => None,
        _ => Some(Cow::Borrowed(state)),
    }
}

/// What a write does to the publication being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendingChange<'a> {
    /// Stored before the service is called.
    Begin(&'a Sending),
    /// Its outcome is recorded (or it is given up): nothing is being sent for this generation.
    End(Generation),
    /// The route answered 202 with it (`Sending::shown`).
    Shown(Generation),
}

/// The publication being sent after a write: the one begun, else the current one unless ended;
/// and only while it still waits for the service's word in `state` (an answer or a webhook that
/// records its service post, or settles it, ends it in the same write).
pub fn sending_after(
    current: Option<Sending>,
    change: Option<SendingChange<'_>>,
    state: &PostState,
) -> Option<Sending> {
    let next = match change {
        Some(SendingChange::Begin(sending)) => Some(sending.clone()),
        Some(SendingChange::End(g)) => current.filter(|c| c.generation != g),
        Some(SendingChange::Shown(g)) => current.map(|c| Sending { shown: c.shown || c.generation == g, ..c }),
        None => current,
    };
    next.filter(|s| s.waits_in(state))
}

/// How long follow-ups try a publication before it is recorded failed.
pub const GIVE_UP_AFTER_SECONDS: i64 = 24 * 3600;
/// How many times a follow-up's delay doubles.
pub const MAX_DOUBLINGS: u32 = 4;
/// The longest delay SQS gives a message.
pub const MAX_FOLLOW_UP_DELAY_SECONDS: u64 = 900;
/// The error a publication never confirmed is recorded with.
pub const UNCONFIRMED: &str =
    "The publishing service never confirmed this publish: check the platform, then publish again.";
/// The error a copy refused as the same content within 24 hours is recorded with.
pub const DUPLICATE: &str = "The same content was already posted to this account within 24 hours.";

/// What the post shows while a publication is being sent: its copies queued until the service
/// answers (a joined-in answer or webhook wins, as always).
pub fn shown(state: &PostState, sending: Option<&Sending>) -> PostState {
    match sending {
        Some(sending) => state.join(&sending.queued()),
        None => state.clone(),
    }
}

/// What the service said to a publication, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 (a replay of the key, or the request id's original), 201 or 207.
    Taken(PostReport),
    /// 403 about accounts: gone from us, or disconnected.
    StaleAccounts,
    /// 409 for the same content to the same account within 24 hours, naming the post it matched.
    Duplicate(Option<ServicePostId>),
    /// Our own first request is still being processed (409 `idempotency_conflict`, or a 202 with
    /// only a `postId`): ask again after `retry_after`.
    InFlight(Option<u64>),
    /// Any other refusal, with the service's words.
    Refused(String),
    /// No answer that settles it (no answer in time, a connection dropped after sending, any 5xx,
    /// `temporarily_unavailable` among them): the service may have taken it.
    Unanswered(Option<u64>),
    /// The team's throughput 429: not taken, to be sent after `retry_after`.
    Throttled(Option<u64>),
    /// A 429 that limits connected accounts or a provider (capacity.md): not taken, and refused
    /// for the platforms it names.
    AccountLimited(AccountLimit),
    /// Not sent: the shared budget has no room now; it holds this place in line (capacity.md).
    Queued(super::budget::Booking),
    /// Certainly not taken: the service could not be reached, or refused our key.
    NotTaken(Option<u64>),
}

/// What a 429 that limits accounts (not the team) says: which accounts or platforms, until when,
/// in the service's words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountLimit {
    pub accounts: Vec<AccountId>,
    pub platforms: Vec<Platform>,
    /// When the account can post again, when the service said (`rateLimitedUntil`, its reset
    /// time, `Retry-After`, or a time in its message).
    pub until: Option<Timestamp>,
    pub message: String,
}

impl AccountLimit {
    /// The platforms of `targets` it limits: those whose account or platform it names; every one
    /// of them when it names none (the service refused the whole request).
    pub fn platforms_of(&self, targets: &[Target]) -> Vec<Platform> {
        let named: Vec<Platform> = targets
            .iter()
            .filter(|t| self.accounts.contains(&t.account_id) || self.platforms.contains(&t.platform))
            .map(|t| t.platform)
            .collect();
        if named.is_empty() { targets.iter().map(|t| t.platform).collect() } else { named }
    }

    /// How long until the account can post again, when the service said (whole seconds, at
    /// least one).
    pub fn retry_after(&self, now: Timestamp) -> Option<u64> {
        let ms = self.until?.unix_millis() - now.unix_millis();
        Some(u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1))
    }

    /// What the app is told, and a copy refused for it is recorded with.
    pub fn explained(&self) -> String {
        let words = self.message.trim();
        let words = if words.is_empty() { "The account is at its posting limit." } else { words };
        match self.until {
            Some(at) => format!("{words} It can post again after {at}."),
            None => words.to_owned(),
        }
    }
}

/// Who is sending: the route (the user waits for the answer) or a follow-up (nobody waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Route,
    FollowUp,
}

/// What to do next with a publication after the service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Record the report: the publication has its service post.
    Record(PostReport),
    /// Read the post a 409 names: adopt it if its metadata is this publication, else it is a
    /// duplicate (`Step::Duplicate`).
    CheckExisting(ServicePostId),
    /// One read of the live list decides which connections are stale; they are marked, and (from
    /// a follow-up) the copies recorded failed.
    FindStale,
    /// Refused as a duplicate of another post: the route answers `duplicate_content`, a follow-up
    /// records the copies failed.
    Duplicate,
    /// Refused with the service's words: the route answers 400, a follow-up records them failed.
    Refused(String),
    /// Try again after a while (a follow-up); the route answers 202.
    Later(Option<u64>),
    /// Send it at its place in the shared budget's line (a follow-up then); the route answers 202.
    AtPlace(super::budget::Booking),
    /// Certainly not taken, and someone waits: the route answers 503 and forgets the publication.
    Unavailable(Option<u64>),
    /// Refused for the accounts at their limit: the route answers 429 `rate_limited` naming the
    /// platforms, a follow-up records the copies failed with the service's words.
    AccountLimited(AccountLimit),
}

/// The one decision after any answer to a publication, the route's and the follow-up's alike.
pub fn next_step(answer: Answer, sender: Sender) -> Step {
    match answer {
        Answer::Taken(report) => Step::Record(report),
        Answer::Duplicate(Some(existing)) => Step::CheckExisting(existing),
        Answer::Duplicate(None) => Step::Duplicate,
        Answer::StaleAccounts => Step::FindStale,
        Answer::Refused(message) => Step::Refused(message),
        Answer::InFlight(after) | Answer::Unanswered(after) | Answer::Throttled(after) => Step::Later(after),
        Answer::AccountLimited(limit) => Step::AccountLimited(limit),
        Answer::Queued(booking) => Step::AtPlace(booking),
        Answer::NotTaken(after) => match sender {
            Sender::Route => Step::Unavailable(after),
            Sender::FollowUp => Step::Later(after),
        },
    }
}

/// Whether a post the service holds is this very publication (our metadata on it): a 409 naming
/// it is our own earlier attempt, to adopt.
pub fn is_ours(report: &PostReport, project: &ProjectId, post: &PostId, generation: Generation) -> bool {
    report.owner.as_ref().is_some_and(|(p, q)| p == project && q == post) && report.generation == Some(generation)
}

/// The delay of a follow-up that holds a place in line: until its moment (whole seconds, never
/// early), within SQS's delays.
pub fn delay_until(place: Timestamp, now: Timestamp) -> u64 {
    let ms = (place.unix_millis() - now.unix_millis()).max(0);
    u64::try_from(ms).unwrap_or(0).div_ceil(1000).min(MAX_FOLLOW_UP_DELAY_SECONDS)
}

/// The delay before follow-up number `attempt` (0 for the first): `base` doubled each time, at
/// most four times (60 s grows to SQS's 900 s limit), at least what the service asked for.
pub fn follow_up_delay(base: u64, attempt: u32, retry_after: Option<u64>) -> u64 {
    let backed_off = base.max(1).saturating_mul(1u64 << attempt.min(MAX_DOUBLINGS));
    backed_off.max(retry_after.unwrap_or(0)).min(MAX_FOLLOW_UP_DELAY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_already_held_is_no_write_and_a_changed_one_waits_for_the_publication_being_sent() {
        let draft = Draft { content: "Hello".into(), media: Vec::new() };
        let edited = Draft { content: "Hello!".into(), media: Vec::new() };
        let sending = Sending {
            generation: 1,
            targets: vec![Target { platform: Platform::X, account_id: AccountId::parse("x1").unwrap() }],
            scheduled_for: None,
            since: Timestamp::parse("2026-11-29T12:00:00Z").unwrap(),
            new_post: false,
            shown: false,
        };
        assert_eq!(save_draft(None, None, &draft), Ok(DraftSave::Store));
        assert_eq!(save_draft(Some(&draft), None, &draft), Ok(DraftSave::Unchanged));
        assert_eq!(save_draft(Some(&draft), Some(&sending), &draft), Ok(DraftSave::Unchanged));
        assert_eq!(save_draft(Some(&draft), None, &edited), Ok(DraftSave::Store));
        assert_eq!(
            save_draft(Some(&draft), Some(&sending), &edited),
            Err(Refused::AlreadyPublished(vec![Platform::X]))
        );
    }

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

    fn sending() -> Sending {
        let (project, post) = ids();
        let plan =
            plan(&project, &post, &PostState::default(), &[Platform::X], &[connected(Platform::X, "x1")]).unwrap();
        plan.sending(None, Timestamp::from_unix(1_000), true)
    }

    fn taken(generation: Generation, status: EntryStatus) -> PostReport {
        PostReport {
            service_post_id: ServicePostId::parse("svc1").unwrap(),
            generation: Some(generation),
            owner: Some(ids()),
            cancelled: false,
            published_at: None,
            scheduled_for: None,
            reported_at: Timestamp::from_unix(1_001),
            default_status: status,
            platforms: vec![super::super::post::PlatformReport::bare(Platform::X, status)],
        }
    }

    #[test]
    fn a_publication_being_sent_shows_queued_and_ends_once_its_service_post_is_known_or_it_settles() {
        let s = sending();
        let shown = shown(&PostState::default(), Some(&s));
        assert_eq!(shown.entries[&Platform::X].status, EntryStatus::Queued);
        assert_eq!(shown.still_active(&[Platform::X]), vec![Platform::X], "a second publish is refused meanwhile");
        // The service's answer (or a webhook) records its post: nothing is being sent any more.
        let state = evidence(&s, &taken(1, EntryStatus::Queued), &PostState::default());
        assert!(!s.waits_in(&state));
        assert_eq!(sending_after(Some(s.clone()), None, &state), None);
        // Failed everywhere, or a newer generation: ended too; a begun one waits; an end ends it.
        assert!(!s.waits_in(&s.failed(DUPLICATE)));
        assert!(s.waits_in(&PostState::default()));
        assert_eq!(sending_after(None, Some(SendingChange::Begin(&s)), &PostState::default()), Some(s.clone()));
        assert_eq!(sending_after(Some(s.clone()), Some(SendingChange::End(1)), &PostState::default()), None);
        assert_eq!(sending_after(Some(s.clone()), Some(SendingChange::End(2)), &PostState::default()), Some(s));
    }

    #[test]
    fn a_second_publish_of_a_post_waits_until_its_publication_being_sent_is_known() {
        assert_eq!(already_sending(Some(&sending())), Err(Refused::AlreadyPublished(vec![Platform::X])));
        assert_eq!(already_sending(None), Ok(()));
    }

    #[test]
    fn only_the_route_answers_503_and_only_our_own_post_is_adopted() {
        assert_eq!(next_step(Answer::NotTaken(Some(7)), Sender::Route), Step::Unavailable(Some(7)));
        assert_eq!(next_step(Answer::NotTaken(Some(7)), Sender::FollowUp), Step::Later(Some(7)));
        for maybe_taken in [Answer::Unanswered(Some(5)), Answer::InFlight(Some(5))] {
            assert_eq!(next_step(maybe_taken, Sender::Route), Step::Later(Some(5)), "202, never 503");
        }
        let (project, post) = ids();
        assert!(is_ours(&taken(1, EntryStatus::Published), &project, &post, 1));
        assert!(!is_ours(&taken(2, EntryStatus::Published), &project, &post, 1), "another generation");
        let mut other = taken(1, EntryStatus::Published);
        other.owner = Some((project.clone(), PostId::parse("other").unwrap()));
        assert!(!is_ours(&other, &project, &post, 1), "another post");
    }

    #[test]
    fn follow_ups_back_off_from_the_base_honour_retry_after_and_stay_within_sqs_delays() {
        assert_eq!([0, 1, 2, 3].map(|n| follow_up_delay(60, n, None)), [60, 120, 240, 480]);
        assert_eq!(follow_up_delay(60, 10, None), MAX_FOLLOW_UP_DELAY_SECONDS);
        assert_eq!(follow_up_delay(1, 0, Some(30)), 30);
        assert_eq!(follow_up_delay(1, 30, None), 16, "a short base stays short");
        let s = sending();
        assert!(!s.given_up(s.since.plus_seconds(GIVE_UP_AFTER_SECONDS)));
        assert!(s.given_up(s.since.plus_seconds(GIVE_UP_AFTER_SECONDS + 1)));
    }

    #[test]
    fn a_post_that_holds_only_the_publication_that_created_it_has_no_history_yet() {
        let s = sending();
        assert_eq!(recorded(&PostState::default(), Some(&s)), None);
        assert!(recorded(&PostState::default(), None).is_some());
        assert!(recorded(&PostState::default(), Some(&Sending { new_post: false, ..s.clone() })).is_some());
        // Once the app was answered 202, the history speaks of what it was shown.
        let (nothing, answered) = (PostState::default(), Sending { shown: true, ..s.clone() });
        let shown_to_app = recorded(&nothing, Some(&answered)).unwrap();
        assert_eq!(shown_to_app.overall(s.since).as_str(), "publishing");
        assert!(shown_to_app.entries.values().all(|e| e.status == EntryStatus::Queued));
        let marked = sending_after(Some(s.clone()), Some(SendingChange::Shown(s.generation)), &PostState::default());
        assert!(marked.is_some_and(|m| m.shown));
        let other = sending_after(Some(s.clone()), Some(SendingChange::Shown(s.generation + 1)), &PostState::default());
        assert!(other.is_some_and(|m| !m.shown), "another generation's 202 marks nothing");
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
