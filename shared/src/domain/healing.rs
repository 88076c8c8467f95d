//! The reconciler's judgement: which posts and projects need a look at the service, when, and in
//! what order a pass spends its calls. Every writer records plain facts (since when a post waits,
//! when a project was last checked, when a token expires); the pass applies its own settings.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::connection::{Connection, ConnectionStatus};
use super::ids::{PostId, ProjectId};
use super::post::{EntryStatus, Generation, PostState};
use super::time::Timestamp;

/// A connected token expiring within this window is shown as `expires_soon`.
pub const EXPIRY_WARNING_SECONDS: i64 = 7 * 24 * 3600;

/// The reconciler's settings (healing-and-history.md; `RECONCILE_*` locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a post may wait for the service's word before a pass Syncs it.
    pub grace_seconds: i64,
    /// How old a project's last check against the live list may get.
    pub connections_max_age_seconds: i64,
    /// Most calls to the service one pass makes.
    pub max_calls: u32,
    /// Passes that run side by side, each on its own lease and its own shards of the index
    /// (`lease_shards`): a divisor of `INDEX_SHARDS`.
    pub leases: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { grace_seconds: 600, connections_max_age_seconds: 86_400, max_calls: 20, leases: 1 }
    }
}

/// A post waiting for the service: since when (the post is stuck `grace` after that), about which
/// generation, and how many passes have tried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub since: Timestamp,
    pub generation: Generation,
    #[serde(default)]
    pub tries: u32,
}

/// The newest generation with a copy still queued (not cancelled): what the post waits for.
fn waiting_generation(state: &PostState) -> Option<Generation> {
    state
        .entries
        .values()
        .filter(|e| e.status == EntryStatus::Queued && !state.is_cancelled(e))
        .map(|e| e.generation)
        .max()
}

/// The watch a post carries after a write at `now`: none once nothing is queued; the previous
/// one while the same generation still waits (so a webhook saying "still pending" does not reset
/// the back-off); else a new one from the scheduled time of that generation, or from `now`.
pub fn post_watch(state: &PostState, previous: Option<Watch>, now: Timestamp) -> Option<Watch> {
    let generation = waiting_generation(state)?;
    if let Some(previous) = previous.filter(|p| p.generation == generation) {
        return Some(previous);
    }
    let scheduled = state.schedule.filter(|s| s.generation == generation).map(|s| s.at);
    Some(Watch { since: scheduled.unwrap_or(now), generation, tries: 0 })
}

/// When a watched post is stuck: `grace` after `since`.
pub fn stuck_at(watch: Watch, grace_seconds: i64) -> Timestamp {
    watch.since.plus_seconds(grace_seconds)
}

/// The watch after a pass at `now` Synced the post and it still waits: the n-th such pass puts
/// the next look n times `grace` later, so a post the service never settles costs a number of
/// calls a day that grows only with the square root of the day's length.
pub fn tried(watch: Watch, now: Timestamp, grace_seconds: i64) -> Watch {
    let tries = watch.tries.saturating_add(1);
    Watch { since: now.plus_seconds(grace_seconds * i64::from(tries - 1)), generation: watch.generation, tries }
}

/// When a connection's token next matters: when the warning window opens, then when it expires.
/// None for a connection that is not `connected`, has no known expiry, or expired already.
pub fn token_look(connection: &Connection, now: Timestamp) -> Option<Timestamp> {
    if connection.status != ConnectionStatus::Connected {
        return None;
    }
    let expires = connection.view().token_expires_at?;
    let warning = expires.plus_seconds(-EXPIRY_WARNING_SECONDS);
    if now < warning {
        Some(warning)
    } else if now < expires {
        Some(expires)
    } else {
        None
    }
}

/// Whether a connected token expires within the warning window at `now`.
pub fn expires_soon(connection: &Connection, now: Timestamp) -> bool {
    connection.status == ConnectionStatus::Connected
        && connection
            .view()
            .token_expires_at
            .is_some_and(|at| now < at && at <= now.plus_seconds(EXPIRY_WARNING_SECONDS))
}

/// One piece of work a pass may do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    Sync { project: ProjectId, post: PostId },
    Refresh { project: ProjectId },
}

impl Work {
    pub fn project(&self) -> &ProjectId {
        match self {
            Work::Sync { project, .. } | Work::Refresh { project } => project,
        }
    }
}

/// The most calls a Refresh can cost: the list and its health, and the profile when the list is
/// empty. (A Sync costs one per generation it asks about, known once the post is read.)
pub const REFRESH_CALLS: u32 = 3;

/// The calls a pass takes from the budget before a Refresh's first: the list and its health, asked
/// side by side (the profile, asked only of an empty list, takes its own). Taken at once, a
/// Refresh is never refused half way and never repeats a call it already paid for.
pub const REFRESH_CALLS_AT_ONCE: u32 = 2;

/// The order a pass takes its work in: oldest first, but in rounds, so that no project gets a
/// second piece of work while another project's first one waits. `found` is the work with the
/// time it became due; the same work found twice counts once (at its earliest time).
pub fn fair_order(found: Vec<(Timestamp, Work)>) -> Vec<Work> {
    let mut earliest: BTreeMap<Work, Timestamp> = BTreeMap::new();
    for (due, work) in found {
        earliest.entry(work).and_modify(|t| *t = (*t).min(due)).or_insert(due);
    }
    let mut sorted: Vec<(Timestamp, Work)> = earliest.into_iter().map(|(w, t)| (t, w)).collect();
    sorted.sort();
    // Each project's queue, and the projects in the order of their oldest work.
    let mut queues: BTreeMap<ProjectId, VecDeque<Work>> = BTreeMap::new();
    let mut projects: Vec<ProjectId> = Vec::new();
    for (_, work) in sorted {
        let project = work.project().clone();
        if !queues.contains_key(&project) {
            projects.push(project.clone());
        }
        queues.entry(project).or_default().push_back(work);
    }
    let total: usize = queues.values().map(VecDeque::len).sum();
    let mut order = Vec::with_capacity(total);
    while order.len() < total {
        for project in &projects {
            if let Some(work) = queues.get_mut(project).and_then(VecDeque::pop_front) {
                order.push(work);
            }
        }
    }
    order
}

/// The share of a pass's calls kept for stuck posts while stale projects also wait (the rest is
/// the stale projects'; either kind may use what the other leaves).
pub const STUCK_POSTS_PERCENT: u32 = 70;

/// A pass's order: stuck posts and stale projects each in `fair_order`, interleaved so that each
/// kind gets its share of the calls (`STUCK_POSTS_PERCENT`): a stuck post is never starved by
/// stale projects, nor the daily checks by a flood of stuck posts.
pub fn pass_order(posts: Vec<(Timestamp, Work)>, projects: Vec<(Timestamp, Work)>) -> Vec<Work> {
    let mut posts = VecDeque::from(fair_order(posts));
    let mut projects = VecDeque::from(fair_order(projects));
    let (mut post_calls, mut project_calls) = (0u64, 0u64);
    let mut order = Vec::with_capacity(posts.len() + projects.len());
    loop {
        // The kind furthest below its share goes next (a Sync counts one call, a Refresh its most).
        let posts_behind = post_calls * 100 <= (post_calls + project_calls) * u64::from(STUCK_POSTS_PERCENT);
        let next = match (posts.is_empty(), projects.is_empty()) {
            (true, true) => return order,
            (false, true) => posts.pop_front(),
            (true, false) => projects.pop_front(),
            (false, false) if posts_behind => posts.pop_front(),
            (false, false) => projects.pop_front(),
        };
        match next {
            Some(work @ Work::Sync { .. }) => {
                post_calls += 1;
                order.push(work);
            }
            Some(work) => {
                project_calls += u64::from(REFRESH_CALLS);
                order.push(work);
            }
            None => return order,
        }
    }
}

/// The longest a pass waits for room in the shared budget before its next call.
pub const PASS_WAITS_AT_MOST_SECONDS: u64 = 15;

/// A pass the shared budget has no room for: wait `retry_after` seconds and go on when that is
/// short and the pass has the time (the reconciler is paced at its share); else `None`, the pass
/// ends and leaves its work for the next.
pub fn wait_for_room(retry_after: u64, seconds_left: u64) -> Option<u64> {
    (retry_after <= PASS_WAITS_AT_MOST_SECONDS && retry_after < seconds_left).then_some(retry_after.max(1))
}

/// The reconciler's index is spread over this many key values per kind of look, so that no one
/// key takes every waiting post's writes (capacity.md, "No hot key").
pub const INDEX_SHARDS: u32 = 16;

/// Which of the index's shards a project's items go under: a stable hash of the project, so a
/// project's work is in one shard and passes can split the shards between them.
pub fn index_shard(project: &ProjectId) -> u32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(project.as_str().as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % INDEX_SHARDS
}

/// Whether `leases` passes can split the index's shards evenly between them.
pub fn leases_allowed(leases: u32) -> bool {
    leases >= 1 && INDEX_SHARDS.is_multiple_of(leases)
}

/// The shards of the index that the pass holding lease `lease` (of `leases`) works on: every
/// project's work is in exactly one lease's shards, so passes side by side never do the same work.
pub fn lease_shards(lease: u32, leases: u32) -> Vec<u32> {
    let leases = leases.clamp(1, INDEX_SHARDS);
    (0..INDEX_SHARDS).filter(|shard| shard % leases == lease % leases).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::Platform;
    use crate::domain::connection::AccountLooks;
    use crate::domain::ids::AccountId;
    use crate::domain::post::{PlatformEntry, Schedule};

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + seconds)
    }

    fn state(entries: &[(Platform, Generation, EntryStatus)]) -> PostState {
        PostState {
            entries: entries.iter().map(|(p, g, s)| (*p, PlatformEntry::bare(*g, *s))).collect(),
            ..PostState::default()
        }
    }

    #[test]
    fn a_post_is_watched_while_a_copy_is_queued_and_not_cancelled() {
        let queued = state(&[(Platform::X, 1, EntryStatus::Queued), (Platform::Linkedin, 1, EntryStatus::Published)]);
        assert_eq!(post_watch(&queued, None, t(0)), Some(Watch { since: t(0), generation: 1, tries: 0 }));
        let settled = state(&[(Platform::X, 1, EntryStatus::Failed), (Platform::Linkedin, 1, EntryStatus::Published)]);
        assert_eq!(post_watch(&settled, Some(Watch { since: t(0), generation: 1, tries: 3 }), t(9)), None);
        let mut cancelled = queued.clone();
        cancelled.cancelled.insert(1);
        assert_eq!(post_watch(&cancelled, None, t(0)), None);
    }

    #[test]
    fn a_scheduled_post_waits_from_its_time_and_a_new_generation_starts_afresh() {
        let mut scheduled = state(&[(Platform::X, 2, EntryStatus::Queued)]);
        scheduled.schedule = Some(Schedule { generation: 2, at: t(3600) });
        let old = Watch { since: t(-100), generation: 1, tries: 4 };
        assert_eq!(post_watch(&scheduled, Some(old), t(0)), Some(Watch { since: t(3600), generation: 2, tries: 0 }));
        let same = Watch { since: t(5000), generation: 2, tries: 2 };
        assert_eq!(post_watch(&scheduled, Some(same), t(0)), Some(same), "the back-off is kept");
    }

    #[test]
    fn the_back_off_grows_with_each_try() {
        let grace = 600;
        let first = Watch { since: t(0), generation: 1, tries: 0 };
        assert_eq!(stuck_at(first, grace), t(600));
        let once = tried(first, t(600), grace);
        assert_eq!(stuck_at(once, grace), t(1200));
        let twice = tried(once, t(1200), grace);
        assert_eq!(stuck_at(twice, grace), t(2400));
        let thrice = tried(twice, t(2400), grace);
        assert_eq!(stuck_at(thrice, grace), t(4200));
    }

    #[test]
    fn leases_split_the_shards_so_each_projects_work_is_in_exactly_one() {
        for leases in [1, 2, 4, 8, 16] {
            assert!(leases_allowed(leases));
            let mut seen: Vec<u32> = (0..leases).flat_map(|lease| lease_shards(lease, leases)).collect();
            assert!((0..leases).all(|lease| lease_shards(lease, leases).len() as u32 == INDEX_SHARDS / leases));
            seen.sort_unstable();
            assert_eq!(seen, (0..INDEX_SHARDS).collect::<Vec<_>>(), "{leases} leases");
        }
        for leases in [0, 3, 5, 32] {
            assert!(!leases_allowed(leases), "{leases}");
        }
    }

    proptest! {
        /// A post the service never settles costs at most about sqrt(2 * day / grace) + 1 Syncs a
        /// day, whatever the grace, when every pass takes it as soon as it is stuck.
        #[test]
        fn a_post_never_settled_costs_a_bounded_number_of_calls_a_day(grace in 60i64..7200) {
            let day = 86_400;
            let mut watch = Watch { since: t(0), generation: 1, tries: 0 };
            let mut tries = 0u32;
            loop {
                let at = stuck_at(watch, grace);
                if at > t(day) { break; }
                tries += 1;
                watch = tried(watch, at, grace);
            }
            let bound = ((2.0 * day as f64 / grace as f64).sqrt()).ceil() as u32 + 1;
            prop_assert!(tries <= bound, "{} tries a day with grace {}", tries, grace);
        }

        /// Fair rounds: every piece of work is taken once, each project's work oldest first, and no
        /// project gets its (n+1)-th piece before every project with n pieces got its n-th.
        #[test]
        fn the_order_is_fair_and_complete(found in prop::collection::vec((0i64..50, 0u8..5, 0u8..6, any::<bool>()), 0..40)) {
            let found: Vec<(Timestamp, Work)> = found.into_iter().map(|(at, project, post, refresh)| {
                let project = ProjectId::parse(format!("proj_{project}")).unwrap();
                let work = if refresh { Work::Refresh { project } } else {
                    Work::Sync { project, post: PostId::parse(format!("post_{post}")).unwrap() }
                };
                (t(at), work)
            }).collect();
            let order = fair_order(found.clone());
            let mut distinct: Vec<Work> = found.iter().map(|(_, w)| w.clone()).collect();
            distinct.sort();
            distinct.dedup();
            let mut taken = order.clone();
            taken.sort();
            prop_assert_eq!(taken, distinct, "each piece of work exactly once");
            let mut seen: BTreeMap<ProjectId, usize> = BTreeMap::new();
            let rounds: Vec<usize> = order.iter().map(|w| {
                let n = seen.entry(w.project().clone()).or_default();
                *n += 1;
                *n
            }).collect();
            prop_assert!(rounds.windows(2).all(|w| w[0] <= w[1]), "rounds never go back: {:?}", rounds);
        }
    }

    #[test]
    fn a_token_is_looked_at_when_the_warning_opens_and_when_it_expires() {
        let expires = t(10 * 24 * 3600);
        let account = AccountId::parse("a1").unwrap();
        let connection = Connection {
            platform: Platform::X,
            status: ConnectionStatus::Connected,
            evidence_at: t(0),
            account_id: Some(account.clone()),
            username: None,
            display_name: None,
            reason: None,
            looks: Some(AccountLooks {
                evidence_at: t(0),
                account_id: account,
                avatar_url: None,
                profile_url: None,
                token_expires_at: Some(expires),
            }),
        };
        assert_eq!(token_look(&connection, t(0)), Some(t(3 * 24 * 3600)));
        assert!(!expires_soon(&connection, t(0)));
        assert_eq!(token_look(&connection, t(4 * 24 * 3600)), Some(expires));
        assert!(expires_soon(&connection, t(4 * 24 * 3600)));
        assert_eq!(token_look(&connection, expires), None);
        assert!(!expires_soon(&connection, expires), "expired is not 'soon'");
        let expired = Connection { status: ConnectionStatus::Expired, ..connection };
        assert_eq!(token_look(&expired, t(0)), None);
        assert!(!expires_soon(&expired, t(4 * 24 * 3600)));
    }

    fn stuck(n: usize) -> Vec<(Timestamp, Work)> {
        (0..n)
            .map(|i| {
                let work = Work::Sync {
                    project: ProjectId::parse(format!("proj_{i}")).unwrap(),
                    post: PostId::parse(format!("post_{i}")).unwrap(),
                };
                (Timestamp::from_unix(i as i64), work)
            })
            .collect()
    }

    fn stale(n: usize) -> Vec<(Timestamp, Work)> {
        (0..n)
            .map(|i| {
                (
                    Timestamp::from_unix(i as i64),
                    Work::Refresh { project: ProjectId::parse(format!("proj_s{i}")).unwrap() },
                )
            })
            .collect()
    }

    /// The calls the first `max_calls` of a pass's order spend on each kind.
    fn spent(order: &[Work], max_calls: u64) -> (u64, u64) {
        let (mut posts, mut projects) = (0, 0);
        for work in order {
            let cost = if matches!(work, Work::Sync { .. }) { 1 } else { u64::from(REFRESH_CALLS) };
            if posts + projects + cost > max_calls {
                break;
            }
            if cost == 1 { posts += 1 } else { projects += cost }
        }
        (posts, projects)
    }

    proptest! {
        /// With both kinds waiting, each gets about its share of any pass's calls; alone, one kind
        /// gets them all; nothing found is dropped.
        #[test]
        fn stuck_posts_and_stale_projects_each_get_their_share_of_a_pass(
            posts in 0usize..300, projects in 0usize..300, max_calls in 10u64..200,
        ) {
            let order = pass_order(stuck(posts), stale(projects));
            prop_assert_eq!(order.len(), posts + projects);
            let (to_posts, to_projects) = spent(&order, max_calls);
            let refresh = u64::from(REFRESH_CALLS);
            if posts as u64 >= max_calls && projects as u64 * refresh >= max_calls {
                let share = max_calls * u64::from(STUCK_POSTS_PERCENT) / 100;
                prop_assert!(to_posts + refresh >= share, "posts got {to_posts} of {max_calls}");
                prop_assert!(to_projects + refresh + 1 >= max_calls - share, "projects got {to_projects} of {max_calls}");
            }
            if projects == 0 {
                prop_assert_eq!(to_posts, (posts as u64).min(max_calls));
            }
        }
    }

    #[test]
    fn a_pass_waits_briefly_for_room_when_it_has_the_time_and_ends_otherwise() {
        assert_eq!(wait_for_room(2, 60), Some(2));
        assert_eq!(wait_for_room(0, 60), Some(1), "never a busy loop");
        assert_eq!(wait_for_room(PASS_WAITS_AT_MOST_SECONDS + 1, 60), None, "a long wait ends the pass");
        assert_eq!(wait_for_room(3, 3), None, "no time left to wait");
    }
}
