//! Connections end to end through the dev gateway (JWT checked as API Gateway would), against the
//! local stack and the simulator: Refresh's mapping, profile reset and recovery, Connect, the read,
//! races with webhooks, and failures that must change nothing.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::{Stack, s};
use reqwest::Method;
use serde_json::{Value, json};
use shared::adapters::zernio::ZernioClient;
use shared::domain::{ConnectionStatus, Platform, ProfileId, Timestamp};
use shared::handlers::connections::Refresh;
use shared::ports::Clock;
use zernio_sim::{Fault, FaultMode};

const PROJECT: &str = "proj_a";
const PROFILE: &str = "65aa000000000000000000a1";

fn account(id: &str, platform: &str) -> Value {
    json!({"_id": id, "platform": platform, "username": format!("{id}_user"), "displayName": format!("{id} name"),
           "profilePicture": format!("https://cdn/{id}.png"), "profileUrl": format!("https://{platform}/{id}"), "isActive": true})
}

async fn refresh(stack: &Stack) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let (status, body, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/connections/refresh"), Some(&token), None).await;
    (status, body)
}

fn by_platform(body: &Value) -> HashMap<String, Value> {
    body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["platform"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// A stack whose profile has these accounts, refreshed once so that each has a record.
async fn connected(accounts: Value) -> Stack {
    let stack = Stack::start().await;
    stack.given_profile(PROJECT, PROFILE, accounts).await;
    let (status, _) = refresh(&stack).await;
    assert_eq!(status, 200);
    stack
}

#[tokio::test]
async fn a_live_account_stays_connected_with_its_name_avatar_and_profile_url() {
    let stack = connected(json!([account("x1", "twitter")])).await;
    let (_, body) = refresh(&stack).await;
    let x = &by_platform(&body)["x"];
    assert_eq!(x["status"], "connected");
    assert_eq!(x["needs_reconnect"], false);
    assert_eq!((x["username"].as_str(), x["display_name"].as_str()), (Some("x1_user"), Some("x1 name")));
    assert_eq!(x["avatar_url"], "https://cdn/x1.png");
    assert_eq!(x["profile_url"], "https://twitter/x1");
    assert_eq!(body["connections"].as_array().unwrap().len(), 4, "always the four platforms");
    assert_eq!(by_platform(&body)["linkedin"]["status"], "not_connected");
}

#[tokio::test]
async fn a_lapsed_token_makes_the_connection_expired() {
    let stack = connected(json!([account("li1", "linkedin")])).await;
    let mut lapsed = account("li1", "linkedin");
    lapsed["needsReconnection"] = json!(true);
    stack.set_accounts(PROFILE, json!([lapsed])).await;
    let (_, body) = refresh(&stack).await;
    let li = &by_platform(&body)["linkedin"];
    assert_eq!(
        (li["status"].as_str(), li["reason"].as_str(), li["needs_reconnect"].as_bool()),
        (Some("expired"), Some("token_expired"), Some(true))
    );
}

#[tokio::test]
async fn an_account_removed_from_the_profile_is_expired_and_the_others_untouched() {
    let stack = connected(json!([account("x1", "twitter"), account("fb1", "facebook")])).await;
    stack.set_accounts(PROFILE, json!([account("x1", "twitter")])).await;
    let (_, body) = refresh(&stack).await;
    let all = by_platform(&body);
    assert_eq!(
        (all["facebook"]["status"].as_str(), all["facebook"]["reason"].as_str()),
        (Some("expired"), Some("account_removed"))
    );
    assert_eq!(all["x"]["status"], "connected");
    assert_eq!(body["profile_reset"], false);
}

#[tokio::test]
async fn every_account_removed_with_the_profile_still_there_expires_all_and_is_not_a_reset() {
    let stack = connected(json!([account("x1", "twitter"), account("ig1", "instagram")])).await;
    stack.set_accounts(PROFILE, json!([])).await;
    let (_, body) = refresh(&stack).await;
    let all = by_platform(&body);
    assert_eq!(body["profile_reset"], false);
    assert_eq!(all["x"]["status"], "expired");
    assert_eq!(all["instagram"]["status"], "expired");
    assert_eq!(body["needs_reconnect"], 2);
    assert_eq!(
        stack.publisher_calls()["GET /v1/profiles/{id}"],
        1,
        "the profile is checked only when the list is empty"
    );
}

#[tokio::test]
async fn an_account_reconnected_outside_the_app_is_relinked_to_its_new_id() {
    let stack = connected(json!([account("li_old", "linkedin")])).await;
    stack.set_accounts(PROFILE, json!([account("li_new", "linkedin")])).await;
    let (_, body) = refresh(&stack).await;
    let li = &by_platform(&body)["linkedin"];
    assert_eq!(
        (li["status"].as_str(), li["reason"].as_str(), li["account_id"].as_str()),
        (Some("connected"), Some("relinked"), Some("li_new"))
    );
    // What the next publish reads: the stored account id is the new one.
    let stored =
        stack.store.get_connection(&ProfileId::parse(PROFILE).unwrap(), Platform::Linkedin).await.unwrap().unwrap();
    assert_eq!(stored.connection.account_id.as_deref(), Some("li_new"));
}

#[tokio::test]
async fn an_account_connected_outside_the_app_is_recorded_connected() {
    let stack = connected(json!([])).await;
    stack.set_accounts(PROFILE, json!([account("ig7", "instagram")])).await;
    let (_, body) = refresh(&stack).await;
    let ig = &by_platform(&body)["instagram"];
    assert_eq!((ig["status"].as_str(), ig["account_id"].as_str()), (Some("connected"), Some("ig7")));
}

#[tokio::test]
async fn health_error_is_error_and_a_warning_stays_connected() {
    let stack = connected(json!([account("x1", "twitter"), account("fb1", "facebook")])).await;
    let health = |id: &str, status: &str| {
        let url = format!("{}/control/accounts/{id}/health", stack.sim.control_url());
        let request = stack.http.put(url).json(&json!({"status": status}));
        async move { assert!(request.send().await.unwrap().status().is_success()) }
    };
    health("x1", "error").await;
    health("fb1", "warning").await;
    let (_, body) = refresh(&stack).await;
    let all = by_platform(&body);
    assert_eq!((all["x"]["status"].as_str(), all["x"]["needs_reconnect"].as_bool()), (Some("error"), Some(true)));
    assert_eq!(all["facebook"]["status"], "connected");
}

#[tokio::test]
async fn a_new_avatar_and_name_on_the_platform_are_copied() {
    let stack = connected(json!([account("x1", "twitter")])).await;
    let mut changed = account("x1", "twitter");
    changed["username"] = json!("acme_new");
    changed["displayName"] = json!("Acme Renamed");
    changed["profilePicture"] = json!("https://cdn/x1-v2.png");
    stack.set_accounts(PROFILE, json!([changed])).await;
    let (_, body) = refresh(&stack).await;
    let x = &by_platform(&body)["x"];
    assert_eq!(
        (x["username"].as_str(), x["display_name"].as_str(), x["avatar_url"].as_str()),
        (Some("acme_new"), Some("Acme Renamed"), Some("https://cdn/x1-v2.png"))
    );
}

#[tokio::test]
async fn the_reconnect_count_and_message_are_right_for_zero_one_and_three() {
    let healthy =
        [account("x1", "twitter"), account("li1", "linkedin"), account("ig1", "instagram"), account("fb1", "facebook")];
    let stack = connected(json!(healthy)).await;
    let (_, body) = refresh(&stack).await;
    assert_eq!(
        (body["needs_reconnect"].as_u64(), body["message"].as_str()),
        (Some(0), Some("All your connections are working."))
    );
    stack
        .set_accounts(
            PROFILE,
            json!([account("x1", "twitter"), account("ig1", "instagram"), account("fb1", "facebook")]),
        )
        .await;
    let (_, body) = refresh(&stack).await;
    assert_eq!(
        (body["needs_reconnect"].as_u64(), body["message"].as_str()),
        (Some(1), Some("1 connection needs reconnecting: LinkedIn."))
    );
    stack.set_accounts(PROFILE, json!([account("fb1", "facebook")])).await;
    let (_, body) = refresh(&stack).await;
    assert_eq!(body["needs_reconnect"], 3);
    assert_eq!(body["message"], "3 connections need reconnecting: Instagram, LinkedIn and X.");
    let token = stack.token(PROJECT);
    let (_, read, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    assert_eq!(read["needs_reconnect"], 3);
}

#[tokio::test]
async fn connect_on_a_profile_the_service_forgot_clears_its_records_and_provisions_a_fresh_one() {
    // GIVEN connected accounts, then the profile deleted on the service, with no Refresh since
    let stack = connected(json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack.sim.shared.delete_profile(PROFILE);
    // WHEN the user clicks Connect
    let token = stack.token(PROJECT);
    let connect = format!("/projects/{PROJECT}/connections/x/connect");
    let (status, link, _) = stack.call(Method::POST, &connect, Some(&token), None).await;
    // THEN a fresh profile's link, and the forgotten profile's records are gone
    assert_eq!(status, 200, "{link}");
    assert_ne!(link["profile_id"], PROFILE);
    let (_, read, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    assert!(read["connections"].as_array().unwrap().iter().all(|c| c["status"] == "not_connected"), "{read}");
    let routes: Vec<_> =
        stack.items().await.into_iter().filter(|i| s(i, "pk").is_some_and(|pk| pk.contains(PROFILE))).collect();
    assert!(routes.is_empty(), "nothing is kept under the forgotten profile: {routes:?}");
}

#[tokio::test]
async fn a_reset_profile_clears_records_then_connect_provisions_a_fresh_one_that_completes_by_webhook() {
    let stack = connected(json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack.register_webhook().await;
    let control = stack.http.delete(format!("{}/control/profiles/{PROFILE}", stack.sim.control_url()));
    assert!(control.send().await.unwrap().status().is_success());
    let (status, body) = refresh(&stack).await;
    assert_eq!((status, body["profile_reset"].as_bool()), (200, Some(true)));
    assert!(body["connections"].as_array().unwrap().iter().all(|c| c["status"] == "not_connected"));
    let left: Vec<_> =
        stack.items().await.into_iter().filter(|i| !s(i, "sk").is_some_and(|sk| sk.starts_with("HIST#"))).collect();
    assert!(left.is_empty(), "connection records, routing and the stored profile id are gone: {left:?}");
    let history = stack.items().await.into_iter().filter(|i| s(i, "sk").is_some_and(|sk| sk.starts_with("HIST#CONN#")));
    let went: Vec<_> = history
        .filter(|i| s(i, "to") == Some("not_connected"))
        .filter_map(|i| s(&i, "platform").map(str::to_owned))
        .collect();
    assert_eq!(went.len(), 2, "each connection's change to not_connected is recorded: {went:?}");

    let token = stack.token(PROJECT);
    let (status, link, _) = stack
        .call(
            Method::POST,
            &format!("/projects/{PROJECT}/connections/x/connect"),
            Some(&token),
            Some(json!({"redirect_url": "http://localhost:3000/back"})),
        )
        .await;
    assert_eq!(status, 200);
    let fresh = link["profile_id"].as_str().unwrap().to_owned();
    assert_ne!(fresh, PROFILE);
    assert!(link["auth_url"].as_str().unwrap().contains("redirect_url=http://localhost:3000/back"));
    // The user completes the OAuth flow: the service fires account.connected for the new profile.
    let opened = stack.http.get(link["auth_url"].as_str().unwrap()).send().await.unwrap();
    assert!(opened.status().is_success());
    for _ in 0..50 {
        let (_, read, _) =
            stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
        if by_platform(&read)["x"]["status"] == "connected" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("account.connected did not connect X");
}

#[tokio::test]
async fn connect_provisions_a_profile_once_even_when_the_create_is_retried() {
    // The first profile create fails on the service's side: once after it landed (its answer lost),
    // once before (a 502). Either way the connect answers 503, and the retried connect's create
    // ends with exactly one profile, which every later connect reuses without creating again.
    for (mode, landed) in [(FaultMode::LostAnswer { code: 504 }, true), (FaultMode::Status { code: 502 }, false)] {
        let stack = Stack::start().await;
        let token = stack.token(PROJECT);
        let path = format!("/projects/{PROJECT}/connections/linkedin/connect");
        stack.sim.shared.set_fault(Fault { mode, path_prefix: Some("/v1/profiles".into()), times: Some(1) });
        assert_eq!(stack.call(Method::POST, &path, Some(&token), None).await.0, 503);
        let held = stack.sim.shared.world().profiles.len();
        assert_eq!(held, usize::from(landed), "the failed create landed: {landed}");
        let (status, first, _) = stack.call(Method::POST, &path, Some(&token), None).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(stack.publisher_calls()["POST /v1/profiles"], 2, "the create was retried");
        let profiles: Vec<String> = stack.sim.shared.world().profiles.keys().cloned().collect();
        assert_eq!(profiles.len(), 1, "the service holds one profile");
        assert_eq!(first["profile_id"], profiles[0].as_str(), "the retry adopted or made that one");
        let (_, second, _) = stack.call(Method::POST, &path, Some(&token), None).await;
        assert_eq!(second["profile_id"], first["profile_id"]);
        assert_eq!(stack.publisher_calls()["POST /v1/profiles"], 2, "a known profile is not created again");
    }
}

#[tokio::test]
async fn refresh_racing_a_webhook_keeps_the_newer_evidence_in_either_order() {
    for webhook_first in [true, false] {
        for webhook_is_newer in [true, false] {
            let stack = connected(json!([account("x1", "twitter")])).await;
            // Within the five minutes of skew a claimed time is believed.
            let offset = if webhook_is_newer { 240 } else { -3600 };
            let at = integration_tests::now().plus_seconds(offset);
            let event = json!({"id": format!("evt_{webhook_first}_{webhook_is_newer}"), "event": "account.disconnected",
                "timestamp": at.to_rfc3339(),
                "account": {"accountId": "x1", "profileId": PROFILE, "platform": "twitter", "disconnectionType": "unintentional"}});
            if webhook_first {
                assert_eq!(stack.send(&event).await.0, 200);
                refresh(&stack).await;
            } else {
                refresh(&stack).await;
                assert_eq!(stack.send(&event).await.0, 200);
            }
            let stored =
                stack.store.get_connection(&ProfileId::parse(PROFILE).unwrap(), Platform::X).await.unwrap().unwrap();
            let expected = if webhook_is_newer { ConnectionStatus::Expired } else { ConnectionStatus::Connected };
            assert_eq!(
                stored.connection.status, expected,
                "webhook first: {webhook_first}, webhook newer: {webhook_is_newer}"
            );
        }
    }
}

struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The Lambda event API Gateway sends for a refresh by a verified caller.
fn refresh_request() -> lambda_http::Request {
    let event = json!({
        "version": "2.0", "routeKey": "POST /projects/{projectId}/connections/refresh",
        "rawPath": format!("/projects/{PROJECT}/connections/refresh"), "rawQueryString": "", "headers": {},
        "pathParameters": {"projectId": PROJECT},
        "requestContext": {"http": {"method": "POST", "path": format!("/projects/{PROJECT}/connections/refresh")},
                           "authorizer": {"jwt": {"claims": {"project_id": PROJECT, "sub": "u"}, "scopes": null}},
                           "routeKey": "POST /projects/{projectId}/connections/refresh", "stage": "$default"},
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

#[tokio::test]
async fn evidence_of_the_same_time_ends_in_the_status_needing_attention_in_either_order() {
    for webhook_first in [true, false] {
        let stack = connected(json!([account("x1", "twitter")])).await;
        let at = integration_tests::now().plus_seconds(60);
        let routes = Refresh {
            store: stack.store.clone(),
            publisher: ZernioClient::new(stack.sim.api_url(), "sk_local").unwrap(),
            clock: FixedClock(at),
            limits: shared::config::Limits::default(),
        };
        let event = json!({"id": "evt_tie", "event": "account.disconnected", "timestamp": at.to_rfc3339(),
            "account": {"accountId": "x1", "profileId": PROFILE, "platform": "twitter", "disconnectionType": "unintentional"}});
        if webhook_first {
            stack.send(&event).await;
            assert_eq!(routes.handle(refresh_request()).await.status(), 200);
        } else {
            assert_eq!(routes.handle(refresh_request()).await.status(), 200);
            stack.send(&event).await;
        }
        let stored =
            stack.store.get_connection(&ProfileId::parse(PROFILE).unwrap(), Platform::X).await.unwrap().unwrap();
        assert_eq!(stored.connection.evidence_at, at);
        assert_eq!(stored.connection.status, ConnectionStatus::Expired, "webhook first: {webhook_first}");
    }
}

#[tokio::test]
async fn an_unavailable_service_answers_503_and_changes_nothing() {
    // (a 429 last: it shuts the shared budget for its Retry-After, and is answered 429 rate_limited)
    let faults = [
        ("down", FaultMode::Down),
        ("5xx", FaultMode::Status { code: 500 }),
        ("timeout", FaultMode::Slow { millis: 6_000 }),
        ("429", FaultMode::RateLimited { retry_after: 42 }),
    ];
    let stack = connected(json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack.set_accounts(PROFILE, json!([account("x1", "twitter")])).await;
    let token = stack.token(PROJECT);
    for (name, mode) in faults {
        let before = stack.items().await;
        stack.sim.shared.set_fault(Fault { mode: mode.clone(), ..Default::default() });
        let (status, body, headers) =
            stack.call(Method::POST, &format!("/projects/{PROJECT}/connections/refresh"), Some(&token), None).await;
        let connect = stack
            .call(Method::POST, &format!("/projects/{PROJECT}/connections/facebook/connect"), Some(&token), None)
            .await;
        stack.sim.shared.set_fault(Fault::default());
        let (expected, code) = if name == "429" { (429, "rate_limited") } else { (503, "publisher_unavailable") };
        assert_eq!(status, expected, "{name}");
        assert_eq!(body["error"]["code"], code, "{name}");
        let retry_after = headers["retry-after"].to_str().unwrap();
        assert_eq!(retry_after, if name == "429" { "42" } else { "5" }, "{name}");
        assert_eq!(connect.0, expected, "connect, {name}");
        assert_eq!(stack.items().await, before, "{name}: the project's items are byte-for-byte unchanged");
    }
}

#[tokio::test]
async fn tokens_for_another_project_get_403_missing_bad_or_expired_ones_401_and_unknown_platforms_400() {
    let stack = connected(json!([account("x1", "twitter")])).await;
    let other = stack.token("proj_b");
    let routes = [
        (Method::GET, format!("/projects/{PROJECT}/connections")),
        (Method::POST, format!("/projects/{PROJECT}/connections/refresh")),
        (Method::POST, format!("/projects/{PROJECT}/connections/x/connect")),
    ];
    let before = stack.items().await;
    let expired = stack.issuer.mint(&json!({"sub": "u", "project_id": PROJECT, "exp": 1_000_000}));
    let forged = dev_gateway::auth::SigningKey::generate().sign(
        &json!({"sub": "u", "project_id": PROJECT, "exp": 4_000_000_000u64, "iss": stack.issuer.url, "aud": "stacc-app"}),
    );
    for (method, path) in &routes {
        let (status, body, _) = stack.call(method.clone(), path, Some(&other), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{path}");
        for token in [None, Some(expired.as_str()), Some(forged.as_str()), Some("garbage")] {
            assert_eq!(stack.call(method.clone(), path, token, None).await.0, 401, "{path} with {token:?}");
        }
    }
    let token = stack.token(PROJECT);
    let (status, body, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/connections/tiktok/connect"), Some(&token), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_platform")));
    let (status, _, _) =
        stack.call(Method::POST, &format!("/projects/{PROJECT}/connections/twitter/connect"), Some(&token), None).await;
    assert_eq!(status, 400, "our API says x, not twitter");
    let connect = format!("/projects/{PROJECT}/connections/x/connect");
    for body in [json!([null]), json!("https://app/back"), json!({"redirect_url": 7})] {
        let (status, answer, _) = stack.call(Method::POST, &connect, Some(&token), Some(body.clone())).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    }
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn refresh_costs_two_service_calls_and_three_only_when_the_list_is_empty() {
    let stack = connected(json!([account("x1", "twitter")])).await;
    let before = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
    refresh(&stack).await;
    assert_eq!(stack.sim.shared.stats()["total_calls"].as_u64().unwrap() - before, 2);
    stack.set_accounts(PROFILE, json!([])).await;
    let before = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
    refresh(&stack).await;
    assert_eq!(stack.sim.shared.stats()["total_calls"].as_u64().unwrap() - before, 3);
}

#[tokio::test]
async fn with_no_profile_every_platform_is_not_connected_and_the_service_is_not_called() {
    let stack = Stack::start().await;
    let (status, body) = refresh(&stack).await;
    assert_eq!(status, 200);
    assert!(body["connections"].as_array().unwrap().iter().all(|c| c["status"] == "not_connected"));
    assert_eq!(stack.sim.shared.stats()["total_calls"], 0);
}

/// A client whose key comes from a source that now holds `fresh`, counting reads of it.
fn rotating_client(
    stack: &Stack,
    fresh: &'static str,
) -> (ZernioClient, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    let source: shared::reloading::Source<String> = Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Some(fresh.to_owned()) })
    });
    let key = shared::reloading::Reloading::new("sk_rotated_out".to_owned(), Duration::ZERO, source);
    (ZernioClient::with_key(stack.sim.api_url(), key).unwrap(), reads)
}

#[tokio::test]
async fn a_rotated_api_key_is_read_again_on_a_401_and_the_call_made_once_more() {
    use shared::ports::Publisher;
    use std::sync::atomic::Ordering;
    let stack = Stack::start().await;
    stack.given_profile(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    let profile = ProfileId::parse(PROFILE).unwrap();
    let (client, reads) = rotating_client(&stack, "sk_local");
    let accounts = client.accounts(&profile).await.expect("the call succeeds with the key read again");
    assert_eq!(accounts.unwrap().len(), 1);
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    client.accounts(&profile).await.expect("the new key is kept");
    assert_eq!(reads.load(Ordering::SeqCst), 1, "no read while the key works");
    // A key that is still wrong after the read: an outage on our side (the route answers 503), not a loop.
    let (client, reads) = rotating_client(&stack, "sk_also_wrong");
    let refused = client.accounts(&profile).await.unwrap_err();
    assert!(matches!(refused, shared::ports::PublisherError::Unavailable { .. }), "{refused:?}");
    assert_eq!(reads.load(Ordering::SeqCst), 1, "one read per refusal, then the answer");
}
