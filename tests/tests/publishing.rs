//! Publishing as the real service behaves, end to end on the simulator: a publish-now runs inside
//! the service's request for as long as it takes (40 s for a video here), the route answers 202
//! within its wait, and the follow-up, webhooks and the reconciler finish it, with exactly one
//! post on the service per publication; both idempotency layers, 207, over-limit accounts,
//! accounts switched off for posting, and samples from the dashboard.

use std::time::{Duration, Instant};

use integration_tests::{Stack, StackOptions, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::healing::Settings;
use shared::handlers::publishing::Timing;
use zernio_sim::{Behaviour, Fault, FaultMode, PublishOutcome};

const PROJECT: &str = "proj_v";
const PROFILE: &str = "65aa000000000000000000v1";
const WAIT: Duration = Duration::from_secs(2);

/// A project whose X and LinkedIn are connected, with follow-ups polled as in AWS.
async fn ready() -> Stack {
    let timing = Timing { wait: WAIT, follow_up_seconds: 1 };
    let stack = Stack::with(StackOptions { poller: true, publish_timing: timing, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack
}

fn behave(stack: &Stack, behaviour: Behaviour) {
    stack.sim.shared.world().behaviour = behaviour;
}

async fn publish(stack: &Stack, body: Value) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await;
    (status, answer)
}

async fn read(stack: &Stack, post: &str) -> Value {
    let token = stack.token(PROJECT);
    stack.call(Method::GET, &format!("/projects/{PROJECT}/posts/{post}"), Some(&token), None).await.1
}

/// Reads the post until `done` says it is, for at most `within`.
async fn until(stack: &Stack, post: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let read = read(stack, post).await;
        if done(&read) || started.elapsed() > within {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ours_on_the_service(stack: &Stack) -> usize {
    stack.sim.shared.world().posts.values().filter(|p| p.metadata["stacc_project_id"] == PROJECT).count()
}

/// A 40-second video publish: 202 within the wait, then published with its link.
async fn a_long_video(with_webhook: bool) {
    // GIVEN the service takes 40 s to publish a video to X
    let stack = ready().await;
    if with_webhook {
        stack.register_webhook().await;
    }
    let millis = [("twitter".to_owned(), 40_000)].into_iter().collect();
    behave(&stack, Behaviour { publish_millis: millis, ..Behaviour::default() });
    // WHEN the app publishes it
    let started = Instant::now();
    let body = json!({"post_id": "post_video", "content": "Our launch video", "platforms": ["x"],
                      "media_urls": ["https://cdn.example/launch.mp4"]});
    let (status, answer) = publish(&stack, body).await;
    // THEN it is answered 202 within the wait and a second, the post `publishing`, X `queued`
    assert!(started.elapsed() <= WAIT + Duration::from_secs(1), "answered after {:?}", started.elapsed());
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["status"].as_str(), answer["platforms"][0]["status"].as_str()),
        (Some("publishing"), Some("queued"))
    );
    // AND while it goes out its content cannot change (the follow-up sends it again, byte for byte),
    // nor can the post go out again elsewhere (one publication of a post is sent at a time)
    let edit = json!({"post_id": "post_video", "content": "Another text", "draft": true});
    assert_eq!(publish(&stack, edit).await.1["error"]["code"], "already_published");
    let elsewhere = json!({"post_id": "post_video", "platforms": ["linkedin"]});
    assert_eq!(publish(&stack, elsewhere).await.1["error"]["code"], "already_published");
    // AND the follow-up records the service's post while it still publishes
    let known = until(&stack, "post_video", Duration::from_secs(15), |_| {
        stack.sim.shared.world().posts.values().any(|p| p.metadata["stacc_post_id"] == "post_video")
    })
    .await;
    assert_eq!(known["status"], "publishing", "{known}");
    if !with_webhook {
        // Without a webhook the reconciler finds it once its grace has passed.
        tokio::time::sleep(Duration::from_secs(41).saturating_sub(started.elapsed())).await;
        let settings = Settings { grace_seconds: 0, ..Settings::default() };
        stack.reconcile(settings, Duration::from_secs(20)).await.expect("a pass");
    }
    // AND it ends published with its link, one post on the service
    let done = until(&stack, "post_video", Duration::from_secs(60), |p| p["status"] == "published").await;
    assert_eq!(done["status"], "published", "{done}");
    assert!(done["platforms"][0]["url"].as_str().is_some_and(|u| u.starts_with("https://")), "{done}");
    assert_eq!(ours_on_the_service(&stack), 1);
    // AND its history holds every state the app saw: publishing (the 202), then published
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/posts/post_video/history");
    let (_, page, _) = stack.call(Method::GET, &path, Some(&token), None).await;
    let timeline: Vec<(Value, Value, Value)> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|c| c["field"] == "status")
        .map(|c| (c["platform"].clone(), c["from"].clone(), c["to"].clone()))
        .collect();
    let (post, x, null) = (Value::Null, json!("x"), Value::Null);
    let expected = [
        (x.clone(), null.clone(), json!("queued")),
        (post.clone(), null, json!("publishing")),
        (x, json!("queued"), json!("published")),
        (post, json!("publishing"), json!("published")),
    ];
    let got: std::collections::BTreeSet<_> = timeline.iter().map(|t| format!("{t:?}")).collect();
    assert_eq!(timeline.len(), 4, "{page}");
    assert!(expected.iter().all(|e| got.contains(&format!("{e:?}"))), "{timeline:?}");
    let at = |to: &str| timeline.iter().position(|t| t.0.is_null() && t.2 == to).unwrap();
    assert!(at("publishing") < at("published"), "{timeline:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_40_second_video_is_202_within_the_wait_and_ends_published_with_and_without_the_webhook() {
    tokio::join!(a_long_video(true), a_long_video(false));
}

#[tokio::test]
async fn a_lost_answer_is_adopted_after_the_request_id_and_the_key_are_forgotten() {
    // GIVEN the service forgets request ids and keys at once, and loses the answer to the create
    let stack = ready().await;
    behave(&stack, Behaviour { request_id_seconds: 0, idempotency_seconds: 0, ..Behaviour::default() });
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::LostAnswer { code: 504 },
        path_prefix: Some("/v1/posts".into()),
        times: Some(1),
    });
    // WHEN it is published
    let (status, _) =
        publish(&stack, json!({"post_id": "post_lost", "content": "Once only", "platforms": ["x"]})).await;
    assert_eq!(status, 202);
    // THEN the follow-up's content-hash 409 names our own post, which is adopted: published, once
    let done = until(&stack, "post_lost", Duration::from_secs(20), |p| p["status"] == "published").await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(ours_on_the_service(&stack), 1);
    assert!(stack.publisher_calls()["GET /v1/posts/{id}"].as_u64() >= Some(1), "the 409's post was read");
}

#[tokio::test]
async fn the_same_content_from_another_post_is_duplicate_content_and_stays_a_draft() {
    // GIVEN a post already published to X
    let stack = ready().await;
    assert_eq!(publish(&stack, json!({"post_id": "post_a", "content": "Same words", "platforms": ["x"]})).await.0, 201);
    // WHEN another post sends the same words to X
    let (status, refused) =
        publish(&stack, json!({"post_id": "post_b", "content": "Same words", "platforms": ["x"]})).await;
    // THEN it is duplicate_content, kept as a draft, and the service still holds one post
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("duplicate_content")), "{refused}");
    let kept = read(&stack, "post_b").await;
    assert_eq!((kept["status"].as_str(), kept["platforms"].as_array().map(Vec::len)), (Some("draft"), Some(0)));
    assert_eq!(ours_on_the_service(&stack), 1);
}

#[tokio::test]
async fn a_publish_now_failing_on_one_platform_is_a_207_read_as_partially_published() {
    let stack = ready().await;
    stack.sim.shared.world().outcomes.insert("linkedin".into(), PublishOutcome::Failed);
    let (status, post) =
        publish(&stack, json!({"post_id": "post_p", "content": "Half", "platforms": ["x", "linkedin"]})).await;
    assert_eq!((status, post["status"].as_str()), (201, Some("partially_published")), "{post}");
}

#[tokio::test]
async fn refresh_keeps_an_account_over_the_plans_limit_and_shows_one_switched_off_as_an_error() {
    // GIVEN X is over the plan's limit (listed only when asked) and LinkedIn is switched off for posting
    let stack = ready().await;
    let x = json!({"_id": "x1", "platform": "twitter", "username": "x1_user", "isActive": true, "overLimit": true});
    let li = json!({"_id": "li1", "platform": "linkedin", "username": "li1_user", "isActive": true, "enabled": false});
    stack.set_accounts(PROFILE, json!([x, li])).await;
    // WHEN the project is refreshed
    let token = stack.token(PROJECT);
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/connections/refresh"), Some(&token), None).await;
    assert_eq!(status, 200, "{answer}");
    // THEN X stays connected and LinkedIn reads error / not_enabled
    let by = |p: &str| answer["connections"].as_array().unwrap().iter().find(|c| c["platform"] == p).cloned().unwrap();
    assert_eq!(by("x")["status"], "connected");
    assert_eq!(
        (by("linkedin")["status"].as_str(), by("linkedin")["reason"].as_str()),
        (Some("error"), Some("not_enabled"))
    );
}

#[tokio::test]
async fn a_sample_from_the_dashboard_is_acknowledged_and_never_applied() {
    // GIVEN our endpoint is registered, and a sample naming a project's post
    let stack = ready().await;
    stack.register_webhook().await;
    let before = stack.items().await;
    // WHEN the service sends a sample (`POST /v1/webhooks/test`)
    let response = stack
        .http
        .post(format!("{}/v1/webhooks/test", stack.sim.api_url()))
        .bearer_auth("sk_local")
        .json(&json!({"event": "post.published"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // THEN nothing changed; and a signed sample is answered `ignored`
    assert_eq!(stack.items().await, before);
    let sample = json!({"id": "evt_sample", "event": "post.published", "test": true, "timestamp": "2026-12-01T10:00:00Z",
        "post": {"id": "svc_1", "status": "published", "platforms": [{"platform": "twitter", "status": "published"}],
                 "metadata": {"stacc_project_id": PROJECT, "stacc_post_id": "post_x", "stacc_generation": 1}}});
    assert_eq!(stack.send(&sample).await, (200, json!({"status": "ignored"})));
}

#[tokio::test]
async fn a_rotated_webhook_secret_keeps_the_same_subscription() {
    let stack = ready().await;
    stack.register_webhook().await;
    let settings = format!("{}/v1/webhooks/settings", stack.sim.api_url());
    let listed: Value = stack.http.get(&settings).bearer_auth("sk_local").send().await.unwrap().json().await.unwrap();
    let id = listed["webhooks"][0]["_id"].as_str().expect("the subscription's id").to_owned();
    let response = stack
        .http
        .put(&settings)
        .bearer_auth("sk_local")
        .json(&json!({"webhookId": id, "secret": "new-secret"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let webhook = stack.sim.shared.world().webhook.clone().expect("one subscription");
    assert_eq!((webhook.settings.url, webhook.settings.secret.as_deref()), (stack.webhook_url(), Some("new-secret")));
}

#[tokio::test]
async fn a_429_from_the_service_is_202_and_the_follow_up_sends_it_after_retry_after() {
    // GIVEN the key's budget is spent for a second
    let stack = ready().await;
    let throttled = FaultMode::RateLimited { retry_after: 1 };
    stack.sim.shared.set_fault(Fault { mode: throttled, path_prefix: Some("/v1/posts".into()), times: Some(1) });
    // WHEN a post is published THEN 202, and it goes out once the budget allows
    let (status, _) = publish(&stack, json!({"post_id": "post_429", "content": "Later", "platforms": ["x"]})).await;
    assert_eq!(status, 202);
    let done = until(&stack, "post_429", Duration::from_secs(20), |p| p["status"] == "published").await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(ours_on_the_service(&stack), 1);
}

#[tokio::test]
async fn a_stale_account_found_by_a_follow_up_fails_its_copy_and_expires_its_connection() {
    // GIVEN a publish answered 202 (throttled), and X's account removed before the follow-up
    let stack = ready().await;
    let throttled = FaultMode::RateLimited { retry_after: 1 };
    stack.sim.shared.set_fault(Fault { mode: throttled, path_prefix: Some("/v1/posts".into()), times: Some(1) });
    let (status, _) =
        publish(&stack, json!({"post_id": "post_403", "content": "Gone", "platforms": ["x", "linkedin"]})).await;
    assert_eq!(status, 202);
    stack.set_accounts(PROFILE, json!([account("li1", "linkedin")])).await;
    // WHEN the follow-up meets the service's 403
    let done = until(&stack, "post_403", Duration::from_secs(20), |p| p["status"] != "publishing").await;
    // THEN both copies failed, X saying to reconnect it, and X's connection is expired
    let x = done["platforms"].as_array().unwrap().iter().find(|p| p["platform"] == "x").cloned().unwrap();
    assert_eq!(
        (x["status"].as_str(), x["error"].as_str()),
        (Some("failed"), Some("Reconnect X, then publish again.")),
        "{done}"
    );
    assert_eq!(done["status"], "failed");
    let token = stack.token(PROJECT);
    let (_, connections, _) =
        stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    let x = connections["connections"].as_array().unwrap().iter().find(|c| c["platform"] == "x").cloned().unwrap();
    assert_eq!(x["status"], "expired", "{connections}");
    assert_eq!(ours_on_the_service(&stack), 0);
}

#[tokio::test]
async fn a_lost_follow_up_is_queued_again_by_the_reconciler() {
    // GIVEN a publish answered 202 whose follow-up message is then lost
    let timing = Timing { wait: WAIT, follow_up_seconds: 1 };
    let stack = Stack::with(StackOptions { publish_timing: timing, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::LostAnswer { code: 504 },
        path_prefix: Some("/v1/posts".into()),
        times: Some(1),
    });
    let (status, _) = publish(&stack, json!({"post_id": "post_orphan", "content": "Orphan", "platforms": ["x"]})).await;
    assert_eq!(status, 202);
    stack.sqs.purge_queue().queue_url(&stack.queues.retry_url).send().await.expect("purge");
    // WHEN a reconciler pass finds it still being sent past its grace, and the queue is worked
    let settings = Settings { grace_seconds: 0, ..Settings::default() };
    let pass = stack.reconcile(settings, Duration::from_secs(10)).await.expect("a pass");
    assert_eq!(pass.calls, 0, "the pass queues the follow-up; it calls nothing itself");
    let mut done = Value::Null;
    for _ in 0..40 {
        stack.poll(30).await;
        done = read(&stack, "post_orphan").await;
        if done["status"] == "published" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // THEN the follow-up it queued records the one post, published
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(ours_on_the_service(&stack), 1);
}
