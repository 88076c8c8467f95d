//! Least privilege, proved from evidence (hardening.md): every function's policy in
//! `template.yaml` allows exactly the AWS actions its code was seen to make over the whole test
//! run, on the resources it touches. The evidence is what the request tap credited to each
//! function's handler in the dev gateway, and what each packaged function sent through its
//! recording endpoints (`target/iam-evidence/`); to it are added the actions each function's event
//! source mapping makes with its role, as AWS documents them.
//!
//! `make test` clears the evidence, runs every test, then runs this one (`--ignored`): run alone,
//! it would judge a partial run.

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::lambda::{FUNCTIONS, logical_name};
use integration_tests::{root, template};
use serde_norway::Value;

type Actions = BTreeSet<String>;

/// Every `function action` line the test run left, by function.
fn evidence() -> BTreeMap<String, Actions> {
    let folder = root().join("target").join("iam-evidence");
    let mut seen: BTreeMap<String, Actions> = BTreeMap::new();
    for file in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(file.path()).unwrap_or_default().lines() {
            if let Some((function, action)) = line.split_once(' ') {
                seen.entry(function.to_owned()).or_default().insert(action.to_owned());
            }
        }
    }
    seen
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(tagged) => format!("!{} {}", tagged.tag.to_string().trim_start_matches('!'), text(&tagged.value)),
        Value::Sequence(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        other => format!("{other:?}"),
    }
}

/// How precisely a resource is named, as a suffix the evidence can carry: the table itself (none),
/// one of its indexes, its stream; `@*` for everything, which no evidence ever matches.
fn scope(resource: &Value) -> String {
    let resource = text(resource);
    if resource == "*" {
        "@*".to_owned()
    } else if let Some(index) = resource.split("/index/").nth(1) {
        format!("@index/{}", index.trim_end_matches('"'))
    } else if resource.contains("/stream/") {
        "@stream".to_owned()
    } else {
        String::new()
    }
}

/// What the function's policies allow, each action with the scope of each resource it is on.
fn granted(t: &Value, function: &str, problems: &mut Vec<String>) -> Actions {
    let mut actions = Actions::new();
    let properties = &t["Resources"][function]["Properties"];
    for policy in properties["Policies"].as_sequence().cloned().unwrap_or_default() {
        let Some(statements) = policy["Statement"].as_sequence() else {
            problems.push(format!(
                "{function}: policy {} is not an inline statement list, so no test can prove it",
                text(&policy)
            ));
            continue;
        };
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "{function}: only Allow statements");
            let names: Vec<String> = match &statement["Action"] {
                Value::Sequence(items) => items.iter().map(text).collect(),
                one => vec![text(one)],
            };
            let resources: Vec<Value> = match &statement["Resource"] {
                Value::Sequence(items) => items.clone(),
                one => vec![one.clone()],
            };
            for name in &names {
                for resource in &resources {
                    // Other services' statements each name one queue, secret or bus: only `*` counts.
                    let scoped = scope(resource);
                    let scoped = if name.starts_with("dynamodb:") || scoped == "@*" { scoped } else { String::new() };
                    actions.insert(format!("{name}{scoped}"));
                }
            }
        }
    }
    for (name, event) in properties["Events"].as_mapping().cloned().unwrap_or_default() {
        let kind = event["Type"].as_str().unwrap_or_default().to_owned();
        if ["SQS", "DynamoDB", "Kinesis", "MSK", "MQ"].contains(&kind.as_str()) {
            problems.push(format!(
                "{function}: event {} of type {kind} makes SAM add a managed policy on every resource; declare an AWS::Lambda::EventSourceMapping",
                text(&name)
            ));
        }
    }
    actions
}

/// What the function's event source mappings do with its role (the Lambda developer guide's
/// execution-role permissions for each source), on the source they read.
fn event_sources(t: &Value, function: &str) -> Actions {
    let mut actions = Actions::new();
    for (_, resource) in t["Resources"].as_mapping().cloned().unwrap_or_default() {
        let properties = &resource["Properties"];
        if resource["Type"] != "AWS::Lambda::EventSourceMapping"
            || text(&properties["FunctionName"]) != format!("!Ref {function}")
        {
            continue;
        }
        let source = text(&properties["EventSourceArn"]);
        if source.ends_with("StreamArn") {
            for action in ["DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"] {
                actions.insert(format!("dynamodb:{action}@stream"));
            }
        } else if source.contains("Queue") {
            for action in ["ReceiveMessage", "DeleteMessage", "GetQueueAttributes"] {
                actions.insert(format!("sqs:{action}"));
            }
        }
        if !properties["DestinationConfig"]["OnFailure"]["Destination"].is_null() {
            actions.insert("sqs:SendMessage".to_owned());
        }
    }
    actions
}

/// The differences between what each function was seen to need and what its policy allows.
fn differences(t: &Value, evidence: &BTreeMap<String, Actions>) -> Vec<String> {
    let mut problems = Vec::new();
    for function in FUNCTIONS {
        let logical = logical_name(t, function);
        let granted = granted(t, &logical, &mut problems);
        let mut needed = evidence.get(function).cloned().unwrap_or_default();
        needed.extend(event_sources(t, &logical));
        for missing in needed.difference(&granted) {
            problems.push(format!(
                "{logical} ({function}) makes {missing}, which its policy does not allow: AccessDenied in AWS"
            ));
        }
        for unused in granted.difference(&needed) {
            problems.push(format!("{logical} ({function}) is allowed {unused}, which no test saw it make"));
        }
    }
    problems
}

#[test]
#[ignore = "judges the evidence of the whole test run: make test runs it last"]
fn every_function_is_allowed_exactly_the_aws_actions_its_code_makes() {
    let evidence = evidence();
    let silent: Vec<&str> = FUNCTIONS.into_iter().filter(|f| *f != "healthz" && !evidence.contains_key(*f)).collect();
    assert!(silent.is_empty(), "no evidence for {silent:?} in target/iam-evidence: run the whole of make test first");
    let problems = differences(&template(), &evidence);
    assert!(problems.is_empty(), "least privilege does not hold:\n{}", problems.join("\n"));
}

#[test]
fn the_judge_finds_a_missing_action_an_unused_one_and_a_policy_on_every_resource() {
    // GIVEN a template whose SyncPost may only GetItem on the table and Query on everything
    let t: Value = serde_norway::from_str(
        r#"
Resources:
  SyncPostFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:DeleteItem]
              Resource: !GetAtt Table.Arn
            - Effect: Allow
              Action: dynamodb:Query
              Resource: "*"
"#,
    )
    .unwrap();
    // WHEN the evidence shows it reads, queries the table and the attention index
    let seen: Actions =
        ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Query@index/attention"].map(str::to_owned).into();
    let mut problems = Vec::new();
    let granted = granted(&t, "SyncPostFunction", &mut problems);
    // THEN the query of the table and of the index are missing, DeleteItem and Query on * unused
    let missing: Vec<&String> = seen.difference(&granted).collect();
    let unused: Vec<&String> = granted.difference(&seen).collect();
    assert_eq!(missing, ["dynamodb:Query", "dynamodb:Query@index/attention"]);
    assert_eq!(unused, ["dynamodb:DeleteItem", "dynamodb:Query@*"]);
    assert!(problems.is_empty());
}

#[test]
fn the_templates_event_sources_need_their_documented_actions_on_their_own_source() {
    let t = template();
    let retry = event_sources(&t, "RetryWorkerFunction");
    assert_eq!(retry, ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"].map(str::to_owned).into());
    let feed = event_sources(&t, "ChangeFeedFunction");
    assert!(feed.contains("dynamodb:GetRecords@stream") && feed.contains("sqs:SendMessage"), "{feed:?}");
    let mut problems = Vec::new();
    for function in FUNCTIONS {
        granted(&t, &logical_name(&t, function), &mut problems);
    }
    assert!(problems.is_empty(), "{problems:?}");
}
