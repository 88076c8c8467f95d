//! `template.yaml` and the local stack agree: the table and queues `make run` creates are the
//! ones that deploy, and every function gets the configuration its handler reads.

use dev_gateway::infra::{DEAD_LETTER_QUEUE, MAX_RECEIVE_COUNT, RETRY_QUEUE, TABLE};
use integration_tests::{Stack, root, template};
use serde_norway::Value;

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
    let types: Vec<(&str, &str)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| (a["AttributeName"].as_str().unwrap(), a["AttributeType"].as_str().unwrap()))
        .collect();
    use shared::adapters::dynamo::index;
    assert_eq!(types, vec![(TABLE.hash_key, "S"), (TABLE.range_key, "S"), (index::HASH, "S"), (index::RANGE, "N")]);
    // The reconciler's sparse index, as the store queries it.
    let indexes = table["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 1);
    let gsi = &indexes[0];
    assert_eq!(gsi["IndexName"], index::NAME);
    let gsi_keys: Vec<(&str, &str)> = gsi["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap(), k["KeyType"].as_str().unwrap()))
        .collect();
    assert_eq!(gsi_keys, vec![(index::HASH, "HASH"), (index::RANGE, "RANGE")]);
    assert_eq!(gsi["Projection"]["ProjectionType"], "INCLUDE");
    let projected: Vec<&str> =
        gsi["Projection"]["NonKeyAttributes"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(projected, index::PROJECTED.to_vec());
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
    assert_eq!(number(&retry["MaximumMessageSize"]), u64::from(RETRY_QUEUE.maximum_message_size));
    assert_eq!(number(&dlq["MaximumMessageSize"]), u64::from(DEAD_LETTER_QUEUE.maximum_message_size));
    let worker_timeout = number(&resource(&t, "RetryWorkerFunction")["Timeout"]);
    assert!(number(&retry["VisibilityTimeout"]) >= 6 * worker_timeout, "visibility at least 6x the worker's timeout");
}

#[test]
fn the_retry_worker_reports_failures_message_by_message() {
    let t = template();
    assert_eq!(t["Resources"]["RetryWorkerQueue"]["Type"], "AWS::Lambda::EventSourceMapping");
    let mapping = resource(&t, "RetryWorkerQueue");
    assert!(format!("{:?}", mapping["EventSourceArn"]).contains("RetryQueue.Arn"));
    assert!(format!("{:?}", mapping["FunctionName"]).contains("RetryWorkerFunction"));
    let types = mapping["FunctionResponseTypes"].as_sequence().unwrap();
    assert!(types.iter().any(|v| v == "ReportBatchItemFailures"));
    // A batch's messages run side by side, so each has the invocation's whole time: the timeout
    // leaves a follow-up its budget (the longest publish wait and its writes) with room to spare.
    let timeout = number(&resource(&t, "RetryWorkerFunction")["Timeout"]);
    let longest_wait = number(&t["Parameters"]["PublishWaitSeconds"]["MaxValue"]);
    assert!(timeout >= shared::handlers::retry::FOLLOW_UP_BUDGET.as_secs() + longest_wait, "{timeout} s");
    assert!(shared::handlers::retry::FOLLOW_UP_BUDGET.as_secs() > longest_wait);
}

/// Every `AWS::Serverless::Function` in the template, by logical name.
fn functions(t: &Value) -> Vec<String> {
    let resources = t["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect()
}

fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn secrets_are_named_in_the_environment_never_given_and_each_function_may_read_only_its_own() {
    let t = template();
    let globals = t["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap().clone();
    assert!(!globals.keys().any(|k| k.as_str().is_some_and(|k| k.contains("SECRET") || k.contains("API_KEY"))));
    let mut readers = Vec::new();
    for function in functions(&t) {
        let own = resource(&t, &function)["Environment"]["Variables"].as_mapping().cloned().unwrap_or_default();
        for (key, value) in &own {
            let key = key.as_str().unwrap();
            assert!(
                !["WEBHOOK_SECRETS", "PUBLISHER_API_KEY"].contains(&key),
                "{function}: {key} would put a secret's value in the environment"
            );
            if key.ends_with("_SECRET_ID") {
                // A parameter, or (webhook secrets) the parameter when given, else a name from the stack's.
                let parameter = reference(value)
                    .or_else(|| match value {
                        Value::Tagged(when) if when.tag == "!If" => reference(&when.value.as_sequence()?[1]),
                        _ => None,
                    })
                    .unwrap_or_else(|| panic!("{function}: {key} must name a parameter"));
                let statements = resource(&t, &function)["Policies"][0]["Statement"].as_sequence().unwrap();
                let grants: Vec<String> = statements
                    .iter()
                    .filter(|s| s["Action"].as_sequence().unwrap().iter().any(|a| a == "secretsmanager:GetSecretValue"))
                    .map(|s| format!("{:?}", s["Resource"]))
                    .collect();
                assert_eq!(grants.len(), 1, "{function} reads exactly one kind of secret per statement");
                let only = grants[0].contains(&format!("${{{parameter}}}-*"))
                    || (grants[0].contains("${Name}-*")
                        && grants[0].contains(parameter)
                        && grants[0].matches("-*").count() == 1);
                assert!(only, "{function} may read {parameter} only: {}", grants[0]);
                readers.push(function.clone());
            }
        }
        let statements = resource(&t, &function)["Policies"][0]["Statement"].as_sequence().cloned().unwrap_or_default();
        let secret_statements = statements
            .iter()
            .filter(|s| s["Action"].as_sequence().unwrap().iter().any(|a| a == "secretsmanager:GetSecretValue"))
            .count();
        let named = own.keys().filter(|k| k.as_str().is_some_and(|k| k.ends_with("_SECRET_ID"))).count();
        assert_eq!(secret_statements, named, "{function}: a secret grant for each secret it is told about, no more");
    }
    readers.sort();
    assert_eq!(
        readers,
        [
            "ConnectFunction",
            "DisconnectFunction",
            "PublishPostFunction",
            "ReconcilerFunction",
            "RefreshConnectionsFunction",
            "RetryWorkerFunction",
            "SyncPostFunction",
            "WebhookFunction"
        ]
    );
}

#[test]
fn alarms_watch_the_dead_letter_queue_the_webhook_and_every_function() {
    let t = template();
    let alarm = |name: &str| resource(&t, name).clone();
    let dlq = alarm("DeadLetterQueueAlarm");
    assert_eq!(dlq["Namespace"], "AWS/SQS");
    assert!(format!("{:?}", dlq["Dimensions"][0]["Value"]).contains("RetryDeadLetterQueue.QueueName"));
    let webhook = alarm("WebhookServerErrorsAlarm");
    assert_eq!(webhook["MetricName"], "Url5xxCount");
    assert_eq!(reference(&webhook["Dimensions"][0]["Value"]), Some("WebhookFunction"));
    // CloudWatch takes at most 10 metrics and 10 expressions in one alarm: every function's errors
    // and throttles are watched by a pair of alarms between them.
    for (names, metric) in [
        (["FunctionErrorsAlarm", "MoreFunctionErrorsAlarm"], "Errors"),
        (["FunctionThrottlesAlarm", "MoreFunctionThrottlesAlarm"], "Throttles"),
    ] {
        let mut watched: Vec<String> = names
            .iter()
            .flat_map(|name| alarm(name)["Metrics"].as_sequence().unwrap().clone())
            .filter(|m| m["MetricStat"]["Metric"]["MetricName"] == metric)
            .filter_map(|m| reference(&m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]).map(str::to_owned))
            .collect();
        let mut all = functions(&t);
        all.sort();
        watched.sort();
        assert_eq!(watched, all, "{names:?} cover every function, once");
    }
    for (name, resource) in t["Resources"].as_mapping().unwrap() {
        let Some(metrics) = resource["Properties"]["Metrics"].as_sequence() else { continue };
        let stats = metrics.iter().filter(|m| !m["MetricStat"].is_null()).count();
        let expressions = metrics.iter().filter(|m| !m["Expression"].is_null()).count();
        assert!(stats <= 10 && expressions <= 10, "{name:?}: {stats} metrics, {expressions} expressions");
    }
    // Our key refused is watched on exactly the functions that hold the key.
    let mut key_watched: Vec<String> = alarm("PublisherKeyRefusedAlarm")["Metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|m| m["MetricStat"]["Metric"]["MetricName"] == "PublisherKeyRefused")
        .filter_map(|m| m["MetricStat"]["Metric"]["Dimensions"][0]["Value"].as_str().map(str::to_owned))
        .collect();
    let mut key_holders: Vec<String> = functions(&t)
        .into_iter()
        .map(|f| resource(&t, &f)["Environment"]["Variables"].clone())
        .filter(|env| !env["PUBLISHER_API_KEY_SECRET_ID"].is_null())
        .map(|env| env["METRICS_FUNCTION"].as_str().expect("every function names itself for its metrics").to_owned())
        .collect();
    key_watched.sort();
    key_holders.sort();
    assert_eq!(key_watched, key_holders);
    for name in [
        "DeadLetterQueueAlarm",
        "WebhookServerErrorsAlarm",
        "FunctionErrorsAlarm",
        "MoreFunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
        "MoreFunctionThrottlesAlarm",
        "PublisherKeyRefusedAlarm",
        "WebhookSubscriptionAlarm",
        "PublisherAccountNeedsAttentionAlarm",
        "PublisherErrorsAlarm",
        "PublisherUnavailableAlarm",
        "SignatureFailuresAlarm",
        "ApiServerErrorsAlarm",
        "RetryQueueAgeAlarm",
        "ReconcilerErrorsAlarm",
        "ChangeFeedDeadLetterAlarm",
    ] {
        let actions = format!("{:?}", alarm(name)["AlarmActions"]);
        assert!(
            actions.contains("CreateAlarmTopic")
                && actions.contains("\"AlarmTopic\"")
                && actions.contains("AlarmTopicArn"),
            "{name} notifies the given topic or the stack's own: {actions}"
        );
    }
    // Without AlarmTopicArn the stack's own topic exists, so every alarm reaches someone.
    let topic = &t["Resources"]["AlarmTopic"];
    assert_eq!(
        (topic["Type"].as_str(), topic["Condition"].as_str()),
        (Some("AWS::SNS::Topic"), Some("CreateAlarmTopic"))
    );
    assert_eq!(t["Parameters"]["AlarmTopicArn"]["Default"], "");
    assert!(format!("{:?}", t["Conditions"]["CreateAlarmTopic"]).contains("AlarmTopicArn"));
    assert_eq!(resource(&t, "Table")["DeletionProtectionEnabled"], true);
}

#[tokio::test]
async fn what_the_local_stack_actually_created_matches_the_definitions() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let stack = Stack::start().await;
    let table = stack.dynamodb.describe_table().table_name(&stack.table).send().await.unwrap().table.unwrap();
    let keys: Vec<String> =
        table.key_schema().iter().map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str())).collect();
    assert_eq!(keys, vec![format!("{}:HASH", TABLE.hash_key), format!("{}:RANGE", TABLE.range_key)]);
    let indexes: Vec<&str> = table.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    assert_eq!(indexes, vec![shared::adapters::dynamo::index::NAME]);
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
fn every_function_keeps_its_logs_for_a_set_time_traces_and_names_itself_for_its_metrics() {
    let t = template();
    assert_eq!(reference(&t["Globals"]["Function"]["Tracing"]), Some("Tracing"));
    assert_eq!(t["Parameters"]["Tracing"]["Default"], "PassThrough", "X-Ray off unless asked");
    assert_eq!(functions(&t).len(), integration_tests::lambda::FUNCTIONS.len(), "one template function per binary");
    for binary in integration_tests::lambda::FUNCTIONS {
        let function = integration_tests::lambda::logical_name(&t, binary);
        let f = resource(&t, &function);
        assert_eq!(t["Resources"][function.as_str()]["Metadata"]["BuildMethod"], "makefile", "{function}");
        let group =
            reference(&f["LoggingConfig"]["LogGroup"]).unwrap_or_else(|| panic!("{function} has its own log group"));
        assert_eq!(reference(&resource(&t, group)["RetentionInDays"]), Some("LogRetentionDays"), "{function}");
        assert_eq!(f["Environment"]["Variables"]["METRICS_FUNCTION"].as_str(), Some(binary), "{function}");
        assert_eq!(f["LoggingConfig"]["SystemLogLevel"], "WARN", "{function}: no START/END lines per invocation");
    }
    let webhook = resource(&t, "WebhookFunction");
    assert!(format!("{:?}", webhook["ReservedConcurrentExecutions"]).contains("WebhookReservedConcurrency"));
    let api = resource(&t, "AppApi");
    assert_eq!(reference(&api["DefaultRouteSettings"]["ThrottlingRateLimit"]), Some("ApiThrottleRate"));
    assert!(matches!(api["AccessLogSettings"]["DestinationArn"], Value::Tagged(_)), "access logs");
    let health = &resource(&t, "HealthzFunction")["Events"]["Api"]["Properties"];
    assert_eq!((health["Path"].as_str(), health["Auth"]["Authorizer"].as_str()), (Some("/healthz"), Some("NONE")));
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
        ("DisconnectFunction", "POST", "/projects/{projectId}/connections/{platform}/disconnect"),
        ("EraseProjectFunction", "DELETE", "/projects/{projectId}"),
        ("ProjectErasureFunction", "GET", "/projects/{projectId}/erasure"),
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

/// Every function that calls the service takes from the one shared budget (capacity.md): it is
/// given the plan and the shares, may update the table (a take is an `UpdateItem`), and has its
/// concurrency bounded — reserved for the routes, `MaximumConcurrency` on the retry queue.
#[test]
fn every_function_that_calls_the_service_shares_the_budget_and_its_concurrency_is_bounded() {
    let t = template();
    let callers: Vec<String> = functions(&t)
        .into_iter()
        .filter(|f| !resource(&t, f)["Environment"]["Variables"]["PUBLISHER_API_KEY_SECRET_ID"].is_null())
        .collect();
    assert_eq!(callers.len(), 7, "{callers:?}");
    for f in &callers {
        let p = resource(&t, f);
        let env = &p["Environment"]["Variables"];
        for (key, parameter) in [
            ("VENDOR_CALLS_PER_MINUTE", "VendorCallsPerMinute"),
            ("BUDGET_READS_PERCENT", "BudgetReadsPercent"),
            ("BUDGET_RECONCILER_PERCENT", "BudgetReconcilerPercent"),
        ] {
            assert!(format!("{:?}", env[key]).contains(parameter), "{f}: {key} from {parameter}");
        }
        let policies = format!("{:?}", p["Policies"]);
        assert!(policies.contains("dynamodb:UpdateItem"), "{f} takes from the budget with UpdateItem");
        // A Disconnect is a user's rare click, held by the project's Connect budget instead.
        let bounded = !p["ReservedConcurrentExecutions"].is_null()
            || ["RetryWorkerFunction", "ReconcilerFunction", "DisconnectFunction"].contains(&f.as_str());
        assert!(bounded, "{f}: a slow service must not take the account's concurrency");
    }
    assert_eq!(t["Parameters"]["VendorCallsPerMinute"]["Default"], 60, "the smallest plan unless told");
    let retry = format!("{:?}", resource(&t, "RetryWorkerQueue")["ScalingConfig"]);
    assert!(retry.contains("RetryWorkerMaximumConcurrency"), "{retry}");
    assert!(
        format!("{:?}", resource(&t, "WebhookFunction")["ReservedConcurrentExecutions"])
            .contains("WebhookReservedConcurrency")
    );
}

/// The operations dashboard shows what capacity.md asks an operator to see, from metrics the
/// functions really emit.
#[test]
fn the_dashboard_shows_the_budget_the_line_the_webhooks_the_queue_and_the_reconciler_from_real_metrics() {
    let t = template();
    let body = format!("{:?}", resource(&t, "OperationsDashboard")["DashboardBody"]);
    let emitted = std::fs::read_to_string(root().join("shared/src/metrics.rs")).expect("metrics.rs");
    let ours: Vec<&str> = [
        "BudgetCalls",
        "ServiceThrottled",
        "BudgetShutSeconds",
        "BudgetRefused",
        "PublishesQueued",
        "PublishesFollowedUp",
        "FollowUpLagSeconds",
        "EventsProcessed",
        "EventsDuplicate",
        "EventsIgnored",
        "EventsQueued",
        "ReconcileWorkLeft",
        "PostsHealed",
        "ReconcileThrottled",
        "SubscriptionActive",
        "SubscriptionFailureCount",
        "SubscriptionReactivated",
        "DeliveriesRedelivered",
        "AccountLimited",
        "PublisherAccountNeedsAttention",
    ]
    .into_iter()
    .collect();
    for metric in ours {
        assert!(body.contains(metric), "the dashboard shows {metric}");
        assert!(emitted.contains(&format!("=> \"{metric}\"")), "{metric} is a metric the functions emit");
    }
    for aws in ["ApproximateAgeOfOldestMessage", "VendorCallsPerMinute"] {
        assert!(body.contains(aws), "the dashboard shows {aws}");
    }
}

#[test]
fn the_reconciler_watches_the_subscription_delivering_to_the_webhooks_function_url_and_alarms_name_its_trouble() {
    let t = template();
    let env = &resource(&t, "ReconcilerFunction")["Environment"]["Variables"];
    let url = &env["WEBHOOK_PUBLIC_URL"];
    let Value::Tagged(tagged) = url else { panic!("WEBHOOK_PUBLIC_URL is {url:?}") };
    assert_eq!(
        (tagged.tag.to_string().as_str(), tagged.value.as_str()),
        ("!GetAtt", Some("WebhookFunctionUrl.FunctionUrl"))
    );
    assert_eq!(reference(&env["SUBSCRIPTION_CHECK_SECONDS"]), Some("SubscriptionCheckSeconds"));
    assert_eq!(number(&t["Parameters"]["SubscriptionCheckSeconds"]["Default"]), 900);
    let metrics_of = |alarm: &str| -> Vec<(String, String)> {
        let metrics = resource(&t, alarm)["Metrics"].as_sequence().unwrap_or_else(|| panic!("{alarm} reads metrics"));
        metrics
            .iter()
            .filter_map(|m| {
                let metric = &m["MetricStat"]["Metric"];
                let function = metric["Dimensions"][0]["Value"].as_str()?;
                Some((metric["MetricName"].as_str()?.to_owned(), function.to_owned()))
            })
            .collect()
    };
    let subscription = metrics_of("WebhookSubscriptionAlarm");
    for metric in ["SubscriptionActive", "SubscriptionFailureCount"] {
        assert!(subscription.contains(&(metric.to_owned(), "reconciler".to_owned())), "{subscription:?}");
    }
    let expression = resource(&t, "WebhookSubscriptionAlarm")["Metrics"][0]["Expression"].as_str().unwrap();
    assert!(expression.contains("active < 1") && expression.contains("DIFF(failures) > 0"), "{expression}");
    let operator = metrics_of("PublisherAccountNeedsAttentionAlarm");
    for function in ["connect", "refresh-connections", "publish-post", "retry-worker"] {
        assert!(operator.contains(&("PublisherAccountNeedsAttention".to_owned(), function.to_owned())), "{function}");
    }
}

#[test]
fn the_reconciler_is_never_retried_by_lambda_and_every_allowed_schedule_renders_a_valid_rate() {
    let t = template();
    let reconciler = resource(&t, "ReconcilerFunction");
    assert_eq!(number(&reconciler["EventInvokeConfig"]["MaximumRetryAttempts"]), 0);
    let schedule = &reconciler["Events"]["Schedule"]["Properties"];
    assert_eq!(number(&schedule["RetryPolicy"]["MaximumRetryAttempts"]), 0);
    // The expression, rendered for a value as CloudFormation would: !If on ReconcileEveryMinute.
    let Value::Tagged(when) = &schedule["ScheduleExpression"] else { panic!("an !If") };
    let branches = when.value.as_sequence().expect("[condition, then, else]");
    assert_eq!((when.tag.to_string().as_str(), branches[0].as_str()), ("!If", Some("ReconcileEveryMinute")));
    let condition = format!("{:?}", t["Conditions"]["ReconcileEveryMinute"]);
    assert!(condition.contains("ReconcileScheduleMinutes") && condition.contains('1'), "{condition}");
    let render = |minutes: u64| match minutes {
        1 => branches[1].as_str().unwrap().to_owned(),
        n => {
            let Value::Tagged(sub) = &branches[2] else { panic!("a !Sub") };
            sub.value.as_str().unwrap().replace("${ReconcileScheduleMinutes}", &n.to_string())
        }
    };
    let allowed = t["Parameters"]["ReconcileScheduleMinutes"]["AllowedValues"].as_sequence().unwrap();
    assert!(allowed.len() > 1);
    for minutes in allowed.iter().map(number) {
        let expression = render(minutes);
        let valid = match minutes {
            1 => expression == "rate(1 minute)",
            n => expression == format!("rate({n} minutes)"),
        };
        assert!(valid, "{minutes}: {expression}");
    }
}

#[test]
fn with_the_defaults_nothing_is_reserved_and_what_production_must_say_has_no_default() {
    let t = template();
    // Every reservation is a choice: !If [a condition that the parameter is not 0, the parameter,
    // nothing], the parameter 0 by default, so a new account's small quota creates the stack.
    let mut reserved = Vec::new();
    for f in functions(&t) {
        let r = &resource(&t, &f)["ReservedConcurrentExecutions"];
        if r.is_null() {
            continue;
        }
        let Value::Tagged(when) = r else { panic!("{f}: a reservation must be an !If, not {r:?}") };
        let branches = when.value.as_sequence().unwrap();
        assert_eq!(when.tag.to_string(), "!If", "{f}");
        let parameter = reference(&branches[1]).unwrap_or_else(|| panic!("{f}: {branches:?}")).to_owned();
        assert!(format!("{:?}", branches[2]).contains("AWS::NoValue"), "{f}");
        let condition = format!("{:?}", t["Conditions"][branches[0].as_str().unwrap()]);
        assert!(condition.contains("Not") && condition.contains(&parameter), "{f}: {condition}");
        reserved.push((f, number(&t["Parameters"][parameter.as_str()]["Default"])));
    }
    assert!(reserved.len() >= 5, "{reserved:?}");
    assert_eq!(reserved.iter().map(|(_, n)| n).sum::<u64>(), 0, "{reserved:?}");
    for required in ["ConnectRedirectOrigins", "JwtIssuer", "JwtAudience", "PublisherApiKeyName"] {
        let p = &t["Parameters"][required];
        assert!(!p.is_null() && p["Default"].is_null(), "{required} must be given at deploy time: {p:?}");
    }
}

#[test]
fn every_route_that_calls_the_service_outlives_its_deadline_and_ends_before_api_gateway_gives_up() {
    let t = template();
    let deadline = shared::deadline::ROUTE_DEADLINE.as_secs();
    for f in functions(&t) {
        let p = resource(&t, &f);
        let calls = !p["Environment"]["Variables"]["PUBLISHER_API_KEY_SECRET_ID"].is_null();
        let routed = format!("{:?}", p["Events"]).contains("HttpApi");
        if calls && routed {
            let timeout = number(&p["Timeout"]);
            assert!((deadline + 2..30).contains(&timeout), "{f}: Timeout {timeout} s against a {deadline} s deadline");
        }
    }
}

/// `deploy/sizes/<size>.params`: `Key=Value` lines, and the reservation and quota its header states.
fn sized_set(size: &str) -> (Vec<(String, u64)>, u64, u64) {
    let text = std::fs::read_to_string(root().join(format!("deploy/sizes/{size}.params"))).expect("a sized set");
    let stated = |after: &str| -> u64 {
        let at = text.find(after).unwrap_or_else(|| panic!("{size}: no {after:?}")) + after.len();
        text[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
    };
    let values = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.parse().unwrap_or_else(|_| panic!("{size}: {l}")))
        })
        .collect();
    (values, stated("Reserves "), stated("at least "))
}

#[test]
fn the_sized_sets_fit_the_template_and_the_readme_and_the_template_says_their_numbers() {
    let t = template();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let thousands = |n: u64| simulate::thousands(n);
    for (size, projects) in simulate::SIZES {
        let (values, reserved, quota) = sized_set(size);
        for (key, value) in &values {
            // Every value is one the template takes, and its description names it.
            let p = &t["Parameters"][key.as_str()];
            assert!(!p.is_null(), "{size}: {key} is no parameter of the template");
            if !p["MinValue"].is_null() {
                assert!(*value >= number(&p["MinValue"]), "{size}: {key}={value}");
            }
            if !p["MaxValue"].is_null() {
                assert!(*value <= number(&p["MaxValue"]), "{size}: {key}={value}");
            }
            if let Some(allowed) = p["AllowedValues"].as_sequence() {
                assert!(allowed.iter().any(|a| number(a) == *value), "{size}: {key}={value}");
            }
            let description = p["Description"].as_str().unwrap_or_default();
            assert!(description.contains("Sized sets"), "{key}'s description gives the sized sets");
        }
        // The reservation it states is the sum simulate computes, and the README's table says it.
        let named: Vec<(&str, u64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(simulate::concurrency_needed(&named), (reserved, quota), "{size}");
        let row = format!("| `{size}` | {} |", thousands(u64::from(projects)));
        let line = readme.lines().find(|l| l.trim_start().starts_with(&row)).unwrap_or_else(|| panic!("README: {row}"));
        for figure in [thousands(reserved), thousands(quota)] {
            assert!(line.contains(&format!("| {figure} |")), "README's {size} row: {line}");
        }
    }
    // The large set pre-warms the table.
    let (large, _, _) = sized_set("large");
    assert!(large.iter().any(|(k, v)| k == "TableWarmWriteUnits" && *v > 4_000), "{large:?}");
    assert!(format!("{:?}", resource(&t, "Table")["WarmThroughput"]).contains("TableWarmWriteUnits"));
}
