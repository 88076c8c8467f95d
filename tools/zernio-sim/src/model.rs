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
    /// The caller's own id for it (the project), unique among the profiles.
    #[serde(rename = "externalId", default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
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
    /// The call is carried out, then answered 503 `temporarily_unavailable` with `Retry-After`:
    /// "a timed-out write may have completed upstream".
    TakenThenUnavailable { retry_after: u64 },
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

/// The subscription as the service keeps it: its settings, and how its deliveries have gone.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub settings: WebhookSettings,
    /// Consecutive failed deliveries; any success resets it.
    pub failure_count: u32,
    /// The last successful delivery (RFC 3339).
    pub last_fired_at: Option<String>,
    /// When the current run of failures began.
    pub failing_since: Option<time::OffsetDateTime>,
    /// The last success, or when the subscription was made.
    pub last_success: time::OffsetDateTime,
}

impl Subscription {
    pub fn new(id: String, settings: WebhookSettings) -> Subscription {
        Subscription {
            id,
            settings,
            failure_count: 0,
            last_fired_at: None,
            failing_since: None,
            last_success: time::OffsetDateTime::now_utc(),
        }
    }

    /// As `GET /v1/webhooks/settings` lists it (never its secret).
    pub fn listed(&self) -> Value {
        json!({"_id": self.id, "name": self.settings.name, "url": self.settings.url, "events": self.settings.events,
               "isActive": self.settings.is_active, "failureCount": self.failure_count,
               "lastFiredAt": self.last_fired_at})
    }

    /// One delivery's outcome, and the service's switch-off rule: no success for the window and
    /// either enough consecutive failures or failing without a break for the whole window.
    pub fn record(&mut self, ok: bool, behaviour: &Behaviour) {
        let now = time::OffsetDateTime::now_utc();
        if ok {
            self.failure_count = 0;
            self.failing_since = None;
            self.last_success = now;
            self.last_fired_at = Some(now_rfc3339());
            return;
        }
        self.failure_count += 1;
        let since = *self.failing_since.get_or_insert(now);
        let window = time::Duration::seconds(i64::try_from(behaviour.webhook_off_after_seconds).unwrap_or(i64::MAX));
        let quiet = now - self.last_success >= window;
        if quiet && (self.failure_count >= behaviour.webhook_off_after_failures || now - since >= window) {
            self.settings.is_active = false;
        }
    }
}

/// One delivery attempt, as `GET /v1/webhooks/logs` shows it; the exact bytes sent are kept for
/// a redelivery.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub url: String,
    pub ok: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub body: Vec<u8>,
    pub created_at: String,
}

impl DeliveryLog {
    pub fn listed(&self) -> Value {
        let payload: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        json!({"webhookId": self.webhook_id, "eventId": self.event_id, "event": self.event, "url": self.url,
               "status": if self.ok { "success" } else { "failed" }, "statusCode": self.status_code,
               "errorMessage": self.error, "requestPayload": payload, "createdAt": self.created_at})
    }
}

/// What a publish-now does on each platform (default: published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishOutcome {
    Published,
    Failed,
    Pending,
    /// A temporary error: the copy is reset to pending and the service retries it itself (a
    /// publish-now answers 207 with the post `scheduled`).
    Transient,
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
    /// How long an `x-request-id` is remembered after its request ends (24 hours).
    pub request_id_seconds: u64,
    /// How long an `Idempotency-Key` is kept (24 hours).
    pub idempotency_seconds: u64,
    /// How long the same content to the same account is refused (24 hours).
    pub content_hash_seconds: u64,
    /// The key's limit of calls a minute (none: unlimited).
    pub calls_per_minute: Option<u32>,
    /// Each account's velocity cap: posts created in any hour (the service's is 25; none here
    /// unless a test sets it).
    pub posts_per_hour_per_account: Option<u32>,
    /// Profile creates and connect links answer 402 `PAYMENT_REQUIRED` with this reason.
    pub payment_required: Option<String>,
    /// A profile create is cut off after creating the profile: its key stays in flight (409)
    /// and its answer is never kept.
    pub cut_off_profile_keys: bool,
    /// The subscription switch-off rule: no success for this long...
    pub webhook_off_after_seconds: u64,
    /// ...and this many consecutive failures (or failing for the whole window).
    pub webhook_off_after_failures: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            publish_millis: HashMap::new(),
            request_id_seconds: 24 * 3600,
            idempotency_seconds: 24 * 3600,
            content_hash_seconds: 24 * 3600,
            calls_per_minute: None,
            posts_per_hour_per_account: None,
            payment_required: None,
            cut_off_profile_keys: false,
            webhook_off_after_seconds: 3 * 24 * 3600,
            webhook_off_after_failures: 20,
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
    /// A hosted connect flow: its profile, platform, and the account it reconnects.
    pub connect_states: HashMap<String, (String, String, Option<String>)>,
    pub webhook: Option<Subscription>,
    /// Every delivery attempt to the subscription, oldest first.
    pub webhook_logs: Vec<DeliveryLog>,
    /// When each account's posts were created (its velocity cap).
    pub account_posts: HashMap<String, Vec<time::OffsetDateTime>>,
    /// Accounts in a posting cooldown, until when (RFC 3339).
    pub cooldowns: HashMap<String, String>,
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
