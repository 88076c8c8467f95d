//! hardening.md end to end, through the dev gateway: replayed and crafted webhook bodies, and
//! hostile tenants of the app routes. Every answer is checked together with what it left stored.

use integration_tests::{SECRET, Stack, live_account, recent};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::{Platform, PostId, ProjectId};
use shared::ports::PostStore;
use zernio_sim::PublishOutcome;

const PROJECT: &str = "proj_hard";
const PROFILE: &str = "65aa0000000000000000hd01";

async fn stack() -> (Stack, String) {
    let stack = Stack::start().await;
    stack
        .given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter"), live_account("li1", "linkedin")]))
        .await;
    let token = stack.token(PROJECT);
    (stack, token)
}

/// A post published through the route and left pending on the service: its service post id.
async fn published(stack: &Stack, token: &str, post: &str) -> String {
    stack.sim.shared.world().outcomes = [("twitter", PublishOutcome::Pending), ("linkedin", PublishOutcome::Pending)]
        .map(|(p, o)| (p.to_owned(), o))
        .into();
    let body = json!({"post_id": post, "content": "Hardened", "platforms": ["x", "linkedin"]});
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(token), Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    let stored = stack.store.post(&ProjectId::parse(PROJECT).unwrap(), &PostId::parse(post).unwrap()).await.unwrap();
    stored.unwrap().state.entries[&Platform::X].service_post_id.clone().unwrap().to_string()
}

fn days_ago(days: i64) -> String {
    integration_tests::now().plus_seconds(-days * 24 * 3600).to_rfc3339()
}

/// A signed `post.published` naming our publication (`post`, generation 1), about `service_id`.
fn published_event(id: Option<&str>, service_id: &str, post: &str, at: &str) -> Value {
    let mut event = json!({"event": "post.published", "timestamp": at,
        "post": {"id": service_id, "status": "published",
                 "platforms": [{"platform": "twitter", "status": "published", "accountId": "x1",
                                "publishedUrl": "https://evil.example/owned"}],
                 "metadata": {"stacc_project_id": PROJECT, "stacc_post_id": post, "stacc_generation": 1}}});
    if let Some(id) = id {
        event["id"] = id.into();
    }
    event
}

#[tokio::test]
async fn a_post_event_about_another_service_post_is_ignored_and_changes_nothing() {
    // GIVEN a publication whose service post is recorded
    let (stack, token) = stack().await;
    let own = published(&stack, &token, "post_a").await;
    let before = stack.all_items().await;
    // WHEN a signed event names it in its metadata but is about another service post (a second
    // stack on the same account, or a crafted body)
    let foreign =
        published_event(Some("evt_foreign"), "65f1000000000000000000ff", "post_a", &recent("2026-11-30T10:00:00Z"));
    // THEN 200 ignored, and nothing is stored: not the event, not the link
    assert_eq!(stack.send(&foreign).await, (200, json!({"status": "ignored"})));
    assert_eq!(stack.all_items().await, before);
    // AND the same event about its own service post is applied
    let real = published_event(Some("evt_own"), &own, "post_a", &recent("2026-11-30T10:00:00Z"));
    assert_eq!(stack.send(&real).await, (200, json!({"status": "processed"})));
    let (_, post, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/posts/post_a"), Some(&token), None).await;
    let x = post["platforms"].as_array().unwrap().iter().find(|p| p["platform"] == "x").unwrap().clone();
    assert_eq!(x["status"], "published", "{post}");
}

#[tokio::test]
async fn metadata_given_as_an_array_is_no_metadata_end_to_end() {
    // GIVEN a post waiting for its service's news
    let (stack, token) = stack().await;
    let own = published(&stack, &token, "post_b").await;
    let before = stack.all_items().await;
    // WHEN a signed event gives its metadata as an array of our ids (serde would read it in field order)
    let mut event = published_event(Some("evt_array"), &own, "post_b", &recent("2026-11-30T10:00:00Z"));
    event["post"]["metadata"] = json!([PROJECT, "post_b", 1]);
    // THEN it is a post event without our metadata: 200 ignored, nothing stored
    assert_eq!(stack.send(&event).await, (200, json!({"status": "ignored"})));
    assert_eq!(stack.all_items().await, before);
}

#[tokio::test]
async fn an_event_made_more_than_seven_days_ago_is_acknowledged_and_ignored() {
    let (stack, token) = stack().await;
    let own = published(&stack, &token, "post_c").await;
    let before = stack.all_items().await;
    // WHEN a captured body made 8 days ago is delivered (its de-duplication record may be gone)
    let old = days_ago(8);
    let event = published_event(Some("evt_old"), &own, "post_c", &old);
    // THEN 200 ignored and nothing stored
    assert_eq!(stack.send(&event).await, (200, json!({"status": "ignored"})));
    assert_eq!(stack.all_items().await, before);
    // AND the same body made 6 days ago is applied
    let event = published_event(Some("evt_recent"), &own, "post_c", &days_ago(6));
    assert_eq!(stack.send(&event).await, (200, json!({"status": "processed"})));
}

#[tokio::test]
async fn a_body_without_an_id_is_one_event_whatever_id_the_unsigned_header_claims() {
    let (stack, token) = stack().await;
    let own = published(&stack, &token, "post_d").await;
    let body = published_event(None, &own, "post_d", &recent("2026-11-30T10:00:00Z")).to_string();
    let deliver = |header_id: &'static str| {
        stack
            .http
            .post(stack.webhook_url())
            .header("x-zernio-signature", shared::signature::sign(SECRET, body.as_bytes()))
            .header("x-zernio-event-id", header_id)
            .body(body.clone())
            .send()
    };
    // WHEN the same signed body arrives twice, each time under another header id
    let first: Value = deliver("evt_header_1").await.unwrap().json().await.unwrap();
    let replay: Value = deliver("evt_header_2").await.unwrap().json().await.unwrap();
    // THEN the second is the first again: its id is the body's hash
    assert_eq!((first, replay), (json!({"status": "processed"}), json!({"status": "duplicate"})));
    let items = stack.all_items().await;
    let events: Vec<&str> =
        items.iter().filter_map(|i| integration_tests::s(i, "pk")).filter(|pk| pk.starts_with("EVENT#")).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("sha256:"), "{events:?}");
}
