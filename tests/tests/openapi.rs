//! `openapi.yaml` documents every route the template deploys and every error code the API uses.

use integration_tests::root;
use serde_yaml::Value;

fn load(name: &str) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(root().join(name)).unwrap()).unwrap()
}

#[test]
fn every_deployed_app_route_is_in_the_api_document() {
    let (template, api) = (load("template.yaml"), load("openapi.yaml"));
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
            assert!(operation["responses"]["403"].is_mapping(), "{method} {path} documents its 403");
            routes += 1;
        }
    }
    assert_eq!(routes, 7);
    assert!(api["paths"]["/webhooks/zernio"]["post"].is_mapping());
    assert!(api["paths"]["/healthz"]["get"].is_mapping());
}

#[test]
fn every_error_code_of_the_spec_is_documented() {
    let api = load("openapi.yaml");
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
    ] {
        assert!(codes.contains(&code), "{code}");
    }
}
