//! `make bench`: what one webhook event costs. DynamoDB requests are counted on the wire (a
//! request tap on the real SDK client, against the embedded emulator); CPU time of verify +
//! parse + decide is measured over many iterations of the signed samples.

use std::hint::black_box;
use std::time::Instant;

use integration_tests::{Backend, SECRET, Sample, StoreUnderTest, moto_endpoint};
use shared::adapters::aws::{self, ClientOptions};
use shared::adapters::sqs::SqsRetryQueue;
use shared::adapters::zernio::webhook::parse_event;
use shared::domain::event::Action;
use shared::domain::{PostState, ProfileId, ProjectId};
use shared::handlers::webhook::Webhook;
use shared::ports::ConnectionStore;
use shared::ports::SystemClock;
use shared::signature::WebhookSecrets;

const SAMPLES: [&str; 7] = [
    "webhook-post-scheduled",
    "webhook-post-published",
    "webhook-post-partial",
    "webhook-post-failed",
    "webhook-post-cancelled",
    "webhook-account-connected",
    "webhook-account-disconnected",
];

fn cpu_per_event() {
    let secrets = WebhookSecrets::from_list(SECRET);
    let samples: Vec<(Vec<u8>, String)> = SAMPLES
        .iter()
        .map(|name| {
            let s = Sample::load(name);
            (s.body(), s.header("x-zernio-signature").unwrap_or_default())
        })
        .collect();
    // A stored post and connection to decide against, as the webhook does after its one read.
    let now = integration_tests::now();
    // Each post event is decided against a stored post of its own publication.
    let stored_posts: Vec<PostState> = samples
        .iter()
        .map(|(body, _)| match parse_event(body, now).unwrap().action {
            Action::Post { report, .. } => report.to_state(None).unwrap(),
            _ => PostState::default(),
        })
        .collect();
    let stored_connection: Option<shared::domain::connection::ConnectionRecord> = None;
    let iterations = 20_000;
    println!("\nCPU time of verify + parse + decide, per event ({iterations} iterations each, one core):");
    println!("{:<32} {:>10}", "sample", "µs/event");
    let mut total = 0.0;
    for ((name, (body, signature)), stored_post) in SAMPLES.iter().zip(&samples).zip(&stored_posts) {
        let start = Instant::now();
        for _ in 0..iterations {
            assert!(secrets.verify(black_box(body), black_box(signature)));
            let event = parse_event(black_box(body), now).unwrap();
            match event.action {
                Action::Post { report, .. } => {
                    let fragment: PostState = report.to_state(Some(stored_post)).unwrap();
                    black_box(stored_post.join(&fragment) == *stored_post);
                }
                Action::Account { news, .. } => {
                    black_box(shared::domain::connection::settle(
                        stored_connection.as_ref().map(|r| (r, now)),
                        &news,
                        now,
                    ));
                }
                Action::Ignore(_) => {}
            }
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        total += micros;
        println!("{name:<32} {micros:>10.2}");
    }
    println!("{:<32} {:>10.2}   (target: under 50)", "mean", total / SAMPLES.len() as f64);
}

async fn requests_per_event() {
    let t = StoreUnderTest::start(Backend::Dynoxide).await;
    let project = ProjectId::parse("proj_demo").unwrap();
    t.store.link_profile(&project, &ProfileId::parse("65aa00000000000000000001").unwrap()).await.unwrap();
    let sdk = dev_gateway::local_sdk_config().await;
    let sqs = aws::sqs_client(&sdk, &ClientOptions { endpoint: Some(moto_endpoint()), ..Default::default() });
    let queue_url = sqs.create_queue().queue_name("bench-retry").send().await.unwrap().queue_url.unwrap();
    let webhook = Webhook {
        store: t.store.clone(),
        queue: SqsRetryQueue::new(sqs, queue_url),
        clock: SystemClock,
        secrets: WebhookSecrets::from_list(SECRET).into(),
        parse: shared::wiring::WEBHOOK_FORMAT,
    };
    println!("\nDynamoDB requests per webhook event (counted on the wire):");
    println!("{:<44} {:>8} {:>8}  answer, operations", "case", "requests", "writes");
    let deliver = async |label: &str, name: &str, new_id: Option<&str>| {
        let mut event = Sample::load(name).event;
        if let Some(id) = new_id {
            // The same content under another event id: a new, but older, piece of evidence.
            let mut body: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            body["id"] = id.into();
            let raw = body.to_string();
            event["headers"]["x-zernio-signature"] = shared::signature::sign(SECRET, raw.as_bytes()).into();
            event["headers"]["x-zernio-event-id"] = id.into();
            event["body"] = raw.into();
        }
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        t.tap.reset();
        let response = webhook.handle(request).await;
        let counts = t.tap.counts();
        let writes: u64 =
            counts.iter().filter(|(op, _)| op.contains("Put") || op.contains("Write")).map(|(_, n)| n).sum();
        let answer = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        println!("{label:<44} {:>8} {writes:>8}  {answer}, {}", t.tap.total(), operations(&t.tap));
    };
    deliver("new post event (post.scheduled)", "webhook-post-scheduled", None).await;
    deliver("new post event (post.published)", "webhook-post-published", None).await;
    deliver("duplicate post event", "webhook-post-published", None).await;
    deliver("stale post event (older than stored)", "webhook-post-scheduled", Some("evt_stale")).await;
    deliver("new account event (account.connected)", "webhook-account-connected", None).await;
    deliver("duplicate account event", "webhook-account-connected", None).await;
    println!("(targets: new <= 2, duplicate <= 1 with no write; no rate-limit check on the webhook)");
    println!("(write units: a new event's one TransactWriteItems holds the event record, the item and one small");
    println!(" history record per visible change, each under 1 KB: 2 WCU per item, as transactions cost double)");
}

/// The requests a tap counted, by operation: "BatchGetItem, PutItem, TransactWriteItems".
fn operations(tap: &shared::adapters::aws::RequestTap) -> String {
    let counts = tap.counts();
    let spell = |(op, n): (&String, &u64)| if *n == 1 { op.clone() } else { format!("{n}x {op}") };
    counts.iter().map(spell).collect::<Vec<_>>().join(", ")
}

/// Publishing-service calls and DynamoDB requests per Refresh, through the dev gateway.
async fn refresh_costs() {
    let stack = integration_tests::Stack::start().await;
    let account = |id: &str, platform: &str| serde_json::json!({"_id": id, "platform": platform, "username": id, "isActive": true});
    stack
        .given_profile(
            "proj_bench",
            "65aa00000000000000000b01",
            serde_json::json!([account("x1", "twitter"), account("li1", "linkedin")]),
        )
        .await;
    let token = stack.token("proj_bench");
    println!("\nRefresh (POST /projects/{{projectId}}/connections/refresh), through the dev gateway:");
    println!("{:<44} {:>8} {:>8}  operations", "case", "service", "dynamodb");
    for label in
        ["first refresh (records created)", "refresh, nothing changed", "refresh, every account gone (list empty)"]
    {
        if label.contains("gone") {
            stack.set_accounts("65aa00000000000000000b01", serde_json::json!([])).await;
        }
        let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0);
        stack.tap.reset();
        let (status, _, _) =
            stack.call(reqwest::Method::POST, "/projects/proj_bench/connections/refresh", Some(&token), None).await;
        assert_eq!(status, 200);
        let service = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0) - calls;
        println!("{label:<44} {service:>8} {:>8}  {}", stack.tap.total(), operations(&stack.tap));
    }
    println!("(target: 2 service calls; 3 only when the list is 404 or empty)");
    println!("(the PutItem is the rate-limit check: one conditional write of the project's call budget)");
}

/// Publishing-service calls and DynamoDB requests per publish, Sync and manual delete.
async fn post_costs() {
    let stack = integration_tests::Stack::start().await;
    let account = |id: &str, platform: &str| serde_json::json!({"_id": id, "platform": platform, "username": id, "isActive": true});
    let profile = "65aa00000000000000000b02";
    stack
        .given_profile("proj_posts", profile, serde_json::json!([account("x1", "twitter"), account("li1", "linkedin")]))
        .await;
    let token = stack.token("proj_posts");
    let refresh =
        stack.call(reqwest::Method::POST, "/projects/proj_posts/connections/refresh", Some(&token), None).await;
    assert_eq!(refresh.0, 200);
    println!("\nPosts, through the dev gateway:");
    println!("{:<44} {:>8} {:>8}  operations", "case", "service", "dynamodb");
    let measure = async |label: &str, method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0);
        stack.tap.reset();
        let (status, answer, _) = stack.call(method, path, Some(&token), body).await;
        assert!(status < 300, "{label}: {status} {answer}");
        let service = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0) - calls;
        println!("{label:<44} {service:>8} {:>8}  {}", stack.tap.total(), operations(&stack.tap));
    };
    let post = serde_json::json!({"post_id": "post_b", "content": "Bench", "platforms": ["x", "linkedin"]});
    measure("publish a new post to two platforms", reqwest::Method::POST, "/projects/proj_posts/posts", Some(post))
        .await;
    measure("sync, one generation", reqwest::Method::POST, "/projects/proj_posts/posts/post_b/sync", None).await;
    measure(
        "manual delete",
        reqwest::Method::POST,
        "/projects/proj_posts/posts/post_b/platforms/x/manual-delete",
        None,
    )
    .await;
    let again = serde_json::json!({"post_id": "post_b", "content": "Bench again", "platforms": ["x"]});
    measure("publish again (second generation)", reqwest::Method::POST, "/projects/proj_posts/posts", Some(again))
        .await;
    measure("sync, two generations", reqwest::Method::POST, "/projects/proj_posts/posts/post_b/sync", None).await;
    measure("read", reqwest::Method::GET, "/projects/proj_posts/posts/post_b", None).await;
    post_write_units(&stack, &token).await;
    println!("(targets: Sync 1 service call + 1 per extra generation; manual delete 0 service calls)");
    println!("(publish and Sync: one conditional UpdateItem takes the project's budget, one more takes the shared");
    println!(" budget of the API key before each service call; a publish's PutItem stores the publication before");
    println!(" the call, so one that outlasts its request is known; reads call no service and");
    println!(" take no budget; a manual delete takes one post write from the project's budget)");
}

/// The size of an item as DynamoDB bills it: each attribute's name and value, in bytes.
/// What a webhook's rewrite of a post item costs in write units (a transaction bills twice), for
/// a short post and one at the content limit: the figure to hold down (capacity.md, "Items stay
/// small"). The draft's own item is written only when the draft changes.
async fn post_write_units(stack: &integration_tests::Stack, token: &str) {
    let content = "x".repeat(shared::handlers::posts::MAX_CONTENT_BYTES);
    let big = serde_json::json!({"post_id": "post_big", "content": content, "platforms": ["x", "linkedin"]});
    let (status, answer, _) =
        stack.call(reqwest::Method::POST, "/projects/proj_posts/posts", Some(token), Some(big)).await;
    assert!(status < 300, "{status} {answer}");
    let items = stack.items().await;
    for post in ["post_b", "post_big"] {
        for (what, sk, note) in [
            ("post item", format!("POST#{post}"), "bytes, write units in a transaction: every webhook"),
            ("draft item", format!("DRAFT#{post}"), "bytes, write units: only when the draft changes"),
        ] {
            let item = items.iter().find(|i| integration_tests::s(i, "sk") == Some(&sk)).expect("the item");
            let bytes = integration_tests::item_bytes(item);
            println!("{:<44} {:>8} {:>8}  ({note})", format!("{what}, {post}"), bytes, 2 * bytes.div_ceil(1024));
        }
    }
}

/// A reconciler pass over a table of settled posts and a few stuck ones: what it costs grows with
/// the stuck ones, not with the table.
async fn reconciler_costs() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    use shared::domain::healing::Settings;
    use shared::domain::post::{PlatformEntry, Schedule};
    use shared::domain::{EntryStatus, Platform, PostId, ProjectId, ServicePostId};
    use shared::ports::{PostChange, PostStore};
    println!("\nA reconciler pass (grace 0, 20 calls), through the real index on the embedded DynamoDB:");
    println!("{:<34} {:>8} {:>9} {:>8} {:>7}  operations", "table", "service", "dynamodb", "synced", "healed");
    for settled in [0usize, 10_000] {
        let stack = integration_tests::Stack::start().await;
        let project = ProjectId::parse("proj_bench").unwrap();
        let now = integration_tests::now();
        // One settled post written by the store, then copied under other ids, 25 to a request.
        let live = PostState {
            entries: [(
                Platform::X,
                PlatformEntry { url: Some("https://x.com/1".into()), ..PlatformEntry::bare(1, EntryStatus::Published) },
            )]
            .into(),
            ..PostState::default()
        };
        let template_post = PostId::parse("post_settled").unwrap();
        stack
            .store
            .save_post(&project, &template_post, None, PostChange::new(&shared::ports::Source::Publish, &live), now)
            .await
            .unwrap();
        let item = stack.store.get_post(&project, &template_post).await.unwrap().expect("written");
        assert!(item.watch.is_none(), "a published post is not watched");
        let raw = stack
            .dynamodb
            .get_item()
            .table_name(&stack.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(item.pk.clone()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(item.sk.clone()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        for chunk in (1..settled).collect::<Vec<_>>().chunks(25) {
            let requests = chunk.iter().map(|n| {
                let mut copy = raw.clone();
                copy.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(format!("POST#post_{n}")));
                copy.insert("post_id".into(), aws_sdk_dynamodb::types::AttributeValue::S(format!("post_{n}")));
                WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(copy)).build().unwrap()).build()
            });
            stack.dynamodb.batch_write_item().request_items(&stack.table, requests.collect()).send().await.unwrap();
        }
        // Ten posts stuck publishing, which the service no longer knows (a Sync cancels them).
        for n in 0..10 {
            let queued = PostState {
                entries: [(
                    Platform::X,
                    PlatformEntry {
                        service_post_id: Some(ServicePostId::parse(format!("65f10000000000000000{n:04}")).unwrap()),
                        ..PlatformEntry::bare(1, EntryStatus::Queued)
                    },
                )]
                .into(),
                schedule: Some(Schedule { generation: 1, at: now.plus_seconds(-60) }),
                ..PostState::default()
            };
            let post = PostId::parse(format!("post_stuck_{n}")).unwrap();
            stack
                .store
                .save_post(&project, &post, None, PostChange::new(&shared::ports::Source::Publish, &queued), now)
                .await
                .unwrap();
        }
        let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0);
        stack.tap.reset();
        let settings =
            Settings { grace_seconds: 0, connections_max_age_seconds: 3600, max_calls: 20, ..Settings::default() };
        let report = stack.reconciler(settings).pass(std::time::Duration::from_secs(60)).await.unwrap();
        let service = stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0) - calls;
        let label = format!("{settled} settled + 10 stuck posts");
        println!(
            "{label:<34} {service:>8} {:>9} {:>8} {:>7}  {}",
            stack.tap.total(),
            report.posts_synced,
            report.posts_healed,
            operations(&stack.tap)
        );
    }
    println!("(target: the same requests whatever the number of settled posts: the index holds only the");
    println!(" stuck ones. Read capacity: each index Query returns only waiting items, projected to their");
    println!(" keys and ids (well under 4 KB), so 0.5 RCU a query, eventually consistent; per stuck post one");
    println!(" consistent GetItem and one conditional write)");
}

/// Per packaged function (`make build`): zip size, init time from exec to the first request for
/// an event (median of several cold starts), and peak resident memory over a typical invocation.
async fn cold_starts() {
    use integration_tests::lambda::{self, FUNCTIONS};
    let rounds = 5;
    let template = integration_tests::template();
    let mut inits: Vec<Vec<f64>> = vec![Vec::new(); FUNCTIONS.len()];
    let mut peaks = vec![0u64; FUNCTIONS.len()];
    let bootstraps: Vec<_> = FUNCTIONS.iter().map(|f| lambda::unpack(f)).collect();
    for _ in 0..rounds {
        // A fresh stack each round, so every round makes the same invocations.
        let stack = integration_tests::Stack::start().await;
        let account = lambda::prepare(&stack).await;
        for (i, function) in FUNCTIONS.iter().enumerate() {
            let env = account.environment(&template, &lambda::logical_name(&template, function));
            let (event, _) = lambda::typical_invocation(function);
            let run =
                lambda::cold_start(&bootstraps[i], function, &env, event, std::time::Duration::from_secs(20)).await;
            assert!(matches!(run.answer, lambda::Answer::Response(_)), "{function}: {:?}\n{}", run.answer, run.logs);
            inits[i].push(run.init.as_secs_f64() * 1000.0);
            peaks[i] = peaks[i].max(run.peak_kib);
        }
    }
    println!("\nPackaged functions ({rounds} cold starts each, this machine; x86_64 build):");
    println!("{:<22} {:>9} {:>14} {:>14} {:>12}", "function", "zip MB", "init ms (med)", "init ms (max)", "peak MB");
    for (i, function) in FUNCTIONS.iter().enumerate() {
        let zip = std::fs::metadata(lambda::zip_path(function)).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
        let mut sorted = inits[i].clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{:<22} {:>9.2} {:>14.1} {:>14.1} {:>12.1}",
            function,
            zip,
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
            peaks[i] as f64 / 1024.0
        );
    }
    println!("(targets: zip < 8 MB, init < 50 ms, peak < 40 MB)");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    cpu_per_event();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(requests_per_event());
    runtime.block_on(refresh_costs());
    runtime.block_on(post_costs());
    runtime.block_on(reconciler_costs());
    runtime.block_on(erase_costs());
    runtime.block_on(cold_starts());
}

/// Erasing a project (lifecycle.md): its requests and time, for 1,000 and 10,000 posts with their
/// history, the steps run one after another as the retry worker runs them.
async fn erase_costs() {
    use shared::ports::SealStore;
    println!("\nErasing a project (X and LinkedIn connected, posts published with their history):");
    println!(
        "{:<12} {:>8} {:>10} {:>9} {:>8} {:>12} {:>9}",
        "posts", "items", "dynamodb", "service", "steps", "redelivered", "seconds"
    );
    for posts in [1_000usize, 10_000] {
        let stack = integration_tests::Stack::start().await;
        let (project, profile) = ("proj_erase", "65aa0000000000000000000e");
        let accounts = serde_json::json!([
            integration_tests::live_account("x1", "twitter"),
            integration_tests::live_account("li1", "linkedin")
        ]);
        stack.given_connected(project, profile, accounts).await;
        integration_tests::seed_posts(&stack, project, posts).await;
        let token = stack.token(project);
        let path = format!("/projects/{project}");
        assert_eq!(stack.call(reqwest::Method::DELETE, &path, Some(&token), None).await.0, 202);
        let id = ProjectId::parse(project).unwrap();
        // The emulator's writes slow as its table grows (DynamoDB's do not): its steps get the
        // patience of a setup, not the functions' 2 s, so the figures are the requests it takes.
        let worker = stack.worker_on(stack.patient_store().await);
        stack.tap.reset();
        let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
        let started = Instant::now();
        let (mut steps, mut redelivered, mut in_a_row) = (0, 0, 0);
        loop {
            let (erasure, _) = stack.store.erasure(&id).await.unwrap().expect("sealed");
            if erasure.finished_at.is_some() {
                println!(
                    "{posts:<12} {:>8} {:>10} {:>9} {steps:>8} {redelivered:>12} {:>9.1}",
                    erasure.items_deleted,
                    stack.tap.total(),
                    stack.sim.shared.stats()["total_calls"].as_u64().unwrap() - calls,
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            steps += 1;
            // A step the store failed is delivered again, as SQS delivers it to the retry worker.
            match worker.follow_ups.erasures.step(&id).await {
                Ok(()) => in_a_row = 0,
                Err(e) => {
                    (redelivered, in_a_row) = (redelivered + 1, in_a_row + 1);
                    assert!(in_a_row < 5, "five deliveries of one step failed, as SQS would dead-letter it: {e}");
                }
            }
        }
    }
}
