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
async fn a_project_writes_a_whole_minutes_120_post_writes_at_once_and_is_refused_past_them_unstored() {
    // GIVEN a project with nothing written this minute
    let (stack, token) = stack().await;
    let posts = format!("/projects/{PROJECT}/posts");
    // WHEN a calendar's bulk schedule sends 200 drafts together
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..200).map(|n| {
        let draft = json!({"post_id": format!("draft_{n}"), "content": format!("Draft {n}"), "draft": true});
        let (stack, token, posts) = (&stack, &token, &posts);
        async move { stack.call(Method::POST, posts, Some(token), Some(draft)).await }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed < 30.0, "the writes took {elapsed} s: the test proves nothing");
    // THEN the whole minute's 120 are taken, and past them only the pace refilled meanwhile (two a
    // second); the rest are 429 rate_limited with a Retry-After
    let taken = answers.iter().filter(|(status, _, _)| *status == 201).count();
    assert!(taken >= 120, "only {taken} of the minute's 120 post writes taken at once");
    assert!(taken as f64 <= 120.0 + (2.0 * elapsed).ceil(), "{taken} taken in {elapsed} s");
    for (status, answer, headers) in answers.iter().filter(|(status, _, _)| *status != 201) {
        assert_eq!((*status, answer["error"]["code"].as_str()), (429, Some("rate_limited")), "{answer}");
        assert!(headers.contains_key("retry-after"));
    }
    // AND exactly the drafts taken are stored
    let stored = stack.all_items().await;
    let drafts =
        stored.iter().filter(|i| integration_tests::s(i, "sk").is_some_and(|sk| sk.starts_with("POST#"))).count();
    assert_eq!(drafts, taken, "one post item for each draft taken, none for a refused one");
}

#[tokio::test]
async fn every_kind_of_post_write_takes_from_one_budget_and_a_refused_one_stores_nothing() {
    // GIVEN a project allowed 4 post writes a minute (all 4 at once, then one every 15 s)
    let limits =
        shared::config::Limits { post_writes: shared::domain::limits::Limit { per_minute: 4 }, ..Default::default() };
    let stack = Stack::with(integration_tests::StackOptions { limits, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    // WHEN it publishes a post (live on X) and stores a draft
    let body = json!({"post_id": "post_live", "content": "Live", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(body)).await.0, 201);
    for n in 1..=3 {
        let draft = json!({"post_id": format!("draft_{n}"), "content": "Draft", "draft": true});
        assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(draft)).await.0, 201);
    }
    let before = (stack.all_items().await, calls_made(&stack));
    // THEN a draft, a publish and a manual delete are each 429 at once, with nothing stored or called
    let draft = json!({"post_id": "draft_4", "content": "Draft", "draft": true});
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
    // GIVEN a project allowed 4 post writes at once, which spent them on four drafts
    let limits =
        shared::config::Limits { post_writes: shared::domain::limits::Limit { per_minute: 4 }, ..Default::default() };
    let stack = Stack::with(integration_tests::StackOptions { limits, ..Default::default() }).await;
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    for (post, content) in
        [("draft_1", "Draft"), ("draft_2", "Another"), ("draft_3", "A third"), ("draft_4", "A fourth")]
    {
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

#[tokio::test]
async fn a_project_polling_the_read_routes_meets_its_read_budget_and_another_project_reads_at_once() {
    // GIVEN projects allowed 10 reads a minute (a burst of 20), every read route together
    let limits =
        shared::config::Limits { reads: shared::domain::limits::Limit { per_minute: 10 }, ..Default::default() };
    let stack = Stack::with(integration_tests::StackOptions { limits, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    stack.given_connected("proj_other", "65aa0000000000000000hd02", json!([live_account("x9", "twitter")])).await;
    let token = stack.token(PROJECT);
    let routes = [
        format!("/projects/{PROJECT}/connections"),
        format!("/projects/{PROJECT}/connections/history"),
        format!("/projects/{PROJECT}/posts/post_none"),
        format!("/projects/{PROJECT}/posts/post_none/history"),
    ];
    // WHEN it polls them, round and round, a hundred times
    let mut answers = Vec::new();
    for n in 0..100 {
        answers.push(stack.call(Method::GET, &routes[n % routes.len()], Some(&token), None).await);
    }
    // THEN its first 20 are answered as usual, and every one past them is 429 rate_limited with a
    // Retry-After, every route alike
    let served = answers.iter().take_while(|(status, _, _)| *status != 429).count();
    assert!((20..25).contains(&served), "{served} reads served before the first 429");
    let refused = &answers[served..];
    assert!(refused.len() >= 70, "{} refused", refused.len());
    for (_, answer, headers) in refused.iter().filter(|(status, _, _)| *status == 429) {
        assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
        assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    }
    // AND another project reads at once
    let other = stack.token("proj_other");
    let (status, answer, _) = stack.call(Method::GET, "/projects/proj_other/connections", Some(&other), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["connections"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_gateway_refuses_every_token_api_gateways_jwt_authorizer_refuses_and_one_without_the_project_claim_is_403()
{
    // GIVEN a project, and the app's identity provider (RS256, its keys in a JWKS)
    let (stack, _) = stack().await;
    let now = integration_tests::now().unix();
    let claims = |extra: Value| {
        let mut claims = json!({"sub": "u", "project_id": PROJECT, "iat": now, "exp": now + 600,
                                "iss": stack.issuer.url, "aud": integration_tests::JWT_AUDIENCE});
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        claims
    };
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret"),
    )
    .unwrap();
    let stranger = dev_gateway::auth::SigningKey::generate();
    let mut impostor = stranger.clone();
    impostor.kid = integration_tests::issuer_key().kid;
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims(json!({})).to_string()))
    };
    let refused = [
        ("an HS256 token", hs256),
        ("a wrong aud", stack.issuer.mint(&claims(json!({"aud": "another-app"})))),
        ("a wrong iss", stack.issuer.mint(&claims(json!({"iss": "https://id.other.example"})))),
        ("an expired token", stack.issuer.mint(&claims(json!({"exp": now - 120})))),
        ("a token not valid yet", stack.issuer.mint(&claims(json!({"nbf": now + 600})))),
        ("a key in no JWKS", impostor.sign(&claims(json!({})))),
        ("an unknown kid", stranger.sign(&claims(json!({})))),
        ("an unsigned token", unsigned),
    ];
    let before = stack.all_items().await;
    let path = format!("/projects/{PROJECT}/connections");
    // WHEN each calls a route THEN each is 401 with API Gateway's own body, and nothing is read or stored
    for (what, token) in &refused {
        let (status, body, _) = stack.call(Method::GET, &path, Some(token), None).await;
        assert_eq!((status, body), (401, json!({"message": "Unauthorized"})), "{what}");
    }
    // AND a valid token without the project claim is 403 forbidden, never a 500
    let unclaimed = stack.issuer.mint(&json!({"sub": "u", "iat": now, "exp": now + 600}));
    let (status, body, _) = stack.call(Method::GET, &path, Some(&unclaimed), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert_eq!(stack.all_items().await, before);
    // AND the issuer's own token is taken
    let (status, _, _) = stack.call(Method::GET, &path, Some(&stack.token(PROJECT)), None).await;
    assert_eq!(status, 200);
}
