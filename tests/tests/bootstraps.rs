//! The packaged functions (`make build`) start as Lambda starts them - with only the environment
//! the template gives them, secrets read from Secrets Manager - and each answers one invocation
//! through a stand-in of the Lambda Runtime API, against the local DynamoDB, SQS and simulator.

use std::time::Duration;

use integration_tests::lambda::{self, Answer, FUNCTIONS, PROJECT};
use integration_tests::{Stack, root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_packaged_function_starts_with_the_templates_environment_and_answers_an_invocation() {
    let template = integration_tests::template();
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    for function in FUNCTIONS {
        let bootstrap = lambda::unpack(function);
        let env = account.environment(&template, &lambda::logical_name(&template, function));
        let (event, expected) = lambda::typical_invocation(function);
        let (env, _recorders) = integration_tests::evidence::recorded(function, &env).await;
        let run = lambda::cold_start(&bootstrap, function, &env, event, Duration::from_secs(20)).await;
        if function == "retry-worker" || function == "change-feed" {
            let Answer::Response(batch) = &run.answer else { panic!("{function}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(batch["batchItemFailures"], serde_json::json!([]), "{function}: {}", run.logs);
        } else if function == "reconciler" {
            let Answer::Response(pass) = &run.answer else { panic!("{function}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(pass["ran"], true, "{function}: {pass}\n{}", run.logs);
            assert_eq!(pass["outage"], false, "{function}: {pass}\n{}", run.logs);
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

/// Which packaged function a sample in `events/` is for (`make invoke FN=… EVENT=…`).
fn function_of(sample: &str) -> &str {
    if sample.starts_with("webhook-") {
        "webhook"
    } else if sample.starts_with("sqs-") {
        "retry-worker"
    } else if sample.starts_with("scheduler-") {
        "reconciler"
    } else if sample.starts_with("dynamodb-") {
        "change-feed"
    } else {
        sample.strip_prefix("http-").unwrap_or_else(|| panic!("events/{sample}.json: no function is named for it"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_runs_on_its_packaged_function_as_make_invoke_runs_it() {
    // GIVEN the demo project's profile with the two accounts the samples name, on the simulator
    let template = integration_tests::template();
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    let accounts = serde_json::json!([
        integration_tests::live_account("64e100000000000000000001", "twitter"),
        integration_tests::live_account("64e100000000000000000002", "linkedin"),
    ]);
    stack.given_profile("proj_demo", "65aa00000000000000000001", accounts).await;
    let mut samples: Vec<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    samples.sort();
    // Webhooks first (they create the demo post and disconnect X), the manual delete before the
    // Sync (which finds the demo post unknown to the simulator), a Refresh (which finds X live
    // again and links LinkedIn) before the publish, the retry batch last.
    let rank = |s: &str| match function_of(s) {
        "webhook" => 0,
        "manual-delete" => 1,
        "refresh-connections" => 2,
        "sync-post" => 4,
        // After the publish that names LinkedIn, which it disconnects.
        "disconnect" => 4,
        "retry-worker" => 5,
        "reconciler" => 6,
        "change-feed" => 7,
        // Another project, erased last: its status after its DELETE.
        "erase-project" => 8,
        "project-erasure" => 9,
        _ => 3,
    };
    samples.sort_by_key(|s| rank(s));
    assert!(samples.len() >= 20, "a sample for every route, the webhook and the worker: {samples:?}");
    let covered: std::collections::BTreeSet<&str> = samples.iter().map(|s| function_of(s)).collect();
    assert_eq!(covered, FUNCTIONS.into_iter().collect(), "every function has a sample in events/");

    for sample in &samples {
        let function = function_of(sample);
        let event = integration_tests::Sample::load(sample).event;
        let env = account.environment(&template, &lambda::logical_name(&template, function));
        // WHEN the packaged function runs on the sample
        let (env, _recorders) = integration_tests::evidence::recorded(function, &env).await;
        let run = lambda::cold_start(&lambda::unpack(function), function, &env, event, Duration::from_secs(20)).await;
        // THEN it answers with success
        if function == "retry-worker" {
            let Answer::Response(batch) = &run.answer else { panic!("{sample}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(batch["batchItemFailures"], serde_json::json!([]), "{sample}: {}", run.logs);
        } else if function == "reconciler" {
            let Answer::Response(pass) = &run.answer else { panic!("{sample}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(pass["ran"], true, "{sample}: {pass}\n{}", run.logs);
        } else if function == "change-feed" {
            let Answer::Response(batch) = &run.answer else { panic!("{sample}: {:?}\n{}", run.answer, run.logs) };
            assert_eq!(batch["batchItemFailures"], serde_json::json!([]), "{sample}: {}", run.logs);
        } else {
            let (status, body) = run.http();
            assert!((200..300).contains(&status), "{sample}: {status} {body}\n{}", run.logs);
            if sample.starts_with("webhook-") {
                assert_eq!(body["status"], "processed", "{sample}: {body}");
            }
        }
    }
    // AND what they did is in the table: the demo post is live on LinkedIn, removed on X
    let token = stack.token("proj_demo");
    let (_, post, _) =
        stack.call(reqwest::Method::GET, "/projects/proj_demo/posts/post_demo", Some(&token), None).await;
    let platform = |p: &str| post["platforms"].as_array().unwrap().iter().find(|e| e["platform"] == p).unwrap().clone();
    assert_eq!(platform("x")["status"], "removed", "{post}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_no_function_logs_a_jwt_a_request_body_a_webhook_body_or_a_secret() {
    // GIVEN the demo project, and functions started with AWS_LAMBDA_LOG_LEVEL=TRACE, as anyone with
    // console access may set it
    let template = integration_tests::template();
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    stack.given_profile("proj_demo", "65aa00000000000000000001", serde_json::json!([])).await;
    let at_trace = |function: &str| {
        let mut env = account.environment(&template, &lambda::logical_name(&template, function));
        env.insert("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into());
        env
    };
    // WHEN the webhook takes a signed body
    let webhook = integration_tests::Sample::load("webhook-post-published");
    let body = String::from_utf8(webhook.body()).unwrap();
    let signature = webhook.header("x-zernio-signature").unwrap();
    let env = at_trace("webhook");
    let run =
        lambda::cold_start(&lambda::unpack("webhook"), "webhook", &env, webhook.event.clone(), Duration::from_secs(20))
            .await;
    assert_eq!(run.http().0, 200, "{}", run.logs);
    // AND a route takes a request with a real JWT and a post's content
    let jwt = stack.token("proj_demo");
    let content = "Never in a log: the text of a post 7f3a";
    let mut request = integration_tests::Sample::load("http-publish-post").event;
    request["headers"]["authorization"] = format!("Bearer {jwt}").into();
    request["body"] =
        serde_json::json!({"post_id": "post_trace", "content": content, "draft": true}).to_string().into();
    let env = at_trace("publish-post");
    let route =
        lambda::cold_start(&lambda::unpack("publish-post"), "publish-post", &env, request, Duration::from_secs(20))
            .await;
    assert_eq!(route.http().0, 201, "{}", route.logs);
    // THEN they logged at TRACE (our own lines) but neither the body, the signature, the JWT,
    // the post's text nor a secret
    let logs = format!("{}\n{}", run.logs, route.logs);
    assert!(logs.contains(r#""level":"TRACE""#) || logs.contains(r#""level":"DEBUG""#), "TRACE was on:\n{logs}");
    for (what, secret) in [
        ("the webhook body", body.as_str()),
        ("a fragment of the webhook body", r#""publishedUrl""#),
        ("the signature", signature.as_str()),
        ("the JWT", jwt.as_str()),
        ("the JWT's signature", jwt.rsplit('.').next().unwrap()),
        ("the post's text", content),
        ("the webhook secret", integration_tests::SECRET),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs at TRACE:\n{logs}");
    }
}

/// The metrics of our namespace a dashboard body names: `["StaccSocial", "<metric>", ...]` and the
/// rows after it that say `[".", "<metric>", ...]` (the namespace above), and the searches
/// `SEARCH('{StaccSocial,...} MetricName="<metric>"', ...)`.
fn dashboard_metrics(text: &str, found: &mut std::collections::BTreeSet<String>) {
    let ours = shared::metrics::NAMESPACE;
    let mut namespace = String::new();
    for (at, _) in text.match_indices("[\"") {
        let mut strings = text[at + 1..].split('"').skip(1).step_by(2);
        let (Some(first), Some(second)) = (strings.next(), strings.next()) else { continue };
        if first != "." {
            namespace = first.to_owned();
        }
        if namespace == ours && !second.is_empty() {
            found.insert(second.to_owned());
        }
    }
    if text.contains(&format!("{{{ours},")) {
        for (at, marker) in text.match_indices("MetricName=\\\"").chain(text.match_indices("MetricName=\"")) {
            let rest = &text[at + marker.len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
}

/// Every metric of our namespace an alarm or the dashboard reads.
fn metrics_read(template: &serde_norway::Value) -> std::collections::BTreeSet<String> {
    fn walk(v: &serde_norway::Value, found: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_norway::Value::Mapping(m) => {
                if m.get("Namespace").and_then(|n| n.as_str()) == Some(shared::metrics::NAMESPACE)
                    && let Some(name) = m.get("MetricName").and_then(|n| n.as_str())
                {
                    found.insert(name.to_owned());
                }
                m.values().for_each(|v| walk(v, found));
            }
            serde_norway::Value::Sequence(s) => s.iter().for_each(|v| walk(v, found)),
            serde_norway::Value::Tagged(t) => walk(&t.value, found),
            serde_norway::Value::String(text) => dashboard_metrics(text, found),
            _ => {}
        }
    }
    let mut found = std::collections::BTreeSet::new();
    walk(&template["Resources"], &mut found);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_warn_and_error_every_metric_the_alarms_read_and_every_error_line_reach_cloudwatch() {
    // GIVEN every metric the alarms and the dashboard read, each one the functions emit
    let template = integration_tests::template();
    let read = metrics_read(&template);
    assert!(read.len() >= 10, "{read:?}");
    let known: Vec<&str> = shared::metrics::Metric::ALL.iter().map(|m| m.name()).collect();
    for name in &read {
        assert!(known.contains(&name.as_str()), "the template reads {name}, which no function emits");
    }
    // AND a project with a profile, and a closed port where the service and the table should be
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    stack.given_profile(PROJECT, "65aa00000000000000000002", serde_json::json!([])).await;
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}")
    };
    for level in ["WARN", "ERROR"] {
        let env = |function: &str, overrides: &[(&str, &str)]| {
            let mut env = account.environment(&template, &lambda::logical_name(&template, function));
            env.insert("AWS_LAMBDA_LOG_LEVEL".into(), level.into());
            for (k, v) in overrides {
                env.insert((*k).into(), (*v).into());
            }
            env
        };
        // WHEN a webhook comes with a wrong signature, a Refresh meets a service that is down,
        // and a read meets a table that is down, each function run at this log level
        let forged = lambda::function_url_event(&serde_json::json!({"event": "post.published"}), "not-the-secret");
        let refresh = lambda::typical_invocation("refresh-connections").0;
        let list = lambda::typical_invocation("list-connections").0;
        let runs = [
            ("webhook", env("webhook", &[]), forged, 401, vec!["SignaturesRefused"]),
            (
                "refresh-connections",
                env("refresh-connections", &[("PUBLISHER_BASE_URL", &closed)]),
                refresh,
                503,
                vec!["PublisherErrors", "PublisherUnavailable"],
            ),
            ("list-connections", env("list-connections", &[("AWS_ENDPOINT_URL_DYNAMODB", &closed)]), list, 503, vec![]),
        ];
        let mut errors = 0;
        for (function, env, event, status, metrics) in runs {
            let run =
                lambda::cold_start(&lambda::unpack(function), function, &env, event, Duration::from_secs(30)).await;
            assert_eq!(run.http().0, status, "{function} at {level}:\n{}", run.logs);
            // THEN every line the function wrote has a level and an RFC 3339 timestamp, so Lambda
            // files it at its own level
            let lines: Vec<&str> = run.logs.lines().filter(|l| !l.trim().is_empty()).collect();
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
                assert!(v["level"].is_string() && v["timestamp"].is_string(), "{function}: {line}");
            }
            // AND what Lambda keeps at this level holds each metric's EMF document, and every
            // error line
            let kept: Vec<&str> = lines.iter().copied().filter(|l| lambda::lambda_keeps(l, level)).collect();
            for metric in metrics {
                assert!(
                    kept.iter().any(|l| l.contains("\"_aws\"") && l.contains(&format!("\"{metric}\":"))),
                    "{function} at {level}: {metric} did not reach CloudWatch:\n{}",
                    run.logs
                );
            }
            for line in lines.iter().filter(|l| l.contains(r#""level":"ERROR""#) && !l.contains("\"_aws\"")) {
                errors += 1;
                assert!(kept.contains(line), "{function} at {level}: an error line was dropped: {line}");
            }
        }
        assert!(errors > 0, "at {level}, the table being down logged an error");
    }
    // AND every metric read, as the functions write it, is kept at the highest level
    for name in &read {
        let metric = shared::metrics::Metric::ALL.iter().find(|m| m.name() == name).unwrap();
        let line = shared::metrics::document(*metric, 1, "f", 1_700_000_000_000).to_string();
        assert!(lambda::lambda_keeps(&line, "ERROR"), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_on_every_dynamodb_and_service_call_is_a_subsegment_of_the_invocations_trace() {
    // GIVEN an X-Ray daemon (a UDP socket here), and a publish run by its packaged function in a
    // sampled trace, as Lambda runs it with Tracing Active
    let template = integration_tests::template();
    let stack = Stack::start().await;
    let account = lambda::prepare(&stack).await;
    let live = serde_json::json!([
        integration_tests::live_account("x1", "twitter"),
        integration_tests::live_account("li1", "linkedin")
    ]);
    stack.given_connected(PROJECT, lambda::PROFILE, live).await;
    let daemon = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut env = account.environment(&template, &lambda::logical_name(&template, "publish-post"));
    env.insert("AWS_XRAY_DAEMON_ADDRESS".into(), daemon.local_addr().unwrap().to_string());
    let (event, expected) = lambda::typical_invocation("publish-post");
    // WHEN it publishes
    let run =
        lambda::cold_start(&lambda::unpack("publish-post"), "publish-post", &env, event, Duration::from_secs(20)).await;
    assert_eq!(run.http().0, expected, "{:?}\n{}", run.http().1, run.logs);
    // THEN the daemon got a subsegment of the invocation's segment for each call: DynamoDB's, by
    // operation, and the publishing service's
    let mut documents = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    while let Ok(n) = daemon.recv(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..n]).to_string();
        let (header, body) = text.split_once('\n').expect("a header line, then the document");
        assert_eq!(header, r#"{"format":"json","version":1}"#);
        documents.push(serde_json::from_str::<serde_json::Value>(body).expect("JSON"));
    }
    for d in &documents {
        assert_eq!(
            (d["trace_id"].as_str(), d["parent_id"].as_str()),
            (Some(lambda::TRACE_ROOT), Some(lambda::TRACE_PARENT))
        );
        assert_eq!(d["type"], "subsegment");
        assert!(d["end_time"].as_f64() >= d["start_time"].as_f64(), "{d}");
    }
    let dynamodb: Vec<&str> =
        documents.iter().filter(|d| d["name"] == "DynamoDB").filter_map(|d| d["aws"]["operation"].as_str()).collect();
    assert!(dynamodb.contains(&"BatchGetItem") && dynamodb.contains(&"TransactWriteItems"), "{documents:?}");
    let service = documents.iter().filter(|d| d["namespace"] == "remote").count();
    assert!(service >= 1, "the call to the service is traced: {documents:?}");
}
