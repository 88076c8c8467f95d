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
        .route("/api/v1/profiles", post(create_profile))
        .route("/api/v1/profiles/{id}", get(get_profile))
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/health", get(accounts_health))
        .route("/api/v1/connect/{platform}", get(connect))
        .route("/api/v1/posts", post(create_post))
        .route("/api/v1/posts/{id}", get(get_post))
        .route("/api/v1/webhooks/settings", post(webhook_settings).put(rotate_webhook_secret))
        .route("/api/v1/webhooks/test", post(webhook_test))
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

/// The key's limit answer: `Retry-After` in seconds, `X-RateLimit-Reset` a Unix time.
fn rate_limited(retry_after: u64, limit: u32, reset: i64) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
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
            (Some("profiles"), id) | (Some("posts"), id) if !id.is_empty() => "{id}".to_owned(),
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
}

async fn create_profile(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Option<Json<NewProfile>>,
) -> Response {
    let Some(Json(NewProfile { name: Some(name), description })) = body else {
        return error(StatusCode::BAD_REQUEST, "name is required");
    };
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|k| format!("profile:{k}"));
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("{name}\n{description}")));
    if let Some(answer) = key.as_deref().and_then(|k| idempotent(&shared, k, &hash)) {
        return answer;
    }
    let answer = new_profile(&shared, name, description);
    if let Some(k) = &key {
        remember(&shared, k, &answer);
    }
    answer.into_response()
}

fn new_profile(shared: &Shared, name: String, description: String) -> (StatusCode, Json<Value>) {
    let mut world = shared.world.lock().expect("simulator state");
    // The service compares names without regard to case.
    if let Some(existing) = world.profiles.values().find(|p| p.name.eq_ignore_ascii_case(&name)) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "A profile with this name already exists", "code": "profile_name_conflict",
                   "details": {"existingProfileId": existing.id}})),
        );
    }
    let id = world.object_id();
    let profile = Profile { id: id.clone(), name, description, created_at: now_rfc3339() };
    world.profiles.insert(id, profile.clone());
    (StatusCode::CREATED, Json(json!({"message": "Profile created successfully", "profile": profile})))
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
        None => error(StatusCode::CONFLICT, "A request with this Idempotency-Key is still in progress"),
        Some((status, body)) => {
            let mut replay = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), Json(body)).into_response();
            replay.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            replay
        }
    })
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
}

async fn list_accounts(State(shared): State<Arc<Shared>>, Query(q): Query<ProfileQuery>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    let listed: Vec<Value> = world
        .profile_accounts(&profile)
        .iter()
        .filter(|a| q.include_over_limit.as_deref() == Some("true") || !a.over_limit)
        .map(Account::listed)
        .collect();
    Json(json!({ "accounts": listed, "hasAnalyticsAccess": false })).into_response()
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
}

async fn connect(
    State(shared): State<Arc<Shared>>,
    Path(platform): Path<String>,
    Query(q): Query<ConnectQuery>,
) -> Response {
    if !PLATFORMS.contains(&platform.as_str()) {
        return error(StatusCode::BAD_REQUEST, "Unsupported platform");
    }
    let mut world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    let state = world.object_id();
    world.connect_states.insert(state.clone(), (profile, platform.clone()));
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

/// The post a remembered `x-request-id` created: in flight, or ended within the window.
fn remembered_request(shared: &Shared, request_id: &str) -> Option<Response> {
    let world = shared.world.lock().expect("simulator state");
    let post_id = world.request_ids.get(request_id)?;
    let window = time::Duration::seconds(i64::try_from(world.behaviour.request_id_seconds).unwrap_or(i64::MAX));
    let fresh = world.request_ends.get(request_id).is_none_or(|end| time::OffsetDateTime::now_utc() - *end <= window);
    let post = world.posts.get(post_id).filter(|_| fresh)?;
    Some(
        (StatusCode::OK, Json(json!({"message": "Post already created for this request", "existingPost": post})))
            .into_response(),
    )
}

/// Creates the post in the world, publishing-now ones still `publishing`; returns it with what it
/// settles to and how long the publish takes. `Err` is a refusal to give at once.
#[allow(clippy::result_large_err)] // an answer, built once per call
fn create(
    shared: &Shared,
    request_id: Option<&str>,
    body: Option<NewPost>,
) -> Result<(Post, Vec<PostPlatform>, u64), Answer> {
    let mut world = shared.world.lock().expect("simulator state");
    let Some(new) = body else { return Err(refusal(StatusCode::BAD_REQUEST, "Invalid JSON body")) };
    let Some(content) = new.content.filter(|c| !c.trim().is_empty()) else {
        return Err(refusal(StatusCode::BAD_REQUEST, "content is required"));
    };
    if new.platforms.is_empty() || new.platforms.iter().any(|p| !PLATFORMS.contains(&p.platform.as_str())) {
        return Err(refusal(StatusCode::BAD_REQUEST, "platforms must name at least one supported platform"));
    }
    for (n, item) in new.media_items.iter().enumerate() {
        let http = |u: &str| u.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
        if !item["url"].as_str().is_some_and(http) {
            return Err(refusal(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].url must be an http(s) URL")));
        }
        if !item["type"].as_str().is_some_and(|t| MEDIA_TYPES.contains(&t)) {
            let types = MEDIA_TYPES.join(", ");
            return Err(refusal(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].type must be one of {types}")));
        }
    }
    let publish_now = new.publish_now == Some(true);
    if publish_now == new.scheduled_for.is_some() {
        return Err(refusal(StatusCode::BAD_REQUEST, "Exactly one of publishNow:true or scheduledFor is required"));
    }
    for p in &new.platforms {
        let Some(account) = world.accounts.iter().find(|a| a.id == p.account_id && a.platform == p.platform) else {
            return Err(refusal(StatusCode::FORBIDDEN, "One or more accounts do not belong to the authenticated user"));
        };
        let name = account.display_name.clone().or(account.username.clone()).unwrap_or_default();
        if !account.usable() {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                "error": format!("Account {} ({} \"{name}\") is disconnected and cannot be posted to. Reconnect it first.", account.id, account.platform),
                "code": "ACCOUNT_DISCONNECTED", "platform": account.platform})),
            ));
        }
        if account.enabled == Some(false) {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                "error": format!("Account {} ({} \"{name}\") is not enabled for posting.", account.id, account.platform),
                "code": "ACCOUNT_NOT_ENABLED_FOR_POSTING", "platform": account.platform})),
            ));
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
        return Err((
            StatusCode::CONFLICT,
            Json(json!({
            "error": "This content was already posted to this account within the last 24 hours",
            "accountId": account_id, "platform": platform, "existingPostId": existing})),
        ));
    }
    let id = world.object_id();
    let now = now_rfc3339();
    let mut millis = 0;
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
    // A tripwire for the backend: two posts carrying the same publication (project, post,
    // generation) in their metadata is exactly what must never happen.
    let publication = &post.metadata;
    let tagged = publication.get("stacc_post_id").is_some();
    if tagged && world.posts.values().any(|p| p.metadata == *publication) {
        world.duplicate_publications += 1;
    }
    world.posts.insert(id.clone(), post.clone());
    world.posts_created += 1;
    if let Some(r) = request_id {
        world.request_ids.insert(r.to_owned(), id);
        world.request_ends.remove(r);
    }
    Ok((post, settled, millis))
}

/// A create, start to end: a publish-now is published inside the request, taking as long as the
/// behaviour says, then answered 201, or 207 when some platform failed. It runs on its own task, so
/// a caller that gives up does not stop it (as on the real service).
async fn publish(shared: Arc<Shared>, request_id: Option<String>, body: Option<NewPost>) -> Answer {
    let (mut post, settled, millis) = match create(&shared, request_id.as_deref(), body) {
        Ok(created) => created,
        Err(answer) => return answer,
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
    let event = match post.status.as_str() {
        "published" => Some("post.published"),
        "failed" => Some("post.failed"),
        "partial" => Some("post.partial"),
        "scheduled" => Some("post.scheduled"),
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
    match post.status.as_str() {
        "failed" | "partial" => {
            (StatusCode::MULTI_STATUS, Json(json!({"message": "Some platforms failed to publish", "post": post})))
        }
        _ => (StatusCode::CREATED, Json(json!({"message": "Post created", "post": post}))),
    }
}

async fn create_post(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (request_id, key) = (header("x-request-id"), header("idempotency-key").map(|k| format!("post:{k}")));
    // Two layers, in this order: the request id (about 5 minutes), then the Idempotency-Key (24 h).
    if let Some(answer) = request_id.as_deref().and_then(|r| remembered_request(&shared, r)) {
        return answer;
    }
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    if let Some(answer) = key.as_deref().and_then(|k| idempotent(&shared, k, &hash)) {
        return answer;
    }
    let parsed: Option<NewPost> = serde_json::from_slice(&body).ok();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = shared.clone();
    tokio::spawn(async move {
        let answer = publish(task.clone(), request_id, parsed).await;
        if let Some(k) = &key {
            remember(&task, k, &answer);
        }
        let _ = tx.send(answer);
    });
    match rx.await {
        Ok(answer) => answer.into_response(),
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
struct Rotation {
    #[serde(default)]
    webhook_id: Option<String>,
    secret: Option<String>,
}

/// `PUT /v1/webhooks/settings`: the same subscription, a new secret.
async fn rotate_webhook_secret(State(shared): State<Arc<Shared>>, body: Option<Json<Rotation>>) -> Response {
    let Some(Json(Rotation { secret: Some(secret), webhook_id })) = body else {
        return error(StatusCode::BAD_REQUEST, "secret is required");
    };
    let mut world = shared.world.lock().expect("simulator state");
    let Some(webhook) = world.webhook.as_mut() else { return error(StatusCode::NOT_FOUND, "Webhook not found") };
    webhook.secret = Some(secret);
    Json(json!({"success": true, "webhook": {"_id": webhook_id.unwrap_or_else(|| "wh_1".into()), "url": webhook.url}}))
        .into_response()
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

async fn webhook_settings(State(shared): State<Arc<Shared>>, body: Option<Json<WebhookSettings>>) -> Response {
    let Some(Json(settings)) = body else { return error(StatusCode::BAD_REQUEST, "url is required") };
    let mut world = shared.world.lock().expect("simulator state");
    world.webhook = Some(settings.clone());
    Json(json!({ "success": true, "webhook": {"name": settings.name, "url": settings.url, "events": settings.events, "isActive": settings.is_active} }))
        .into_response()
}
