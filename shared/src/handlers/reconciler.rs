//! The reconciler's pass: Syncs stuck posts and Refreshes stale projects, exactly as the Sync and
//! Refresh routes do, oldest first in fair rounds, stuck posts and stale projects each with their share (`domain::healing::pass_order`), within a
//! budget of calls to the service, one pass at a time. Invoked by a schedule (and locally by the
//! dev gateway's timer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::app::Refusal;
use super::connections::{Refreshed, refresh_project};
use super::posts::sync_post;
use crate::domain::erasure::{self, Erasure};
use crate::domain::healing::{self, REFRESH_CALLS, REFRESH_CALLS_AT_ONCE, Settings, Work, pass_order, tried};
use crate::domain::post::publications;
use crate::domain::subscription::{self, WatchSettings};
use crate::domain::{AccountId, Platform, PostId, ProfileId, ProjectId, ServicePostId, Timestamp};
use crate::metrics::{Metric, count};
use crate::ports::{
    AccountHealth, Answer, CallGate, Clock, ConnectionStore, Delivery, ErasureStore, FollowUp, FollowUpQueue,
    HealingStore, LiveAccount, PostPublisher, PostStore, Publication, Publisher, PublisherError, SealStore,
    ServiceAnswer, Source, StoreError, Subscription, SubscriptionWatch, Watched,
};

pub struct Reconciler<S, P, Q, C> {
    pub store: S,
    pub publisher: P,
    /// Where a publication whose follow-up was lost is queued again.
    pub queue: Q,
    pub clock: C,
    pub settings: Settings,
    /// The gate of `publisher`'s calls: each piece of work takes its calls from it before its
    /// first, so none is refused half way (and repeated).
    pub budget: Arc<dyn CallGate>,
    /// Our webhook subscription, watched by the pass holding lease 0 (none: not watched).
    pub subscription: Option<WatchSettings>,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// `false` when another pass held the lease: this one did nothing.
    pub ran: bool,
    pub posts_synced: u32,
    /// Stuck posts that no longer wait for the service.
    pub posts_healed: u32,
    pub projects_refreshed: u32,
    /// Connections a Refresh of this pass found needing a reconnect.
    pub connections_found_stale: u32,
    /// Calls made to the service.
    pub calls: u32,
    /// Work found that this pass left for the next one.
    pub left: u32,
    /// The service was unavailable: the pass ended there.
    pub outage: bool,
    /// The webhook subscription was found off and switched back on.
    pub subscription_switched_on: bool,
    /// Failed webhook deliveries this pass asked the service to send again.
    pub redelivered: u32,
    /// The shared budget had no room for the reconciler: the pass ended there, its work left.
    pub throttled: bool,
    /// Erasures whose steps had stalled, a step queued again.
    pub erasures_resumed: u32,
}

impl PassReport {
    /// Two passes' work, as one.
    fn add(&mut self, other: PassReport) {
        self.ran |= other.ran;
        self.posts_synced += other.posts_synced;
        self.posts_healed += other.posts_healed;
        self.projects_refreshed += other.projects_refreshed;
        self.connections_found_stale += other.connections_found_stale;
        self.calls += other.calls;
        self.left += other.left;
        self.outage |= other.outage;
        self.throttled |= other.throttled;
        self.subscription_switched_on |= other.subscription_switched_on;
        self.redelivered += other.redelivered;
        self.erasures_resumed += other.erasures_resumed;
    }
}

/// How long a pass holds its lease beyond its own deadline, so a crashed pass blocks the next one
/// for at most this long.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

impl<S, P, Q, C> Reconciler<S, P, Q, C>
where
    S: PostStore + ConnectionStore + HealingStore + SealStore + ErasureStore,
    P: Publisher + PostPublisher + SubscriptionWatch,
    Q: FollowUpQueue,
    C: Clock,
{
    /// The same reconciler, watching our webhook subscription too.
    pub fn watching(self, subscription: Option<WatchSettings>) -> Self {
        Self { subscription, ..self }
    }

    /// One pass per lease (`Settings::leases`), side by side, each ending by `budget` (well inside
    /// the function's timeout): what they did together.
    pub async fn pass(&self, budget: Duration) -> Result<PassReport, StoreError> {
        let leases = self.settings.leases.clamp(1, healing::INDEX_SHARDS);
        let passes = futures::future::join_all((0..leases).map(|lease| self.lease_pass(lease, leases, budget))).await;
        let mut report = PassReport::default();
        let mut failed = None;
        for (lease, pass) in passes.into_iter().enumerate() {
            match pass {
                Ok(one) => report.add(one),
                Err(e) => {
                    tracing::warn!(lease, error = %e, "a lease's pass failed; its work waits for the next");
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed.filter(|_| !report.ran) {
            return Err(e);
        }
        count(Metric::PostsHealed, report.posts_healed.into());
        count(Metric::StaleConnectionsFound, report.connections_found_stale.into());
        count(Metric::ReconcileCalls, report.calls.into());
        count(Metric::ReconcileWorkLeft, report.left.into());
        if report.outage {
            count(Metric::ReconcileOutages, 1);
        }
        if report.throttled {
            count(Metric::ReconcileThrottled, 1);
        }
        if report.erasures_resumed > 0 {
            count(Metric::ErasuresResumed, report.erasures_resumed.into());
        }
        if report == (PassReport { ran: true, ..PassReport::default() }) {
            tracing::debug!("reconciler pass: nothing to do");
        } else {
            tracing::info!(?report, "reconciler pass");
        }
        Ok(report)
    }

    /// The pass of lease `lease`, over its shards of the index.
    async fn lease_pass(&self, lease: u32, leases: u32, budget: Duration) -> Result<PassReport, StoreError> {
        let started = self.clock.now();
        let until = started.plus_seconds((budget + LEASE_MARGIN).as_secs() as i64);
        if !self.store.take_lease(lease, started, until).await? {
            tracing::info!(lease, "another pass holds the lease");
            return Ok(PassReport::default());
        }
        let report =
            self.work(&healing::lease_shards(lease, leases), lease == 0, started, Instant::now() + budget).await;
        if let Err(e) = self.store.release_lease(lease, until).await {
            tracing::warn!(lease, error = %e, "the lease could not be given back; it runs out by itself");
        }
        report
    }

    async fn work(
        &self,
        shards: &[u32],
        watches: bool,
        now: Timestamp,
        deadline: Instant,
    ) -> Result<PassReport, StoreError> {
        let s = self.settings;
        let publisher = Counting { inner: &self.publisher, calls: AtomicU32::new(0) };
        let mut report = PassReport { ran: true, ..PassReport::default() };
        if watches
            && let Some(watch) = &self.subscription
            && let Err(refusal) = self.watch(&publisher, watch, now, &mut report).await
        {
            tracing::warn!(?refusal, "the webhook subscription could not be watched this pass");
        }
        // Enough to fill the budget and to know whether work is left.
        let look = s.max_calls.saturating_mul(2).max(10);
        let posts = self.store.waiting_posts(shards, now.plus_seconds(-s.grace_seconds), look).await?;
        let projects =
            self.store.stale_projects(shards, now.plus_seconds(-s.connections_max_age_seconds), now, look).await?;
        let posts = posts.into_iter().map(|(at, project, post)| (at, Work::Sync { project, post })).collect();
        let projects = projects.into_iter().map(|(at, project)| (at, Work::Refresh { project })).collect();
        let order = pass_order(posts, projects);
        let mut done = 0;
        while let Some(work) = order.get(done) {
            let left = s.max_calls.saturating_sub(publisher.calls());
            if Instant::now() >= deadline || left == 0 {
                report.left += (order.len() - done) as u32;
                break;
            }
            let outcome = match work {
                // An erased project's work is skipped (the erasure deletes what pointed to it), but
                // for the seal's own look: an erasure whose steps stalled is resumed.
                Work::Sync { project, .. } | Work::Refresh { project } if let Some(seal) = self.seal(project).await => {
                    self.resume(project, seal, now, &mut report).await
                }
                Work::Sync { project, post } => self.sync(&publisher, project, post, left, &mut report).await,
                Work::Refresh { project } => self.refresh(&publisher, project, left, now, &mut report).await,
            };
            match outcome {
                Err(Refusal::Busy { retry_after }) => {
                    let time_left = deadline.saturating_duration_since(Instant::now()).as_secs();
                    if let Some(wait) = healing::wait_for_room(retry_after, time_left) {
                        // Paced at its share: the same work again once there is room.
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                        continue;
                    }
                    tracing::info!(
                        retry_after,
                        "the shared budget has no room left for the reconciler: the pass ends here"
                    );
                    report.throttled = true;
                    report.left += (order.len() - done) as u32;
                    break;
                }
                Err(Refusal::PublisherUnavailable { .. }) => {
                    tracing::warn!("the publishing service is unavailable: the pass ends here");
                    report.outage = true;
                    report.left += (order.len() - done) as u32;
                    break;
                }
                Err(refusal) => tracing::warn!(?work, ?refusal, "work not done; it waits for the next pass"),
                Ok(true) => {}
                Ok(false) => report.left += 1,
            }
            done += 1;
        }
        report.calls = publisher.calls();
        Ok(report)
    }

    /// Syncs a stuck post if its calls fit in `left`; `Ok(false)` when they do not.
    async fn sync(
        &self,
        publisher: &Counting<'_, P>,
        project: &ProjectId,
        post: &PostId,
        left: u32,
        report: &mut PassReport,
    ) -> Result<bool, Refusal> {
        let Some(stored) = self.store.post(project, post).await? else { return Ok(true) };
        let Some(watch) = stored.watch else { return Ok(true) };
        if let Some(sending) = stored.sending.as_ref().filter(|s| s.generation == watch.generation) {
            // Still being sent, past the grace: its follow-up was lost (never queued, or
            // dead-lettered). Queue it again; the follow-up calls the service, not the pass.
            let follow_up = FollowUp {
                project: project.clone(),
                post: post.clone(),
                generation: sending.generation,
                attempt: 0,
                booking: None,
            };
            if let Err(e) = self.queue.follow_up(&follow_up, 0).await {
                tracing::warn!(project = %project, post = %post, error = %e, "a lost follow-up could not be queued again");
                return Err(Refusal::StoreUnavailable);
            }
            tracing::warn!(project = %project, post = %post, generation = sending.generation, "a lost follow-up queued again");
            let next = tried(watch, self.clock.now(), self.settings.grace_seconds);
            self.store.postpone(project, post, next, stored.version).await?;
            return Ok(true);
        }
        let cost = publications(&stored.state).len() as u32;
        if cost > left {
            return Ok(false);
        }
        self.reserve(cost).await?;
        let saved =
            sync_post(&self.store, publisher, &self.clock, (project, post, &stored), &Source::Reconciler).await?;
        report.posts_synced += 1;
        match saved.watch {
            None => report.posts_healed += 1,
            Some(still) if still.generation == watch.generation => {
                let next = tried(still, self.clock.now(), self.settings.grace_seconds);
                self.store.postpone(project, post, next, saved.version).await?;
            }
            Some(_) => {}
        }
        Ok(true)
    }

    /// Reads our webhook subscription when due, switches it back on when it is off and our
    /// endpoint answers, and asks for the failed deliveries since the outage began to be sent
    /// again, oldest first, within the pass's calls (healing-and-history.md).
    async fn watch(
        &self,
        publisher: &Counting<'_, P>,
        watch: &WatchSettings,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<(), Refusal> {
        let watched = self.store.watched_subscription().await?;
        if !subscription::due(&watched, now, watch.every_seconds) {
            return Ok(());
        }
        self.reserve(1).await?;
        let listed = publisher.subscriptions().await?;
        let found = subscription::ours(&listed, &watch.url);
        let answers = subscription::needs_probe(&watched, found) && publisher.endpoint_answers(&watch.url).await;
        let reading = subscription::read(&watched, found, answers, now);
        count(Metric::SubscriptionActive, reading.active);
        count(Metric::SubscriptionFailureCount, reading.failure_count);
        let Some(sub) = found else {
            tracing::error!(url = %watch.url, "no webhook subscription of the service delivers to our endpoint");
            self.store.keep_watched_subscription(&reading.next).await?;
            return Ok(());
        };
        if reading.failing {
            tracing::warn!(failures = sub.failure_count, "the webhook subscription's deliveries are failing");
        }
        if reading.switch_on {
            self.reserve(1).await?;
            publisher.switch_on(&sub.id).await?;
            tracing::warn!(subscription = %sub.id, failures = sub.failure_count, "the webhook subscription was off; switched back on");
            count(Metric::SubscriptionReactivated, 1);
            report.subscription_switched_on = true;
        }
        let mut next = reading.next;
        if let Some(since) = reading.redeliver_since {
            next = self.redeliver(publisher, &sub.id, since, next, report).await?;
        }
        self.store.keep_watched_subscription(&next).await?;
        Ok(())
    }

    /// Lists the subscription's deliveries since `since` (newest first, page by page) and asks
    /// for each event whose latest attempt failed to be sent again, oldest first, while the
    /// pass has calls; the repair ends when none is left.
    async fn redeliver(
        &self,
        publisher: &Counting<'_, P>,
        id: &str,
        since: Timestamp,
        watched: Watched,
        report: &mut PassReport,
    ) -> Result<Watched, Refusal> {
        let calls_left = || self.settings.max_calls.saturating_sub(publisher.calls());
        let (mut logs, mut complete) = (Vec::new(), false);
        while calls_left() > 0 {
            self.reserve(1).await?;
            let (page, more) = publisher.deliveries(id, logs.len()).await?;
            let reached = page.is_empty() || page.iter().any(|d| d.at < since);
            logs.extend(page);
            if !more || reached {
                complete = true;
                break;
            }
        }
        let events = subscription::to_redeliver(&logs, since);
        let mut left = events.len();
        for event in &events {
            if calls_left() == 0 {
                break;
            }
            self.reserve(1).await?;
            if !publisher.redeliver(id, event).await? {
                tracing::warn!(event, "a redelivery failed at our endpoint again; the repair goes on next pass");
                break;
            }
            left -= 1;
            report.redelivered += 1;
        }
        if report.redelivered > 0 {
            tracing::info!(redelivered = report.redelivered, left, "failed webhook deliveries sent again");
            count(Metric::DeliveriesRedelivered, report.redelivered.into());
        }
        Ok(if complete { subscription::repaired(watched, left) } else { watched })
    }

    /// Whether the project is sealed for erasure (an unreadable seal counts as not: the work's
    /// own writes refuse to create anything of a sealed project).
    /// The project's seal and its version, if it is erased (a failed read: not known to be).
    async fn seal(&self, project: &ProjectId) -> Option<(Erasure, u64)> {
        self.store.erasure(project).await.ok().flatten()
    }

    /// Queues a step of an erasure whose steps stalled (`domain::erasure::resume`), and records it
    /// on the seal so the next pass does not queue another: no call to the service.
    async fn resume(
        &self,
        project: &ProjectId,
        (erasure, version): (Erasure, u64),
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<bool, Refusal> {
        let Some(resumed) = erasure::resume(&erasure, now) else { return Ok(true) };
        if !self.store.save_erasure(project, &resumed, version, false).await? {
            return Ok(true); // a step moved it meanwhile: not stalled
        }
        if let Err(e) = self.queue.erase_step(project, 0).await {
            tracing::warn!(project = %project, error = %e, "a stalled erasure's step could not be queued");
            return Err(Refusal::StoreUnavailable);
        }
        tracing::warn!(project = %project, since = %erasure.since.to_rfc3339(), "a stalled erasure resumed");
        report.erasures_resumed += 1;
        Ok(true)
    }

    /// Takes a piece of work's calls from the budget before its first.
    async fn reserve(&self, calls: u32) -> Result<(), Refusal> {
        match self.budget.reserve(calls).await {
            Ok(_) => Ok(()),
            Err(limited) => Err(Refusal::Busy { retry_after: limited.retry_after }),
        }
    }

    /// Refreshes a stale project if a Refresh's calls fit in `left`; `Ok(false)` when they do not.
    async fn refresh(
        &self,
        publisher: &Counting<'_, P>,
        project: &ProjectId,
        left: u32,
        started: Timestamp,
        report: &mut PassReport,
    ) -> Result<bool, Refusal> {
        if REFRESH_CALLS > left {
            return Ok(false);
        }
        let profile = self.store.project_profile(project).await?;
        self.reserve(REFRESH_CALLS_AT_ONCE).await?;
        let refreshed =
            refresh_project(&self.store, publisher, &self.clock, (project, profile), &Source::Reconciler).await?;
        report.projects_refreshed += 1;
        if let Refreshed::Connections(saved) = refreshed {
            let stale = saved.iter().filter(|s| s.connection.status.needs_reconnect() && s.updated_at >= started);
            report.connections_found_stale += stale.count() as u32;
        }
        Ok(true)
    }
}

/// The publisher, counting the calls a pass makes.
struct Counting<'a, P> {
    inner: &'a P,
    calls: AtomicU32,
}

impl<P> Counting<'_, P> {
    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn one(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl<P: Publisher> Publisher for Counting<'_, P> {
    async fn accounts(&self, profile: &ProfileId) -> Result<Option<Vec<LiveAccount>>, PublisherError> {
        self.one();
        self.inner.accounts(profile).await
    }

    async fn health(&self, profile: &ProfileId) -> Result<Option<Vec<AccountHealth>>, PublisherError> {
        self.one();
        self.inner.health(profile).await
    }

    async fn profile_exists(&self, profile: &ProfileId) -> Result<bool, PublisherError> {
        self.one();
        self.inner.profile_exists(profile).await
    }

    async fn create_profile(&self, project: &ProjectId) -> Result<ProfileId, PublisherError> {
        self.one();
        self.inner.create_profile(project).await
    }

    async fn disconnect_account(&self, account: &AccountId) -> Result<(), PublisherError> {
        self.one();
        self.inner.disconnect_account(account).await
    }

    async fn delete_profile(&self, profile: &ProfileId) -> Result<(), PublisherError> {
        self.one();
        self.inner.delete_profile(profile).await
    }

    async fn connect_link(
        &self,
        platform: Platform,
        profile: &ProfileId,
        redirect_url: Option<&str>,
        reconnect: Option<&AccountId>,
    ) -> Result<Option<String>, PublisherError> {
        self.one();
        self.inner.connect_link(platform, profile, redirect_url, reconnect).await
    }
}

impl<P: SubscriptionWatch> SubscriptionWatch for Counting<'_, P> {
    async fn subscriptions(&self) -> Result<Vec<Subscription>, PublisherError> {
        self.one();
        self.inner.subscriptions().await
    }

    async fn switch_on(&self, id: &str) -> Result<(), PublisherError> {
        self.one();
        self.inner.switch_on(id).await
    }

    async fn deliveries(&self, id: &str, skip: usize) -> Result<(Vec<Delivery>, bool), PublisherError> {
        self.one();
        self.inner.deliveries(id, skip).await
    }

    async fn redeliver(&self, id: &str, event_id: &str) -> Result<bool, PublisherError> {
        self.one();
        self.inner.redeliver(id, event_id).await
    }

    /// Our own endpoint: not a call to the service.
    async fn endpoint_answers(&self, url: &str) -> bool {
        self.inner.endpoint_answers(url).await
    }
}

impl<P: PostPublisher> PostPublisher for Counting<'_, P> {
    async fn publish(&self, publication: &Publication, wait: std::time::Duration) -> Answer {
        self.one();
        self.inner.publish(publication, wait).await
    }

    async fn post(&self, id: &ServicePostId, asked_at: Timestamp) -> Result<ServiceAnswer, PublisherError> {
        self.one();
        self.inner.post(id, asked_at).await
    }
}
