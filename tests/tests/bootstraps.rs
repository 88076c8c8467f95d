//! The packaged functions (`make build`) start as Lambda starts them - with only the environment
//! the template gives them, secrets read from Secrets Manager - and each answers one invocation
//! through a stand-in of the Lambda Runtime API, against the local DynamoDB, SQS and simulator.

use std::time::Duration;

use integration_tests::lambda::{self, Answer, FUNCTIONS, PROJECT};
use integration_tests::{Stack, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_packaged_function_starts_with_the_templates_environment_and_answers_an_invocation() {
    let template: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap();
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    for function in FUNCTIONS {
        let bootstrap = lambda::unpack(function);
        let env = account.environment(&template, &lambda::logical_name(&template, function));
        let (event, expected) = lambda::typical_invocation(function);
        let run = lambda::cold_start(&bootstrap, function, &env, event, Duration::from_secs(20)).await;
        if function == "retry-worker" {
            let Answer::Response(batch) = &run.answer else { panic!("{function}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(batch["batchItemFailures"], serde_json::json!([]), "{function}: {}", run.logs);
        } else {
            let (status, body) = run.http();
            assert_eq!(status, expected, "{function}: {body}\n{}", run.logs);
        }
        assert!(!run.logs.contains(integration_tests::SECRET), "{function} logged a secret");
        for line in run.logs.lines() {
            let line: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("{function}: not JSON: {line}"));
            if line.get("_aws").is_some() {
                continue; // an embedded-metric-format line, read by CloudWatch as a metric
            }
            let spans = line["spans"].as_array().cloned().unwrap_or_default();
            assert!(
                spans.iter().any(|s| s["requestId"].is_string()),
                "{function}: every log line names the invocation: {line}"
            );
        }
        if function == "webhook" {
            assert!(run.logs.contains(r#""event_id":"evt_boot_1""#), "the event's id is logged\n{}", run.logs);
        }
        assert!(run.init < Duration::from_secs(20), "{function} asked for its first event");
    }
    // What the binaries did is in the shared table: both connection events landed, the post is
    // live on LinkedIn and marked removed on X.
    let token = stack.token(PROJECT);
    let (_, connections, _) =
        stack.call(reqwest::Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    let status = |platform: &str| {
        connections["connections"].as_array().unwrap().iter().find(|c| c["platform"] == platform).unwrap()["status"]
            .clone()
    };
    assert_eq!((status("x"), status("linkedin")), ("connected".into(), "connected".into()), "{connections}");
    let (_, post, _) =
        stack.call(reqwest::Method::GET, &format!("/projects/{PROJECT}/posts/post_boot"), Some(&token), None).await;
    let platform = |p: &str| post["platforms"].as_array().unwrap().iter().find(|e| e["platform"] == p).unwrap().clone();
    assert_eq!(platform("x")["status"], "removed", "{post}");
    assert_eq!(platform("linkedin")["status"], "published", "{post}");
}
