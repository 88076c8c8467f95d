//! `openapi.yaml` documents every route the template deploys and every error code the API uses.

use integration_tests::{template, yaml};
use serde_norway::Value;

#[test]
fn every_deployed_app_route_is_in_the_api_document() {
    let (template, api) = (template(), yaml("openapi.yaml"));
    let mut routes = 0;
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let (method, path) =
                (event["Properties"]["Method"].as_str().unwrap(), event["Properties"]["Path"].as_str().unwrap());
            let operation = &api["paths"][path][method.to_ascii_lowercase().as_str()];
            assert!(operation.is_mapping(), "{method} {path} is not in openapi.yaml");
            let open = event["Properties"]["Auth"]["Authorizer"] == "NONE";
            assert_eq!(open, path == "/healthz", "only the liveness route goes without the authorizer");
            if !open {
                assert!(operation["responses"]["403"].is_mapping(), "{method} {path} documents its 403");
            }
            routes += 1;
        }
    }
    assert_eq!(routes, 13);
    assert!(api["paths"]["/webhooks/zernio"]["post"].is_mapping());
    assert!(api["paths"]["/healthz"]["get"].is_mapping());
}

#[test]
fn every_error_code_of_the_spec_is_documented() {
    let api = yaml("openapi.yaml");
    let codes: Vec<&str> = api["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in [
        "unauthorized",
        "forbidden",
        "not_found",
        "invalid_request",
        "invalid_platform",
        "reconnect_required",
        "already_published",
        "duplicate_content",
        "not_published",
        "not_published_on_platform",
        "publisher_unavailable",
        "invalid_signature",
        "invalid_event",
        "method_not_allowed",
        "rate_limited",
        "profile_conflict",
    ] {
        assert!(codes.contains(&code), "{code}");
    }
}

#[test]
fn every_operation_has_its_own_operation_id() {
    let api = yaml("openapi.yaml");
    let mut ids = Vec::new();
    for (path, item) in api["paths"].as_mapping().unwrap() {
        for (method, operation) in item.as_mapping().unwrap() {
            if method == "parameters" {
                continue;
            }
            let id = operation["operationId"].as_str();
            assert!(id.is_some(), "{path:?} {method:?} has no operationId");
            ids.push(id.unwrap().to_owned());
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    assert_eq!(count, 14);
}

/// Checks an answer against what `openapi.yaml` says for that route and status.
fn assert_documented(api: &serde_json::Value, method: &str, path: &str, status: u16, body: &serde_json::Value) {
    let operation = &api["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let mut response = operation["responses"][status.to_string()].clone();
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        response = api["components"]["responses"][name].clone();
    }
    assert!(response.is_object(), "{method} {path} does not document {status}");
    let Some(schema) = response["content"]["application/json"]["schema"].as_object() else {
        return; // documented without a body (API Gateway's own 401)
    };
    let mut root = serde_json::Value::Object(schema.clone());
    root["components"] = api["components"].clone();
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}\n{body}");
}

#[tokio::test]
async fn the_handlers_answers_match_the_api_document() {
    use integration_tests::Stack;
    use reqwest::Method;
    use serde_json::json;
    let api: serde_json::Value = serde_json::to_value(yaml("openapi.yaml")).unwrap();
    let stack = Stack::start().await;
    let account = |id: &str, platform: &str| json!({"_id": id, "platform": platform, "username": id, "isActive": true});
    stack.given_profile("proj_o", "65aa000000000000000000o1", json!([account("x1", "twitter")])).await;
    let token = stack.token("proj_o");
    let other = stack.token("proj_z");
    // method, documented path, real path, token, body
    type Call<'a> = (Method, &'a str, &'a str, Option<&'a str>, Option<serde_json::Value>);
    let calls: Vec<Call> = vec![
        (
            Method::POST,
            "/projects/{projectId}/connections/refresh",
            "/projects/proj_o/connections/refresh",
            Some(&token),
            None,
        ),
        (Method::GET, "/projects/{projectId}/connections", "/projects/proj_o/connections", Some(&token), None),
        (Method::GET, "/projects/{projectId}/connections", "/projects/proj_o/connections", Some(&other), None),
        (
            Method::POST,
            "/projects/{projectId}/connections/{platform}/connect",
            "/projects/proj_o/connections/linkedin/connect",
            Some(&token),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/projects/{projectId}/connections/{platform}/connect",
            "/projects/proj_o/connections/tiktok/connect",
            Some(&token),
            None,
        ),
        (
            Method::POST,
            "/projects/{projectId}/posts",
            "/projects/proj_o/posts",
            Some(&token),
            Some(json!({"post_id": "p1", "content": "Hi", "platforms": ["x"]})),
        ),
        (
            Method::POST,
            "/projects/{projectId}/posts",
            "/projects/proj_o/posts",
            Some(&token),
            Some(json!({"post_id": "p2", "content": "Hi there", "platforms": ["instagram"]})),
        ),
        (
            Method::POST,
            "/projects/{projectId}/posts",
            "/projects/proj_o/posts",
            Some(&token),
            Some(json!({"content": 1})),
        ),
        (Method::GET, "/projects/{projectId}/posts/{postId}", "/projects/proj_o/posts/p1", Some(&token), None),
        (Method::GET, "/projects/{projectId}/posts/{postId}", "/projects/proj_o/posts/nope", Some(&token), None),
        (
            Method::POST,
            "/projects/{projectId}/posts/{postId}/sync",
            "/projects/proj_o/posts/p1/sync",
            Some(&token),
            None,
        ),
        (
            Method::POST,
            "/projects/{projectId}/posts/{postId}/sync",
            "/projects/proj_o/posts/p2/sync",
            Some(&token),
            None,
        ),
        (
            Method::POST,
            "/projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete",
            "/projects/proj_o/posts/p1/platforms/x/manual-delete",
            Some(&token),
            None,
        ),
        (
            Method::POST,
            "/projects/{projectId}/connections/{platform}/disconnect",
            "/projects/proj_o/connections/instagram/disconnect",
            Some(&token),
            None,
        ),
        (
            Method::POST,
            "/projects/{projectId}/connections/{platform}/disconnect",
            "/projects/proj_o/connections/x/disconnect",
            Some(&token),
            None,
        ),
        (Method::GET, "/projects/{projectId}/erasure", "/projects/proj_z/erasure", Some(&other), None),
        (Method::DELETE, "/projects/{projectId}", "/projects/proj_z", Some(&other), None),
        (Method::GET, "/projects/{projectId}/erasure", "/projects/proj_z/erasure", Some(&other), None),
        (Method::GET, "/projects/{projectId}/connections", "/projects/proj_z/connections", Some(&other), None),
    ];
    for (method, template, path, token, body) in calls {
        let (status, answer, _) = stack.call(method.clone(), path, token, body).await;
        assert_documented(&api, &method.as_str().to_ascii_lowercase(), template, status, &answer);
    }
    stack
        .sim
        .shared
        .set_fault(zernio_sim::Fault { mode: zernio_sim::FaultMode::Status { code: 500 }, ..Default::default() });
    let (status, answer, _) =
        stack.call(Method::POST, "/projects/proj_o/connections/refresh", Some(&token), None).await;
    assert_eq!(status, 503);
    assert_documented(&api, "post", "/projects/{projectId}/connections/refresh", status, &answer);
    for body in [json!({"id": "e1", "event": "webhook.test"}), json!("not an event")] {
        let (status, answer) = stack.send(&body).await;
        assert_documented(&api, "post", "/webhooks/zernio", status, &answer);
    }
}
