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
use crate::model::{FaultMode, PLATFORMS, Post, PostPlatform, Profile, PublishOutcome, WebhookSettings, now_rfc3339};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/profiles", post(create_profile))
        .route("/api/v1/profiles/{id}", get(get_profile))
        .route("/api/v1/accounts", get(list_accounts))
        .route("/api/v1/accounts/health", get(accounts_health))
        .route("/api/v1/connect/{platform}", get(connect))
        .route("/api/v1/posts", post(create_post))
        .route("/api/v1/posts/{id}", get(get_post))
        .route("/api/v1/webhooks/settings", post(webhook_settings))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found") })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn error_with(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Counts the call, applies any fault, checks the key, and closes every connection after its
/// answer (so that "down" takes effect on the next call).
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = format!("{} {}", request.method(), request.uri().path().trim_start_matches("/api"));
    let fault = {
        let mut world = shared.world.lock().expect("simulator state");
        world.record_call(&route_name(&route));
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
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            let headers = r.headers_mut();
            headers.insert("retry-after", HeaderValue::from(retry_after));
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("60"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-reset", HeaderValue::from(retry_after));
            r
        }
        Some(FaultMode::LostAnswer { code }) => {
            let _carried_out = authorized_run(&shared, request, next).await;
            error(StatusCode::from_u16(code).unwrap_or(StatusCode::GATEWAY_TIMEOUT), "Gateway timeout")
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

async fn create_profile(State(shared): State<Arc<Shared>>, body: Option<Json<NewProfile>>) -> Response {
    let Some(Json(NewProfile { name: Some(name), description })) = body else {
        return error(StatusCode::BAD_REQUEST, "name is required");
    };
    let mut world = shared.world.lock().expect("simulator state");
    // The service compares names without regard to case.
    if let Some(existing) = world.profiles.values().find(|p| p.name.eq_ignore_ascii_case(&name)) {
        return error_with(
            StatusCode::CONFLICT,
            json!({"error": "A profile with this name already exists", "code": "profile_name_conflict",
                   "details": {"existingProfileId": existing.id}}),
        );
    }
    let id = world.object_id();
    let profile = Profile { id: id.clone(), name, description, created_at: now_rfc3339() };
    world.profiles.insert(id, profile.clone());
    (StatusCode::CREATED, Json(json!({"message": "Profile created successfully", "profile": profile}))).into_response()
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
}

async fn list_accounts(State(shared): State<Arc<Shared>>, Query(q): Query<ProfileQuery>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    let Some(profile) = q.profile_id.filter(|p| world.profiles.contains_key(p)) else {
        return error(StatusCode::NOT_FOUND, "Profile not found");
    };
    Json(json!({ "accounts": world.profile_accounts(&profile) })).into_response()
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

/// Creates the post in the world; `Err` is an answer to give at once (a refusal, or the post this
/// request id already created).
#[allow(clippy::result_large_err)] // an answer, built once per call
fn create(shared: &Shared, headers: &HeaderMap, body: Option<Json<NewPost>>) -> Result<Post, Response> {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut world = shared.world.lock().expect("simulator state");
    if let Some(existing) =
        request_id.as_ref().and_then(|r| world.request_ids.get(r)).and_then(|id| world.posts.get(id))
    {
        return Err((
            StatusCode::OK,
            Json(json!({"message": "Post already created for this request", "post": existing})),
        )
            .into_response());
    }
    let Some(Json(new)) = body else { return Err(error(StatusCode::BAD_REQUEST, "Invalid JSON body")) };
    let Some(content) = new.content.filter(|c| !c.trim().is_empty()) else {
        return Err(error(StatusCode::BAD_REQUEST, "content is required"));
    };
    if new.platforms.is_empty() || new.platforms.iter().any(|p| !PLATFORMS.contains(&p.platform.as_str())) {
        return Err(error(StatusCode::BAD_REQUEST, "platforms must name at least one supported platform"));
    }
    for (n, item) in new.media_items.iter().enumerate() {
        let http = |u: &str| u.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
        if !item["url"].as_str().is_some_and(http) {
            return Err(error(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].url must be an http(s) URL")));
        }
        if !item["type"].as_str().is_some_and(|t| MEDIA_TYPES.contains(&t)) {
            let types = MEDIA_TYPES.join(", ");
            return Err(error(StatusCode::BAD_REQUEST, &format!("mediaItems[{n}].type must be one of {types}")));
        }
    }
    let publish_now = new.publish_now == Some(true);
    if publish_now == new.scheduled_for.is_some() {
        return Err(error(StatusCode::BAD_REQUEST, "Exactly one of publishNow:true or scheduledFor is required"));
    }
    for p in &new.platforms {
        let Some(account) = world.accounts.iter().find(|a| a.id == p.account_id && a.platform == p.platform) else {
            return Err(error(StatusCode::FORBIDDEN, "One or more accounts do not belong to the authenticated user"));
        };
        if !account.usable() {
            let name = account.display_name.clone().or(account.username.clone()).unwrap_or_default();
            return Err(error_with(
                StatusCode::FORBIDDEN,
                json!({"error": format!("Account {} ({} \"{name}\") is disconnected and cannot be posted to. Reconnect it first.", account.id, account.platform),
                       "code": "ACCOUNT_DISCONNECTED", "platform": account.platform}),
            ));
        }
    }
    let day_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(24);
    let duplicate = world.posts.values().find(|post| {
        post.content == content
            && time::OffsetDateTime::parse(&post.created_at, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| t > day_ago)
            && post.platforms.iter().any(|pp| new.platforms.iter().any(|np| np.account_id == pp.account_id))
    });
    if let Some(existing) = duplicate {
        return Err(error_with(
            StatusCode::CONFLICT,
            json!({"error": "This content was already posted to this account within the last 24 hours",
                   "code": "DUPLICATE_CONTENT", "details": {"existingPostId": existing.id}}),
        ));
    }
    let id = world.object_id();
    let now = now_rfc3339();
    let platforms = new
        .platforms
        .iter()
        .map(|p| {
            let outcome = if publish_now {
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
    let mut post = Post {
        id: id.clone(),
        content,
        status: if publish_now { "publishing".into() } else { "scheduled".into() },
        scheduled_for: new.scheduled_for,
        published_at: None,
        platforms,
        metadata: new.metadata,
        media_items: new.media_items,
        created_at: now,
    };
    post.derive_status();
    if post.status == "published" || post.status == "partial" {
        post.published_at = Some(post.created_at.clone());
    }
    world.posts.insert(id.clone(), post.clone());
    world.posts_created += 1;
    if let Some(r) = request_id {
        world.request_ids.insert(r, id);
    }
    Ok(post)
}

async fn create_post(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Option<Json<NewPost>>) -> Response {
    let post = match create(&shared, &headers, body) {
        Ok(post) => post,
        Err(answer) => return answer,
    };
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
    (StatusCode::CREATED, Json(json!({"message": "Post created", "post": post}))).into_response()
}

async fn get_post(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world.lock().expect("simulator state");
    match world.posts.get(&id) {
        Some(post) => Json(json!({ "post": post })).into_response(),
        None => error(StatusCode::NOT_FOUND, "Not found"),
    }
}

async fn webhook_settings(State(shared): State<Arc<Shared>>, body: Option<Json<WebhookSettings>>) -> Response {
    let Some(Json(settings)) = body else { return error(StatusCode::BAD_REQUEST, "url is required") };
    let mut world = shared.world.lock().expect("simulator state");
    world.webhook = Some(settings.clone());
    Json(json!({ "success": true, "webhook": {"name": settings.name, "url": settings.url, "events": settings.events, "isActive": settings.is_active} }))
        .into_response()
}
