//! A day of the backend in virtual time (capacity.md, "The simulation"): no sleeping, no network.
//! Publishes, user reads and reconciler passes meet the shared budget, the per-project buckets,
//! the line, the follow-ups and the pass order through the domain's own functions
//! (`domain::budget`, `domain::limits`, `domain::publish`, `domain::healing`); the budget's shards
//! and buckets are kept as the store keeps them (a lane's `tat`, moved only as a conditional write
//! would move it). The service answers within its plan (a fixed window a minute, 429 past it)
//! with latencies drawn from a realistic spread.
//!
//! Not modelled: DynamoDB's own latency and throttling (its write units are counted, not
//! enforced), Lambda cold starts, SQS delivering a message later than asked, the service's
//! per-account `rateLimitedUntil`, and webhooks beyond the write units they cost.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use shared::domain::budget::{self, Booking, Class, Lane, Ledger, Plan};
use shared::domain::healing::{self, INDEX_SHARDS, REFRESH_CALLS_AT_ONCE, Work, index_shard, pass_order};
use shared::domain::limits::{self, Bucket, CallKind, Limit, Limited};
use shared::domain::publish;
use shared::domain::{PostId, ProjectId, Timestamp};

const DAY_MS: i64 = 86_400_000;
/// The day, and the hour after it for what was queued late.
const END_MS: i64 = DAY_MS + 3_600_000;
/// How long a pass runs at most (the function's 120 s, less its margin).
const PASS_SECONDS: i64 = 110;
const MINUTE_MS: i64 = 60_000;
/// Virtual midnight.
const T0: i64 = 1_800_000_000_000;

/// The load of capacity.md, "Holding at scale".
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub projects: u32,
    pub posts_per_day: f64,
    /// One project in this many is an agency publishing `agency_posts_per_day`.
    pub agency_one_in: u32,
    pub agency_posts_per_day: f64,
    pub webhooks_per_post: u32,
    /// Syncs and Refreshes a user asks for, a project a day.
    pub user_reads_per_day: f64,
    /// Posts whose last webhook never comes: the reconciler heals them.
    pub lost_webhook_share: f64,
    /// A backlog day: webhooks delivered at this many times the average rate.
    pub backlog_factor: f64,
}

impl Load {
    pub fn at(projects: u32) -> Load {
        Load {
            projects,
            posts_per_day: 20.0,
            agency_one_in: 1_000,
            agency_posts_per_day: 1_000.0,
            webhooks_per_post: 12,
            user_reads_per_day: 2.0,
            lost_webhook_share: 0.01,
            backlog_factor: 10.0,
        }
    }
}

/// The deployment's settings that matter here (template parameters).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub calls_per_minute: u32,
    pub pass_minutes: i64,
    pub grace_seconds: i64,
    pub wait_seconds: i64,
    pub follow_up_seconds: u64,
    /// Calls one pass may make; `None`: what the reconciler's share allows between passes.
    pub pass_calls: Option<u32>,
    /// Passes side by side (`ReconcilerLeases`), each on its lease's shards of the index.
    pub leases: u32,
}

impl Settings {
    pub fn on(calls_per_minute: u32) -> Settings {
        Settings {
            calls_per_minute,
            pass_minutes: 5,
            grace_seconds: 600,
            wait_seconds: 10,
            follow_up_seconds: 60,
            pass_calls: None,
            leases: 1,
        }
    }

    pub fn with_leases(self, leases: u32) -> Settings {
        Settings { leases, ..self }
    }

    /// The reconciler's calls a pass: its share of the minutes between passes, at most what a
    /// pass makes in its time (a call every 300 ms).
    pub fn pass_calls(&self) -> u32 {
        self.pass_calls.unwrap_or_else(|| {
            let share = Plan::new(self.calls_per_minute).shares.reconciler_percent;
            let by_share = u64::from(self.calls_per_minute) * u64::from(share) / 100 * self.pass_minutes as u64;
            by_share.clamp(10, (PASS_SECONDS * 1000 / 300) as u64) as u32
        })
    }
}

/// Write units of one DynamoDB write, by what it writes (items of about these sizes).
mod wcu {
    /// A post item (under 1 KB with four platforms: its draft is kept apart, `make bench`) in a
    /// transaction.
    pub const POST_IN_TRANSACTION: f64 = 2.0;
    /// A history record (under 1 KB) in a transaction.
    pub const HISTORY_IN_TRANSACTION: f64 = 2.0;
    /// The route's publication, stored before the call with its new draft (about 1 KB of content
    /// and media) in one transaction.
    pub const PUBLICATION: f64 = POST_IN_TRANSACTION + 2.0;
    /// The event id taken with a webhook (its own key).
    pub const EVENT: f64 = 2.0;
    /// A budget take, landed or refused (a conditional `UpdateItem` of a small item).
    pub const BUDGET_TAKE: f64 = 1.0;
    /// An index entry written, moved or removed (keys and two ids).
    pub const INDEX: f64 = 1.0;
    /// The post's writes a webhook makes on the project's key: the post and two history records.
    pub const WEBHOOK_ON_PROJECT: f64 = POST_IN_TRANSACTION + 2.0 * HISTORY_IN_TRANSACTION;
    /// The publish's answer on the project's key: the post and three history records.
    pub const ANSWER_ON_PROJECT: f64 = POST_IN_TRANSACTION + 3.0 * HISTORY_IN_TRANSACTION;
}

#[derive(Debug, Clone)]
struct Post {
    project: u32,
    arrived: i64,
    latency: i64,
    lost_webhook: bool,
    sent: Option<i64>,
    /// Refused 429 by its project's own limit (the app is told; nothing to send).
    refused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Publish { post: u32 },
    FollowUp { post: u32, booking: Option<(u32, i64)>, attempt: u32 },
    Read { project: u32, sync: bool },
    Pass,
    PassStep { lease: u32 },
}

/// The reconciler's pass while it runs.
struct Pass {
    order: VecDeque<Work>,
    calls: u32,
    started: i64,
}

/// What one day came to.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub projects: u32,
    pub calls_per_minute: u32,
    pub posts: u64,
    pub calls: u64,
    pub most_calls_in_any_minute: u64,
    pub service_429s: u64,
    pub answered_201: u64,
    pub answered_202: u64,
    /// Publishes refused 503 because of the budget (none is).
    pub answered_503: u64,
    /// Places in line taken at their moment whose shard had no room then (user reads take from
    /// the same `all` lane): each waits once more, still ahead of those behind it.
    pub places_without_room: u64,
    pub project_limit_429s: u64,
    pub user_reads_refused: u64,
    pub user_reads: u64,
    pub delay_p50_s: f64,
    pub delay_p99_s: f64,
    pub delay_max_s: f64,
    pub unsent_at_end: u64,
    pub stuck_posts: u64,
    pub healed_p50_min: f64,
    pub healed_max_min: f64,
    pub unhealed_at_end: u64,
    pub stale_checked_max_h: f64,
    pub passes_throttled: u64,
    pub pass_calls: u32,
    pub leases: u32,
    pub hottest_table_wcu_s: f64,
    pub hottest_index_wcu_s: f64,
    pub hottest_index_unsharded_wcu_s: f64,
    pub hottest_budget_wcu_s: f64,
    pub monthly_write_units: f64,
    pub publish_concurrency: u64,
}

impl Report {
    /// The bounds of capacity.md, each with whether it holds.
    pub fn bounds(&self) -> Vec<(&'static str, bool)> {
        vec![
            (
                "service calls in any minute <= the plan",
                self.most_calls_in_any_minute <= u64::from(self.calls_per_minute),
            ),
            ("no 429 from the service", self.service_429s == 0),
            ("every publish answered 201/202, none 503", self.answered_503 == 0),
            ("publish delay p99 under 10 minutes", self.delay_p99_s < 600.0 && self.unsent_at_end == 0),
            ("stuck posts healed within an hour", self.healed_max_min < 60.0 && self.unhealed_at_end == 0),
            ("stale projects checked within 24 h and a pass", self.stale_checked_max_h <= 24.0 + 2.0 * 5.0 / 60.0),
            ("hottest table key under 1,000 WCU/s", self.hottest_table_wcu_s < 1_000.0),
            ("hottest index key under 1,000 WCU/s", self.hottest_index_wcu_s < 1_000.0),
        ]
    }

    /// Every bound holds but the reconciler's (stuck posts healed, stale projects checked).
    pub fn short_of_passes(&self) -> bool {
        self.bounds().iter().enumerate().all(|(i, (_, ok))| *ok || i == 4 || i == 5)
    }

    pub fn holds(&self) -> bool {
        self.bounds().iter().all(|(_, ok)| *ok)
    }

    /// The table capacity.md asks for.
    pub fn table(&self) -> String {
        let ok = |b: bool| if b { "yes" } else { "**no**" };
        let b = self.bounds();
        let mut t = format!(
            "**{} projects on {} calls a minute** ({} posts, {} service calls in the day)\n\n| figure | value | bound | holds |\n|---|---|---|---|\n",
            thousands(u64::from(self.projects)),
            thousands(u64::from(self.calls_per_minute)),
            thousands(self.posts),
            thousands(self.calls)
        );
        let rows = [
            (
                "service calls in any minute",
                thousands(self.most_calls_in_any_minute),
                format!("<= {}", thousands(u64::from(self.calls_per_minute))),
                b[0].1,
            ),
            ("429s received from the service", self.service_429s.to_string(), "0".into(), b[1].1),
            (
                "publish answered 201 / 202 / 503",
                format!("{} / {} / {}", thousands(self.answered_201), thousands(self.answered_202), self.answered_503),
                "none 503".into(),
                b[2].1,
            ),
            (
                "publish delay to the service, p50 / p99 / max",
                format!("{:.0} s / {:.0} s / {:.0} s", self.delay_p50_s, self.delay_p99_s, self.delay_max_s),
                "p99 < 10 min".into(),
                b[3].1,
            ),
            (
                "stuck posts healed within, p50 / max",
                format!(
                    "{:.0} min / {:.0} min ({} stuck)",
                    self.healed_p50_min,
                    self.healed_max_min,
                    thousands(self.stuck_posts)
                ),
                "< 1 h".into(),
                b[4].1,
            ),
            (
                "stale projects checked within (most)",
                format!("{:.1} h", self.stale_checked_max_h),
                "<= 24 h + a pass".into(),
                b[5].1,
            ),
            (
                "hottest table key, backlog day",
                format!("{:.0} WCU/s", self.hottest_table_wcu_s),
                "< 1,000".into(),
                b[6].1,
            ),
            (
                "hottest index key, backlog day",
                format!("{:.0} WCU/s (unsharded: {:.0})", self.hottest_index_wcu_s, self.hottest_index_unsharded_wcu_s),
                "< 1,000".into(),
                b[7].1,
            ),
        ];
        for (figure, value, bound, holds) in rows {
            t.push_str(&format!("| {figure} | {value} | {bound} | {} |\n", ok(holds)));
        }
        t.push_str(&format!(
            "| a budget shard, its busiest second | {:.0} WCU/s | — | — |\n| user reads refused for the budget | {} of {} | — | — |\n| reconciler passes ended by the budget | {} ({} calls a pass, {} side by side) | — | — |\n| publish instances at once (most) | {} | — | — |\n| places in line without room at their moment | {} | — | — |\n| DynamoDB write units a month | {:.1} million | — | — |\n",
            self.hottest_budget_wcu_s,
            thousands(self.user_reads_refused),
            thousands(self.user_reads),
            self.passes_throttled,
            self.pass_calls,
            self.leases,
            self.publish_concurrency,
            thousands(self.places_without_room),
            self.monthly_write_units / 1e6
        ));
        t
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + ms)
}

/// The day.
struct Day {
    load: Load,
    settings: Settings,
    plan: Plan,
    rng: StdRng,
    events: BinaryHeap<Reverse<(i64, u64, Event)>>,
    seq: u64,
    posts: Vec<Post>,
    /// The budget's shards, lane by lane, as the store keeps them.
    shards: Ledger,
    buckets: HashMap<(u32, CallKind), Bucket>,
    last_check: Vec<i64>,
    /// The service: calls in the last minute, and its own fixed minute.
    window: VecDeque<i64>,
    minute: (i64, u32),
    report: Report,
    delays: Vec<i64>,
    healed: Vec<i64>,
    /// Budget takes per shard in the current second, and the busiest.
    budget_second: HashMap<u32, (i64, u32)>,
    /// Sends per index shard per minute, and per project per minute (for write units).
    index_minutes: HashMap<(u32, i64), u32>,
    project_minutes: HashMap<(u32, i64), u32>,
    publishing_until: BinaryHeap<Reverse<i64>>,
    /// Each lease's running pass.
    running: Vec<Option<Pass>>,
    /// Each project's lease (`healing::lease_shards` of its index shard).
    lease_of: Vec<u32>,
    /// Posts whose last webhook is lost, until healed.
    lost: Vec<u32>,
}

impl Day {
    fn new(load: Load, settings: Settings, seed: u64) -> Day {
        let plan = Plan::new(settings.calls_per_minute);
        let mut rng = StdRng::seed_from_u64(seed);
        let last_check = (0..load.projects).map(|_| -rng.random_range(0..DAY_MS)).collect();
        Day {
            load,
            settings,
            plan,
            rng,
            events: BinaryHeap::new(),
            seq: 0,
            posts: Vec::new(),
            shards: Ledger::default(),
            buckets: HashMap::new(),
            last_check,
            window: VecDeque::new(),
            minute: (0, 0),
            report: Report {
                projects: load.projects,
                calls_per_minute: settings.calls_per_minute,
                leases: settings.leases,
                ..Report::default()
            },
            delays: Vec::new(),
            healed: Vec::new(),
            budget_second: HashMap::new(),
            index_minutes: HashMap::new(),
            project_minutes: HashMap::new(),
            publishing_until: BinaryHeap::new(),
            running: (0..settings.leases).map(|_| None).collect(),
            lease_of: (0..load.projects)
                .map(|p| {
                    let shard = index_shard(&project_id(p));
                    (0..settings.leases)
                        .find(|lease| healing::lease_shards(*lease, settings.leases).contains(&shard))
                        .expect("every shard has its lease")
                })
                .collect(),
            lost: Vec::new(),
        }
    }

    fn schedule(&mut self, at: i64, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, event)));
    }

    /// A time of day drawn from the day's shape: quiet at night, busiest around noon (1.8x).
    fn time_of_day(&mut self) -> i64 {
        loop {
            let t = self.rng.random_range(0..DAY_MS);
            let phase = (t as f64 / DAY_MS as f64 - 0.25) * std::f64::consts::TAU;
            if self.rng.random_bool(((1.0 + 0.8 * phase.sin()) / 1.8).clamp(0.0, 1.0)) {
                return t;
            }
        }
    }

    fn latency(&mut self) -> i64 {
        match self.rng.random_range(0..10) {
            0..=6 => self.rng.random_range(1_000..5_000),
            7 | 8 => self.rng.random_range(3_000..15_000),
            _ => self.rng.random_range(30_000..300_000),
        }
    }

    fn generate(&mut self) {
        let load = self.load;
        let agencies = (load.projects / load.agency_one_in).max(1);
        let regular = load.projects - agencies;
        let regular_posts = (f64::from(regular) * load.posts_per_day) as u64;
        let agency_posts = (f64::from(agencies) * load.agency_posts_per_day) as u64;
        let mut made = 0;
        while made < regular_posts {
            let project = agencies + self.rng.random_range(0..regular.max(1));
            let t = self.time_of_day();
            // One post in twenty comes in a bulk schedule of twenty from one project.
            let burst = if self.rng.random_bool(0.0025) { 20 } else { 1 };
            for _ in 0..burst {
                self.add_post(project, t);
            }
            made += burst;
        }
        for _ in 0..agency_posts {
            let project = self.rng.random_range(0..agencies);
            let t = self.time_of_day();
            self.add_post(project, t);
        }
        let reads = (f64::from(load.projects) * load.user_reads_per_day) as u64;
        for _ in 0..reads {
            let project = self.rng.random_range(0..load.projects);
            let t = self.time_of_day();
            let sync = self.rng.random_bool(0.5);
            self.schedule(t, Event::Read { project, sync });
        }
        let mut pass = 0;
        while pass < END_MS {
            self.schedule(pass, Event::Pass);
            pass += self.settings.pass_minutes * MINUTE_MS;
        }
    }

    fn add_post(&mut self, project: u32, t: i64) {
        let latency = self.latency();
        let lost_webhook = self.rng.random_bool(self.load.lost_webhook_share);
        let id = self.posts.len() as u32;
        if lost_webhook {
            self.lost.push(self.posts.len() as u32);
        }
        self.posts.push(Post { project, arrived: t, latency, lost_webhook, sent: None, refused: false });
        self.schedule(t, Event::Publish { post: id });
    }

    /// One budget take on `shard`, as the store makes it: the lanes' moves apply, or nothing does.
    fn take_lanes(&mut self, shard: u32, lanes: &[(Lane, limits::Rate)], now: i64) -> Result<(), Limited> {
        self.count_take(shard, now);
        self.shards.take(shard, lanes, at(now))
    }

    fn count_take(&mut self, shard: u32, now: i64) {
        let second = now / 1000;
        let entry = self.budget_second.entry(shard).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 += 1;
        self.report.hottest_budget_wcu_s = self.report.hottest_budget_wcu_s.max(f64::from(entry.1) * wcu::BUDGET_TAKE);
    }

    /// The gate's `admit` (and `reserve`, for more calls at once): the class's lanes on one shard,
    /// then another.
    /// How many calls were taken, or the refusal that opens first, with its shard.
    fn admit(&mut self, class: Class, calls: u32, now: i64) -> Result<u32, (u32, Limited)> {
        let mut refused = Vec::new();
        let draw = self.rng.random::<u64>();
        for shard in self.plan.tries(draw) {
            let (taken, lanes) = self.plan.lanes_for(class, shard, calls);
            match self.take_lanes(shard, &lanes, now) {
                Ok(()) => return Ok(taken),
                Err(limited) => refused.push((shard, limited)),
            }
        }
        Err(budget::soonest(refused).expect("a shard tried"))
    }

    /// The gate's place in line: in the line of the shard that refused, once it opens.
    fn book(&mut self, (shard, limited): (u32, Limited), now: i64) -> Result<Booking, Limited> {
        self.count_take(shard, now);
        self.shards.book(&self.plan, shard, at(now).plus_seconds(limited.retry_after as i64))
    }

    /// A call reaching the service: `false` when it answered 429 (and the budget is shut).
    fn call(&mut self, now: i64) -> bool {
        self.report.calls += 1;
        self.window.push_back(now);
        while self.window.front().is_some_and(|t| *t <= now - MINUTE_MS) {
            self.window.pop_front();
        }
        self.report.most_calls_in_any_minute = self.report.most_calls_in_any_minute.max(self.window.len() as u64);
        let minute = now / MINUTE_MS;
        if self.minute.0 != minute {
            self.minute = (minute, 0);
        }
        self.minute.1 += 1;
        if self.minute.1 > self.settings.calls_per_minute {
            self.report.service_429s += 1;
            let retry_after = (((minute + 1) * MINUTE_MS - now) as u64).div_ceil(1000);
            let until = budget::shut_until(at(now), Some(retry_after));
            self.shards.shut(&self.plan, until);
            return false;
        }
        true
    }

    fn publish(&mut self, id: u32, now: i64) {
        let project = self.posts[id as usize].project;
        let bucket = self.buckets.get(&(project, CallKind::Publish)).copied();
        match limits::take_one(bucket.as_ref(), Limit::default_for(CallKind::Publish), at(now)) {
            Ok(m) => {
                let tat = m.apply(bucket.map(|b| b.tat)).expect("a move made from what was seen");
                self.buckets.insert((project, CallKind::Publish), Bucket { tat });
            }
            Err(_) => {
                self.report.project_limit_429s += 1;
                self.posts[id as usize].refused = true;
                return;
            }
        }
        match self.admit(Class::Publish, 1, now) {
            Ok(_) => self.send(id, now, true, None, 0),
            Err(refused) => {
                self.report.answered_202 += 1;
                self.queue(id, now, refused, 0);
            }
        }
    }

    /// Past the budget: a place in line, or (a line longer than a follow-up can wait) later.
    fn queue(&mut self, id: u32, now: i64, refused: (u32, Limited), attempt: u32) {
        match self.book(refused, now) {
            Ok(place) => {
                let delay = publish::delay_until(place.at, at(now)) as i64 * 1000;
                self.schedule(
                    now + delay,
                    Event::FollowUp { post: id, booking: Some((place.shard, place.at.unix_millis())), attempt },
                );
            }
            Err(longer) => {
                let delay =
                    publish::follow_up_delay(self.settings.follow_up_seconds, attempt, Some(longer.retry_after));
                self.schedule(
                    now + delay as i64 * 1000,
                    Event::FollowUp { post: id, booking: None, attempt: attempt + 1 },
                );
            }
        }
    }

    fn follow_up(&mut self, id: u32, booking: Option<(u32, i64)>, attempt: u32, now: i64) {
        let admitted = match booking {
            Some((shard, _)) => self.take_lanes(shard, &self.plan.booked_lanes(shard), now).map_err(|l| (shard, l)),
            None => self.admit(Class::Publish, 1, now).map(|_| ()),
        };
        match (admitted, booking) {
            (Ok(()), _) => self.send(id, now, false, booking, attempt),
            // Holding a place: it stays ahead of those behind it, and comes back when there is room.
            (Err((_, limited)), Some(_)) => {
                self.report.places_without_room += 1;
                let delay = publish::follow_up_delay(1, 0, Some(limited.retry_after));
                self.schedule(now + delay as i64 * 1000, Event::FollowUp { post: id, booking, attempt: attempt + 1 });
            }
            (Err(refused), None) => self.queue(id, now, refused, attempt + 1),
        }
    }

    fn send(&mut self, id: u32, now: i64, route: bool, booking: Option<(u32, i64)>, attempt: u32) {
        if !self.call(now) {
            // The service said 429: a follow-up sends it after the budget reopens.
            if route {
                self.report.answered_202 += 1;
            }
            let delay = publish::follow_up_delay(self.settings.follow_up_seconds, attempt, Some(60));
            self.schedule(now + delay as i64 * 1000, Event::FollowUp { post: id, booking, attempt: attempt + 1 });
            return;
        }
        let wait = self.settings.wait_seconds * 1000;
        let post = &mut self.posts[id as usize];
        post.sent = Some(now);
        let (project, arrived, latency, lost) = (post.project, post.arrived, post.latency, post.lost_webhook);
        self.delays.push(now - arrived);
        if route {
            if latency <= wait {
                self.report.answered_201 += 1
            } else {
                self.report.answered_202 += 1
            }
            while self.publishing_until.peek().is_some_and(|Reverse(end)| *end <= now) {
                self.publishing_until.pop();
            }
            self.publishing_until.push(Reverse(now + latency.min(wait)));
            self.report.publish_concurrency = self.report.publish_concurrency.max(self.publishing_until.len() as u64);
        }
        let minute = now / MINUTE_MS;
        *self.index_minutes.entry((index_shard(&project_id(project)), minute)).or_default() += 1;
        *self.project_minutes.entry((project, minute)).or_default() += 1;
        if lost {
            self.report.stuck_posts += 1;
        }
    }

    fn read(&mut self, project: u32, sync: bool, now: i64) {
        self.report.user_reads += 1;
        let kind = if sync { CallKind::Sync } else { CallKind::Refresh };
        let bucket = self.buckets.get(&(project, kind)).copied();
        match limits::take_one(bucket.as_ref(), Limit::default_for(kind), at(now)) {
            Ok(m) => {
                let tat = m.apply(bucket.map(|b| b.tat)).expect("a move made from what was seen");
                self.buckets.insert((project, kind), Bucket { tat });
            }
            Err(_) => return self.report.project_limit_429s += 1,
        }
        let calls = if sync { 1 } else { 2 };
        for _ in 0..calls {
            if self.admit(Class::Reads, 1, now).is_err() || !self.call(now) {
                self.report.user_reads_refused += 1;
                return;
            }
        }
        if !sync {
            self.last_check[project as usize] = now;
        }
    }

    /// A reconciler pass begins: the index's stuck posts and stale projects, in `pass_order`
    /// (a pass still running holds the lease: this one does nothing).
    fn pass(&mut self, now: i64) {
        for lease in 0..self.settings.leases {
            self.lease_pass(lease, now);
        }
    }

    /// The pass of one lease, over its projects only.
    fn lease_pass(&mut self, lease: u32, now: i64) {
        if self.running[lease as usize].is_some() {
            return;
        }
        let max_calls = self.settings.pass_calls();
        let look = (max_calls * 2).max(10) as usize;
        let grace = self.settings.grace_seconds * 1000;
        self.lost.retain(|i| self.posts[*i as usize].lost_webhook);
        let mut stuck: Vec<(i64, u32)> = self
            .lost
            .iter()
            .map(|i| (*i, &self.posts[*i as usize]))
            .filter(|(_, p)| self.lease_of[p.project as usize] == lease && p.sent.is_some_and(|s| s + grace <= now))
            .map(|(i, p)| (p.sent.unwrap_or_default(), i))
            .collect();
        stuck.sort_unstable();
        stuck.truncate(look);
        let mut stale: Vec<(i64, u32)> = self
            .last_check
            .iter()
            .enumerate()
            .filter(|(p, c)| self.lease_of[*p] == lease && **c <= now - DAY_MS)
            .map(|(p, c)| (*c, p as u32))
            .collect();
        stale.sort_unstable();
        stale.truncate(look);
        let posts = stuck
            .iter()
            .map(|(since, i)| {
                let project = project_id(self.posts[*i as usize].project);
                (at(*since), Work::Sync { project, post: PostId::parse(format!("post_{i}")).expect("an id") })
            })
            .collect();
        let projects =
            stale.iter().map(|(checked, p)| (at(*checked), Work::Refresh { project: project_id(*p) })).collect();
        let order: VecDeque<Work> = pass_order(posts, projects).into();
        if order.is_empty() {
            return;
        }
        self.running[lease as usize] = Some(Pass { order, calls: 0, started: now });
        self.schedule(now, Event::PassStep { lease });
    }

    /// One piece of work of the running pass, every 300 ms, within its calls, its time and the
    /// reconciler's share of the budget: its calls taken at once before the first (as the
    /// handler's `Prepaid` gate does), waiting briefly for room.
    fn pass_step(&mut self, lease: u32, now: i64) {
        let Some(mut pass) = self.running[lease as usize].take() else { return };
        let Some(work) = pass.order.front().cloned() else { return };
        let cost = match work {
            Work::Sync { .. } => 1,
            Work::Refresh { .. } => REFRESH_CALLS_AT_ONCE,
        };
        let left_ms = PASS_SECONDS * 1000 - (now - pass.started);
        if pass.calls + cost > self.settings.pass_calls() || left_ms <= 0 {
            return;
        }
        // Calls past what was taken at once take their own (a small plan's burst is smaller).
        let admitted = self
            .admit(Class::Reconciler, cost, now)
            .and_then(|taken| (taken..cost).try_for_each(|_| self.admit(Class::Reconciler, 1, now).map(|_| ())));
        match admitted {
            Ok(()) => {
                if !(0..cost).all(|_| self.call(now)) {
                    self.report.passes_throttled += 1;
                    return;
                }
                pass.calls += cost;
                pass.order.pop_front();
                self.finish_work(work, now);
                if !pass.order.is_empty() {
                    self.running[lease as usize] = Some(pass);
                    self.schedule(now + 300, Event::PassStep { lease });
                }
            }
            Err((_, limited)) => match healing::wait_for_room(limited.retry_after, (left_ms / 1000) as u64) {
                Some(wait) => {
                    self.running[lease as usize] = Some(pass);
                    self.schedule(now + wait as i64 * 1000, Event::PassStep { lease });
                }
                None => self.report.passes_throttled += 1,
            },
        }
    }

    fn finish_work(&mut self, work: Work, t: i64) {
        match work {
            Work::Sync { post, .. } => {
                let i: usize = post.as_str().trim_start_matches("post_").parse().expect("ours");
                let p = &mut self.posts[i];
                p.lost_webhook = false;
                self.healed.push(t - (p.sent.unwrap_or(t) + p.latency));
            }
            Work::Refresh { project } => {
                let p: usize = project.as_str().trim_start_matches("proj_").parse().expect("ours");
                let age = t - self.last_check[p];
                self.report.stale_checked_max_h = self.report.stale_checked_max_h.max(age as f64 / 3_600_000.0);
                self.last_check[p] = t;
            }
        }
    }

    fn run(mut self) -> Report {
        self.generate();
        self.report.posts = self.posts.len() as u64;
        self.report.pass_calls = self.settings.pass_calls();
        // A day, and the hour after it for what was queued late.
        while let Some(Reverse((now, _, event))) = self.events.pop() {
            if now > END_MS {
                break;
            }
            match event {
                Event::Publish { post } => self.publish(post, now),
                Event::FollowUp { post, booking, attempt } => self.follow_up(post, booking, attempt, now),
                Event::Read { project, sync } => self.read(project, sync, now),
                Event::Pass => self.pass(now),
                Event::PassStep { lease } => self.pass_step(lease, now),
            }
            // Under-provisioned beyond doubt: stop early (the table says so).
            if self.events.len() > 4 * self.posts.len() + 1_000_000 {
                break;
            }
        }
        self.finish()
    }

    fn finish(mut self) -> Report {
        let pct = |v: &mut Vec<i64>, p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            v.sort_unstable();
            v[((v.len() - 1) as f64 * p).round() as usize] as f64
        };
        let r = &mut self.report;
        r.unsent_at_end = self.posts.iter().filter(|p| p.sent.is_none() && !p.refused).count() as u64;
        r.delay_p50_s = pct(&mut self.delays, 0.5) / 1000.0;
        r.delay_p99_s = pct(&mut self.delays, 0.99) / 1000.0;
        r.delay_max_s = pct(&mut self.delays, 1.0) / 1000.0;
        r.healed_p50_min = pct(&mut self.healed, 0.5) / 60_000.0;
        r.healed_max_min = pct(&mut self.healed, 1.0) / 60_000.0;
        // Stuck long enough before the end to have been healed within the hour.
        let healable = |sent: i64| sent + self.settings.grace_seconds * 1000 + 3_600_000 <= END_MS;
        r.unhealed_at_end = self.posts.iter().filter(|p| p.lost_webhook && p.sent.is_some_and(healable)).count() as u64;
        let never: f64 = self.last_check.iter().map(|c| (DAY_MS - c) as f64 / 3_600_000.0).fold(0.0, f64::max);
        r.stale_checked_max_h = r.stale_checked_max_h.max(never.min(r.stale_checked_max_h.max(24.0)));
        // Write units at the busiest minute, on a backlog day (webhooks at `backlog_factor` times
        // their average rate): the index's entries and a project's post and history writes.
        let load = self.load;
        let webhooks = f64::from(load.webhooks_per_post);
        let index_writes = 2.0 + webhooks * load.backlog_factor / 10.0;
        let busiest_index = self.index_minutes.values().copied().max().unwrap_or(0);
        let mut all_index: HashMap<i64, u32> = HashMap::new();
        for ((_, minute), n) in &self.index_minutes {
            *all_index.entry(*minute).or_default() += n;
        }
        let busiest_all = all_index.values().copied().max().unwrap_or(0);
        r.hottest_index_wcu_s =
            f64::from(busiest_index) * index_writes * wcu::INDEX * load.backlog_factor.max(1.0) / 60.0;
        r.hottest_index_unsharded_wcu_s =
            f64::from(busiest_all) * index_writes * wcu::INDEX * load.backlog_factor.max(1.0) / 60.0;
        let busiest_project = self.project_minutes.values().copied().max().unwrap_or(0);
        r.hottest_table_wcu_s = f64::from(busiest_project)
            * (wcu::PUBLICATION + wcu::ANSWER_ON_PROJECT + webhooks * wcu::WEBHOOK_ON_PROJECT * load.backlog_factor)
            / 60.0;
        let per_post = wcu::PUBLICATION
            + wcu::ANSWER_ON_PROJECT
            + webhooks * (wcu::WEBHOOK_ON_PROJECT + wcu::EVENT)
            + (2.0 + webhooks) * wcu::INDEX;
        let per_call = 2.0 * wcu::BUDGET_TAKE;
        r.monthly_write_units = 30.0 * (r.posts as f64 * per_post + r.calls as f64 * per_call);
        let _ = INDEX_SHARDS;
        self.report
    }
}

fn project_id(n: u32) -> ProjectId {
    ProjectId::parse(format!("proj_{n}")).expect("an id")
}

/// A day at `load` on `settings`.
pub fn day(load: Load, settings: Settings, seed: u64) -> Report {
    Day::new(load, settings, seed).run()
}

/// The plans tried, smallest first: the service's own (60, 600, 1,200 a minute) and, past them,
/// limits that must be agreed with it.
pub const PLANS: [u32; 8] = [60, 600, 1_200, 2_400, 3_600, 4_800, 6_000, 12_000];

/// The smallest plan (and on it the fewest reconciler leases) on which a day at `load` holds every
/// bound, with its report; the largest tried when none does.
pub fn smallest_plan(load: Load, seed: u64) -> Report {
    // A plan below the day's need at its busiest hour cannot hold: start where it might. (The
    // day's shape peaks at 1.8 times its average; each post is one call, each user read one or
    // two, each project's daily check two.)
    let average = (f64::from(load.projects) * (load.posts_per_day + load.user_reads_per_day * 1.5 + 2.0)
        + f64::from(load.projects / load.agency_one_in) * load.agency_posts_per_day)
        / 1_440.0;
    let mut last = Report::default();
    for plan in PLANS.into_iter().filter(|p| f64::from(*p) >= average * 1.8 * 0.9) {
        for leases in [1, 2, 4, 8, 16] {
            last = day(load, Settings::on(plan).with_leases(leases), seed);
            if last.holds() {
                return last;
            }
            // More leases heal and check faster; nothing else they change.
            if !last.short_of_passes() {
                break;
            }
        }
    }
    last
}

/// The sized parameter sets the repository holds (`deploy/sizes/<name>.params`), by projects.
pub const SIZES: [(&str, u32); 3] = [("small", 1_000), ("medium", 10_000), ("large", 100_000)];

/// A Lambda account keeps this much of its concurrency unreserved (AWS's rule).
pub const UNRESERVED_CONCURRENCY: u64 = 100;

/// Rounds up to a multiple of `step`.
fn round_up(n: f64, step: u64) -> u64 {
    (n.max(0.0) / step as f64).ceil() as u64 * step
}

/// The template parameters a day at `load` needs, from its report (production.md, section 7):
/// reserved concurrencies that hold a backlog day's webhooks (`backlog_factor` times the average,
/// each delivery about 0.1 s, twice that for room), the publish and read routes' instances at the
/// plan's pace, the shared budget's plan, the reconciler's calls and leases, the API's throttle,
/// and the table's warm throughput where a backlog day passes on-demand's 4,000 writes a second.
pub fn parameters(load: &Load, report: &Report) -> Vec<(&'static str, u64)> {
    let calls = f64::from(report.calls_per_minute);
    let settings = Settings::on(report.calls_per_minute);
    let webhooks_per_second = report.posts as f64 * f64::from(load.webhooks_per_post) / 86_400.0 * load.backlog_factor;
    let webhook = round_up(webhooks_per_second * 0.1 * 2.0, 10).max(10);
    // A publish holds its instance at most its wait; at most the plan's calls reach the service.
    let publish =
        round_up((calls / 60.0 * settings.wait_seconds as f64).max(report.publish_concurrency as f64 * 2.0), 5);
    // Sync, Refresh and Connect: their share of the plan, each call waiting at most 5 s.
    let share = f64::from(Plan::new(report.calls_per_minute).shares.reads_percent) / 100.0;
    let reads = round_up(calls * share / 60.0 * 5.0, 5).max(5);
    let retry_worker = round_up(calls / 600.0 * 5.0, 1).max(2);
    // App requests at their peak: each project's posts, reads and a page view a minute of an
    // eight-hour day, ten times the day's average at the busiest second.
    let app_per_second =
        f64::from(load.projects) * (load.posts_per_day + load.user_reads_per_day + 480.0) / 86_400.0 * 10.0;
    let api_rate = round_up(app_per_second, 50).max(50);
    let writes_per_second = report.monthly_write_units / 30.0 / 86_400.0 * load.backlog_factor;
    let warm_writes = if writes_per_second > 4_000.0 { round_up(writes_per_second * 1.2, 1_000) } else { 0 };
    let mut set = vec![
        ("VendorCallsPerMinute", u64::from(report.calls_per_minute)),
        ("ReconcileMaxCalls", u64::from(report.pass_calls)),
        ("ReconcilerLeases", u64::from(report.leases)),
        ("WebhookReservedConcurrency", webhook),
        ("PublishReservedConcurrency", publish),
        ("ReadsReservedConcurrency", reads),
        ("RetryWorkerMaximumConcurrency", retry_worker),
        ("ApiThrottleRate", api_rate),
        ("ApiThrottleBurst", api_rate * 2),
        ("TableWarmWriteUnits", warm_writes),
    ];
    if warm_writes > 0 {
        set.push(("TableWarmReadUnits", 12_000));
    }
    set
}

/// What a parameter set reserves, and the account's Lambda concurrency quota it needs: every
/// reservation (Sync, Refresh and Connect each reserve `ReadsReservedConcurrency`), plus the
/// unreserved 100 AWS keeps, which must hold the rest (the retry worker, the reconciler's leases,
/// the change feed and the read routes) at once.
pub fn concurrency_needed(parameters: &[(&str, u64)]) -> (u64, u64) {
    let get = |name: &str| parameters.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
    let reserved =
        get("WebhookReservedConcurrency") + get("PublishReservedConcurrency") + 3 * get("ReadsReservedConcurrency");
    let unreserved_use = get("RetryWorkerMaximumConcurrency") + get("ReconcilerLeases") + 10;
    (reserved, reserved + UNRESERVED_CONCURRENCY.max(unreserved_use))
}

/// A parameter set as `deploy/sizes/<name>.params` holds it: one `Key=Value` a line.
pub fn parameter_file(name: &str, load: &Load, report: &Report) -> String {
    let parameters = parameters(load, report);
    let (reserved, quota) = concurrency_needed(&parameters);
    let mut text = format!(
        "# {name}: {} projects (make simulate prints this; production.md, section 7).\n# Reserves {reserved} concurrent executions; the account's Lambda concurrency quota must be at least {quota}.\n",
        thousands(u64::from(load.projects))
    );
    for (key, value) in parameters {
        text.push_str(&format!("{key}={value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_set_holds_a_backlog_days_webhooks_and_the_plans_pace() {
        let load = Load::at(10_000);
        let report = Report {
            projects: 10_000,
            calls_per_minute: 600,
            posts: 200_000,
            publish_concurrency: 10,
            monthly_write_units: 783e6,
            pass_calls: 366,
            leases: 1,
            ..Default::default()
        };
        let set = parameters(&load, &report);
        let get = |name: &str| set.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        // 200,000 posts x 12 webhooks a day, ten times that on a backlog day, 0.1 s each, twice for room
        assert_eq!(get("WebhookReservedConcurrency"), Some(60));
        // 600 calls a minute, each publish holding its instance 10 s at most
        assert_eq!(get("PublishReservedConcurrency"), Some(100));
        assert_eq!(get("ReadsReservedConcurrency"), Some(30));
        assert_eq!(
            (get("TableWarmWriteUnits"), get("TableWarmReadUnits")),
            (Some(0), None),
            "on-demand's own holds it"
        );
        assert_eq!(concurrency_needed(&set), (60 + 100 + 3 * 30, 60 + 100 + 3 * 30 + UNRESERVED_CONCURRENCY));
        let busy = Report { monthly_write_units: 7.8e9, ..report };
        assert_eq!(
            parameters(&load, &busy).iter().find(|(n, _)| *n == "TableWarmWriteUnits").map(|(_, v)| *v),
            Some(37_000)
        );
    }

    /// The short run of `make test`: a day at 1,000 projects holds every bound on the plan the
    /// simulation recommends, and the key is never asked more than the plan in any minute.
    #[test]
    fn a_thousand_projects_hold_every_bound_on_the_plan_recommended() {
        let report = smallest_plan(Load::at(1_000), 7);
        assert!(report.holds(), "{}", report.table());
        assert_eq!(report.calls_per_minute, 60, "the smallest plan holds: {}", report.table());
        assert_eq!(report.service_429s, 0);
        assert!(report.answered_201 + report.answered_202 + report.project_limit_429s >= report.posts);
    }

    /// And the bounds can fail: on a plan a tenth of what the load needs, the delay bound breaks
    /// (the budget itself still keeps the key within its plan, with no 429).
    #[test]
    fn an_undersized_plan_breaks_the_delay_bound_and_still_never_the_services_limit() {
        let report = day(Load::at(100), Settings::on(1), 7);
        assert!(!report.holds(), "{}", report.table());
        assert!(report.most_calls_in_any_minute <= 1, "{}", report.table());
        assert_eq!(report.service_429s, 0, "{}", report.table());
    }

    /// When one pass's calls cannot check every project in a day, passes side by side (leases,
    /// each on its own projects) can; and the leases never do the same project's work twice.
    #[test]
    fn leases_side_by_side_keep_up_where_one_pass_cannot() {
        let short = Settings { pass_calls: Some(8), ..Settings::on(600) };
        let one = day(Load::at(1_000), short, 7);
        assert!(one.short_of_passes() && !one.holds(), "short of passes only: {}", one.table());
        assert!(one.stale_checked_max_h > 24.2, "one pass of 8 calls falls behind: {}", one.table());
        let four = day(Load::at(1_000), short.with_leases(4), 7);
        assert!(four.holds(), "{}", four.table());
    }
}
