//! A project's life (lifecycle.md), end to end on the real stack: disconnecting a platform.

use integration_tests::{Stack, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::ports::SealStore;

const PROJECT: &str = "proj_l";
const PROFILE: &str = "65aa000000000000000000l1";

async fn disconnect(stack: &Stack, platform: &str) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/connections/{platform}/disconnect");
    let (status, body, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    (status, body)
}

async fn connection(stack: &Stack, platform: &str) -> Value {
    let token = stack.token(PROJECT);
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == platform).cloned().unwrap()
}

fn deletes(stack: &Stack) -> u64 {
    stack.publisher_calls()["DELETE /v1/accounts/{id}"].as_u64().unwrap_or(0)
}

fn connected_event(id: &str, at: shared::domain::Timestamp, account: &str) -> Value {
    json!({"id": id, "event": "account.connected", "timestamp": at.to_rfc3339(),
           "account": {"accountId": account, "profileId": PROFILE, "platform": "twitter", "username": "acme"}})
}

#[tokio::test]
async fn a_disconnect_deletes_the_account_reads_not_connected_and_only_a_later_connect_brings_it_back() {
    // GIVEN X and LinkedIn connected
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    let before = integration_tests::now();
    // WHEN the user disconnects X
    let (status, x) = disconnect(&stack, "x").await;
    // THEN the service's account is gone and the connection reads not_connected, reason disconnected
    assert_eq!(status, 200, "{x}");
    assert_eq!((x["status"].as_str(), x["reason"].as_str()), (Some("not_connected"), Some("disconnected")), "{x}");
    assert!(stack.sim.shared.world().accounts.iter().all(|a| a.id != "x1"), "x1 deleted on the service");
    assert_eq!(deletes(&stack), 1);
    assert_eq!(connection(&stack, "linkedin").await["status"], "connected", "LinkedIn untouched");
    // AND its history records it, by the Disconnect
    let token = stack.token(PROJECT);
    let (_, history, _) = stack
        .call(Method::GET, &format!("/projects/{PROJECT}/connections/history?platform=x"), Some(&token), None)
        .await;
    let changes = history["changes"].as_array().unwrap();
    let latest = changes.iter().find(|c| c["field"] == "status").unwrap();
    assert_eq!(
        (latest["to"].as_str(), latest["source"].as_str()),
        (Some("not_connected"), Some("disconnect")),
        "{history}"
    );
    // AND a repeat answers the same without calling the service
    let (status, again) = disconnect(&stack, "x").await;
    assert_eq!((status, &again), (200, &x));
    assert_eq!(deletes(&stack), 1, "nothing called the second time");
    // AND an account.connected made before the Disconnect does not bring it back
    let stale = connected_event("evt_before", before.plus_seconds(-1), "x1");
    assert_eq!(stack.send(&stale).await.0, 200);
    assert_eq!(connection(&stack, "x").await["status"], "not_connected");
    // AND a publish to X is refused as for any platform not connected
    let (status, refused, _) = stack
        .call(
            Method::POST,
            &format!("/projects/{PROJECT}/posts"),
            Some(&token),
            Some(json!({"post_id": "post_1", "content": "Hi", "platforms": ["x"]})),
        )
        .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("reconnect_required")), "{refused}");
    // AND a later Connect does
    let later = connected_event("evt_after", integration_tests::now().plus_seconds(1), "x9");
    assert_eq!(stack.send(&later).await.0, 200);
    let back = connection(&stack, "x").await;
    assert_eq!((back["status"].as_str(), back["account_id"].as_str()), (Some("connected"), Some("x9")), "{back}");
}

#[tokio::test]
async fn a_platform_never_connected_is_404_and_an_unreachable_service_changes_nothing() {
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    let (status, body) = disconnect(&stack, "instagram").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let items = stack.items().await;
    stack
        .sim
        .shared
        .set_fault(zernio_sim::Fault { mode: zernio_sim::FaultMode::Status { code: 503 }, ..Default::default() });
    let (status, body) = disconnect(&stack, "x").await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{body}");
    assert_eq!(stack.items().await, items, "nothing changed");
    assert!(stack.sim.shared.world().accounts.iter().any(|a| a.id == "x1"), "the account is still there");
    // A project without a profile has nothing connected either.
    let token = stack.token("proj_none");
    let (status, _, _) =
        stack.call(Method::POST, "/projects/proj_none/connections/x/disconnect", Some(&token), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn history_past_its_retention_is_never_shown_and_every_record_carries_its_time_to_live() {
    use shared::domain::{AccountId, Connection, ConnectionStatus, Platform, ProfileId, ProjectId};
    use shared::ports::{ConnectionStore, Source};
    // GIVEN history kept one day, and a change recorded two days ago
    let retention = shared::domain::history::Retention { days: 1 };
    let stack =
        Stack::with(integration_tests::StackOptions { history_retention: retention, ..Default::default() }).await;
    stack.given_profile(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    let (project, profile) = (ProjectId::parse(PROJECT).unwrap(), ProfileId::parse(PROFILE).unwrap());
    let old = integration_tests::now().plus_seconds(-2 * 86_400);
    let linked = Connection {
        platform: Platform::X,
        status: ConnectionStatus::Connected,
        evidence_at: old,
        account_id: Some(AccountId::parse("x1").unwrap()),
        username: Some("x1_user".into()),
        display_name: None,
        reason: None,
        looks: None,
    };
    let read = stack.store.connections(&profile).await.unwrap();
    stack.store.save_connections(&project, &profile, read, vec![linked], &Source::Refresh, old).await.unwrap();
    // AND a change now
    assert_eq!(disconnect(&stack, "x").await.0, 200);
    // WHEN the history is read
    let token = stack.token(PROJECT);
    let (_, history, _) =
        stack.call(Method::GET, &format!("/projects/{PROJECT}/connections/history"), Some(&token), None).await;
    // THEN only today's records are shown, and the history ends there
    let changes = history["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c["source"] == "disconnect"), "{history}");
    assert!(history["next_cursor"].is_null());
    // AND every record carries its time to live: written + one day
    let records: Vec<_> = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| integration_tests::s(i, "sk").is_some_and(|sk| sk.starts_with("HIST#")))
        .collect();
    assert!(records.len() > changes.len(), "the old records are still stored until TTL removes them");
    for record in records {
        let at = shared::domain::Timestamp::parse(integration_tests::s(&record, "at").unwrap()).unwrap();
        let ttl: i64 = record["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(ttl, at.plus_seconds(86_400).unix());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_export_writes_every_item_of_a_project_and_nothing_of_another() {
    // GIVEN two projects, one with a connection, a post and their history
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    stack.given_connected("proj_other", "65aa0000000000000000000o", json!([account("x2", "twitter")])).await;
    let token = stack.token(PROJECT);
    let body = json!({"post_id": "post_e", "content": "Exported", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await.0, 201);
    // WHEN the export runs against the stack's table
    let out = std::env::temp_dir().join(format!("export-{}.json", std::process::id()));
    // The embedded DynamoDB answers from this process: the script runs beside it, not in its way.
    let (endpoint, table, path) = (stack.dynamodb_endpoint.clone(), stack.table.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(integration_tests::root().join(".venv/bin/python"))
            .arg(integration_tests::root().join("tools/local/export.py"))
            .arg(PROJECT)
            .arg("--out")
            .arg(&path)
            .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            .env("TABLE_NAME", table)
            .output()
            .expect("python")
    })
    .await
    .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let document: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // THEN it holds exactly the project's items: its partition and its profile's
    let ours = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        let pk = integration_tests::s(i, "pk").unwrap_or_default();
        pk == format!("PROJECT#{PROJECT}") || pk == format!("PROFILE#{PROFILE}")
    };
    let stored = stack.all_items().await.into_iter().filter(ours).count();
    assert_eq!(document["item_count"].as_u64(), Some(stored as u64), "{document}");
    assert_eq!(document["profile_id"], PROFILE);
    for kind in ["posts", "drafts", "connections", "connection_history", "post_history", "profile", "routing"] {
        assert!(document["items"][kind].as_array().is_some_and(|a| !a.is_empty()), "{kind}: {document}");
    }
    assert!(!document.to_string().contains("proj_other") && !document.to_string().contains("x2"), "nothing of another");
    let _ = std::fs::remove_file(out);
}

#[tokio::test]
async fn a_seal_is_written_once_read_back_the_same_and_refuses_any_write_that_carries_its_condition() {
    use aws_sdk_dynamodb::types::TransactWriteItem;
    let stack = Stack::start().await;
    let project = shared::domain::ProjectId::parse(PROJECT).unwrap();
    let check = |s: &Stack| {
        let item = TransactWriteItem::builder().condition_check(s.store.unsealed(&project).unwrap()).build();
        s.dynamodb.transact_write_items().transact_items(item).send()
    };
    assert!(check(&stack).await.is_ok(), "not sealed: a creating write goes");
    let first = integration_tests::now();
    let (sealed, version) = stack.store.seal(&project, first).await.unwrap();
    assert_eq!((sealed.since, sealed.status(), version), (first, "erasing", 1));
    let (again, _) = stack.store.seal(&project, first.plus_seconds(60)).await.unwrap();
    assert_eq!(again.since, first, "a repeated seal answers the first");
    assert_eq!(stack.store.erasure(&project).await.unwrap().map(|(e, _)| e.since), Some(first));
    assert!(check(&stack).await.is_err(), "sealed: a write carrying the condition is refused");
}

async fn erasure(stack: &Stack, project: &str) -> (u16, Value) {
    let token = stack.token(project);
    let (status, body, _) = stack.call(Method::GET, &format!("/projects/{project}/erasure"), Some(&token), None).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_project_is_sealed_at_once_erased_everywhere_and_another_sharing_its_handle_reads_the_same() {
    const KEEP: &str = "proj_keep";
    const KEEP_PROFILE: &str = "65aa000000000000000000k1";
    // GIVEN a project with X and LinkedIn, a post published to both with its history, and a
    // draft; and another project whose X account has the same handle
    let options = integration_tests::StackOptions { poller: true, feed: true, ..Default::default() };
    let stack = Stack::with(options).await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    let same_handle = json!([{"_id": "x2", "platform": "twitter", "username": "x1_user", "isActive": true}]);
    stack.given_connected(KEEP, KEEP_PROFILE, same_handle).await;
    let token = stack.token(PROJECT);
    let stack = &stack;
    let publish = |project: &'static str, body: Value| {
        let token = stack.token(project);
        async move { stack.call(Method::POST, &format!("/projects/{project}/posts"), Some(&token), Some(body)).await.0 }
    };
    assert_eq!(
        publish(PROJECT, json!({"post_id": "post_1", "content": "Live", "platforms": ["x", "linkedin"]})).await,
        201
    );
    assert_eq!(publish(PROJECT, json!({"post_id": "post_2", "content": "Later", "draft": true})).await, 201);
    assert_eq!(publish(KEEP, json!({"post_id": "post_1", "content": "Kept", "platforms": ["x"]})).await, 201);
    let kept_before = stack.items_of(KEEP, KEEP_PROFILE).await;
    // (events the service would send about it, made now, sent once it is sealed)
    let service_post =
        stack.sim.shared.world().posts.values().find(|p| p.metadata["stacc_project_id"] == PROJECT).unwrap().id.clone();
    let event = stack.sim.shared.post_event("post.published", &service_post).unwrap();
    let account_event = stack.sim.shared.account_event("account.disconnected", "li1", Some("unintentional")).unwrap();
    let before = stack.items_of(PROJECT, PROFILE).await.len() as u64;
    // WHEN the project is erased
    let (status, first, _) = stack.call(Method::DELETE, &format!("/projects/{PROJECT}"), Some(&token), None).await;
    // THEN 202 at once, and the same when repeated
    assert_eq!((status, first["status"].as_str()), (202, Some("erasing")), "{first}");
    let (status, again, _) = stack.call(Method::DELETE, &format!("/projects/{PROJECT}"), Some(&token), None).await;
    assert_eq!((status, &again["since"]), (202, &first["since"]));
    // AND every route answers 410 project_erased from that moment
    let routes = [
        (Method::GET, format!("/projects/{PROJECT}/connections"), None),
        (Method::POST, format!("/projects/{PROJECT}/connections/refresh"), None),
        (Method::POST, format!("/projects/{PROJECT}/connections/x/connect"), None),
        (Method::POST, format!("/projects/{PROJECT}/connections/x/disconnect"), None),
        (
            Method::POST,
            format!("/projects/{PROJECT}/posts"),
            Some(json!({"post_id": "post_3", "content": "No", "platforms": ["x"]})),
        ),
        (Method::GET, format!("/projects/{PROJECT}/posts/post_1"), None),
        (Method::POST, format!("/projects/{PROJECT}/posts/post_1/sync"), None),
        (Method::POST, format!("/projects/{PROJECT}/posts/post_1/platforms/x/manual-delete"), None),
        (Method::GET, format!("/projects/{PROJECT}/posts/post_1/history"), None),
        (Method::GET, format!("/projects/{PROJECT}/connections/history"), None),
    ];
    for (method, path, body) in &routes {
        let (status, answer, _) = stack.call(method.clone(), path, Some(&token), body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (410, Some("project_erased")),
            "{method} {path}: {answer}"
        );
    }
    // AND a webhook about it is ignored
    assert_eq!(stack.send(&event).await.1["status"], "ignored");
    assert_eq!(stack.send(&account_event).await.1["status"], "ignored");
    // AND the erasure ends erased, with its counts
    let started = std::time::Instant::now();
    let mut done = erasure(stack, PROJECT).await.1;
    while done["status"] != "erased" && started.elapsed() < std::time::Duration::from_secs(60) {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        done = erasure(stack, PROJECT).await.1;
    }
    integration_tests::assert_erased(&done, 2, before, "erased through the queue");
    // AND the service holds no account or profile of it
    let (accounts, profiles): (Vec<String>, Vec<String>) = {
        let world = stack.sim.shared.world();
        (world.accounts.iter().map(|a| a.id.clone()).collect(), world.profiles.keys().cloned().collect())
    };
    assert!(accounts.iter().all(|a| a != "x1" && a != "li1"), "{accounts:?}");
    assert!(!profiles.contains(&PROFILE.to_owned()), "the profile is deleted: {profiles:?}");
    // AND the table holds nothing of it but its seal
    let left = stack.items_of(PROJECT, PROFILE).await;
    let keys: Vec<_> = left.iter().map(|i| integration_tests::s(i, "sk").unwrap_or_default().to_owned()).collect();
    assert_eq!(keys, vec!["SEAL".to_owned()]);
    // AND the other project reads exactly as before, item for item
    assert_eq!(stack.items_of(KEEP, KEEP_PROFILE).await, kept_before);
    assert!(stack.sim.shared.world().accounts.iter().any(|a| a.id == "x2"));
    // AND the change feed said project.erased, once
    let queue = stack.changes_url.clone().unwrap();
    let mut erased = Vec::new();
    let started = std::time::Instant::now();
    while erased.is_empty() && started.elapsed() < std::time::Duration::from_secs(15) {
        let got = stack
            .sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages.unwrap_or_default() {
            let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            if event["detail-type"] == "Project Erased" {
                erased.push(event);
            }
        }
    }
    assert_eq!(erased.len(), 1, "{erased:?}");
    assert_eq!(erased[0]["detail"]["project_id"], PROJECT);
}

/// Seals `project` (its DELETE), then runs its erasure's steps here, one by one, until it is
/// erased: each step given `kill(n)` (a time after which it is dropped mid-way, as a crash
/// would), `None` to run whole. The requests the steps made (DynamoDB, SQS) and the service calls.
async fn erase_by_hand(
    stack: &Stack,
    project: &str,
    kill: impl Fn(usize) -> Option<std::time::Duration>,
) -> (u64, u64) {
    let token = stack.token(project);
    assert_eq!(stack.call(Method::DELETE, &format!("/projects/{project}"), Some(&token), None).await.0, 202);
    let id = shared::domain::ProjectId::parse(project).unwrap();
    let worker = stack.worker();
    stack.tap.reset();
    let calls_before = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
    for n in 0..100_000 {
        if erasure(stack, project).await.1["status"] == "erased" {
            break;
        }
        let step = worker.follow_ups.erasures.step(&id);
        match kill(n) {
            Some(after) => {
                let _ = tokio::time::timeout(after, step).await;
            }
            None => step.await.expect("a step"),
        }
    }
    let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap() - calls_before;
    (stack.tap.total(), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_killed_anywhere_resumes_and_ends_the_same_and_its_requests_grow_with_its_items() {
    // GIVEN a project of 150 posts with their history, X and LinkedIn connected
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    integration_tests::seed_posts(&stack, PROJECT, 150).await;
    let before = stack.items_of(PROJECT, PROFILE).await.len() as u64;
    // WHEN its erasure's steps are killed at every point for a while (a few ms into each), then run
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    println!("kill seed {seed}");
    let kill =
        |n: usize| (n < 40).then(|| std::time::Duration::from_millis(1 + (seed.wrapping_mul(n as u64 + 7) % 40)));
    erase_by_hand(&stack, PROJECT, kill).await;
    // THEN it ends exactly as an erasure never killed: erased, every account and item counted once
    let (_, done) = erasure(&stack, PROJECT).await;
    integration_tests::assert_erased(&done, 2, before, &format!("kill seed {seed}"));
    let left = stack.items_of(PROJECT, PROFILE).await;
    assert_eq!(left.len(), 1, "the seal alone");
    assert!(stack.sim.shared.world().accounts.is_empty() && stack.sim.shared.world().profiles.is_empty());

    // AND the requests of an erasure grow in proportion to its items
    let mut costs = Vec::new();
    for (project, profile, posts) in
        [("proj_small", "65aa0000000000000000001s", 100), ("proj_large", "65aa0000000000000000001l", 200)]
    {
        stack.given_connected(project, profile, json!([account(&format!("x_{project}"), "twitter")])).await;
        integration_tests::seed_posts(&stack, project, posts).await;
        let items = stack.items_of(project, profile).await.len() as u64;
        let (requests, calls) = erase_by_hand(&stack, project, |_| None).await;
        println!("erasing {posts} posts ({items} items): {requests} requests, {calls} service calls");
        costs.push((items, requests, calls));
    }
    let (small, large) = (costs[0], costs[1]);
    let per_item = |c: (u64, u64, u64)| c.1 as f64 / c.0 as f64;
    assert!(per_item(large) <= per_item(small) * 1.1, "requests grow at most linearly with the items: {costs:?}");
    assert_eq!(small.2, large.2, "the service calls do not grow with the items: {costs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_whose_step_was_lost_is_resumed_once_it_stalls_and_never_twice() {
    use shared::domain::erasure::STALLED_AFTER_SECONDS;
    use shared::domain::healing::Settings;
    const PASS: std::time::Duration = std::time::Duration::from_secs(20);
    // GIVEN a project of 30 posts being erased, the step its DELETE queued lost (as one
    // dead-lettered after the store failed it five times)
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    integration_tests::seed_posts(&stack, PROJECT, 30).await;
    let before = stack.items_of(PROJECT, PROFILE).await.len() as u64;
    let token = stack.token(PROJECT);
    assert_eq!(stack.call(Method::DELETE, &format!("/projects/{PROJECT}"), Some(&token), None).await.0, 202);
    let retry = stack.queues.retry_url.clone();
    assert_eq!(stack.queue_depth(&retry).await, 1, "the DELETE queued its first step");
    stack.sqs.purge_queue().queue_url(&retry).send().await.expect("purge");
    let settings = Settings { grace_seconds: 0, ..Settings::default() };
    // WHEN a pass runs before the erasure has stalled: nothing is queued
    let report = stack.reconcile(settings, PASS).await.unwrap();
    assert_eq!((report.erasures_resumed, stack.queue_depth(&retry).await), (0, 0), "{report:?}");
    assert_eq!(erasure(&stack, PROJECT).await.1["status"], "erasing");
    // AND once it has, a pass queues one step, and the next pass none
    let later = stack.reconciler_ahead(settings, STALLED_AFTER_SECONDS + 1);
    let report = shared::adapters::aws::as_function("reconciler", later.pass(PASS)).await.unwrap();
    assert_eq!((report.erasures_resumed, report.calls), (1, 0), "no call to the service: {report:?}");
    assert_eq!(stack.queue_depth(&retry).await, 1);
    let report = shared::adapters::aws::as_function("reconciler", later.pass(PASS)).await.unwrap();
    assert_eq!(report.erasures_resumed, 0, "resumed once: {report:?}");
    assert_eq!(stack.queue_depth(&retry).await, 1);
    // THEN the resumed steps end it exactly as an erasure never stalled, and no step is left
    let mut done = erasure(&stack, PROJECT).await.1;
    for _ in 0..100 {
        if done["status"] == "erased" {
            break;
        }
        stack.poll(1).await;
        done = erasure(&stack, PROJECT).await.1;
    }
    integration_tests::assert_erased(&done, 1, before, "resumed");
    assert_eq!(stack.items_of(PROJECT, PROFILE).await.len(), 1, "the seal alone");
    assert_eq!(stack.queue_depth(&retry).await, 0, "one chain of steps, ended");
    // AND a finished erasure is never resumed
    let report = shared::adapters::aws::as_function("reconciler", later.pass(PASS)).await.unwrap();
    let much_later = stack.reconciler_ahead(settings, 10 * STALLED_AFTER_SECONDS);
    let last = shared::adapters::aws::as_function("reconciler", much_later.pass(PASS)).await.unwrap();
    assert_eq!((report.erasures_resumed, last.erasures_resumed), (0, 0));
    assert_eq!(stack.queue_depth(&retry).await, 0);
}
