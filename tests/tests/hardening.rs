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

fn calls_made(stack: &Stack) -> u64 {
    stack.sim.shared.stats()["total_calls"].as_u64().unwrap()
}

#[tokio::test]
async fn an_app_body_over_256_kb_is_refused_unread_with_413_on_every_route() {
    let (stack, token) = stack().await;
    let before = (stack.all_items().await, calls_made(&stack));
    // A body that is not even JSON: read, it would be a 400; refused unread, it is a 413.
    let huge = "{".repeat(256 * 1024 + 1);
    for path in ["/posts", "/connections/x/connect", "/connections/refresh", "/posts/post_z/sync"] {
        stack.tap.reset();
        let response = stack
            .http
            .post(format!("{}/projects/{PROJECT}{path}", stack.gateway.url()))
            .bearer_auth(&token)
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "payload_too_large", "{path}");
        assert_eq!(stack.tap.total(), 0, "{path}: not one request made");
    }
    assert_eq!((stack.all_items().await, calls_made(&stack)), before);
    // AND a body of 256 KB exactly is read (and refused for what it says)
    let (status, answer, _) = stack
        .call(
            Method::POST,
            &format!("/projects/{PROJECT}/posts"),
            Some(&token),
            Some(json!({"content": "x".repeat(256 * 1024 - 14)})),
        )
        .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{answer}");
}

#[tokio::test]
async fn a_redirect_url_off_the_allowed_origins_is_refused_before_any_call() {
    let (stack, token) = stack().await;
    let connect = format!("/projects/{PROJECT}/connections/x/connect");
    let before = (stack.all_items().await, calls_made(&stack));
    for url in [
        "https://evil.test/cb",
        "http://localhost:3000.evil.test/cb",
        "http://localhost:3000@evil.test/",
        "https://localhost:3000/",
    ] {
        let (status, answer, _) =
            stack.call(Method::POST, &connect, Some(&token), Some(json!({"redirect_url": url}))).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{url}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("http://localhost:3000"), "{answer}");
    }
    assert_eq!((stack.all_items().await, calls_made(&stack)), before, "no call, nothing stored");
    let (status, link, _) = stack
        .call(
            Method::POST,
            &connect,
            Some(&token),
            Some(json!({"redirect_url": "http://127.0.0.1:3000/settings?tab=social"})),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    assert!(link["auth_url"].as_str().unwrap().contains("redirect_url=http"), "{link}");
}

#[tokio::test]
async fn connect_is_budgeted_per_project_ten_a_minute_with_a_burst_of_twenty() {
    let (stack, token) = stack().await;
    let connect = format!("/projects/{PROJECT}/connections/linkedin/connect");
    for n in 0..20 {
        assert_eq!(stack.call(Method::POST, &connect, Some(&token), None).await.0, 200, "connect {n}");
    }
    let before = (stack.all_items().await, calls_made(&stack));
    // WHEN the project asks once more within the minute THEN 429 at once, no call, nothing changed
    let (status, answer, headers) = stack.call(Method::POST, &connect, Some(&token), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{answer}");
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!((stack.all_items().await, calls_made(&stack)), before);
    // AND another project's Connect is its own
    stack.given_connected("proj_other", "65aa0000000000000000hd02", json!([live_account("x9", "twitter")])).await;
    let other = stack.token("proj_other");
    let (status, _, _) =
        stack.call(Method::POST, "/projects/proj_other/connections/x/connect", Some(&other), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn post_writes_are_at_most_120_a_minute_per_project_and_a_refused_draft_is_not_stored() {
    // GIVEN a project that published a post, live on X
    let (stack, token) = stack().await;
    let posts = format!("/projects/{PROJECT}/posts");
    let body = json!({"post_id": "post_live", "content": "Live", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(body)).await.0, 201);
    // WHEN it writes drafts as fast as it can THEN they are stored until its budget is spent:
    // at least half a minute's at once, never more than 120 within the minute
    let started = std::time::Instant::now();
    let mut written = 1;
    let refused = loop {
        let draft =
            json!({"post_id": format!("draft_{written}"), "content": format!("Draft {written}"), "draft": true});
        let (status, answer, _) = stack.call(Method::POST, &posts, Some(&token), Some(draft)).await;
        if status != 201 {
            break (status, answer);
        }
        written += 1;
        assert!(written <= 120, "more than 120 post writes were taken");
    };
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the writes took a minute: the test proves nothing"
    );
    assert!(written >= 60, "only {written} post writes taken");
    assert_eq!((refused.0, refused.1["error"]["code"].as_str()), (429, Some("rate_limited")), "{}", refused.1);
    let refused_draft = format!("draft_{written}");
    let stored = stack.all_items().await;
    assert!(!stored.iter().any(|i| integration_tests::s(i, "sk").is_some_and(|sk| sk.ends_with(&refused_draft))));
}

#[tokio::test]
async fn every_kind_of_post_write_takes_from_one_budget_and_a_refused_one_stores_nothing() {
    // GIVEN a project allowed 4 post writes a minute (2 at once, then one every 20 s)
    let limits =
        shared::config::Limits { post_writes: shared::domain::limits::Limit { per_minute: 4 }, ..Default::default() };
    let stack = Stack::with(integration_tests::StackOptions { limits, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    // WHEN it publishes a post (live on X) and stores a draft
    let body = json!({"post_id": "post_live", "content": "Live", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(body)).await.0, 201);
    let draft = json!({"post_id": "draft_1", "content": "Draft", "draft": true});
    assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(draft)).await.0, 201);
    let before = (stack.all_items().await, calls_made(&stack));
    // THEN a draft, a publish and a manual delete are each 429 at once, with nothing stored or called
    let draft = json!({"post_id": "draft_2", "content": "Draft", "draft": true});
    let publish = json!({"post_id": "post_2", "content": "Two", "platforms": ["x"]});
    let delete = format!("/projects/{PROJECT}/posts/post_live/platforms/x/manual-delete");
    for (path, body) in [(posts.clone(), Some(draft)), (posts.clone(), Some(publish)), (delete, None)] {
        let (status, answer, headers) = stack.call(Method::POST, &path, Some(&token), body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{path}: {answer}");
        assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 10, "{path}");
    }
    assert_eq!((stack.all_items().await, calls_made(&stack)), before);
    // AND another project writes freely
    stack.given_connected("proj_other", "65aa0000000000000000hd02", json!([live_account("x9", "twitter")])).await;
    let other = stack.token("proj_other");
    let draft = json!({"post_id": "draft_1", "content": "Mine", "draft": true});
    assert_eq!(stack.call(Method::POST, "/projects/proj_other/posts", Some(&other), Some(draft)).await.0, 201);
}

#[tokio::test]
async fn a_draft_sent_again_unchanged_writes_nothing_and_spends_no_post_write() {
    // GIVEN a project allowed 2 post writes at once, which spent them on two drafts
    let limits =
        shared::config::Limits { post_writes: shared::domain::limits::Limit { per_minute: 4 }, ..Default::default() };
    let stack = Stack::with(integration_tests::StackOptions { limits, ..Default::default() }).await;
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    for (post, content) in [("draft_1", "Draft"), ("draft_2", "Another")] {
        let draft = json!({"post_id": post, "content": content, "draft": true});
        assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(draft)).await.0, 201);
    }
    let before = stack.all_items().await;
    // WHEN autosave sends the first draft again, unchanged, ten times
    for _ in 0..10 {
        let again = json!({"post_id": "draft_1", "content": "Draft", "draft": true});
        let (status, answer, _) = stack.call(Method::POST, &posts, Some(&token), Some(again)).await;
        // THEN each is the stored draft, not a refusal
        assert_eq!(
            (status, answer["post_id"].as_str(), answer["status"].as_str()),
            (201, Some("draft_1"), Some("draft"))
        );
    }
    // AND nothing was written, the budget included
    assert_eq!(stack.all_items().await, before);
    // AND a changed draft is still a post write, refused while the budget is spent
    let edited = json!({"post_id": "draft_1", "content": "Draft, edited", "draft": true});
    let (status, answer, _) = stack.call(Method::POST, &posts, Some(&token), Some(edited)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{answer}");
    assert_eq!(stack.all_items().await, before);
}
