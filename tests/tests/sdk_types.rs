//! The simulator's answers and webhook payloads, and the client's request bodies, checked against
//! the publishing service's official SDK (`zernio-sdk`, a test oracle in `.venv`): a shape the SDK
//! rejects fails here, so the simulator cannot drift from the real service unnoticed.

use std::path::{Path, PathBuf};

use integration_tests::root;
use serde_json::{Value, json};
use shared::domain::media::{Media, MediaType};
use shared::domain::publish::{Publication, Target};
use shared::domain::{AccountId, Platform, PostId, ProjectId, Timestamp};
use zernio_sim::{Behaviour, PublishOutcome, SimConfig, Simulator};

struct Api {
    sim: Simulator,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}/v1{path}", self.sim.api_url())).bearer_auth("sk_local");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("simulator");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn control(&self, path: &str, body: Value) {
        let url = format!("{}{path}", self.sim.control_url());
        assert!(self.http.put(url).json(&body).send().await.expect("control").status().is_success());
    }
}

fn save(folder: &Path, file: &str, kind: &str, name: &str, body: &Value) {
    let sample = json!({"kind": kind, "name": name, "body": body});
    std::fs::write(folder.join(format!("{file}.json")), serde_json::to_vec_pretty(&sample).unwrap()).unwrap();
}

fn publication(scheduled: bool) -> Publication {
    Publication {
        request_id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
        content: "Hello".into(),
        targets: vec![Target {
            platform: Platform::X,
            account_id: AccountId::parse("64e100000000000000000001").unwrap(),
        }],
        scheduled_for: scheduled.then(|| Timestamp::parse("2030-01-01T10:00:00Z").unwrap()),
        media: vec![Media { url: "https://cdn.example/clip.mp4".into(), kind: MediaType::Video }],
        project: ProjectId::parse("proj_1").unwrap(),
        post: PostId::parse("post_1").unwrap(),
        generation: 1,
        sent_at: Timestamp::parse("2026-12-01T10:00:00Z").unwrap(),
        booking: None,
    }
}

/// Every shape we speak, written as samples into `folder`.
async fn samples(folder: &Path) {
    let api =
        Api { sim: Simulator::start(SimConfig::default()).await.expect("simulator"), http: reqwest::Client::new() };
    use reqwest::Method;
    // Profiles.
    let project = ProjectId::parse("proj_1").unwrap();
    let profile_body = shared::adapters::zernio::wire::create_profile("stacc-proj_1-1a2b3c4d", &project);
    save(folder, "request-profile-create", "request", "profiles.create", &profile_body);
    let (status, created) = api.call(Method::POST, "/profiles", Some(profile_body)).await;
    assert_eq!(status, 201, "{created}");
    save(folder, "profile-create", "response", "ProfileCreateResponse", &created);
    let profile = created["profile"]["_id"].as_str().unwrap().to_owned();
    let (_, got) = api.call(Method::GET, &format!("/profiles/{profile}"), None).await;
    save(folder, "profile-get", "response", "ProfileGetResponse", &got);
    let (_, found) = api.call(Method::GET, "/profiles?externalId=proj_1", None).await;
    assert_eq!(found["profiles"][0]["_id"], profile.as_str());
    save(folder, "profile-list", "response", "ProfilesListResponse", &found);
    // Accounts, one over the plan's limit and one switched off for posting.
    let accounts = json!([
        {"_id": "64e100000000000000000001", "platform": "twitter", "profileId": profile, "username": "acme", "isActive": true},
        {"_id": "64e100000000000000000002", "platform": "linkedin", "profileId": profile, "username": "acme-li",
         "isActive": true, "enabled": false},
        {"_id": "64e100000000000000000003", "platform": "facebook", "profileId": profile, "username": "acme-fb",
         "isActive": true, "overLimit": true},
    ]);
    api.control(&format!("/control/profiles/{profile}/accounts"), accounts).await;
    let (_, listed) =
        api.call(Method::GET, &format!("/accounts?profileId={profile}&includeOverLimit=true"), None).await;
    assert_eq!(listed["accounts"].as_array().map(Vec::len), Some(3), "{listed}");
    save(folder, "accounts-list", "response", "AccountsListResponse", &listed);
    // Posts: the client's body for a publish-now and a scheduled one, and what each is answered.
    for (name, scheduled) in [("now", false), ("scheduled", true)] {
        let body = shared::adapters::zernio::wire::create_post(&publication(scheduled));
        save(folder, &format!("request-post-{name}"), "request", "posts.create", &body);
    }
    let create = |content: &str| {
        json!({"content": content, "platforms": [{"platform": "twitter", "accountId": "64e100000000000000000001"}],
               "publishNow": true, "metadata": {"stacc_project_id": "proj_1", "stacc_post_id": "post_1", "stacc_generation": 1}})
    };
    let (status, published) = api.call(Method::POST, "/posts", Some(create("Hello"))).await;
    assert_eq!(status, 201, "{published}");
    save(folder, "post-create", "response", "PostCreateResponse", &published);
    let post_id = published["post"]["_id"].as_str().unwrap().to_owned();
    let (_, got) = api.call(Method::GET, &format!("/posts/{post_id}"), None).await;
    save(folder, "post-get", "response", "PostGetResponse", &got);
    let (status, duplicate) = api.call(Method::POST, "/posts", Some(create("Hello"))).await;
    assert_eq!(status, 409, "{duplicate}");
    save(folder, "post-duplicate", "response", "ErrorResponse", &duplicate);
    api.sim.shared.world().outcomes.insert("twitter".into(), PublishOutcome::Failed);
    let (status, incomplete) = api.call(Method::POST, "/posts", Some(create("Fails"))).await;
    assert_eq!(status, 207, "{incomplete}");
    save(folder, "post-incomplete", "response", "PostPublishIncompleteResponse", &incomplete);
    api.sim.shared.world().outcomes.insert("twitter".into(), PublishOutcome::Transient);
    let (status, retried) = api.call(Method::POST, "/posts", Some(create("Retried"))).await;
    assert_eq!((status, retried["post"]["status"].as_str()), (207, Some("scheduled")), "{retried}");
    save(folder, "post-incomplete-retried", "response", "PostPublishIncompleteResponse", &retried);
    api.sim.shared.world().outcomes.clear();
    // The errors the amended API adds: an account's limit, 402.
    api.sim.shared.world().behaviour.posts_per_hour_per_account = Some(1);
    let (status, limited) = api.call(Method::POST, "/posts", Some(create("Limited"))).await;
    assert_eq!(status, 429, "{limited}");
    save(folder, "error-account-limited", "response", "ErrorResponse", &limited);
    api.sim.shared.world().behaviour.payment_required = Some("free_tier_exceeded".into());
    let (status, payment) = api.call(Method::POST, "/profiles", Some(json!({"name": "more"}))).await;
    assert_eq!(status, 402, "{payment}");
    save(folder, "error-payment-required", "response", "ErrorResponse", &payment);
    api.sim.shared.world().behaviour = Behaviour::default();
    // The webhook subscription, its logs.
    let (_, _) = api
        .call(
            Method::POST,
            "/webhooks/settings",
            Some(json!({"name": "stacc", "url": "http://127.0.0.1:9/hook", "secret": "s", "events": []})),
        )
        .await;
    api.sim.shared.notify_and_wait("post.published", json!({"post": published["post"].clone()})).await;
    let (_, settings) = api.call(Method::GET, "/webhooks/settings", None).await;
    save(folder, "webhook-settings", "response", "Webhook", &settings["webhooks"][0]);
    let (_, logs) = api.call(Method::GET, "/webhooks/logs", None).await;
    assert_eq!(logs["logs"][0]["status"], "failed", "{logs}");
    save(folder, "webhook-log", "response", "WebhookLog", &logs["logs"][0]);
    // Webhook payloads.
    for event in ["post.published", "post.failed", "post.partial", "post.scheduled", "post.cancelled"] {
        let body = api.sim.shared.post_event(event, &post_id).unwrap();
        save(folder, &format!("webhook-{}", event.replace('.', "-")), "response", "WebhookPayloadPost", &body);
    }
    let connected = api.sim.shared.account_event("account.connected", "64e100000000000000000001", None).unwrap();
    save(folder, "webhook-account-connected", "response", "WebhookPayloadAccountConnected", &connected);
    let gone = api.sim.shared.account_event("account.disconnected", "64e100000000000000000001", Some("unintentional"));
    save(folder, "webhook-account-disconnected", "response", "WebhookPayloadAccountDisconnected", &gone.unwrap());
    let _ = Behaviour::default();
    api.sim.shutdown().await;
}

fn oracle(folder: &Path) -> (bool, String) {
    let python = root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(root().join("tests/sdk_oracle/check.py"))
        .arg(folder)
        .output()
        .unwrap_or_else(|e| panic!("{} (run `make venv`): {e}", python.display()));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn folder(name: &str) -> PathBuf {
    let folder = root().join("target").join(name);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

#[tokio::test]
async fn every_shape_we_speak_is_one_the_vendors_sdk_accepts() {
    let folder = folder("sdk-samples");
    samples(&folder).await;
    let (passed, report) = oracle(&folder);
    println!("{report}");
    assert!(passed, "the SDK rejected a shape:\n{report}");
}

#[tokio::test]
async fn the_oracle_rejects_an_answer_without_a_required_field_and_a_field_the_sdk_never_sends() {
    // GIVEN a webhook post without its required `status`, and a create body with a field of its own
    let folder = folder("sdk-samples-broken");
    let event = json!({"id": "evt_1", "event": "post.published", "timestamp": "2026-12-01T10:00:00Z",
        "post": {"id": "p1", "content": "Hi", "scheduledFor": "2026-12-01T10:00:00Z", "platforms": []}});
    save(&folder, "webhook-without-status", "response", "WebhookPayloadPost", &event);
    let mut body = shared::adapters::zernio::wire::create_post(&publication(false));
    body["stacc"] = json!(true);
    save(&folder, "request-with-unknown-field", "request", "posts.create", &body);
    // WHEN the oracle reads them THEN both are rejected, by name
    let (passed, report) = oracle(&folder);
    assert!(!passed, "{report}");
    assert!(report.contains("webhook-without-status.json: response WebhookPayloadPost: REJECTED"), "{report}");
    assert!(report.contains("field 'stacc' is not sent by the SDK's posts.create"), "{report}");
}
