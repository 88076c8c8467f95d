//! The publishing service's payload shapes, read strictly by JSON type and tolerantly by
//! presence: every field accepts only its own JSON type (a string where a string is meant, an
//! object where an object is meant) and reads anything else exactly as if it were absent, so a
//! type-confused body is never news (serde would read a struct from an array in field order).
//! Unknown fields are ignored, missing optional fields are `None`, ids may be strings or
//! populated objects (the SDK's own union), and both payload generations (`publishedUrl` /
//! `platformPostUrl`, `error` / `errorMessage`) are accepted.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::post::{EntryStatus, PlatformReport, PostReport};
use crate::domain::text::{bounded_id, bounded_text, bounded_url};
use crate::domain::{AccountId, Platform, PostId, ProjectId, ServicePostId, Timestamp};

/// A shape read from a JSON object only; any other JSON type is no shape at all. Takes the value
/// it reads (no copy); a caller holding a borrowed one clones it.
pub fn object<T: DeserializeOwned>(value: Value) -> Option<T> {
    match value {
        Value::Object(_) => serde_json::from_value(value).ok(),
        _ => None,
    }
}

/// A string; anything else (numbers, null, objects, arrays) is `None`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// An id given as a string or as a populated object `{"_id": ...}` (the SDK's union).
pub fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("_id").or_else(|| map.get("id")).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    })
}

/// A flag: a JSON boolean; anything else is `None` (absent), never a parse failure.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        _ => None,
    })
}

/// A field that may be absent, or present but not a string: the two mean different things.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field {
    #[default]
    Absent,
    Text(String),
    Unreadable,
}

fn field<'de, D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => Field::Absent,
        Value::String(s) => Field::Text(s),
        _ => Field::Unreadable,
    })
}

/// A whole JSON number that fits in a `u32`; anything else is `None`.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireMetadata {
    #[serde(default, deserialize_with = "string")]
    pub stacc_project_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub stacc_post_id: Option<String>,
    #[serde(default, deserialize_with = "count")]
    pub stacc_generation: Option<u32>,
}

impl WireMetadata {
    /// The project and post it names, when both are valid ids.
    pub fn owner(&self) -> Option<(ProjectId, PostId)> {
        let project = ProjectId::parse(self.stacc_project_id.clone()?).ok()?;
        Some((project, PostId::parse(self.stacc_post_id.clone()?).ok()?))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePlatform {
    #[serde(default, deserialize_with = "string")]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "field")]
    pub status: Field,
    #[serde(default, deserialize_with = "id_or_object")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub platform_post_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub platform_post_url: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub published_url: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub published_at: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub error_category: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub removed_from_platform_at: Option<String>,
}

/// A post as webhooks (`id`) and `GET /v1/posts/{id}` (`_id`) carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePost {
    #[serde(default, deserialize_with = "string")]
    pub id: Option<String>,
    #[serde(default, rename = "_id", deserialize_with = "string")]
    pub object_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub scheduled_for: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub published_at: Option<String>,
    #[serde(default, deserialize_with = "objects")]
    pub platforms: Vec<WirePlatform>,
    #[serde(default, deserialize_with = "optional_object")]
    pub metadata: Option<WireMetadata>,
}

/// A list of objects: an item of any other type is skipped, and a list that is not one is empty.
pub fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().filter_map(object).collect(),
        _ => Vec::new(),
    })
}

/// An object, or nothing.
fn optional_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(object(Value::deserialize(d)?))
}

/// An account as the `account.*` webhooks carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAccount {
    #[serde(default, deserialize_with = "id_or_object")]
    pub account_id: Option<String>,
    #[serde(default, rename = "_id", deserialize_with = "string")]
    pub object_id: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub profile_id: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub disconnection_type: Option<String>,
    #[serde(default, deserialize_with = "string")]
    pub reason: Option<String>,
}

/// The error a copy the service reports `cancelled` is shown with.
pub const CANCELLED_COPY: &str = "Cancelled on the publishing service.";

/// A status on the wire as an entry status; `None` for one we do not recognise.
pub fn entry_status(wire: &str) -> Option<EntryStatus> {
    match wire.to_ascii_lowercase().as_str() {
        "published" => Some(EntryStatus::Published),
        "failed" | "error" => Some(EntryStatus::Failed),
        "pending" | "publishing" | "scheduled" | "processing" | "uploading" | "queued" | "pending_approval" => {
            Some(EntryStatus::Queued)
        }
        // A copy taken back on the service never goes live: settled, with `CANCELLED_COPY` as its error.
        "cancelled" | "canceled" => Some(EntryStatus::Failed),
        _ => None,
    }
}

impl WirePost {
    pub fn service_post_id(&self) -> Option<ServicePostId> {
        self.id.as_deref().or(self.object_id.as_deref()).and_then(|id| ServicePostId::parse(id).ok())
    }

    /// The status a platform listed without its own takes from the post's status.
    fn default_status(&self, fallback: EntryStatus) -> EntryStatus {
        match self.status.as_deref() {
            Some("published") => EntryStatus::Published,
            Some("failed") => EntryStatus::Failed,
            _ => fallback,
        }
    }

    /// What this post says, made at `reported_at`, as a report; `None` when it carries no usable
    /// post id. A platform whose status cannot be read (not a string, or a word we do not know)
    /// is no news for that entry; a `platforms` that is not a list is no entry news at all.
    pub fn report(&self, default_status: EntryStatus, cancelled: bool, reported_at: Timestamp) -> Option<PostReport> {
        let platforms = self
            .platforms
            .iter()
            .filter_map(|p| {
                let platform = Platform::from_wire(p.platform.as_deref()?).ok()?;
                let removed = p.removed_from_platform_at.as_deref().is_some_and(|s| !s.trim().is_empty());
                let cancelled_copy =
                    matches!(&p.status, Field::Text(w) if w.to_ascii_lowercase().starts_with("cancel"));
                let status = match &p.status {
                    // A status of another JSON type is no news about the copy, whatever else it says.
                    Field::Unreadable => return None,
                    _ if removed => Some(EntryStatus::Removed),
                    Field::Absent => None,
                    Field::Text(word) => Some(entry_status(word)?),
                };
                Some(PlatformReport {
                    platform,
                    status,
                    account_id: p.account_id.as_deref().and_then(|id| AccountId::parse(id).ok()),
                    url: bounded_url(
                        p.platform_post_url.as_deref().filter(|u| !u.is_empty()).or(p.published_url.as_deref()),
                    ),
                    platform_post_id: bounded_id(p.platform_post_id.as_deref()),
                    published_at: p.published_at.as_deref().and_then(Timestamp::parse),
                    // A copy still pending may carry a notice ("…will publish automatically after
                    // <time>", the last temporary error while the service retries): it is queued,
                    // never failed, and the notice is no error.
                    error: bounded_text(p.error_message.as_deref().or(p.error.as_deref()))
                        .filter(|_| status != Some(EntryStatus::Queued))
                        .or_else(|| cancelled_copy.then(|| CANCELLED_COPY.to_owned())),
                    auth_expired: p.error_category.as_deref() == Some("auth_expired"),
                })
            })
            .collect();
        Some(PostReport {
            service_post_id: self.service_post_id()?,
            generation: self.metadata.as_ref().and_then(|m| m.stacc_generation),
            owner: self.metadata.as_ref().and_then(WireMetadata::owner),
            cancelled: cancelled || self.status.as_deref() == Some("cancelled"),
            published_at: self.published_at.as_deref().and_then(Timestamp::parse),
            // Every post carries `scheduledFor` (a publish-now's is when it was asked): it is a
            // schedule only while the post is scheduled.
            scheduled_for: self
                .scheduled_for
                .as_deref()
                .filter(|_| self.status.as_deref() == Some("scheduled"))
                .and_then(Timestamp::parse),
            reported_at,
            default_status: self.default_status(default_status),
            platforms,
        })
    }
}

/// The body of `POST /v1/profiles` for the project's profile: its name, and the project as its
/// `externalId` (the way to find it again).
pub fn create_profile(name: &str, project: &ProjectId) -> Value {
    serde_json::json!({"name": name, "description": "theStacc project", "externalId": project.as_str()})
}

/// The body of `POST /v1/posts` for a publication: the same bytes every time it is sent.
pub fn create_post(publication: &crate::ports::Publication) -> Value {
    let platforms: Vec<Value> = publication
        .targets
        .iter()
        .map(|t| serde_json::json!({"platform": t.platform.wire_name(), "accountId": t.account_id.as_str()}))
        .collect();
    let mut body = serde_json::json!({
        "content": publication.content,
        "platforms": platforms,
        "metadata": {"stacc_project_id": publication.project.as_str(), "stacc_post_id": publication.post.as_str(),
                     "stacc_generation": publication.generation},
    });
    match publication.scheduled_for {
        Some(at) => body["scheduledFor"] = serde_json::json!(at.to_rfc3339()),
        None => body["publishNow"] = serde_json::json!(true),
    }
    if !publication.media.is_empty() {
        body["mediaItems"] =
            publication.media.iter().map(|m| serde_json::json!({"type": m.kind.name(), "url": m.url})).collect();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_payload_generations_and_populated_ids() {
        let webhook: WirePost = serde_json::from_str(
            r#"{"id":"p1","platforms":[{"platform":"twitter","status":"published","accountId":{"_id":"a1"},
                "publishedUrl":"https://x.com/1","platformPostId":"185"}],"metadata":{"stacc_generation":2}}"#,
        )
        .unwrap();
        let got: WirePost = serde_json::from_str(
            r#"{"_id":"p1","platforms":[{"platform":"twitter","status":"published","accountId":"a1",
                "platformPostUrl":"https://x.com/1","platformPostId":"185","errorMessage":null}],"metadata":{"stacc_generation":2}}"#,
        )
        .unwrap();
        let at = Timestamp::from_unix(1);
        let a = webhook.report(EntryStatus::Queued, false, at).unwrap();
        let b = got.report(EntryStatus::Queued, false, at).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.generation, Some(2));
        assert_eq!(a.platforms[0].url.as_deref(), Some("https://x.com/1"));
        assert_eq!(a.platforms[0].account_id.as_ref().map(AccountId::as_str), Some("a1"));
    }

    #[test]
    fn a_207_the_service_retries_itself_leaves_its_copies_queued_without_an_error() {
        // `post.status: scheduled` in a 207: every platform hit a transient error and was reset to
        // pending; the service retries them. A held copy carries a notice, never a failure.
        let answer = serde_json::json!({"message": "Post created but publishing failed",
            "error": "Publishing encountered temporary errors. The post will be retried automatically.",
            "post": {"_id": "p1", "status": "scheduled", "platforms": [
                {"platform": "instagram", "status": "pending"},
                {"platform": "twitter", "status": "pending",
                 "errorMessage": "This post is queued and will publish automatically after 2026-12-07T13:00:00Z"}]},
            "platformResults": [{"platform": "instagram", "status": "pending", "error": null}]});
        let post: WirePost = object(answer["post"].clone()).unwrap();
        let report = post.report(EntryStatus::Queued, false, Timestamp::from_unix(1)).unwrap();
        assert_eq!(report.default_status, EntryStatus::Queued);
        for p in &report.platforms {
            assert_eq!((p.status, p.error.as_deref()), (Some(EntryStatus::Queued), None), "{p:?}");
        }
        let approval: WirePost =
            object(serde_json::json!({"_id": "p2", "status": "pending_approval", "platforms": [{"platform": "linkedin", "status": "pending_approval"}]})).unwrap();
        let report = approval.report(EntryStatus::Queued, false, Timestamp::from_unix(1)).unwrap();
        assert_eq!(report.platforms[0].status, Some(EntryStatus::Queued));
    }

    #[test]
    fn unknown_platforms_and_malformed_entries_are_skipped_not_fatal() {
        let post: WirePost = serde_json::from_str(
            r#"{"id":"p1","platforms":[{"platform":"tiktok","status":"published"}, 7, {"platform":"linkedin","removedFromPlatformAt":"2026-01-01T00:00:00Z"}],"metadata":"junk"}"#,
        )
        .unwrap();
        let report = post.report(EntryStatus::Queued, false, Timestamp::from_unix(1)).unwrap();
        assert_eq!(report.platforms.len(), 1);
        assert_eq!(report.platforms[0].status, Some(EntryStatus::Removed));
        assert_eq!(report.generation, None);
    }

    #[test]
    fn each_field_takes_only_its_own_json_type() {
        #[derive(Deserialize)]
        struct Shape {
            #[serde(default, deserialize_with = "flag")]
            f: Option<bool>,
            #[serde(default, deserialize_with = "string")]
            s: Option<String>,
            #[serde(default, deserialize_with = "count")]
            n: Option<u32>,
        }
        let read = |json: &str| {
            let shape = serde_json::from_str::<Shape>(json).unwrap();
            (shape.f, shape.s, shape.n)
        };
        assert_eq!(read(r#"{"f":false,"s":"185","n":2}"#), (Some(false), Some("185".into()), Some(2)));
        assert_eq!(read(r#"{"f":"false","s":185,"n":"2"}"#), (None, None, None));
        assert_eq!(read(r#"{"f":{"x":1},"s":["185"],"n":[2]}"#), (None, None, None));
        let as_array: Option<WireMetadata> = object(serde_json::json!(["proj", "post", 1]));
        assert!(as_array.is_none(), "an array is never read as an object in field order");
    }
}
