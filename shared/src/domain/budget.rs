//! One budget for the shared API key (capacity.md): every call to the publishing service, from
//! every function and every project, takes a token from it first.
//!
//! The budget is a few shards, each a set of lanes kept by `limits::Rate` (one atomic
//! conditional write per take). Every call takes the shard's `all` lane; user reads also take
//! their own lane (at most their share), and the reconciler its own lane, taking `all` only while
//! more than one operation's worth of its burst is left — what the others left over. A 429 from the service shuts every shard's `all`
//! lane until its `Retry-After`, so that no function calls a service that said stop.
//!
//! Past the budget a publish is not refused: it takes a place in the line (one more lane, spaced
//! like `all`) of the shard tried that opens first, and is sent by its follow-up at that moment,
//! oldest first. A new publish
//! goes straight to the service only while no line has formed on its shard.

use super::limits::{Limited, Rate};
use super::time::Timestamp;

/// Who is calling, for the shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Publishes and their follow-ups: may use all of the budget.
    Publish,
    /// Sync, Refresh and Connect, asked by a user.
    Reads,
    /// The reconciler's passes.
    Reconciler,
}

/// One counter of a shard, stored as an attribute of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    All,
    Reads,
    Reconciler,
    /// The publishes waiting past the budget: when the last place in line is.
    Line,
}

impl Lane {
    pub fn name(self) -> &'static str {
        match self {
            Lane::All => "all_tat",
            Lane::Reads => "reads_tat",
            Lane::Reconciler => "reconciler_tat",
            Lane::Line => "line_tat",
        }
    }
}

/// A place in a shard's line: the publish is sent at `at`, taking from that shard's `all` lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Booking {
    pub shard: u32,
    pub at: Timestamp,
}

/// How far ahead a place may be taken: a follow-up waits on SQS, whose delays end at 15 minutes.
pub const LINE_AHEAD_SECONDS: i64 = 14 * 60;

/// A lane that is only looked at: no line formed (taking it moves nothing).
const NO_LINE: Rate = Rate { interval_ms: 0, tolerance_ms: 0 };

/// The shares of the budget, in percent (template parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    pub reads_percent: u32,
    pub reconciler_percent: u32,
}

impl Default for Shares {
    fn default() -> Self {
        Shares { reads_percent: 60, reconciler_percent: 20 }
    }
}

/// At most this many shards: enough to spread the largest plan's 1,200 calls a minute.
pub const MAX_SHARDS: u32 = 8;
/// A shard holds at least this many calls a minute (so a small plan keeps a useful burst).
const CALLS_PER_SHARD: u32 = 60;
/// Shards a caller tries before it is told there is no room (a failed try costs one write).
pub const TRIES: usize = 2;
/// The longest a 429 shuts the budget.
pub const MAX_SHUT_SECONDS: u64 = 300;
/// How long a 429 without `Retry-After` (or `X-RateLimit-Reset`) shuts it.
pub const DEFAULT_SHUT_SECONDS: u64 = 60;

/// The budget of one API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub calls_per_minute: u32,
    pub shares: Shares,
}

impl Plan {
    pub fn new(calls_per_minute: u32) -> Plan {
        Plan { calls_per_minute: calls_per_minute.max(1), shares: Shares::default() }
    }

    pub fn shards(&self) -> u32 {
        (self.calls_per_minute / CALLS_PER_SHARD).clamp(1, MAX_SHARDS)
    }

    /// The calls a minute shard `shard` holds: the limit split as evenly as whole calls allow.
    pub fn shard_calls(&self, shard: u32) -> u32 {
        let n = self.shards();
        self.calls_per_minute / n + u32::from(shard % n < self.calls_per_minute % n)
    }

    fn all(&self, shard: u32) -> Rate {
        let calls = self.shard_calls(shard);
        Rate::within(calls, burst(calls))
    }

    /// The lanes a call of `class` takes on `shard`, all or none.
    pub fn lanes(&self, class: Class, shard: u32) -> Vec<(Lane, Rate)> {
        let calls = self.shard_calls(shard);
        let all = self.all(shard);
        match class {
            Class::Publish => vec![(Lane::All, all), (Lane::Line, NO_LINE)],
            Class::Reads => {
                let reads = share(calls, self.shares.reads_percent);
                vec![(Lane::All, all), (Lane::Reads, Rate::within(reads, burst(reads)))]
            }
            Class::Reconciler => {
                let own = share(calls, self.shares.reconciler_percent);
                // What the others leave: never the last of the burst, only room for one operation.
                let leftover =
                    Rate { tolerance_ms: all.tolerance_ms.min(i64::from(ONE_OPERATION - 1) * all.interval_ms), ..all };
                vec![(Lane::All, leftover), (Lane::Reconciler, Rate::within(own, burst(own)))]
            }
        }
    }

    /// The lanes an operation of `calls` calls of `class` takes on `shard` before its first call,
    /// all or none, and how many calls that is: at most the smallest burst of its lanes (the
    /// calls past it take their own).
    pub fn lanes_for(&self, class: Class, shard: u32, calls: u32) -> (u32, Vec<(Lane, Rate)>) {
        let mut lanes = self.lanes(class, shard);
        let n = lanes.iter().map(|(_, rate)| rate.burst()).fold(calls, u32::min).max(1);
        for (_, rate) in &mut lanes {
            *rate = rate.for_calls(n);
        }
        (n, lanes)
    }

    /// The lanes a booked publish takes when its moment comes: its shard's `all`, the line
    /// notwithstanding (it is the line).
    pub fn booked_lanes(&self, shard: u32) -> Vec<(Lane, Rate)> {
        vec![(Lane::All, self.all(shard))]
    }

    /// A shard's line: places spaced as `all` spends them.
    pub fn line(&self, shard: u32) -> Rate {
        self.all(shard).level_only()
    }

    /// The shards to try, in order, for a caller whose random draw is `draw`: one at random, then
    /// another.
    pub fn tries(&self, draw: u64) -> Vec<u32> {
        let n = u64::from(self.shards());
        let first = draw % n;
        let mut tries = vec![first as u32];
        if n > 1 && TRIES > 1 {
            tries.push(((first + 1 + (draw / n) % (n - 1)) % n) as u32);
        }
        tries
    }

    /// The `all` lane of `shard` that keeps the shard shut until `until`.
    pub fn shut(&self, shard: u32, until: Timestamp) -> i64 {
        self.all(shard).shut_until(until.unix_millis())
    }
}

/// The calls a single operation makes back to back (a Refresh: the list, its health, the profile).
const ONE_OPERATION: u32 = 3;

/// A lane's burst: a twentieth of its minute, and at least one whole operation (a Refresh must not
/// be refused half way through).
fn burst(calls: u32) -> u32 {
    (calls / 20).max(ONE_OPERATION).min(calls)
}

fn share(calls: u32, percent: u32) -> u32 {
    (calls * percent.min(100) / 100).max(1)
}

/// Until when a 429 shuts the budget: its `Retry-After` (or reset time), at most five minutes.
pub fn shut_until(now: Timestamp, retry_after: Option<u64>) -> Timestamp {
    let seconds = retry_after.unwrap_or(DEFAULT_SHUT_SECONDS).clamp(1, MAX_SHUT_SECONDS);
    now.plus_seconds(seconds as i64)
}

/// What a 429 from the service shows about whose limit it is (publisher-zernio.md, "Which 429").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TooMany {
    /// `X-RateLimit-Remaining: 0`: the team's request limit says it is spent.
    pub throughput_headers: bool,
    /// The answer names a connected account (`details.accountId`, `rateLimitedUntil`, ...).
    pub names_account: bool,
    /// The answer names a platform or a provider's quota (`platform`, `details.quotaExhausted`).
    pub names_platform: bool,
    /// `Retry-After` (or what `X-RateLimit-Reset` leaves), in seconds.
    pub retry_after: Option<u64>,
}

/// Whose limit a 429 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The team's request limit, shared by every project: it shuts the shared budget.
    Team,
    /// One connected account's or one provider's: it refuses that publication only.
    Account,
}

impl TooMany {
    /// Only a 429 with the throughput headers that names no account and no platform is the
    /// team's: closing the shared budget for one account at its cap would stop every tenant.
    pub fn whose(&self) -> Whose {
        if self.throughput_headers && !self.names_account && !self.names_platform {
            Whose::Team
        } else {
            Whose::Account
        }
    }

    /// Until when this 429 shuts the shared budget: only the team's does.
    pub fn shuts_until(&self, now: Timestamp) -> Option<Timestamp> {
        (self.whose() == Whose::Team).then(|| shut_until(now, self.retry_after))
    }
}

/// Of the refusals of the shards tried (each with its shard), the one that opens first. A publish
/// past the budget takes its place in that shard's line, no sooner than that refusal says: a
/// place on another shard, which may open later, could find no room when its moment comes.
pub fn soonest(refusals: impl IntoIterator<Item = (u32, Limited)>) -> Option<(u32, Limited)> {
    refusals.into_iter().min_by_key(|(_, l)| l.retry_after)
}

/// The shards' lanes as the store keeps them, in memory (for the simulation and this module's
/// tests): a take applies the moves `limits::take` decides, all or none, exactly as the store's
/// conditional write would, so what is proved of it holds of the store.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    lanes: std::collections::HashMap<(u32, Lane), i64>,
}

impl Ledger {
    /// One call (or one `lanes_for` operation) from `lanes` of `shard` at `now`, all or none.
    pub fn take(&mut self, shard: u32, lanes: &[(Lane, Rate)], now: Timestamp) -> Result<(), Limited> {
        let seen: Vec<_> = lanes.iter().map(|(lane, rate)| (self.lanes.get(&(shard, *lane)).copied(), *rate)).collect();
        let moves = super::limits::take(&seen, now)?;
        for ((lane, _), m) in lanes.iter().zip(moves) {
            let before = self.lanes.get(&(shard, *lane)).copied();
            self.lanes.insert((shard, *lane), m.apply(before).expect("a move made from what was seen applies to it"));
        }
        Ok(())
    }

    /// A place in `shard`'s line at `earliest` or after, as `SharedBudgetStore::book_shared` takes it.
    pub fn book(&mut self, plan: &Plan, shard: u32, earliest: Timestamp) -> Result<Booking, Limited> {
        let (held, line) = (self.lanes.get(&(shard, Lane::Line)).copied(), plan.line(shard));
        let moves = super::limits::take_ahead(&[(held, line)], earliest, LINE_AHEAD_SECONDS * 1000)?;
        self.lanes
            .insert((shard, Lane::Line), moves[0].apply(held).expect("a move made from what was seen applies to it"));
        Ok(Booking { shard, at: super::limits::slot(held, line, earliest) })
    }

    /// Every shard shut until `until`, as `SharedBudgetStore::shut_shared` shuts it.
    pub fn shut(&mut self, plan: &Plan, until: Timestamp) {
        for shard in 0..plan.shards() {
            let tat = self.lanes.entry((shard, Lane::All)).or_insert(i64::MIN);
            *tat = (*tat).max(plan.shut(shard, until));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + ms)
    }

    /// The shards as a store keeps them, taken the way the gate takes them.
    #[derive(Default)]
    struct Shards(Ledger);

    impl Shards {
        /// Room on a shard tried, or the refusal that opens first, with its shard.
        fn take(&mut self, plan: &Plan, class: Class, draw: u64, now: Timestamp) -> Result<(), (u32, Limited)> {
            let mut refused = Vec::new();
            for shard in plan.tries(draw) {
                match self.0.take(shard, &plan.lanes(class, shard), now) {
                    Ok(()) => return Ok(()),
                    Err(limited) => refused.push((shard, limited)),
                }
            }
            Err(soonest(refused).expect("at least one shard tried"))
        }

        fn book(&mut self, plan: &Plan, shard: u32, earliest: Timestamp) -> Result<Booking, Limited> {
            self.0.book(plan, shard, earliest)
        }

        fn take_booked(&mut self, plan: &Plan, booking: Booking, now: Timestamp) -> Result<(), Limited> {
            self.0.take(booking.shard, &plan.booked_lanes(booking.shard), now)
        }

        fn shut(&mut self, plan: &Plan, until: Timestamp) {
            self.0.shut(plan, until)
        }
    }

    fn most_in_any_minute(times: &[i64]) -> usize {
        times
            .iter()
            .enumerate()
            .map(|(i, start)| times[i..].iter().take_while(|t| **t - start < 60_000).count())
            .max()
            .unwrap_or(0)
    }

    fn class() -> impl Strategy<Value = Class> {
        prop_oneof![Just(Class::Publish), Just(Class::Reads), Just(Class::Reconciler)]
    }

    #[test]
    fn shards_split_the_limit_exactly() {
        for calls in [1, 30, 59, 60, 61, 600, 601, 1_200, 5_000] {
            let plan = Plan::new(calls);
            let total: u32 = (0..plan.shards()).map(|s| plan.shard_calls(s)).sum();
            assert_eq!(total, calls);
            assert!(plan.shards() <= MAX_SHARDS);
        }
        assert_eq!(Plan::new(60).shards(), 1);
        assert_eq!(Plan::new(600).shards(), 8);
    }

    #[test]
    fn a_caller_tries_two_different_shards() {
        let plan = Plan::new(600);
        for draw in 0..1_000u64 {
            let tries = plan.tries(draw);
            assert_eq!(tries.len(), 2);
            assert_ne!(tries[0], tries[1]);
            assert!(tries.iter().all(|s| *s < plan.shards()));
        }
        assert_eq!(Plan::new(60).tries(7), vec![0]);
    }

    #[test]
    fn a_429_shuts_the_budget_for_its_retry_after_and_at_most_five_minutes() {
        assert_eq!(shut_until(at_ms(0), Some(20)), at_ms(20_000));
        assert_eq!(shut_until(at_ms(0), Some(86_400)), at_ms(300_000));
        assert_eq!(shut_until(at_ms(0), None), at_ms(60_000));
        let plan = Plan::new(600);
        let mut shards = Shards::default();
        shards.shut(&plan, at_ms(20_000));
        for class in [Class::Publish, Class::Reads, Class::Reconciler] {
            for draw in 0..50 {
                let (_, refused) = shards.take(&plan, class, draw, at_ms(19_999)).unwrap_err();
                assert!(refused.retry_after >= 1 && refused.retry_after <= 20, "{refused:?}");
            }
        }
        // Publishes and reads reopen on time; the reconciler once the burst has refilled too.
        assert!(shards.take(&plan, Class::Publish, 3, at_ms(20_000)).is_ok());
        assert!(shards.take(&plan, Class::Reads, 4, at_ms(20_000)).is_ok());
        assert!(shards.take(&plan, Class::Reconciler, 5, at_ms(20_000 + 5_000)).is_ok());
    }

    fn too_many() -> impl Strategy<Value = TooMany> {
        (any::<bool>(), any::<bool>(), any::<bool>(), prop::option::of(0u64..100_000)).prop_map(
            |(throughput_headers, names_account, names_platform, retry_after)| TooMany {
                throughput_headers,
                names_account,
                names_platform,
                retry_after,
            },
        )
    }

    proptest! {
        /// Whatever 429s come back, only the team's throughput 429 (its headers, naming no
        /// account and no platform) shuts the shared budget: after any run of per-account 429s
        /// every caller still finds room, and a team 429 among them shuts it for its time.
        #[test]
        fn no_per_account_429_ever_shuts_the_shared_budget(
            calls_per_minute in prop_oneof![1u32..130, 500u32..1_300],
            answers in prop::collection::vec((too_many(), 0i64..5_000), 1..60),
            class in class(),
            draw in any::<u64>(),
        ) {
            let plan = Plan::new(calls_per_minute);
            let mut shards = Shards::default();
            let mut now = 0i64;
            let mut shut_till: Option<Timestamp> = None;
            for (answer, gap) in &answers {
                now += gap;
                let team = answer.throughput_headers && !answer.names_account && !answer.names_platform;
                prop_assert_eq!(answer.whose() == Whose::Team, team);
                match answer.shuts_until(at_ms(now)) {
                    Some(until) => {
                        prop_assert!(team, "a per-account 429 shut the budget: {:?}", answer);
                        prop_assert!(until <= at_ms(now).plus_seconds(MAX_SHUT_SECONDS as i64));
                        shards.shut(&plan, until);
                        shut_till = Some(shut_till.map_or(until, |t: Timestamp| t.max(until)));
                    }
                    None => prop_assert!(!team),
                }
            }
            let open = shards.take(&plan, class, draw, at_ms(now));
            match shut_till {
                Some(until) if until > at_ms(now) => prop_assert!(open.is_err(), "a team 429 shuts it"),
                Some(_) => {}
                None => prop_assert!(open.is_ok(), "the budget stayed open after per-account 429s only"),
            }
        }
    }

    proptest! {
        /// Whatever mix of callers comes, however fast: never more calls in any 60 seconds than
        /// the plan's limit, user reads never more than their share, the reconciler never more
        /// than its share, and nothing at all while the budget is shut.
        #[test]
        fn the_key_is_never_asked_more_than_its_plan(
            calls_per_minute in prop_oneof![1u32..130, 500u32..1_300],
            callers in prop::collection::vec((class(), any::<u64>(), 0i64..300), 1..1_500),
            shut_at in prop::option::of((0usize..1_500, 1u64..400)),
        ) {
            let plan = Plan::new(calls_per_minute);
            let mut shards = Shards::default();
            let (mut now, mut shut) = (0i64, 0i64..0i64);
            let mut taken: HashMap<Class, Vec<i64>> = HashMap::new();
            let mut all = Vec::new();
            for (i, (class, draw, gap)) in callers.into_iter().enumerate() {
                now += gap;
                if let Some((at, seconds)) = shut_at && at == i {
                    let until = shut_until(at_ms(now), Some(seconds));
                    shards.shut(&plan, until);
                    shut = now..until.unix_millis() - at_ms(0).unix_millis();
                }
                if shards.take(&plan, class, draw, at_ms(now)).is_ok() {
                    prop_assert!(!shut.contains(&now), "taken while shut");
                    taken.entry(class).or_default().push(now);
                    all.push(now);
                }
            }
            prop_assert!(most_in_any_minute(&all) <= calls_per_minute as usize);
            let reads_share = (0..plan.shards()).map(|s| share(plan.shard_calls(s), 60)).sum::<u32>();
            let reconciler_share = (0..plan.shards()).map(|s| share(plan.shard_calls(s), 20)).sum::<u32>();
            prop_assert!(most_in_any_minute(taken.get(&Class::Reads).map_or(&[][..], |v| v)) <= reads_share as usize);
            prop_assert!(most_in_any_minute(taken.get(&Class::Reconciler).map_or(&[][..], |v| v)) <= reconciler_share as usize);
        }

        /// Publishes past the budget queue in their shard's line: places come in the order they
        /// were taken, one interval apart; a new publish goes behind a line that has formed, never
        /// ahead of it; and every place, taken at its moment, finds room — with the key still
        /// asked no more than its plan in any minute.
        #[test]
        fn past_the_budget_publishes_are_sent_oldest_first_within_the_plan(
            calls_per_minute in prop_oneof![30u32..130, 500u32..1_300],
            arrivals in prop::collection::vec((any::<u64>(), 0i64..40), 1..400),
        ) {
            let plan = Plan::new(calls_per_minute);
            let mut shards = Shards::default();
            let mut now = 0i64;
            let mut sent = Vec::new();
            let mut places: Vec<(usize, Booking)> = Vec::new();
            for (i, (draw, gap)) in arrivals.iter().enumerate() {
                now += gap;
                match shards.take(&plan, Class::Publish, *draw, at_ms(now)) {
                    Ok(()) => sent.push(now),
                    Err((shard, limited)) => {
                        let earliest = at_ms(now).plus_seconds(limited.retry_after as i64);
                        if let Ok(place) = shards.book(&plan, shard, earliest) {
                            prop_assert!(place.at >= at_ms(now));
                            places.push((i, place));
                        }
                    }
                }
            }
            for shard in 0..plan.shards() {
                let line: Vec<_> = places.iter().filter(|(_, p)| p.shard == shard).collect();
                for pair in line.windows(2) {
                    let gap = pair[1].1.at.unix_millis() - pair[0].1.at.unix_millis();
                    prop_assert!(gap >= plan.line(shard).interval_ms, "places in order, one interval apart: {pair:?}");
                }
            }
            // Each place, taken at its moment (in the order of moments), finds room.
            let mut due: Vec<Booking> = places.iter().map(|(_, p)| *p).collect();
            due.sort_by_key(|p| p.at);
            for place in due {
                let t = place.at.unix_millis() - at_ms(0).unix_millis();
                prop_assert!(shards.take_booked(&plan, place, place.at).is_ok(), "no room at {t} for {place:?}");
                sent.push(t);
            }
            sent.sort_unstable();
            prop_assert!(most_in_any_minute(&sent) <= calls_per_minute as usize);
        }

        /// Publishes alone, arriving faster than the plan, get nearly all of it.
        #[test]
        fn publishes_may_use_the_whole_budget(calls_per_minute in 60u32..1_300, draws in any::<u64>()) {
            let plan = Plan::new(calls_per_minute);
            let mut shards = Shards::default();
            let mut taken = 0u32;
            let mut draw = draws;
            for ms in (0..60_000).step_by(20) {
                draw = draw.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                if shards.take(&plan, Class::Publish, draw >> 11, at_ms(ms)).is_ok() {
                    taken += 1;
                }
            }
            prop_assert!(taken * 100 >= calls_per_minute * 85, "{taken} of {calls_per_minute}");
        }
    }
}
