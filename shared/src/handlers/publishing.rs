//! Sending a publication and doing what the service's answer asks: the publish route's first
//! attempt and every follow-up share this, and `domain::publish::next_step` decides.
//! A publish-now runs inside the service's request for seconds or minutes: the route waits at
//! most `wait`, answers 202 past it, and a follow-up sends the same request again (same
//! `x-request-id` and `Idempotency-Key`) until the publication has its service post or is settled.

use std::time::Duration;

use super::app::Refusal;
use crate::domain::platform::spoken_list;
use crate::domain::post::ServiceAnswer;
use crate::domain::publish::{self, Answer, Sender, Sending, SendingChange, Step};
use crate::domain::refresh::stale_at_publish;
use crate::domain::{Connection, Platform, PostId, PostReport, PostState, ProfileId, ProjectId};
use crate::metrics::{self, Metric};
use crate::ports::{
    Booking, Clock, ConnectionStore, FollowUp, FollowUpQueue, PostChange, PostPublisher, PostStore, Publication,
    Publisher, SealStore, Source, StoredConnection, StoredPost,
};

/// How long the route waits for the service, and the first follow-up's delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `PUBLISH_WAIT_SECONDS`.
    pub wait: Duration,
    /// `PUBLISH_FOLLOWUP_SECONDS`: doubled for each follow-up after the first.
    pub follow_up_seconds: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { wait: Duration::from_secs(10), follow_up_seconds: 60 }
    }
}

/// When a follow-up comes.
enum Delay {
    /// At the publication's place in the shared budget's line.
    AtPlace(Booking),
    /// After the back-off (at least the service's `Retry-After`), keeping any place it held.
    After(Option<u64>, Option<Booking>),
}

/// Where a publication ended up after one attempt.
#[derive(Debug)]
pub enum Sent {
    /// Its outcome (or refusal, from a follow-up) is recorded: the post as stored.
    Recorded(StoredPost),
    /// Queued for a follow-up: the post as stored, still publishing.
    FollowingUp(StoredPost),
}

/// The ports one attempt uses.
pub struct Attempt<'a, S, P, Q, C> {
    pub store: &'a S,
    pub publisher: &'a P,
    pub queue: &'a Q,
    pub clock: &'a C,
    pub timing: Timing,
}

impl<S, P, Q, C> Attempt<'_, S, P, Q, C>
where
    S: PostStore + ConnectionStore,
    P: Publisher + PostPublisher,
    Q: FollowUpQueue,
    C: Clock,
{
    /// Sends the publication `stored` is sending and carries out the answer. `before` is the post
    /// as it was before the route began it (for the route only: a publication the service
    /// certainly did not take leaves the post exactly as it was).
    pub async fn send(
        &self,
        (project, post): (&ProjectId, &PostId),
        stored: StoredPost,
        before: Option<&StoredPost>,
        sender: Sender,
        (attempt, booking): (u32, Option<Booking>),
    ) -> Result<Sent, Refusal> {
        let (Some(sending), Some(draft)) = (stored.sending.clone(), stored.draft.clone()) else {
            return Ok(Sent::Recorded(stored));
        };
        let publication = Publication { booking, ..sending.publication(project, post, &draft, self.clock.now()) };
        let answer = self.publisher.publish(&publication, self.timing.wait).await;
        tracing::info!(project = %project, post = %post, generation = sending.generation, attempt,
                       answer = ?short(&answer), "publish answered");
        let step = match publish::next_step(answer, sender) {
            Step::CheckExisting(existing) => self.check_existing(project, post, &sending, existing).await,
            step => step,
        };
        let ids = (project, post);
        if sender == Sender::FollowUp
            && matches!(step, Step::FindStale | Step::Duplicate | Step::Refused(_) | Step::AccountLimited(_))
        {
            tracing::warn!(project = %project, post = %post, generation = sending.generation, "publication refused after the route answered");
        }
        match step {
            Step::Record(report) => Ok(Sent::Recorded(self.record(ids, &stored, &sending, &report).await?)),
            Step::CheckExisting(_) | Step::Later(_) | Step::AtPlace(_) => {
                let delay = match step {
                    Step::AtPlace(place) => Delay::AtPlace(place),
                    // A place held is kept: the publication is still ahead of those behind it.
                    Step::Later(after) => Delay::After(after, booking),
                    _ => Delay::After(None, booking),
                };
                match (self.follow_up(ids, &sending, attempt, delay).await, sender) {
                    // The publication is stored and watched: the reconciler queues its follow-up
                    // after its grace, so the app is told the truth, that it goes on (202).
                    (_, Sender::Route) => Ok(Sent::FollowingUp(self.shown(ids, stored, &sending).await)),
                    (Ok(()), Sender::FollowUp) => Ok(Sent::FollowingUp(stored)),
                    // A follow-up that cannot queue the next one is delivered again instead.
                    (Err(refusal), Sender::FollowUp) => Err(refusal),
                }
            }
            Step::FindStale => {
                let refusal = self.stale_connections(project, &sending).await;
                match sender {
                    Sender::Route => self.abandon(ids, &stored, before, refusal).await,
                    Sender::FollowUp => {
                        let Refusal::ReconnectRequired { platforms, .. } = &refusal else { return Err(refusal) };
                        let failed = reconnect_failed(&sending, platforms);
                        Ok(Sent::Recorded(self.save_end(project, post, &stored, &sending, &failed).await?))
                    }
                }
            }
            Step::Duplicate => match sender {
                Sender::Route => self.abandon(ids, &stored, before, Refusal::DuplicateContent).await,
                Sender::FollowUp => {
                    let failed = sending.failed(publish::DUPLICATE);
                    Ok(Sent::Recorded(self.save_end(project, post, &stored, &sending, &failed).await?))
                }
            },
            Step::Refused(message) => match sender {
                Sender::Route => {
                    let why = format!("The publishing service refused this post: {message}");
                    self.abandon(ids, &stored, before, Refusal::InvalidRequest(why)).await
                }
                Sender::FollowUp => {
                    let failed = sending.failed(&message);
                    Ok(Sent::Recorded(self.save_end(project, post, &stored, &sending, &failed).await?))
                }
            },
            Step::AccountLimited(limit) => match sender {
                Sender::Route => {
                    let platforms = limit.platforms_of(&sending.targets);
                    let retry_after = limit.retry_after(self.clock.now());
                    let refusal = Refusal::AccountLimited { platforms, retry_after, message: limit.explained() };
                    self.abandon(ids, &stored, before, refusal).await
                }
                Sender::FollowUp => {
                    let failed = sending.limited(&limit);
                    Ok(Sent::Recorded(self.save_end(project, post, &stored, &sending, &failed).await?))
                }
            },
            Step::Unavailable(after) => {
                let retry_after = after.unwrap_or(super::app::DEFAULT_RETRY_AFTER).min(super::app::MAX_RETRY_AFTER);
                self.abandon(ids, &stored, before, Refusal::PublisherUnavailable { retry_after }).await
            }
        }
    }

    /// A 409 named a post: ours (its metadata is this publication) is adopted, any other is a
    /// duplicate. Unreadable now: try again later.
    async fn check_existing(
        &self,
        project: &ProjectId,
        post: &PostId,
        sending: &Sending,
        existing: crate::domain::ServicePostId,
    ) -> Step {
        match self.publisher.post(&existing, self.clock.now()).await {
            Ok(ServiceAnswer::Found(report)) if publish::is_ours(&report, project, post, sending.generation) => {
                tracing::info!(project = %project, post = %post, service_post = %existing, "our earlier attempt adopted");
                metrics::count(Metric::PublishesAdopted, 1);
                Step::Record(report)
            }
            Ok(_) => Step::Duplicate,
            Err(e) => {
                tracing::warn!(error = %e, "the post a 409 names could not be read; following up");
                Step::Later(None)
            }
        }
    }

    async fn record(
        &self,
        (project, post): (&ProjectId, &PostId),
        stored: &StoredPost,
        sending: &Sending,
        report: &PostReport,
    ) -> Result<StoredPost, Refusal> {
        let evidence = publish::evidence(sending, report, &stored.state);
        tracing::info!(project = %project, post = %post, generation = sending.generation,
                       service_post = %report.service_post_id, "published");
        self.save_end(project, post, stored, sending, &evidence).await
    }

    async fn save_end(
        &self,
        project: &ProjectId,
        post: &PostId,
        stored: &StoredPost,
        sending: &Sending,
        evidence: &PostState,
    ) -> Result<StoredPost, Refusal> {
        let change = PostChange::new(&Source::Publish, evidence).with_sending(SendingChange::End(sending.generation));
        Ok(self.store.save_post(project, post, Some(stored), change, self.clock.now()).await?)
    }

    /// The route answers 202: the post's history records it `publishing`, as the app sees it
    /// (`Sending::shown`). Not recorded (the store failed), the answer stands: the publication
    /// goes on, and its outcome is recorded as always.
    async fn shown(&self, (project, post): (&ProjectId, &PostId), stored: StoredPost, sending: &Sending) -> StoredPost {
        let nothing = PostState::default();
        let change = PostChange::new(&Source::Publish, &nothing).with_sending(SendingChange::Shown(sending.generation));
        match self.store.save_post(project, post, Some(&stored), change, self.clock.now()).await {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!(project = %project, post = %post, error = %e, "the post's publishing state could not be recorded in its history");
                stored
            }
        }
    }

    /// The route's refusal, with the post taken back to how it was.
    async fn abandon(
        &self,
        (project, post): (&ProjectId, &PostId),
        stored: &StoredPost,
        before: Option<&StoredPost>,
        refusal: Refusal,
    ) -> Result<Sent, Refusal> {
        self.store.abandon(project, post, stored, before).await?;
        Err(refusal)
    }

    async fn follow_up(
        &self,
        (project, post): (&ProjectId, &PostId),
        sending: &Sending,
        attempt: u32,
        delay: Delay,
    ) -> Result<(), Refusal> {
        let (delay, booking) = match delay {
            Delay::AtPlace(place) => (publish::delay_until(place.at, self.clock.now()), Some(place)),
            Delay::After(after, booking) => {
                (publish::follow_up_delay(self.timing.follow_up_seconds, attempt, after), booking)
            }
        };
        let follow_up =
            FollowUp { project: project.clone(), post: post.clone(), generation: sending.generation, attempt, booking };
        if let Err(e) = self.queue.follow_up(&follow_up, delay).await {
            tracing::error!(project = %project, post = %post, error = %e, "a follow-up could not be queued");
            return Err(Refusal::StoreUnavailable);
        }
        metrics::count(Metric::PublishesFollowedUp, 1);
        tracing::info!(project = %project, post = %post, generation = sending.generation, attempt, delay, "follow-up queued");
        Ok(())
    }

    /// After a 403 about accounts: one read of the live list decides which of this publication's
    /// platforms are stale; exactly those are marked expired.
    async fn stale_connections(&self, project: &ProjectId, sending: &Sending) -> Refusal {
        let platforms: Vec<Platform> = sending.targets.iter().map(|t| t.platform).collect();
        let unverified = Refusal::ReconnectRequired { platforms: platforms.clone(), verified: false };
        let Ok(Some(profile)) = self.store.project_profile(project).await else { return unverified };
        let Ok(read) = self.store.connections(&profile).await else { return unverified };
        stale_among(self.store, self.publisher, self.clock, (project, &profile), read, &platforms).await
    }
}

/// Which of `platforms` the live list says are stale, marked expired (the route's check before a
/// call and a follow-up's after a 403 alike).
pub async fn stale_among<S: ConnectionStore, P: Publisher, C: Clock>(
    store: &S,
    publisher: &P,
    clock: &C,
    (project, profile): (&ProjectId, &ProfileId),
    read: Vec<StoredConnection>,
    platforms: &[Platform],
) -> Refusal {
    let unverified = Refusal::ReconnectRequired { platforms: platforms.to_vec(), verified: false };
    let asked_at = clock.now();
    let Ok(Some(live)) = publisher.accounts(profile).await else {
        tracing::warn!(project = %project, "live list unreadable after a stale-account refusal; nothing marked");
        return unverified;
    };
    let stored: Vec<Connection> = read.iter().map(|s| s.connection.clone()).collect();
    let evidence = stale_at_publish(&stored, &live, platforms, asked_at);
    if evidence.is_empty() {
        return unverified;
    }
    let stale: Vec<Platform> = evidence.iter().map(|c| c.platform).collect();
    if let Err(e) = store.save_connections(project, profile, read, evidence, &Source::Publish, clock.now()).await {
        return e.into();
    }
    tracing::warn!(project = %project, stale = ?stale, "stale connections found at publish");
    metrics::count(Metric::StaleConnectionsFound, stale.len() as u64);
    Refusal::ReconnectRequired { platforms: stale, verified: true }
}

/// The copies of a publication refused over accounts: each stale one says which to reconnect.
fn reconnect_failed(sending: &Sending, stale: &[Platform]) -> PostState {
    let mut state = sending.failed("Not published: another platform of this publish needs reconnecting.");
    for (platform, entry) in state.entries.iter_mut() {
        if stale.contains(platform) {
            entry.error = Some(format!("Reconnect {}, then publish again.", spoken_list(&[*platform])));
        }
    }
    state
}

/// What a log line says of an answer (never the whole post).
fn short(answer: &Answer) -> &'static str {
    match answer {
        Answer::Taken(_) => "taken",
        Answer::StaleAccounts => "stale_accounts",
        Answer::Duplicate(_) => "duplicate",
        Answer::InFlight(_) => "in_flight",
        Answer::Refused(_) => "refused",
        Answer::Unanswered(_) => "unanswered",
        Answer::AccountLimited(_) => "account_limited",
        Answer::Throttled(_) => "throttled",
        Answer::Queued(_) => "queued_past_the_budget",
        Answer::NotTaken(_) => "not_taken",
    }
}

/// The follow-up: sends a publication again until it has its service post or is settled.
pub struct PublishFollowUp<S, P, Q, C> {
    pub store: S,
    pub publisher: P,
    pub queue: Q,
    pub clock: C,
    pub timing: Timing,
}

impl<S, P, Q, C> PublishFollowUp<S, P, Q, C>
where
    S: PostStore + ConnectionStore + SealStore,
    P: Publisher + PostPublisher,
    Q: FollowUpQueue,
    C: Clock,
{
    /// `Ok` when done with (sent, recorded, given up, or queued again); `Err` to be delivered again.
    pub async fn handle(&self, follow_up: &FollowUp) -> Result<(), String> {
        let FollowUp { project, post, generation, attempt, booking } = follow_up;
        // The seal ends every publication of an erased project: nothing is sent again.
        if self.store.erasure(project).await.map_err(|e| e.to_string())?.is_some() {
            tracing::info!(project = %project, post = %post, "follow-up: the project is erased; nothing is sent");
            return Ok(());
        }
        let stored = self.store.post(project, post).await.map_err(|e| e.to_string())?;
        let Some(stored) = stored.filter(|s| s.sending.as_ref().is_some_and(|s| s.generation == *generation)) else {
            tracing::info!(project = %project, post = %post, generation, "follow-up: nothing left to send");
            return Ok(());
        };
        let now = self.clock.now();
        if let Some(place) = booking {
            let lag = (now.unix_millis() - place.at.unix_millis()).max(0) / 1000;
            metrics::count(Metric::FollowUpLagSeconds, lag as u64);
        }
        if let Some(sending) = stored.sending.clone().filter(|s| s.given_up(now)) {
            tracing::error!(project = %project, post = %post, generation, "publication never confirmed; recorded failed");
            let failed = sending.failed(publish::UNCONFIRMED);
            let change = PostChange::new(&Source::Publish, &failed).with_sending(SendingChange::End(*generation));
            self.store.save_post(project, post, Some(&stored), change, now).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let attempt_of = Attempt {
            store: &self.store,
            publisher: &self.publisher,
            queue: &self.queue,
            clock: &self.clock,
            timing: self.timing,
        };
        match attempt_of.send((project, post), stored, None, Sender::FollowUp, (attempt + 1, *booking)).await {
            Ok(_) => Ok(()),
            Err(refusal) => Err(format!("{refusal:?}")),
        }
    }
}

/// The post as the route answers it: 201 once recorded, 202 while it goes on without the app.
pub fn status_of(sent: &Sent) -> (u16, &StoredPost) {
    match sent {
        Sent::Recorded(post) => (201, post),
        Sent::FollowingUp(post) => (202, post),
    }
}
