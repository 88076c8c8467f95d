//! DynamoDB: one table, `pk`/`sk`, TTL attribute `expires_at`. Every write is read → pure join →
//! conditional write on the item's `version`, so concurrent writers can only ever add evidence.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | post | `PROJECT#{project}` | `POST#{post}` |
//! | project's profile | `PROJECT#{project}` | `PROFILE` |
//! | profile → project routing | `PROFILE#{profile}` | `ROUTE` |
//! | connection | `PROFILE#{profile}` | `CONN#{platform}` |
//! | event taken | `EVENT#{event id}` | `EVENT` |
//! | a project's call budget | `PROJECT#{project}` | `BUDGET#{refresh,sync,publish}` |
//! | the reconciler's lease | `LEASE#reconciler` | `LEASE` |
//!
//! The sparse index `attention` (hash `attention`, range `attention_at`, Unix ms) holds only items
//! that need the reconciler's look: a post while a copy waits (`POST`, since when), a project's
//! pointer (`PROJECT`, when it was last checked against the live list; 0 if never), a connection
//! whose token nears expiry (`TOKEN`, when to look).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Get, Put, TransactGetItem, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::domain::connection::{ConnectionEvidence, ConnectionRecord, Settled, settle};
use crate::domain::healing::{Watch, post_watch, token_look};
use crate::domain::history::{Source, connection_changes, post_changes};
use crate::domain::limits::{self, Bucket, CallKind, Limit, Limited};
use crate::domain::media::{self, Media};
use crate::domain::publish::{Sending, SendingChange, recorded, sending_after};
use crate::domain::{Connection, EventId, Platform, PostId, PostReport, PostState, ProfileId, ProjectId, Timestamp};
use crate::ports::{
    BudgetStore, ConnectionStore, Draft, EventStore, HealingStore, HistoryPage, HistoryStore, Outcome, PostChange,
    PostStore, PublishRead, StoreError, StoredConnection, StoredPost,
};

/// How long an event id stays taken: the service redelivers for about 51 hours.
pub const EVENT_RETENTION_SECONDS: i64 = 8 * 24 * 3600;
/// Optimistic-concurrency rounds before giving up (the event then goes to the retry queue).
const MAX_ROUNDS: u32 = 12;

/// A short random pause before another round, growing with the round, so racers spread out.
async fn back_off(round: u32) {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let ceiling_ms = 4u32 << round.min(4);
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(nanos % ceiling_ms))).await;
}

type Item = HashMap<String, AttributeValue>;

pub mod history;
pub use history::HistoryItem;
use history::Subject;

pub mod keys {
    use super::*;

    pub fn post(project: &ProjectId, post: &PostId) -> (String, String) {
        (format!("PROJECT#{project}"), format!("POST#{post}"))
    }
    pub fn project_profile(project: &ProjectId) -> (String, String) {
        (format!("PROJECT#{project}"), "PROFILE".to_owned())
    }
    pub fn route(profile: &ProfileId) -> (String, String) {
        (format!("PROFILE#{profile}"), "ROUTE".to_owned())
    }
    pub fn connection(profile: &ProfileId, platform: Platform) -> (String, String) {
        (format!("PROFILE#{profile}"), format!("CONN#{}", platform.api_name()))
    }
    pub fn event(id: &EventId) -> (String, String) {
        (format!("EVENT#{id}"), "EVENT".to_owned())
    }
    pub fn budget(project: &ProjectId, kind: CallKind) -> (String, String) {
        (format!("PROJECT#{project}"), format!("BUDGET#{}", kind.as_str()))
    }
    pub fn lease() -> (String, String) {
        ("LEASE#reconciler".to_owned(), "LEASE".to_owned())
    }
}

/// The reconciler's sparse index, defined once (the local stack creates it from this; a test
/// holds `template.yaml` to it).
pub mod index {
    pub const NAME: &str = "attention";
    /// Hash key (string): which kind of look.
    pub const HASH: &str = "attention";
    /// Range key (number): when, in Unix milliseconds.
    pub const RANGE: &str = "attention_at";
    /// Projected beside the keys: what a pass needs to know whose item it is.
    pub const PROJECTED: [&str; 2] = ["project_id", "post_id"];
    pub const POST: &str = "POST";
    pub const PROJECT: &str = "PROJECT";
    pub const TOKEN: &str = "TOKEN";
}

/// An item's place in the index: its kind and time, or nothing (not in the index).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention_at: Option<i64>,
}

impl Attention {
    fn at(kind: &str, at: Option<Timestamp>) -> Attention {
        Attention { attention: at.map(|_| kind.to_owned()), attention_at: at.map(Timestamp::unix_millis) }
    }
}

fn key_map((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk))])
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostItem {
    pub pk: String,
    pub sk: String,
    pub project_id: ProjectId,
    pub post_id: PostId,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Typed media; items written before media were typed hold bare `media_urls` instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<Media>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<Sending>,
    #[serde(flatten)]
    pub attention: Attention,
    #[serde(flatten)]
    pub state: PostState,
}

impl PostItem {
    /// The one way a post item is made: from the post as stored (or to be stored).
    fn new(project: &ProjectId, post: &PostId, stored: &StoredPost) -> PostItem {
        let (pk, sk) = keys::post(project, post);
        PostItem {
            pk,
            sk,
            project_id: project.clone(),
            post_id: post.clone(),
            version: stored.version,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            content: stored.draft.as_ref().map(|d| d.content.clone()),
            media: stored.draft.as_ref().map(|d| d.media.clone()).unwrap_or_default(),
            media_urls: Vec::new(),
            watch: stored.watch,
            sending: stored.sending.clone(),
            attention: Attention::at(index::POST, stored.watch.map(|w| w.since)),
            state: stored.state.clone(),
        }
    }

    fn stored(self) -> StoredPost {
        StoredPost {
            state: self.state,
            draft: self.content.map(|content| Draft { content, media: media::combine(&self.media_urls, &self.media) }),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            watch: self.watch,
            sending: self.sending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionItem {
    pub pk: String,
    pub sk: String,
    pub project_id: ProjectId,
    pub profile_id: ProfileId,
    pub version: u64,
    pub updated_at: Timestamp,
    /// What the API shows, kept beside the record it is derived from for whoever reads the table.
    #[serde(flatten)]
    pub connection: Connection,
    #[serde(flatten)]
    pub record: ConnectionRecord,
    #[serde(flatten)]
    pub attention: Attention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RouteItem {
    pk: String,
    sk: String,
    project_id: ProjectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProjectProfileItem {
    pk: String,
    sk: String,
    profile_id: ProfileId,
    /// The project (also in `pk`), for the reconciler's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project_id: Option<ProjectId>,
    /// When the connections were last checked against the live list (a Refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checked_at: Option<Timestamp>,
    #[serde(flatten)]
    attention: Attention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BudgetItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    bucket: Bucket,
    /// An idle bucket is full again within two minutes; then it may go.
    expires_at: i64,
}

fn budget_of(item: Option<Item>) -> Result<Option<Bucket>, StoreError> {
    Ok(item.map(decode::<BudgetItem>).transpose()?.map(|b| b.bucket))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    taken_at: Timestamp,
    expires_at: i64,
}

fn decode<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// A request we build that the SDK refuses to build: a bug, never an outage or a corrupt item.
fn built<T>(result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Invalid(e.to_string()))
}

/// DynamoDB's words for an item past 400 KB (a `ValidationException`, or a transaction cancelled
/// with a `ValidationError` about the size).
fn is_item_too_large(code: Option<&str>, message: Option<&str>) -> bool {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    matches!(code, Some("ValidationException" | "TransactionCanceledException"))
        && message.contains("size")
        && (message.contains("exceed") || message.contains("too large"))
}

/// A single conditional write's answer: `true` when it landed, `false` when its condition failed.
fn landed<T, E, R>(sent: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match sent {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(store_error(e)),
    }
}

fn store_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let (code, message) = e.as_service_error().map_or((None, None), |s| (s.code(), s.message()));
    if is_item_too_large(code, message) {
        return StoreError::TooLarge;
    }
    StoreError::Unavailable(DisplayErrorContext(&e).to_string())
}

/// How a failed consistent read of several items is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadFailure {
    /// DynamoDB cancels a `TransactGetItems` that overlaps a transactional write in flight: a
    /// concurrent writer, so another round (the emulators never produce it).
    Conflict,
    Other,
}

fn read_failure(e: &TransactGetItemsError) -> ReadFailure {
    if e.is_transaction_canceled_exception() { ReadFailure::Conflict } else { ReadFailure::Other }
}

/// What one round of read → decide → conditional write came to.
enum Round<T> {
    Done(T),
    /// Another writer got there first (or a read overlapped one): read again and decide again.
    Raced,
}

/// Runs rounds (numbered from 0: the first may use what the caller read) until one lands,
/// pausing a little longer before each; bounded. Every writer goes through this one loop.
///
/// A round that failed on an unavailable store may have written before its answer was lost (the
/// SDK's own retries then meet their own write): one more round reads what is stored and decides
/// again, so a caller is not told "nothing changed" about a change that landed.
async fn until_landed<T, F, Fut>(mut round: F) -> Result<T, StoreError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Round<T>, StoreError>>,
{
    let mut looked_again = false;
    for n in 0..MAX_ROUNDS {
        if n > 0 {
            back_off(n).await;
        }
        match round(n).await {
            Ok(Round::Done(done)) => return Ok(done),
            Ok(Round::Raced) => {}
            Err(StoreError::Unavailable(_)) if !looked_again => looked_again = true,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contention)
}

/// What to do with the items an event concerns, decided by the pure domain.
enum Plan {
    /// Nothing to change: only take the event id.
    Nothing,
    /// Write these items, each on condition that its stored version is still the one expected
    /// (none: absent), with the history records of what they change.
    Write(Vec<(Item, Option<u64>)>, Vec<HistoryItem>),
    Defer,
    Ignore,
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn conditional_put(&self, mut item: Item, expected: Option<u64>) -> Result<Put, StoreError> {
        let next = expected.map_or(1, |v| v + 1);
        item.insert("version".into(), AttributeValue::N(next.to_string()));
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        built(put.build())
    }

    fn event_put(&self, event: &EventId, now: Timestamp) -> Result<Put, StoreError> {
        let (pk, sk) = keys::event(event);
        let item =
            encode(&EventItem { pk, sk, taken_at: now, expires_at: now.plus_seconds(EVENT_RETENTION_SECONDS).unix() })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix().to_string()));
        built(put.build())
    }

    /// One conditional put; `false` when its condition failed.
    async fn put(&self, put: Put) -> Result<bool, StoreError> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        landed(sent)
    }

    /// One item by key, read consistently.
    async fn get<T: for<'de> Deserialize<'de>>(&self, key: (String, String)) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item.filter(|i| !i.is_empty()).map(decode).transpose()
    }

    /// Items by key (at most 100) in one consistent `BatchGetItem`; keys DynamoDB leaves
    /// unprocessed (under throttling) are asked for again, a bounded number of times.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found: Vec<Item> = Vec::with_capacity(keys.len());
        let mut pending: Vec<Item> = keys.iter().cloned().map(key_map).collect();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                back_off(round).await;
            }
            let request = built(
                KeysAndAttributes::builder().set_keys(Some(std::mem::take(&mut pending))).consistent_read(true).build(),
            )?;
            let out =
                self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(store_error)?;
            found.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StoreError::Unavailable("the store kept leaving keys unprocessed".into()));
        }
        let key_of = |item: &Item| {
            let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (s("pk"), s("sk"))
        };
        let mut by_key: HashMap<(String, String), Item> = found.into_iter().map(|i| (key_of(&i), i)).collect();
        Ok(keys.iter().map(|k| by_key.remove(k)).collect())
    }

    /// Reads the event record and the given items in one consistent request; `None` when the
    /// read overlapped a concurrent transactional write (another round).
    async fn read(
        &self,
        event: &EventId,
        keys: &[(String, String)],
        now: Timestamp,
    ) -> Result<Option<(bool, Vec<Option<Item>>)>, StoreError> {
        let mut gets: Vec<TransactGetItem> = Vec::with_capacity(keys.len() + 1);
        for key in std::iter::once(keys::event(event)).chain(keys.iter().cloned()) {
            let get = built(Get::builder().table_name(&self.table).set_key(Some(key_map(key))).build())?;
            gets.push(TransactGetItem::builder().get(get).build());
        }
        let out = match self.client.transact_get_items().set_transact_items(Some(gets)).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| read_failure(s) == ReadFailure::Conflict) => {
                return Ok(None);
            }
            Err(e) => return Err(store_error(e)),
        };
        let mut items: Vec<Option<Item>> =
            out.responses.unwrap_or_default().into_iter().map(|r| r.item.filter(|i| !i.is_empty())).collect();
        items.resize(keys.len() + 1, None);
        // Emulators (and DynamoDB for up to 48 h) keep expired items: compare the expiry here.
        let taken = match items.remove(0) {
            Some(record) => decode::<EventItem>(record)?.expires_at >= now.unix(),
            None => false,
        };
        Ok(Some((taken, items)))
    }

    /// Read → plan → one write that takes the event id together with the planned change, until
    /// the write lands on what was read.
    async fn apply(
        &self,
        event: &EventId,
        keys: &[(String, String)],
        now: Timestamp,
        plan: impl Fn(Vec<Option<Item>>) -> Result<Plan, StoreError>,
    ) -> Result<Outcome, StoreError> {
        let plan = &plan;
        until_landed(|_| async move {
            let Some((taken, items)) = self.read(event, keys, now).await? else { return Ok(Round::Raced) };
            if taken {
                return Ok(Round::Done(Outcome::Duplicate));
            }
            let writes = match plan(items)? {
                Plan::Ignore => return Ok(Round::Done(Outcome::Ignored)),
                Plan::Defer => return Ok(Round::Done(Outcome::Deferred)),
                Plan::Nothing => {
                    let landed = self.put(self.event_put(event, now)?).await?;
                    return Ok(Round::Done(if landed {
                        Outcome::Applied { changed: false }
                    } else {
                        Outcome::Duplicate
                    }));
                }
                Plan::Write(writes, records) => (writes, records),
            };
            let (writes, records) = writes;
            let mut items = vec![TransactWriteItem::builder().put(self.event_put(event, now)?).build()];
            for (item, expected) in writes {
                items.push(TransactWriteItem::builder().put(self.conditional_put(item, expected)?).build());
            }
            for record in &records {
                items.push(TransactWriteItem::builder().put(history::put(&self.table, record)?).build());
            }
            // Cancelled: a copy of this event landed first, or the item moved. The next round's read
            // tells which; cancellation reasons are not trusted for it, so no emulator's way of
            // reporting them can lose an event.
            Ok(if self.write_all(items).await? {
                Round::Done(Outcome::Applied { changed: true })
            } else {
                Round::Raced
            })
        })
        .await
    }

    /// The post as stored, if any.
    pub async fn get_post(&self, project: &ProjectId, post: &PostId) -> Result<Option<PostItem>, StoreError> {
        self.get(keys::post(project, post)).await
    }

    /// One platform's connection under a profile, if any.
    pub async fn get_connection(
        &self,
        profile: &ProfileId,
        platform: Platform,
    ) -> Result<Option<ConnectionItem>, StoreError> {
        self.get(keys::connection(profile, platform)).await
    }

    /// Records the project's profile and the routing that lets account webhooks find the
    /// project, together.
    async fn put_profile_link(&self, project: &ProjectId, profile: &ProfileId) -> Result<bool, StoreError> {
        let (pk, sk) = keys::project_profile(project);
        // Never checked against the live list: the reconciler looks at once.
        let never = Attention::at(index::PROJECT, Some(Timestamp::from_unix_millis(0)));
        let pointer = encode(&ProjectProfileItem {
            pk,
            sk,
            profile_id: profile.clone(),
            project_id: Some(project.clone()),
            checked_at: None,
            attention: never,
        })?;
        let (pk, sk) = keys::route(profile);
        let route = encode(&RouteItem { pk, sk, project_id: project.clone() })?;
        let pointer = built(Put::builder().table_name(&self.table).set_item(Some(pointer)).build())?;
        // A profile is one project's: the routing is written only if absent or already this project's.
        let route = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(route))
                .condition_expression("attribute_not_exists(pk) OR project_id = :project")
                .expression_attribute_values(":project", AttributeValue::S(project.to_string()))
                .build(),
        )?;
        let items = [pointer, route].map(|put| TransactWriteItem::builder().put(put).build()).to_vec();
        self.write_all(items).await
    }
}

/// The post after `evidence` (and a new draft, if any) joins in, and whether that changes it: when
/// it does not, nothing is written and `updated_at` stays.
fn next_post(
    stored: Option<&StoredPost>,
    draft: Option<&Draft>,
    evidence: &PostState,
    sending: Option<SendingChange<'_>>,
    now: Timestamp,
) -> (StoredPost, bool) {
    let mut next = stored.cloned().unwrap_or(StoredPost {
        state: PostState::default(),
        draft: None,
        created_at: now,
        updated_at: now,
        version: 0,
        watch: None,
        sending: None,
    });
    next.state = next.state.join(evidence);
    if let Some(draft) = draft {
        next.draft = Some(draft.clone());
    }
    next.sending = sending_after(next.sending.take(), sending, &next.state);
    // Watched while anything is queued, a publication being sent included (its follow-up may be lost).
    next.watch = post_watch(&next.shown(), next.watch, now);
    // A publication begun or ended is bookkeeping: written, but the post's updated_at stays.
    if stored.is_some_and(|s| s.state == next.state && s.draft == next.draft) {
        let bookkeeping = stored.is_some_and(|s| s.sending != next.sending || s.watch != next.watch);
        return (next, bookkeeping);
    }
    next.updated_at = now;
    (next, true)
}

/// What a webhook's report does to the post (and, for a copy that failed on an expired token, to
/// that platform's connection): joined into what is stored, or deferred when it names a
/// publication we have not stored yet. `items` are the post, then the connections the news is about.
fn plan_post(
    ids: (&ProjectId, &PostId, Option<&ProfileId>),
    items: Vec<Option<Item>>,
    now: Timestamp,
    report: &PostReport,
    news: &[ConnectionEvidence],
    source: &Source,
) -> Result<Plan, StoreError> {
    let (project, post, profile) = ids;
    let mut items = items.into_iter();
    let stored = items.next().flatten().map(decode::<PostItem>).transpose()?.map(PostItem::stored);
    let Ok(evidence) = report.to_state(stored.as_ref().map(|s| &s.state)) else {
        return Ok(Plan::Defer);
    };
    let (mut writes, mut records) = (Vec::new(), Vec::new());
    if let (next, true) = next_post(stored.as_ref(), None, &evidence, None, now) {
        let expected = stored.as_ref().map(|s| s.version);
        let before = stored.as_ref().and_then(|s| recorded(&s.state, s.sending.as_ref()));
        let changes = post_changes(before, &next.state, now);
        records.extend(history::records(project, Subject::Post(post), &changes, source, now, next_version(expected)));
        writes.push((encode(&PostItem::new(project, post, &next))?, expected));
    }
    if let Some(profile) = profile {
        for (item, news) in items.zip(news) {
            // Only a connection on record: the copy went out through it.
            let Some(read) = item.map(decode::<ConnectionItem>).transpose()?.map(ConnectionItem::stored) else {
                continue;
            };
            if let Some(settled) = settle(Some(read.settled()), news, now) {
                records.extend(connection_records(project, Some(&read), &settled, source, now));
                writes.push((connection_item(project, profile, settled, now)?, Some(read.version)));
            }
        }
    }
    Ok(if writes.is_empty() { Plan::Nothing } else { Plan::Write(writes, records) })
}

/// The version a conditional write gives an item that was at `expected` (none: new).
fn next_version(expected: Option<u64>) -> u64 {
    expected.map_or(1, |v| v + 1)
}

/// The history records of a connection going from `read` to `settled`.
fn connection_records(
    project: &ProjectId,
    read: Option<&StoredConnection>,
    settled: &Settled,
    source: &Source,
    now: Timestamp,
) -> Vec<HistoryItem> {
    let platform = settled.shown.platform;
    let changes = connection_changes(platform, read.map(|r| &r.connection), Some(&settled.shown));
    history::records(project, Subject::Connection, &changes, source, now, next_version(read.map(|r| r.version)))
}

impl EventStore for DynamoStore {
    async fn apply_post_report(
        &self,
        event: &EventId,
        project: &ProjectId,
        post: &PostId,
        report: &PostReport,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let news = report.connection_news();
        // The connections the news is about live under the project's profile: read it first (only
        // on this rare path), then read and write the post and those connections together.
        let profile = match news.is_empty() {
            true => None,
            false => self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id),
        };
        let mut keys = vec![keys::post(project, post)];
        if let Some(profile) = &profile {
            keys.extend(news.iter().map(|n| keys::connection(profile, n.platform())));
        }
        let ids = (project, post, profile.as_ref());
        let source = Source::Webhook(event.clone());
        self.apply(event, &keys, now, |items| plan_post(ids, items, now, report, &news, &source)).await
    }

    async fn apply_account_news(
        &self,
        event: &EventId,
        profile: &ProfileId,
        news: &ConnectionEvidence,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let keys = [keys::route(profile), keys::connection(profile, news.platform())];
        self.apply(event, &keys, now, |mut items| {
            let stored: Option<ConnectionItem> = items.pop().flatten().map(decode).transpose()?;
            let Some(route) = items.pop().flatten().map(decode::<RouteItem>).transpose()? else {
                return Ok(Plan::Ignore);
            };
            let read = stored.map(ConnectionItem::stored);
            match settle(read.as_ref().map(StoredConnection::settled), news, now) {
                None => Ok(Plan::Nothing),
                Some(settled) => {
                    let source = Source::Webhook(event.clone());
                    let records = connection_records(&route.project_id, read.as_ref(), &settled, &source, now);
                    let item = connection_item(&route.project_id, profile, settled, now)?;
                    Ok(Plan::Write(vec![(item, read.map(|r| r.version))], records))
                }
            }
        })
        .await
    }
}

fn connection_item(
    project: &ProjectId,
    profile: &ProfileId,
    settled: Settled,
    now: Timestamp,
) -> Result<Item, StoreError> {
    let (pk, sk) = keys::connection(profile, settled.shown.platform);
    let attention = Attention::at(index::TOKEN, token_look(&settled.shown, now));
    encode(&ConnectionItem {
        pk,
        sk,
        project_id: project.clone(),
        profile_id: profile.clone(),
        version: 0,
        updated_at: settled.updated_at,
        connection: settled.shown,
        record: settled.record,
        attention,
    })
}

impl ConnectionItem {
    fn stored(self) -> StoredConnection {
        // An item written before records were kept holds its link alone.
        let record = if self.record == ConnectionRecord::default() {
            ConnectionRecord { link: Some(self.connection.clone()), ..ConnectionRecord::default() }
        } else {
            self.record
        };
        StoredConnection { connection: self.connection, record, updated_at: self.updated_at, version: self.version }
    }
}

impl DynamoStore {
    /// The project's record of a check against the live list at `now`, while it still points at
    /// `profile` (a Connect that moved it meanwhile cancels the write: another round).
    fn checked(&self, project: &ProjectId, profile: &ProfileId, now: Timestamp) -> Result<Update, StoreError> {
        built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key_map(keys::project_profile(project))))
                .update_expression("SET checked_at = :now, #kind = :kind, attention_at = :ms, project_id = :project")
                .condition_expression("profile_id = :profile")
                .expression_attribute_names("#kind", index::HASH)
                .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()))
                .expression_attribute_values(":kind", AttributeValue::S(index::PROJECT.into()))
                .expression_attribute_values(":ms", AttributeValue::N(now.unix_millis().to_string()))
                .expression_attribute_values(":profile", AttributeValue::S(profile.to_string()))
                .expression_attribute_values(":project", AttributeValue::S(project.to_string()))
                .build(),
        )
    }

    /// One transaction (or one conditional put for a single item); `false` when a condition failed.
    async fn write_all(&self, mut items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        if items.is_empty() {
            return Ok(true);
        }
        if items.len() == 1
            && let Some(put) = items[0].put.take()
        {
            return self.put(put).await;
        }
        let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => {
                let (code, message) = e.as_service_error().map_or((None, None), |s| (s.code(), s.message()));
                if is_item_too_large(code, message) { Err(StoreError::TooLarge) } else { Ok(false) }
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

impl BudgetStore for DynamoStore {
    async fn take_call(
        &self,
        project: &ProjectId,
        kind: CallKind,
        read: Option<Bucket>,
        limit: Limit,
        now: Timestamp,
    ) -> Result<Result<(), Limited>, StoreError> {
        let read = &read;
        until_landed(|round| async move {
            let stored = match round {
                0 => *read,
                _ => self.get::<BudgetItem>(keys::budget(project, kind)).await?.map(|b| b.bucket),
            };
            let next = match limits::take(stored.as_ref(), limit, now) {
                Ok(next) => next,
                Err(limited) => return Ok(Round::Done(Err(limited))),
            };
            let (pk, sk) = keys::budget(project, kind);
            let item = encode(&BudgetItem { pk, sk, bucket: next, expires_at: now.plus_seconds(120).unix() })?;
            let put = Put::builder().table_name(&self.table).set_item(Some(item));
            let put = match stored {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(b) => put
                    .condition_expression("at_ms = :at AND milli_tokens = :tokens")
                    .expression_attribute_values(":at", AttributeValue::N(b.at_ms.to_string()))
                    .expression_attribute_values(":tokens", AttributeValue::N(b.milli_tokens.to_string())),
            };
            Ok(if self.put(built(put.build())?).await? { Round::Done(Ok(())) } else { Round::Raced })
        })
        .await
    }
}

impl ConnectionStore for DynamoStore {
    async fn profile_and_budget(&self, project: &ProjectId) -> Result<(Option<ProfileId>, Option<Bucket>), StoreError> {
        let keys = [keys::project_profile(project), keys::budget(project, CallKind::Refresh)];
        let mut items = self.get_many(&keys).await?.into_iter();
        let profile = items.next().flatten().map(decode::<ProjectProfileItem>).transpose()?.map(|p| p.profile_id);
        Ok((profile, budget_of(items.next().flatten())?))
    }

    async fn project_profile(&self, project: &ProjectId) -> Result<Option<ProfileId>, StoreError> {
        Ok(self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id))
    }

    async fn connections(&self, profile: &ProfileId) -> Result<Vec<StoredConnection>, StoreError> {
        let (pk, _) = keys::route(profile);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :conn)")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":conn", AttributeValue::S("CONN#".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| decode::<ConnectionItem>(i).map(ConnectionItem::stored))
            .collect()
    }

    async fn save_connections(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: Vec<StoredConnection>,
        evidence: Vec<Connection>,
        source: &Source,
        now: Timestamp,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        let (read, evidence) = (&read, &evidence);
        until_landed(|round| async move {
            let stored = match round {
                0 => read.clone(),
                _ => self.connections(profile).await?,
            };
            let mut result = stored.clone();
            let mut writes = Vec::new();
            for e in evidence {
                let current = stored.iter().find(|s| s.connection.platform == e.platform);
                let news = ConnectionEvidence::Linked(e.clone());
                let Some(settled) = settle(current.map(StoredConnection::settled), &news, now) else { continue };
                let expected = current.map(|s| s.version);
                let written = StoredConnection {
                    connection: settled.shown.clone(),
                    record: settled.record.clone(),
                    updated_at: settled.updated_at,
                    version: expected.map_or(1, |v| v + 1),
                };
                for record in connection_records(project, current, &settled, source, now) {
                    writes.push(TransactWriteItem::builder().put(history::put(&self.table, &record)?).build());
                }
                let put = self.conditional_put(connection_item(project, profile, settled, now)?, expected)?;
                writes.push(TransactWriteItem::builder().put(put).build());
                result.retain(|s| s.connection.platform != e.platform);
                result.push(written);
            }
            if source.checks_connections() {
                writes.push(TransactWriteItem::builder().update(self.checked(project, profile, now)?).build());
            }
            if !self.write_all(writes).await? {
                return Ok(Round::Raced);
            }
            result.sort_by_key(|s| s.connection.platform);
            Ok(Round::Done(result))
        })
        .await
    }

    async fn forget_profile(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: &[StoredConnection],
        source: &Source,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let delete = |key: (String, String)| Delete::builder().table_name(&self.table).set_key(Some(key_map(key)));
        let pointer = delete(keys::project_profile(project))
            .condition_expression("attribute_not_exists(pk) OR profile_id = :profile")
            .expression_attribute_values(":profile", AttributeValue::S(profile.to_string()));
        let mut deletes = vec![pointer, delete(keys::route(profile))];
        // Each connection only as it was read: one written meanwhile (a Connect completing) cancels.
        deletes.extend(read.iter().map(|s| {
            delete(keys::connection(profile, s.connection.platform))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(s.version.to_string()))
        }));
        let mut items = deletes
            .into_iter()
            .map(|d| built(d.build()).map(|d| TransactWriteItem::builder().delete(d).build()))
            .collect::<Result<Vec<_>, _>>()?;
        // Each connection now reads `not_connected`: a visible change, recorded with it.
        for s in read {
            let platform = s.connection.platform;
            let changes = connection_changes(platform, Some(&s.connection), None);
            let version = next_version(Some(s.version));
            for record in history::records(project, Subject::Connection, &changes, source, now, version) {
                items.push(TransactWriteItem::builder().put(history::put(&self.table, &record)?).build());
            }
        }
        let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn link_profile(&self, project: &ProjectId, profile: &ProfileId) -> Result<bool, StoreError> {
        self.put_profile_link(project, profile).await
    }
}

impl PostStore for DynamoStore {
    async fn post(&self, project: &ProjectId, post: &PostId) -> Result<Option<StoredPost>, StoreError> {
        Ok(self.get_post(project, post).await?.map(PostItem::stored))
    }

    async fn post_profile_and_budget(&self, project: &ProjectId, post: &PostId) -> Result<PublishRead, StoreError> {
        let keys =
            [keys::post(project, post), keys::project_profile(project), keys::budget(project, CallKind::Publish)];
        let mut items = self.get_many(&keys).await?.into_iter();
        let post = items.next().flatten().map(decode::<PostItem>).transpose()?.map(PostItem::stored);
        let profile = items.next().flatten().map(decode::<ProjectProfileItem>).transpose()?.map(|p| p.profile_id);
        Ok(PublishRead { post, profile, budget: budget_of(items.next().flatten())? })
    }

    async fn post_and_budget(
        &self,
        project: &ProjectId,
        post: &PostId,
    ) -> Result<(Option<StoredPost>, Option<Bucket>), StoreError> {
        let mut items =
            self.get_many(&[keys::post(project, post), keys::budget(project, CallKind::Sync)]).await?.into_iter();
        let post = items.next().flatten().map(decode::<PostItem>).transpose()?.map(PostItem::stored);
        Ok((post, budget_of(items.next().flatten())?))
    }

    async fn save_post(
        &self,
        project: &ProjectId,
        post: &PostId,
        read: Option<&StoredPost>,
        change: PostChange<'_>,
        now: Timestamp,
    ) -> Result<StoredPost, StoreError> {
        let PostChange { source, evidence, draft, news, sending } = change;
        // News about connections (rare): they live under the project's profile.
        let profile = match news.is_empty() {
            true => None,
            false => self.get::<ProjectProfileItem>(keys::project_profile(project)).await?.map(|p| p.profile_id),
        };
        let profile = &profile;
        until_landed(|round| async move {
            let stored = match round {
                0 => read.cloned(),
                _ => self.get_post(project, post).await?.map(PostItem::stored),
            };
            let (mut next, changed) = next_post(stored.as_ref(), draft, evidence, sending, now);
            let expected = stored.as_ref().map(|s| s.version);
            let mut writes = Vec::new();
            if changed {
                let before = stored.as_ref().and_then(|s| recorded(&s.state, s.sending.as_ref()));
                let changes = match recorded(&next.state, next.sending.as_ref()) {
                    Some(after) => post_changes(before, after, now),
                    None => Vec::new(),
                };
                for record in
                    history::records(project, Subject::Post(post), &changes, source, now, next_version(expected))
                {
                    writes.push(TransactWriteItem::builder().put(history::put(&self.table, &record)?).build());
                }
                let put = self.conditional_put(encode(&PostItem::new(project, post, &next))?, expected)?;
                writes.push(TransactWriteItem::builder().put(put).build());
            }
            if let Some(profile) = profile {
                let connections = self.connections(profile).await?;
                for news in news {
                    // Only a connection on record: the copy went out through it.
                    let Some(current) = connections.iter().find(|c| c.connection.platform == news.platform()) else {
                        continue;
                    };
                    let Some(settled) = settle(Some(current.settled()), news, now) else { continue };
                    for record in connection_records(project, Some(current), &settled, source, now) {
                        writes.push(TransactWriteItem::builder().put(history::put(&self.table, &record)?).build());
                    }
                    let item = connection_item(project, profile, settled, now)?;
                    let put = self.conditional_put(item, Some(current.version))?;
                    writes.push(TransactWriteItem::builder().put(put).build());
                }
            }
            if writes.is_empty() {
                return Ok(Round::Done(next));
            }
            if !self.write_all(writes).await? {
                return Ok(Round::Raced);
            }
            if changed {
                next.version = expected.map_or(1, |v| v + 1);
            }
            Ok(Round::Done(next))
        })
        .await
    }

    async fn abandon(
        &self,
        project: &ProjectId,
        post: &PostId,
        begun: &StoredPost,
        before: Option<&StoredPost>,
    ) -> Result<(), StoreError> {
        let restored = match before {
            Some(before) => PostItem::new(project, post, before),
            None => {
                PostItem::new(project, post, &StoredPost { sending: None, version: begun.version + 1, ..begun.clone() })
            }
        };
        // The item exactly as it was, on condition that nothing was written since the publication
        // began (a writer that read it before then finds it as it read it).
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(&restored)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(begun.version.to_string()));
        if self.put(built(put.build())?).await? {
            return Ok(());
        }
        let Some(generation) = begun.sending.as_ref().map(|s| s.generation) else { return Ok(()) };
        let nothing = PostState::default();
        let end = PostChange::new(&Source::Publish, &nothing).with_sending(SendingChange::End(generation));
        self.save_post(project, post, None, end, begun.updated_at).await.map(|_| ())
    }
}

impl DynamoStore {
    /// Items of one kind in the sparse index whose time is at most `before`, oldest first.
    async fn attention(&self, kind: &str, before: Timestamp, limit: u32) -> Result<Vec<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index::NAME)
            .key_condition_expression("#kind = :kind AND #at <= :before")
            .expression_attribute_names("#kind", index::HASH)
            .expression_attribute_names("#at", index::RANGE)
            .expression_attribute_values(":kind", AttributeValue::S(kind.to_owned()))
            .expression_attribute_values(":before", AttributeValue::N(before.unix_millis().to_string()))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.items.unwrap_or_default())
    }
}

/// What the index says of an item: its time and the project (and post) it belongs to.
#[derive(Deserialize)]
struct Indexed {
    attention_at: i64,
    project_id: ProjectId,
    #[serde(default)]
    post_id: Option<PostId>,
}

#[derive(Serialize, Deserialize)]
struct LeaseItem {
    pk: String,
    sk: String,
    until_ms: i64,
}

impl HealingStore for DynamoStore {
    async fn waiting_posts(
        &self,
        since_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Timestamp, ProjectId, PostId)>, StoreError> {
        let items = self.attention(index::POST, since_before, limit).await?;
        let found = items.into_iter().map(decode::<Indexed>).collect::<Result<Vec<_>, _>>()?;
        Ok(found
            .into_iter()
            .filter_map(|i| Some((Timestamp::from_unix_millis(i.attention_at), i.project_id, i.post_id?)))
            .collect())
    }

    async fn stale_projects(
        &self,
        checked_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Timestamp, ProjectId)>, StoreError> {
        let (checks, tokens) = tokio::join!(
            self.attention(index::PROJECT, checked_before, limit),
            self.attention(index::TOKEN, now, limit)
        );
        let mut found = Vec::new();
        for item in checks?.into_iter().chain(tokens?) {
            let i = decode::<Indexed>(item)?;
            found.push((Timestamp::from_unix_millis(i.attention_at), i.project_id));
        }
        Ok(found)
    }

    async fn postpone(
        &self,
        project: &ProjectId,
        post: &PostId,
        watch: Watch,
        version: u64,
    ) -> Result<bool, StoreError> {
        let watch_value: AttributeValue =
            serde_dynamo::to_attribute_value(watch).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(keys::post(project, post))))
            .update_expression("SET watch = :watch, #at = :ms")
            .condition_expression("version = :v")
            .expression_attribute_names("#at", index::RANGE)
            .expression_attribute_values(":watch", watch_value)
            .expression_attribute_values(":ms", AttributeValue::N(watch.since.unix_millis().to_string()))
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        landed(sent)
    }

    async fn take_lease(&self, now: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        let (pk, sk) = keys::lease();
        let item = encode(&LeaseItem { pk, sk, until_ms: until.unix_millis() })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR until_ms < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix_millis().to_string()));
        self.put(built(put.build())?).await
    }

    async fn release_lease(&self, until: Timestamp) -> Result<(), StoreError> {
        let (pk, sk) = keys::lease();
        let item = encode(&LeaseItem { pk, sk, until_ms: 0 })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("until_ms = :until")
            .expression_attribute_values(":until", AttributeValue::N(until.unix_millis().to_string()));
        // Not ours any more (it ran out and another pass took it): nothing to give back.
        self.put(built(put.build())?).await.map(|_| ())
    }
}

impl DynamoStore {
    /// A page of one history, newest first: `platform` keeps only that platform's records (a
    /// filter, so a page is read until it is full or the history ends).
    async fn history(
        &self,
        project: &ProjectId,
        subject: Subject<'_>,
        platform: Option<Platform>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
        let pk = format!("PROJECT#{project}");
        let mut start = match cursor {
            None => None,
            Some(c) => Some(history::after(c, subject).ok_or_else(|| StoreError::Invalid("cursor".into()))?),
        };
        let mut records = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .expression_attribute_values(":prefix", AttributeValue::S(history::query_prefix(subject)))
                .scan_index_forward(false)
                .limit((limit as usize - records.len()) as i32);
            if let Some(platform) = platform {
                query = query
                    .filter_expression("platform = :platform")
                    .expression_attribute_values(":platform", AttributeValue::S(platform.api_name().to_owned()));
            }
            if let Some(sk) = &start {
                let key = HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(pk.clone())),
                    ("sk".to_owned(), AttributeValue::S(sk.clone())),
                ]);
                query = query.set_exclusive_start_key(Some(key));
            }
            let out = query.send().await.map_err(store_error)?;
            for item in out.items.unwrap_or_default() {
                records.push(decode::<HistoryItem>(item)?);
            }
            start = out.last_evaluated_key.and_then(|k| k.get("sk").and_then(|v| v.as_s().ok()).cloned());
            if start.is_none() || records.len() >= limit as usize {
                break;
            }
        }
        // The page ends at its last record; more may follow only if the read stopped early.
        let next_cursor = match (&start, records.last()) {
            (Some(_), Some(last)) => Some(history::cursor(last.sk())),
            (Some(sk), None) => Some(history::cursor(sk)),
            (None, _) => None,
        };
        Ok(HistoryPage { records: records.into_iter().map(Into::into).collect(), next_cursor })
    }
}

impl HistoryStore for DynamoStore {
    async fn post_history(
        &self,
        project: &ProjectId,
        post: &PostId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
        self.history(project, Subject::Post(post), None, limit, cursor).await
    }

    async fn connection_history(
        &self,
        project: &ProjectId,
        platform: Option<Platform>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
        self.history(project, Subject::Connection, platform, limit, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    use super::*;

    #[test]
    fn a_read_cancelled_by_a_concurrent_transaction_is_another_round_not_an_outage() {
        let conflict = TransactGetItemsError::TransactionCanceledException(
            TransactionCanceledException::builder().message("Transaction cancelled [TransactionConflict]").build(),
        );
        assert_eq!(read_failure(&conflict), ReadFailure::Conflict);
        let other = TransactGetItemsError::unhandled("throttled");
        assert_eq!(read_failure(&other), ReadFailure::Other);
    }

    #[tokio::test]
    async fn a_round_lost_to_an_unavailable_store_is_looked_at_once_more_before_failing() {
        let down = || StoreError::Unavailable("timed out".into());
        // The write's answer was lost, the next round's read finds it landed.
        let mut answers = vec![Ok(Round::Done("landed")), Err(down())];
        let got = until_landed(|_| std::future::ready(answers.pop().unwrap())).await;
        assert_eq!(got, Ok("landed"));
        // Still down on the second look: the caller hears it.
        let mut answers = vec![Ok(Round::Done("never")), Err(down()), Err(down())];
        assert_eq!(until_landed(|_| std::future::ready(answers.pop().unwrap())).await, Err(down()));
        // Anything but unavailability is not retried.
        let mut answers: Vec<Result<Round<&str>, StoreError>> =
            vec![Ok(Round::Done("never")), Err(StoreError::TooLarge)];
        assert_eq!(until_landed(|_| std::future::ready(answers.pop().unwrap())).await, Err(StoreError::TooLarge));
    }

    #[test]
    fn dynamodbs_item_size_answers_are_too_large() {
        assert!(is_item_too_large(
            Some("ValidationException"),
            Some("Item size has exceeded the maximum allowed size")
        ));
        assert!(is_item_too_large(
            Some("TransactionCanceledException"),
            Some(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ValidationError: Item size to update has exceeded the maximum allowed size]"
            )
        ));
        assert!(!is_item_too_large(Some("ValidationException"), Some("One or more parameter values were invalid")));
        assert!(!is_item_too_large(Some("ProvisionedThroughputExceededException"), Some("Rate exceeded")));
    }
}
