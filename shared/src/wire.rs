//! The publishing service's payload shapes, read tolerantly: unknown fields are ignored, missing
//! optional fields are `None`, ids may be strings or populated objects, and both payload
//! generations (`publishedUrl` / `platformPostUrl`, `error` / `errorMessage`) are accepted.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::post::{EntryStatus, PlatformReport, PostReport};
use crate::domain::text::{bounded_text, bounded_url};
use crate::domain::{Platform, ServicePostId, Timestamp};

/// A string, or a number printed as one; anything else (null, objects, arrays) is `None`.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// An id given as a string or as a populated object `{"_id": ...}`.
pub fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("_id").or_else(|| map.get("id")).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    })
}

/// A number, or a string holding one.
fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireMetadata {
    #[serde(default, deserialize_with = "lenient_string")]
    pub stacc_project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub stacc_post_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub stacc_generation: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePlatform {
    #[serde(default, deserialize_with = "lenient_string")]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub account_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub platform_post_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub platform_post_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub published_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub published_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub removed_from_platform_at: Option<String>,
}

/// A post as webhooks (`id`) and `GET /v1/posts/{id}` (`_id`) carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePost {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, rename = "_id", deserialize_with = "lenient_string")]
    pub object_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub scheduled_for: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub published_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub platforms: Vec<WirePlatform>,
    #[serde(default, deserialize_with = "lenient_metadata")]
    pub metadata: Option<WireMetadata>,
}

fn lenient_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WirePlatform>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect(),
        _ => Vec::new(),
    })
}

fn lenient_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WireMetadata>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// An account as the `account.*` webhooks carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAccount {
    #[serde(default, deserialize_with = "id_or_object")]
    pub account_id: Option<String>,
    #[serde(default, rename = "_id", deserialize_with = "lenient_string")]
    pub object_id: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub profile_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub disconnection_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub reason: Option<String>,
}

/// A platform's wire status as an entry status; `None` for one we do not recognise.
pub fn entry_status(wire: &str) -> Option<EntryStatus> {
    match wire.to_ascii_lowercase().as_str() {
        "published" => Some(EntryStatus::Published),
        "failed" | "error" => Some(EntryStatus::Failed),
        "pending" | "publishing" | "scheduled" | "processing" | "queued" => Some(EntryStatus::Queued),
        _ => None,
    }
}

impl WirePost {
    pub fn service_post_id(&self) -> Option<ServicePostId> {
        self.id.as_deref().or(self.object_id.as_deref()).and_then(|id| ServicePostId::parse(id).ok())
    }

    /// What this post says, as a report. `None` when it carries no usable post id.
    pub fn report(&self, default_status: EntryStatus, cancelled: bool) -> Option<PostReport> {
        let platforms = self
            .platforms
            .iter()
            .filter_map(|p| {
                let platform = Platform::from_wire(p.platform.as_deref()?).ok()?;
                let removed = p.removed_from_platform_at.as_deref().is_some_and(|s| !s.trim().is_empty());
                let status =
                    if removed { Some(EntryStatus::Removed) } else { p.status.as_deref().and_then(entry_status) };
                Some(PlatformReport {
                    platform,
                    status,
                    account_id: p.account_id.clone(),
                    url: bounded_url(
                        p.platform_post_url.as_deref().filter(|u| !u.is_empty()).or(p.published_url.as_deref()),
                    ),
                    platform_post_id: bounded_text(p.platform_post_id.as_deref()),
                    published_at: p.published_at.as_deref().and_then(Timestamp::parse),
                    error: bounded_text(p.error_message.as_deref().or(p.error.as_deref())),
                })
            })
            .collect();
        Some(PostReport {
            service_post_id: self.service_post_id()?,
            generation: self.metadata.as_ref().and_then(|m| m.stacc_generation),
            cancelled: cancelled || self.status.as_deref() == Some("cancelled"),
            published_at: self.published_at.as_deref().and_then(Timestamp::parse),
            scheduled_for: self.scheduled_for.as_deref().and_then(Timestamp::parse),
            default_status,
            platforms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_payload_generations_and_populated_ids() {
        let webhook: WirePost = serde_json::from_str(
            r#"{"id":"p1","platforms":[{"platform":"twitter","status":"published","accountId":{"_id":"a1"},
                "publishedUrl":"https://x.com/1","platformPostId":185}],"metadata":{"stacc_generation":"2"}}"#,
        )
        .unwrap();
        let got: WirePost = serde_json::from_str(
            r#"{"_id":"p1","platforms":[{"platform":"twitter","status":"published","accountId":"a1",
                "platformPostUrl":"https://x.com/1","platformPostId":"185","errorMessage":null}],"metadata":{"stacc_generation":2}}"#,
        )
        .unwrap();
        let a = webhook.report(EntryStatus::Queued, false).unwrap();
        let b = got.report(EntryStatus::Queued, false).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.generation, Some(2));
        assert_eq!(a.platforms[0].url.as_deref(), Some("https://x.com/1"));
        assert_eq!(a.platforms[0].account_id.as_deref(), Some("a1"));
    }

    #[test]
    fn unknown_platforms_and_malformed_entries_are_skipped_not_fatal() {
        let post: WirePost = serde_json::from_str(
            r#"{"id":"p1","platforms":[{"platform":"tiktok","status":"published"}, 7, {"platform":"linkedin","removedFromPlatformAt":"2026-01-01T00:00:00Z"}],"metadata":"junk"}"#,
        )
        .unwrap();
        let report = post.report(EntryStatus::Queued, false).unwrap();
        assert_eq!(report.platforms.len(), 1);
        assert_eq!(report.platforms[0].status, Some(EntryStatus::Removed));
        assert_eq!(report.generation, None);
    }
}
