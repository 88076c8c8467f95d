//! History through the dev gateway: every visible change is recorded with its source and
//! evidence, nothing else is, newest first, a page at a time, behind the project's token.

use integration_tests::{Stack, live_account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::{Platform, PostId, ProjectId};
use shared::ports::PostStore;
use zernio_sim::model::PublishOutcome;

const PROJECT: &str = "proj_hist";
const PROFILE: &str = "65aa00000000000000000e01";

async fn ready() -> (Stack, String) {
    let stack = Stack::start().await;
    stack
        .given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter"), live_account("li1", "linkedin")]))
        .await;
    let token = stack.token(PROJECT);
    (stack, token)
}

async fn history(stack: &Stack, token: &str, path: &str) -> Vec<Value> {
    let (status, page, _) = stack.call(Method::GET, path, Some(token), None).await;
    assert_eq!(status, 200, "{page}");
    page["changes"].as_array().unwrap().clone()
}

/// (platform, field, from, to, source, evidence) of each record.
fn rows(changes: &[Value]) -> Vec<(Value, String, Value, Value, String, Value)> {
    changes
        .iter()
        .map(|c| {
            (
                c["platform"].clone(),
                c["field"].as_str().unwrap().to_owned(),
                c["from"].clone(),
                c["to"].clone(),
                c["source"].as_str().unwrap().to_owned(),
                c["evidence"].clone(),
            )
        })
        .collect()
}

fn partial(event_id: &str, service_id: &str, at: &str) -> Value {
    json!({
        "id": event_id, "event": "post.partial", "timestamp": integration_tests::recent(at),
        "post": {"id": service_id, "status": "partial",
                 "platforms": [
                     {"platform": "twitter", "status": "published", "accountId": "x1", "publishedUrl": "https://x.com/h/1"},
                     {"platform": "linkedin", "status": "failed", "accountId": "li1", "error": "Rate limit exceeded"}],
                 "metadata": {"stacc_project_id": PROJECT, "stacc_post_id": "post_h", "stacc_generation": 1}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posts_life_is_recorded_change_by_change_with_its_source_and_nothing_else_is() {
    let (stack, token) = ready().await;
    // A publish the service leaves pending
    stack.sim.shared.world().outcomes = [("twitter", PublishOutcome::Pending), ("linkedin", PublishOutcome::Pending)]
        .map(|(p, o)| (p.to_owned(), o))
        .into();
    let body = json!({"post_id": "post_h", "content": "History", "platforms": ["x", "linkedin"]});
    assert_eq!(stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await.0, 201);
    let stored =
        stack.store.post(&ProjectId::parse(PROJECT).unwrap(), &PostId::parse("post_h").unwrap()).await.unwrap();
    let service_id = stored.unwrap().state.entries[&Platform::X].service_post_id.clone().unwrap().to_string();
    // Its webhook (X live, LinkedIn failed), the same again, and a late, older one
    assert_eq!(stack.send(&partial("evt_h1", &service_id, "2026-11-29T10:00:00Z")).await.1["status"], "processed");
    assert_eq!(stack.send(&partial("evt_h1", &service_id, "2026-11-29T10:00:00Z")).await.1["status"], "duplicate");
    let mut late = partial("evt_h0", &service_id, "2026-11-29T09:00:00Z");
    late["event"] = "post.scheduled".into();
    late["post"]["platforms"] =
        json!([{"platform": "twitter", "status": "pending"}, {"platform": "linkedin", "status": "pending"}]);
    assert_eq!(stack.send(&late).await.1["status"], "processed");
    // A Sync that learns nothing new, then "I deleted it on X myself"
    let sync = format!("/projects/{PROJECT}/posts/post_h/sync");
    assert_eq!(stack.call(Method::POST, &sync, Some(&token), None).await.0, 200);
    let delete = format!("/projects/{PROJECT}/posts/post_h/platforms/x/manual-delete");
    assert_eq!(stack.call(Method::POST, &delete, Some(&token), None).await.0, 200);

    let path = format!("/projects/{PROJECT}/posts/post_h/history");
    let changes = history(&stack, &token, &path).await;
    let s = |v: &str| json!(v);
    let n = Value::Null;
    let evt = s("evt_h1");
    let expected = vec![
        // newest first: the manual delete
        (s("x"), "url".into(), s("https://x.com/h/1"), n.clone(), "manual_delete".into(), n.clone()),
        (s("x"), "status".into(), s("published"), s("removed"), "manual_delete".into(), n.clone()),
        (n.clone(), "status".into(), s("partially_published"), s("failed"), "manual_delete".into(), n.clone()),
        // the webhook
        (s("x"), "url".into(), n.clone(), s("https://x.com/h/1"), "webhook".into(), evt.clone()),
        (s("x"), "status".into(), s("queued"), s("published"), "webhook".into(), evt.clone()),
        (s("linkedin"), "error".into(), n.clone(), s("Rate limit exceeded"), "webhook".into(), evt.clone()),
        (s("linkedin"), "status".into(), s("queued"), s("failed"), "webhook".into(), evt.clone()),
        (n.clone(), "status".into(), s("publishing"), s("partially_published"), "webhook".into(), evt.clone()),
        // the publish
        (s("x"), "status".into(), n.clone(), s("queued"), "publish".into(), n.clone()),
        (s("linkedin"), "status".into(), n.clone(), s("queued"), "publish".into(), n.clone()),
        (n.clone(), "status".into(), n.clone(), s("publishing"), "publish".into(), n.clone()),
    ];
    assert_eq!(rows(&changes), expected, "{changes:#?}");
    let times: Vec<&str> = changes.iter().map(|c| c["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    // Pages of 4 chain by cursor to the same list
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let (status, page, _) = stack.call(Method::GET, &format!("{path}?limit=4{query}"), Some(&token), None).await;
        assert_eq!(status, 200, "{page}");
        let got = page["changes"].as_array().unwrap();
        assert!(got.len() <= 4);
        paged.extend(got.iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, changes, "pages chain to the whole history");

    // Another project's token, an unknown post, a bad limit or cursor
    let other = stack.token("proj_other");
    assert_eq!(stack.call(Method::GET, &path, Some(&other), None).await.0, 403);
    let unknown = format!("/projects/{PROJECT}/posts/post_nope/history");
    assert_eq!(stack.call(Method::GET, &unknown, Some(&token), None).await.0, 404);
    assert_eq!(stack.call(Method::GET, &format!("{path}?limit=0"), Some(&token), None).await.0, 400);
    assert_eq!(stack.call(Method::GET, &format!("{path}?cursor=zz"), Some(&token), None).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_record_their_changes_and_a_confirming_refresh_records_none() {
    let (stack, token) = ready().await;
    let path = format!("/projects/{PROJECT}/connections/history");
    let first = history(&stack, &token, &path).await;
    // The Refresh that connected both: status and account of each, from not_connected
    let x: Vec<_> = rows(&first).into_iter().filter(|r| r.0 == json!("x")).collect();
    assert_eq!(x.len(), 2, "{first:#?}");
    assert!(
        x.iter()
            .any(|r| r.1 == "status" && r.2 == json!("not_connected") && r.3 == json!("connected") && r.4 == "refresh")
    );
    assert!(x.iter().any(|r| r.1 == "account_id" && r.2.is_null() && r.3 == json!("x1")));
    // A confirming Refresh adds nothing
    let refresh = format!("/projects/{PROJECT}/connections/refresh");
    assert_eq!(stack.call(Method::POST, &refresh, Some(&token), None).await.0, 200);
    assert_eq!(history(&stack, &token, &path).await, first);
    // A webhook revoking X adds X's records only, with the event's id
    let revoked = json!({"id": "evt_rev", "event": "account.disconnected", "timestamp": "2030-01-01T00:00:00Z",
        "account": {"accountId": "x1", "profileId": PROFILE, "platform": "twitter", "disconnectionType": "intentional"}});
    assert_eq!(stack.send(&revoked).await.1["status"], "processed");
    let only_x = history(&stack, &token, &format!("{path}?platform=x")).await;
    assert!(only_x.iter().all(|c| c["platform"] == "x"), "{only_x:#?}");
    assert_eq!(only_x[0]["to"], "revoked", "{only_x:#?}");
    assert_eq!((only_x[0]["source"].clone(), only_x[0]["evidence"].clone()), (json!("webhook"), json!("evt_rev")));
    assert_eq!(history(&stack, &token, &format!("{path}?platform=linkedin")).await.len(), 2);
    assert_eq!(stack.call(Method::GET, &format!("{path}?platform=tiktok"), Some(&token), None).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_revoked_by_a_webhook_reaches_the_changes_queue_within_seconds() {
    // GIVEN the change feed running: the table's stream → change-feed → the bus → the queue
    let stack = Stack::with(integration_tests::StackOptions { feed: true, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    let queue = stack.changes_url.clone().unwrap();
    // WHEN a webhook revokes X
    let revoked = json!({"id": "evt_feed", "event": "account.disconnected", "timestamp": "2030-01-01T00:00:00Z",
        "account": {"accountId": "x1", "profileId": PROFILE, "platform": "twitter", "disconnectionType": "intentional"}});
    assert_eq!(stack.send(&revoked).await.1["status"], "processed");
    // THEN within seconds a Connection Status Changed event says so, with its evidence
    let started = std::time::Instant::now();
    let mut seen: Vec<Value> = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(15) {
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
            seen.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
        if seen.iter().any(|e| e["detail"]["evidence"] == "evt_feed" && e["detail"]["field"] == "status") {
            break;
        }
    }
    let event = seen
        .iter()
        .find(|e| e["detail"]["evidence"] == "evt_feed" && e["detail"]["field"] == "status")
        .unwrap_or_else(|| panic!("no event for the revocation within 15 s: {seen:#?}"));
    assert_eq!(event["detail-type"], "Connection Status Changed");
    assert_eq!(event["source"], "stacc.social");
    assert_eq!((event["detail"]["platform"].clone(), event["detail"]["to"].clone()), (json!("x"), json!("revoked")));
    assert_eq!(event["detail"]["project_id"], PROJECT);
    assert!(event["detail"]["id"].as_str().is_some_and(|id| id.starts_with("connection-")), "{event}");
}
