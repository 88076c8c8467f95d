//! The publishing service's API, as `publisher-zernio.md` pins it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::model::{
    Account, FaultMode, Idempotent, PLATFORMS, Post, PostPlatform, Profile, PublishOutcome, WebhookSettings,
    now_rfc3339,
};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/profiles", post(create_profile).get(list_profiles))
        .route("/api/v1/profiles/{id}", get(get_profile).delete(delete_profile))
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/{id}", axum::routing::delete(delete_account))
        .route("/api/v1/accounts/health", get(accounts_health))
        .route("/api/v1/connect/{platform}", get(connect))
        .route("/api/v1/posts", post(create_post))
        .route("/api/v1/posts/{id}", get(get_post))
        .route("/api/v1/webhooks/settings", post(webhook_settings).put(update_webhook).get(list_webhooks))
        .route("/api/v1/webhooks/test", post(webhook_test))
        .route("/api/v1/webhooks/logs", get(webhook_logs))
        .route("/api/v1/webhooks/logs/redeliver", post(redeliver))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found") })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Counts the call, applies any fault, checks the key, and closes every connection after its
/// answer (so that "down" takes effect on the next call).
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = format!("{} {}", request.method(), request.uri().path().trim_start_matches("/api"));
    let fault = {
        let mut world = shared.world.lock().expect("simulator state");
        world.record_call(&route_name(&route));
        if let Some(limit) = world.behaviour.calls_per_minute {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let minute = now / 60;
            if world.minute.0 != minute {
                world.minute = (minute, 0);
            }
            world.minute.1 += 1;
            if world.minute.1 > limit {
                let reset = (minute + 1) * 60;
                return rate_limited(u64::try_from(reset - now).unwrap_or(1).max(1), limit, reset);
            }
        }
        let path = request.uri().path().trim_start_matches("/api").to_owned();
        let applies = world.fault.mode != FaultMode::None
            && world.fault.path_prefix.as_deref().is_none_or(|p| path.starts_with(p));
        if applies {
            let mode = world.fault.mode.clone();
            if let Some(times) = world.fault.times.as_mut() {
                *times = times.saturating_sub(1);
                if *times == 0 {
                    world.fault = Default::default();
                }
            }
            Some(mode)
        } else {
            None
        }
    };
    let mut response = match fault {
        Some(FaultMode::Status { code }) => {
            error(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "Internal server error")
        }
        Some(FaultMode::Foreign { code }) => {
            let page = "<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>";
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND);
            (status, [("content-type", "text/html")], page).into_response()
        }
        Some(FaultMode::RateLimited { retry_after }) => {
            let reset = time::OffsetDateTime::now_utc().unix_timestamp() + i64::try_from(retry_after).unwrap_or(0);
            rate_limited(retry_after, 60, reset)
        }
        Some(FaultMode::TakenThenUnavailable { retry_after }) => {
            let _carried_out = authorized_run(&shared, request, next).await;
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "Temporary connection issue while reaching an upstream service. Please retry the request.",
                            "type": "api_error", "code": "temporarily_unavailable"})),
            )
                .into_response();
            r.headers_mut().insert("retry-after", HeaderValue::from(retry_after));
            r
        }
        Some(FaultMode::LostAnswer { code }) => {
            // Carried out, but the caller hears only a gateway's page (never the service's own answer).
            let _carried_out = authorized_run(&shared, request, next).await;
            let page = "<html><head><title>504 Gateway Time-out</title></head><body><h1>504 Gateway Time-out</h1></body></html>";
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::GATEWAY_TIMEOUT);
            (status, [("content-type", "text/html")], page).into_response()
        }
        other => {
            if let Some(FaultMode::Slow { millis }) = other {
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            authorized_run(&shared, request, next).await
        }
    };
    response.headers_mut().insert("connection", HeaderValue::from_static("close"));
    response
}

/// The team's limit answer: `Retry-After` in seconds, `X-RateLimit-Remaining: 0`,
/// `X-RateLimit-Reset` a Unix time, `type: rate_limit_error`.
fn rate_limited(retry_after: u64, limit: u32, reset: i64) -> Response {
    let body = json!({"error": "Rate limit exceeded", "type": "rate_limit_error", "code": "rate_limit_exceeded"});
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = r.headers_mut();
    headers.insert("retry-after", HeaderValue::from(retry_after));
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    r.headers_mut().insert("connection", HeaderValue::from_static("close"));
    r
}

/// Runs the call if it carries the API key.
async fn authorized_run(shared: &Shared, request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", shared.api_key()));
    if authorized { next.run(request).await } else { error(StatusCode::UNAUTHORIZED, "Unauthorized") }
}

/// `GET /v1/posts/65f…` counts as `GET /v1/posts/{id}`.
fn route_name(route: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap_or(("", route));
    let parts: Vec<&str> = path.split('/').collect();
    let named: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| match (parts.get(i.wrapping_sub(1)).copied(), *p) {
            (Some("profiles"), id) | (Some("posts"), id) | (Some("accounts"), id)
                if !id.is_empty() && id != "health" =>
            {
                "{id}".to_owned()
            }
            (Some("connect"), _) => "{platform}".to_owned(),
            (_, p) => p.to_owned(),
        })
        .collect();
    format!("{method} {}", named.join("/"))
}

#[derive(Deserialize)]
struct NewProfile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "externalId")]
    external_id: Option<String>,
}

/// 402 `PAYMENT_REQUIRED`: the service account needs its owner (the plan, a card).
fn payment_required(shared: &Shared) -> Option<Response> {
    let reason = shared.world().behaviour.payment_required.clone()?;
    let body = json!({"error": "Payment required: the free tier is used up.", "code": "PAYMENT_REQUIRED",
                      "type": "invalid_request_error", "details": {"reason": reason}});
    Some((StatusCode::PAYMENT_REQUIRED, Json(body)).into_response())
}

async fn create_profile(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Option<Json<NewProfile>>,
) -> Response {
    let Some(Json(NewProfile { name: Some(name), description, external_id })) = body else {
        return error(StatusCode::BAD_REQUEST, "name is required");
    };
    if let Some(refused) = payment_required(&shared) {
        return refused;
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| format!("profile:{k}"));
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
        "{name}\n{description}\n{}",
        external_id.as_deref().unwrap_or_default()
    )));
    if let Some(answer) = key.as_deref().and_then(|k| idempotent(&shared, k, &hash)) {
        return answer;
    }
    let answer = new_profile(&shared, name, description, external_id);
    // A create cut off mid-way leaves its key in flight: 409 until the key expires.
    if let Some(k) = key.filter(|_| !shared.world().behaviour.cut_off_profile_keys) {
        remember(&shared, &k, &answer);
    }
    answer.into_response()
}

fn new_profile(
    shared: &Shared,
    name: String,
    description: String,
    external_id: Option<String>,
) -> (StatusCode, Json<Value>) {
    let mut world = shared.world.lock().expect("simulator state");
    let external_id = external_id.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(existing) =
        external_id.as_ref().and_then(|e| world.profiles.values().find(|p| p.external_id.as_ref() == Some(e)))
    {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"error": "A profile with this externalId already exists", "code": "profile_external_id_conflict",
                   "details": {"existingProfileId": existing.id}}),
            ),
        );
    }
    // The service compares names without regard to case.
    if let Some(existing) = world.profiles.values().find(|p| p.name.eq_ignore_ascii_case(&name)) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "A profile with this name already exists", "code": "profile_name_conflict",
                   "details": {"existingProfileId": existing.id}})),
        );
    }
    let id = world.object_id();
    let profile = Profile { id: id.clone(), name, description, created_at: now_rfc3339(), external_id };
    world.profiles.insert(id, profile.clone());
    (StatusCode::CREATED, Json(json!({"message": "Profile created successfully", "profile": profile})))
}

#[derive(Deserialize)]
struct ProfileFilter {
    name: Option<String>,
    #[serde(rename = "externalId")]
    external_id: Option<String>,
}

/// `GET /v1/profiles`, filtered by exact `name` or `externalId`: always a list.
async fn list_profiles(State(shared): State<Arc<Shared>>, Query(q): Query<ProfileFilter>) -> Response {
    let world = shared.world();
    let profiles: Vec<&Profile> = world
        .profiles
        .values()
        .filter(|p| q.name.as_ref().is_none_or(|n| p.name == *n))
        .filter(|p| q.external_id.as_ref().is_none_or(|e| p.external_id.as_ref() == Some(e)))
        .collect();
    Json(json!({ "profiles": profiles })).into_response()
}

/// `DELETE /v1/profiles/{id}`: 400 while it still has active accounts, 404 once gone.
async fn delete_profile(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    if !world.profiles.contains_key(&id) {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    }
    if world.accounts.iter().any(|a| a.profile_id == id && a.is_active) {
        return error(StatusCode::BAD_REQUEST, "Profile still has active accounts: disconnect them first");
    }
    drop(world);
    shared.delete_profile(&id);
    Json(json!({"message": "Profile deleted successfully"})).into_response()
}

/// `DELETE /v1/accounts/{id}` ("Disconnect account"): a repeat is 404.
async fn delete_account(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut world = shared.world();
    let before = world.accounts.len();
    world.accounts.retain(|a| a.id != id);
    if world.accounts.len() == before {
        return error(StatusCode::NOT_FOUND, "Account not found");
    }
    world.health.remove(&id);
    Json(json!({"message": "Account disconnected successfully"})).into_response()
}

/// An `Idempotency-Key` seen before: the same body's answer replayed (409 while still in flight),
/// another body a 422. `None`: new (now in flight), or forgotten.
fn idempotent(shared: &Shared, key: &str, body_hash: &str) -> Option<Response> {
    let mut world = shared.world.lock().expect("simulator state");
    let now = time::OffsetDateTime::now_utc();
    let keep = time::Duration::seconds(i64::try_from(world.behaviour.idempotency_seconds).unwrap_or(i64::MAX));
    let known = world.idempotency.get(key).filter(|k| now - k.at <= keep).cloned();
    let Some(known) = known else {
        let entry = Idempotent { body_hash: body_hash.to_owned(), at: now, answer: None };
        world.idempotency.insert(key.to_owned(), entry);
        return None;
    };
    if known.body_hash != body_hash {
        return Some(error(StatusCode::UNPROCESSABLE_ENTITY, "Idempotency key reused with a different request body"));
    }
    Some(match known.answer {
        None => in_flight(),
        Some((status, body)) => {
            let mut replay = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(body)).into_response();
            replay.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            replay
        }
    })
}

/// 409 `idempotency_conflict`: the first request with this key is still being processed.
fn in_flight() -> Response {
    let body = json!({"error": "A request with this Idempotency-Key is still being processed; retry after the delay.",
                      "type": "invalid_request_error", "code": "idempotency_conflict"});
    let mut r = (StatusCode::CONFLICT, Json(body)).into_response();
    r.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
    r
}

fn remember(shared: &Shared, key: &str, (status, Json(body)): &(StatusCode, Json<Value>)) {
    if let Some(k) = shared.world.lock().expect("simulator state").idempotency.get_mut(key) {
        k.answer = Some((status.as_u16(), body.clone()));
    }
}

async fn get_profile(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    match world.profiles.get(&id) {
        Some(p) => Json(json!({ "profile": p })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Profile not found"),
    }
}

#[derive(Deserialize)]
struct ProfileQuery {
    #[serde(rename = "profileId")]
    profile_id: Option<String>,
    #[serde(rename = "includeOverLimit")]
    include_over_limit: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Every account unless paging is asked for: a cursor (`limit` alone, then `cursor`), or `page`
/// with `limit` (`page` alone is a 400).
async fn list_accounts(State(shared): State<Arc<Shared>>, Query(q): Query<ProfileQuery>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    if q.page.is_some() && (q.limit.is_none() || q.cursor.is_some()) {
        return error(StatusCode::BAD_REQUEST, "page requires limit, and cannot be combined with cursor");
    }
    let mut listed: Vec<Value> = world
        .profile_accounts(&profile)
        .iter()
        .filter(|a| q.include_over_limit.as_deref() == Some("true") || !a.over_limit)
        .map(Account::listed)
        .collect();
    let Some(limit) = q.limit.filter(|l| (1..=500).contains(l)) else {
        return Json(json!({ "accounts": listed, "hasAnalyticsAccess": false })).into_response();
    };
    let total = listed.len();
    let pagination = match q.page {
        Some(page) => {
            let pages = total.div_ceil(limit).max(1);
            listed = listed.into_iter().skip((page.max(1) - 1) * limit).take(limit).collect();
            json!({"page": page, "limit": limit, "total": total, "pages": pages})
        }
        None => {
            let start: usize = q.cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
            listed = listed.into_iter().skip(start).take(limit).collect();
            let next = (start + limit < total).then(|| (start + limit).to_string());
            json!({"limit": limit, "nextCursor": next})
        }
    };
    Json(json!({ "accounts": listed, "pagination": pagination, "hasAnalyticsAccess": false })).into_response()
}

async fn accounts_health(State(shared): State<Arc<Shared>>, Query(q): Query<ProfileQuery>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    let accounts: Vec<Value> = world.profile_accounts(&profile).iter().map(|a| world.health_of(a)).collect();
    let count = |s: &str| accounts.iter().filter(|a| a["status"] == s).count();
    let summary = json!({"total": accounts.len(), "healthy": count("healthy"), "warning": count("warning"), "error": count("error")});
    Json(json!({ "summary": summary, "accounts": accounts })).into_response()
}

#[derive(Deserialize)]
struct ConnectQuery {
    #[serde(rename = "profileId")]
    profile_id: Option<String>,
    redirect_url: Option<String>,
    #[serde(rename = "reconnectAccountId")]
    reconnect_account_id: Option<String>,
}

/// What `encodeURIComponent` leaves as it is: letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The longest URL-encoded `redirect_url` X takes.
pub const X_REDIRECT_LIMIT: usize = 258;

async fn connect(
    State(shared): State<Arc<Shared>>,
    Path(platform): Path<String>,
    Query(q): Query<ConnectQuery>,
) -> Response {
    if !PLATFORMS.contains(&platform.as_str()) {
        return error(StatusCode::BAD_REQUEST, "Unsupported platform");
    }
    if let Some(refused) = payment_required(&shared) {
        return refused;
    }
    let encoded = q
        .redirect_url
        .as_deref()
        .map_or(0, |u| percent_encoding::utf8_percent_encode(u, URI_COMPONENT).map(str::len).sum::<usize>());
    if platform == "twitter" && encoded > X_REDIRECT_LIMIT {
        let body = json!({"error": format!("redirect_url is {encoded} characters URL-encoded; X allows at most {X_REDIRECT_LIMIT}."),
                          "code": "INVALID_REDIRECT_URL"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let mut world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    let state = world.object_id();
    world.connect_states.insert(state.clone(), (profile, platform.clone(), q.reconnect_account_id));
    let mut auth_url = format!("{}/oauth/{platform}?state={state}", shared.public_url);
    if let Some(redirect) = q.redirect_url {
        auth_url.push_str("&redirect_url=");
        auth_url.push_str(&redirect.replace('&', "%26").replace('?', "%3F"));
    }
    Json(json!({ "authUrl": auth_url, "state": state })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPost {
    content: Option<String>,
    #[serde(default)]
    platforms: Vec<NewPostPlatform>,
    #[serde(default)]
    publish_now: Option<bool>,
    #[serde(default)]
    scheduled_for: Option<String>,
    #[serde(default)]
    metadata: Value,
    #[serde(default)]
    media_items: Vec<Value>,
}

/// The media types the service takes (`mediaItems[].type`).
pub const MEDIA_TYPES: [&str; 4] = ["image", "video", "gif", "document"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPostPlatform {
    platform: String,
    account_id: String,
}

type Answer = (StatusCode, Json<Value>);

fn refusal(status: StatusCode, message: &str) -> Answer {
    (status, Json(json!({ "error": message })))
}

/// What a post's content fingerprint is made of: its accounts, content and media URLs.
fn fingerprint(accounts: &[String], content: &str, media: &[Value]) -> String {
    let urls: Vec<&str> = media.iter().map(|m| m["url"].as_str().unwrap_or_default()).collect();
    let mut accounts = accounts.to_vec();
    accounts.sort();
    format!("{}\n{content}\n{}", accounts.join(","), urls.join(","))
}

fn fingerprint_of(body: &[u8]) -> Option<String> {
    let new: NewPost = serde_json::from_slice(body).ok()?;
    let accounts: Vec<String> = new.platforms.iter().map(|p| p.account_id.clone()).collect();
    Some(fingerprint(&accounts, new.content.as_deref().unwrap_or_default(), &new.media_items))
}

/// A remembered `x-request-id` whose post has the same content fingerprint: 200 with the
/// original, or 202 with its `postId` while it is still being saved. `None`: a new post.
fn remembered_request(shared: &Shared, request_id: &str, print: Option<&str>) -> Option<Response> {
    let world = shared.world.lock().expect("simulator state");
    let post_id = world.request_ids.get(request_id)?;
    let window = time::Duration::seconds(i64::try_from(world.behaviour.request_id_seconds).unwrap_or(i64::MAX));
    let post = world.posts.get(post_id)?;
    let accounts: Vec<String> = post.platforms.iter().map(|p| p.account_id.clone()).collect();
    if print != Some(fingerprint(&accounts, &post.content, &post.media_items).as_str()) {
        return None;
    }
    match world.request_ends.get(request_id) {
        None => Some(
            (StatusCode::ACCEPTED, Json(json!({"message": "Post is still being saved", "postId": post.id})))
                .into_response(),
        ),
        Some(end) if time::OffsetDateTime::now_utc() - *end <= window => Some(
            (StatusCode::OK, Json(json!({"message": "Post already exists (idempotent retry)", "post": post})))
                .into_response(),
        ),
        Some(_) => None,
    }
}

/// What an `Idempotency-Key` of a post says: new (now in flight), still in flight, or the post it
/// created. The match is on the key alone, never the body.
enum PostKey {
    New,
    InFlight,
    Created(String),
}

fn post_key(shared: &Shared, key: &str) -> PostKey {
    let mut world = shared.world.lock().expect("simulator state");
    let now = time::OffsetDateTime::now_utc();
    let keep = time::Duration::seconds(i64::try_from(world.behaviour.idempotency_seconds).unwrap_or(i64::MAX));
    let known = world.idempotency.get(key).filter(|k| now - k.at <= keep).cloned();
    let created = |answer: &(u16, Value)| answer.1.pointer("/post/_id").and_then(Value::as_str).map(str::to_owned);
    match known {
        Some(Idempotent { answer: None, .. }) => PostKey::InFlight,
        Some(Idempotent { answer: Some(answer), .. }) if created(&answer).is_some() => {
            PostKey::Created(created(&answer).unwrap_or_default())
        }
        // Unknown, expired, or its request failed without creating a post: a new request.
        _ => {
            world.idempotency.insert(key.to_owned(), Idempotent { body_hash: String::new(), at: now, answer: None });
            PostKey::New
        }
    }
}

/// The checks of one account before a post to it: its cooldown, then its velocity cap.
fn account_limited(world: &mut crate::model::World, account: &Account) -> Option<Response> {
    let now = time::OffsetDateTime::now_utc();
    let rfc = &time::format_description::well_known::Rfc3339;
    let cooldown = world
        .cooldowns
        .get(&account.id)
        .and_then(|until| time::OffsetDateTime::parse(until, rfc).ok())
        .filter(|until| *until > now);
    let velocity = world.behaviour.posts_per_hour_per_account.and_then(|cap| {
        let hour_ago = now - time::Duration::hours(1);
        let recent: Vec<_> = world
            .account_posts
            .get(&account.id)
            .map_or_else(Vec::new, |times| times.iter().copied().filter(|t| *t > hour_ago).collect());
        (recent.len() >= cap as usize).then(|| (cap, recent[0] + time::Duration::hours(1)))
    });
    let (message, until) = match (cooldown, velocity) {
        (Some(until), _) => (
            format!(
                "Account {} ({}) is rate limited after repeated errors, until {}.",
                account.id,
                account.platform,
                until.format(rfc).unwrap_or_default()
            ),
            until,
        ),
        (None, Some((cap, until))) => {
            (format!("Velocity limit reached: at most {cap} posts per hour to this account."), until)
        }
        (None, None) => return None,
    };
    let until_text = until.format(rfc).unwrap_or_default();
    let body = json!({"error": message, "code": "rate_limited",
                      "details": {"accountId": account.id, "platform": account.platform, "rateLimitedUntil": until_text}});
    let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let seconds = (until - now).whole_seconds().max(1);
    r.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    // The team's limit is far from spent: the throughput headers say so.
    r.headers_mut().insert(
        "x-ratelimit-remaining",
        HeaderValue::from(world.behaviour.calls_per_minute.unwrap_or(600).saturating_sub(world.minute.1)),
    );
    Some(r)
}

/// Creates the post in the world, publishing-now ones still `publishing`; returns it with what it
/// settles to and how long the publish takes. `Err` is a refusal to give at once.
#[allow(clippy::result_large_err)] // an answer, built once per call
fn create(
    shared: &Shared,
    request_id: Option<&str>,
    body: Option<NewPost>,
) -> Result<(Post, Vec<PostPlatform>, u64), Response> {
    let mut world = shared.world.lock().expect("simulator state");
    let refuse = |status, message: &str| refusal(status, message).into_response();
    let Some(new) = body else { return Err(refuse(StatusCode::BAD_REQUEST, "Invalid JSON body")) };
    let Some(content) = new.content.filter(|c| !c.trim().is_empty()) else {
        return Err(refuse(StatusCode::BAD_REQUEST, "content is required"));
    };
    if new.platforms.is_empty() || new.platforms.iter().any(|p| !PLATFORMS.contains(&p.platform.as_str())) {
        return Err(refuse(StatusCode::BAD_REQUEST, "platforms must name at least one supported platform"));
    }
    for (n, item) in new.media_items.iter().enumerate() {
        let http = |u: &str| u.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
        if !item["url"].as_str().is_some_and(http) {
            return Err(refuse(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].url must be an http(s) URL")));
        }
        if !item["type"].as_str().is_some_and(|t| MEDIA_TYPES.contains(&t)) {
            let types = MEDIA_TYPES.join(", ");
            return Err(refuse(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].type must be one of {types}")));
        }
    }
    let publish_now = new.publish_now == Some(true);
    if publish_now == new.scheduled_for.is_some() {
        return Err(refuse(StatusCode::BAD_REQUEST, "Exactly one of publishNow:true or scheduledFor is required"));
    }
    for p in &new.platforms {
        let Some(account) = world.accounts.iter().find(|a| a.id == p.account_id && a.platform == p.platform).cloned()
        else {
            return Err(refuse(StatusCode::FORBIDDEN, "One or more accounts do not belong to the authenticated user"));
        };
        let name = account.display_name.clone().or(account.username.clone()).unwrap_or_default();
        if !account.usable() {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                "error": format!("Account {} ({} \"{name}\") is disconnected and cannot be posted to. Reconnect it first.", account.id, account.platform),
                "code": "ACCOUNT_DISCONNECTED", "platform": account.platform})),
            ).into_response());
        }
        if account.enabled == Some(false) {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                "error": format!("Account {} ({} \"{name}\") is not enabled for posting.", account.id, account.platform),
                "code": "ACCOUNT_NOT_ENABLED_FOR_POSTING", "platform": account.platform})),
            ).into_response());
        }
        if let Some(limited) = account_limited(&mut world, &account) {
            return Err(limited);
        }
    }
    // The same content and media to the same account within the window is refused, naming the post.
    let window = time::Duration::seconds(i64::try_from(world.behaviour.content_hash_seconds).unwrap_or(i64::MAX));
    let since = time::OffsetDateTime::now_utc() - window;
    let media_urls =
        |items: &[Value]| items.iter().map(|m| m["url"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    let duplicate = world.posts.values().find_map(|post| {
        let recent = time::OffsetDateTime::parse(&post.created_at, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t > since);
        let same = post.content == content && media_urls(&post.media_items) == media_urls(&new.media_items);
        let account = post.platforms.iter().find(|pp| new.platforms.iter().any(|np| np.account_id == pp.account_id))?;
        (recent && same).then(|| (post.id.clone(), account.account_id.clone(), account.platform.clone()))
    });
    if let Some((existing, account_id, platform)) = duplicate {
        // The typed form: everything about the match under `details`.
        return Err((
            StatusCode::CONFLICT,
            Json(json!({
            "error": "This exact content is already scheduled, publishing, or was posted to this account within the last 24 hours.",
            "details": {"accountId": account_id, "platform": platform, "existingPostId": existing}})),
        ).into_response());
    }
    let id = world.object_id();
    let now = now_rfc3339();
    let mut millis = 0;
    let mut transient = false;
    let settled: Vec<PostPlatform> = new
        .platforms
        .iter()
        .map(|p| {
            let outcome = if publish_now {
                millis = millis.max(world.behaviour.publish_millis.get(&p.platform).copied().unwrap_or(0));
                *world.outcomes.get(&p.platform).unwrap_or(&PublishOutcome::Published)
            } else {
                PublishOutcome::Pending
            };
            transient |= outcome == PublishOutcome::Transient;
            let mut entry = PostPlatform {
                platform: p.platform.clone(),
                account_id: p.account_id.clone(),
                status: "pending".into(),
                platform_post_id: None,
                platform_post_url: None,
                published_at: None,
                error_message: None,
                error_category: None,
                removed_from_platform_at: None,
            };
            let category = world.failure_categories.get(&p.platform).map(String::as_str);
            crate::control::settle(&mut entry, outcome, &id, &now, category);
            entry
        })
        .collect();
    let in_progress = settled.iter().map(|p| PostPlatform { status: "processing".into(), ..p.clone() }).map(|mut p| {
        (p.platform_post_id, p.platform_post_url, p.published_at, p.error_message, p.error_category) =
            (None, None, None, None, None);
        p
    });
    let mut post = Post {
        id: id.clone(),
        content,
        status: if publish_now { "publishing".into() } else { "scheduled".into() },
        scheduled_for: new.scheduled_for,
        published_at: None,
        platforms: if millis > 0 { in_progress.collect() } else { settled.clone() },
        metadata: new.metadata,
        media_items: new.media_items,
        created_at: now,
    };
    if millis == 0 {
        post.derive_status();
    }
    if transient && millis == 0 && post.platforms.iter().all(|p| p.status == "pending") {
        post.status = "scheduled".into();
    }
    // A tripwire for the backend: two posts carrying the same publication (project, post,
    // generation) in their metadata is exactly what must never happen.
    let publication = &post.metadata;
    let tagged = publication.get("stacc_post_id").is_some();
    if tagged && world.posts.values().any(|p| p.metadata == *publication) {
        world.duplicate_publications += 1;
    }
    world.posts.insert(id.clone(), post.clone());
    world.posts_created += 1;
    let created_at = time::OffsetDateTime::now_utc();
    for p in &new.platforms {
        world.account_posts.entry(p.account_id.clone()).or_default().push(created_at);
    }
    if let Some(r) = request_id {
        world.request_ids.insert(r.to_owned(), id);
        world.request_ends.remove(r);
    }
    Ok((post, settled, millis))
}

/// A create, start to end: a publish-now is published inside the request, taking as long as the
/// behaviour says, then answered 201, or 207 when some platform failed or will be retried. It
/// runs on its own task, so a caller that gives up does not stop it (as on the real service).
/// The answer, and the post it created (none when it was refused).
async fn publish(shared: Arc<Shared>, request_id: Option<String>, body: Option<NewPost>) -> (Option<String>, Response) {
    let (mut post, settled, millis) = match create(&shared, request_id.as_deref(), body) {
        Ok(created) => created,
        Err(answer) => return (None, answer),
    };
    if millis > 0 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        let mut world = shared.world();
        if let Some(stored) = world.posts.get_mut(&post.id) {
            let now = now_rfc3339();
            stored.platforms = settled;
            for p in stored.platforms.iter_mut().filter(|p| p.status == "published") {
                p.published_at = Some(now.clone());
            }
            stored.derive_status();
            if stored.platforms.iter().all(|p| p.status == "pending") {
                stored.status = "scheduled".into();
            }
            post = stored.clone();
        }
    }
    if post.status == "published" || post.status == "partial" {
        post.published_at = Some(now_rfc3339());
        if let Some(stored) = shared.world().posts.get_mut(&post.id) {
            stored.published_at = post.published_at.clone();
        }
    }
    if let Some(r) = &request_id {
        shared.world().request_ends.insert(r.clone(), time::OffsetDateTime::now_utc());
    }
    let retried = post.status == "scheduled" && post.platforms.iter().any(|p| p.error_message.is_some());
    let event = match post.status.as_str() {
        "published" => Some("post.published"),
        "failed" => Some("post.failed"),
        "partial" => Some("post.partial"),
        "scheduled" if !retried => Some("post.scheduled"),
        _ => None,
    };
    let before_answer = shared.world().webhooks_before_answer;
    if let Some(event) = event {
        if before_answer {
            shared.notify_and_wait(event, json!({ "post": post.webhook_shape() })).await;
        } else {
            shared.notify(event, json!({ "post": post.webhook_shape() }));
        }
    }
    let id = Some(post.id.clone());
    let results: Vec<Value> = post
        .platforms
        .iter()
        .map(|p| json!({"platform": p.platform, "status": p.status, "error": p.error_message}))
        .collect();
    let answer = match post.status.as_str() {
        "failed" | "partial" => (
            StatusCode::MULTI_STATUS,
            Json(json!({"message": "Post created but publishing failed", "error": "Some platforms failed to publish",
                        "post": post, "platformResults": results})),
        ),
        "scheduled" if retried => (
            StatusCode::MULTI_STATUS,
            Json(json!({"message": "Post created but publishing failed",
                        "error": "Publishing encountered temporary errors. The post will be retried automatically.",
                        "post": post, "platformResults": results})),
        ),
        _ => (StatusCode::CREATED, Json(json!({"message": "Post created", "post": post}))),
    };
    (id, answer.into_response())
}

async fn create_post(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (request_id, key) = (header("x-request-id"), header("idempotency-key").map(|k| format!("post:{k}")));
    // Three layers, in this order: the Idempotency-Key (24 h, on the key alone; it wins, and the
    // request id is then not matched), the request id with the same content (24 h), the content.
    match &key {
        Some(k) => match post_key(&shared, k) {
            PostKey::InFlight => return in_flight(),
            PostKey::Created(id) => {
                let post = shared.world().posts.get(&id).cloned();
                let body = json!({"message": "Post already exists (idempotent retry)", "post": post});
                let mut replay = (StatusCode::OK, Json(body)).into_response();
                replay.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return replay;
            }
            PostKey::New => {}
        },
        None => {
            let print = fingerprint_of(&body);
            if let Some(answer) = request_id.as_deref().and_then(|r| remembered_request(&shared, r, print.as_deref())) {
                return answer;
            }
        }
    }
    let parsed: Option<NewPost> = serde_json::from_slice(&body).ok();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = shared.clone();
    tokio::spawn(async move {
        let (created, answer) = publish(task.clone(), request_id, parsed).await;
        if let Some(k) = &key {
            let kept = created.map(|id| (201, json!({"post": {"_id": id}})));
            match kept {
                Some(answer) => {
                    if let Some(entry) = task.world().idempotency.get_mut(k) {
                        entry.answer = Some(answer);
                    }
                }
                // Failed without creating a post: the retry is processed as a new request.
                None => {
                    task.world().idempotency.remove(k);
                }
            }
        }
        let _ = tx.send(answer);
    });
    match rx.await {
        Ok(answer) => answer,
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
    }
}

async fn get_post(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    match world.posts.get(&id) {
        Some(post) => Json(json!({ "post": post })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Update {
    #[serde(default)]
    webhook_id: Option<String>,
    #[serde(default, rename = "_id")]
    legacy_id: Option<String>,
    secret: Option<String>,
    is_active: Option<bool>,
    url: Option<String>,
}

/// `PUT /v1/webhooks/settings`: only the fields given change (a new secret, switched on or off).
async fn update_webhook(State(shared): State<Arc<Shared>>, body: Option<Json<Update>>) -> Response {
    let Some(Json(update)) = body else { return error(StatusCode::BAD_REQUEST, "webhookId is required") };
    let mut world = shared.world();
    let Some(webhook) = world.webhook.as_mut() else { return error(StatusCode::NOT_FOUND, "Webhook not found") };
    // Callers that name no id (older clients) get the one subscription there is.
    let named = update.webhook_id.or(update.legacy_id);
    if named.as_ref().is_some_and(|id| *id != webhook.id) {
        return error(StatusCode::NOT_FOUND, "Webhook not found");
    }
    if let Some(secret) = update.secret {
        webhook.settings.secret = Some(secret);
    }
    if let Some(url) = update.url {
        webhook.settings.url = url.trim().to_owned();
    }
    if let Some(on) = update.is_active {
        webhook.settings.is_active = on;
        if on {
            webhook.failure_count = 0;
            webhook.failing_since = None;
            webhook.last_success = time::OffsetDateTime::now_utc();
        }
    }
    Json(json!({"success": true, "webhook": webhook.listed()})).into_response()
}

/// `GET /v1/webhooks/settings`: every subscription, with `isActive`, `failureCount`, `lastFiredAt`.
async fn list_webhooks(State(shared): State<Arc<Shared>>) -> Response {
    let listed: Vec<Value> = shared.world().webhook.iter().map(crate::model::Subscription::listed).collect();
    Json(json!({ "webhooks": listed })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogQuery {
    limit: Option<usize>,
    skip: Option<usize>,
    status: Option<String>,
    webhook_id: Option<String>,
    event_id: Option<String>,
}

/// `GET /v1/webhooks/logs`: delivery attempts, most recent first, 50 a page (at most 100).
async fn webhook_logs(State(shared): State<Arc<Shared>>, Query(q): Query<LogQuery>) -> Response {
    let world = shared.world();
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 100");
    }
    let matching: Vec<&crate::model::DeliveryLog> = world
        .webhook_logs
        .iter()
        .rev()
        .filter(|l| q.status.as_deref().is_none_or(|s| (s == "success") == l.ok))
        .filter(|l| q.webhook_id.as_ref().is_none_or(|w| *w == l.webhook_id))
        .filter(|l| q.event_id.as_ref().is_none_or(|e| *e == l.event_id))
        .collect();
    let (total, skip) = (matching.len(), q.skip.unwrap_or(0));
    let logs: Vec<Value> = matching.iter().skip(skip).take(limit).map(|l| l.listed()).collect();
    let pagination = json!({"total": total, "limit": limit, "skip": skip, "pages": total.div_ceil(limit),
                            "hasMore": skip + limit < total});
    Json(json!({ "logs": logs, "pagination": pagination })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Redeliver {
    webhook_id: Option<String>,
    event_id: Option<String>,
}

/// `POST /v1/webhooks/logs/redeliver`: the logged payload, byte for byte, to the subscription's
/// current URL, signed with its current secret; the attempt is logged too.
async fn redeliver(State(shared): State<Arc<Shared>>, body: Option<Json<Redeliver>>) -> Response {
    let Some(Json(Redeliver { webhook_id: Some(webhook_id), event_id: Some(event_id) })) = body else {
        return error(StatusCode::BAD_REQUEST, "webhookId and eventId are required");
    };
    let (subscription, bytes) = {
        let world = shared.world();
        let Some(subscription) = world.webhook.clone().filter(|w| w.id == webhook_id) else {
            return error(StatusCode::NOT_FOUND, "Webhook subscription not found");
        };
        let logged = world.webhook_logs.iter().rev().find(|l| l.event_id == event_id && l.webhook_id == webhook_id);
        let Some(bytes) = logged.map(|l| l.body.clone()) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "No delivery of this event to replay");
        };
        (subscription, bytes)
    };
    match shared.deliver_bytes(&subscription, bytes).await {
        Some(d) if (200..300).contains(&d.status) => {
            Json(json!({"success": true, "message": "Webhook re-delivered"})).into_response()
        }
        other => {
            let message = match other {
                Some(d) => format!("The endpoint answered {}", d.status),
                None => "The endpoint could not be reached".to_owned(),
            };
            (StatusCode::BAD_GATEWAY, Json(json!({"success": false, "message": message}))).into_response()
        }
    }
}

/// `POST /v1/webhooks/test`: a sample of the event, marked `"test": true`.
async fn webhook_test(State(shared): State<Arc<Shared>>, body: Option<Json<Value>>) -> Response {
    let event = body.as_ref().and_then(|Json(b)| b.get("event")).and_then(Value::as_str).unwrap_or("post.published");
    let sample = json!({"test": true, "post": {"id": "000000000000000000000000", "content": "Sample", "status": "published",
        "scheduledFor": now_rfc3339(), "platforms": [],
        "metadata": {"stacc_project_id": "sample", "stacc_post_id": "sample", "stacc_generation": 1}}});
    shared.notify_and_wait(event, sample).await;
    Json(json!({"success": true, "message": "Test webhook sent"})).into_response()
}

/// `POST /v1/webhooks/settings`: the subscription (one here), made or replaced.
async fn webhook_settings(State(shared): State<Arc<Shared>>, body: Option<Json<WebhookSettings>>) -> Response {
    let Some(Json(settings)) = body else { return error(StatusCode::BAD_REQUEST, "url is required") };
    let mut world = shared.world();
    let id = world.webhook.as_ref().map(|w| w.id.clone()).unwrap_or_else(|| world.object_id());
    let subscription = crate::model::Subscription::new(id, settings);
    let listed = subscription.listed();
    world.webhook = Some(subscription);
    Json(json!({ "success": true, "webhook": listed })).into_response()
}
