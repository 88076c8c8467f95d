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

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Get, Put, TransactGetItem, TransactWriteItem};
use serde::{Deserialize, Serialize};

use crate::domain::connection::join_connection;
use crate::domain::{Connection, EventId, Platform, PostId, PostReport, PostState, ProfileId, ProjectId, Timestamp};
use crate::ports::{ConnectionStore, Draft, EventStore, Outcome, PostStore, StoreError, StoredConnection, StoredPost};

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    #[serde(flatten)]
    pub state: PostState,
}

impl PostItem {
    fn stored(self) -> StoredPost {
        StoredPost {
            state: self.state,
            draft: self.content.map(|content| Draft { content, media_urls: self.media_urls }),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
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
    #[serde(flatten)]
    pub connection: Connection,
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
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&e).to_string())
}

/// What to do with the items an event concerns, decided by the pure domain.
enum Plan {
    /// Nothing to change: only take the event id.
    Nothing,
    /// Write this item, on condition that the stored version is still `expected` (none: absent).
    Write {
        item: Item,
        expected: Option<u64>,
    },
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
        put.build().map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn event_put(&self, event: &EventId, now: Timestamp) -> Result<Put, StoreError> {
        let (pk, sk) = keys::event(event);
        let item =
            encode(&EventItem { pk, sk, taken_at: now, expires_at: now.plus_seconds(EVENT_RETENTION_SECONDS).unix() })?;
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.unix().to_string()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
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
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
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
            .map_err(unavailable)?;
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
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let out =
                self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(unavailable)?;
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

    /// Reads the event record and the given items in one consistent request.
    async fn read(
        &self,
        event: &EventId,
        keys: &[(String, String)],
        now: Timestamp,
    ) -> Result<(bool, Vec<Option<Item>>), StoreError> {
        let mut gets: Vec<TransactGetItem> = Vec::with_capacity(keys.len() + 1);
        for key in std::iter::once(keys::event(event)).chain(keys.iter().cloned()) {
            let get = Get::builder().table_name(&self.table).set_key(Some(key_map(key))).build();
            gets.push(TransactGetItem::builder().get(get.map_err(|e| StoreError::Corrupt(e.to_string()))?).build());
        }
        let out = self.client.transact_get_items().set_transact_items(Some(gets)).send().await.map_err(unavailable)?;
        let mut items: Vec<Option<Item>> =
            out.responses.unwrap_or_default().into_iter().map(|r| r.item.filter(|i| !i.is_empty())).collect();
        items.resize(keys.len() + 1, None);
        // Emulators (and DynamoDB for up to 48 h) keep expired items: compare the expiry here.
        let taken = match items.remove(0) {
            Some(record) => decode::<EventItem>(record)?.expires_at >= now.unix(),
            None => false,
        };
        Ok((taken, items))
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
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                back_off(round).await;
            }
            let (taken, items) = self.read(event, keys, now).await?;
            if taken {
                return Ok(Outcome::Duplicate);
            }
            let write = match plan(items)? {
                Plan::Ignore => return Ok(Outcome::Ignored),
                Plan::Defer => return Ok(Outcome::Deferred),
                Plan::Nothing => None,
                Plan::Write { item, expected } => Some(self.conditional_put(item, expected)?),
            };
            match write {
                None => {
                    let landed = self.put(self.event_put(event, now)?).await?;
                    return Ok(if landed { Outcome::Applied { changed: false } } else { Outcome::Duplicate });
                }
                Some(put) => {
                    let items = vec![
                        TransactWriteItem::builder().put(self.event_put(event, now)?).build(),
                        TransactWriteItem::builder().put(put).build(),
                    ];
                    let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
                    match sent {
                        Ok(_) => return Ok(Outcome::Applied { changed: true }),
                        // A condition failed: a copy of this event landed first, or the item moved.
                        // The next round's read tells which; cancellation reasons are not trusted
                        // for it, so no emulator's way of reporting them can lose an event.
                        Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => {
                            continue;
                        }
                        Err(e) => return Err(unavailable(e)),
                    }
                }
            }
        }
        Err(StoreError::Contention)
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
    async fn put_profile_link(&self, project: &ProjectId, profile: &ProfileId) -> Result<(), StoreError> {
        let (pk, sk) = keys::project_profile(project);
        let pointer = encode(&ProjectProfileItem { pk, sk, profile_id: profile.clone() })?;
        let (pk, sk) = keys::route(profile);
        let route = encode(&RouteItem { pk, sk, project_id: project.clone() })?;
        let puts = [pointer, route].into_iter().map(|item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        });
        let items = puts.collect::<Result<Vec<_>, _>>()?;
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map_err(unavailable)?;
        Ok(())
    }
}

/// What a webhook's report does to the post: joined into what is stored (or deferred when it
/// names a publication we have not stored yet).
fn plan_post(
    project: &ProjectId,
    post: &PostId,
    mut items: Vec<Option<Item>>,
    now: Timestamp,
    report: &PostReport,
) -> Result<Plan, StoreError> {
    let stored: Option<PostItem> = items.pop().flatten().map(decode).transpose()?;
    let Ok(evidence) = report.to_state(stored.as_ref().map(|s| &s.state)) else {
        return Ok(Plan::Defer);
    };
    let (pk, sk) = keys::post(project, post);
    let (joined, expected, created_at) = match &stored {
        Some(s) => (s.state.join(&evidence), Some(s.version), s.created_at),
        None => (PostState::default().join(&evidence), None, now),
    };
    if stored.as_ref().is_some_and(|s| s.state == joined) {
        return Ok(Plan::Nothing);
    }
    let (content, media_urls) = stored.map(|s| (s.content, s.media_urls)).unwrap_or_default();
    let item = PostItem {
        pk,
        sk,
        project_id: project.clone(),
        post_id: post.clone(),
        version: 0,
        created_at,
        updated_at: now,
        content,
        media_urls,
        state: joined,
    };
    Ok(Plan::Write { item: encode(&item)?, expected })
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
        self.apply(event, &[keys::post(project, post)], now, |items| plan_post(project, post, items, now, report)).await
    }

    async fn apply_connection_evidence(
        &self,
        event: &EventId,
        profile: &ProfileId,
        evidence: &Connection,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let keys = [keys::route(profile), keys::connection(profile, evidence.platform)];
        self.apply(event, &keys, now, |mut items| {
            let stored: Option<ConnectionItem> = items.pop().flatten().map(decode).transpose()?;
            let Some(route) = items.pop().flatten().map(decode::<RouteItem>).transpose()? else {
                return Ok(Plan::Ignore);
            };
            let joined = join_connection(stored.as_ref().map(|s| &s.connection), evidence);
            let (pk, sk) = keys::connection(profile, evidence.platform);
            let (expected, updated_at) = match &stored {
                Some(s) if s.connection == joined => return Ok(Plan::Nothing),
                // `updated_at` moves only when what the API shows moves.
                Some(s) if s.connection.view() == joined.view() => (Some(s.version), s.updated_at),
                Some(s) => (Some(s.version), now),
                None => (None, now),
            };
            let item = ConnectionItem {
                pk,
                sk,
                project_id: route.project_id,
                profile_id: profile.clone(),
                version: 0,
                updated_at,
                connection: joined,
            };
            Ok(Plan::Write { item: encode(&item)?, expected })
        })
        .await
    }
}

impl ConnectionItem {
    fn stored(self) -> StoredConnection {
        StoredConnection { connection: self.connection, updated_at: self.updated_at, version: self.version }
    }
}

impl DynamoStore {
    async fn write_all(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        let sent = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl ConnectionStore for DynamoStore {
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
            .map_err(unavailable)?;
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
        mut read: Vec<StoredConnection>,
        evidence: Vec<Connection>,
        now: Timestamp,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        for round in 0..MAX_ROUNDS {
            if round > 0 {
                back_off(round).await;
                read = self.connections(profile).await?;
            }
            let mut result: Vec<StoredConnection> = read.clone();
            let mut writes = Vec::new();
            for e in &evidence {
                let stored = read.iter().find(|s| s.connection.platform == e.platform);
                let joined = join_connection(stored.map(|s| &s.connection), e);
                let (expected, updated_at) = match stored {
                    Some(s) if s.connection == joined => continue,
                    Some(s) if s.connection.view() == joined.view() => (Some(s.version), s.updated_at),
                    Some(s) => (Some(s.version), now),
                    None => (None, now),
                };
                let (pk, sk) = keys::connection(profile, e.platform);
                let item = ConnectionItem {
                    pk,
                    sk,
                    project_id: project.clone(),
                    profile_id: profile.clone(),
                    version: 0,
                    updated_at,
                    connection: joined.clone(),
                };
                writes.push(self.conditional_put(encode(&item)?, expected)?);
                let written =
                    StoredConnection { connection: joined, updated_at, version: expected.map_or(1, |v| v + 1) };
                result.retain(|s| s.connection.platform != e.platform);
                result.push(written);
            }
            let landed = match writes.len() {
                0 => true,
                1 => self.put(writes.remove(0)).await?,
                _ => {
                    self.write_all(writes.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect())
                        .await?
                }
            };
            if landed {
                result.sort_by_key(|s| s.connection.platform);
                return Ok(result);
            }
        }
        Err(StoreError::Contention)
    }

    async fn forget_profile(
        &self,
        project: &ProjectId,
        profile: &ProfileId,
        read: &[StoredConnection],
    ) -> Result<(), StoreError> {
        let delete = |key: (String, String)| Delete::builder().table_name(&self.table).set_key(Some(key_map(key)));
        let pointer = delete(keys::project_profile(project))
            .condition_expression("attribute_not_exists(pk) OR profile_id = :profile")
            .expression_attribute_values(":profile", AttributeValue::S(profile.to_string()));
        let mut deletes = vec![pointer, delete(keys::route(profile))];
        deletes.extend(read.iter().map(|s| delete(keys::connection(profile, s.connection.platform))));
        let items = deletes
            .into_iter()
            .map(|d| d.build().map(|d| TransactWriteItem::builder().delete(d).build()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Cancelled: the project moved to another profile meanwhile, which is not ours to undo.
        self.write_all(items).await.map(|_| ())
    }

    async fn link_profile(&self, project: &ProjectId, profile: &ProfileId) -> Result<(), StoreError> {
        self.put_profile_link(project, profile).await
    }
}

impl PostStore for DynamoStore {
    async fn post(&self, project: &ProjectId, post: &PostId) -> Result<Option<StoredPost>, StoreError> {
        Ok(self.get_post(project, post).await?.map(PostItem::stored))
    }

    async fn post_and_profile(
        &self,
        project: &ProjectId,
        post: &PostId,
    ) -> Result<(Option<StoredPost>, Option<ProfileId>), StoreError> {
        let mut items = self.get_many(&[keys::post(project, post), keys::project_profile(project)]).await?.into_iter();
        let post = items.next().flatten().map(decode::<PostItem>).transpose()?.map(PostItem::stored);
        let profile = items.next().flatten().map(decode::<ProjectProfileItem>).transpose()?.map(|p| p.profile_id);
        Ok((post, profile))
    }

    async fn save_post(
        &self,
        project: &ProjectId,
        post: &PostId,
        read: Option<&StoredPost>,
        draft: Option<&Draft>,
        evidence: &PostState,
        now: Timestamp,
    ) -> Result<StoredPost, StoreError> {
        for round in 0..MAX_ROUNDS {
            let (pk, sk) = keys::post(project, post);
            let stored = if round == 0 {
                read.map(|r| PostItem {
                    pk: pk.clone(),
                    sk: sk.clone(),
                    project_id: project.clone(),
                    post_id: post.clone(),
                    version: r.version,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    content: r.draft.as_ref().map(|d| d.content.clone()),
                    media_urls: r.draft.as_ref().map(|d| d.media_urls.clone()).unwrap_or_default(),
                    state: r.state.clone(),
                })
            } else {
                back_off(round).await;
                self.get_post(project, post).await?
            };
            let mut item = match &stored {
                Some(s) => s.clone(),
                None => PostItem {
                    pk,
                    sk,
                    project_id: project.clone(),
                    post_id: post.clone(),
                    version: 0,
                    created_at: now,
                    updated_at: now,
                    content: None,
                    media_urls: Vec::new(),
                    state: PostState::default(),
                },
            };
            item.state = item.state.join(evidence);
            if let Some(draft) = draft {
                item.content = Some(draft.content.clone());
                item.media_urls = draft.media_urls.clone();
            }
            if stored.as_ref() == Some(&item) {
                return Ok(item.stored());
            }
            item.updated_at = now;
            let expected = stored.as_ref().map(|s| s.version);
            if self.put(self.conditional_put(encode(&item)?, expected)?).await? {
                item.version = expected.map_or(1, |v| v + 1);
                return Ok(item.stored());
            }
        }
        Err(StoreError::Contention)
    }
}
