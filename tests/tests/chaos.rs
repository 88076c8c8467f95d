//! Chaos: a burst of shuffled, duplicated webhook deliveries and app calls (publish, Sync, manual
//! delete, Refresh) through the dev gateway while a fault proxy makes DynamoDB throttle, fail,
//! cancel transactions, lose answers and time out, and the simulator is now and then slow or
//! failing; every non-2xx delivery is delivered again, as the service does; and a third project is
//! erased meanwhile. Then the faults stop, the retry queue drains (dead letters redriven), and the
//! end state is compared with the model.
//!
//! `make chaos` runs it alone and prints the report; `CHAOS_SEED` replays a run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_proxy::Faults;
use integration_tests::chaos::{self, Burst};
use integration_tests::{SECRET, Stack, StackOptions, live_account};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::{ProfileId, ProjectId};
use shared::ports::ConnectionStore;
use tokio::sync::Mutex;
use zernio_sim::{Fault, FaultMode};

const WEBHOOK_PROJECT: &str = "proj_w";
const WEBHOOK_PROFILE: &str = "65aa0000000000000000000w";
const APP_PROJECT: &str = "proj_a";
const APP_PROFILE: &str = "65aa0000000000000000000a";
const APP_PLATFORMS: [&str; 3] = ["x", "linkedin", "facebook"];
const ERASED_PROJECT: &str = "proj_e";
const ERASED_PROFILE: &str = "65aa0000000000000000000e";

/// What one app post went through.
#[derive(Debug, Default, Clone)]
struct AppPost {
    platforms: Vec<&'static str>,
    /// Per platform, the answer to each manual delete.
    deletes: BTreeMap<&'static str, Vec<u16>>,
}

#[derive(Debug, Default)]
struct AppCalls {
    answers: BTreeMap<String, BTreeMap<u16, u64>>,
    posts: BTreeMap<String, AppPost>,
}

impl AppCalls {
    fn count(&mut self, route: &str, status: u16) {
        *self.answers.entry(route.to_owned()).or_default().entry(status).or_default() += 1;
    }
}

async fn call(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = stack.token(APP_PROJECT);
    let mut request = stack.http.request(method, format!("{}/projects/{APP_PROJECT}{path}", stack.gateway.url()));
    request = request.bearer_auth(token).timeout(Duration::from_secs(35));
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or_default())
        }
        Err(_) => (0, Value::Null),
    }
}

/// One app post's life under faults: published (again after each 503 or 429, as a user would),
/// synced, maybe removed by hand (retried until done, or tried once), now and then a Refresh.
async fn app_post(stack: Arc<Stack>, n: usize, seed: u64, calls: Arc<Mutex<AppCalls>>) {
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64 + 1));
    let post = format!("app_{n}");
    let platforms: Vec<&'static str> = APP_PLATFORMS.iter().copied().filter(|_| rng.random_bool(0.7)).collect();
    let platforms = if platforms.is_empty() { vec!["x"] } else { platforms };
    let body = json!({"post_id": post, "content": format!("Chaos post {n} of {seed}"), "platforms": platforms});
    let started = Instant::now();
    loop {
        let (status, answer) = call(&stack, Method::POST, "/posts", Some(body.clone())).await;
        calls.lock().await.count("publish", status);
        let already = status == 409 && answer["error"]["code"] == "already_published";
        if status == 201 || status == 202 || already {
            break;
        }
        assert!(matches!(status, 0 | 429 | 503), "publish answered {status}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(90), "publish of {post} never went through");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A publish that went on without the app (202) is finished by its follow-up: wait for it, as
    // the app would, before the user acts on the copies.
    loop {
        let (status, read) = call(&stack, Method::GET, &format!("/posts/{post}"), None).await;
        if status == 200 && read["status"] != "publishing" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(150), "publish of {post} never finished: {read}");
        // As the app would poll: four lanes of one project stay within its read budget (300 a minute).
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut record = AppPost { platforms: platforms.clone(), ..AppPost::default() };
    for _ in 0..rng.random_range(1..=2) {
        let (status, _) = call(&stack, Method::POST, &format!("/posts/{post}/sync"), None).await;
        calls.lock().await.count("sync", status);
    }
    if n.is_multiple_of(5) {
        let (status, _) = call(&stack, Method::POST, "/connections/refresh", None).await;
        calls.lock().await.count("refresh", status);
    }
    for &platform in &platforms {
        let insist = match rng.random_range(0..4) {
            0 => true,
            1 => false,
            _ => continue,
        };
        let path = format!("/posts/{post}/platforms/{platform}/manual-delete");
        loop {
            let (status, answer) = call(&stack, Method::POST, &path, None).await;
            calls.lock().await.count("manual_delete", status);
            record.deletes.entry(platform).or_default().push(status);
            assert!(matches!(status, 0 | 200 | 429 | 503), "manual delete answered {status}: {answer}");
            if status == 200 || !insist {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    calls.lock().await.posts.insert(post, record);
}

/// The erased project's DELETE, sent a moment into the burst and again after each 503 (as a user
/// would) until it answers 202.
async fn erase(stack: Arc<Stack>, seed: u64, calls: Arc<Mutex<AppCalls>>) {
    tokio::time::sleep(Duration::from_millis(seed % 3_000)).await;
    let token = stack.token(ERASED_PROJECT);
    let url = format!("{}/projects/{ERASED_PROJECT}", stack.gateway.url());
    let started = Instant::now();
    loop {
        let sent = stack.http.delete(&url).bearer_auth(&token).timeout(Duration::from_secs(35)).send().await;
        let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
        calls.lock().await.count("erase", status);
        if status == 202 {
            return;
        }
        assert!(matches!(status, 0 | 503), "erase answered {status}");
        assert!(started.elapsed() < Duration::from_secs(90), "the erasure never began");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The erased project's erasure once it is over (or after `patience`), as its route shows it.
async fn erased(stack: &Stack, patience: Duration) -> Value {
    let token = stack.token(ERASED_PROJECT);
    let url = format!("{}/projects/{ERASED_PROJECT}/erasure", stack.gateway.url());
    let started = Instant::now();
    loop {
        let read: Value = stack.http.get(&url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if read["status"] == "erased" || started.elapsed() > patience {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Now and then the service is slow, fails, or loses an answer to a call it carried out.
async fn troubled_service(stack: Arc<Stack>, seed: u64, until: Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let mut rng = StdRng::seed_from_u64(seed.rotate_left(7));
    let mut set = 0;
    while !until.load(std::sync::atomic::Ordering::SeqCst) {
        let mode = match rng.random_range(0..4) {
            0 => FaultMode::Status { code: 503 },
            1 => FaultMode::Slow { millis: 800 },
            2 => FaultMode::LostAnswer { code: 504 },
            _ => FaultMode::None,
        };
        stack.sim.shared.set_fault(Fault { mode, path_prefix: None, times: Some(rng.random_range(1..=3)) });
        set += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
    }
    stack.sim.shared.set_fault(Fault::default());
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_every_fault_each_acknowledged_event_and_call_ends_as_the_rules_say() {
    let seed = chaos::seed();
    let faults = Faults::parse("throttle:0.06,internal:0.05,conflict:0.06,lost_answer:0.05,timeout:0.02").unwrap();
    let stack =
        Stack::with(StackOptions { poller: true, faults: Some((Faults::none(), seed)), ..Default::default() }).await;
    // GIVEN two projects: one the webhooks speak of, one whose user publishes
    let (project, profile) = (ProjectId::parse(WEBHOOK_PROJECT).unwrap(), ProfileId::parse(WEBHOOK_PROFILE).unwrap());
    stack.store.link_profile(&project, &profile).await.unwrap();
    let accounts =
        json!([live_account("x1", "twitter"), live_account("li1", "linkedin"), live_account("fb1", "facebook")]);
    stack.given_connected(APP_PROJECT, APP_PROFILE, accounts).await;
    // AND a third with two accounts and 120 posts with their history, erased during the burst
    let accounts = json!([live_account("xe", "twitter"), live_account("lie", "linkedin")]);
    stack.given_connected(ERASED_PROJECT, ERASED_PROFILE, accounts).await;
    integration_tests::seed_posts(&stack, ERASED_PROJECT, 120).await;
    let erased_items = stack.items_of(ERASED_PROJECT, ERASED_PROFILE).await.len() as u64;
    let stack = Arc::new(stack);
    let burst = Burst::new(seed, WEBHOOK_PROJECT, WEBHOOK_PROFILE, 30, 1100);

    // WHEN the burst runs with DynamoDB and the service in trouble
    stack.faults.as_ref().unwrap().set_faults(faults);
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trouble = tokio::spawn(troubled_service(stack.clone(), seed, stop.clone()));
    let calls = Arc::new(Mutex::new(AppCalls::default()));
    let mut app = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let (stack, calls) = (stack.clone(), calls.clone());
        app.spawn(async move {
            for n in (lane..20).step_by(4) {
                app_post(stack.clone(), n, seed, calls.clone()).await;
            }
        });
    }
    let erasing = tokio::spawn(erase(stack.clone(), seed, calls.clone()));
    let delivered =
        chaos::deliver_all(&stack.webhook_url(), SECRET, &burst.deliveries, 12, Duration::from_secs(90)).await;
    while let Some(done) = app.join_next().await {
        done.expect("an app lane");
    }
    erasing.await.expect("the erasure's DELETE");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let service_faults = trouble.await.unwrap();
    let burst_took = started.elapsed();

    // THEN once the faults stop, the retry queue drains (dead letters redriven once)
    let injected = stack.faults.as_ref().map(|p| p.stats());
    if let Some(proxy) = &stack.faults {
        proxy.set_faults(Faults::none());
    }
    let dead_lettered =
        chaos::drain_and_redrive(&stack.sqs, &stack.queues.retry_url, &stack.queues.dead_letter_url).await;

    // (an erasure's step waiting on the service is queued with a delay SQS does not count)
    let erasure = erased(&stack, Duration::from_secs(240)).await;

    // AND the webhook project equals the model of every event
    let (expected, got) = (burst.model(), burst.stored(&stack.store).await);
    let differences = expected.differences(&got);
    let missing = burst.missing(&stack.dynamodb, &stack.table).await;

    // AND every app post is on the service once, each copy removed exactly when a manual delete
    // said 200 and live otherwise; the project's connections are untouched
    let calls = calls.lock().await;
    let created = stack.sim.shared.stats()["posts_created"].as_u64().unwrap();
    let mut app_wrong = Vec::new();
    for (post, record) in &calls.posts {
        let (status, read) = call(&stack, Method::GET, &format!("/posts/{post}"), None).await;
        assert_eq!(status, 200, "{post}: {read}");
        for platform in &record.platforms {
            let entry = read["platforms"].as_array().unwrap().iter().find(|p| p["platform"] == *platform);
            let shown = entry.and_then(|e| e["status"].as_str()).unwrap_or("missing");
            let removed = record.deletes.get(platform).is_some_and(|answers| answers.contains(&200));
            let want = if removed { "removed" } else { "published" };
            if shown != want {
                app_wrong.push(format!("{post} {platform}: {shown}, want {want} (deletes {:?})", record.deletes));
            }
        }
    }
    let (_, listed) = call(&stack, Method::GET, "/connections", None).await;
    let mut connected: Vec<&str> = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "connected")
        .filter_map(|c| c["platform"].as_str())
        .collect();

    // AND the erased project ends as an erasure without faults: erased, every account and item
    // counted once, nothing of it left on the service or in the table but its seal
    let erased_left = stack.items_of(ERASED_PROJECT, ERASED_PROFILE).await;
    let erased_on_service = {
        let world = stack.sim.shared.world();
        world.accounts.iter().any(|a| a.id == "xe" || a.id == "lie") || world.profiles.contains_key(ERASED_PROFILE)
    };

    let report = json!({
        "seed": seed,
        "burst_seconds": burst_took.as_secs_f64(),
        "webhooks": delivered.to_json(),
        "dynamodb": injected.as_ref().map(|s| s.to_json()),
        "service_faults_set": service_faults,
        "app_calls": calls.answers,
        "dead_lettered_then_redriven": dead_lettered,
        "erasure": erasure,
        "model": {"posts": expected.posts.len(), "connections": expected.connections.len(),
                  "differences": differences.len(), "events_missing": missing.len(),
                  "app_posts_wrong": app_wrong.len()},
    });
    println!("chaos report: {}", serde_json::to_string_pretty(&report).unwrap());
    let _ = std::fs::create_dir_all(integration_tests::root().join("target"));
    let _ = std::fs::write(integration_tests::root().join("target/chaos-report.json"), report.to_string());

    assert!(missing.is_empty(), "seed {seed}: acknowledged but never taken: {missing:?}");
    assert!(differences.is_empty(), "seed {seed}: the store differs from the model:\n{}", differences.join("\n"));
    assert!(app_wrong.is_empty(), "seed {seed}: app posts differ:\n{}", app_wrong.join("\n"));
    assert_eq!(created, calls.posts.len() as u64, "seed {seed}: one post on the service per app post");
    connected.sort();
    assert_eq!(connected, ["facebook", "linkedin", "x"], "seed {seed}: the app project's connections stay: {listed}");
    integration_tests::assert_erased(&erasure, 2, erased_items, &format!("seed {seed}"));
    assert_eq!(erased_left.len(), 1, "seed {seed}: the seal alone is left");
    assert!(!erased_on_service, "seed {seed}: the service holds none of the erased project's accounts or profile");
    assert!(injected.is_some_and(|s| s.injected.len() == 5), "every fault kind was injected");
}
