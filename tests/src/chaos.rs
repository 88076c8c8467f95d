//! What the chaos and crash-restart tests share: a seeded burst of webhook events (several posts,
//! platforms, generations and accounts), delivered shuffled and duplicated and re-delivered on
//! every non-2xx as the service does; the model the end state must equal; and the end state read
//! back from the store.
//!
//! The model is the pure fold of the events in the order they were made: each post's report
//! joined in, each account event recorded, a repeated id skipped. That the fold is the same for any
//! order and duplication is `convergence.rs`'s property, so whatever order the burst's faults
//! produce, the store must end equal to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::zernio::webhook::parse_event;
use shared::domain::connection::ConnectionRecord;
use shared::domain::event::Action;
use shared::domain::{Connection, Platform, PostId, PostState, ProfileId, ProjectId};

pub const WIRE_PLATFORMS: [&str; 4] = ["twitter", "linkedin", "instagram", "facebook"];

/// Posts and connections of one project.
#[derive(Debug, Default, PartialEq)]
pub struct World {
    pub posts: BTreeMap<String, PostState>,
    pub connections: BTreeMap<Platform, Connection>,
}

impl World {
    /// The entries that differ, for a failure message that can be read.
    pub fn differences(&self, other: &World) -> Vec<String> {
        let mut out = Vec::new();
        let posts: BTreeSet<&String> = self.posts.keys().chain(other.posts.keys()).collect();
        for post in posts {
            if self.posts.get(post) != other.posts.get(post) {
                out.push(format!("post {post}: {:?} != {:?}", self.posts.get(post), other.posts.get(post)));
            }
        }
        for platform in Platform::ALL {
            if self.connections.get(&platform) != other.connections.get(&platform) {
                out.push(format!(
                    "connection {platform:?}: {:?} != {:?}",
                    self.connections.get(&platform),
                    other.connections.get(&platform)
                ));
            }
        }
        out
    }
}

/// A burst: the events as they were made, and the deliveries (each event once or more, shuffled).
pub struct Burst {
    pub project: String,
    pub profile: String,
    pub posts: Vec<String>,
    pub events: Vec<Value>,
    pub deliveries: Vec<Value>,
}

impl Burst {
    /// `events` events about `posts` posts of the project and the profile's accounts; every event
    /// delivered 1 to 3 times, all shuffled.
    pub fn new(seed: u64, project: &str, profile: &str, posts: usize, events: usize) -> Burst {
        let mut rng = StdRng::seed_from_u64(seed);
        let post_ids: Vec<String> = (0..posts).map(|n| format!("post_{n}")).collect();
        let made: Vec<Value> = (0..events)
            .map(|n| {
                let mut event = match rng.random_range(0..5) {
                    0 | 1 => account_event(&mut rng, profile),
                    _ => post_event(&mut rng, project, &post_ids),
                };
                event["id"] = json!(format!("evt_{seed}_{n}"));
                event
            })
            .collect();
        let mut deliveries = Vec::new();
        for event in &made {
            for _ in 0..rng.random_range(1..=3) {
                deliveries.push(event.clone());
            }
        }
        deliveries.shuffle(&mut rng);
        Burst { project: project.into(), profile: profile.into(), posts: post_ids, events: made, deliveries }
    }

    /// The end state the rules give for these events, whatever the order and the copies.
    pub fn model(&self) -> World {
        let received_at = crate::now();
        let mut world = World::default();
        let mut records: BTreeMap<Platform, ConnectionRecord> = BTreeMap::new();
        let mut taken = BTreeSet::new();
        for body in &self.events {
            let event = parse_event(body.to_string().as_bytes(), received_at).expect("a made event parses");
            if !taken.insert(event.id.clone()) {
                continue;
            }
            match event.action {
                Action::Post { post, report, .. } => {
                    let stored = world.posts.entry(post.to_string()).or_default();
                    if let Ok(state) = report.to_state(Some(stored)) {
                        *stored = stored.join(&state);
                    }
                }
                Action::Account { news, .. } => {
                    let record = records.entry(news.platform()).or_default();
                    *record = record.with(&news);
                    if let Some(shown) = record.shown() {
                        world.connections.insert(news.platform(), shown);
                    }
                }
                Action::Ignore(_) => {}
            }
        }
        world
    }

    /// What the store holds for the burst's posts and the profile's connections.
    pub async fn stored(&self, store: &DynamoStore) -> World {
        let project = ProjectId::parse(&self.project).expect("project id");
        let profile = ProfileId::parse(&self.profile).expect("profile id");
        let mut world = World::default();
        for post in &self.posts {
            if let Some(item) =
                store.get_post(&project, &PostId::parse(post).expect("post id")).await.expect("read post")
            {
                world.posts.insert(post.clone(), item.state);
            }
        }
        for platform in Platform::ALL {
            if let Some(item) = store.get_connection(&profile, platform).await.expect("read connection") {
                world.connections.insert(platform, item.connection);
            }
        }
        world
    }
}

/// The ids of the events the store has taken (their `EVENT#` items).
pub async fn taken_events(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> BTreeSet<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut taken = BTreeSet::new();
    let mut start = None;
    loop {
        let out = dynamodb
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :event)")
            .expression_attribute_values(":event", AttributeValue::S("EVENT#".into()))
            .projection_expression("pk")
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in out.items.unwrap_or_default() {
            if let Some(id) = item.get("pk").and_then(|v| v.as_s().ok()).and_then(|pk| pk.strip_prefix("EVENT#")) {
                taken.insert(id.to_owned());
            }
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return taken;
        }
    }
}

impl Burst {
    /// The burst's events the store has not taken: each was acknowledged (the deliveries only
    /// stop at a 2xx), so each must be there once the queue has drained.
    pub async fn missing(&self, dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
        let taken = taken_events(dynamodb, table).await;
        let ids = self.events.iter().filter_map(|e| e["id"].as_str());
        ids.filter(|id| !taken.contains(*id)).map(str::to_owned).collect()
    }
}

fn post_event(rng: &mut StdRng, project: &str, posts: &[String]) -> Value {
    let kinds = ["post.scheduled", "post.published", "post.failed", "post.partial", "post.cancelled"];
    let kind = rng.random_range(0..kinds.len());
    let post = &posts[rng.random_range(0..posts.len())];
    let generation = rng.random_range(1..=3u32);
    let mut platforms = Vec::new();
    for (p, wire) in WIRE_PLATFORMS.iter().enumerate() {
        // Each platform half the time; the last one when none was picked.
        let last_chance = p == WIRE_PLATFORMS.len() - 1 && platforms.is_empty();
        if !(rng.random_bool(0.5) || last_chance) {
            continue;
        }
        let status = match (kind, rng.random_range(0..3)) {
            (0 | 4, _) => "pending",
            (1, _) | (3, 0) => "published",
            (2, _) | (3, 1) => "failed",
            _ => "publishing",
        };
        platforms.push(json!({"platform": wire, "status": status, "accountId": format!("acc{p}"),
            "publishedUrl": (status == "published").then(|| format!("https://p/{post}/{generation}/{p}")),
            "publishedAt": (status == "published").then(|| format!("2026-11-28T10:0{p}:00Z")),
            "error": (status == "failed").then_some("Rate limit exceeded")}));
    }
    json!({"event": kinds[kind], "timestamp": crate::recent("2026-11-28T10:00:00Z"),
           "post": {"id": format!("svc_{post}_{generation}"), "status": if kind == 4 { "cancelled" } else { "x" },
                    "scheduledFor": (kind == 0).then_some("2030-01-01T00:00:00Z"),
                    "platforms": platforms,
                    "metadata": {"stacc_project_id": project, "stacc_post_id": post, "stacc_generation": generation}}})
}

fn account_event(rng: &mut StdRng, profile: &str) -> Value {
    let connected = rng.random_bool(0.5);
    let p = rng.random_range(0..WIRE_PLATFORMS.len());
    let account = rng.random_range(0..2);
    let mut body = json!({"accountId": format!("acc{p}_{account}"), "profileId": profile,
                          "platform": WIRE_PLATFORMS[p], "username": format!("user{account}")});
    if !connected {
        body["disconnectionType"] = json!(if rng.random_bool(0.5) { "intentional" } else { "unintentional" });
    }
    json!({"event": if connected { "account.connected" } else { "account.disconnected" },
           "timestamp": crate::recent(&format!("2026-11-28T10:{:02}:{:02}Z", rng.random_range(0..60), rng.random_range(0..60))),
           "account": body})
}

/// What the deliveries met.
#[derive(Debug, Default)]
pub struct Delivered {
    pub deliveries: AtomicU64,
    pub attempts: AtomicU64,
    /// Answers the service would re-deliver after: non-2xx, or no answer at all.
    pub refused: AtomicU64,
    pub unanswered: AtomicU64,
    pub queued: AtomicU64,
    pub duplicates: AtomicU64,
}

impl Delivered {
    pub fn to_json(&self) -> Value {
        let n = |a: &AtomicU64| a.load(Ordering::SeqCst);
        json!({"deliveries": n(&self.deliveries), "attempts": n(&self.attempts), "non_2xx": n(&self.refused),
               "no_answer": n(&self.unanswered), "queued": n(&self.queued), "duplicates": n(&self.duplicates)})
    }
}

/// Delivers every body as the service does: signed, `lanes` at a time, each one again after any
/// non-2xx answer or none, until it is acknowledged or `patience` has passed (then it panics: an
/// event the receiver never took).
pub async fn deliver_all(
    webhook_url: &str,
    secret: &str,
    deliveries: &[Value],
    lanes: usize,
    patience: Duration,
) -> Arc<Delivered> {
    let counts = Arc::new(Delivered::default());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(6)).build().expect("http client");
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..lanes {
        let bodies: Vec<Vec<u8>> =
            deliveries.iter().skip(lane).step_by(lanes).map(|b| b.to_string().into_bytes()).collect();
        let (http, counts, url, secret) = (http.clone(), counts.clone(), webhook_url.to_owned(), secret.to_owned());
        tasks.spawn(async move {
            for body in bodies {
                deliver_one(&http, &url, &secret, body, &counts, patience).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a delivery lane");
    }
    counts
}

async fn deliver_one(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
    counts: &Delivered,
    patience: Duration,
) {
    counts.deliveries.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let signature = shared::signature::sign(secret, &body);
    for attempt in 0u64.. {
        counts.attempts.fetch_add(1, Ordering::SeqCst);
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .header("x-zernio-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let answer: Value = response.json().await.unwrap_or_default();
                match answer["status"].as_str() {
                    Some("queued") => counts.queued.fetch_add(1, Ordering::SeqCst),
                    Some("duplicate") => counts.duplicates.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
                return;
            }
            Ok(_) => counts.refused.fetch_add(1, Ordering::SeqCst),
            Err(_) => counts.unanswered.fetch_add(1, Ordering::SeqCst),
        };
        assert!(
            started.elapsed() < patience,
            "a delivery was never acknowledged in {patience:?}: {}",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis((25 * (attempt + 1)).min(400))).await;
    }
}

/// `CHAOS_SEED` when set (to replay a run), else one from the clock.
pub fn seed() -> u64 {
    std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_millis() as u64)
    })
}

/// Once the faults stop: waits for the retry queue to drain, moves anything dead-lettered back
/// and waits again (panics if either wait runs out); returns how many were dead-lettered.
pub async fn drain_and_redrive(sqs: &aws_sdk_sqs::Client, retry_url: &str, dead_letter_url: &str) -> u64 {
    assert!(drained(sqs, retry_url, Duration::from_secs(60)).await, "the retry queue drains");
    let dead = depth(sqs, dead_letter_url).await;
    if dead > 0 {
        shared::adapters::sqs::redrive(sqs, dead_letter_url, retry_url, 10_000).await.expect("redrive");
        assert!(drained(sqs, retry_url, Duration::from_secs(60)).await, "redriven, applied");
    }
    assert_eq!(depth(sqs, dead_letter_url).await, 0, "nothing left dead");
    dead
}

/// Waits until nothing is waiting or in flight in the queue; false if `patience` ran out.
pub async fn drained(stack_sqs: &aws_sdk_sqs::Client, url: &str, patience: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < patience {
        if depth(stack_sqs, url).await == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Messages waiting in a queue (visible or in flight), as SQS counts them.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: A| attrs.get(&a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible)
}
