//! A project's life (lifecycle.md), end to end on the real stack: disconnecting a platform.

use integration_tests::{Stack, live_account as account};
use reqwest::Method;
use serde_json::{Value, json};

const PROJECT: &str = "proj_l";
const PROFILE: &str = "65aa000000000000000000l1";

async fn disconnect(stack: &Stack, platform: &str) -> (u16, Value) {
    let token = stack.token(PROJECT);
    let path = format!("/projects/{PROJECT}/connections/{platform}/disconnect");
    let (status, body, _) = stack.call(Method::POST, &path, Some(&token), None).await;
    (status, body)
}

async fn connection(stack: &Stack, platform: &str) -> Value {
    let token = stack.token(PROJECT);
    let (_, list, _) = stack.call(Method::GET, &format!("/projects/{PROJECT}/connections"), Some(&token), None).await;
    list["connections"].as_array().unwrap().iter().find(|c| c["platform"] == platform).cloned().unwrap()
}

fn deletes(stack: &Stack) -> u64 {
    stack.publisher_calls()["DELETE /v1/accounts/{id}"].as_u64().unwrap_or(0)
}

fn connected_event(id: &str, at: shared::domain::Timestamp, account: &str) -> Value {
    json!({"id": id, "event": "account.connected", "timestamp": at.to_rfc3339(),
           "account": {"accountId": account, "profileId": PROFILE, "platform": "twitter", "username": "acme"}})
}

#[tokio::test]
async fn a_disconnect_deletes_the_account_reads_not_connected_and_only_a_later_connect_brings_it_back() {
    // GIVEN X and LinkedIn connected
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter"), account("li1", "linkedin")])).await;
    let before = integration_tests::now();
    // WHEN the user disconnects X
    let (status, x) = disconnect(&stack, "x").await;
    // THEN the service's account is gone and the connection reads not_connected, reason disconnected
    assert_eq!(status, 200, "{x}");
    assert_eq!((x["status"].as_str(), x["reason"].as_str()), (Some("not_connected"), Some("disconnected")), "{x}");
    assert!(stack.sim.shared.world().accounts.iter().all(|a| a.id != "x1"), "x1 deleted on the service");
    assert_eq!(deletes(&stack), 1);
    assert_eq!(connection(&stack, "linkedin").await["status"], "connected", "LinkedIn untouched");
    // AND its history records it, by the Disconnect
    let token = stack.token(PROJECT);
    let (_, history, _) = stack
        .call(Method::GET, &format!("/projects/{PROJECT}/connections/history?platform=x"), Some(&token), None)
        .await;
    let changes = history["changes"].as_array().unwrap();
    let latest = changes.iter().find(|c| c["field"] == "status").unwrap();
    assert_eq!(
        (latest["to"].as_str(), latest["source"].as_str()),
        (Some("not_connected"), Some("disconnect")),
        "{history}"
    );
    // AND a repeat answers the same without calling the service
    let (status, again) = disconnect(&stack, "x").await;
    assert_eq!((status, &again), (200, &x));
    assert_eq!(deletes(&stack), 1, "nothing called the second time");
    // AND an account.connected made before the Disconnect does not bring it back
    let stale = connected_event("evt_before", before.plus_seconds(-1), "x1");
    assert_eq!(stack.send(&stale).await.0, 200);
    assert_eq!(connection(&stack, "x").await["status"], "not_connected");
    // AND a publish to X is refused as for any platform not connected
    let (status, refused, _) = stack
        .call(
            Method::POST,
            &format!("/projects/{PROJECT}/posts"),
            Some(&token),
            Some(json!({"post_id": "post_1", "content": "Hi", "platforms": ["x"]})),
        )
        .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("reconnect_required")), "{refused}");
    // AND a later Connect does
    let later = connected_event("evt_after", integration_tests::now().plus_seconds(1), "x9");
    assert_eq!(stack.send(&later).await.0, 200);
    let back = connection(&stack, "x").await;
    assert_eq!((back["status"].as_str(), back["account_id"].as_str()), (Some("connected"), Some("x9")), "{back}");
}

#[tokio::test]
async fn a_platform_never_connected_is_404_and_an_unreachable_service_changes_nothing() {
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    let (status, body) = disconnect(&stack, "instagram").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let items = stack.items().await;
    stack
        .sim
        .shared
        .set_fault(zernio_sim::Fault { mode: zernio_sim::FaultMode::Status { code: 503 }, ..Default::default() });
    let (status, body) = disconnect(&stack, "x").await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("publisher_unavailable")), "{body}");
    assert_eq!(stack.items().await, items, "nothing changed");
    assert!(stack.sim.shared.world().accounts.iter().any(|a| a.id == "x1"), "the account is still there");
    // A project without a profile has nothing connected either.
    let token = stack.token("proj_none");
    let (status, _, _) =
        stack.call(Method::POST, "/projects/proj_none/connections/x/disconnect", Some(&token), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn history_past_its_retention_is_never_shown_and_every_record_carries_its_time_to_live() {
    use shared::domain::{AccountId, Connection, ConnectionStatus, Platform, ProfileId, ProjectId};
    use shared::ports::{ConnectionStore, Source};
    // GIVEN history kept one day, and a change recorded two days ago
    let retention = shared::domain::history::Retention { days: 1 };
    let stack =
        Stack::with(integration_tests::StackOptions { history_retention: retention, ..Default::default() }).await;
    stack.given_profile(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    let (project, profile) = (ProjectId::parse(PROJECT).unwrap(), ProfileId::parse(PROFILE).unwrap());
    let old = integration_tests::now().plus_seconds(-2 * 86_400);
    let linked = Connection {
        platform: Platform::X,
        status: ConnectionStatus::Connected,
        evidence_at: old,
        account_id: Some(AccountId::parse("x1").unwrap()),
        username: Some("x1_user".into()),
        display_name: None,
        reason: None,
        looks: None,
    };
    let read = stack.store.connections(&profile).await.unwrap();
    stack.store.save_connections(&project, &profile, read, vec![linked], &Source::Refresh, old).await.unwrap();
    // AND a change now
    assert_eq!(disconnect(&stack, "x").await.0, 200);
    // WHEN the history is read
    let token = stack.token(PROJECT);
    let (_, history, _) =
        stack.call(Method::GET, &format!("/projects/{PROJECT}/connections/history"), Some(&token), None).await;
    // THEN only today's records are shown, and the history ends there
    let changes = history["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c["source"] == "disconnect"), "{history}");
    assert!(history["next_cursor"].is_null());
    // AND every record carries its time to live: written + one day
    let records: Vec<_> = stack
        .all_items()
        .await
        .into_iter()
        .filter(|i| integration_tests::s(i, "sk").is_some_and(|sk| sk.starts_with("HIST#")))
        .collect();
    assert!(records.len() > changes.len(), "the old records are still stored until TTL removes them");
    for record in records {
        let at = shared::domain::Timestamp::parse(integration_tests::s(&record, "at").unwrap()).unwrap();
        let ttl: i64 = record["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(ttl, at.plus_seconds(86_400).unix());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_export_writes_every_item_of_a_project_and_nothing_of_another() {
    // GIVEN two projects, one with a connection, a post and their history
    let stack = Stack::start().await;
    stack.given_connected(PROJECT, PROFILE, json!([account("x1", "twitter")])).await;
    stack.given_connected("proj_other", "65aa0000000000000000000o", json!([account("x2", "twitter")])).await;
    let token = stack.token(PROJECT);
    let body = json!({"post_id": "post_e", "content": "Exported", "platforms": ["x"]});
    assert_eq!(stack.call(Method::POST, &format!("/projects/{PROJECT}/posts"), Some(&token), Some(body)).await.0, 201);
    // WHEN the export runs against the stack's table
    let out = std::env::temp_dir().join(format!("export-{}.json", std::process::id()));
    // The embedded DynamoDB answers from this process: the script runs beside it, not in its way.
    let (endpoint, table, path) = (stack.dynamodb_endpoint.clone(), stack.table.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(integration_tests::root().join(".venv/bin/python"))
            .arg(integration_tests::root().join("tools/local/export.py"))
            .arg(PROJECT)
            .arg("--out")
            .arg(&path)
            .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            .env("TABLE_NAME", table)
            .output()
            .expect("python")
    })
    .await
    .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let document: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // THEN it holds exactly the project's items: its partition and its profile's
    let ours = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
        let pk = integration_tests::s(i, "pk").unwrap_or_default();
        pk == format!("PROJECT#{PROJECT}") || pk == format!("PROFILE#{PROFILE}")
    };
    let stored = stack.all_items().await.into_iter().filter(ours).count();
    assert_eq!(document["item_count"].as_u64(), Some(stored as u64), "{document}");
    assert_eq!(document["profile_id"], PROFILE);
    for kind in ["posts", "drafts", "connections", "connection_history", "post_history", "profile", "routing"] {
        assert!(document["items"][kind].as_array().is_some_and(|a| !a.is_empty()), "{kind}: {document}");
    }
    assert!(!document.to_string().contains("proj_other") && !document.to_string().contains("x2"), "nothing of another");
    let _ = std::fs::remove_file(out);
}
