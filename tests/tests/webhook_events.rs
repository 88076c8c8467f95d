//! Webhook receipt end to end: signed samples from `events/` through the dev gateway into the
//! embedded DynamoDB, and the answers table of `app-api.md`.

use integration_tests::{SECRET, Sample, Stack, s};
use serde_json::json;
use shared::adapters::dynamo::PostItem;
use shared::domain::{ConnectionStatus, EntryStatus, Platform, PostId, PostStatus, ProfileId, ProjectId, Timestamp};
use shared::ports::ConnectionStore;

fn project() -> ProjectId {
    ProjectId::parse("proj_demo").unwrap()
}

fn profile() -> ProfileId {
    ProfileId::parse("65aa00000000000000000001").unwrap()
}

async fn post(stack: &Stack, id: &str) -> PostItem {
    stack.store.get_post(&project(), &PostId::parse(id).unwrap()).await.unwrap().expect("post stored")
}

fn now() -> Timestamp {
    Timestamp::parse("2026-12-01T00:00:00Z").unwrap()
}

#[tokio::test]
async fn post_scheduled_then_published_samples_move_the_post_to_published_with_links() {
    let stack = Stack::start().await;
    // GIVEN the scheduled sample WHEN it arrives THEN both platforms are queued and the post scheduled
    let (status, body) = Sample::load("webhook-post-scheduled").send(&stack).await;
    assert_eq!((status, body), (200, json!({"status": "processed"})));
    let scheduled = post(&stack, "post_demo").await;
    assert_eq!(scheduled.state.overall(now()), PostStatus::Scheduled);
    assert_eq!(scheduled.state.entries[&Platform::X].status, EntryStatus::Queued);
    // WHEN the published sample arrives THEN both are published with their live links
    let (status, body) = Sample::load("webhook-post-published").send(&stack).await;
    assert_eq!((status, body), (200, json!({"status": "processed"})));
    let published = post(&stack, "post_demo").await;
    assert_eq!(published.state.overall(now()), PostStatus::Published);
    let x = &published.state.entries[&Platform::X];
    assert_eq!(x.url.as_deref(), Some("https://x.com/acme/status/1850000000000000001"));
    assert_eq!(x.platform_post_id.as_deref(), Some("1850000000000000001"));
    let linkedin = &published.state.entries[&Platform::Linkedin];
    assert_eq!(linkedin.status, EntryStatus::Published);
    assert_eq!(published.state.published_at, Timestamp::parse("2030-01-01T10:00:03Z"));
}

#[tokio::test]
async fn post_partial_sample_records_each_platform_as_it_happened() {
    let stack = Stack::start().await;
    assert_eq!(Sample::load("webhook-post-partial").send(&stack).await.0, 200);
    let item = post(&stack, "post_partial").await;
    assert_eq!(item.state.overall(now()), PostStatus::PartiallyPublished);
    assert_eq!(item.state.entries[&Platform::X].status, EntryStatus::Published);
    let instagram = &item.state.entries[&Platform::Instagram];
    assert_eq!((instagram.status, instagram.error.as_deref()), (EntryStatus::Failed, Some("Rate limit exceeded")));
}

#[tokio::test]
async fn post_failed_sample_marks_the_platform_failed_with_its_error() {
    let stack = Stack::start().await;
    let sample = Sample::load("webhook-post-failed");
    assert!(sample.event["isBase64Encoded"].as_bool().unwrap(), "this sample exercises a base64 body");
    assert_eq!(sample.send(&stack).await, (200, json!({"status": "processed"})));
    let item = post(&stack, "post_failed").await;
    assert_eq!(item.state.overall(now()), PostStatus::Failed);
    assert_eq!(item.state.entries[&Platform::Facebook].error.as_deref(), Some("The page access token has expired"));
}

#[tokio::test]
async fn post_cancelled_sample_cancels_the_post() {
    let stack = Stack::start().await;
    assert_eq!(Sample::load("webhook-post-cancelled").send(&stack).await.0, 200);
    assert_eq!(post(&stack, "post_cancelled").await.state.overall(now()), PostStatus::Cancelled);
}

#[tokio::test]
async fn account_samples_connect_then_expire_the_connection_of_a_known_profile() {
    let stack = Stack::start().await;
    stack.store.link_profile(&project(), &profile()).await.unwrap();
    assert_eq!(Sample::load("webhook-account-connected").send(&stack).await, (200, json!({"status": "processed"})));
    let connected = stack.store.get_connection(&profile(), Platform::X).await.unwrap().expect("connection stored");
    assert_eq!(connected.project_id, project());
    assert_eq!(connected.connection.status, ConnectionStatus::Connected);
    assert_eq!(connected.connection.account_id.as_deref(), Some("64e100000000000000000001"));
    assert_eq!(connected.connection.username.as_deref(), Some("acme"));
    assert_eq!(connected.connection.display_name.as_deref(), Some("Acme Inc."));
    // `updated_at` is when the visible state last changed: the moment the second event was applied
    // (its stamp is a day ahead of this clock, so its evidence time is the clock's own).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before = integration_tests::now();
    assert_eq!(Sample::load("webhook-account-disconnected").send(&stack).await, (200, json!({"status": "processed"})));
    let after = integration_tests::now();
    let expired = stack.store.get_connection(&profile(), Platform::X).await.unwrap().unwrap();
    assert_eq!(expired.connection.status, ConnectionStatus::Expired);
    assert_eq!(expired.connection.reason.as_deref(), Some("token_expired"));
    assert!(connected.updated_at < before, "connected before the second event was sent");
    assert!(
        (before..=after).contains(&expired.updated_at),
        "updated_at {:?} is when the status changed, within [{before:?}, {after:?}]",
        expired.updated_at
    );
    assert_eq!(expired.version, connected.version + 1, "one write for one change");
    // Sent again, it changes nothing visible: `updated_at` stays.
    assert_eq!(Sample::load("webhook-account-disconnected").send(&stack).await.1, json!({"status": "duplicate"}));
    let again = stack.store.get_connection(&profile(), Platform::X).await.unwrap().unwrap();
    assert_eq!(again.updated_at, expired.updated_at);
}

#[tokio::test]
async fn an_account_event_for_an_unknown_profile_is_ignored_and_writes_nothing() {
    let stack = Stack::start().await;
    assert_eq!(Sample::load("webhook-account-connected").send(&stack).await, (200, json!({"status": "ignored"})));
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn every_sample_is_signed_with_the_local_secret_and_reaches_the_handler_as_a_lambda_event() {
    // GIVEN each sample file as Lambda would deliver it WHEN parsed by lambda_http and handled
    // THEN the raw body (base64 or not) verifies and is applied
    let stack = Stack::start().await;
    stack.store.link_profile(&project(), &profile()).await.unwrap();
    let webhook = shared::handlers::webhook::Webhook {
        store: stack.store.clone(),
        queue: stack.queue(),
        clock: shared::ports::SystemClock,
        secrets: shared::signature::WebhookSecrets::from_list(SECRET).into(),
        parse: shared::wiring::WEBHOOK_FORMAT,
    };
    for name in [
        "webhook-account-connected",
        "webhook-post-scheduled",
        "webhook-post-published",
        "webhook-post-partial",
        "webhook-post-failed",
        "webhook-post-cancelled",
        "webhook-account-disconnected",
    ] {
        let file = Sample::file(name);
        assert_eq!(
            file.header("x-zernio-signature"),
            Some(shared::signature::sign(SECRET, &file.body())),
            "{name} is signed"
        );
        let sample = Sample::load(name);
        let request = lambda_http::request::from_str(&sample.event.to_string()).expect("a function URL event");
        let response = webhook.handle(request).await;
        assert_eq!(response.status(), 200, "{name}");
        let lambda_http::Body::Text(text) = response.body() else { panic!("{name}: JSON body") };
        assert_eq!(text, r#"{"status":"processed"}"#, "{name}");
    }
    let items = stack.items().await;
    let events = items.iter().filter(|i| s(i, "pk").is_some_and(|pk| pk.starts_with("EVENT#"))).count();
    assert_eq!(events, 7);
}

#[tokio::test]
async fn unhandled_event_types_and_posts_without_our_metadata_are_ignored() {
    let stack = Stack::start().await;
    let test = json!({"id": "evt_t", "event": "webhook.test"});
    assert_eq!(stack.send(&test).await, (200, json!({"status": "ignored"})));
    let foreign = json!({"id": "evt_f", "event": "post.published", "post": {"id": "p", "platforms": []}});
    assert_eq!(stack.send(&foreign).await, (200, json!({"status": "ignored"})));
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn the_older_late_signature_header_is_accepted() {
    let stack = Stack::start().await;
    let body = Sample::load("webhook-post-partial").body();
    let response = stack
        .http
        .post(stack.webhook_url())
        .header("x-late-signature", shared::signature::sign(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"status": "processed"}));
}

#[tokio::test]
async fn a_signed_event_sent_with_another_method_than_post_is_405_and_stores_nothing() {
    let stack = Stack::start().await;
    stack.store.link_profile(&project(), &profile()).await.unwrap();
    let sample = Sample::load("webhook-account-connected");
    let before = stack.items().await;
    for method in [reqwest::Method::PUT, reqwest::Method::GET, reqwest::Method::DELETE] {
        let mut request = stack.http.request(method.clone(), stack.webhook_url()).body(sample.body());
        for name in ["content-type", "x-zernio-signature", "x-zernio-event-id"] {
            request = request.header(name, sample.header(name).unwrap());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    assert_eq!(stack.items().await, before);
}
