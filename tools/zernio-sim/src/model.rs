//! The simulator's in-memory world: profiles, accounts and their health, posts, webhook settings,
//! faults, and a count of every API call.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const PLATFORMS: [&str; 4] = ["instagram", "facebook", "linkedin", "twitter"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "createdAt", default)]
    pub created_at: String,
}

/// An account as `GET /v1/accounts` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(rename = "_id")]
    pub id: String,
    pub platform: String,
    pub profile_id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub profile_picture: Option<String>,
    #[serde(default)]
    pub profile_url: Option<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_reconnection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Beyond the plan's limit: listed only when `includeOverLimit=true` is asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_limit: bool,
}

fn yes() -> bool {
    true
}

impl Account {
    pub fn usable(&self) -> bool {
        self.is_active && !self.needs_reconnection.unwrap_or(false)
    }

    /// As the accounts list shows it (the service's own view: never our control flags).
    pub fn listed(&self) -> Value {
        let mut shown = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = shown.as_object_mut() {
            map.remove("overLimit");
        }
        shown
    }
}

/// A health override for one account; without one, health follows the account's usability.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    #[serde(default)]
    pub needs_reconnect: bool,
    #[serde(default)]
    pub issues: Vec<String>,
    /// When the account's token expires (RFC 3339); unknown unless set.
    #[serde(default)]
    pub token_expires_at: Option<String>,
}

/// One platform of a post, as `GET /v1/posts/{id}` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostPlatform {
    pub platform: String,
    pub account_id: String,
    pub status: String,
    #[serde(default)]
    pub platform_post_id: Option<String>,
    #[serde(default)]
    pub platform_post_url: Option<String>,
    #[serde(default)]
    pub published_at: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub error_category: Option<String>,
    #[serde(default)]
    pub removed_from_platform_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    #[serde(rename = "_id")]
    pub id: String,
    pub content: String,
    pub status: String,
    #[serde(default)]
    pub scheduled_for: Option<String>,
    /// Kept for webhooks only: the current post type has no post-level `publishedAt`.
    #[serde(default, skip_serializing)]
    pub published_at: Option<String>,
    pub platforms: Vec<PostPlatform>,
    #[serde(default)]
    pub metadata: Value,
    /// What the create was given, as given: `[{"type","url"}]`.
    #[serde(default)]
    pub media_items: Vec<Value>,
    #[serde(default)]
    pub created_at: String,
}

impl Post {
    /// The post status the service derives from its platforms.
    pub fn derive_status(&mut self) {
        if self.status == "cancelled" || self.status == "draft" {
            return;
        }
        let count = |s: &str| self.platforms.iter().filter(|p| p.status == s).count();
        let (published, failed, total) = (count("published"), count("failed"), self.platforms.len());
        self.status = if total == 0 {
            self.status.clone()
        } else if published == total {
            "published".into()
        } else if failed == total {
            "failed".into()
        } else if published + failed == total {
            "partial".into()
        } else if self.scheduled_for.is_some() && published + failed == 0 {
            "scheduled".into()
        } else {
            "publishing".into()
        };
    }

    /// The post as webhooks carry it: `id`, and `publishedUrl` beside `platformPostUrl`.
    pub fn webhook_shape(&self) -> Value {
        let platforms: Vec<Value> = self
            .platforms
            .iter()
            .map(|p| {
                json!({
                    "platform": p.platform, "status": p.status, "accountId": p.account_id,
                    "platformPostId": p.platform_post_id, "publishedUrl": p.platform_post_url,
                    "publishedAt": p.published_at, "error": p.error_message, "errorCategory": p.error_category,
                })
            })
            .collect();
        // `scheduledFor` is always there (a publish-now's is when it was asked); `metadata` is left
        // out when empty.
        let mut post = json!({
            "id": self.id, "content": self.content, "status": self.status,
            "scheduledFor": self.scheduled_for.clone().unwrap_or_else(|| self.created_at.clone()),
            "publishedAt": self.published_at, "platforms": platforms,
        });
        if self.metadata.as_object().is_some_and(|m| !m.is_empty()) {
            post["metadata"] = self.metadata.clone();
        }
        post
    }
}

/// A fault on the API (never on the control API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FaultMode {
    #[default]
    None,
    /// Connections are closed unanswered.
    Down,
    /// Every answer waits this long first.
    Slow { millis: u64 },
    /// Every call answers this status.
    Status { code: u16 },
    /// Every call answers 429 with this `Retry-After`.
    RateLimited { retry_after: u64 },
    /// The call is carried out, but its answer is lost: the caller gets this status instead
    /// (a create that landed while the client timed out).
    LostAnswer { code: u16 },
    /// An answer that is not the service's own: an HTML page with this status, as a proxy or a
    /// wrong base URL gives.
    Foreign { code: u16 },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub mode: FaultMode,
    /// Only calls whose path (after `/api`) starts with this; all when absent.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Only this many calls, then the fault clears itself.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookSettings {
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default = "yes", rename = "isActive")]
    pub is_active: bool,
}

/// What a publish-now does on each platform (default: published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    Published,
    Failed,
    Pending,
}

/// One `Idempotency-Key` as the service keeps it.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub body_hash: String,
    pub at: time::OffsetDateTime,
    pub answer: Option<(u16, Value)>,
}

/// The real service's behaviours a test can tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// How long a publish-now takes on each platform, in milliseconds (the request lasts the longest).
    pub publish_millis: HashMap<String, u64>,
    /// How long an `x-request-id` is remembered after its request ends (about 5 minutes).
    pub request_id_seconds: u64,
    /// How long an `Idempotency-Key` is kept (24 hours).
    pub idempotency_seconds: u64,
    /// How long the same content to the same account is refused (24 hours).
    pub content_hash_seconds: u64,
    /// The key's limit of calls a minute (none: unlimited).
    pub calls_per_minute: Option<u32>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            publish_millis: HashMap::new(),
            request_id_seconds: 300,
            idempotency_seconds: 24 * 3600,
            content_hash_seconds: 24 * 3600,
            calls_per_minute: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub profiles: BTreeMap<String, Profile>,
    pub accounts: Vec<Account>,
    pub health: HashMap<String, Health>,
    pub posts: BTreeMap<String, Post>,
    pub deleted_posts: Vec<String>,
    pub request_ids: HashMap<String, String>,
    /// When the request with this `x-request-id` ended (absent while it is in flight).
    pub request_ends: HashMap<String, time::OffsetDateTime>,
    /// `Idempotency-Key`s: the body's hash, when it was first seen, and the answer once there is one.
    pub idempotency: HashMap<String, Idempotent>,
    /// How the service behaves where it matters (`/control/behaviour`).
    pub behaviour: Behaviour,
    /// Calls counted against the key's limit: the minute they fall in, and how many.
    pub minute: (i64, u32),
    pub connect_states: HashMap<String, (String, String)>,
    pub webhook: Option<WebhookSettings>,
    pub fault: Fault,
    pub outcomes: HashMap<String, PublishOutcome>,
    /// The `errorCategory` a failure on a platform reports (default `platform_rate_limit`).
    pub failure_categories: HashMap<String, String>,
    pub calls: BTreeMap<String, u64>,
    /// When each call reached the API (Unix ms), for the most calls in any minute.
    pub call_times: Vec<i64>,
    pub posts_created: u64,
    /// Posts created with the same `metadata` (one publication of ours) as a post already held.
    pub duplicate_publications: u64,
    /// Deliver the webhook a create causes before answering the create (a webhook that beats the
    /// answer to the caller).
    pub webhooks_before_answer: bool,
    pub(crate) counter: u64,
}

/// Call times kept (a long `make run` stops recording past this).
const MAX_CALL_TIMES: usize = 1_000_000;

impl World {
    /// A fresh 24-hex ObjectId: 4 bytes of time, 8 of counter.
    pub fn object_id(&mut self) -> String {
        self.counter += 1;
        let secs = time::OffsetDateTime::now_utc().unix_timestamp() as u32;
        format!("{secs:08x}{:016x}", self.counter)
    }

    pub fn record_call(&mut self, route: &str) {
        *self.calls.entry(route.to_owned()).or_default() += 1;
        if self.call_times.len() < MAX_CALL_TIMES {
            self.call_times.push(time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000);
        }
    }

    /// The most calls that reached the API in any 60 seconds.
    pub fn most_calls_in_any_minute(&self) -> usize {
        let times = &self.call_times;
        let mut most = 0;
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while times[start] <= t - 60_000 {
                start += 1;
            }
            most = most.max(end + 1 - start);
        }
        most
    }

    pub fn profile_accounts(&self, profile_id: &str) -> Vec<Account> {
        self.accounts.iter().filter(|a| a.profile_id == profile_id).cloned().collect()
    }

    pub fn health_of(&self, account: &Account) -> Value {
        let health = self.health.get(&account.id).cloned().unwrap_or_else(|| Health {
            status: if account.usable() { "healthy".into() } else { "error".into() },
            needs_reconnect: !account.usable(),
            issues: if account.usable() { vec![] } else { vec!["Token expired".into()] },
            token_expires_at: None,
        });
        json!({
            "accountId": account.id, "platform": account.platform, "username": account.username,
            "status": health.status, "canPost": health.status != "error" && !health.needs_reconnect,
            "tokenValid": !health.needs_reconnect, "needsReconnect": health.needs_reconnect,
            "issues": health.issues, "tokenExpiresAt": health.token_expires_at,
        })
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
