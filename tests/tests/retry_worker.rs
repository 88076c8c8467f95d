//! production.md, section 4: the retry worker never hands back a message it did not try. A batch
//! of follow-ups, each meeting a slow service, is tried side by side within the invocation; none
//! counts toward the dead-letter queue, and each one that must wait is queued again with its delay.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName as A;
use integration_tests::{Stack, StackOptions, live_account};
use reqwest::Method;
use serde_json::json;
use shared::handlers::publishing::Timing;
use zernio_sim::{Fault, FaultMode};

const PROJECT: &str = "proj_rw";
const PROFILE: &str = "65aa0000000000000000rw01";

async fn counts(stack: &Stack, queue: &str) -> (u64, u64, u64) {
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |a: A| attributes.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
        n(A::ApproximateNumberOfMessagesDelayed),
    )
}

fn publishes_sent(stack: &Stack) -> u64 {
    stack.sim.shared.world().calls.get("POST /v1/posts").copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_follow_ups_meeting_a_25_s_service_are_each_tried_once_none_dead_lettered_each_queued_with_its_delay() {
    // GIVEN publishes that wait 10 s for the service (the template's default) and a service that
    // takes 25 s over each: ten publications answered 202, each with its follow-up queued
    let timing = Timing { wait: Duration::from_secs(10), follow_up_seconds: 5 };
    let stack = Stack::with(StackOptions { publish_timing: timing, ..Default::default() }).await;
    stack.given_connected(PROJECT, PROFILE, json!([live_account("x1", "twitter")])).await;
    stack.sim.shared.set_fault(Fault { mode: FaultMode::Slow { millis: 25_000 }, ..Default::default() });
    let token = stack.token(PROJECT);
    let posts = format!("/projects/{PROJECT}/posts");
    let answers = futures::future::join_all((0..10).map(|n| {
        let body = json!({"post_id": format!("post_{n}"), "content": format!("Slow {n}"), "platforms": ["x"]});
        let (stack, token, posts) = (&stack, &token, &posts);
        async move { stack.call(Method::POST, posts, Some(token), Some(body)).await.0 }
    }))
    .await;
    assert_eq!(answers, vec![202; 10]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts(&stack, &stack.queues.retry_url).await.0 < 10 {
        assert!(Instant::now() < deadline, "the ten follow-ups never became visible");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sent_before = publishes_sent(&stack);
    // WHEN the retry worker takes them in one batch, with the function's 60 s
    let started = Instant::now();
    let received = stack.poll(360).await;
    let took = started.elapsed();
    // THEN all ten were tried within the invocation, each once
    assert_eq!(received, 10);
    assert!(took < Duration::from_secs(60), "the batch took {took:?}");
    assert_eq!(publishes_sent(&stack) - sent_before, 10, "each follow-up called the service once");
    // AND none was handed back (nothing in flight counts toward maxReceiveCount), none dead-lettered
    let (visible, in_flight, _) = counts(&stack, &stack.queues.retry_url).await;
    assert_eq!((visible, in_flight), (0, 0), "no message handed back");
    assert_eq!(counts(&stack, &stack.queues.dead_letter_url).await, (0, 0, 0));
    // AND each follow-up queued its next try with its delay: none due at once, all ten due after it
    let queued = Instant::now();
    let deadline = queued + Duration::from_secs(120);
    while counts(&stack, &stack.queues.retry_url).await.0 < 10 {
        assert!(Instant::now() < deadline, "the next tries never came due");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let waited = queued.elapsed();
    let shortest = Duration::from_secs(shared::domain::publish::follow_up_delay(timing.follow_up_seconds, 1, None));
    assert!(waited + Duration::from_secs(1) >= shortest, "due after {waited:?}, before the {shortest:?} delay");
}
