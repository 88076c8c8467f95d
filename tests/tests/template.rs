//! `template.yaml` and the local stack agree: the table and queues `make run` creates are the
//! ones that deploy, and every function gets the configuration its handler reads.

use dev_gateway::infra::{DEAD_LETTER_QUEUE, MAX_RECEIVE_COUNT, RETRY_QUEUE, TABLE};
use integration_tests::{Stack, root};
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    &t["Resources"][name]["Properties"]
}

fn number(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not a number: {v:?}"))
}

#[test]
fn the_table_in_the_template_is_the_one_the_local_stack_creates() {
    let t = template();
    let table = resource(&t, "Table");
    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap(), k["KeyType"].as_str().unwrap()))
        .collect();
    assert_eq!(keys, vec![(TABLE.hash_key, "HASH"), (TABLE.range_key, "RANGE")]);
    for attribute in table["AttributeDefinitions"].as_sequence().unwrap() {
        assert_eq!(attribute["AttributeType"], "S");
    }
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], TABLE.ttl_attribute);
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
}

#[test]
fn the_queues_in_the_template_are_the_ones_the_local_stack_creates() {
    let t = template();
    let retry = resource(&t, "RetryQueue");
    assert_eq!(number(&retry["VisibilityTimeout"]), u64::from(RETRY_QUEUE.visibility_timeout_seconds));
    assert_eq!(number(&retry["MessageRetentionPeriod"]), u64::from(RETRY_QUEUE.message_retention_seconds));
    assert_eq!(number(&retry["RedrivePolicy"]["maxReceiveCount"]), u64::from(MAX_RECEIVE_COUNT));
    let dlq = resource(&t, "RetryDeadLetterQueue");
    assert_eq!(number(&dlq["VisibilityTimeout"]), u64::from(DEAD_LETTER_QUEUE.visibility_timeout_seconds));
    assert_eq!(number(&dlq["MessageRetentionPeriod"]), u64::from(DEAD_LETTER_QUEUE.message_retention_seconds));
    let worker_timeout = number(&resource(&t, "RetryWorkerFunction")["Timeout"]);
    assert!(number(&retry["VisibilityTimeout"]) >= 6 * worker_timeout, "visibility at least 6x the worker's timeout");
}

#[test]
fn the_retry_worker_reports_failures_message_by_message() {
    let t = template();
    let event = &resource(&t, "RetryWorkerFunction")["Events"]["Retry"];
    assert_eq!(event["Type"], "SQS");
    let types = event["Properties"]["FunctionResponseTypes"].as_sequence().unwrap();
    assert!(types.iter().any(|v| v == "ReportBatchItemFailures"));
}

#[test]
fn every_function_gets_the_variables_its_handler_reads_and_secrets_come_from_a_hidden_parameter() {
    let t = template();
    let globals = t["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap().clone();
    let needs: [(&str, &[&str]); 2] = [
        ("WebhookFunction", &["TABLE_NAME", "RETRY_QUEUE_URL", "WEBHOOK_SECRETS"]),
        ("RetryWorkerFunction", &["TABLE_NAME"]),
    ];
    for (function, variables) in needs {
        let own = resource(&t, function)["Environment"]["Variables"].as_mapping().cloned().unwrap_or_default();
        for v in variables {
            let key = Value::String((*v).to_owned());
            assert!(own.contains_key(&key) || globals.contains_key(&key), "{function} needs {v}");
        }
    }
    for (function, secret) in [
        ("WebhookFunction", "WEBHOOK_SECRETS"),
        ("RefreshConnectionsFunction", "PUBLISHER_API_KEY"),
        ("ConnectFunction", "PUBLISHER_API_KEY"),
    ] {
        let value = &resource(&t, function)["Environment"]["Variables"][secret];
        let Value::Tagged(tagged) = value else { panic!("{function}: {secret} must be a !Ref, never a literal") };
        assert_eq!(tagged.tag, "!Ref");
        let parameter = tagged.value.as_str().unwrap();
        assert_eq!(t["Parameters"][parameter]["NoEcho"], true, "{function}: {secret}");
    }
}

#[tokio::test]
async fn what_the_local_stack_actually_created_matches_the_definitions() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let stack = Stack::start().await;
    let table = stack.dynamodb.describe_table().table_name(&stack.table).send().await.unwrap().table.unwrap();
    let keys: Vec<String> =
        table.key_schema().iter().map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str())).collect();
    assert_eq!(keys, vec![format!("{}:HASH", TABLE.hash_key), format!("{}:RANGE", TABLE.range_key)]);
    let ttl = stack.dynamodb.describe_time_to_live().table_name(&stack.table).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description.and_then(|d| d.attribute_name), Some(TABLE.ttl_attribute.to_owned()));
    let attrs = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.queues.retry_url)
        .attribute_names(A::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attrs[&A::VisibilityTimeout], RETRY_QUEUE.visibility_timeout_seconds.to_string());
    let redrive: serde_json::Value = serde_json::from_str(&attrs[&A::RedrivePolicy]).unwrap();
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), MAX_RECEIVE_COUNT.to_string());
}

#[test]
fn every_app_route_is_behind_the_jwt_authorizer_with_one_function_each() {
    let t = template();
    let api = resource(&t, "AppApi");
    assert_eq!(api["Auth"]["DefaultAuthorizer"], "AppJwt");
    let jwt = &api["Auth"]["Authorizers"]["AppJwt"]["JwtConfiguration"];
    assert!(matches!(&jwt["issuer"], Value::Tagged(_)), "issuer is a parameter");
    assert!(
        jwt["audience"].as_sequence().is_some_and(|a| matches!(&a[0], Value::Tagged(_))),
        "audience is a parameter"
    );
    let routes = [
        ("ListConnectionsFunction", "GET", "/projects/{projectId}/connections"),
        ("RefreshConnectionsFunction", "POST", "/projects/{projectId}/connections/refresh"),
        ("ConnectFunction", "POST", "/projects/{projectId}/connections/{platform}/connect"),
        ("PublishPostFunction", "POST", "/projects/{projectId}/posts"),
        ("ReadPostFunction", "GET", "/projects/{projectId}/posts/{postId}"),
        ("SyncPostFunction", "POST", "/projects/{projectId}/posts/{postId}/sync"),
        ("ManualDeleteFunction", "POST", "/projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete"),
    ];
    for (function, method, path) in routes {
        let event = &resource(&t, function)["Events"]["Api"];
        assert_eq!(event["Type"], "HttpApi", "{function}");
        assert_eq!(
            (event["Properties"]["Method"].as_str(), event["Properties"]["Path"].as_str()),
            (Some(method), Some(path))
        );
        let timeout = number(&resource(&t, function)["Timeout"]);
        assert!(timeout <= 29, "{function} answers inside API Gateway's 30 seconds");
    }
}
