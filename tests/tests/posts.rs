//! Posts end to end through the dev gateway, the local stack and the simulator: publish (with
//! stale-connection detection), Sync, manual delete and the read.

use std::collections::HashMap;

use integration_tests::{Stack, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};
use zernio_sim::{Fault, FaultMode, PostChange, PublishOutcome};

const PROJECT: &str = "proj_p";
const PROFILE: &str = "65aa000000000000000000p1";

/// A project whose X, LinkedIn and Facebook are connected.
async fn ready() -> Stack {
    let stack = Stack::start().await;
    let accounts = json!([account("x1", "twitter"), account("li1", "linkedin"), account("fb1", "facebook")]);
    stack.given_connected(PROJECT, PROFILE, accounts).await;
    stack
}

async fn publish(stack: &Stack, body: Value) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await;
    (status, answer)
}

async fn route(stack: &Stack, method: Method, path: &str) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let (status, answer, _) =
        stack.call(method, &format!("/projects/{PROJECT}/posts/{path}"), Some(&token), None).await;
    (status, answer)
}

fn platforms(post: &Value) -> HashMap<String, Value> {
    post["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["platform"].as_str().unwrap().to_owned(), p.clone()))
        .collect()
}

fn service_post_id(stack: &Stack) -> String {
    stack.sim.shared.world().posts.keys().last().cloned().expect("a post on the service")
}

fn set_outcomes(stack: &Stack, outcomes: &[(&str, PublishOutcome)]) {
    stack.sim.shared.world().outcomes = outcomes.iter().map(|(p, o)| ((*p).to_owned(), *o)).collect();
}

fn change(stack: &Stack, id: &str, platforms: Value) {
    let change = PostChange { status: None, platforms: platforms.as_array().unwrap().clone() };
    stack.sim.shared.change_post(id, &change).expect("post on the service");
}

#[tokio::test]
async fn publishing_now_stores_a_generation_per_platform_with_live_links() {
    let stack = ready().await;
    let (status, post) =
        publish(&stack, json!({"post_id": "post_1", "content": "Hello", "platforms": ["x", "linkedin"]})).await;
    assert_eq!(status, 201, "{post}");
    assert_eq!(post["status"], "published");
    let all = platforms(&post);
    assert_eq!(all["x"]["status"], "published");
    assert!(all["x"]["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(all["linkedin"]["account_id"], "li1");
    let metadata = stack.sim.shared.world().posts.values().next().unwrap().metadata.clone();
    assert_eq!(metadata, json!({"stacc_project_id": PROJECT, "stacc_post_id": "post_1", "stacc_generation": 1}));
    let (_, read) = route(&stack, Method::GET, "post_1").await;
    assert_eq!(read["status"], "published");
}

#[tokio::test]
async fn a_scheduled_post_is_scheduled_and_a_draft_is_stored_without_a_call() {
    let stack = ready().await;
    let (status, post) = publish(
        &stack,
        json!({"post_id": "post_s", "content": "Later", "platforms": ["x"], "scheduled_for": "2030-01-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, post["status"].as_str(), post["scheduled_for"].as_str()),
        (201, Some("scheduled"), Some("2030-01-01T10:00:00Z"))
    );
    let calls = stack.sim.shared.stats()["total_calls"].clone();
    let (status, draft) =
        publish(&stack, json!({"post_id": "post_d", "content": "Not yet", "platforms": ["x"], "draft": true})).await;
    assert_eq!(
        (status, draft["status"].as_str(), draft["platforms"].as_array().map(Vec::len)),
        (201, Some("draft"), Some(0))
    );
    assert_eq!(stack.sim.shared.stats()["total_calls"], calls, "a draft calls nothing");
}

#[tokio::test]
async fn a_platform_not_connected_is_refused_up_front_and_the_new_post_is_kept_as_a_draft() {
    let stack = ready().await;
    let (status, refusal) =
        publish(&stack, json!({"post_id": "post_r", "content": "Hi", "platforms": ["x", "instagram"]})).await;
    assert_eq!(status, 409);
    assert_eq!(refusal["error"]["code"], "reconnect_required");
    assert_eq!(refusal["error"]["platforms"], json!(["instagram"]));
    assert_eq!(refusal["error"]["verified"], true);
    assert_eq!(refusal["error"]["message"], "Reconnect Instagram, then publish again.");
    assert!(stack.publisher_calls().get("POST /v1/posts").is_none(), "the service was not called");
    let (status, kept) = route(&stack, Method::GET, "post_r").await;
    assert_eq!((status, kept["status"].as_str()), (200, Some("draft")));
}

#[tokio::test]
async fn publishing_again_to_a_live_platform_is_already_published_and_duplicate_content_is_refused() {
    let stack = ready().await;
    assert_eq!(publish(&stack, json!({"post_id": "post_1", "content": "Same", "platforms": ["x"]})).await.0, 201);
    let (status, again) = publish(&stack, json!({"post_id": "post_1", "platforms": ["x"]})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("already_published")));
    let (status, dup) = publish(&stack, json!({"post_id": "post_2", "content": "Same", "platforms": ["x"]})).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("duplicate_content")));
    let (_, kept) = route(&stack, Method::GET, "post_2").await;
    assert_eq!(kept["status"], "draft", "a refused publish leaves the new post stored as a draft");
}

#[tokio::test]
async fn an_account_no_longer_in_the_profile_is_found_at_publish_and_only_it_is_expired() {
    let stack = ready().await;
    // Facebook's account left the profile on the service; our record still says connected.
    stack.set_accounts(PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    let (status, refusal) = publish(
        &stack,
        json!({"post_id": "post_f", "content": "To all three", "platforms": ["x", "linkedin", "facebook"]}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(refusal["error"]["platforms"], json!(["facebook"]));
    assert_eq!(refusal["error"]["verified"], true);
    let token = stack.token(PROJECT);
    let (_, read, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    let status_of = |p: &str| {
        read["connections"].as_array().unwrap().iter().find(|c| c["platform"] == p).unwrap()["status"].clone()
    };
    assert_eq!(
        (status_of("facebook"), status_of("x"), status_of("linkedin")),
        (json!("expired"), json!("connected"), json!("connected"))
    );
}

#[tokio::test]
async fn with_the_live_list_unreadable_a_stale_refusal_changes_nothing_and_is_unverified() {
    let stack = ready().await;
    stack.set_accounts(PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    // The post is stored as a draft first; compare the connections only.
    let connections = |items: Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>| {
        items
            .into_iter()
            .filter(|i| integration_tests::s(i, "sk").is_some_and(|sk| sk.starts_with("CONN#")))
            .collect::<Vec<_>>()
    };
    let before = connections(stack.items().await);
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::Status { code: 500 },
        path_prefix: Some("/v1/accounts".into()),
        times: None,
    });
    let (status, refusal) =
        publish(&stack, json!({"post_id": "post_u", "content": "Hi all", "platforms": ["x", "linkedin", "facebook"]}))
            .await;
    assert_eq!(status, 409);
    assert_eq!(refusal["error"]["verified"], false);
    assert_eq!(refusal["error"]["platforms"], json!(["x", "linkedin", "facebook"]));
    assert_eq!(connections(stack.items().await), before, "every connection unchanged");
}

#[tokio::test]
async fn a_publish_whose_answer_is_lost_is_202_and_its_follow_up_records_the_one_post() {
    // GIVEN the service takes the publish but the answer is lost behind a gateway's 504
    let stack = ready().await;
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::LostAnswer { code: 504 },
        path_prefix: Some("/v1/posts".into()),
        times: Some(1),
    });
    let body = json!({"post_id": "post_t", "content": "Once", "platforms": ["x"]});
    // WHEN it is published THEN 202: it may have been taken, so nothing is said to have failed
    let (status, post) = publish(&stack, body.clone()).await;
    assert_eq!(
        (status, post["status"].as_str(), post["platforms"][0]["status"].as_str()),
        (202, Some("publishing"), Some("queued"))
    );
    // AND pressing Publish again is refused: the publication is going out
    let (status, again) = publish(&stack, body).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("already_published")));
    // WHEN the follow-up runs THEN the one post on the service is recorded, published
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    stack.poll(30).await;
    let post = route(&stack, Method::GET, "post_t").await.1;
    assert_eq!((post["status"].as_str(), post["platforms"][0]["url"].is_string()), (Some("published"), true), "{post}");
    assert_eq!(stack.sim.shared.stats()["posts_created"], 1);
}

#[tokio::test]
async fn a_webhook_that_beats_the_publish_answer_ends_in_the_same_state() {
    let early = ready().await;
    early.register_webhook().await;
    early.sim.shared.world().webhooks_before_answer = true;
    let body = json!({"post_id": "post_w", "content": "Race", "platforms": ["x", "linkedin"]});
    assert_eq!(publish(&early, body.clone()).await.0, 201);

    let late = ready().await;
    assert_eq!(publish(&late, body).await.0, 201);
    let id = service_post_id(&late);
    let event = late.sim.shared.post_event("post.published", &id).unwrap();
    assert_eq!(late.send(&event).await.0, 200);

    let (a, b) = (route(&early, Method::GET, "post_w").await.1, route(&late, Method::GET, "post_w").await.1);
    let strip = |mut v: Value| {
        v["updated_at"] = Value::Null;
        for p in v["platforms"].as_array_mut().unwrap() {
            p["url"] = json!(p["url"].is_string());
            p["platform_post_id"] = json!(p["platform_post_id"].is_string());
            p["published_at"] = json!(p["published_at"].is_string());
        }
        v["published_at"] = json!(v["published_at"].is_string());
        v
    };
    assert_eq!(strip(a), strip(b));
}

#[tokio::test]
async fn sync_reads_each_platform_and_the_overall_status_from_the_service() {
    let stack = ready().await;
    set_outcomes(
        &stack,
        &[
            ("twitter", PublishOutcome::Pending),
            ("linkedin", PublishOutcome::Pending),
            ("facebook", PublishOutcome::Pending),
        ],
    );
    let (_, post) =
        publish(&stack, json!({"post_id": "post_y", "content": "Sync me", "platforms": ["x", "linkedin", "facebook"]}))
            .await;
    assert_eq!(post["status"], "publishing");
    let id = service_post_id(&stack);
    change(
        &stack,
        &id,
        json!([{"platform": "twitter", "status": "published", "platformPostUrl": "https://x.com/s/1", "platformPostId": "1"},
                               {"platform": "linkedin", "status": "failed", "errorMessage": "Token expired"}]),
    );
    let (status, synced) = route(&stack, Method::POST, "post_y/sync").await;
    assert_eq!(status, 200);
    assert_eq!(synced["changed"], true);
    let all = platforms(&synced["post"]);
    assert_eq!((all["x"]["status"].as_str(), all["x"]["url"].as_str()), (Some("published"), Some("https://x.com/s/1")));
    assert_eq!(
        (all["linkedin"]["status"].as_str(), all["linkedin"]["error"].as_str()),
        (Some("failed"), Some("Token expired"))
    );
    assert_eq!(all["facebook"]["status"], "queued");
    assert_eq!(synced["post"]["status"], "publishing", "a platform still queued");
    change(&stack, &id, json!([{"platform": "facebook", "status": "published", "platformPostUrl": "https://fb/1"}]));
    assert_eq!(route(&stack, Method::POST, "post_y/sync").await.1["post"]["status"], "partially_published");
    // The failed platform is retried on the service and succeeds: partially published moves up.
    change(&stack, &id, json!([{"platform": "linkedin", "status": "published", "platformPostUrl": "https://li/1"}]));
    let (_, synced) = route(&stack, Method::POST, "post_y/sync").await;
    assert_eq!(synced["post"]["status"], "published");
    // Later reports of publishing or failed do not move a published post back.
    change(
        &stack,
        &id,
        json!([{"platform": "twitter", "status": "failed"}, {"platform": "linkedin", "status": "publishing"}]),
    );
    let (_, synced) = route(&stack, Method::POST, "post_y/sync").await;
    assert_eq!((synced["post"]["status"].as_str(), synced["changed"].as_bool()), (Some("published"), Some(false)));
}

#[tokio::test]
async fn sync_of_a_post_all_failed_reads_failed() {
    let stack = ready().await;
    set_outcomes(&stack, &[("twitter", PublishOutcome::Failed)]);
    let (_, post) = publish(&stack, json!({"post_id": "post_x", "content": "Nope", "platforms": ["x"]})).await;
    assert_eq!(post["status"], "failed");
    assert_eq!(route(&stack, Method::POST, "post_x/sync").await.1["post"]["status"], "failed");
}

#[tokio::test]
async fn publishing_again_to_a_failed_platform_starts_a_new_generation() {
    let stack = ready().await;
    set_outcomes(&stack, &[("twitter", PublishOutcome::Failed)]);
    let (_, first) = publish(&stack, json!({"post_id": "post_g", "content": "Try", "platforms": ["x"]})).await;
    assert_eq!(first["status"], "failed");
    set_outcomes(&stack, &[]);
    let (status, second) =
        publish(&stack, json!({"post_id": "post_g", "content": "Try again", "platforms": ["x"]})).await;
    assert_eq!((status, second["status"].as_str()), (201, Some("published")));
    let generations: Vec<u64> =
        stack.sim.shared.world().posts.values().map(|p| p.metadata["stacc_generation"].as_u64().unwrap()).collect();
    assert_eq!(generations, vec![1, 2]);
}

#[tokio::test]
async fn sync_of_a_never_published_post_is_409_without_a_call_and_an_unknown_post_404() {
    let stack = ready().await;
    publish(&stack, json!({"post_id": "post_n", "content": "Draft", "platforms": ["x"], "draft": true})).await;
    let calls = stack.sim.shared.stats()["total_calls"].clone();
    let (status, refusal) = route(&stack, Method::POST, "post_n/sync").await;
    assert_eq!((status, refusal["error"]["code"].as_str()), (409, Some("not_published")));
    assert_eq!(stack.sim.shared.stats()["total_calls"], calls);
    assert_eq!(route(&stack, Method::POST, "no_such_post/sync").await.0, 404);
    assert_eq!(route(&stack, Method::GET, "no_such_post").await.0, 404);
}

#[tokio::test]
async fn a_post_deleted_on_the_service_syncs_to_cancelled_keeping_published_at() {
    let stack = ready().await;
    let (_, post) = publish(&stack, json!({"post_id": "post_c", "content": "Gone soon", "platforms": ["x"]})).await;
    let published_at = post["published_at"].clone();
    assert!(published_at.is_string());
    stack.sim.shared.delete_post(&service_post_id(&stack));
    let (_, synced) = route(&stack, Method::POST, "post_c/sync").await;
    assert_eq!(synced["post"]["status"], "cancelled");
    assert_eq!(synced["post"]["published_at"], published_at);
}

#[tokio::test]
async fn sync_with_the_service_unavailable_is_503_and_changes_nothing() {
    // (a 429 last: it shuts the shared budget for its Retry-After, and is answered 429 rate_limited)
    let stack = ready().await;
    set_outcomes(&stack, &[("twitter", PublishOutcome::Pending)]);
    publish(&stack, json!({"post_id": "post_z", "content": "Wait", "platforms": ["x"]})).await;
    change(&stack, &service_post_id(&stack), json!([{"platform": "twitter", "status": "published"}]));
    for (name, mode) in [
        ("down", FaultMode::Down),
        ("5xx", FaultMode::Status { code: 502 }),
        ("timeout", FaultMode::Slow { millis: 6_000 }),
        ("429", FaultMode::RateLimited { retry_after: 9 }),
    ] {
        let before = stack.items().await;
        stack.sim.shared.set_fault(Fault { mode, ..Default::default() });
        let (status, refusal) = route(&stack, Method::POST, "post_z/sync").await;
        stack.sim.shared.set_fault(Fault::default());
        let expected = if name == "429" { (429, Some("rate_limited")) } else { (503, Some("publisher_unavailable")) };
        assert_eq!((status, refusal["error"]["code"].as_str()), expected, "{name}");
        assert_eq!(stack.items().await, before, "{name}");
    }
}

#[tokio::test]
async fn manual_delete_removes_the_copy_rederives_the_post_and_is_idempotent() {
    let stack = ready().await;
    publish(&stack, json!({"post_id": "post_m", "content": "Delete me", "platforms": ["x", "linkedin"]})).await;
    let calls = stack.sim.shared.stats()["total_calls"].clone();
    let (status, post) = route(&stack, Method::POST, "post_m/platforms/x/manual-delete").await;
    assert_eq!(status, 200);
    let all = platforms(&post);
    assert_eq!((all["x"]["status"].as_str(), all["x"]["url"].is_null()), (Some("removed"), true));
    assert_eq!(post["status"], "published", "LinkedIn is still live");
    let (_, again) = route(&stack, Method::POST, "post_m/platforms/x/manual-delete").await;
    assert_eq!(again, post, "twice is once");
    let (_, both) = route(&stack, Method::POST, "post_m/platforms/linkedin/manual-delete").await;
    assert_eq!(both["status"], "removed");
    assert_eq!(stack.sim.shared.stats()["total_calls"], calls, "no call to the service");
    // The service still reports it published: neither a webhook nor a Sync brings it back.
    let event = stack.sim.shared.post_event("post.published", &service_post_id(&stack)).unwrap();
    assert_eq!(stack.send(&event).await.0, 200);
    let (_, synced) = route(&stack, Method::POST, "post_m/sync").await;
    assert_eq!(synced["post"]["status"], "removed");
    // Publishing again to X shows the new live post.
    let (status, again) =
        publish(&stack, json!({"post_id": "post_m", "content": "Back again", "platforms": ["x"]})).await;
    assert_eq!(status, 201, "{again}");
    let all = platforms(&again);
    assert_eq!((all["x"]["status"].as_str(), all["x"]["url"].is_string()), (Some("published"), true));
    assert_eq!(again["status"], "published");
}

#[tokio::test]
async fn manual_delete_of_a_copy_that_is_not_live_is_409_and_of_a_missing_one_404() {
    let stack = ready().await;
    set_outcomes(&stack, &[("twitter", PublishOutcome::Failed)]);
    publish(&stack, json!({"post_id": "post_q", "content": "Failed", "platforms": ["x"]})).await;
    let (status, refusal) = route(&stack, Method::POST, "post_q/platforms/x/manual-delete").await;
    assert_eq!((status, refusal["error"]["code"].as_str()), (409, Some("not_published_on_platform")));
    assert_eq!(route(&stack, Method::POST, "post_q/platforms/linkedin/manual-delete").await.0, 404);
    assert_eq!(route(&stack, Method::POST, "nope/platforms/x/manual-delete").await.0, 404);
    assert_eq!(route(&stack, Method::POST, "post_q/platforms/tiktok/manual-delete").await.0, 400);
}

#[tokio::test]
async fn every_post_route_refuses_another_projects_token_and_bad_bodies() {
    let stack = ready().await;
    publish(&stack, json!({"post_id": "post_a", "content": "Mine", "platforms": ["x"]})).await;
    let before = stack.items().await;
    let other = stack.token("proj_other");
    for (method, path) in [
        (Method::POST, format!("/projects/{PROJECT}/posts")),
        (Method::GET, format!("/projects/{PROJECT}/posts/post_a")),
        (Method::POST, format!("/projects/{PROJECT}/posts/post_a/sync")),
        (Method::POST, format!("/projects/{PROJECT}/posts/post_a/platforms/x/manual-delete")),
    ] {
        let (status, body, _) =
            stack.call(method.clone(), &path, Some(&other), Some(json!({"content": "x", "platforms": ["x"]}))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{path}");
        assert_eq!(stack.call(method, &path, None, None).await.0, 401, "{path}");
    }
    for bad in [
        json!({"content": 7, "platforms": ["x"]}),
        json!({"content": "Hi", "platforms": ["tiktok"]}),
        json!({"content": "Hi"}),
        json!("text"),
    ] {
        assert_eq!(publish(&stack, bad.clone()).await.0, 400, "{bad}");
    }
    assert_eq!(stack.items().await, before, "refused requests store nothing");
}

#[tokio::test]
async fn a_publish_reads_the_post_profile_and_budget_in_one_request_and_costs_six_in_all() {
    let stack = ready().await;
    // (the shared budget's first round assumes a level shard: a shard the set-up used within the
    // last interval would cost a second round here)
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stack.tap.reset();
    let (status, post) =
        publish(&stack, json!({"post_id": "post_cost", "content": "Count me", "platforms": ["x", "linkedin"]})).await;
    assert_eq!(status, 201, "{post}");
    let counts: Vec<(String, u64)> = stack.tap.counts().into_iter().collect();
    let expected = [("BatchGetItem", 1), ("Query", 1), ("TransactWriteItems", 2), ("UpdateItem", 2)];
    assert_eq!(
        counts,
        expected.map(|(op, n)| (op.to_owned(), n)),
        "four writes: the call (and the post write, in the same item) taken from the project's budget and \
         the call from the shared one, the publication stored before the call with its draft in an item of its \
         own, and the answer with its history"
    );
    // A project with no profile yet: the same one read tells both.
    let stack = Stack::start().await;
    let token = stack.token("proj_none");
    let body = json!({"post_id": "p", "content": "x", "platforms": ["x"]});
    let (status, answer, _) = stack.call(Method::POST, "/projects/proj_none/posts", Some(&token), Some(body)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("reconnect_required")));
    let counts: Vec<(String, u64)> = stack.tap.counts().into_iter().collect();
    let expected = [("BatchGetItem", 1), ("TransactWriteItems", 1), ("UpdateItem", 1)];
    assert_eq!(
        counts,
        expected.map(|(op, n)| (op.to_owned(), n)),
        "no profile: no query; the draft kept with its first history record, a post write taken from the budget"
    );
}

#[tokio::test]
async fn media_reach_the_service_typed_and_read_back_typed() {
    let stack = ready().await;
    let reel = "https://cdn.example.com/reels/launch.MP4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab.jpg";
    let body = json!({"post_id": "post_media", "content": "Launch reel", "platforms": ["x"],
                      "media_urls": [reel, "https://cdn.example.com/party.gif", "https://cdn.example.com/deck.pdf",
                                     "https://cdn.example.com/photo.jpeg"],
                      "media": [{"url": "https://cdn.example.com/stream/123", "type": "video"}]});
    let (status, post) = publish(&stack, body).await;
    assert_eq!(status, 201, "{post}");
    let sent = stack.sim.shared.world().posts.values().next().unwrap().media_items.clone();
    let types: Vec<&str> = sent.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["video", "gif", "document", "image", "video"], "what the service was told");
    assert_eq!(sent[0]["url"], reel, "the presigned URL goes out whole");
    let (_, read) = route(&stack, Method::GET, "post_media").await;
    assert_eq!(read["media"], json!(sent), "the post reads back its media typed");
    assert_eq!(read["media_urls"].as_array().unwrap().len(), 5, "and the bare list for older readers");
}

#[tokio::test]
async fn a_media_type_the_service_does_not_know_is_refused_by_it() {
    let stack = ready().await;
    let body = json!({"content": "odd", "platforms": [{"platform": "twitter", "accountId": "x1"}], "publishNow": true,
                      "mediaItems": [{"type": "audio", "url": "https://cdn.example.com/a.mp3"}]});
    let response = stack
        .http
        .post(format!("{}/v1/posts", stack.sim.api_url()))
        .bearer_auth("sk_local")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("type must be one of image, video, gif, document"), "{answer}");
    assert_eq!(stack.sim.shared.stats()["posts_created"], 0);
}

#[tokio::test]
async fn a_time_to_publish_that_has_passed_is_a_400_and_nothing_is_stored() {
    let stack = ready().await;
    let before = stack.items().await;
    let calls = stack.sim.shared.stats()["total_calls"].clone();
    let an_hour_ago = integration_tests::now().plus_seconds(-3600).to_rfc3339();
    let body = json!({"post_id": "post_late", "content": "Too late", "platforms": ["x"], "scheduled_for": an_hour_ago});
    let (status, refusal) = publish(&stack, body).await;
    assert_eq!((status, refusal["error"]["code"].as_str()), (400, Some("invalid_request")));
    assert!(refusal["error"]["message"].as_str().unwrap().contains("in the past"), "{refusal}");
    assert_eq!(stack.items().await, before, "nothing stored");
    assert_eq!(stack.sim.shared.stats()["total_calls"], calls, "no call to the service");
    assert_eq!(route(&stack, Method::GET, "post_late").await.0, 404);
}
