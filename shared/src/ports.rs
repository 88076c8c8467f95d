//! The small traits the handlers need. Adapters implement them over DynamoDB, SQS and the
//! publishing service; tests may implement them in memory.

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use crate::domain::budget::Booking;
use crate::domain::connection::{ConnectionEvidence, ConnectionRecord};
pub use crate::domain::erasure::Erasure;
pub use crate::domain::healing::Watch;
pub use crate::domain::history::Source;
use crate::domain::limits::{CallKind, Limited, ProjectLane, Rate, Seen};
pub use crate::domain::post::ServiceAnswer;
pub use crate::domain::publish::{Answer, Draft, Publication, Sending, SendingChange, Target};
pub use crate::domain::refresh::{AccountHealth, HealthStatus, LiveAccount};
pub use crate::domain::subscription::{Delivery, Subscription, Watched};
use crate::domain::{
    AccountId, Connection, EventId, Platform, PostId, PostReport, ProfileId, ProjectId, ServicePostId, Timestamp,
};

/// What became of one piece of evidence. Expected outcomes are values, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Taken and joined into the stored state; `changed` is false when it told nothing new.
    Applied { changed: bool },
    /// The event id was already taken: nothing was written.
    Duplicate,
    /// Nothing to apply it to (an account event for a profile we do not know).
    Ignored,
    /// It cannot be applied yet (it names a publication we have not stored); try again later.
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, throttled, timed out: worth trying again later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Lost the optimistic-concurrency race too many times in a row.
    #[error("too many concurrent writers on one item")]
    Contention,
    /// An item that does not read back as what we write: a bug or a hand edit.
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
    /// The item would pass DynamoDB's 400 KB limit: no retry can store it.
    #[error("the item is too large to store")]
    TooLarge,
    /// A request we built was refused as malformed: a bug, not an outage.
    #[error("a request to the store could not be built: {0}")]
    Invalid(String),
    /// The project is sealed for erasure: nothing of it may be created again.
    #[error("the project is erased")]
    Sealed,
}

/// Applies webhook evidence together with taking its event id, so that an id counts as taken
/// only once its effect is stored.
pub trait EventStore: Send + Sync {
    fn apply_post_report(
        &self,
        event: &EventId,
        project: &ProjectId,
        post: &PostId,
        report: &PostReport,
        now: Timestamp,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    fn apply_account_news(
        &self,
        event: &EventId,
        profile: &ProfileId,
        news: &ConnectionEvidence,
        now: Timestamp,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;
}

/// A verified event that could not be applied at once, as it travels on the retry queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryMessage {
    pub event_id: EventId,
    /// When the webhook received it: the evidence time of an event without a timestamp.
    pub received_at: Timestamp,
    /// The raw (already verified) body, so the retry applies exactly what was signed.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the retry queue is unavailable: {0}")]
pub struct QueueError(pub String);

pub trait RetryQueue: Send + Sync {
    fn enqueue(&self, message: &RetryMessage) -> impl Future<Output = Result<(), QueueError>> + Send;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::now_utc())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublisherError {
    /// Down, slow past the client timeout, 5xx, 429, an answer that is not the service's own, or
    /// our API key refused: try again later (after `retry_after`).
    #[error("the publishing service is unavailable: {reason}")]
    Unavailable { retry_after: Option<u64>, reason: String },
    /// It answered, and said no.
    #[error("the publishing service refused ({status}): {message}")]
    Refused { status: u16, code: Option<String>, message: String },
    /// Not sent: the shared budget of the API key has no room until `retry_after` (capacity.md).
    #[error("the shared budget of calls to the publishing service has no room for {retry_after} s")]
    Busy { retry_after: u64 },
    /// Our own service account needs its operator (402 `PAYMENT_REQUIRED`, the profile limit):
    /// nothing the user did, nothing to reconnect.
    #[error("the publishing service's account needs attention: {reason}")]
    NeedsOperator { reason: String },
}

/// The publishing service, as the handlers need it. A second vendor implements this too.
pub trait Publisher: Send + Sync {
    /// The live accounts of a profile; `None` when the service answers its own 404.
    fn accounts(
        &self,
        profile: &ProfileId,
    ) -> impl Future<Output = Result<Option<Vec<LiveAccount>>, PublisherError>> + Send;
    /// Health of a profile's accounts; `None` when the service answers its own 404.
    fn health(
        &self,
        profile: &ProfileId,
    ) -> impl Future<Output = Result<Option<Vec<AccountHealth>>, PublisherError>> + Send;
    /// Whether the service still knows the profile.
    fn profile_exists(&self, profile: &ProfileId) -> impl Future<Output = Result<bool, PublisherError>> + Send;
    /// Creates the project's profile (named for it, `externalId` = the project), or finds the one
    /// that already exists (an earlier create whose answer was lost).
    fn create_profile(&self, project: &ProjectId) -> impl Future<Output = Result<ProfileId, PublisherError>> + Send;
    /// Deletes a profile on the service (`DELETE /v1/profiles/{id}`); one already gone is deleted
    /// too. Refused (400) while it still holds active accounts.
    fn delete_profile(&self, profile: &ProfileId) -> impl Future<Output = Result<(), PublisherError>> + Send;
    /// Disconnects an account on the service (`DELETE /v1/accounts/{id}`); one already gone (the
    /// service's own 404) is disconnected too.
    fn disconnect_account(&self, account: &AccountId) -> impl Future<Output = Result<(), PublisherError>> + Send;
    /// The hosted OAuth link; `None` when the service no longer knows the profile. `reconnect`:
    /// the account the service refreshes instead of adding another.
    fn connect_link(
        &self,
        platform: Platform,
        profile: &ProfileId,
        redirect_url: Option<&str>,
        reconnect: Option<&AccountId>,
    ) -> impl Future<Output = Result<Option<String>, PublisherError>> + Send;
}

/// A connection as stored, with what the API shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConnection {
    /// What the API shows.
    pub connection: Connection,
    /// Everything known, which `connection` is derived from.
    pub record: ConnectionRecord,
    pub updated_at: Timestamp,
    pub version: u64,
}

impl StoredConnection {
    /// What the domain's connection rules read of a stored record.
    pub fn settled(&self) -> (&ConnectionRecord, Timestamp) {
        (&self.record, self.updated_at)
    }
}

/// The shards of the shared API key's budget (`domain::budget`).
pub trait SharedBudgetStore: Send + Sync {
    /// Takes one call from every lane on `shard` (all or none), or says how long until there is room.
    fn take_shared(
        &self,
        shard: u32,
        lanes: &[(crate::domain::budget::Lane, crate::domain::limits::Rate)],
        now: Timestamp,
    ) -> impl Future<Output = Result<Result<(), Limited>, StoreError>> + Send;
    /// A place in the shard's line at `earliest` or after (at most `ahead_seconds` after), spaced
    /// by `line`: the moment it is for.
    fn book_shared(
        &self,
        shard: u32,
        line: crate::domain::limits::Rate,
        earliest: Timestamp,
        ahead_seconds: i64,
    ) -> impl Future<Output = Result<Result<Timestamp, Limited>, StoreError>> + Send;
    /// Keeps the shard's `all` lane at `tat` at least (`domain::budget::Plan::shut`).
    fn shut_shared(&self, shard: u32, tat: i64, now: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A project's seal (lifecycle.md, `domain::erasure`).
pub trait SealStore: Send + Sync {
    /// The project's erasure and its seal's version, if it is sealed.
    fn erasure(&self, project: &ProjectId) -> impl Future<Output = Result<Option<(Erasure, u64)>, StoreError>> + Send;
    /// Seals the project at `now` (and cuts its profile's routing, so no account webhook reaches
    /// it), or reads the seal it already has.
    fn seal(
        &self,
        project: &ProjectId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(Erasure, u64), StoreError>> + Send;
}

/// One item of a project, as the erasure deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey(pub String, pub String);

/// What erasing a project needs of the store beyond its seal.
pub trait ErasureStore: SealStore {
    /// The project's profile on the service, as its pointer (kept to the last) says.
    fn erased_profile(&self, project: &ProjectId)
    -> impl Future<Output = Result<Option<ProfileId>, StoreError>> + Send;
    /// Up to `limit` items of the project besides its seal: its profile's first, then its own,
    /// the pointer to its profile last.
    fn items_left(
        &self,
        project: &ProjectId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ItemKey>, StoreError>> + Send;
    /// Deletes `items` and records `next` on the seal in one transaction, if the seal is still at
    /// `version`: `false` when it moved (another step ran meanwhile).
    fn delete_items(
        &self,
        project: &ProjectId,
        items: &[ItemKey],
        next: &Erasure,
        version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records `next` on the seal if it is still at `version`; with `announce`, together with the
    /// project's one `project.erased` record for the change feed.
    fn save_erasure(
        &self,
        project: &ProjectId,
        next: &Erasure,
        version: u64,
        announce: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// A boxed future, for the ports taken as trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What every call to the publishing service passes first: the shared budget (capacity.md).
pub trait CallGate: Send + Sync {
    /// Room for one call now, or how long until there is.
    fn admit(&self) -> BoxFuture<'_, Result<(), Limited>>;
    /// Room now for up to `calls` calls of one operation, taken at once before its first (all or
    /// none): how many were taken. A gate that keeps them (`handlers::budget::Prepaid`) lets the
    /// operation's calls spend them.
    fn reserve(&self, calls: u32) -> BoxFuture<'_, Result<u32, Limited>>;
    /// Room now for a publish that holds a place in line (at its moment).
    fn admit_booked(&self, booking: Booking) -> BoxFuture<'_, Result<(), Limited>>;
    /// Room now for a publish (`None`), or, past the budget, a place in line (`Some`): in the line
    /// of the shard tried that opens first (`domain::budget::soonest`); refused when the line is
    /// longer than a follow-up can wait.
    fn admit_or_book(&self) -> BoxFuture<'_, Result<Option<Booking>, Limited>>;
    /// The service answered 429: no caller calls it again until `retry_after` has passed.
    fn shut(&self, retry_after: Option<u64>) -> BoxFuture<'_, ()>;
}

/// No shared budget: every call goes (tools, and tests of other things).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungated;

impl CallGate for Ungated {
    fn admit(&self) -> BoxFuture<'_, Result<(), Limited>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn reserve(&self, calls: u32) -> BoxFuture<'_, Result<u32, Limited>> {
        Box::pin(std::future::ready(Ok(calls)))
    }
    fn admit_booked(&self, _: Booking) -> BoxFuture<'_, Result<(), Limited>> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn admit_or_book(&self) -> BoxFuture<'_, Result<Option<Booking>, Limited>> {
        Box::pin(std::future::ready(Ok(None)))
    }
    fn shut(&self, _: Option<u64>) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A project's budgets: calls to the shared service, and post writes.
pub trait BudgetStore: Send + Sync {
    /// Takes one from every lane given of the project's budget item for `item`, all or none
    /// (`domain::limits::take`), starting from `seen` (what the route's own read brought) and
    /// reading again after a race. Writes nothing when refused.
    fn take_budget(
        &self,
        project: &ProjectId,
        item: CallKind,
        seen: Seen,
        lanes: &[(ProjectLane, Rate)],
        now: Timestamp,
    ) -> impl Future<Output = Result<Result<(), Limited>, StoreError>> + Send;
}

/// What the connection routes need of the store.
pub trait ConnectionStore: Send + Sync {
    /// The project's profile on the service and its budget item for `kind`, read together (one
    /// request).
    fn profile_and_budget(
        &self,
        project: &ProjectId,
        kind: CallKind,
    ) -> impl Future<Output = Result<(Option<ProfileId>, Seen), StoreError>> + Send;
    /// The project's profile on the service, if it has one.
    fn project_profile(
        &self,
        project: &ProjectId,
    ) -> impl Future<Output = Result<Option<ProfileId>, StoreError>> + Send;
    /// Every connection recorded under a profile.
    fn connections(
        &self,
        profile: &ProfileId,
    ) -> impl Future<Output = Result<Vec<StoredConnection>, StoreError>> + Send;
    /// Joins evidence into the connections (`read` is what the caller read; re-read on a race)
    /// and returns them all as stored afterwards, with history records of what changed, made by
    /// `source`. Writes nothing when nothing changes, unless the source checks connections
    /// against the live list (`Source::checks_connections`): then the project records that it
    /// was checked at `now`, in the same write.
    fn save_connections(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: Vec<StoredConnection>,
        evidence: Vec<Connection>,
        source: &Source,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<StoredConnection>, StoreError>> + Send;
    /// Forgets a profile the service no longer knows: its connections, routing and the project's
    /// pointer to it. `false` (nothing changed) when the project moved to another profile meanwhile
    /// or a connection was written since `read`: the caller reads again and decides again.
    fn forget_profile(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: &[StoredConnection],
        source: &Source,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records the project's profile and the routing account webhooks use, together. `false`
    /// (nothing written) when another project's routing already holds the profile.
    fn link_profile(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub trait PostPublisher: Send + Sync {
    /// `POST /v1/posts`, waiting at most `wait` for the answer; whatever happens is an `Answer`
    /// (a publish whose answer did not come in time may still have been taken).
    fn publish(&self, publication: &Publication, wait: std::time::Duration) -> impl Future<Output = Answer> + Send;
    /// `GET /v1/posts/{id}`, asked at `asked_at` (the evidence time of the answer).
    fn post(
        &self,
        id: &ServicePostId,
        asked_at: Timestamp,
    ) -> impl Future<Output = Result<ServiceAnswer, PublisherError>> + Send;
}

pub use crate::domain::stored::StoredPost;

/// What a writer adds to a post: evidence to join, a new draft (replacing the stored one), and
/// news about the project's connections (`PostReport::connection_news`), joined into them in
/// the same write.
#[derive(Debug, Clone, Copy)]
pub struct PostChange<'a> {
    /// Who makes the change, for its history records.
    pub source: &'a Source,
    pub evidence: &'a crate::domain::PostState,
    pub draft: Option<&'a Draft>,
    pub news: &'a [ConnectionEvidence],
    /// A publication begun (stored before the service is called) or ended.
    pub sending: Option<SendingChange<'a>>,
}

impl<'a> PostChange<'a> {
    pub fn new(source: &'a Source, evidence: &'a crate::domain::PostState) -> Self {
        PostChange { source, evidence, draft: None, news: &[], sending: None }
    }

    pub fn with_sending(self, sending: SendingChange<'a>) -> Self {
        PostChange { sending: Some(sending), ..self }
    }

    pub fn with_draft(self, draft: &'a Draft) -> Self {
        PostChange { draft: Some(draft), ..self }
    }

    pub fn with_news(self, news: &'a [ConnectionEvidence]) -> Self {
        PostChange { news, ..self }
    }
}

/// What a publish reads before it decides, in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRead {
    pub post: Option<StoredPost>,
    /// The project's profile on the service.
    pub profile: Option<ProfileId>,
    /// The project's publish budget item (publishes and post writes).
    pub budget: Seen,
}

pub trait PostStore: Send + Sync {
    fn post(
        &self,
        project: &ProjectId,
        post: &PostId,
    ) -> impl Future<Output = Result<Option<StoredPost>, StoreError>> + Send;
    /// The post, the project's profile on the service and its publish budget, read together (one
    /// request).
    fn post_profile_and_budget(
        &self,
        project: &ProjectId,
        post: &PostId,
    ) -> impl Future<Output = Result<PublishRead, StoreError>> + Send;
    /// The post and the project's budget item for `kind`, read together (one request).
    fn post_and_budget(
        &self,
        project: &ProjectId,
        post: &PostId,
        kind: CallKind,
    ) -> impl Future<Output = Result<(Option<StoredPost>, Seen), StoreError>> + Send;
    /// Joins the change into the post (creating it) and returns the post as stored afterwards.
    /// Writes nothing when nothing changes. `read` is the post as the caller read it (`None`: it
    /// did not exist); a race makes the store read again.
    fn save_post(
        &self,
        project: &ProjectId,
        post: &PostId,
        read: Option<&StoredPost>,
        change: PostChange<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<StoredPost, StoreError>> + Send;
    /// Takes back a publication the service certainly did not take, leaving the post exactly as
    /// it was `before` (`None`: it was new, and stays as a draft) if nothing else was written since
    /// `begun`; else only ends the publication.
    fn abandon(
        &self,
        project: &ProjectId,
        post: &PostId,
        begun: &StoredPost,
        before: Option<&StoredPost>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A publication whose answer did not come while the route waited: sent again later, with the same
/// ids, until the service's post for it is known or it is settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub project: ProjectId,
    pub post: PostId,
    pub generation: crate::domain::Generation,
    /// How many follow-ups came before this one (the back-off's exponent).
    #[serde(default)]
    pub attempt: u32,
    /// Its place in the shared budget's line, when it waits for room (capacity.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking: Option<Booking>,
}

/// Where follow-ups wait (the retry queue, with a delay).
pub trait FollowUpQueue: Send + Sync {
    fn follow_up(
        &self,
        follow_up: &FollowUp,
        delay_seconds: u64,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Queues the next step of a project's erasure.
    fn erase_step(
        &self,
        project: &ProjectId,
        delay_seconds: u64,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// What the retry queue carries: a webhook event to apply again, or a publication to follow up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Event(RetryMessage),
    FollowUp(FollowUp),
    /// The next step of this project's erasure.
    Erase(ProjectId),
}

/// Reads one retry-queue message (the queue's format, given to the worker as a port).
pub type QueueReader = fn(&aws_lambda_events::event::sqs::SqsMessage) -> Result<Queued, String>;

/// What the reconciler needs of the store beyond the routes' ports: the work waiting, found
/// through the sparse index (never a scan), its back-off, and the lease that keeps passes apart.
pub trait HealingStore: Send + Sync {
    /// Posts waiting since `since_before` or earlier, oldest first, at most `limit`, of the index's
    /// `shards` (`domain::healing::lease_shards`).
    fn waiting_posts(
        &self,
        shards: &[u32],
        since_before: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(Timestamp, ProjectId, PostId)>, StoreError>> + Send;
    /// Projects last checked against the live list at `checked_before` or earlier (never checked
    /// first), and projects with a token whose next look is due at `now`; oldest first, at most
    /// `limit` of each; of the index's `shards`.
    fn stale_projects(
        &self,
        shards: &[u32],
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(Timestamp, ProjectId)>, StoreError>> + Send;
    /// After a pass Synced the post and it still waits: its next look, if the post is still as
    /// read (`version`); `false` when it changed meanwhile (the next pass sees it as it is).
    fn postpone(
        &self,
        project: &ProjectId,
        post: &PostId,
        watch: Watch,
        version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Takes pass lease `lease` until `until` if no other pass holds it at `now`.
    fn take_lease(
        &self,
        lease: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives lease `lease` back (taken `until` then), for the next pass.
    fn release_lease(&self, lease: u32, until: Timestamp) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// What the reconciler kept of its last read of our webhook subscription (read and written
    /// only by the pass holding lease 0).
    fn watched_subscription(&self) -> impl Future<Output = Result<Watched, StoreError>> + Send;
    fn keep_watched_subscription(&self, watched: &Watched) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Our webhook subscription on the service, as the reconciler watches it
/// (`domain::subscription`).
pub trait SubscriptionWatch: Send + Sync {
    /// Every subscription of our API key (`GET /v1/webhooks/settings`): one call.
    fn subscriptions(&self) -> impl Future<Output = Result<Vec<Subscription>, PublisherError>> + Send;
    /// Switches it back on (`PUT /v1/webhooks/settings`): one call.
    fn switch_on(&self, id: &str) -> impl Future<Output = Result<(), PublisherError>> + Send;
    /// One page of its delivery attempts, newest first, `skip` from the newest: one call; `true`
    /// when more follow.
    fn deliveries(
        &self,
        id: &str,
        skip: usize,
    ) -> impl Future<Output = Result<(Vec<Delivery>, bool), PublisherError>> + Send;
    /// Asks for one event to be delivered again, byte for byte: one call; `false` when our
    /// endpoint failed it again.
    fn redeliver(&self, id: &str, event_id: &str) -> impl Future<Output = Result<bool, PublisherError>> + Send;
    /// Whether our own webhook endpoint at `url` answers as our code does (no call to the service).
    fn endpoint_answers(&self, url: &str) -> impl Future<Output = bool> + Send;
}

/// One history record, as the history routes show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub at: Timestamp,
    pub platform: Option<String>,
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub source: String,
    pub evidence: Option<String>,
}

/// A page of history, newest first, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub records: Vec<Recorded>,
    pub next_cursor: Option<String>,
}

/// The history routes' reads. A cursor that is not one of this history's is `StoreError::Invalid`.
pub trait HistoryStore: Send + Sync {
    /// A post's records, newest first, at most `limit`, after `cursor`.
    fn post_history(
        &self,
        project: &ProjectId,
        post: &PostId,
        limit: u32,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send;
    /// A project's connection records (of one platform, if given), newest first.
    fn connection_history(
        &self,
        project: &ProjectId,
        platform: Option<Platform>,
        limit: u32,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send;
}

/// One change-feed event: its de-duplication id (the history record's), detail-type and detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub id: String,
    pub detail_type: &'static str,
    pub detail: serde_json::Value,
}

/// The source every change-feed event carries.
pub const FEED_SOURCE: &str = "stacc.social";

/// Reads one of the store's stream images as a change-feed event: `None` when it is not a history
/// record, an error when it is one that cannot be read.
pub type FeedReader = fn(serde_dynamo::Item) -> Option<Result<FeedEvent, String>>;

/// Where the change feed publishes (EventBridge).
pub trait FeedPublisher: Send + Sync {
    /// Publishes the events, in order; one result per event (entries that failed are retried a
    /// few times first).
    fn publish(&self, events: &[FeedEvent]) -> impl Future<Output = Vec<Result<(), String>>> + Send;
}
