//! DynamoDB: one table, `pk`/`sk`, TTL attribute `expires_at`. Every write is read → pure join →
//! conditional write on the item's `version`, so concurrent writers can only ever add evidence.
//!
//! | item | pk | sk | written in |
//! |---|---|---|---|
//! | post | `PROJECT#{project}` | `POST#{post}` | `posts.rs` (webhooks: `events.rs`) |
//! | its draft (content, media) | `PROJECT#{project}` | `DRAFT#{post}` | `posts.rs`, when it changes |
//! | project's profile | `PROJECT#{project}` | `PROFILE` | `connections.rs` |
//! | profile → project routing | `PROFILE#{profile}` | `ROUTE` | `connections.rs` |
//! | connection | `PROFILE#{profile}` | `CONN#{platform}` | `connections.rs` (webhooks: `events.rs`) |
//! | event taken | `EVENT#{event id}` | `EVENT` | `events.rs` |
//! | a project's call budget | `PROJECT#{project}` | `BUDGET#{refresh,sync,publish}` | `budgets.rs` |
//! | a shard of the API key's budget | `BUDGET#shared#{shard}` | `BUDGET` | `budgets.rs` |
//! | the reconciler's lease | `LEASE#reconciler` | `LEASE` | `attention.rs` |
//! | history records | `PROJECT#{project}` | `HIST#…` | `history.rs` (beside the change) |
//! | a project's seal (its erasure) | `PROJECT#{project}` | `SEAL` | `erasure.rs` |
//!
//! The sparse index `attention` (hash `attention`, range `attention_at`, Unix ms) holds only items
//! that need the reconciler's look: a post while a copy waits (`POST#{shard}`, since when), a
//! project's pointer (`PROJECT#{shard}`, when it was last checked against the live list; 0 if
//! never), a look due at a time (`TOKEN#{shard}`: a connection whose token nears expiry, an
//! erased project's seal whose steps may have stalled; when to look). The shard is a
//! hash of the project, 0–15 (`domain::healing::index_shard`): no key takes every project's writes,
//! and a pass queries every shard.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Get, Put, TransactGetItem, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use crate::domain::connection::{ConnectionEvidence, ConnectionRecord, Settled, settle};
use crate::domain::healing::{Watch, token_look};
use crate::domain::history::{Source, connection_changes};
use crate::domain::limits::{self, CallKind, Limited, Seen};
use crate::domain::media::{self, Media};
use crate::domain::publish::{Sending, SendingChange};
use crate::domain::stored::{history_changes, next_post};
use crate::domain::{Connection, EventId, Platform, PostId, PostReport, PostState, ProfileId, ProjectId, Timestamp};
use crate::ports::{
    BudgetStore, ConnectionStore, Draft, EventStore, HealingStore, HistoryPage, HistoryStore, Outcome, PostChange,
    PostStore, PublishRead, SharedBudgetStore, StoreError, StoredConnection, StoredPost,
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

mod attention;
mod budgets;
mod connections;
mod erasure;
use erasure::refuse_sealed;
mod events;
pub mod history;
mod posts;
use budgets::*;
pub use connections::ConnectionItem;
use connections::*;
pub use history::HistoryItem;
use history::Subject;
pub use posts::PostItem;

pub mod keys {
    use super::*;

    pub fn post(project: &ProjectId, post: &PostId) -> (String, String) {
        (format!("PROJECT#{project}"), format!("POST#{post}"))
    }
    pub fn draft(project: &ProjectId, post: &PostId) -> (String, String) {
        (format!("PROJECT#{project}"), format!("DRAFT#{post}"))
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
    pub fn shared_budget(shard: u32) -> (String, String) {
        (format!("BUDGET#shared#{shard}"), "BUDGET".to_owned())
    }
    /// A project's seal: its erasure, the one item of it that stays.
    pub fn seal(project: &ProjectId) -> (String, String) {
        (format!("PROJECT#{project}"), "SEAL".to_owned())
    }
    /// What the reconciler kept of our webhook subscription's last read.
    pub fn watched_subscription() -> (String, String) {
        ("WATCH#subscription".to_owned(), "WATCH".to_owned())
    }
    /// The reconciler's pass lease `lease` (passes side by side each hold one).
    pub fn lease(lease: u32) -> (String, String) {
        (format!("LEASE#reconciler#{lease}"), "LEASE".to_owned())
    }
}

/// The reconciler's sparse index, defined once (the local stack creates it from this; a test
/// holds `template.yaml` to it).
pub mod index {
    use crate::domain::ProjectId;
    use crate::domain::healing::{INDEX_SHARDS, index_shard};

    pub const NAME: &str = "attention";
    /// Hash key (string): which kind of look, and which shard of it (`POST#7`).
    pub const HASH: &str = "attention";
    /// Range key (number): when, in Unix milliseconds.
    pub const RANGE: &str = "attention_at";
    /// Projected beside the keys: what a pass needs to know whose item it is.
    pub const PROJECTED: [&str; 2] = ["project_id", "post_id"];
    pub const POST: &str = "POST";
    pub const PROJECT: &str = "PROJECT";
    /// A look due at its time: a token nearing expiry, an erasure to resume if it stalled.
    pub const TOKEN: &str = "TOKEN";

    /// The hash key of a project's items of one kind.
    pub fn key(kind: &str, project: &ProjectId) -> String {
        format!("{kind}#{}", index_shard(project))
    }

    /// The hash keys of one kind in `shards`, to query them all.
    pub fn keys<'a>(kind: &'a str, shards: &'a [u32]) -> impl Iterator<Item = String> + 'a {
        shards.iter().filter(|s| **s < INDEX_SHARDS).map(move |shard| format!("{kind}#{shard}"))
    }
}

/// An item's place in the index: its kind and shard, and time, or nothing (not in the index).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention_at: Option<i64>,
}

impl Attention {
    fn at(kind: &str, project: &ProjectId, at: Option<Timestamp>) -> Attention {
        Attention { attention: at.map(|_| index::key(kind, project)), attention_at: at.map(Timestamp::unix_millis) }
    }
}

fn key_map((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk)), ("sk".to_owned(), AttributeValue::S(sk))])
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

/// DynamoDB's words for a cancellation caused by throttling (a reason `ThrottlingError`,
/// `ProvisionedThroughputExceeded` or `RequestLimitExceeded`, or the same words in the message):
/// not a race, so never another round of the conflict loop; the caller queues the work or answers
/// 503 (capacity.md, "Throttling is not a race").
fn is_throttled(message: Option<&str>, reasons: &[String]) -> bool {
    const WORDS: [&str; 3] = ["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];
    reasons.iter().any(|r| WORDS.contains(&r.as_str())) || WORDS.iter().any(|w| message.unwrap_or_default().contains(w))
}

/// A cancelled transaction write: a condition failed or a concurrent writer (`Ok(false)`, another
/// round), or something no round can mend.
fn cancelled(e: &TransactWriteItemsError) -> Result<bool, StoreError> {
    let (code, message) = (e.code(), e.message());
    let reasons: Vec<String> = match e {
        TransactWriteItemsError::TransactionCanceledException(c) => {
            c.cancellation_reasons().iter().filter_map(|r| r.code().map(str::to_owned)).collect()
        }
        _ => Vec::new(),
    };
    if is_item_too_large(code, message) {
        return Err(StoreError::TooLarge);
    }
    if is_throttled(message, &reasons) {
        return Err(StoreError::Unavailable("throttled".into()));
    }
    Ok(false)
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
    let reasons: Vec<String> = match e {
        TransactGetItemsError::TransactionCanceledException(c) => {
            c.cancellation_reasons().iter().filter_map(|r| r.code().map(str::to_owned)).collect()
        }
        _ => Vec::new(),
    };
    if e.is_transaction_canceled_exception() && !is_throttled(e.message(), &reasons) {
        ReadFailure::Conflict
    } else {
        ReadFailure::Other
    }
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

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long the history records written expire after (`HISTORY_RETENTION_DAYS`).
    retention: crate::domain::history::Retention,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), retention: Default::default() }
    }

    /// The same store, writing history that expires as `retention` says.
    pub fn with_history_retention(self, retention: crate::domain::history::Retention) -> Self {
        Self { retention, ..self }
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
                cancelled(e.as_service_error().expect("a service error"))
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

/// The version a conditional write gives an item that was at `expected` (none: new).
fn next_version(expected: Option<u64>) -> u64 {
    expected.map_or(1, |v| v + 1)
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::CancellationReason;
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
        let throttled = TransactGetItemsError::TransactionCanceledException(
            TransactionCanceledException::builder()
                .message("Transaction cancelled [None, ThrottlingError]")
                .cancellation_reasons(CancellationReason::builder().code("None").build())
                .cancellation_reasons(CancellationReason::builder().code("ThrottlingError").build())
                .build(),
        );
        assert_eq!(read_failure(&throttled), ReadFailure::Other, "a throttle is not a concurrent writer");
    }

    #[test]
    fn a_transaction_cancelled_by_throttling_is_unavailable_not_another_round() {
        let cancelled_by = |reasons: &[&str]| {
            let mut c = TransactionCanceledException::builder().message("Transaction cancelled");
            for r in reasons {
                c = c.cancellation_reasons(CancellationReason::builder().code(*r).build());
            }
            cancelled(&TransactWriteItemsError::TransactionCanceledException(c.build()))
        };
        assert_eq!(cancelled_by(&["None", "ConditionalCheckFailed"]), Ok(false));
        assert_eq!(cancelled_by(&["TransactionConflict"]), Ok(false));
        for throttle in ["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"] {
            assert_eq!(cancelled_by(&["None", throttle]), Err(StoreError::Unavailable("throttled".into())));
        }
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
