//! The control API tests and people use to shape the simulator's world, inject faults, and make
//! the service send signed webhooks (duplicated, re-ordered, concurrent) to any URL.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;
use crate::api::error;
use crate::model::{Account, Behaviour, Fault, Health, PostPlatform, Profile, PublishOutcome, now_rfc3339};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/control/reset",
            post(|State(s): State<Arc<Shared>>| async move {
                s.reset();
                ok()
            }),
        )
        .route("/control/profiles/{id}", put(put_profile).delete(delete_profile))
        .route("/control/profiles/{id}/accounts", put(put_accounts))
        .route("/control/accounts/{id}/health", put(put_health).delete(delete_health))
        .route("/control/accounts/{id}/cooldown", put(put_cooldown).delete(delete_cooldown))
        .route("/control/posts/{id}", put(put_post).delete(delete_post))
        .route("/control/posts/{id}/settle", post(settle_post))
        .route("/control/faults", put(put_fault).delete(delete_fault))
        .route("/control/outcomes", put(put_outcomes))
        .route("/control/failures", put(put_failures))
        .route(
            "/control/behaviour",
            put(|State(s): State<Arc<Shared>>, Json(behaviour): Json<Behaviour>| async move {
                s.world().behaviour = behaviour;
                ok()
            }),
        )
        .route("/control/stats", get(|State(s): State<Arc<Shared>>| async move { Json(s.stats()) }))
        .route("/control/connect/complete", post(complete_connect))
        .route("/control/webhooks/emit", post(emit))
        .route(
            "/control/webhooks/before-answer",
            put(|State(s): State<Arc<Shared>>, Json(on): Json<bool>| async move {
                s.world().webhooks_before_answer = on;
                ok()
            }),
        )
        .route(
            "/control/webhooks/settings",
            delete(|State(s): State<Arc<Shared>>| async move {
                s.world().webhook = None;
                ok()
            }),
        )
        .with_state(shared)
}

#[derive(Debug, Deserialize)]
struct Cooldown {
    /// RFC 3339: until when the account may not post.
    until: String,
}

/// Puts an account in a posting cooldown, as the service does after repeated errors.
async fn put_cooldown(State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(c): Json<Cooldown>) -> Response {
    s.world().cooldowns.insert(id, c.until);
    ok()
}

async fn delete_cooldown(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    s.world().cooldowns.remove(&id);
    ok()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

/// Moves a platform entry to an outcome, as the service does when it publishes.
pub fn settle(entry: &mut PostPlatform, outcome: PublishOutcome, post_id: &str, now: &str, category: Option<&str>) {
    match outcome {
        PublishOutcome::Published => {
            let platform_id = format!("{}{}", &post_id[post_id.len().saturating_sub(6)..], entry.platform.len());
            entry.status = "published".into();
            entry.platform_post_url =
                Some(format!("https://{}.example/{}/{platform_id}", entry.platform, entry.account_id));
            entry.platform_post_id = Some(platform_id);
            entry.published_at = Some(now.to_owned());
            entry.error_message = None;
            entry.error_category = None;
        }
        PublishOutcome::Failed => {
            let category = category.unwrap_or("platform_rate_limit");
            entry.status = "failed".into();
            entry.error_message = Some(match category {
                "auth_expired" => "The access token has expired; reconnect the account".into(),
                _ => "Rate limit exceeded".into(),
            });
            entry.error_category = Some(category.to_owned());
        }
        PublishOutcome::Pending => entry.status = "pending".into(),
        PublishOutcome::Transient => {
            entry.status = "pending".into();
            entry.error_message =
                Some("Temporary error at the platform; Zernio retries the publish automatically.".into());
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ProfileBody {
    name: Option<String>,
}

async fn put_profile(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Option<Json<ProfileBody>>,
) -> Response {
    let name = body.and_then(|Json(b)| b.name).unwrap_or_else(|| format!("profile-{id}"));
    let profile =
        Profile { id: id.clone(), name, description: String::new(), created_at: now_rfc3339(), external_id: None };
    s.world().profiles.insert(id, profile);
    ok()
}

async fn delete_profile(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    s.delete_profile(&id);
    ok()
}

async fn put_accounts(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(accounts): Json<Vec<Value>>,
) -> Response {
    let mut parsed = Vec::new();
    for mut a in accounts {
        a["profileId"] = Value::String(id.clone());
        match serde_json::from_value::<Account>(a) {
            Ok(a) => parsed.push(a),
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("account: {e}")),
        }
    }
    s.set_accounts(&id, parsed);
    ok()
}

async fn put_health(State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(health): Json<Health>) -> Response {
    s.world().health.insert(id, health);
    ok()
}

async fn delete_health(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    s.world().health.remove(&id);
    ok()
}

/// Changes to a post: its status, and per-platform fields (matched by platform).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PostChange {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub platforms: Vec<Value>,
}

async fn put_post(State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(change): Json<PostChange>) -> Response {
    match s.change_post(&id, &change) {
        Some(post) => Json(json!({ "post": post })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

async fn delete_post(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    s.delete_post(&id);
    ok()
}

#[derive(Debug, Deserialize)]
struct SettleBody {
    #[serde(flatten)]
    outcomes: std::collections::HashMap<String, PublishOutcome>,
}

async fn settle_post(State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(body): Json<SettleBody>) -> Response {
    match s.settle_post(&id, &body.outcomes) {
        Some(post) => Json(json!({ "post": post })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

async fn put_fault(State(s): State<Arc<Shared>>, Json(fault): Json<Fault>) -> Response {
    s.set_fault(fault);
    ok()
}

async fn delete_fault(State(s): State<Arc<Shared>>) -> Response {
    s.set_fault(Fault::default());
    ok()
}

async fn put_outcomes(
    State(s): State<Arc<Shared>>,
    Json(outcomes): Json<std::collections::HashMap<String, PublishOutcome>>,
) -> Response {
    s.world().outcomes = outcomes;
    ok()
}

/// `{"twitter": "auth_expired"}`: the `errorCategory` a failure on each platform reports.
async fn put_failures(
    State(s): State<Arc<Shared>>,
    Json(categories): Json<std::collections::HashMap<String, String>>,
) -> Response {
    s.world().failure_categories = categories;
    ok()
}

#[derive(Debug, Deserialize)]
pub struct CompleteConnect {
    /// The `state` of a `GET /v1/connect/{platform}` answer.
    pub state: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

async fn complete_connect(State(s): State<Arc<Shared>>, Json(body): Json<CompleteConnect>) -> Response {
    match s.complete_connect(&body) {
        Some(account) => Json(json!({ "account": account })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Unknown connect state"),
    }
}

/// Which header carries the signature: today's or the older one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureHeader {
    #[default]
    Zernio,
    Late,
}

/// A batch of webhook deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Emit {
    /// Where to send; the registered webhook URL when absent.
    #[serde(default)]
    pub url: Option<String>,
    /// The signing secret; the registered one when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Full bodies, or shorthands `{"event": "...", "post_id": "..."}` /
    /// `{"event": "...", "account_id": "...", "disconnection_type": "..."}` built from the world.
    pub events: Vec<Value>,
    /// Each event is delivered this many times (at least once).
    #[serde(default)]
    pub copies: u32,
    /// Deliver in reverse order.
    #[serde(default)]
    pub reverse: bool,
    /// Deliver all at once instead of one after another.
    #[serde(default)]
    pub concurrent: bool,
    #[serde(default)]
    pub header: SignatureHeader,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub status: u16,
    pub body: String,
}

async fn emit(State(s): State<Arc<Shared>>, Json(emit): Json<Emit>) -> Response {
    match s.emit(emit).await {
        Ok(deliveries) => Json(json!({ "deliveries": deliveries })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}
