//! The reconciler heals what lost webhooks leave behind, with no app call: stuck posts are Synced
//! and stale projects Refreshed, within a budget of calls, one pass at a time; and connections
//! warn before their token expires.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::{Stack, StackOptions, live_account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::healing::Settings;
use shared::domain::{Platform, PostId, ProjectId};
use shared::ports::{HealingStore, PostStore};
use zernio_sim::model::PublishOutcome;

/// A pass takes stuck posts at once and stale projects only when asked to.
fn fast(max_calls: u32) -> Settings {
    Settings { grace_seconds: 0, connections_max_age_seconds: 3600, max_calls, ..Settings::default() }
}

const PASS: Duration = Duration::from_secs(20);

fn set_outcomes(stack: &Stack, outcomes: &[(&str, PublishOutcome)]) {
    stack.sim.shared.world().outcomes = outcomes.iter().map(|(p, o)| ((*p).to_owned(), *o)).collect();
}

fn profile_of(n: usize) -> String {
    format!("65aa00000000000000000{n:03}")
}

/// A project whose X and LinkedIn accounts are connected (and checked just now).
async fn connected_project(stack: &Stack, n: usize) -> (String, String) {
    let project = format!("proj_heal_{n}");
    let accounts = json!([live_account(&format!("x{n}"), "twitter"), live_account(&format!("li{n}"), "linkedin")]);
    stack.given_connected(&project, &profile_of(n), accounts).await;
    (project.clone(), stack.token(&project))
}

/// Publishes to X and LinkedIn while the service leaves both pending; returns the service's id.
async fn publish_pending(stack: &Stack, project: &str, token: &str, post: &str) -> String {
    set_outcomes(stack, &[("twitter", PublishOutcome::Pending), ("linkedin", PublishOutcome::Pending)]);
    let body = json!({"post_id": post, "content": format!("Hello {post}"), "platforms": ["x", "linkedin"]});
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{project}/posts"), Some(token), Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "publishing", "{answer}");
    let stored = stack
        .store
        .post(&ProjectId::parse(project).unwrap(), &PostId::parse(post).unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert!(stored.watch.is_some(), "a publishing post is watched");
    stored.state.entries[&Platform::X].service_post_id.clone().expect("service id").to_string()
}

/// The service finishes the post (X live, LinkedIn failed); no webhook is registered, so it is lost.
fn settle_without_webhook(stack: &Stack, service_id: &str) {
    let outcomes = HashMap::from([
        ("twitter".to_owned(), PublishOutcome::Published),
        ("linkedin".to_owned(), PublishOutcome::Failed),
    ]);
    assert!(stack.sim.shared.settle_post(service_id, &outcomes).is_some());
}

async fn read(stack: &Stack, project: &str, token: &str, post: &str) -> Value {
    let (status, answer, _) =
        stack.call(Method::GET, &format!("/projects/{project}/posts/{post}"), Some(token), None).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn calls(stack: &Stack) -> u64 {
    stack.sim.shared.stats()["total_calls"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_webhooks_were_all_lost_reads_partially_published_with_its_link_after_a_pass() {
    // GIVEN a post the service published on X and failed on LinkedIn, every webhook lost
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 1).await;
    let service_id = publish_pending(&stack, &project, &token, "post_lost").await;
    // (a pass before the service settles leaves it waiting, one try further back)
    let before = stack.reconcile(fast(20), PASS).await.unwrap();
    assert_eq!((before.posts_synced, before.posts_healed), (1, 0), "{before:?}");
    let (p, post) = (ProjectId::parse(&project).unwrap(), PostId::parse("post_lost").unwrap());
    let waiting = stack.store.post(&p, &post).await.unwrap().unwrap();
    assert_eq!(waiting.watch.map(|w| w.tries), Some(1));
    settle_without_webhook(&stack, &service_id);
    assert_eq!(read(&stack, &project, &token, "post_lost").await["status"], "publishing");
    // WHEN the reconciler runs a pass (no app route called)
    let report = stack.reconcile(fast(20), PASS).await.unwrap();
    // THEN the post reads partially published, with X's link, and it left the index
    assert_eq!((report.posts_synced, report.posts_healed, report.left), (1, 1, 0), "{report:?}");
    let post = read(&stack, &project, &token, "post_lost").await;
    assert_eq!(post["status"], "partially_published", "{post}");
    let x = post["platforms"].as_array().unwrap().iter().find(|p| p["platform"] == "x").unwrap().clone();
    assert!(x["url"].as_str().is_some_and(|u| u.starts_with("https://")), "{post}");
    let later = shared::domain::Timestamp::from_unix(4_000_000_000);
    assert!(
        stack.store.waiting_posts(&shared::domain::healing::lease_shards(0, 1), later, 100).await.unwrap().is_empty(),
        "a settled post is not in the index"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_removed_on_the_service_with_no_webhook_reads_expired_after_a_pass() {
    // GIVEN X and LinkedIn connected, then X's account removed on the service (no webhook)
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 2).await;
    stack.set_accounts(&profile_of(2), json!([live_account("li2", "linkedin")])).await;
    // WHEN a pass runs that counts every project as due for a check
    let settings = Settings { connections_max_age_seconds: 0, ..fast(20) };
    let report = stack.reconcile(settings, PASS).await.unwrap();
    // THEN X reads expired, account removed; LinkedIn is still connected
    assert_eq!((report.projects_refreshed, report.connections_found_stale), (1, 1), "{report:?}");
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{project}/connections"), Some(&token), None).await;
    let status = |p: &str| list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == p).unwrap().clone();
    assert_eq!(
        (status("x")["status"].clone(), status("x")["reason"].clone()),
        (json!("expired"), json!("account_removed"))
    );
    assert_eq!(status("linkedin")["status"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_whose_profile_the_service_forgot_reads_not_connected_after_a_pass() {
    // GIVEN X and LinkedIn connected, then the project's profile deleted on the service (no webhook)
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 5).await;
    stack.sim.shared.delete_profile(&profile_of(5));
    // WHEN a pass runs that counts every project as due for a check
    let settings = Settings { connections_max_age_seconds: 0, ..fast(20) };
    let report = stack.reconcile(settings, PASS).await.unwrap();
    // THEN the profile is forgotten as a Refresh forgets it: every platform not connected, and a
    // Connect provisions a fresh profile
    assert_eq!(report.projects_refreshed, 1, "{report:?}");
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{project}/connections"), Some(&token), None).await;
    assert!(list["connections"].as_array().unwrap().iter().all(|c| c["status"] == "not_connected"), "{list}");
    let connect = format!("/projects/{project}/connections/x/connect");
    let (status, link, _) = stack.call(Method::POST, &connect, Some(&token), None).await;
    assert_eq!(status, 200, "{link}");
    assert_ne!(link["profile_id"], profile_of(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_posts_and_freshly_checked_projects_cost_no_service_call() {
    // GIVEN a published post and a project checked just now
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 3).await;
    let body = json!({"post_id": "post_done", "content": "Done", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &format!("/projects/{project}/posts"), Some(&token), Some(body)).await.0, 201);
    let before = calls(&stack);
    // WHEN a pass runs
    let report = stack.reconcile(fast(20), PASS).await.unwrap();
    // THEN it found nothing to do and called nothing
    assert!(report.ran);
    assert_eq!((report.calls, report.posts_synced, report.projects_refreshed), (0, 0, 0), "{report:?}");
    assert_eq!(calls(&stack), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_projects_with_stuck_posts_are_all_healed_and_no_pass_exceeds_its_budget() {
    // GIVEN 8 projects, each with a post stuck publishing (its webhooks lost)
    let stack = Stack::start().await;
    let mut posts = Vec::new();
    for n in 10..18 {
        let (project, token) = connected_project(&stack, n).await;
        let service_id = publish_pending(&stack, &project, &token, "post_stuck").await;
        settle_without_webhook(&stack, &service_id);
        posts.push((project, token));
    }
    // WHEN passes run with a budget of 3 calls each
    let mut healed_by_pass = Vec::new();
    for _ in 0..8 {
        let before = calls(&stack);
        let report = stack.reconcile(fast(3), PASS).await.unwrap();
        // THEN no pass calls the service more than its budget
        assert!(report.calls <= 3 && calls(&stack) - before <= 3, "{report:?}");
        healed_by_pass.push(report.posts_healed);
        if report.posts_healed == 0 && report.left == 0 {
            break;
        }
    }
    // AND every post is healed, three passes' worth of work at most a pass
    for (project, token) in &posts {
        assert_eq!(read(&stack, project, token, "post_stuck").await["status"], "partially_published", "{project}");
    }
    assert_eq!(healed_by_pass.iter().sum::<u32>(), 8, "{healed_by_pass:?}");
    assert_eq!(&healed_by_pass[..3], &[3, 3, 2], "fair rounds, the budget filled: {healed_by_pass:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_passes_started_together_do_the_work_once() {
    // GIVEN two stuck posts
    let stack = Stack::start().await;
    for n in 20..22 {
        let (project, token) = connected_project(&stack, n).await;
        let service_id = publish_pending(&stack, &project, &token, "post_twice").await;
        settle_without_webhook(&stack, &service_id);
    }
    let before = calls(&stack);
    // WHEN two passes start together
    let (one, two) = (stack.reconciler(fast(20)), stack.reconciler(fast(20)));
    let (a, b) = tokio::join!(one.pass(PASS), two.pass(PASS));
    let (a, b) = (a.unwrap(), b.unwrap());
    // THEN exactly one ran, and each post was asked about once
    assert_eq!([a.ran, b.ran].iter().filter(|r| **r).count(), 1, "{a:?} {b:?}");
    assert_eq!(a.posts_healed + b.posts_healed, 2);
    assert_eq!(calls(&stack) - before, 2, "one GET per post");
    // AND the lease is given back: the next pass runs
    assert!(stack.reconcile(fast(20), PASS).await.unwrap().ran);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_outage_ends_the_pass_early_with_nothing_written() {
    // GIVEN a stuck post, and the service down
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 30).await;
    let service_id = publish_pending(&stack, &project, &token, "post_down").await;
    settle_without_webhook(&stack, &service_id);
    let before = stack.items().await;
    let fault = json!({"mode": "down"});
    let url = format!("{}/control/faults", stack.sim.control_url());
    assert!(stack.http.put(&url).json(&fault).send().await.unwrap().status().is_success());
    // WHEN a pass runs
    let report = stack.reconcile(fast(20), PASS).await.unwrap();
    // THEN it ends early, says so, and wrote nothing
    assert!(report.outage && report.left >= 1 && report.posts_healed == 0, "{report:?}");
    let after: Vec<_> = stack
        .items()
        .await
        .into_iter()
        .filter(|i| integration_tests::s(i, "pk").is_none_or(|pk| !pk.starts_with("LEASE#reconciler")))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|i| integration_tests::s(i, "pk").is_none_or(|pk| !pk.starts_with("LEASE#reconciler")))
        .collect();
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_schedule_heals_a_lost_post_with_no_call_at_all() {
    // GIVEN the gateway running a pass every second
    let reconcile = dev_gateway::Reconcile { interval: Duration::from_secs(1), settings: fast(20), subscription: None };
    let stack = Stack::with(StackOptions { reconcile: Some(reconcile), ..Default::default() }).await;
    let (project, token) = connected_project(&stack, 40).await;
    let service_id = publish_pending(&stack, &project, &token, "post_timer").await;
    settle_without_webhook(&stack, &service_id);
    // WHEN nobody does anything THEN within seconds the post reads what the service did
    let mut status = Value::Null;
    for _ in 0..100 {
        status = read(&stack, &project, &token, "post_timer").await["status"].clone();
        if status == "partially_published" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "partially_published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_within_a_week_is_shown_and_counted_and_the_refresh_says_so() {
    // GIVEN X's token expires in 3 days, LinkedIn's in 30
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 50).await;
    let in_days =
        |d: i64| shared::domain::Timestamp::from_unix(integration_tests::now().unix() + d * 86_400).to_rfc3339();
    for (account, days) in [("x50", 3), ("li50", 30)] {
        let url = format!("{}/control/accounts/{account}/health", stack.sim.control_url());
        let health = json!({"status": "healthy", "tokenExpiresAt": in_days(days)});
        assert!(stack.http.put(&url).json(&health).send().await.unwrap().status().is_success());
    }
    // WHEN the connections are refreshed
    let (status, refreshed, _) =
        stack.call(Method::POST, &format!("/projects/{project}/connections/refresh"), Some(&token), None).await;
    assert_eq!(status, 200, "{refreshed}");
    // THEN X shows its expiry and expires_soon; LinkedIn its expiry only; the answer counts one
    let find = |list: &Value, p: &str| {
        list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == p).unwrap().clone()
    };
    assert_eq!(find(&refreshed, "x")["expires_soon"], true, "{refreshed}");
    assert_eq!(find(&refreshed, "x")["status"], "connected");
    assert_eq!(find(&refreshed, "linkedin")["expires_soon"], false);
    assert!(find(&refreshed, "linkedin")["token_expires_at"].is_string());
    assert_eq!(refreshed["expiring_soon"], 1);
    assert_eq!(refreshed["needs_reconnect"], 0, "expiring soon is not needing a reconnect");
    assert!(refreshed["message"].as_str().unwrap().contains("X expires within 7 days"), "{refreshed}");
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{project}/connections"), Some(&token), None).await;
    assert_eq!((list["expiring_soon"].clone(), find(&list, "x")["expires_soon"].clone()), (json!(1), json!(true)));
    // AND the reconciler looks at the project again when the token expires, not before
    let soon = shared::domain::Timestamp::from_unix(integration_tests::now().unix() + 3 * 86_400 + 60);
    let due = stack
        .store
        .stale_projects(
            &shared::domain::healing::lease_shards(0, 1),
            integration_tests::now().plus_seconds(-3600),
            soon,
            10,
        )
        .await
        .unwrap();
    assert!(due.iter().any(|(_, p)| p.as_str() == project), "{due:?}");
    let now = integration_tests::now();
    let due = stack
        .store
        .stale_projects(&shared::domain::healing::lease_shards(0, 1), now.plus_seconds(-3600), now, 10)
        .await
        .unwrap();
    assert!(!due.iter().any(|(_, p)| p.as_str() == project), "just checked, not due yet: {due:?}");
}

/// The X copy fails with the account's token expired, LinkedIn goes live.
async fn fail_x_on_an_expired_token(stack: &Stack, project: &str, token: &str, post: &str) -> String {
    let url = format!("{}/control/failures", stack.sim.control_url());
    assert!(stack.http.put(&url).json(&json!({"twitter": "auth_expired"})).send().await.unwrap().status().is_success());
    publish_pending(stack, project, token, post).await
}

async fn connection(stack: &Stack, project: &str, token: &str, platform: &str) -> Value {
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{project}/connections"), Some(token), None).await;
    list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == platform).unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_failed_on_an_expired_token_in_a_webhook_marks_that_connection_expired() {
    // GIVEN X and LinkedIn connected, the service's webhooks reaching the gateway
    let stack = Stack::start().await;
    stack.register_webhook().await;
    let (project, token) = connected_project(&stack, 60).await;
    let service_id = fail_x_on_an_expired_token(&stack, &project, &token, "post_auth").await;
    // WHEN the service reports X failed with auth_expired (post.partial, by webhook)
    let outcomes = HashMap::from([
        ("twitter".to_owned(), PublishOutcome::Failed),
        ("linkedin".to_owned(), PublishOutcome::Published),
    ]);
    assert!(stack.sim.shared.settle_post(&service_id, &outcomes).is_some());
    // THEN X's connection reads expired / token_expired, LinkedIn's stays connected
    let mut x = Value::Null;
    for _ in 0..50 {
        x = connection(&stack, &project, &token, "x").await;
        if x["status"] == "expired" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((x["status"].clone(), x["reason"].clone()), (json!("expired"), json!("token_expired")), "{x}");
    assert_eq!(connection(&stack, &project, &token, "linkedin").await["status"], "connected");
    assert_eq!(read(&stack, &project, &token, "post_auth").await["status"], "partially_published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_failed_on_an_expired_token_found_by_sync_marks_that_connection_expired_in_the_same_write() {
    // GIVEN the same failure, its webhook lost
    let stack = Stack::start().await;
    let (project, token) = connected_project(&stack, 61).await;
    let service_id = fail_x_on_an_expired_token(&stack, &project, &token, "post_auth_sync").await;
    let outcomes = HashMap::from([
        ("twitter".to_owned(), PublishOutcome::Failed),
        ("linkedin".to_owned(), PublishOutcome::Published),
    ]);
    assert!(stack.sim.shared.settle_post(&service_id, &outcomes).is_some());
    // WHEN the post is Synced (once the set-up's budget shards are level again: a shard used within
    // the last interval would cost the take a second round)
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.tap.reset();
    let calls_before = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
    let path = format!("/projects/{project}/posts/post_auth_sync/sync");
    let (status, synced, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{synced}");
    // THEN X's connection is expired, written with the post in one transaction
    let writes = stack.tap.counts();
    let x = connection(&stack, &project, &token, "x").await;
    assert_eq!((x["status"].clone(), x["reason"].clone()), (json!("expired"), json!("token_expired")), "{x}");
    assert_eq!(writes.get("TransactWriteItems"), Some(&1), "{writes:?}");
    assert_eq!(writes.get("PutItem").copied().unwrap_or(0), 0, "no lone put: {writes:?}");
    let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap() - calls_before;
    assert!(calls >= 1);
    assert_eq!(
        writes.get("UpdateItem").copied().unwrap_or(0),
        1 + calls,
        "the project's Sync budget, and the shared budget once per call to the service: {writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_leases_run_passes_side_by_side_each_on_its_own_projects() {
    // GIVEN eight projects due for a check, two under each of four leases' shards of the index
    let stack = Stack::start().await;
    let lease_of =
        |n: usize| shared::domain::healing::index_shard(&ProjectId::parse(format!("proj_heal_{n}")).unwrap()) % 4;
    let mut chosen: Vec<usize> = Vec::new();
    for n in 10..200 {
        if chosen.iter().filter(|c| lease_of(**c) == lease_of(n)).count() < 2 {
            chosen.push(n);
        }
    }
    assert_eq!(chosen.len(), 8);
    for n in &chosen {
        connected_project(&stack, *n).await;
    }
    // WHEN one pass may make one Refresh (three calls) per lease, on one lease and then on four,
    // the second time twice at once
    let checked_since = |items: &[HashMap<String, aws_sdk_dynamodb::types::AttributeValue>], since: &str| {
        items
            .iter()
            .filter(|i| integration_tests::s(i, "sk") == Some("PROFILE"))
            .filter(|i| integration_tests::s(i, "checked_at").is_some_and(|at| at > since))
            .count()
    };
    let before = integration_tests::now().to_rfc3339();
    let one = Settings { connections_max_age_seconds: 0, ..fast(3) };
    let four = Settings { leases: 4, ..one };
    let single = stack.reconcile(one, PASS).await.unwrap();
    let (first, second) = (stack.reconciler(four), stack.reconciler(four));
    let (a, b) = tokio::join!(first.pass(PASS), second.pass(PASS));
    let (a, b) = (a.unwrap(), b.unwrap());
    // THEN one lease checked one project; four leases checked one each, and two invocations at
    // once never did the same lease's work twice
    assert_eq!(single.projects_refreshed, 1, "{single:?}");
    assert_eq!(a.projects_refreshed + b.projects_refreshed, 4, "{a:?} {b:?}");
    assert_eq!(checked_since(&stack.items().await, &before), 5, "five different projects checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_whose_connection_a_webhook_changed_counts_as_checked() {
    // GIVEN two projects checked at set-up, both due again two seconds later
    let stack = Stack::start().await;
    connected_project(&stack, 70).await;
    connected_project(&stack, 71).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // WHEN the service tells of a change to one of the first project's accounts by webhook
    let at = integration_tests::now();
    let event = json!({"id": "evt_checked", "event": "account.disconnected", "timestamp": at.to_rfc3339(),
        "account": {"accountId": "x70", "profileId": profile_of(70), "platform": "twitter", "disconnectionType": "unintentional"}});
    assert_eq!(stack.send(&event).await.0, 200);
    // AND a pass runs that counts a project checked over two seconds ago as due
    let settings = Settings { connections_max_age_seconds: 2, ..fast(20) };
    let report = stack.reconcile(settings, PASS).await.unwrap();
    // THEN only the other project is Refreshed: the first was checked by the webhook
    assert_eq!(report.projects_refreshed, 1, "{report:?}");
    let checked = |project: &str| {
        let project = project.to_owned();
        move |i: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            integration_tests::s(i, "pk") == Some(&format!("PROJECT#{project}"))
                && integration_tests::s(i, "sk") == Some("PROFILE")
        }
    };
    let items = stack.items().await;
    let first = items.iter().find(|i| checked("proj_heal_70")(i)).expect("the project's profile");
    assert!(integration_tests::s(first, "checked_at").is_some_and(|c| c >= at.to_rfc3339().as_str()), "{first:?}");
    // AND a webhook that changes nothing (the same news again, a new id) records no check
    let before = integration_tests::s(first, "checked_at").unwrap().to_owned();
    let again = json!({"id": "evt_checked_again", "event": "account.disconnected", "timestamp": at.to_rfc3339(),
        "account": {"accountId": "x70", "profileId": profile_of(70), "platform": "twitter", "disconnectionType": "unintentional"}});
    assert_eq!(stack.send(&again).await.0, 200);
    let items = stack.items().await;
    let first = items.iter().find(|i| checked("proj_heal_70")(i)).unwrap();
    assert_eq!(integration_tests::s(first, "checked_at"), Some(before.as_str()));
}
