//! The publishing-service simulator speaks `publisher-zernio.md`: later features are tested
//! against it, so its own promises are checked here.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use zernio_sim::{Fault, FaultMode, SimConfig, Simulator};

struct Api {
    sim: Simulator,
    http: reqwest::Client,
}

impl Api {
    async fn start() -> Api {
        Api { sim: Simulator::start(SimConfig::default()).await.unwrap(), http: reqwest::Client::new() }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.sim.api_url())).bearer_auth("sk_local");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, b, _) = self.call(reqwest::Method::GET, path, None, &[]).await;
        (s, b)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self.call(reqwest::Method::POST, path, Some(body), &[]).await;
        (s, b)
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) {
        let response =
            self.http.request(method, format!("{}{path}", self.sim.control_url())).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "control {path}: {}", response.status());
    }

    /// A profile with one usable and one disconnected account.
    async fn profile_with_accounts(&self) -> String {
        let (status, created) = self.post("/v1/profiles", json!({"name": "proj_1", "description": "theStacc"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let profile = created["profile"]["_id"].as_str().unwrap().to_owned();
        self.control(
            reqwest::Method::PUT,
            &format!("/control/profiles/{profile}/accounts"),
            json!([
                {"_id": "acc_x", "platform": "twitter", "username": "acme", "displayName": "Acme", "isActive": true},
                {"_id": "acc_fb", "platform": "facebook", "username": "acmefb", "displayName": "Acme Page", "isActive": true, "needsReconnection": true}
            ]),
        )
        .await;
        profile
    }
}

#[tokio::test]
async fn every_call_needs_the_api_key() {
    let api = Api::start().await;
    let response = api.http.get(format!("{}/v1/profiles/x", api.sim.api_url())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"error": "Unauthorized"}));
}

#[tokio::test]
async fn a_retried_profile_create_gets_409_with_the_existing_id_and_a_deleted_profile_is_404() {
    let api = Api::start().await;
    let (_, first) = api.post("/v1/profiles", json!({"name": "proj_1"})).await;
    let id = first["profile"]["_id"].as_str().unwrap();
    assert_eq!(id.len(), 24, "an ObjectId");
    let (status, again) = api.post("/v1/profiles", json!({"name": "proj_1"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["code"], "profile_name_conflict");
    assert_eq!(again["details"]["existingProfileId"], id);
    assert_eq!(api.get(&format!("/v1/profiles/{id}")).await.0, StatusCode::OK);
    api.control(reqwest::Method::DELETE, &format!("/control/profiles/{id}"), json!({})).await;
    assert_eq!(api.get(&format!("/v1/profiles/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get(&format!("/v1/accounts?profileId={id}")).await.0, StatusCode::NOT_FOUND);
    let (status, body) = api.get(&format!("/v1/connect/twitter?profileId={id}")).await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": "Profile not found"})));
}

#[tokio::test]
async fn accounts_and_health_list_the_profile_accounts_with_overrides() {
    let api = Api::start().await;
    let profile = api.profile_with_accounts().await;
    let (status, list) = api.get(&format!("/v1/accounts?profileId={profile}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(list["accounts"][1]["needsReconnection"], true);
    api.control(
        reqwest::Method::PUT,
        "/control/accounts/acc_x/health",
        json!({"status": "warning", "issues": ["Slow"]}),
    )
    .await;
    let (_, health) = api.get(&format!("/v1/accounts/health?profileId={profile}")).await;
    let by_id =
        |id: &str| health["accounts"].as_array().unwrap().iter().find(|a| a["accountId"] == id).unwrap().clone();
    assert_eq!(by_id("acc_x")["status"], "warning");
    assert_eq!(by_id("acc_fb")["needsReconnect"], true);
    assert_eq!(health["summary"]["total"], 2);
}

#[tokio::test]
async fn connect_returns_a_link_whose_completion_adds_the_account_and_fires_account_connected() {
    let api = Api::start().await;
    let profile = api.profile_with_accounts().await;
    // A receiver for the registered webhook.
    let received = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<(String, Value)>::new()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: axum::http::HeaderMap, body: String| async move {
                let sig = headers.get("x-zernio-signature").unwrap().to_str().unwrap().to_owned();
                received.lock().await.push((sig, serde_json::from_str(&body).unwrap()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (status, _) = api.post("/v1/webhooks/settings", json!({"name": "stacc", "url": hook, "secret": "s3cret", "events": ["account.connected"], "isActive": true})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, link) =
        api.get(&format!("/v1/connect/linkedin?profileId={profile}&redirect_url=https://app/back")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(link["authUrl"].as_str().unwrap().starts_with("http"));
    let opened = api.http.get(link["authUrl"].as_str().unwrap()).send().await.unwrap();
    assert!(opened.text().await.unwrap().starts_with("Connected linkedin"));
    let (_, list) = api.get(&format!("/v1/accounts?profileId={profile}")).await;
    assert!(list["accounts"].as_array().unwrap().iter().any(|a| a["platform"] == "linkedin"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.lock().await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.lock().await.clone();
    assert_eq!(got.len(), 1);
    let (signature, event) = &got[0];
    assert_eq!(event["event"], "account.connected");
    assert_eq!(event["account"]["profileId"], profile);
    assert_eq!(*signature, zernio_sim::sign("s3cret", event.to_string().as_bytes()));
}

#[tokio::test]
async fn posts_are_idempotent_by_request_id_and_refuse_foreign_disconnected_and_duplicate_content() {
    let api = Api::start().await;
    api.profile_with_accounts().await;
    let body = json!({"content": "Hello", "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "publishNow": true,
                      "metadata": {"stacc_project_id": "proj_1", "stacc_post_id": "post_1", "stacc_generation": 1}});
    let (status, created, _) =
        api.call(reqwest::Method::POST, "/v1/posts", Some(body.clone()), &[("x-request-id", "req-1")]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["post"]["status"], "published");
    assert_eq!(created["post"]["metadata"]["stacc_post_id"], "post_1");
    let (status, again, _) =
        api.call(reqwest::Method::POST, "/v1/posts", Some(body.clone()), &[("x-request-id", "req-1")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["existingPost"]["_id"], created["post"]["_id"], "the original, in existingPost");
    assert_eq!(api.sim.shared.stats()["posts_created"], 1);
    // The same content to the same account within 24 hours, under a new request id.
    let (status, dup, _) = api.call(reqwest::Method::POST, "/v1/posts", Some(body), &[("x-request-id", "req-2")]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["existingPostId"], created["post"]["_id"]);
    // An account that is not ours: 403 without a code; a disconnected one: ACCOUNT_DISCONNECTED.
    let (status, foreign) = api
        .post(
            "/v1/posts",
            json!({"content": "A", "platforms": [{"platform": "twitter", "accountId": "nope"}], "publishNow": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(foreign.get("code").is_none());
    let (status, disconnected) = api
        .post(
            "/v1/posts",
            json!({"content": "B", "platforms": [{"platform": "facebook", "accountId": "acc_fb"}], "publishNow": true}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(disconnected["code"], "ACCOUNT_DISCONNECTED");
    // A scheduled post waits; GET shows it; deleted on the service's side it is 404.
    let (status, scheduled) = api.post("/v1/posts", json!({"content": "C", "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "scheduledFor": "2030-01-01T00:00:00Z"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(scheduled["post"]["status"], "scheduled");
    assert_eq!(scheduled["post"]["platforms"][0]["status"], "pending");
    let id = scheduled["post"]["_id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/v1/posts/{id}")).await.1["post"]["_id"], id);
    api.control(reqwest::Method::DELETE, &format!("/control/posts/{id}"), json!({})).await;
    assert_eq!(api.get(&format!("/v1/posts/{id}")).await, (StatusCode::NOT_FOUND, json!({"error": "Not found"})));
    // Exactly one of publishNow and scheduledFor.
    let (status, _) = api
        .post("/v1/posts", json!({"content": "D", "platforms": [{"platform": "twitter", "accountId": "acc_x"}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_make_the_api_down_slow_failing_or_rate_limited_and_clear() {
    let api = Api::start().await;
    api.sim.shared.set_fault(Fault { mode: FaultMode::RateLimited { retry_after: 17 }, ..Default::default() });
    let (status, _, headers) = api.call(reqwest::Method::GET, "/v1/profiles/x", None, &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "17");
    api.sim.shared.set_fault(Fault { mode: FaultMode::Status { code: 503 }, times: Some(1), ..Default::default() });
    assert_eq!(api.get("/v1/profiles/x").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.get("/v1/profiles/x").await.0, StatusCode::NOT_FOUND, "a fault with `times` clears itself");
    api.sim.shared.set_fault(Fault { mode: FaultMode::Slow { millis: 300 }, ..Default::default() });
    let start = Instant::now();
    api.get("/v1/profiles/x").await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    api.sim.shared.set_fault(Fault { mode: FaultMode::Down, ..Default::default() });
    let down = api.http.get(format!("{}/v1/profiles/x", api.sim.api_url())).bearer_auth("sk_local").send().await;
    assert!(down.is_err(), "down: the connection is closed unanswered");
    api.control(reqwest::Method::DELETE, "/control/faults", json!({})).await;
    assert_eq!(api.get("/v1/profiles/x").await.0, StatusCode::NOT_FOUND);
    let stats = api.sim.shared.stats();
    assert!(stats["calls"]["GET /v1/profiles/{id}"].as_u64().unwrap() >= 5);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_another_body_and_the_key_has_a_limit_a_minute() {
    let api = Api::start().await;
    api.profile_with_accounts().await;
    let body =
        json!({"content": "Keyed", "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "publishNow": true});
    let key = [("idempotency-key", "key-1")];
    let (status, first, _) = api.call(reqwest::Method::POST, "/v1/posts", Some(body.clone()), &key).await;
    assert_eq!(status, StatusCode::CREATED);
    // The same key and body: the first answer, replayed; another body: 422.
    let (status, replay, headers) = api.call(reqwest::Method::POST, "/v1/posts", Some(body), &key).await;
    assert_eq!((status, replay["post"]["_id"].clone()), (StatusCode::CREATED, first["post"]["_id"].clone()));
    assert_eq!(headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let other =
        json!({"content": "Other", "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "publishNow": true});
    assert_eq!(
        api.call(reqwest::Method::POST, "/v1/posts", Some(other), &key).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(api.sim.shared.stats()["posts_created"], 1);
    // The key's limit: past it, 429 with Retry-After and X-RateLimit-Reset.
    api.sim.shared.world().behaviour.calls_per_minute = Some(1);
    let mut limited = None;
    for _ in 0..3 {
        let (status, _, headers) = api.call(reqwest::Method::GET, "/v1/posts/none", None, &[]).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(headers);
        }
    }
    let headers = limited.expect("a 429 past the limit");
    assert!(headers.get("retry-after").is_some() && headers.get("x-ratelimit-reset").is_some());
}
