//! History records as items: written in the same transaction as the change they describe, read
//! newest first by project (and post), a page at a time.
//!
//! | record | pk | sk |
//! |---|---|---|
//! | of a post | `PROJECT#{project}` | `HIST#POST#{post}#{at ms, 13 digits}#{version}#{n}` |
//! | of a connection | `PROJECT#{project}` | `HIST#CONN#{at ms, 13 digits}#{platform}#{version}#{n}` |

use aws_sdk_dynamodb::types::Put;
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::history::{Change, Retention, Source};
use crate::domain::{Platform, PostId, ProjectId, Timestamp};
use crate::ports::FeedEvent;

/// What a record is about.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Post(&'a PostId),
    Connection,
}

/// A history record as stored (and as the change feed reads it from the stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pk: String,
    sk: String,
    /// Unique (a connection forgotten and made again starts its versions afresh, so the time is
    /// part of it), stable: the change feed's de-duplication id.
    pub id: String,
    /// `post` or `connection`.
    pub kind: String,
    pub project_id: ProjectId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<PostId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub field: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    pub source: String,
    #[serde(default)]
    pub evidence: Option<String>,
    pub at: Timestamp,
    /// The table's TTL attribute: when the record expires (none: kept for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

pub const PREFIX: &str = "HIST#";

fn post_prefix(post: &PostId) -> String {
    format!("{PREFIX}POST#{post}#")
}

fn connection_prefix() -> String {
    format!("{PREFIX}CONN#")
}

/// The items recording `changes`, made by `source` at `at` with the subject's new `version`.
pub fn records(
    project: &ProjectId,
    subject: Subject<'_>,
    changes: &[Change],
    source: &Source,
    at: Timestamp,
    version: u64,
) -> Vec<HistoryItem> {
    changes
        .iter()
        .enumerate()
        .map(|(n, change)| {
            let platform = change.platform.map(Platform::api_name);
            let (kind, sk, id) = match subject {
                Subject::Post(post) => (
                    "post",
                    format!("{}{:013}#{version:010}#{n:02}", post_prefix(post), at.unix_millis()),
                    format!("post-{project}-{post}-{}-{version}-{n}", at.unix_millis()),
                ),
                Subject::Connection => {
                    let p = platform.unwrap_or("none");
                    (
                        "connection",
                        format!("{}{:013}#{p}#{version:010}#{n:02}", connection_prefix(), at.unix_millis()),
                        format!("connection-{project}-{p}-{}-{version}-{n}", at.unix_millis()),
                    )
                }
            };
            HistoryItem {
                pk: format!("PROJECT#{project}"),
                sk,
                id,
                kind: kind.to_owned(),
                project_id: project.clone(),
                post_id: match subject {
                    Subject::Post(post) => Some(post.clone()),
                    Subject::Connection => None,
                },
                platform: platform.map(str::to_owned),
                field: change.field.as_str().to_owned(),
                from: change.from.clone(),
                to: change.to.clone(),
                source: source.as_str().to_owned(),
                evidence: source.evidence().map(|e| e.to_string()),
                at,
                expires_at: None,
            }
        })
        .collect()
}

/// The project's one `project.erased` record (the change feed's event), written when the
/// erasure sealed at `since` has deleted everything else; deleted itself after.
pub fn erased(project: &ProjectId, since: Timestamp, at: Timestamp) -> HistoryItem {
    HistoryItem {
        pk: format!("PROJECT#{project}"),
        sk: format!("{PREFIX}PROJECT#{:013}", at.unix_millis()),
        id: format!("project-{project}-erased-{}", since.unix_millis()),
        kind: "project".to_owned(),
        project_id: project.clone(),
        post_id: None,
        platform: None,
        field: "status".to_owned(),
        from: Some("erasing".to_owned()),
        to: Some("erased".to_owned()),
        source: "erasure".to_owned(),
        evidence: None,
        at,
        expires_at: None,
    }
}

/// A record's put: new, never overwriting, expiring as `retention` says.
pub fn put(table: &str, record: &HistoryItem, retention: Retention) -> Result<Put, StoreError> {
    let expires_at = retention.expires_at(record.at).map(Timestamp::unix);
    let item: Item = encode(&HistoryItem { expires_at, ..record.clone() })?;
    built(
        Put::builder().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").build(),
    )
}

/// Where a page of a post's or a project's connection history is.
pub fn query_prefix(subject: Subject<'_>) -> String {
    match subject {
        Subject::Post(post) => post_prefix(post),
        Subject::Connection => connection_prefix(),
    }
}

/// An opaque cursor: the last key of a page, hex-encoded.
pub fn cursor(sk: &str) -> String {
    hex::encode(sk)
}

/// The key a cursor stands for, if it is one of this subject's.
pub fn after(cursor: &str, subject: Subject<'_>) -> Option<String> {
    let sk = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    sk.starts_with(&query_prefix(subject)).then_some(sk)
}

impl HistoryItem {
    pub fn sk(&self) -> &str {
        &self.sk
    }
}

impl From<HistoryItem> for crate::ports::Recorded {
    fn from(item: HistoryItem) -> Self {
        crate::ports::Recorded {
            at: item.at,
            platform: item.platform,
            field: item.field,
            from: item.from,
            to: item.to,
            source: item.source,
            evidence: item.evidence,
        }
    }
}

/// A stream image as a change-feed event: `None` when it is not a history record, an error when it
/// is one that cannot be read (`ports::FeedReader`).
pub fn feed_event(image: serde_dynamo::Item) -> Option<Result<FeedEvent, String>> {
    let is_record = image
        .iter()
        .any(|(k, v)| k == "sk" && matches!(v, serde_dynamo::AttributeValue::S(s) if s.starts_with(PREFIX)));
    if !is_record {
        return None;
    }
    Some(serde_dynamo::from_item::<_, HistoryItem>(image).map(|r| event_of(&r)).map_err(|e| e.to_string()))
}

/// The event a record is published as.
fn event_of(record: &HistoryItem) -> FeedEvent {
    let detail_type = match record.kind.as_str() {
        "post" => "Post Status Changed",
        "project" => "Project Erased",
        _ => "Connection Status Changed",
    };
    FeedEvent {
        id: record.id.clone(),
        detail_type,
        detail: serde_json::json!({
            "id": record.id, "project_id": record.project_id.as_str(),
            "post_id": record.post_id.as_ref().map(|p| p.as_str()), "platform": record.platform,
            "field": record.field, "from": record.from, "to": record.to, "source": record.source,
            "evidence": record.evidence, "at": record.at.to_rfc3339(),
        }),
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
