//! The service as its November 2026 API describes it (publisher-zernio.md, "Amended December
//! 2026"), end to end on the simulator: one account's limit never stops every tenant, a publish
//! the service may have taken is never refused, our own in-flight key is never a duplicate, a
//! 207 the service retries stays queued, profiles are found by their externalId, an operator's
//! 402 is nobody's reconnect, and a reconnect refreshes the account it names.

use std::time::{Duration, Instant};

use integration_tests::{Stack, StackOptions, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::handlers::publishing::Timing;
use zernio_sim::{Fault, FaultMode, PublishOutcome};

const PROJECT: &str = "proj_n";
const PROFILE: &str = "65aa000000000000000000n1";
const OTHER: &str = "proj_o";
const OTHER_PROFILE: &str = "65aa000000000000000000o1";
const WAIT: Duration = Duration::from_secs(2);

/// Two projects with X and LinkedIn connected, follow-ups polled as in AWS, a real shared budget.
async fn ready() -> Stack {
    let timing = Timing { wait: WAIT, follow_up_seconds: 1 };
    let options =
        StackOptions { poller: true, publish_timing: timing, vendor_calls_per_minute: 600, ..Default::default() };
    let stack = Stack::with(options).await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack.given_connected(OTHER, OTHER_PROFILE, json!([account("x2", "twitter")])).await;
    stack
}

async fn publish(stack: &Stack, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let token = stack.token(PROJECT);
    stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await
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

fn ours_on_the_service(stack: &Stack, post: &str) -> usize {
    stack.sim.shared.world().posts.values().filter(|p| p.metadata["stacc_post_id"] == post).count()
}

fn calls(stack: &Stack, route: &str) -> u64 {
    stack.publisher_calls()[route].as_u64().unwrap_or(0)
}

async fn refresh_other(stack: &Stack) -> u16 {
    let token = stack.token(OTHER);
    stack.call(Method::POST, &format!("/projects/{OTHER}/connections/refresh"), Some(&token), None).await.0
}

#[tokio::test]
async fn an_accounts_posting_limit_refuses_that_publish_and_every_other_tenant_goes_on() {
    // GIVEN X's account has used its posting velocity (one post an hour here)
    let stack = ready().await;
    stack.sim.shared.world().behaviour.posts_per_hour_per_account = Some(1);
    let (status, _, _) = publish(&stack, json!({"post_id": "post_1", "content": "First", "platforms": ["x"]})).await;
    assert_eq!(status, 201);
    // WHEN the next publish to X and LinkedIn meets the account's 429
    let body = json!({"post_id": "post_2", "content": "Second", "platforms": ["x", "linkedin"]});
    let (status, refused, headers) = publish(&stack, body).await;
    // THEN it is 429 rate_limited naming X, with when it can post again, and nothing changed
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited");
    assert_eq!(refused["error"]["platforms"], json!(["x"]));
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3_000..=3_600).contains(&retry_after), "about an hour: {retry_after}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("Velocity limit"), "{refused}");
    let post = read(&stack, "post_2").await;
    assert_eq!(post["status"], "draft", "the post keeps no refused publication: {post}");
    assert_eq!(ours_on_the_service(&stack, "post_2"), 0);
    // AND another project's Refresh a moment later calls the service and answers 200
    let before = calls(&stack, "GET /v1/accounts");
    assert_eq!(refresh_other(&stack).await, 200);
    assert_eq!(calls(&stack, "GET /v1/accounts"), before + 1, "the shared budget stayed open");
    // AND, for contrast, the team's own 429 does shut it for every caller
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::RateLimited { retry_after: 30 },
        path_prefix: Some("/v1/posts".into()),
        times: Some(1),
    });
    let (status, _, _) =
        publish(&stack, json!({"post_id": "post_3", "content": "Third", "platforms": ["linkedin"]})).await;
    assert_eq!(status, 202, "a publish past the team's limit goes on later");
    let before = calls(&stack, "GET /v1/accounts");
    assert_eq!(refresh_other(&stack).await, 429, "the team's 429 shut the shared budget");
    assert_eq!(calls(&stack, "GET /v1/accounts"), before, "nothing was called");
}

#[tokio::test]
async fn a_follow_up_meeting_an_accounts_limit_records_those_copies_failed_with_the_services_words() {
    // GIVEN a publish the service does not answer in time, whose follow-up finds X in a cooldown
    let stack = ready().await;
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::Status { code: 502 },
        path_prefix: Some("/v1/posts".into()),
        times: Some(1),
    });
    let until_time = "2099-01-01T00:00:00Z";
    let cooldown = format!("{}/control/accounts/x1/cooldown", stack.sim.control_url());
    let put = reqwest::Client::new().put(cooldown).json(&json!({"until": until_time})).send().await.unwrap();
    assert!(put.status().is_success());
    let (status, _, _) =
        publish(&stack, json!({"post_id": "post_c", "content": "Cooled", "platforms": ["x", "linkedin"]})).await;
    assert_eq!(status, 202, "a 5xx may have been taken: followed up");
    // THEN the follow-up records X failed with the service's words, LinkedIn failed saying why
    let done = until(&stack, "post_c", Duration::from_secs(20), |p| p["status"] == "failed").await;
    assert_eq!(done["status"], "failed", "{done}");
    let entry = |platform: &str| {
        done["platforms"].as_array().unwrap().iter().find(|e| e["platform"] == platform).cloned().unwrap()
    };
    assert!(entry("x")["error"].as_str().unwrap().contains("rate limited"), "{done}");
    assert!(entry("linkedin")["error"].as_str().unwrap().contains("posting limit"), "{done}");
    assert_eq!(ours_on_the_service(&stack, "post_c"), 0);
    // AND the shared budget never closed
    assert_eq!(refresh_other(&stack).await, 200);
}

#[tokio::test]
async fn a_publish_the_service_took_and_answered_503_or_a_gateway_page_is_202_and_ends_published_once() {
    for (n, mode) in [
        FaultMode::TakenThenUnavailable { retry_after: 1 },
        FaultMode::LostAnswer { code: 502 },
        FaultMode::LostAnswer { code: 504 },
    ]
    .into_iter()
    .enumerate()
    {
        // GIVEN the service takes the publish, then answers 503 temporarily_unavailable (or a
        // gateway's HTML page)
        let stack = ready().await;
        stack.sim.shared.set_fault(Fault { mode: mode.clone(), path_prefix: Some("/v1/posts".into()), times: Some(1) });
        let post = format!("post_t{n}");
        // WHEN it is published
        let (status, answer, _) =
            publish(&stack, json!({"post_id": post, "content": format!("Taken {n}"), "platforms": ["x"]})).await;
        // THEN it is 202 (never 503: it may have been taken) and ends published, one service post
        assert_eq!(status, 202, "{mode:?}: {answer}");
        let done = until(&stack, &post, Duration::from_secs(20), |p| p["status"] == "published").await;
        assert_eq!(done["status"], "published", "{mode:?}: {done}");
        assert_eq!(ours_on_the_service(&stack, &post), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn only_a_publish_certainly_not_taken_is_503() {
    // GIVEN the service refuses our API key (read again once, still refused): nothing was taken
    let stack = ready().await;
    stack.sim.shared.set_api_key("sk_rotated_elsewhere");
    let (status, answer, _) =
        publish(&stack, json!({"post_id": "post_d", "content": "Refused key", "platforms": ["x"]})).await;
    // THEN the route answers 503 and the post stays as it was
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{answer}");
    assert_eq!(read(&stack, "post_d").await["status"], "draft");
    assert_eq!(ours_on_the_service(&stack, "post_d"), 0);
}

#[tokio::test]
async fn a_follow_up_meeting_our_own_key_in_flight_waits_and_the_publication_ends_with_one_post() {
    // GIVEN a publish-now the service takes 6 s over, longer than the route waits
    let stack = ready().await;
    stack.sim.shared.world().behaviour.publish_millis.insert("twitter".into(), 6_000);
    let (status, _, _) = publish(&stack, json!({"post_id": "post_k", "content": "Keyed", "platforms": ["x"]})).await;
    assert_eq!(status, 202);
    // WHEN the follow-up sends it again while the first request still runs (409 idempotency_conflict)
    // THEN it waits the Retry-After, is never read as duplicate content, and ends published once
    let done = until(&stack, "post_k", Duration::from_secs(30), |p| p["status"] == "published").await;
    assert_eq!(done["status"], "published", "{done}");
    assert!(calls(&stack, "POST /v1/posts") >= 2, "the follow-up asked while the key was in flight");
    assert_eq!(ours_on_the_service(&stack, "post_k"), 1);
    assert_eq!(calls(&stack, "GET /v1/posts/{id}"), 0, "no 409 was read as naming another post");
}

#[tokio::test]
async fn a_207_the_service_retries_itself_stays_queued_until_its_webhook_settles_it() {
    // GIVEN X answers a transient error: the service resets the copy to pending and retries it
    let stack = ready().await;
    stack.register_webhook().await;
    stack.sim.shared.world().outcomes.insert("twitter".into(), PublishOutcome::Transient);
    let (status, answer, _) =
        publish(&stack, json!({"post_id": "post_r", "content": "Retried", "platforms": ["x"]})).await;
    // THEN the copy is queued, not failed
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["platforms"][0]["status"], "queued", "{answer}");
    assert!(answer["platforms"][0]["error"].is_null(), "{answer}");
    assert_ne!(answer["status"], "failed");
    // AND when the service's retry publishes it, its webhook settles it
    let id =
        stack.sim.shared.world().posts.values().find(|p| p.metadata["stacc_post_id"] == "post_r").unwrap().id.clone();
    stack.sim.shared.settle_post(&id, &[("twitter".to_owned(), PublishOutcome::Published)].into_iter().collect());
    let done = until(&stack, "post_r", Duration::from_secs(10), |p| p["status"] == "published").await;
    assert_eq!(done["status"], "published", "{done}");
}

#[tokio::test]
async fn a_profile_is_made_with_the_project_as_external_id_and_found_again_when_its_key_stays_in_flight() {
    // GIVEN a create that lands but whose answer is lost, its key left in flight for 24 hours
    let stack = Stack::start().await;
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/connections/linkedin/connect");
    stack.sim.shared.world().behaviour.cut_off_profile_keys = true;
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::LostAnswer { code: 504 },
        path_prefix: Some("/v1/profiles".into()),
        times: Some(1),
    });
    assert_eq!(stack.call(Method::POST, &path, Some(&token), None).await.0, 503);
    // WHEN the user connects again: the create answers 409 (key in flight)
    let (status, linked, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    // THEN the profile is found by its externalId, once, with no loop
    assert_eq!(status, 200, "{linked}");
    let profiles: Vec<_> = stack.sim.shared.world().profiles.values().cloned().collect();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].external_id.as_deref(), Some(PROJECT), "the project is the profile's externalId");
    assert_eq!(linked["profile_id"], profiles[0].id.as_str());
    assert_eq!(calls(&stack, "POST /v1/profiles"), 2, "one retried create, no loop");
    assert_eq!(calls(&stack, "GET /v1/profiles"), 1, "found by externalId at the first look");
}

#[tokio::test]
async fn a_service_account_that_needs_paying_is_503_about_the_service_account_once_and_counted() {
    // GIVEN the service answers 402 PAYMENT_REQUIRED
    let stack = Stack::start().await;
    stack.sim.shared.world().behaviour.payment_required = Some("free_tier_exceeded".into());
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/connections/x/connect");
    // WHEN a user connects
    let (status, answer, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    // THEN it is 503 saying the service account needs attention, not the user's accounts
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("account with the publishing service needs attention"), "{message}");
    assert!(message.contains("nothing to reconnect"), "{message}");
    assert_eq!(calls(&stack, "POST /v1/profiles"), 1, "asked once, never in a loop");
    assert!(stack.sim.shared.world().profiles.is_empty());
}

#[tokio::test]
async fn reconnecting_an_expired_connection_refreshes_its_account_and_a_long_x_redirect_is_400_without_a_call() {
    // GIVEN X's connection expired
    let stack = ready().await;
    stack.set_accounts(PROFILE, json!([{"_id": "x1", "platform": "twitter", "username": "acme", "isActive": false}, account("li1", "linkedin")])).await;
    let token = stack.token(PROJECT);
    let refresh = format!("/projects/{PROJECT}/connections/refresh");
    let (_, refreshed, _) = stack.call(Method::POST, &refresh, Some(&token), None).await;
    let x = refreshed["connections"].as_array().unwrap().iter().find(|c| c["platform"] == "x").cloned().unwrap();
    assert_eq!(x["status"], "expired", "{refreshed}");
    // WHEN the user connects X again and completes the flow
    let path = format!("/projects/{PROJECT}/connections/x/connect");
    let (status, link, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{link}");
    let auth_url = link["auth_url"].as_str().unwrap();
    reqwest::get(auth_url).await.unwrap();
    // THEN the service refreshed the same account instead of adding a second beside it
    let accounts: Vec<_> = stack
        .sim
        .shared
        .world()
        .accounts
        .iter()
        .filter(|a| a.profile_id == PROFILE && a.platform == "twitter")
        .cloned()
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!((accounts[0].id.as_str(), accounts[0].is_active), ("x1", true));
    // AND an X redirect over 258 encoded characters is refused before any call
    let before = calls(&stack, "GET /v1/connect/{platform}");
    let long = format!("http://localhost:3000/{}", "a".repeat(230));
    let (status, refused, _) = stack.call(Method::POST, &path, Some(&token), Some(json!({"redirect_url": long}))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_request")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("258"), "{refused}");
    assert_eq!(calls(&stack, "GET /v1/connect/{platform}"), before);
    // AND the same redirect for LinkedIn, which sets no such limit, is taken
    let linkedin = format!("/projects/{PROJECT}/connections/linkedin/connect");
    let (status, _, _) = stack.call(Method::POST, &linkedin, Some(&token), Some(json!({"redirect_url": long}))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_switched_off_subscription_is_switched_back_on_and_the_missed_event_redelivered_once_and_applied() {
    // GIVEN the service's subscription signs with a secret our endpoint does not know (rotated on
    // one side only), and switches itself off at the first failure (its rule, in test time)
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    stack.register_webhook().await;
    let settings_url = format!("{}/v1/webhooks/settings", stack.sim.api_url());
    let http = reqwest::Client::new();
    let put = |body: Value| http.put(&settings_url).bearer_auth("sk_local").json(&body).send();
    assert!(put(json!({"secret": "rotated-on-one-side"})).await.unwrap().status().is_success());
    stack.sim.shared.world().behaviour.webhook_off_after_seconds = 0;
    // WHEN LinkedIn is connected on the service: its account.connected fails at our endpoint
    let (_, link, _) = stack
        .call(
            Method::POST,
            &format!("/projects/{PROJECT}/connections/linkedin/connect"),
            Some(&stack.token(PROJECT)),
            None,
        )
        .await;
    reqwest::get(link["auth_url"].as_str().unwrap()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stack.sim.shared.world().webhook.as_ref().is_some_and(|w| w.settings.is_active) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stack.sim.shared.world().webhook.as_ref().unwrap().settings.is_active, "switched off by the service");
    let linkedin = || async {
        let token = stack.token(PROJECT);
        let (_, list, _) =
            stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
        list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == "linkedin").cloned().unwrap()
    };
    assert_eq!(linkedin().await["status"], "not_connected", "the event was missed");
    // AND the operator sets the right secret again (the subscription stays off)
    assert!(put(json!({"secret": integration_tests::SECRET})).await.unwrap().status().is_success());
    // WHEN the reconciler's pass watches the subscription
    let settings = shared::domain::healing::Settings::default();
    let pass = stack.reconcile_watching(settings, 900, Duration::from_secs(20)).await.expect("a pass");
    // THEN it is switched back on, the failed delivery redelivered once, and applied
    assert!(pass.subscription_switched_on, "{pass:?}");
    assert_eq!(pass.redelivered, 1, "{pass:?}");
    assert!(stack.sim.shared.world().webhook.as_ref().unwrap().settings.is_active);
    assert_eq!(linkedin().await["status"], "connected");
    let logs = stack.sim.shared.world().webhook_logs.clone();
    assert_eq!(logs.len(), 2, "one failed delivery, one redelivery");
    assert_eq!((logs[0].event_id.clone(), logs[0].ok), (logs[1].event_id.clone(), false));
    assert!(logs[1].ok && logs[0].body == logs[1].body, "byte for byte");
    // AND a pass right after reads nothing more (repaired, next read after the interval)
    let again = stack.reconcile_watching(settings, 900, Duration::from_secs(20)).await.expect("a pass");
    assert_eq!((again.redelivered, again.calls), (0, 0), "{again:?}");
}
