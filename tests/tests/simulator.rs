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
    assert_eq!(again["post"]["_id"], created["post"]["_id"], "the original, in post");
    assert_eq!(api.sim.shared.stats()["posts_created"], 1);
    // The same content to the same account within 24 hours, under a new request id.
    let (status, dup, _) = api.call(reqwest::Method::POST, "/v1/posts", Some(body), &[("x-request-id", "req-2")]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["details"]["existingPostId"], created["post"]["_id"], "the typed form");
    assert_eq!(dup["details"]["platform"], "twitter");
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
    // The same key: 200 with the original, whatever the body (the match is on the key alone).
    let (status, replay, headers) = api.call(reqwest::Method::POST, "/v1/posts", Some(body), &key).await;
    assert_eq!((status, replay["post"]["_id"].clone()), (StatusCode::OK, first["post"]["_id"].clone()));
    assert_eq!(headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let other =
        json!({"content": "Other", "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "publishNow": true});
    let (status, replay, _) = api.call(reqwest::Method::POST, "/v1/posts", Some(other), &key).await;
    assert_eq!((status, replay["post"]["_id"].clone()), (StatusCode::OK, first["post"]["_id"].clone()));
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

/// The November 2026 API (publisher-zernio.md, "Amended December 2026"), as the simulator speaks it.
mod amended {
    use super::*;

    fn x_post(content: &str) -> Value {
        json!({"content": content, "platforms": [{"platform": "twitter", "accountId": "acc_x"}], "publishNow": true})
    }

    #[tokio::test]
    async fn a_key_in_flight_is_409_idempotency_conflict_and_a_request_id_in_flight_is_202_with_its_post_id() {
        let api = Api::start().await;
        api.profile_with_accounts().await;
        api.sim.shared.world().behaviour.publish_millis.insert("twitter".into(), 1_500);
        let keyed = api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Slow")), &[("idempotency-key", "k1")]);
        let second = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Slow")), &[("idempotency-key", "k1")]).await
        };
        let ((first, created, _), (status, conflict, headers)) = tokio::join!(keyed, second);
        assert_eq!(first, StatusCode::CREATED);
        assert_eq!((status, conflict["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency_conflict")));
        assert!(headers.get("retry-after").is_some() && conflict.pointer("/details/existingPostId").is_none());
        // The request id alone, same content: 202 with the post id while it is being saved.
        let by_id = api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Other")), &[("x-request-id", "r1")]);
        let again = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Other")), &[("x-request-id", "r1")]).await
        };
        let ((_, original, _), (status, saving, _)) = tokio::join!(by_id, again);
        assert_eq!((status, &saving["postId"]), (StatusCode::ACCEPTED, &original["post"]["_id"]));
        assert_eq!(api.sim.shared.stats()["posts_created"], 2);
        assert_ne!(created["post"]["_id"], original["post"]["_id"]);
    }

    #[tokio::test]
    async fn a_transient_failure_is_a_207_whose_post_is_scheduled_and_a_write_may_be_taken_then_answered_503() {
        let api = Api::start().await;
        api.profile_with_accounts().await;
        api.control(reqwest::Method::PUT, "/control/outcomes", json!({"twitter": "transient"})).await;
        let (status, answer) = api.post("/v1/posts", x_post("Retried")).await;
        assert_eq!(status, StatusCode::MULTI_STATUS);
        assert_eq!(answer["post"]["status"], "scheduled");
        assert_eq!(answer["post"]["platforms"][0]["status"], "pending");
        api.control(reqwest::Method::PUT, "/control/outcomes", json!({})).await;
        api.sim.shared.set_fault(Fault {
            mode: FaultMode::TakenThenUnavailable { retry_after: 3 },
            times: Some(1),
            ..Default::default()
        });
        let (status, body, headers) =
            api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Landed")), &[("idempotency-key", "k2")]).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")));
        assert_eq!(headers["retry-after"], "3");
        let (status, replay, _) =
            api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Landed")), &[("idempotency-key", "k2")]).await;
        assert_eq!((status, replay["post"]["content"].as_str()), (StatusCode::OK, Some("Landed")), "it was taken");
    }

    #[tokio::test]
    async fn an_accounts_limit_is_a_429_naming_it_with_the_teams_headers_not_spent() {
        let api = Api::start().await;
        api.profile_with_accounts().await;
        api.sim.shared.world().behaviour.posts_per_hour_per_account = Some(1);
        assert_eq!(api.post("/v1/posts", x_post("One")).await.0, StatusCode::CREATED);
        let (status, body, headers) = api.call(reqwest::Method::POST, "/v1/posts", Some(x_post("Two")), &[]).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            (body["details"]["accountId"].as_str(), body["details"]["platform"].as_str()),
            (Some("acc_x"), Some("twitter"))
        );
        assert!(body["details"]["rateLimitedUntil"].is_string());
        assert_ne!(headers["x-ratelimit-remaining"], "0", "the team's limit is not what refused it");
        api.sim.shared.world().behaviour.posts_per_hour_per_account = None;
        api.control(reqwest::Method::PUT, "/control/accounts/acc_x/cooldown", json!({"until": "2099-01-01T00:00:00Z"}))
            .await;
        let (status, body) = api.post("/v1/posts", x_post("Three")).await;
        assert_eq!(
            (status, body["details"]["rateLimitedUntil"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("2099-01-01T00:00:00Z"))
        );
    }

    #[tokio::test]
    async fn profiles_carry_an_external_id_are_found_by_it_and_a_cut_off_key_stays_in_flight() {
        let api = Api::start().await;
        api.sim.shared.world().behaviour.cut_off_profile_keys = true;
        let key = [("idempotency-key", "profile-a")];
        let body = json!({"name": "stacc-a", "externalId": "a"});
        let (status, created, _) = api.call(reqwest::Method::POST, "/v1/profiles", Some(body.clone()), &key).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, again, _) = api.call(reqwest::Method::POST, "/v1/profiles", Some(body), &key).await;
        assert_eq!(status, StatusCode::CONFLICT, "the key stays in flight");
        assert!(again.pointer("/details/existingProfileId").is_none());
        let (_, found) = api.get("/v1/profiles?externalId=a").await;
        assert_eq!(found["profiles"][0]["_id"], created["profile"]["_id"]);
        assert_eq!(api.get("/v1/profiles?name=stacc-a").await.1["profiles"][0]["_id"], created["profile"]["_id"]);
        assert_eq!(api.get("/v1/profiles?externalId=b").await.1["profiles"], json!([]));
        let (status, clash) = api.post("/v1/profiles", json!({"name": "other", "externalId": "a"})).await;
        assert_eq!((status, clash["code"].as_str()), (StatusCode::CONFLICT, Some("profile_external_id_conflict")));
        api.sim.shared.world().behaviour.payment_required = Some("free_tier_exceeded".into());
        let (status, refused) = api.post("/v1/profiles", json!({"name": "c"})).await;
        assert_eq!((status, refused["code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("PAYMENT_REQUIRED")));
    }

    #[tokio::test]
    async fn connect_reconnects_the_named_account_and_x_refuses_a_long_redirect() {
        let api = Api::start().await;
        let profile = api.profile_with_accounts().await;
        let long = format!("https://app.example/{}", "a".repeat(240));
        let (status, body) = api.get(&format!("/v1/connect/twitter?profileId={profile}&redirect_url={long}")).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_REDIRECT_URL")));
        // acc_fb needs reconnecting: with reconnectAccountId it is refreshed in place.
        let (_, link) = api.get(&format!("/v1/connect/facebook?profileId={profile}&reconnectAccountId=acc_fb")).await;
        let state = link["state"].as_str().unwrap();
        api.control(reqwest::Method::POST, "/control/connect/complete", json!({"state": state})).await;
        let (_, list) = api.get(&format!("/v1/accounts?profileId={profile}")).await;
        let facebook: Vec<&Value> =
            list["accounts"].as_array().unwrap().iter().filter(|a| a["platform"] == "facebook").collect();
        assert_eq!(facebook.len(), 1);
        assert_eq!((facebook[0]["_id"].as_str(), facebook[0]["isActive"].as_bool()), (Some("acc_fb"), Some(true)));
        // Paging: page alone is a 400; page with limit pages.
        assert_eq!(api.get(&format!("/v1/accounts?profileId={profile}&page=1")).await.0, StatusCode::BAD_REQUEST);
        let (_, page) = api.get(&format!("/v1/accounts?profileId={profile}&page=2&limit=1")).await;
        assert_eq!((page["accounts"].as_array().unwrap().len(), page["pagination"]["pages"].as_u64()), (1, Some(2)));
        // Accounts and profiles are deleted as the service deletes them.
        assert_eq!(
            api.call(reqwest::Method::DELETE, &format!("/v1/profiles/{profile}"), None, &[]).await.0,
            StatusCode::BAD_REQUEST
        );
        for id in ["acc_x", "acc_fb"] {
            assert_eq!(
                api.call(reqwest::Method::DELETE, &format!("/v1/accounts/{id}"), None, &[]).await.0,
                StatusCode::OK
            );
            assert_eq!(
                api.call(reqwest::Method::DELETE, &format!("/v1/accounts/{id}"), None, &[]).await.0,
                StatusCode::NOT_FOUND
            );
        }
        assert_eq!(
            api.call(reqwest::Method::DELETE, &format!("/v1/profiles/{profile}"), None, &[]).await.0,
            StatusCode::OK
        );
        assert_eq!(
            api.call(reqwest::Method::DELETE, &format!("/v1/profiles/{profile}"), None, &[]).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn a_failing_subscription_is_switched_off_its_logs_kept_and_a_delivery_replayed_byte_for_byte() {
        use axum::routing::post;
        let received = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<(String, Vec<u8>)>::new()));
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, h) = (received.clone(), healthy.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (r, h) = (r.clone(), h.clone());
                async move {
                    let signature = headers["x-zernio-signature"].to_str().unwrap().to_owned();
                    r.lock().await.push((signature, body.to_vec()));
                    if h.load(std::sync::atomic::Ordering::SeqCst) { StatusCode::OK } else { StatusCode::BAD_GATEWAY }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let api = Api::start().await;
        {
            let mut world = api.sim.shared.world();
            // The switch-off rule with a window of no time: the first failure ends it.
            world.behaviour.webhook_off_after_seconds = 0;
        }
        api.post("/v1/webhooks/settings", json!({"url": url, "secret": "s", "events": []})).await;
        let profile = api.profile_with_accounts().await;
        let (_, link) = api.get(&format!("/v1/connect/linkedin?profileId={profile}")).await;
        api.control(reqwest::Method::POST, "/control/connect/complete", json!({"state": link["state"]})).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while api.sim.shared.world().webhook_logs.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, settings) = api.get("/v1/webhooks/settings").await;
        let hook = &settings["webhooks"][0];
        assert_eq!((hook["isActive"].as_bool(), hook["failureCount"].as_u64()), (Some(false), Some(1)), "{hook}");
        let webhook_id = hook["_id"].as_str().unwrap().to_owned();
        let (_, logs) = api.get(&format!("/v1/webhooks/logs?status=failed&webhookId={webhook_id}")).await;
        let logs = logs["logs"].as_array().unwrap().clone();
        assert_eq!(logs.len(), 1);
        // Switched off, an event is not delivered (and not logged).
        let before = received.lock().await.len();
        let (_, link) = api.get(&format!("/v1/connect/instagram?profileId={profile}")).await;
        api.control(reqwest::Method::POST, "/control/connect/complete", json!({"state": link["state"]})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(received.lock().await.len(), before);
        // Switched on again, a failed delivery is replayed byte for byte, and logged.
        healthy.store(true, std::sync::atomic::Ordering::SeqCst);
        let (status, _, _) = api
            .call(
                reqwest::Method::PUT,
                "/v1/webhooks/settings",
                Some(json!({"webhookId": webhook_id, "isActive": true})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let event_id = logs[0]["eventId"].as_str().unwrap();
        let (status, _) =
            api.post("/v1/webhooks/logs/redeliver", json!({"webhookId": webhook_id, "eventId": event_id})).await;
        assert_eq!(status, StatusCode::OK);
        let got = received.lock().await.clone();
        let first = got.iter().find(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["id"] == event_id).unwrap();
        assert_eq!(got.last().unwrap(), first, "the same bytes, the same signature");
        let (_, settings) = api.get("/v1/webhooks/settings").await;
        assert_eq!(settings["webhooks"][0]["failureCount"], 0, "a success resets the count");
        let (_, ok) = api.get(&format!("/v1/webhooks/logs?status=success&eventId={event_id}")).await;
        assert_eq!(ok["logs"].as_array().unwrap().len(), 1);
    }
}
