//! Fair use of the shared publishing service and the shared table: a token bucket per project and
//! kind of call, so that one project cannot spend the service's whole budget (60 calls a minute for
//! small accounts), and one for a project's post writes, so that no tenant can write without limit.

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// The app routes that call the service, each with its own budget, and the read routes, which
/// share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    Refresh,
    Sync,
    Publish,
    Connect,
    /// The read routes (connections, a post, the histories): one budget for all of them.
    Read,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Refresh => "refresh",
            CallKind::Sync => "sync",
            CallKind::Publish => "publish",
            CallKind::Connect => "connect",
            CallKind::Read => "read",
        }
    }
}

/// How many calls a minute a project may make of one kind; a burst of twice that is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u32,
}

impl Limit {
    /// The limits of app-api.md: 10 Refreshes, 10 Connects, 30 Syncs and 30 publishes a minute.
    pub const fn default_for(kind: CallKind) -> Limit {
        match kind {
            CallKind::Refresh | CallKind::Connect => Limit { per_minute: 10 },
            CallKind::Sync | CallKind::Publish => Limit { per_minute: 30 },
            CallKind::Read => Limit::READS,
        }
    }

    /// The reads a project may make a minute, every read route together (production.md,
    /// section 6): generous, so only a runaway poller meets it.
    pub const READS: Limit = Limit { per_minute: 300 };

    /// The post writes of any kind a project may make a minute (app-api.md), drafts included.
    pub const POST_WRITES: Limit = Limit { per_minute: 120 };
}

/// Every per-project limit, a minute each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub refresh: Limit,
    pub sync: Limit,
    pub publish: Limit,
    pub connect: Limit,
    pub post_writes: Limit,
    pub reads: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            refresh: Limit::default_for(CallKind::Refresh),
            sync: Limit::default_for(CallKind::Sync),
            publish: Limit::default_for(CallKind::Publish),
            connect: Limit::default_for(CallKind::Connect),
            post_writes: Limit::POST_WRITES,
            reads: Limit::READS,
        }
    }
}

/// A lane of a project's budget item. The post writes lane lives on the publish item, so a
/// publish takes its call and its write in one conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectLane {
    Calls,
    PostWrites,
}

/// What a route read of a project's budget item: each lane's `tat` (Unix ms), `None` when level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub calls: Option<i64>,
    pub writes: Option<i64>,
}

impl Seen {
    pub fn lane(self, lane: ProjectLane) -> Option<i64> {
        match lane {
            ProjectLane::Calls => self.calls,
            ProjectLane::PostWrites => self.writes,
        }
    }
}

/// What an app request spends of its project's budgets before it acts (app-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Refresh,
    Sync,
    Connect,
    /// A publish: a call and a post write.
    Publish,
    /// A post stored without a call (`draft: true`, or a refused new post kept as a draft).
    Draft,
    ManualDelete,
    /// A read route: nothing called or written, but one project must not take the route's
    /// shared throttle from every other.
    Read,
}

impl Spend {
    /// The budget item it takes from and the lanes it takes there, all or none.
    pub fn lanes(self, limits: &Limits) -> (CallKind, Vec<(ProjectLane, Rate)>) {
        let writes = (ProjectLane::PostWrites, limits.post_writes.allowance());
        match self {
            Spend::Refresh => (CallKind::Refresh, vec![(ProjectLane::Calls, limits.refresh.rate())]),
            Spend::Sync => (CallKind::Sync, vec![(ProjectLane::Calls, limits.sync.rate())]),
            Spend::Connect => (CallKind::Connect, vec![(ProjectLane::Calls, limits.connect.rate())]),
            Spend::Publish => (CallKind::Publish, vec![(ProjectLane::Calls, limits.publish.rate()), writes]),
            Spend::Draft | Spend::ManualDelete => (CallKind::Publish, vec![writes]),
            Spend::Read => (CallKind::Read, vec![(ProjectLane::Calls, limits.reads.rate())]),
        }
    }
}

const MINUTE_MS: i64 = 60_000;

/// A rate as a generic cell-rate algorithm keeps it: calls at least `interval_ms` apart on
/// average, up to `tolerance_ms` ahead of that (the burst). The stored state of one lane is a
/// single time, `tat` (Unix ms): when the lane is level again. A lane is taken by one atomic
/// conditional write — a start (`tat` at or before now) or an advance (`tat` moved on by the
/// interval) — so concurrent takers never overwrite each other and none is lost to contention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval_ms: i64,
    pub tolerance_ms: i64,
}

impl Rate {
    /// At most `calls` in any 60-second window, `burst` of them at once (at least one, at most
    /// all): a full burst plus what the rate refills in the rest of the window stays within it.
    pub fn within(calls: u32, burst: u32) -> Rate {
        let calls = i64::from(calls.max(1));
        let burst = i64::from(burst).clamp(1, calls);
        let steady = calls + 1 - burst;
        let interval_ms = (MINUTE_MS + steady - 1) / steady;
        Rate { interval_ms, tolerance_ms: (burst - 1) * interval_ms }
    }

    /// The same pace with no burst: taken only while the lane is level (nothing borrowed ahead).
    pub fn level_only(self) -> Rate {
        Rate { tolerance_ms: 0, ..self }
    }

    /// The most calls the lane grants at once: its burst (a lane only looked at limits nothing).
    pub fn burst(self) -> u32 {
        if self.interval_ms <= 0 {
            return u32::MAX;
        }
        u32::try_from(self.tolerance_ms / self.interval_ms + 1).unwrap_or(u32::MAX)
    }

    /// The same lane taken `calls` at a time (at most its burst): one take of the result moves
    /// the lane as `calls` takes of this would, all or none — an operation's calls are taken
    /// before its first, so it is never refused half way.
    pub fn for_calls(self, calls: u32) -> Rate {
        let n = i64::from(calls.clamp(1, self.burst()));
        Rate { interval_ms: n * self.interval_ms, tolerance_ms: self.tolerance_ms - (n - 1) * self.interval_ms }
    }

    /// The `tat` that keeps a lane shut until `until_ms`.
    pub fn shut_until(self, until_ms: i64) -> i64 {
        until_ms + self.tolerance_ms
    }
}

impl Limit {
    /// A project's pace for one kind: the limit a minute, a burst of twice that.
    pub fn rate(self) -> Rate {
        let per_minute = i64::from(self.per_minute.max(1));
        let interval_ms = (MINUTE_MS + per_minute - 1) / per_minute;
        Rate { interval_ms, tolerance_ms: (2 * per_minute - 1) * interval_ms }
    }

    /// The whole minute's allowance at once, then the limit's own pace: a project may write a
    /// month's generated posts in one go and is refused the next (production.md, section 6).
    /// A lane that keeps one time cannot also forbid a second full minute in the sliding minute
    /// after a burst; at most twice the limit can fall in any 60 seconds, never more.
    pub fn allowance(self) -> Rate {
        let per_minute = i64::from(self.per_minute.max(1));
        let interval_ms = (MINUTE_MS + per_minute - 1) / per_minute;
        Rate { interval_ms, tolerance_ms: (per_minute - 1) * interval_ms }
    }
}

/// What was last seen of a project's bucket for one kind (its `tat`, Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub tat: i64,
}

/// Refused: try again after this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
}

/// One lane's conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The lane is level (`tat` absent or at most `now`): set `tat` to `to`.
    Start { now: i64, to: i64 },
    /// The lane is ahead (`now < tat <= at_most`): add `by` to `tat`.
    Advance { now: i64, at_most: i64, by: i64 },
}

impl Move {
    /// The lane after this move, when its condition holds of `tat`; `None` when it does not.
    pub fn apply(self, tat: Option<i64>) -> Option<i64> {
        match (self, tat) {
            (Move::Start { to, .. }, None) => Some(to),
            (Move::Start { now, to }, Some(t)) if t <= now => Some(to),
            (Move::Advance { now, at_most, by }, Some(t)) if t > now && t <= at_most => Some(t + by),
            _ => None,
        }
    }
}

/// Takes one call from every lane at `now` (all or none): the writes to make, each conditional on
/// the lane being as seen, or how long until every lane has room. A writer whose condition fails
/// reads the lanes again and asks once more; lanes only move forward, so that ends within a few
/// rounds, either taken or refused.
pub fn take(lanes: &[(Option<i64>, Rate)], now: Timestamp) -> Result<Vec<Move>, Limited> {
    take_ahead(lanes, now, 0)
}

/// As `take`, but a lane may also be taken up to `ahead_ms` past its room: a place in a line,
/// whose moment is `slot` of what the lane held before.
pub fn take_ahead(lanes: &[(Option<i64>, Rate)], now: Timestamp, ahead_ms: i64) -> Result<Vec<Move>, Limited> {
    let now = now.unix_millis();
    let mut wait_ms = 0;
    let mut moves = Vec::with_capacity(lanes.len());
    for &(tat, rate) in lanes {
        let room = rate.tolerance_ms + ahead_ms;
        match tat {
            None => moves.push(Move::Start { now, to: now + rate.interval_ms }),
            Some(t) if t <= now => moves.push(Move::Start { now, to: now + rate.interval_ms }),
            Some(t) if t - room <= now => moves.push(Move::Advance { now, at_most: now + room, by: rate.interval_ms }),
            Some(t) => wait_ms = wait_ms.max(t - room - now),
        }
    }
    if wait_ms > 0 {
        return Err(Limited { retry_after: u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1) });
    }
    Ok(moves)
}

/// The moment a take from a lane that held `before` is for: at once, or its place in the line.
pub fn slot(before: Option<i64>, rate: Rate, now: Timestamp) -> Timestamp {
    let now = now.unix_millis();
    Timestamp::from_unix_millis(before.map_or(now, |t| (t - rate.tolerance_ms).max(now)))
}

/// A project's bucket for one kind, as a single lane.
pub fn take_one(bucket: Option<&Bucket>, limit: Limit, now: Timestamp) -> Result<Move, Limited> {
    take(&[(bucket.map(|b| b.tat), limit.rate())], now).map(|moves| moves[0])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + ms)
    }

    /// One lane taken at the given offsets (ms): the offsets that were allowed.
    fn allowed(rate: Rate, offsets: &[i64]) -> Vec<i64> {
        let mut tat = None;
        let mut taken = Vec::new();
        for &ms in offsets {
            if let Ok(moves) = take(&[(tat, rate)], at_ms(ms)) {
                tat = Some(moves[0].apply(tat).expect("a move made from what was seen applies to it"));
                taken.push(ms);
            }
        }
        taken
    }

    fn most_in_any_window(taken: &[i64], window_ms: i64) -> usize {
        taken
            .iter()
            .enumerate()
            .map(|(i, start)| taken[i..].iter().take_while(|t| **t - start < window_ms).count())
            .max()
            .unwrap_or(0)
    }

    proptest! {
        /// An operation's calls taken at once move a lane exactly as that many single takes at
        /// the same moment would: all taken, or (one of them refused) none.
        #[test]
        fn calls_taken_at_once_are_the_same_as_one_by_one(
            calls in 1u32..1_300,
            burst in 1u32..40,
            before in prop::collection::vec(0i64..5_000, 0..60),
            now in 0i64..6_000,
            n in 1u32..8,
        ) {
            let rate = Rate::within(calls, burst);
            let mut tat = None;
            for ms in before.iter().copied().filter(|ms| *ms <= now) {
                if let Ok(m) = take(&[(tat, rate)], at_ms(ms)) {
                    tat = m[0].apply(tat);
                }
            }
            let n = n.min(rate.burst());
            let mut one_by_one = Some(tat);
            for _ in 0..n {
                one_by_one = one_by_one.and_then(|t| take(&[(t, rate)], at_ms(now)).ok().map(|m| m[0].apply(t)));
            }
            let at_once = take(&[(tat, rate.for_calls(n))], at_ms(now)).ok().map(|m| m[0].apply(tat));
            prop_assert_eq!(at_once, one_by_one);
        }
    }

    #[test]
    fn post_writes_take_a_whole_minute_at_once_and_a_publish_takes_its_call_and_its_write() {
        let limits = Limits::default();
        let (item, lanes) = Spend::Draft.lanes(&limits);
        assert_eq!((item, lanes.len()), (CallKind::Publish, 1));
        let writes = lanes[0].1;
        assert_eq!(allowed(writes, &[0; 130]).len(), 120, "a whole minute's writes at once, and not the 121st");
        let every_100ms: Vec<i64> = (0..6_000).map(|n| n * 100).collect();
        let taken = allowed(writes, &every_100ms);
        assert!(most_in_any_window(&taken, 60_000) < 240, "never two whole minutes in one");
        assert!(taken.len() >= 120 + 9 * 120, "and two a second after the burst: {}", taken.len());
        let (item, lanes) = Spend::Publish.lanes(&limits);
        let kinds: Vec<ProjectLane> = lanes.iter().map(|(l, _)| *l).collect();
        assert_eq!((item, kinds), (CallKind::Publish, vec![ProjectLane::Calls, ProjectLane::PostWrites]));
        assert_eq!(Spend::ManualDelete.lanes(&limits).0, CallKind::Publish, "every post write shares one lane");
        assert_eq!(Spend::Connect.lanes(&limits).1[0].1, Limit { per_minute: 10 }.rate());
        let (item, lanes) = Spend::Read.lanes(&limits);
        assert_eq!(
            (item, lanes.clone()),
            (CallKind::Read, vec![(ProjectLane::Calls, Limit { per_minute: 300 }.rate())])
        );
        assert_eq!(allowed(lanes[0].1, &[0; 700]).len(), 600, "reads: a burst of twice 300");
    }

    #[test]
    fn a_burst_of_twice_the_limit_then_the_rate() {
        let limit = Limit::default_for(CallKind::Refresh);
        assert_eq!(allowed(limit.rate(), &[0; 25]).len(), 20, "a burst of twice ten");
        let mut tat = None;
        for _ in 0..20 {
            tat = take_one(tat.as_ref(), limit, at_ms(0))
                .unwrap()
                .apply(tat.map(|b: Bucket| b.tat))
                .map(|tat| Bucket { tat });
        }
        assert_eq!(take_one(tat.as_ref(), limit, at_ms(0)), Err(Limited { retry_after: 6 }));
        assert!(take_one(tat.as_ref(), limit, at_ms(5_999)).is_err());
        assert!(take_one(tat.as_ref(), limit, at_ms(6_000)).is_ok(), "one call every six seconds");
    }

    #[test]
    fn a_clock_that_went_backwards_refills_nothing() {
        let rate = Limit { per_minute: 1 }.rate();
        let taken = allowed(rate, &[60_000, 60_000, 0, 30_000]);
        assert_eq!(taken, vec![60_000, 60_000], "the burst of two, then nothing until a minute later");
    }

    #[test]
    fn a_move_applies_only_to_the_lane_it_was_made_from() {
        let rate = Rate::within(10, 2);
        let start = take(&[(None, rate)], at_ms(0)).unwrap()[0];
        assert_eq!(start.apply(None), Some(at_ms(0).unix_millis() + rate.interval_ms));
        let ahead = start.apply(None);
        assert_eq!(start.apply(ahead), None, "someone else started the lane: look again");
        let advance = take(&[(ahead, rate)], at_ms(0)).unwrap()[0];
        assert_eq!(advance.apply(ahead), ahead.map(|t| t + rate.interval_ms));
        let full = advance.apply(ahead);
        assert_eq!(advance.apply(full.map(|t| t + rate.tolerance_ms)), None, "past its burst meanwhile: refused");
    }

    #[test]
    fn a_lane_shut_until_a_time_has_room_again_exactly_then() {
        let rate = Rate::within(60, 3);
        let shut = Some(rate.shut_until(at_ms(20_000).unix_millis()));
        assert_eq!(take(&[(shut, rate)], at_ms(0)), Err(Limited { retry_after: 20 }));
        assert!(take(&[(shut, rate)], at_ms(19_999)).is_err());
        assert!(take(&[(shut, rate)], at_ms(20_000)).is_ok());
    }

    proptest! {
        /// A project's bucket: in any window of `w` ms, no more than the burst plus what the rate
        /// refills in `w`.
        #[test]
        fn never_more_than_the_burst_plus_the_rate(
            per_minute in 1u32..40,
            gaps in prop::collection::vec(0i64..5_000, 1..200),
        ) {
            let offsets: Vec<i64> = gaps.iter().scan(0, |t, g| { *t += g; Some(*t) }).collect();
            let taken = allowed(Limit { per_minute }.rate(), &offsets);
            for (i, start) in taken.iter().enumerate() {
                for (j, end) in taken.iter().enumerate().skip(i) {
                    let window = end - start;
                    let most = 2 * u64::from(per_minute) + (window as u64 * u64::from(per_minute)).div_ceil(60_000);
                    prop_assert!((j - i + 1) as u64 <= most, "{} calls in {} ms", j - i + 1, window);
                }
            }
        }

        /// `Limit::allowance`: the whole limit at once from a level lane, and never more than
        /// twice the limit in any 60-second window, however the writes come.
        #[test]
        fn an_allowance_is_whole_at_once_and_never_twice_over(
            per_minute in 1u32..400,
            gaps in prop::collection::vec(0i64..400, 1..600),
        ) {
            let rate = Limit { per_minute }.allowance();
            prop_assert_eq!(allowed(rate, &vec![0; per_minute as usize + 1]).len(), per_minute as usize);
            let offsets: Vec<i64> = gaps.iter().scan(0, |t, g| { *t += g; Some(*t) }).collect();
            let taken = allowed(rate, &offsets);
            prop_assert!(most_in_any_window(&taken, 60_000) < 2 * per_minute as usize);
        }

        /// `Rate::within`: never more than `calls` in any 60-second window, however they come;
        /// and a steady caller gets at least all but the burst of them in a minute.
        #[test]
        fn within_holds_in_any_sixty_second_window(
            calls in 1u32..1_300,
            burst in 0u32..60,
            gaps in prop::collection::vec(0i64..400, 1..600),
        ) {
            let rate = Rate::within(calls, burst);
            let offsets: Vec<i64> = gaps.iter().scan(0, |t, g| { *t += g; Some(*t) }).collect();
            let taken = allowed(rate, &offsets);
            prop_assert!(most_in_any_window(&taken, 60_000) <= calls as usize);
            let every_ms: Vec<i64> = (0..60_000).step_by(5).collect();
            let steady = allowed(rate, &every_ms).len() as u32;
            // Sampled every 5 ms, a steady caller loses at most 5 ms of every interval.
            let steady_rate = u64::from(calls + 1 - burst.clamp(1, calls));
            let most_lost = steady_rate * 5 * steady_rate / 60_000 + 1;
            prop_assert!(u64::from(steady) + most_lost >= steady_rate, "{steady} of {calls}");
        }
    }
}
