//! One budget for the shared API key, end to end (capacity.md): publishes past it are taken (202)
//! and sent in line by their follow-ups, never more calls in any minute than the plan, exactly one
//! post per publication; a 429 from the service silences every function for its `Retry-After`.

use std::time::{Duration, Instant};

use futures::future::join_all;
use integration_tests::{Stack, StackOptions, live_account};
use reqwest::Method;
use serde_json::{Value, json};
use shared::handlers::publishing::Timing;
use zernio_sim::{Fault, FaultMode};

/// A project connected to X through account webhooks (no call to the service).
async fn given_project(stack: &Stack, n: usize) -> String {
    let project = format!("proj_cap{n}");
    let profile = format!("65aa0000000000000000c{n:03}");
    let account = format!("64e10000000000000000c{n:03}");
    stack.given_profile(&project, &profile, json!([live_account(&account, "twitter")])).await;
    let connected = stack.sim.shared.account_event("account.connected", &account, None).expect("account");
    assert_eq!(stack.send(&connected).await.0, 200);
    project
}

fn stack_options(calls_per_minute: u32) -> StackOptions {
    StackOptions {
        poller: true,
        publish_timing: Timing { wait: Duration::from_secs(3), follow_up_seconds: 1 },
        vendor_calls_per_minute: calls_per_minute,
        ..Default::default()
    }
}

async fn publish(stack: &Stack, project: &str, post: &str) -> (u16, Value) {
    let token = stack.token(project);
    let body = json!({"post_id": post, "content": format!("Hello from {post}"), "platforms": ["x"]});
    let (status, answer, _) =
        stack.call(Method::POST, &format!("/projects/{project}/posts"), Some(&token), Some(body)).await;
    (status, answer)
}

/// Waits until every post reads published, for at most `within`; the ones that do not.
async fn until_published(stack: &Stack, posts: &[(String, String)], within: Duration) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for (project, post) in posts {
            let token = stack.token(project);
            let (_, read, _) =
                stack.call(Method::GET, &format!("/projects/{project}/posts/{post}"), Some(&token), None).await;
            if read["status"] != "published" {
                waiting.push((project.clone(), post.clone()));
            }
        }
        if waiting.is_empty() || started.elapsed() > within {
            return waiting;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn posts_created(stack: &Stack) -> u64 {
    stack.sim.shared.stats()["posts_created"].as_u64().unwrap()
}

#[tokio::test]
async fn forty_publishes_at_once_from_one_project_are_all_taken_and_each_reaches_the_service_once() {
    // GIVEN one project, and the local plan of 600 calls a minute
    let stack = Stack::with(stack_options(600)).await;
    let project = given_project(&stack, 1).await;
    // WHEN it publishes forty posts at once (a bulk schedule from the calendar)
    let answers = join_all((0..40).map(|i| {
        let (stack, project) = (&stack, project.clone());
        async move { publish(stack, &project, &format!("post_{i:02}")).await }
    }))
    .await;
    // THEN each is taken: 201 published at once, or 202 to be sent in line; none is 503 or 429
    for (status, answer) in &answers {
        assert!(matches!(status, 201 | 202), "{status} {answer}");
    }
    let queued = answers.iter().filter(|(status, _)| *status == 202).count();
    // AND every one ends published, each on the service exactly once
    let posts: Vec<_> = (0..40).map(|i| (project.clone(), format!("post_{i:02}"))).collect();
    assert_eq!(until_published(&stack, &posts, Duration::from_secs(60)).await, vec![], "{queued} were queued");
    assert_eq!(posts_created(&stack), 40);
}

#[tokio::test]
async fn on_a_plan_of_thirty_a_minute_forty_eight_publishes_are_taken_sent_in_line_and_never_more_than_thirty_a_minute()
{
    // GIVEN twelve projects, and a plan of 30 calls a minute (VENDOR_CALLS_PER_MINUTE=30)
    let stack = Stack::with(stack_options(30)).await;
    let mut projects = Vec::new();
    for n in 0..12 {
        projects.push(given_project(&stack, n).await);
    }
    // WHEN each publishes four posts, all at once
    let posts: Vec<(String, String)> =
        projects.iter().flat_map(|p| (0..4).map(move |i| (p.clone(), format!("post_{i}")))).collect();
    let answers = join_all(posts.iter().map(|(project, post)| publish(&stack, project, post))).await;
    // THEN each is answered 201 or 202, none 503
    for (status, answer) in &answers {
        assert!(matches!(status, 201 | 202), "{status} {answer}");
    }
    assert!(answers.iter().filter(|(status, _)| *status == 202).count() >= 40, "most wait in line");
    // AND every post reaches the service exactly once, in line: 48 calls at 30 a minute
    assert_eq!(until_published(&stack, &posts, Duration::from_secs(150)).await, vec![]);
    assert_eq!(posts_created(&stack), 48);
    // AND the service never saw more than 30 calls in any minute, nor answered a 429
    let stats = stack.sim.shared.stats();
    assert!(stats["most_calls_in_any_minute"].as_u64().unwrap() <= 30, "{stats}");
    assert_eq!(stats["total_calls"].as_u64().unwrap(), 48, "one call per post, nothing else: {stats}");
}

#[tokio::test]
async fn after_a_429_with_retry_after_twenty_no_function_calls_the_service_for_twenty_seconds() {
    // GIVEN a project with a published post, the retry worker polling, and the reconciler running
    let mut options = stack_options(600);
    options.reconcile = Some(dev_gateway::Reconcile {
        interval: Duration::from_secs(2),
        settings: shared::domain::healing::Settings { grace_seconds: 1, ..Default::default() },
        subscription: None,
    });
    let stack = Stack::with(options).await;
    let project = given_project(&stack, 7).await;
    assert_eq!(publish(&stack, &project, "post_first").await.0, 201);
    let token = stack.token(&project);
    let sync = format!("/projects/{project}/posts/post_first/sync");
    // WHEN the service answers one call 429 with Retry-After: 20
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::RateLimited { retry_after: 20 },
        times: Some(1),
        ..Default::default()
    });
    let (status, answer, headers) = stack.call(Method::POST, &sync, Some(&token), None).await;
    let throttled_at = *stack.sim.shared.call_times().last().expect("the 429 was a call");
    // THEN the Sync is 429 rate_limited with that Retry-After
    assert_eq!((status, answer["error"]["code"].clone()), (429, json!("rate_limited")), "{answer}");
    assert_eq!(headers["retry-after"], "20");
    // AND for 20 s nothing reaches the service from anywhere: publishes are queued (202), Syncs,
    // Refreshes and Connects are refused with an honest Retry-After, the reconciler waits
    let refresh = format!("/projects/{project}/connections/refresh");
    let connect = format!("/projects/{project}/connections/linkedin/connect");
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(18) {
        let (status, answer) = publish(&stack, &project, &format!("post_quiet_{n}")).await;
        assert_eq!(status, 202, "{answer}");
        for path in [&sync, &refresh, &connect] {
            let (status, answer, headers) = stack.call(Method::POST, path, Some(&token), None).await;
            assert_eq!(status, 429, "{path}: {answer}");
            let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=20).contains(&retry_after), "{path}: Retry-After {retry_after}");
        }
        n += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = stack.sim.shared.call_times();
    let quiet: Vec<i64> = calls.iter().copied().filter(|t| *t > throttled_at && *t < throttled_at + 20_000).collect();
    assert_eq!(quiet, Vec::<i64>::new(), "calls reached the service while it had said stop");
    // AND afterwards the queued publishes are sent, each once
    let posts: Vec<_> = (0..n).map(|i| (project.clone(), format!("post_quiet_{i}"))).collect();
    assert_eq!(until_published(&stack, &posts, Duration::from_secs(60)).await, vec![]);
    assert_eq!(posts_created(&stack), 1 + n as u64);
}
