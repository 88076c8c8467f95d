//! production.md, section 5: API Gateway ends an integration at 30 s, so every route that calls
//! the service answers within its deadline (24 s) whatever the service does, with its usual answer
//! for a call that got none, and nothing half done. The simulator answers every call in 6 s here.

use std::time::{Duration, Instant};

use integration_tests::{Stack, StackOptions, live_account};
use reqwest::Method;
use serde_json::json;
use shared::handlers::publishing::Timing;
use zernio_sim::{Fault, FaultMode};

const PROJECT: &str = "proj_slow";
const PROFILE: &str = "65aa0000000000000000sl01";
/// The route's deadline plus the gateway's own time: the answer must come before API Gateway's 30 s.
const ANSWERED_WITHIN: Duration = Duration::from_secs(25);

fn slow(stack: &Stack) {
    stack.sim.shared.set_fault(Fault { mode: FaultMode::Slow { millis: 6_000 }, ..Default::default() });
}

async fn timed(
    stack: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let (status, answer, _) = stack.call(method, path, Some(token), body).await;
    (status, answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_call_taking_6_s_each_route_answers_within_its_deadline_with_nothing_half_done() {
    // GIVEN a publish that waits as long as the template allows (20 s), a project with a live X
    // account and a post live on it, and a project with no profile yet
    let timing = Timing { wait: Duration::from_secs(20), follow_up_seconds: 60 };
    let stack = Stack::with(StackOptions { publish_timing: timing, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    let body = json!({"post_id": "post_live", "content": "Live", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &posts, Some(&token), Some(body)).await.0, 201);
    let newcomer = stack.token("proj_new");
    // WHEN the service answers every call in 6 s
    slow(&stack);
    let before = stack.items().await;
    let refresh = timed(&stack, Method::POST, &format!("/projects/{PROJECT}/connections/refresh"), &token, None).await;
    let sync = timed(&stack, Method::POST, &format!("/projects/{PROJECT}/posts/post_live/sync"), &token, None).await;
    // THEN Refresh and Sync answer 503 in time, and change nothing
    for (route, (status, answer, took)) in [("refresh", &refresh), ("sync", &sync)] {
        assert_eq!(
            (*status, answer["error"]["code"].as_str()),
            (503, Some("publisher_unavailable")),
            "{route}: {answer}"
        );
        assert!(*took < ANSWERED_WITHIN, "{route} took {took:?}");
    }
    assert_eq!(stack.items().await, before, "a slow service changed nothing");
    // AND a Connect that must first provision a profile answers 503 in time
    let connect = timed(&stack, Method::POST, "/projects/proj_new/connections/x/connect", &newcomer, None).await;
    assert_eq!((connect.0, connect.1["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{}", connect.1);
    assert!(connect.2 < ANSWERED_WITHIN, "connect took {:?}", connect.2);
    // AND a publish that the platform takes 40 s over answers 202 in time (it may have been
    // taken), followed up
    stack.sim.shared.world().behaviour.publish_millis = [("twitter".to_owned(), 40_000)].into();
    let body = json!({"post_id": "post_slow", "content": "Slow", "platforms": ["x"]});
    let publish = timed(&stack, Method::POST, &posts, &token, Some(body)).await;
    assert_eq!(publish.0, 202, "{}", publish.1);
    assert!(publish.2 < ANSWERED_WITHIN, "publish took {:?}", publish.2);
    assert_eq!(publish.1["status"], "publishing", "{}", publish.1);
    // AND once the service is quick again, nothing was left half done: the Connect finds the one
    // profile its cut-off create made, and gives a link
    stack.sim.shared.set_fault(Fault::default());
    stack.sim.shared.world().behaviour.publish_millis.clear();
    tokio::time::sleep(Duration::from_secs(7)).await; // (the slow calls the service was still carrying out)
    let (status, answer, _) =
        stack.call(Method::POST, "/projects/proj_new/connections/x/connect", Some(&newcomer), None).await;
    assert_eq!(status, 200, "{answer}");
    let profiles = stack.sim.shared.world().profiles.values().filter(|p| p.name.contains("proj_new")).count();
    assert_eq!(profiles, 1, "one profile for the project, however many creates were cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_would_call_past_its_deadline_stops_before_the_call_and_answers_503() {
    // GIVEN a project whose profile the service forgot, so a Connect makes three calls (the link,
    // a new profile, the link again), and a service answering each in 4.5 s: 13.5 s in all
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    stack.sim.shared.world().profiles.clear();
    stack.sim.shared.set_fault(Fault { mode: FaultMode::Slow { millis: 4_500 }, ..Default::default() });
    let publisher = shared::adapters::zernio::ZernioClient::new(stack.sim.api_url(), "sk_local").unwrap();
    let connect = shared::wiring::connect(
        stack.store.clone(),
        publisher,
        &Default::default(),
        shared::domain::text::DEFAULT_REDIRECT_ORIGINS.map(str::to_owned).to_vec(),
    );
    let event = integration_tests::lambda::http_api_event(
        "POST",
        "/projects/{projectId}/connections/{platform}/connect",
        &format!("/projects/{PROJECT}/connections/x/connect"),
        PROJECT,
        None,
    );
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let calls_before = stack.sim.shared.world().calls.values().sum::<u64>();
    // WHEN it runs within a deadline of 8 s
    let started = Instant::now();
    let response = shared::deadline::within(Duration::from_secs(8), connect.handle(request)).await;
    // THEN it answers 503 before the deadline, having sent no call it had no time for
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(took < Duration::from_secs(8), "{took:?}");
    let sent = stack.sim.shared.world().calls.values().sum::<u64>() - calls_before;
    assert!(sent < 3, "{sent} calls sent in an 8 s deadline, each taking 4.5 s");
}
