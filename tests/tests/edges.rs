//! The service's real-world edges, end to end through the dev gateway, the local stack and the
//! simulator: a cancelled publication, accounts that are not the one a platform holds, a refused or
//! failed publish, bounds at the door, our own key refused, and a 404 that is not the service's.

use integration_tests::{Stack, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};
use zernio_sim::{Fault, FaultMode};

const PROJECT: &str = "proj_e";
const PROFILE: &str = "65aa000000000000000000e1";

/// A project whose X and LinkedIn are connected.
async fn ready() -> Stack {
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    stack
}

async fn call(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let (status, answer, _) = stack.call(method, &format!("/projects/{PROJECT}{path}"), Some(&token), body).await;
    (status, answer)
}

async fn publish(stack: &Stack, body: Value) -> (u16, Value) {
    call(stack, Method::POST, "/posts", Some(body)).await
}

async fn read(stack: &Stack, post: &str) -> Value {
    let (status, post) = call(stack, Method::GET, &format!("/posts/{post}"), None).await;
    assert_eq!(status, 200, "{post}");
    post
}

fn entry<'a>(post: &'a Value, platform: &str) -> &'a Value {
    post["platforms"].as_array().unwrap().iter().find(|p| p["platform"] == platform).expect("an entry")
}

fn newest_service_post(stack: &Stack) -> String {
    stack.sim.shared.world().posts.keys().last().cloned().expect("a post on the service")
}

async fn connection(stack: &Stack, platform: &str) -> Value {
    let (status, list) = call(stack, Method::GET, "/connections", None).await;
    assert_eq!(status, 200);
    list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == platform).unwrap().clone()
}

#[tokio::test]
async fn a_cancelled_publication_reads_cancelled_and_the_post_can_be_published_again() {
    // GIVEN a post scheduled on X
    let stack = ready().await;
    let body =
        json!({"post_id": "post_c", "content": "Soon", "platforms": ["x"], "scheduled_for": "2030-01-01T10:00:00Z"});
    assert_eq!(publish(&stack, body).await.0, 201);
    // WHEN the service reports the publication cancelled
    let cancelled = stack.sim.shared.post_event("post.cancelled", &newest_service_post(&stack)).unwrap();
    assert_eq!(stack.send(&cancelled).await, (200, json!({"status": "processed"})));
    // THEN the copy reads cancelled, manual delete has nothing to remove, and publishing again works
    let post = read(&stack, "post_c").await;
    assert_eq!((post["status"].as_str(), entry(&post, "x")["status"].as_str()), (Some("cancelled"), Some("cancelled")));
    let (status, refused) = call(&stack, Method::POST, "/posts/post_c/platforms/x/manual-delete", None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("not_published_on_platform")));
    let (status, again) = publish(&stack, json!({"post_id": "post_c", "content": "Now", "platforms": ["x"]})).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        (again["status"].as_str(), entry(&again, "x")["status"].as_str()),
        (Some("published"), Some("published"))
    );
}

#[tokio::test]
async fn a_post_sync_finds_gone_everywhere_is_cancelled_and_not_a_dead_end() {
    let stack = ready().await;
    let body = json!({"post_id": "post_g", "content": "Later", "platforms": ["linkedin"], "scheduled_for": "2030-01-01T10:00:00Z"});
    assert_eq!(publish(&stack, body).await.0, 201);
    stack.sim.shared.delete_post(&newest_service_post(&stack));
    let (status, synced) = call(&stack, Method::POST, "/posts/post_g/sync", None).await;
    assert_eq!((status, synced["post"]["status"].as_str()), (200, Some("cancelled")));
    let (status, again) = publish(&stack, json!({"post_id": "post_g", "platforms": ["linkedin"]})).await;
    assert_eq!(status, 201, "a cancelled copy never blocks a new publish: {again}");
}

#[tokio::test]
async fn a_disconnect_of_another_account_on_the_platform_changes_nothing_and_refresh_relinks() {
    // GIVEN X linked to x1, and a second X account x2 on the same profile
    let stack = ready().await;
    let before = connection(&stack, "x").await;
    let event = json!({"id": "evt_other", "event": "account.disconnected", "timestamp": integration_tests::now().to_rfc3339(),
        "account": {"accountId": "x2", "profileId": PROFILE, "platform": "twitter", "disconnectionType": "unintentional"}});
    // WHEN x2 is disconnected THEN X still reads connected to x1, updated_at unchanged
    assert_eq!(stack.send(&event).await.0, 200);
    assert_eq!(connection(&stack, "x").await, before);
    // WHEN x1 leaves the profile and x2 is live and usable THEN Refresh re-links X to x2
    stack.set_accounts(PROFILE, json!([account("x2", "twitter"), account("li1", "linkedin")])).await;
    let (status, refreshed) = call(&stack, Method::POST, "/connections/refresh", None).await;
    assert_eq!(status, 200);
    let x = refreshed["connections"].as_array().unwrap().iter().find(|c| c["platform"] == "x").unwrap();
    assert_eq!(
        (x["status"].as_str(), x["account_id"].as_str(), x["reason"].as_str()),
        (Some("connected"), Some("x2"), Some("relinked"))
    );
}

#[tokio::test]
async fn a_refused_or_failed_publish_leaves_the_post_exactly_as_it_was() {
    // GIVEN a draft
    let stack = ready().await;
    assert_eq!(
        publish(&stack, json!({"post_id": "post_r", "content": "v1", "platforms": ["x"], "draft": true})).await.0,
        201
    );
    let before = stack.items().await;
    // WHEN publishing it with new content certainly fails (the service refuses our key: any 5xx
    // might have been taken, so only this is certain) or is refused (a platform not connected)
    stack.sim.shared.set_api_key("sk_elsewhere");
    let (status, _) = publish(&stack, json!({"post_id": "post_r", "content": "v2", "platforms": ["x"]})).await;
    assert_eq!(status, 503);
    stack.sim.shared.set_api_key("sk_local");
    let (status, refused) =
        publish(&stack, json!({"post_id": "post_r", "content": "v3", "platforms": ["facebook"]})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("reconnect_required")));
    // THEN every item is as it was, content and updated_at included
    assert_eq!(stack.items().await, before);
    assert_eq!(read(&stack, "post_r").await["content"], "v1");
    // AND a new post whose publish fails is kept as a draft with its content
    stack.sim.shared.set_api_key("sk_elsewhere");
    assert_eq!(publish(&stack, json!({"post_id": "post_n", "content": "new", "platforms": ["x"]})).await.0, 503);
    let kept = read(&stack, "post_n").await;
    assert_eq!(
        (kept["status"].as_str(), kept["content"].as_str(), kept["platforms"].as_array().map(Vec::len)),
        (Some("draft"), Some("new"), Some(0))
    );
}

#[tokio::test]
async fn a_post_past_the_bounds_is_a_400_naming_the_limit_and_stores_nothing() {
    let stack = ready().await;
    let before = stack.items().await;
    let urls: Vec<String> = (0..200).map(|i| format!("https://cdn.example/{i}.png")).collect();
    let cases = [
        (json!({"post_id": "b1", "content": "hi", "platforms": ["x"], "media_urls": urls}), "at most 20"),
        (json!({"post_id": "b2", "content": "x".repeat(64 * 1024 + 1), "platforms": ["x"]}), "65536"),
        (
            json!({"post_id": "b3", "content": "hi", "platforms": ["x"], "media_urls": [format!("https://c/{}", "a".repeat(8192))]}),
            "8192",
        ),
    ];
    for (body, limit) in cases {
        let (status, answer) = publish(&stack, body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")));
        assert!(answer["error"]["message"].as_str().unwrap().contains(limit), "{answer}");
    }
    let (status, _) =
        call(&stack, Method::POST, "/connections/x/connect", Some(json!({"redirect_url": "javascript:alert(1)"})))
            .await;
    assert_eq!(status, 400);
    assert_eq!(stack.items().await, before);
    assert_eq!(stack.sim.shared.world().posts.len(), 0, "no call reached the service");
}

#[tokio::test]
async fn a_field_of_the_wrong_type_or_one_a_route_does_not_know_is_a_400_naming_it_and_changes_nothing() {
    let stack = ready().await;
    assert_eq!(publish(&stack, json!({"post_id": "p1", "content": "Hi", "platforms": ["x"]})).await.0, 201);
    let before = stack.items().await;
    let calls = stack.sim.shared.stats()["total_calls"].as_u64().unwrap();
    let cases = [
        (Method::POST, "/posts", json!({"content": "Hi", "platforms": "x"}), "platforms: invalid type: string \"x\""),
        (Method::POST, "/posts", json!({"content": "Hi", "platforms": ["x"], "draft": "yes"}), "draft: invalid type"),
        (Method::POST, "/posts", json!({"content": "Hi", "platforms": ["x"], "mediaUrls": []}), "`mediaUrls`"),
        (
            Method::POST,
            "/posts",
            json!({"content": "Hi", "platforms": ["x"], "media": [{"url": "https://c/a", "type": "image", "alt": "A"}]}),
            "media[0].alt: unknown field `alt`",
        ),
        (
            Method::POST,
            "/connections/x/connect",
            json!({"redirectUrl": "http://localhost:3000/back"}),
            "unknown field `redirectUrl`, expected `redirect_url`",
        ),
        (Method::POST, "/connections/x/connect", json!({"redirect_url": 7}), "redirect_url: invalid type"),
        (Method::POST, "/connections/refresh", json!({"force": true}), "unknown field `force`"),
        (Method::POST, "/posts/p1/sync", json!({"deep": true}), "unknown field `deep`"),
        (Method::POST, "/posts/p1/platforms/x/manual-delete", json!({"why": "gone"}), "unknown field `why`"),
        (Method::POST, "/connections/x/disconnect", json!({"all": true}), "unknown field `all`"),
        (Method::DELETE, "", json!({"now": true}), "unknown field `now`"),
    ];
    for (method, path, body, named) in cases {
        let (status, answer) = call(&stack, method.clone(), path, Some(body)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{method} {path}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{method} {path}: {message}");
    }
    assert_eq!(stack.items().await, before, "nothing stored or changed");
    assert_eq!(stack.sim.shared.stats()["total_calls"].as_u64().unwrap(), calls, "no call reached the service");
    // An empty object is no field at all.
    assert_eq!(call(&stack, Method::POST, "/posts/p1/sync", Some(json!({}))).await.0, 200);
}

#[tokio::test]
async fn our_api_key_refused_is_a_503_on_every_route_and_changes_nothing() {
    // GIVEN the service no longer accepts our key
    let stack = ready().await;
    assert_eq!(publish(&stack, json!({"post_id": "post_k", "content": "v1", "platforms": ["x"]})).await.0, 201);
    let before = stack.items().await;
    stack.sim.shared.set_api_key("sk_rotated_elsewhere");
    // WHEN any route calls it THEN 503 publisher_unavailable, nothing changed
    let routes = [
        (Method::POST, "/posts", Some(json!({"post_id": "post_k", "content": "v2", "platforms": ["linkedin"]}))),
        (Method::POST, "/posts/post_k/sync", None),
        (Method::POST, "/connections/refresh", None),
        (Method::POST, "/connections/linkedin/connect", None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = call(&stack, method, path, body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{path}");
    }
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn a_404_that_is_not_the_services_own_deletes_and_cancels_nothing() {
    // GIVEN a connected project with a live post, and a proxy answering HTML 404s
    let stack = ready().await;
    assert_eq!(publish(&stack, json!({"post_id": "post_h", "content": "Hi", "platforms": ["x"]})).await.0, 201);
    let before = stack.items().await;
    stack.sim.shared.set_fault(Fault { mode: FaultMode::Foreign { code: 404 }, ..Default::default() });
    // WHEN Refresh and Sync run THEN both answer 503 and the profile, connections and post stay
    let (status, refreshed) = call(&stack, Method::POST, "/connections/refresh", None).await;
    assert_eq!((status, refreshed["error"]["code"].as_str()), (503, Some("publisher_unavailable")));
    let (status, _) = call(&stack, Method::POST, "/posts/post_h/sync", None).await;
    assert_eq!(status, 503);
    assert_eq!(stack.items().await, before);
    // AND the service's own 404 for the profile still resets it
    stack.sim.shared.set_fault(Fault::default());
    stack.sim.shared.delete_profile(PROFILE);
    let (status, reset) = call(&stack, Method::POST, "/connections/refresh", None).await;
    assert_eq!((status, reset["profile_reset"].as_bool()), (200, Some(true)));
}

#[tokio::test]
async fn a_failing_health_call_is_a_hint_and_refresh_judges_by_the_list_alone() {
    let stack = ready().await;
    stack
        .set_accounts(
            PROFILE,
            json!([account("x1", "twitter"), {"_id": "li1", "platform": "linkedin", "isActive": false}]),
        )
        .await;
    stack.sim.shared.set_fault(Fault {
        mode: FaultMode::Status { code: 500 },
        path_prefix: Some("/v1/accounts/health".into()),
        ..Default::default()
    });
    let (status, refreshed) = call(&stack, Method::POST, "/connections/refresh", None).await;
    assert_eq!(status, 200, "{refreshed}");
    let status_of = |p: &str| {
        refreshed["connections"].as_array().unwrap().iter().find(|c| c["platform"] == p).unwrap()["status"].clone()
    };
    assert_eq!((status_of("x"), status_of("linkedin")), (json!("connected"), json!("expired")));
}

fn service_calls(stack: &Stack) -> u64 {
    let calls = stack.publisher_calls();
    calls.as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
}

#[tokio::test]
async fn past_its_burst_a_project_gets_429_with_no_call_while_another_project_is_unaffected() {
    // GIVEN a project that used its burst of Refreshes (twice ten; getting ready took one)
    let stack = ready().await;
    for _ in 0..19 {
        assert_eq!(call(&stack, Method::POST, "/connections/refresh", None).await.0, 200);
    }
    let before = (stack.all_items().await, service_calls(&stack));
    // WHEN it refreshes once more THEN 429 rate_limited with Retry-After, no call, nothing changed
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/connections/refresh");
    let (status, answer, headers) = stack.call(Method::POST, &path, Some(&token), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (429, Some("rate_limited")));
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry_after), "{retry_after}");
    assert_eq!((stack.all_items().await, service_calls(&stack)), before, "not even the budget moved");
    // AND its Syncs and publishes, and another project's Refreshes, have budgets of their own
    let (status, _) = publish(&stack, json!({"post_id": "post_l", "content": "Still", "platforms": ["x"]})).await;
    assert_eq!(status, 201);
    stack.given_connected("proj_other", "65aa000000000000000000e2", json!([account("x9", "twitter")])).await;
}

#[tokio::test]
async fn projects_whose_ids_differ_only_in_case_never_share_a_profile() {
    // GIVEN a service that compares profile names without regard to case
    let stack = Stack::start().await;
    let mut profiles = Vec::new();
    for project in ["Acme", "acme"] {
        // WHEN each project connects
        let token = stack.token(project);
        let path = format!("/projects/{project}/connections/x/connect");
        let (status, link, _) = stack.call(Method::POST, &path, Some(&token), None).await;
        assert_eq!(status, 200, "{link}");
        profiles.push(link["profile_id"].as_str().unwrap().to_owned());
    }
    // THEN each has its own
    assert_ne!(profiles[0], profiles[1]);
    assert_eq!(stack.sim.shared.world().profiles.len(), 2);
}

#[tokio::test]
async fn a_profile_of_this_name_held_by_another_project_is_a_409_profile_conflict_with_nothing_changed() {
    // GIVEN the service holds a profile with proj_b's name, and proj_a's routing holds it
    let stack = Stack::start().await;
    let name = shared::domain::ids::profile_name(&shared::domain::ProjectId::parse("proj_b").unwrap());
    let taken = "65aa000000000000000000f1";
    stack.given_profile("proj_a", taken, json!([account("xa", "twitter")])).await;
    let url = format!("{}/control/profiles/{taken}", stack.sim.control_url());
    assert!(stack.http.put(url).json(&json!({"name": name})).send().await.unwrap().status().is_success());
    let before = stack.items().await;
    // WHEN proj_b connects (its create lands on 409 with that profile's id)
    let token = stack.token("proj_b");
    let (status, answer, _) =
        stack.call(Method::POST, "/projects/proj_b/connections/x/connect", Some(&token), None).await;
    // THEN it is refused, and nothing changed: proj_b never reads proj_a's accounts
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("profile_conflict")));
    assert_eq!(stack.items().await, before, "nothing but the calls' budgets");
}
