//! Schemathesis (PyPI, pinned in requirements-dev.txt) generates requests from `openapi.yaml`
//! and sends them to the dev gateway with a valid token: no answer may be a 5xx, and every
//! answer must be one the document describes (status, content type, headers, body schema).

use integration_tests::{Stack, live_account, root};
use reqwest::Method;
use serde_json::json;

const PROJECT: &str = "proj_st";
const PROFILE: &str = "65aa0000000000000000st01";
const POST: &str = "post_st";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_server_error_and_only_documented_answers() {
    let stack = Stack::start().await;
    let accounts =
        json!([live_account("x1", "twitter"), live_account("li1", "linkedin"), live_account("fb1", "facebook")]);
    stack.given_connected(PROJECT, PROFILE, accounts).await;
    let token = stack.token(PROJECT);
    // A live post, so the routes on one post reach their handlers' logic rather than 404.
    let body = json!({"post_id": POST, "content": "Hello", "platforms": ["x", "linkedin"]});
    let path = format!("/projects/{PROJECT}/posts");
    assert_eq!(stack.call(Method::POST, &path, Some(&token), Some(body)).await.0, 201);

    let url = stack.gateway.url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(root().join(".venv/bin/schemathesis"))
            .arg("--config-file")
            .arg(root().join("tools/schemathesis/schemathesis.toml"))
            .args(["run", "openapi.yaml", "--url", &url, "--header", &format!("Authorization: Bearer {token}")])
            .args(["--workers", "1", "--seed", "1", "--no-color"])
            .env("ST_PROJECT", PROJECT)
            .env("ST_POST", POST)
            .current_dir(root())
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run .venv/bin/schemathesis (`make test` installs it): {e}"));
    let report = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found problems:\n{report}");
    assert!(report.contains("passed"), "schemathesis ran no test:\n{report}");
}
