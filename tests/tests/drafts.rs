//! Items stay small (capacity.md): a post's draft — content and media, up to ~225 KB — lives in an
//! item of its own, written only when the draft changes, so a webhook's rewrite of the post costs
//! the same few write units whatever the post says. Against both emulators.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{Backend, StoreUnderTest, item_bytes, s};
use shared::adapters::dynamo::PostItem;
use shared::domain::media::Media;
use shared::domain::post::PostReport;
use shared::domain::publish::{Sending, SendingChange, Target};
use shared::domain::{EntryStatus, EventId, Platform, PostId, PostState, ProjectId, Timestamp};
use shared::ports::{Draft, EventStore, PostChange, PostStore, Source, StoreError};

const BACKENDS: [Backend; 2] = [Backend::Dynoxide, Backend::Moto];
/// The content limit of a post (`app-api.md`).
const BIG: usize = shared::handlers::posts::MAX_CONTENT_BYTES;

fn ids() -> (ProjectId, PostId) {
    (ProjectId::parse("proj_1").unwrap(), PostId::parse("post_1").unwrap())
}

fn draft(text: &str, size: usize) -> Draft {
    let content = format!("{text}{}", "x".repeat(size.saturating_sub(text.len())));
    Draft { content, media: vec![Media::bare("https://cdn.example.com/launch.mp4")] }
}

fn report(status: EntryStatus) -> PostReport {
    integration_tests::post_report(1, Platform::X, status)
}

/// The bytes of a stored item, as DynamoDB sizes it (names plus values; near enough here).
async fn raw(t: &StoreUnderTest, sk: &str) -> Option<HashMap<String, AttributeValue>> {
    let out = t
        .direct
        .get_item()
        .table_name(&t.table)
        .key("pk", AttributeValue::S("PROJECT#proj_1".into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.filter(|i| !i.is_empty())
}

async fn put_raw(t: &StoreUnderTest, item: HashMap<String, AttributeValue>) {
    t.direct.put_item().table_name(&t.table).set_item(Some(item)).send().await.unwrap();
}

/// A post with this draft, one copy queued, as a publish stores it.
async fn stored_with(t: &StoreUnderTest, d: &Draft) -> shared::ports::StoredPost {
    let (project, post) = ids();
    let queued = report(EntryStatus::Queued).to_state(None).unwrap();
    let change = PostChange::new(&Source::Publish, &queued).with_draft(d);
    t.store.save_post(&project, &post, None, change, integration_tests::now()).await.unwrap()
}

#[tokio::test]
async fn a_webhooks_rewrite_of_a_post_at_the_content_limit_is_as_small_as_a_short_posts() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post) = ids();
        // GIVEN a post whose content is at the limit
        let big = draft("Launch day", BIG);
        stored_with(&t, &big).await;
        let draft_before = raw(&t, "DRAFT#post_1").await.expect("the draft in its own item");
        // WHEN the service says it went live
        t.tap.reset();
        let event = EventId::parse("evt_1").unwrap();
        let live = report(EntryStatus::Published);
        let outcome = t.store.apply_post_report(&event, &project, &post, &live, now()).await;
        assert_eq!(outcome, Ok(shared::ports::Outcome::Applied { changed: true }), "{backend:?}");
        // THEN the one write carries the post's state, not its content (a few KB, not 64)
        let sent = t.tap.bytes();
        let written = sent.get("TransactWriteItems").copied().unwrap_or_default();
        assert!(written < 4096, "{backend:?}: the webhook's write sent {written} bytes: {sent:?}");
        // AND the post item stays under one write unit, its draft untouched beside it
        let item = raw(&t, "POST#post_1").await.unwrap();
        assert!(item_bytes(&item) < 1024, "{backend:?}: the post item is {} bytes", item_bytes(&item));
        assert_eq!(raw(&t, "DRAFT#post_1").await, Some(draft_before), "{backend:?}");
        // AND a read finds the post with its whole draft and the news
        let read = t.store.post(&project, &post).await.unwrap().unwrap();
        assert_eq!(read.draft, Some(big), "{backend:?}");
        assert_eq!(read.state.entries[&Platform::X].status, EntryStatus::Published, "{backend:?}");
    }
}

fn now() -> Timestamp {
    integration_tests::now()
}

#[tokio::test]
async fn the_draft_is_written_again_only_when_it_changes() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post) = ids();
        let first = draft("First", BIG);
        let read = stored_with(&t, &first).await;
        // WHEN the same draft is published: only the post item is written
        let account = shared::domain::AccountId::parse("acc_li").unwrap();
        let sending = Sending {
            generation: 2,
            targets: vec![Target { platform: Platform::Linkedin, account_id: account }],
            scheduled_for: None,
            since: now(),
            new_post: false,
            shown: false,
        };
        let nothing = PostState::default();
        let begin =
            PostChange::new(&Source::Publish, &nothing).with_draft(&first).with_sending(SendingChange::Begin(&sending));
        t.tap.reset();
        let begun = t.store.save_post(&project, &post, Some(&read), begin, now()).await.unwrap();
        let written: u64 = t.tap.bytes().values().sum();
        assert!(written < 4096, "{backend:?}: an unchanged draft was sent again ({written} bytes)");
        assert_eq!(begun.draft.as_ref(), Some(&first), "{backend:?}");
        // WHEN a new draft is saved THEN it replaces the old one, and a read finds it
        let second = draft("Second", 100);
        let change = PostChange::new(&Source::Publish, &nothing).with_draft(&second);
        let saved = t.store.save_post(&project, &post, Some(&begun), change, now()).await.unwrap();
        assert_eq!(saved.draft.as_ref(), Some(&second), "{backend:?}");
        assert_eq!(t.store.post(&project, &post).await.unwrap().unwrap(), saved, "{backend:?}");
        let kept = raw(&t, "DRAFT#post_1").await.unwrap();
        assert!(s(&kept, "content").is_some_and(|c| c.starts_with("Second")), "{backend:?}");
    }
}

#[tokio::test]
async fn a_post_item_written_before_drafts_were_kept_apart_keeps_its_content() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post) = ids();
        // GIVEN a post item as written before: its content in it, no draft item
        let old = draft("Written before", 2000);
        let read = stored_with(&t, &old).await;
        let mut legacy: PostItem = serde_dynamo::from_item(raw(&t, "POST#post_1").await.unwrap()).unwrap();
        legacy.draft_digest = None;
        legacy.content = Some(old.content.clone());
        legacy.media_urls = old.media.iter().map(|m| m.url.clone()).collect();
        put_raw(&t, serde_dynamo::to_item(&legacy).unwrap()).await;
        t.direct
            .delete_item()
            .table_name(&t.table)
            .key("pk", AttributeValue::S("PROJECT#proj_1".into()))
            .key("sk", AttributeValue::S("DRAFT#post_1".into()))
            .send()
            .await
            .unwrap();
        // WHEN a webhook rewrites it THEN its content stays
        let event = EventId::parse("evt_1").unwrap();
        t.store.apply_post_report(&event, &project, &post, &report(EntryStatus::Failed), now()).await.unwrap();
        let after_webhook = t.store.post(&project, &post).await.unwrap().unwrap();
        assert_eq!(after_webhook.draft.as_ref(), Some(&old), "{backend:?}");
        // WHEN the store next writes it itself THEN the draft moves to its own item, unchanged
        let published = report(EntryStatus::Published).to_state(None).unwrap();
        let change = PostChange::new(&Source::Sync, &published);
        let saved = t.store.save_post(&project, &post, Some(&after_webhook), change, now()).await.unwrap();
        assert_eq!(saved.draft.as_ref(), Some(&old), "{backend:?}");
        let item = raw(&t, "POST#post_1").await.unwrap();
        assert!(!item.contains_key("content") && !item.contains_key("media_urls"), "{backend:?}: {item:?}");
        assert!(raw(&t, "DRAFT#post_1").await.is_some(), "{backend:?}");
        let again = t.store.post(&project, &post).await.unwrap().unwrap();
        assert_eq!((again.draft.as_ref(), again.version), (Some(&old), read.version + 2), "{backend:?}");
    }
}

#[tokio::test]
async fn a_post_and_a_draft_from_different_writes_are_never_read_as_one() {
    for backend in BACKENDS {
        let t = StoreUnderTest::start(backend).await;
        let (project, post) = ids();
        let first = draft("First", 10);
        stored_with(&t, &first).await;
        let first_item = raw(&t, "DRAFT#post_1").await.unwrap();
        let second = draft("Second", 10);
        let nothing = PostState::default();
        let read = t.store.post(&project, &post).await.unwrap();
        let change = PostChange::new(&Source::Publish, &nothing).with_draft(&second);
        t.store.save_post(&project, &post, read.as_ref(), change, now()).await.unwrap();
        // GIVEN the post item of the second write beside the draft item of the first (a read that
        // caught the two at different writes sees this)
        let second_item = raw(&t, "DRAFT#post_1").await.unwrap();
        put_raw(&t, first_item).await;
        // THEN no read takes the first draft for the second
        assert!(matches!(t.store.post(&project, &post).await, Err(StoreError::Unavailable(_))), "{backend:?}");
        // AND once the pair is whole again the read finds the second
        put_raw(&t, second_item).await;
        assert_eq!(t.store.post(&project, &post).await.unwrap().unwrap().draft, Some(second), "{backend:?}");
    }
}
