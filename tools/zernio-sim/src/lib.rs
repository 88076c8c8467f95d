//! A simulator of the publishing service (Zernio, formerly Late), built from
//! `publisher-zernio.md`: the API on one port, a control API for tests on another.

pub mod api;
pub mod control;
pub mod model;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use control::{Delivery, Emit, PostChange, SignatureHeader};
pub use model::{Account, Behaviour, Fault, FaultMode, Health, Post, PublishOutcome};

use crate::model::{World, now_rfc3339};

pub struct Shared {
    world: Mutex<World>,
    /// The API key the service accepts; changed when a key is rotated on its side.
    api_key: Mutex<String>,
    /// Where the hosted OAuth pages live (the control port).
    public_url: String,
    down: Arc<AtomicBool>,
    http: reqwest::Client,
}

/// Lowercase hex HMAC-SHA256 of the body, as the service signs webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rotates the key the service accepts: calls with any other key get 401.
    pub fn set_api_key(&self, key: &str) {
        *self.api_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = key.to_owned();
    }

    pub fn api_key(&self) -> String {
        self.api_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn reset(&self) {
        let webhook = self.world().webhook.clone();
        *self.world() = World { webhook, ..World::default() };
        self.down.store(false, Ordering::SeqCst);
    }

    pub fn delete_profile(&self, id: &str) {
        let mut world = self.world();
        world.profiles.remove(id);
        world.accounts.retain(|a| a.profile_id != id);
    }

    pub fn set_accounts(&self, profile: &str, accounts: Vec<Account>) {
        let mut world = self.world();
        world.accounts.retain(|a| a.profile_id != profile);
        world.accounts.extend(accounts);
    }

    pub fn set_fault(&self, fault: Fault) {
        self.down.store(fault.mode == FaultMode::Down, Ordering::SeqCst);
        self.world().fault = fault;
    }

    pub fn stats(&self) -> Value {
        let world = self.world();
        json!({"calls": world.calls, "posts_created": world.posts_created,
               "duplicate_publications": world.duplicate_publications, "total_calls": world.calls.values().sum::<u64>(),
               "most_calls_in_any_minute": world.most_calls_in_any_minute()})
    }

    /// When each call reached the API (Unix ms), in order.
    pub fn call_times(&self) -> Vec<i64> {
        self.world().call_times.clone()
    }

    pub fn change_post(&self, id: &str, change: &PostChange) -> Option<Post> {
        let mut world = self.world();
        let post = world.posts.get_mut(id)?;
        for update in &change.platforms {
            let platform = update.get("platform").and_then(Value::as_str).unwrap_or_default();
            if let Some(entry) = post.platforms.iter_mut().find(|p| p.platform == platform) {
                let mut merged = serde_json::to_value(&*entry).ok()?;
                if let (Some(m), Some(u)) = (merged.as_object_mut(), update.as_object()) {
                    m.extend(u.clone());
                }
                *entry = serde_json::from_value(merged).ok()?;
            }
        }
        match &change.status {
            Some(status) => post.status = status.clone(),
            None => post.derive_status(),
        }
        if post.published_at.is_none() && post.platforms.iter().any(|p| p.status == "published") {
            post.published_at = Some(now_rfc3339());
        }
        Some(post.clone())
    }

    pub fn delete_post(&self, id: &str) {
        let mut world = self.world();
        if world.posts.remove(id).is_some() {
            world.deleted_posts.push(id.to_owned());
        }
    }

    /// Publishes (or fails) the named platforms of a post and notifies the registered webhook.
    pub fn settle_post(
        self: &Arc<Self>,
        id: &str,
        outcomes: &std::collections::HashMap<String, PublishOutcome>,
    ) -> Option<Post> {
        let post = {
            let mut world = self.world();
            let now = now_rfc3339();
            let categories = world.failure_categories.clone();
            let post = world.posts.get_mut(id)?;
            for entry in &mut post.platforms {
                if let Some(outcome) = outcomes.get(&entry.platform) {
                    control::settle(entry, *outcome, id, &now, categories.get(&entry.platform).map(String::as_str));
                }
            }
            post.derive_status();
            if post.published_at.is_none() && post.platforms.iter().any(|p| p.status == "published") {
                post.published_at = Some(now);
            }
            post.clone()
        };
        let event = match post.status.as_str() {
            "published" => "post.published",
            "failed" => "post.failed",
            "partial" => "post.partial",
            _ => "post.scheduled",
        };
        self.notify(event, json!({ "post": post.webhook_shape() }));
        Some(post)
    }

    /// Finishes a hosted OAuth flow: the account joins the profile, `account.connected` fires.
    pub fn complete_connect(self: &Arc<Self>, request: &control::CompleteConnect) -> Option<Account> {
        let account = {
            let mut world = self.world();
            let (profile, platform, reconnect) = world.connect_states.remove(&request.state)?;
            // `reconnectAccountId` refreshes that account; without it the service adds a new
            // account beside any it holds (an expired one stays, still expired).
            let reconnected = reconnect.filter(|r| {
                world.accounts.iter().any(|a| a.id == *r && a.profile_id == profile && a.platform == platform)
            });
            let id = reconnected.clone().or(request.account_id.clone()).unwrap_or_else(|| world.object_id());
            match &reconnected {
                Some(r) => world.accounts.retain(|a| a.id != *r),
                None => world.accounts.retain(|a| !(a.profile_id == profile && a.platform == platform && a.usable())),
            }
            world.accounts.retain(|a| a.id != id);
            let account = Account {
                id: id.clone(),
                platform: platform.clone(),
                profile_id: profile,
                username: Some(request.username.clone().unwrap_or_else(|| format!("{platform}_user"))),
                display_name: Some(request.display_name.clone().unwrap_or_else(|| format!("My {platform} account"))),
                profile_picture: Some(format!("https://cdn.example/{id}.png")),
                profile_url: Some(format!("https://{platform}.example/{id}")),
                is_active: true,
                needs_reconnection: None,
                enabled: None,
                over_limit: false,
            };
            world.health.remove(&id);
            world.accounts.push(account.clone());
            account
        };
        self.notify("account.connected", account_payload(&account, None));
        Some(account)
    }

    /// The body of a post event, built from the post as the service holds it.
    pub fn post_event(&self, event: &str, post_id: &str) -> Option<Value> {
        let mut world = self.world();
        let post = world.posts.get(post_id)?.webhook_shape();
        Some(envelope(&mut world, event, json!({ "post": post })))
    }

    /// The body of an account event for an account the service holds.
    pub fn account_event(&self, event: &str, account_id: &str, disconnection_type: Option<&str>) -> Option<Value> {
        let mut world = self.world();
        let account = world.accounts.iter().find(|a| a.id == account_id)?.clone();
        Some(envelope(&mut world, event, account_payload(&account, disconnection_type)))
    }

    /// Sends the registered webhook an event and waits for its answer.
    pub async fn notify_and_wait(&self, event: &str, payload: Value) {
        if let Some((subscription, body)) = self.to_deliver(event, payload, false) {
            self.deliver_logged(&subscription, &body).await;
        }
    }

    /// Sends the registered webhook an event, as the service does on its own (fire and forget).
    pub fn notify(self: &Arc<Self>, event: &str, payload: Value) {
        let Some((subscription, body)) = self.to_deliver(event, payload, true) else { return };
        let shared = self.clone();
        tokio::spawn(async move {
            shared.deliver_logged(&subscription, &body).await;
        });
    }

    /// The active subscription and the event's body, when the subscription takes this event.
    fn to_deliver(&self, event: &str, payload: Value, filtered: bool) -> Option<(model::Subscription, Value)> {
        let mut world = self.world();
        let subscription = world.webhook.clone().filter(|w| w.settings.is_active)?;
        let events = &subscription.settings.events;
        if filtered && !events.is_empty() && !events.iter().any(|e| e == event) {
            return None;
        }
        let body = envelope(&mut world, event, payload);
        Some((subscription, body))
    }

    /// One delivery to the subscription, logged (with its exact bytes) and counted towards the
    /// switch-off rule.
    async fn deliver_logged(&self, subscription: &model::Subscription, body: &Value) -> Option<Delivery> {
        let bytes = serde_json::to_vec(body).ok()?;
        self.deliver_bytes(subscription, bytes).await
    }

    /// Sends these bytes, signed with the subscription's secret, and logs the attempt.
    pub(crate) async fn deliver_bytes(&self, subscription: &model::Subscription, bytes: Vec<u8>) -> Option<Delivery> {
        let secret = subscription.settings.secret.clone().unwrap_or_default();
        let url = subscription.settings.url.clone();
        let sent = deliver_raw(&self.http, &url, &secret, &bytes, SignatureHeader::Zernio).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (ok, status_code, error) = match &sent {
            Ok(d) => ((200..300).contains(&d.status), Some(d.status), None),
            Err(e) => (false, None, Some(e.clone())),
        };
        let mut world = self.world();
        let behaviour = world.behaviour.clone();
        if let Some(current) = world.webhook.as_mut().filter(|w| w.id == subscription.id) {
            current.record(ok, &behaviour);
        }
        world.webhook_logs.push(model::DeliveryLog {
            webhook_id: subscription.id.clone(),
            event_id: body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
            event: body.get("event").and_then(Value::as_str).unwrap_or_default().to_owned(),
            url,
            ok,
            status_code,
            error,
            body: bytes,
            created_at: now_rfc3339(),
        });
        sent.ok()
    }

    /// Delivers events as asked: shorthands expanded, copies, order, concurrency.
    pub async fn emit(&self, request: Emit) -> Result<Vec<Delivery>, String> {
        let registered = self.world().webhook.clone().map(|w| w.settings);
        let url =
            request.url.or(registered.as_ref().map(|w| w.url.clone())).ok_or("no url and no registered webhook")?;
        let secret = request.secret.or(registered.and_then(|w| w.secret)).unwrap_or_default();
        let mut bodies = Vec::new();
        for event in &request.events {
            bodies.push(self.expand(event)?);
        }
        if request.reverse {
            bodies.reverse();
        }
        let copies = request.copies.max(1) as usize;
        let sends: Vec<Value> = bodies.iter().flat_map(|b| std::iter::repeat_n(b.clone(), copies)).collect();
        if request.concurrent {
            let tasks: Vec<_> = sends
                .into_iter()
                .map(|body| {
                    let (http, url, secret) = (self.http.clone(), url.clone(), secret.clone());
                    tokio::spawn(async move { deliver(&http, &url, &secret, &body, request.header).await })
                })
                .collect();
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.map_err(|e| e.to_string())??);
            }
            Ok(out)
        } else {
            let mut out = Vec::new();
            for body in sends {
                out.push(deliver(&self.http, &url, &secret, &body, request.header).await?);
            }
            Ok(out)
        }
    }

    fn expand(&self, event: &Value) -> Result<Value, String> {
        let name = event.get("event").and_then(Value::as_str).ok_or("every event needs an \"event\" name")?;
        if let Some(post_id) = event.get("post_id").and_then(Value::as_str) {
            return self.post_event(name, post_id).ok_or_else(|| format!("no post {post_id}"));
        }
        if let Some(account_id) = event.get("account_id").and_then(Value::as_str) {
            let kind = event.get("disconnection_type").and_then(Value::as_str);
            return self.account_event(name, account_id, kind).ok_or_else(|| format!("no account {account_id}"));
        }
        Ok(event.clone())
    }
}

fn account_payload(account: &Account, disconnection_type: Option<&str>) -> Value {
    let mut body = json!({
        "accountId": account.id, "profileId": account.profile_id, "platform": account.platform,
        "username": account.username, "displayName": account.display_name,
    });
    if let Some(kind) = disconnection_type {
        body["disconnectionType"] = json!(kind);
        body["reason"] = json!(if kind == "intentional" { "Disconnected by user" } else { "Token expired" });
    }
    json!({ "account": body })
}

fn envelope(world: &mut World, event: &str, payload: Value) -> Value {
    let mut body = json!({ "id": format!("evt_{}", world.object_id()), "event": event, "timestamp": now_rfc3339() });
    if let (Some(b), Some(p)) = (body.as_object_mut(), payload.as_object()) {
        b.extend(p.clone());
    }
    body
}

/// One signed delivery.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &Value,
    header: SignatureHeader,
) -> Result<Delivery, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    deliver_raw(http, url, secret, &bytes, header).await
}

/// One signed delivery of these exact bytes.
pub async fn deliver_raw(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    bytes: &[u8],
    header: SignatureHeader,
) -> Result<Delivery, String> {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let event_id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let event_name = body.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = match header {
        SignatureHeader::Zernio => "x-zernio-signature",
        SignatureHeader::Late => "x-late-signature",
    };
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header(name, sign(secret, bytes))
        .header("x-zernio-event-id", &event_id)
        .header("x-zernio-event", &event_name)
        .body(bytes.to_vec())
        .send()
        .await
        .map_err(|e| format!("delivery to {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok(Delivery { event_id, status, body })
}

/// Accepts connections, but closes them unanswered while the service is "down".
struct Gate {
    listener: TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for Gate {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) if self.down.load(Ordering::SeqCst) => drop(stream),
                Ok(accepted) => return accepted,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub api_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub api_key: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_addr: "127.0.0.1:0".parse().expect("loopback"),
            control_addr: "127.0.0.1:0".parse().expect("loopback"),
            api_key: "sk_local".into(),
        }
    }
}

/// A running simulator.
pub struct Simulator {
    pub shared: Arc<Shared>,
    pub api_addr: SocketAddr,
    pub control_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let api = TcpListener::bind(config.api_addr).await?;
        let control = TcpListener::bind(config.control_addr).await?;
        let (api_addr, control_addr) = (api.local_addr()?, control.local_addr()?);
        let down = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            api_key: Mutex::new(config.api_key),
            public_url: format!("http://{control_addr}"),
            down: down.clone(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(std::io::Error::other)?,
        });
        let (stop, stopped) = watch::channel(false);
        let serve = |listener, router: axum::Router, mut stopped: watch::Receiver<bool>| {
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.changed().await;
                };
                let _ = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
            })
        };
        let api_router = api::router(shared.clone());
        let control_router = control::router(shared.clone()).merge(oauth_router(shared.clone()));
        let tasks = vec![
            tokio::spawn({
                let mut stopped = stopped.clone();
                async move {
                    let shutdown = async move {
                        let _ = stopped.changed().await;
                    };
                    let _ =
                        axum::serve(Gate { listener: api, down }, api_router).with_graceful_shutdown(shutdown).await;
                }
            }),
            serve(control, control_router, stopped),
        ];
        Ok(Simulator { shared, api_addr, control_addr, stop, tasks })
    }

    /// The base URL the backend is given (`PUBLISHER_BASE_URL`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.api_addr)
    }

    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The hosted OAuth page: opening the link completes the connection, as a user would.
fn oauth_router(shared: Arc<Shared>) -> axum::Router {
    use axum::extract::{Query, State};
    use axum::routing::get;
    #[derive(serde::Deserialize)]
    struct OAuth {
        state: String,
    }
    axum::Router::new()
        .route(
            "/oauth/{platform}",
            get(|State(s): State<Arc<Shared>>, Query(q): Query<OAuth>| async move {
                let request =
                    control::CompleteConnect { state: q.state, account_id: None, username: None, display_name: None };
                match s.complete_connect(&request) {
                    Some(a) => format!("Connected {} account {} to profile {}.", a.platform, a.id, a.profile_id),
                    None => "This link has expired.".to_owned(),
                }
            }),
        )
        .with_state(shared)
}
