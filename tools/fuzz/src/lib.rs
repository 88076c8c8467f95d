//! What each fuzz target checks. `cargo fuzz` (the crate in `fuzz/`, nightly) calls these with
//! generated inputs; `make test` replays the committed corpora (`fuzz/corpus/<target>/`) through
//! them on stable, so a crash once found and fixed stays fixed.
//!
//! Every target: never a panic. Beyond that:
//! - `webhook`: the real webhook handler on raw bytes and a signature that is valid or not
//!   (the first byte says which); nothing reaches the store or the queue without a valid
//!   signature, and a verified body is either applied (200) or refused as not an event (400).
//! - `publish_request`: a body the publish parser accepts is within every bound of the contract.
//! - `service_answers`: any body as the answer to each read of the service reads into domain
//!   evidence, and that evidence joins idempotently.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use lambda_http::{Body, Request};
use shared::adapters::zernio::answers;
use shared::domain::connection::{ConnectionEvidence, ConnectionRecord};
use shared::domain::text::MAX_TEXT_BYTES;
use shared::domain::{EventId, Platform, PostId, PostReport, PostState, ProfileId, ProjectId, Timestamp};
use shared::handlers::posts::{MAX_CONTENT_BYTES, MAX_MEDIA_URL_BYTES, MAX_MEDIA_URLS, parse_publish};
use shared::handlers::webhook::Webhook;
use shared::ports::{Clock, EventStore, Outcome, QueueError, RetryMessage, RetryQueue, StoreError};
use shared::signature::{WebhookSecrets, sign};

const SECRET: &str = "fuzz-webhook-secret";

/// A store in memory that decides as the real one does (the domain's join), and counts calls.
#[derive(Default)]
struct Memory {
    taken: Mutex<BTreeSet<EventId>>,
    posts: Mutex<BTreeMap<(ProjectId, PostId), PostState>>,
    connections: Mutex<BTreeMap<(ProfileId, Platform), ConnectionRecord>>,
    calls: Mutex<u64>,
}

impl Memory {
    fn take(&self, event: &EventId) -> bool {
        *self.calls.lock().unwrap() += 1;
        self.taken.lock().unwrap().insert(event.clone())
    }
}

impl EventStore for Memory {
    async fn apply_post_report(
        &self,
        event: &EventId,
        project: &ProjectId,
        post: &PostId,
        report: &PostReport,
        _now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        if !self.take(event) {
            return Ok(Outcome::Duplicate);
        }
        let mut posts = self.posts.lock().unwrap();
        let stored = posts.entry((project.clone(), post.clone())).or_default();
        let Ok(state) = report.to_state(Some(stored)) else { return Ok(Outcome::Deferred) };
        let joined = stored.join(&state);
        assert_eq!(joined.join(&state), joined, "joining the same evidence twice changes nothing");
        let changed = joined != *stored;
        *stored = joined;
        Ok(Outcome::Applied { changed })
    }

    async fn apply_account_news(
        &self,
        event: &EventId,
        profile: &ProfileId,
        news: &ConnectionEvidence,
        _now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        if !self.take(event) {
            return Ok(Outcome::Duplicate);
        }
        let mut connections = self.connections.lock().unwrap();
        let record = connections.entry((profile.clone(), news.platform())).or_default();
        let next = record.with(news);
        assert_eq!(next.with(news), next, "the same news twice is once");
        let changed = next != *record;
        *record = next;
        Ok(Outcome::Applied { changed })
    }
}

#[derive(Default)]
struct Queue(Mutex<u64>);

impl RetryQueue for Queue {
    async fn enqueue(&self, _message: &RetryMessage) -> Result<(), QueueError> {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(1_795_000_000_000)
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
}

/// First byte: bit 0 signs the body with the secret (else a signature made of the body's own
/// bytes), bit 1 adds an event-id header. The rest is the body.
pub fn webhook(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else { return };
    let signature = match flags & 1 {
        1 => sign(SECRET, body),
        _ => body.iter().take(32).map(|b| format!("{b:02x}")).collect(),
    };
    let valid = signature == sign(SECRET, body);
    let mut request = lambda_http::http::Request::builder().method("POST").header("x-zernio-signature", &signature);
    if flags & 2 == 2 {
        let id: String = body.iter().take(12).map(|b| char::from(b'a' + b % 26)).collect();
        request = request.header("x-zernio-event-id", id);
    }
    let request: Request = request.body(Body::from(body.to_vec())).expect("a request");
    let webhook = Webhook {
        store: Memory::default(),
        queue: Queue::default(),
        clock: Fixed,
        secrets: WebhookSecrets::from_list(SECRET).into(),
        parse: shared::wiring::WEBHOOK_FORMAT,
    };
    let response = RUNTIME.with(|rt| rt.block_on(webhook.handle(request)));
    let status = response.status().as_u16();
    let touched = *webhook.store.calls.lock().unwrap() + *webhook.queue.0.lock().unwrap();
    if !valid {
        assert_eq!(status, 401, "an unsigned body is refused");
        assert_eq!(touched, 0, "an unsigned body reaches neither the store nor the queue");
        return;
    }
    match status {
        200 => {}
        400 | 413 => assert_eq!(touched, 0, "a refused body reaches neither the store nor the queue"),
        other => panic!("a verified body answered {other}"),
    }
}

/// Any bytes as the body of a publish request.
pub fn publish_request(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(request) = parse_publish(body, Fixed.now()) else { return };
    assert!(request.platforms.len() <= Platform::ALL.len());
    let distinct: BTreeSet<_> = request.platforms.iter().collect();
    assert_eq!(distinct.len(), request.platforms.len(), "each platform once");
    assert!(request.draft || !request.platforms.is_empty(), "a publish names a platform");
    if let Some(content) = &request.content {
        assert!(!content.trim().is_empty() && content.len() <= MAX_CONTENT_BYTES);
    }
    if let Some(media) = &request.media {
        assert!(media.len() <= MAX_MEDIA_URLS, "media are bounded together");
        // The scheme in any case (`HTTPS://` is a URL too).
        let http = |url: &str| url.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
        assert!(media.iter().all(|m| m.url.len() <= MAX_MEDIA_URL_BYTES && http(&m.url)));
    }
    if let Some(at) = request.scheduled_for {
        assert!(!shared::domain::publish::schedule_in_the_past(at, Fixed.now()), "no schedule in the past");
    }
}

/// Any bytes as the answer to each read of the service.
pub fn service_answers(data: &[u8]) {
    let body = answers::json(data);
    for account in answers::accounts(&body) {
        assert!(account.username.as_ref().is_none_or(|u| u.len() <= MAX_TEXT_BYTES), "names are bounded");
    }
    let _ = answers::health(&body);
    let _ = answers::next_page(&body);
    if let Some(id) = answers::existing_post_id(&body) {
        assert!(!id.as_str().is_empty() && id.as_str().len() <= 128, "a 409's post id is bounded");
    }
    let asked_at = Fixed.now();
    if let Some(report) = answers::created_post(&body, asked_at) {
        let links = report.platforms.iter().filter_map(|p| p.url.as_deref());
        assert!(links.into_iter().all(|u| u.to_ascii_lowercase().starts_with("http")), "links are http(s) only");
    }
    if let Some(report) = answers::post(&body, asked_at) {
        let _ = report.connection_news();
        if let Ok(state) = report.to_state(None) {
            assert_eq!(state.join(&state), state, "a state joined with itself is itself");
            let _ = state.overall(asked_at);
            for entry in state.entries.values() {
                let _ = state.shown(entry);
            }
        }
    }
}
