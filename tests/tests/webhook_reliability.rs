//! What the webhook promises when input is bad, deliveries repeat or race, and the store or the
//! queue is down: nothing acknowledged is ever lost, and nothing refused changes anything.

use std::time::Duration;

use fault_proxy::{Faults, Kind};
use integration_tests::{SECRET, Stack, StackOptions};
use serde_json::{Value, json};
use shared::domain::post::{PlatformEntry, Schedule};
use shared::domain::{EntryStatus, Platform, PostId, PostState, PostStatus, ProjectId, ServicePostId, Timestamp};
use shared::ports::{PostStore, RetryMessage};
use zernio_sim::Emit;

fn post_event(id: &str, event: &str, generation: u32, platforms: Value) -> Value {
    json!({
        "id": id, "event": event, "timestamp": integration_tests::recent("2026-11-30T10:00:00Z"),
        "post": {"id": format!("65f10000000000000000000{generation}"), "platforms": platforms,
                 "metadata": {"stacc_project_id": "proj_1", "stacc_post_id": "post_1", "stacc_generation": generation}}
    })
}

fn published_x(url: &str) -> Value {
    json!([{"platform": "twitter", "status": "published", "accountId": "a1", "publishedUrl": url, "publishedAt": "2026-11-30T09:59:00Z"}])
}

async fn stored(stack: &Stack) -> Option<PostState> {
    let post =
        stack.store.get_post(&ProjectId::parse("proj_1").unwrap(), &PostId::parse("post_1").unwrap()).await.unwrap();
    post.map(|p| p.state)
}

fn later() -> Timestamp {
    Timestamp::parse("2031-01-01T00:00:00Z").unwrap()
}

#[tokio::test]
async fn wrong_missing_or_retired_signatures_get_401_and_write_nothing() {
    let stack = Stack::with(StackOptions { secrets: "new-secret,old-secret".into(), ..Default::default() }).await;
    let body = post_event("evt_1", "post.published", 1, published_x("https://x.com/1")).to_string();
    for (secret, why) in
        [(Some("retired-secret"), "a stale secret"), (None, "no signature"), (Some(SECRET), "another secret")]
    {
        let (status, answer) = stack.deliver(body.as_bytes(), secret).await;
        assert_eq!(status, 401, "{why}");
        assert_eq!(answer["error"]["code"], "invalid_signature", "{why}");
    }
    let garbage = stack
        .http
        .post(stack.webhook_url())
        .header("x-zernio-signature", "zz-not-hex")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert_eq!(stack.tap.total(), 0, "a refused delivery makes no request at all");
    assert!(stack.items().await.is_empty());
    // WHEN signed with the secret being rotated out THEN it is accepted
    assert_eq!(stack.deliver(body.as_bytes(), Some("old-secret")).await, (200, json!({"status": "processed"})));
}

#[tokio::test]
async fn a_signed_body_that_is_not_an_event_gets_400_and_writes_nothing() {
    let stack = Stack::start().await;
    for body in ["not json at all", r#"{"id":"evt_1"}"#, r#"{"event":42}"#] {
        let (status, answer) = stack.deliver(body.as_bytes(), Some(SECRET)).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["code"], "invalid_event", "{body}");
    }
    assert_eq!(stack.tap.total(), 0);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn a_signed_event_of_a_known_type_without_its_object_is_acknowledged_and_changes_nothing() {
    // GIVEN signed events whose post or account object is missing or not an object
    let stack = Stack::start().await;
    for body in [
        r#"{"id":"e1","event":"post.published"}"#,
        r#"{"id":"e2","event":"post.failed","post":"p"}"#,
        r#"{"id":"e3","event":"account.disconnected","account":[1]}"#,
    ] {
        // WHEN delivered THEN 200 ignored (a 400 would be retried for two days), nothing stored
        assert_eq!(stack.deliver(body.as_bytes(), Some(SECRET)).await, (200, json!({"status": "ignored"})), "{body}");
    }
    assert_eq!(stack.tap.total(), 0);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn a_body_over_one_mebibyte_gets_413_and_writes_nothing() {
    let stack = Stack::start().await;
    let padding = "x".repeat(1024 * 1024);
    let mut event = post_event("evt_big", "post.published", 1, published_x("https://x.com/1"));
    event["padding"] = json!(padding);
    let (status, _) = stack.send(&event).await;
    assert_eq!(status, 413);
    assert_eq!(stack.tap.total(), 0);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn fifty_concurrent_deliveries_of_one_event_have_one_effect_and_one_processed() {
    // Real DynamoDB cancels transactions that touch an item another one has in flight: so does the
    // proxy, on a quarter of them.
    let stack = Stack::with(StackOptions { faults: Some((Faults::conflicts(0.25), 50)), ..Default::default() }).await;
    let event = post_event("evt_race", "post.published", 1, published_x("https://x.com/1"));
    let deliveries = stack
        .sim
        .shared
        .emit(Emit {
            url: Some(stack.webhook_url()),
            secret: Some(SECRET.into()),
            events: vec![event],
            copies: 50,
            concurrent: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 50);
    assert!(deliveries.iter().all(|d| d.status == 200), "every copy is acknowledged");
    let processed = deliveries.iter().filter(|d| d.body.contains("processed")).count();
    let duplicates = deliveries.iter().filter(|d| d.body.contains("duplicate")).count();
    let queued = deliveries.iter().filter(|d| d.body.contains("queued")).count();
    assert_eq!(processed + duplicates + queued, 50);
    assert!(processed <= 1, "at most one copy is the one that applied it: {processed}");
    // Copies that met too many conflicts were queued; the retry worker finds the event taken.
    while stack.poll(1).await > 0 {}
    let injected = stack.faults.as_ref().unwrap().stats().injected.get("conflict").copied().unwrap_or(0);
    assert!(injected > 0, "the race met cancelled transactions");
    let post = stack
        .store
        .get_post(&ProjectId::parse("proj_1").unwrap(), &PostId::parse("post_1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(post.version, 1, "written once");
    assert_eq!(post.state.entries[&Platform::X].url.as_deref(), Some("https://x.com/1"));
}

#[tokio::test]
async fn a_published_platform_never_goes_back_and_a_cancelled_post_stays_cancelled_keeping_published_at() {
    let stack = Stack::start().await;
    let events = vec![
        post_event("evt_pub", "post.published", 1, published_x("https://x.com/1")),
        post_event("evt_late_pending", "post.scheduled", 1, json!([{"platform": "twitter", "status": "pending"}])),
        post_event(
            "evt_late_failed",
            "post.failed",
            1,
            json!([{"platform": "twitter", "status": "failed", "error": "boom"}]),
        ),
    ];
    let emit = Emit { url: Some(stack.webhook_url()), secret: Some(SECRET.into()), events, ..Default::default() };
    for d in stack.sim.shared.emit(emit).await.unwrap() {
        assert_eq!(d.status, 200);
    }
    let state = stored(&stack).await.unwrap();
    let x = &state.entries[&Platform::X];
    assert_eq!(
        (x.status, x.url.as_deref(), x.error.as_deref()),
        (EntryStatus::Published, Some("https://x.com/1"), None)
    );
    assert_eq!(state.overall(later()), PostStatus::Published);
    // WHEN the service cancels it, and a late published copy arrives THEN it stays cancelled
    let mut cancelled = post_event("evt_cancel", "post.cancelled", 1, json!([]));
    cancelled["post"]["status"] = json!("cancelled");
    assert_eq!(stack.send(&cancelled).await.0, 200);
    assert_eq!(stack.send(&post_event("evt_pub2", "post.published", 1, published_x("https://x.com/1"))).await.0, 200);
    let state = stored(&stack).await.unwrap();
    assert_eq!(state.overall(later()), PostStatus::Cancelled);
    assert_eq!(state.published_at, Timestamp::parse("2026-11-30T09:59:00Z"));
}

#[tokio::test]
async fn an_event_for_an_old_generation_does_not_touch_a_new_one_in_either_order() {
    for reverse in [false, true] {
        let stack = Stack::start().await;
        let events = vec![
            post_event("evt_g2", "post.scheduled", 2, json!([{"platform": "twitter", "status": "pending"}])),
            post_event("evt_g1", "post.published", 1, published_x("https://x.com/old")),
        ];
        let emit =
            Emit { url: Some(stack.webhook_url()), secret: Some(SECRET.into()), events, reverse, ..Default::default() };
        assert!(stack.sim.shared.emit(emit).await.unwrap().iter().all(|d| d.status == 200));
        let x = stored(&stack).await.unwrap().entries[&Platform::X].clone();
        assert_eq!((x.generation, x.status, x.url), (2, EntryStatus::Queued, None), "reverse={reverse}");
    }
}

/// What the publish call stores from the service's answer: generation 1, both platforms queued.
fn publish_answer() -> PostState {
    let entry = |account: &str| PlatformEntry {
        generation: 1,
        status: EntryStatus::Queued,
        service_post_id: ServicePostId::parse("65f100000000000000000001").ok(),
        account_id: Some(shared::domain::AccountId::parse(account).unwrap()),
        url: None,
        platform_post_id: None,
        published_at: None,
        error: None,
    };
    PostState {
        entries: [(Platform::X, entry("a1")), (Platform::Linkedin, entry("a2"))].into(),
        schedule: Some(Schedule { generation: 1, at: Timestamp::parse("2026-11-30T10:00:00Z").unwrap() }),
        ..PostState::default()
    }
}

#[tokio::test]
async fn a_post_published_before_the_post_record_exists_ends_as_if_it_came_after() {
    let published = post_event(
        "evt_early",
        "post.published",
        1,
        json!([
            {"platform": "twitter", "status": "published", "accountId": "a1", "publishedUrl": "https://x.com/1", "publishedAt": "2026-11-30T10:00:01Z"},
            {"platform": "linkedin", "status": "published", "accountId": "a2", "publishedUrl": "https://li/1", "publishedAt": "2026-11-30T10:00:02Z"}
        ]),
    );
    let (project, post) = (ProjectId::parse("proj_1").unwrap(), PostId::parse("post_1").unwrap());
    let now = integration_tests::now();

    let save_publish_answer = |stack: &Stack| {
        let (store, project, post) = (stack.store.clone(), project.clone(), post.clone());
        async move {
            let answer = publish_answer();
            let change = shared::ports::PostChange::new(&shared::ports::Source::Publish, &answer);
            store.save_post(&project, &post, None, change, now).await.unwrap();
        }
    };
    let after = Stack::start().await;
    save_publish_answer(&after).await;
    assert_eq!(after.send(&published).await, (200, json!({"status": "processed"})));

    let before = Stack::start().await;
    assert_eq!(
        before.send(&published).await,
        (200, json!({"status": "processed"})),
        "applied to the post its metadata names"
    );
    save_publish_answer(&before).await;

    let (a, b) = (stored(&after).await.unwrap(), stored(&before).await.unwrap());
    assert_eq!(a, b);
    assert_eq!(a.overall(later()), PostStatus::Published);
}

#[tokio::test]
async fn with_the_store_down_an_event_is_queued_and_the_retry_worker_applies_it_once_the_store_is_back() {
    let mut stack = Stack::start().await;
    stack.dynamo.as_mut().unwrap().stop().await;
    let event = post_event("evt_q", "post.published", 1, published_x("https://x.com/1"));
    assert_eq!(stack.send(&event).await, (200, json!({"status": "queued"})));
    assert_eq!(stack.queue_depth(&stack.queues.retry_url).await, 1);
    stack.dynamo.as_mut().unwrap().start().await.unwrap();
    assert_eq!(stack.poll(1).await, 1);
    let state = stored(&stack).await.expect("applied by the retry worker");
    assert_eq!(state.entries[&Platform::X].url.as_deref(), Some("https://x.com/1"));
    assert_eq!(stack.queue_depth(&stack.queues.retry_url).await, 0, "deleted once applied");
    // AND a later redelivery by the service is a duplicate
    assert_eq!(stack.send(&event).await, (200, json!({"status": "duplicate"})));
}

#[tokio::test]
async fn the_gateway_poller_drains_the_retry_queue_like_the_event_source_mapping() {
    let mut stack = Stack::with(StackOptions { poller: true, ..Default::default() }).await;
    stack.dynamo.as_mut().unwrap().stop().await;
    assert_eq!(
        stack.send(&post_event("evt_p", "post.published", 1, published_x("https://x.com/1"))).await.1["status"],
        "queued"
    );
    stack.dynamo.as_mut().unwrap().start().await.unwrap();
    for _ in 0..100 {
        if stored(&stack).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the poller did not apply the queued event within 20 s");
}

#[tokio::test]
async fn a_message_that_keeps_failing_reaches_the_dead_letter_queue_intact() {
    let mut stack = Stack::start().await;
    stack.dynamo.as_mut().unwrap().stop().await;
    let event = post_event("evt_dlq", "post.published", 1, published_x("https://x.com/1"));
    assert_eq!(stack.send(&event).await.1["status"], "queued");
    // Each receive fails (the store stays down); after the receive limit SQS moves it aside.
    for _ in 0..12 {
        if stack.queue_depth(&stack.queues.dead_letter_url).await == 1 {
            break;
        }
        stack.poll(1).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(stack.queue_depth(&stack.queues.retry_url).await, 0);
    let out = stack
        .sqs
        .receive_message()
        .queue_url(&stack.queues.dead_letter_url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "the message is in the dead-letter queue");
    let attributes = messages[0].message_attributes().unwrap();
    assert_eq!(attributes["event_id"].string_value(), Some("evt_dlq"));
    assert!(attributes["received_at"].string_value().is_some_and(|t| Timestamp::parse(t).is_some()));
    let body = messages[0].body().unwrap();
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), event, "intact: the signed body as received");
}

#[tokio::test]
async fn with_the_store_and_the_queue_both_down_the_answer_is_500_and_the_next_delivery_is_processed() {
    let mut stack = Stack::start().await;
    stack.dynamo.as_mut().unwrap().stop().await;
    stack.tap.fail("SendMessage");
    let event = post_event("evt_500", "post.published", 1, published_x("https://x.com/1"));
    let (status, _) = stack.send(&event).await;
    assert_eq!(status, 500, "the service must deliver it again");
    stack.tap.heal();
    stack.dynamo.as_mut().unwrap().start().await.unwrap();
    assert_eq!(stack.send(&event).await, (200, json!({"status": "processed"})));
}

#[tokio::test]
async fn a_delivery_cut_off_between_taking_the_event_and_applying_it_is_processed_when_delivered_again() {
    // GIVEN the write that takes the event id and applies it never lands (the function dies)
    let stack = Stack::start().await;
    stack.tap.fail("TransactWriteItems");
    stack.tap.fail("SendMessage");
    let event = post_event("evt_cut", "post.published", 1, published_x("https://x.com/1"));
    assert_eq!(stack.send(&event).await.0, 500);
    assert!(stack.items().await.is_empty(), "the id is not taken without its effect");
    // WHEN the service delivers it again THEN it is processed, not answered duplicate
    stack.tap.heal();
    assert_eq!(stack.send(&event).await, (200, json!({"status": "processed"})));
    assert!(stored(&stack).await.is_some());
}

#[tokio::test]
async fn redrive_moves_dead_lettered_events_back_intact_and_they_then_apply() {
    let stack = Stack::start().await;
    let event = post_event("evt_redrive", "post.published", 1, published_x("https://x.com/1"));
    let message = RetryMessage {
        event_id: shared::domain::EventId::parse("evt_redrive").unwrap(),
        received_at: integration_tests::now(),
        body: event.to_string(),
    };
    let body = serde_json::to_string(&message).unwrap();
    stack.sqs.send_message().queue_url(&stack.queues.dead_letter_url).message_body(&body).send().await.unwrap();
    let moved = shared::adapters::sqs::redrive(&stack.sqs, &stack.queues.dead_letter_url, &stack.queues.retry_url, 100)
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(stack.queue_depth(&stack.queues.dead_letter_url).await, 0);
    assert_eq!(stack.poll(1).await, 1);
    assert_eq!(stored(&stack).await.unwrap().entries[&Platform::X].url.as_deref(), Some("https://x.com/1"));
}

fn sqs_batch(messages: &[(&str, String)]) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut batch = aws_lambda_events::event::sqs::SqsEvent::default();
    for (id, body) in messages {
        let mut message = aws_lambda_events::event::sqs::SqsMessage::default();
        message.message_id = Some((*id).to_owned());
        message.body = Some(body.clone());
        batch.records.push(message);
    }
    batch
}

fn retry_message(event: &Value, received_at: Timestamp) -> String {
    let event_id = shared::domain::EventId::parse(event["id"].as_str().unwrap()).unwrap();
    serde_json::to_string(&RetryMessage { event_id, received_at, body: event.to_string() }).unwrap()
}

#[tokio::test]
async fn a_mixed_retry_batch_reports_exactly_the_messages_that_failed() {
    // GIVEN one event that applies, one unreadable message, and one that names a publication not stored yet
    let stack = Stack::start().await;
    let applies = post_event("evt_ok", "post.published", 1, published_x("https://x.com/1"));
    let mut unknown = post_event("evt_later", "post.published", 1, published_x("https://x.com/2"));
    unknown["post"]["metadata"] = json!({"stacc_project_id": "proj_1", "stacc_post_id": "post_other"});
    let now = integration_tests::now();
    let batch = sqs_batch(&[
        ("m_ok", retry_message(&applies, now)),
        ("m_bad", "not a retry message".to_owned()),
        ("m_deferred", retry_message(&unknown, now)),
    ]);
    // WHEN the worker handles the batch
    let response = stack.worker().handle(batch).await;
    // THEN exactly the unreadable and the deferred ones are reported, and the first is applied
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec!["m_bad", "m_deferred"]);
    assert_eq!(stored(&stack).await.unwrap().entries[&Platform::X].status, EntryStatus::Published);
}

#[tokio::test]
async fn a_redriven_event_days_later_never_moves_updated_at_backwards() {
    // GIVEN a post written now, and an event received three days ago, redriven only now
    let stack = Stack::start().await;
    let first = post_event("evt_now", "post.scheduled", 1, json!([{"platform": "twitter", "status": "pending"}]));
    assert_eq!(stack.send(&first).await, (200, json!({"status": "processed"})));
    let (project, post) = (ProjectId::parse("proj_1").unwrap(), PostId::parse("post_1").unwrap());
    let written = stack.store.post(&project, &post).await.unwrap().unwrap().updated_at;
    let late = post_event("evt_old", "post.published", 1, published_x("https://x.com/1"));
    let batch = sqs_batch(&[("m_old", retry_message(&late, written.plus_seconds(-3 * 24 * 3600)))]);
    // WHEN the worker applies it
    assert!(stack.worker().handle(batch).await.batch_item_failures.is_empty());
    // THEN updated_at is when it was processed, not when it was received
    let after = stack.store.post(&project, &post).await.unwrap().unwrap();
    assert_eq!(after.state.entries[&Platform::X].status, EntryStatus::Published);
    assert!(after.updated_at >= written, "{} < {written}", after.updated_at);
}

#[tokio::test]
async fn a_body_near_one_mebibyte_is_queued_whole_while_the_store_is_down_and_then_applied() {
    // GIVEN a signed event padded to just under the 1 MiB the webhook accepts, and the store down
    let mut stack = Stack::start().await;
    let mut event = post_event("evt_big", "post.published", 1, published_x("https://x.com/big"));
    let room = 1024 * 1024 - 2048 - event.to_string().len();
    event["post"]["padding"] = json!("\"".repeat(room / 2));
    let body = event.to_string();
    assert!(body.len() > 1024 * 1024 - 4096 && body.len() <= 1024 * 1024, "{}", body.len());
    stack.dynamo.as_mut().unwrap().stop().await;
    // WHEN it is delivered THEN it is queued (not a 500), the body intact
    assert_eq!(stack.deliver(body.as_bytes(), Some(SECRET)).await, (200, json!({"status": "queued"})));
    // AND once the store is back the retry worker applies it
    stack.dynamo.as_mut().unwrap().start().await.unwrap();
    assert_eq!(stack.poll(1).await, 1);
    let state = stored(&stack).await.expect("applied by the retry worker");
    assert_eq!(state.entries[&Platform::X].url.as_deref(), Some("https://x.com/big"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_gives_queued_within_the_webhooks_budget_and_the_event_is_applied_later() {
    // GIVEN a DynamoDB that answers, then takes 6 s for every request
    let stack = Stack::with(StackOptions { faults: Some((Faults::none(), 0)), ..Default::default() }).await;
    let scheduled = post_event("evt_fast", "post.scheduled", 1, json!([{"platform": "twitter", "status": "pending"}]));
    assert_eq!(stack.send(&scheduled).await, (200, json!({"status": "processed"})));
    let proxy = stack.faults.as_ref().unwrap();
    proxy.set_faults(Faults::only(Kind::Timeout, 1.0).with_delay(Duration::from_secs(6)));
    // WHEN an event arrives
    let published = post_event("evt_slow", "post.published", 1, published_x("https://x.com/slow"));
    let started = std::time::Instant::now();
    let answer = stack.send(&published).await;
    let took = started.elapsed();
    // THEN it is queued inside the service's 5 s delivery timeout, not left to time out (the
    // client's 2 s operation timeout ends the request; the 2.5 s apply budget bounds any retries)
    assert_eq!(answer, (200, json!({"status": "queued"})));
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // AND once the store is fast again the retry worker applies it
    proxy.set_faults(Faults::none());
    assert_eq!(stack.poll(1).await, 1);
    let state = stored(&stack).await.expect("the post");
    assert_eq!(state.entries[&Platform::X].status, EntryStatus::Published);
    assert_eq!(state.entries[&Platform::X].url.as_deref(), Some("https://x.com/slow"));
}
