//! Running a built Lambda `bootstrap` as Lambda does: a local stand-in of the Runtime API hands it
//! one event and takes its answer. Measures what a cold start costs: time from exec to the first
//! `next` request (init), and the process's peak resident memory after one invocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Notify;

use crate::{live_account, root};

/// Every function `make build` packages, as named in `Cargo.toml` and the template.
pub const FUNCTIONS: [&str; 17] = [
    "webhook",
    "retry-worker",
    "list-connections",
    "refresh-connections",
    "connect",
    "publish-post",
    "read-post",
    "sync-post",
    "manual-delete",
    "healthz",
    "reconciler",
    "post-history",
    "connection-history",
    "change-feed",
    "disconnect",
    "erase-project",
    "project-erasure",
];

/// Where `make build` leaves the zips (`BOOTSTRAP_DIR` overrides).
pub fn lambda_dir() -> PathBuf {
    std::env::var("BOOTSTRAP_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target/lambda"))
}

/// The packaged zip of a function.
pub fn zip_path(function: &str) -> PathBuf {
    lambda_dir().join(function).join("bootstrap.zip")
}

/// The function's executable, unpacked from its `bootstrap.zip` into `target/unpacked/<function>/`.
/// One copy serves every test and every run until the zip changes, so runs leave nothing behind.
/// The zip is unpacked into a folder of this process's own and the executable renamed into place,
/// so a process that unpacks never disturbs one already running the previous copy.
pub fn unpack(function: &str) -> PathBuf {
    let zip = zip_path(function);
    assert!(zip.exists(), "{} is missing: `make build` packages the functions (`make test` runs it)", zip.display());
    let home = root().join("target/unpacked").join(function);
    let bootstrap = home.join("bootstrap");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    static UNPACKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = UNPACKING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if modified(&bootstrap).is_some_and(|unpacked| modified(&zip).is_some_and(|zipped| unpacked >= zipped)) {
        return bootstrap;
    }
    let scratch = home.join(format!(".unpacking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("unpack folder");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(&scratch)
        .status()
        .expect("python3 unpacks zips");
    assert!(status.success(), "unzip {}", zip.display());
    let unpacked = scratch.join("bootstrap");
    assert!(unpacked.exists(), "{} holds no `bootstrap`", zip.display());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unpacked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&unpacked, &bootstrap).expect("bootstrap into place");
    let _ = std::fs::remove_dir_all(&scratch);
    bootstrap
}

#[derive(Default)]
struct Exchange {
    event: Option<serde_json::Value>,
    handed_out: bool,
    first_next: Option<Instant>,
    answer: Option<Answer>,
}

/// What the function sent back.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(serde_json::Value),
    /// An invocation or init error, as the runtime reported it.
    Error(String),
}

#[derive(Clone)]
struct RuntimeState {
    exchange: Arc<Mutex<Exchange>>,
    answered: Arc<Notify>,
}

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// The trace every invocation here belongs to, as Lambda hands it to the runtime.
pub const TRACE_ROOT: &str = "1-5bef4de7-ad49b0e87f6ef6c87fc2e700";
/// The function's segment in it.
pub const TRACE_PARENT: &str = "9a9197af755a6419";

async fn next(State(state): State<RuntimeState>) -> axum::response::Response {
    let event = {
        let mut exchange = state.exchange.lock().expect("lock");
        exchange.first_next.get_or_insert_with(Instant::now);
        if exchange.handed_out { None } else { exchange.event.take() }
    };
    let Some(event) = event else {
        // One invocation per process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        unreachable!()
    };
    state.exchange.lock().expect("lock").handed_out = true;
    let deadline = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 30_000;
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("header value"));
    };
    put("lambda-runtime-aws-request-id", REQUEST_ID.into());
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".into());
    put("lambda-runtime-trace-id", format!("Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1"));
    put("content-type", "application/json".into());
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn record(state: &RuntimeState, answer: Answer) -> StatusCode {
    state.exchange.lock().expect("lock").answer.get_or_insert(answer);
    state.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn response(State(state): State<RuntimeState>, UrlPath(_id): UrlPath<String>, body: String) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    record(&state, Answer::Response(value))
}

async fn error(State(state): State<RuntimeState>, UrlPath(_id): UrlPath<String>, body: String) -> StatusCode {
    record(&state, Answer::Error(body))
}

async fn init_error(State(state): State<RuntimeState>, body: String) -> StatusCode {
    record(&state, Answer::Error(format!("init: {body}")))
}

/// One cold start and one invocation of a bootstrap.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub answer: Answer,
    /// From exec to the runtime's first request for an event.
    pub init: Duration,
    /// Peak resident memory (VmHWM) after the invocation, in KiB.
    pub peak_kib: u64,
    /// What the process wrote to stderr and stdout (its logs), for failure messages.
    pub logs: String,
}

impl ColdStart {
    /// The answer as an HTTP-style response (`statusCode`, parsed `body`), for HTTP functions.
    pub fn http(&self) -> (u16, serde_json::Value) {
        let Answer::Response(value) = &self.answer else {
            panic!("the function failed: {:?}\n{}", self.answer, self.logs)
        };
        let status = value["statusCode"].as_u64().unwrap_or_else(|| panic!("no statusCode in {value}")) as u16;
        let body = value["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
        (status, body)
    }
}

fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `bootstrap` with exactly `env` (plus what Lambda itself sets), hands it `event`, and
/// waits (at most `timeout`) for its answer; the process is stopped afterwards.
pub async fn cold_start(
    bootstrap: &Path,
    function: &str,
    env: &BTreeMap<String, String>,
    event: serde_json::Value,
    timeout: Duration,
) -> ColdStart {
    let state = RuntimeState {
        exchange: Arc::new(Mutex::new(Exchange { event: Some(event), ..Exchange::default() })),
        answered: Arc::new(Notify::new()),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port");
    let api = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // One file a run: tests that start the same function at once must not write into each other's.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let logs = bootstrap.with_file_name(format!("{function}.{}.{run}.log", std::process::id()));
    let log_file = std::fs::File::create(&logs).expect("log file");
    let started = Instant::now();
    let mut child = Command::new(bootstrap)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("_HANDLER", "bootstrap")
        .env("LAMBDA_TASK_ROOT", bootstrap.parent().expect("folder"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bootstrap.display()));

    // Until it answers, exits (a failed start) or runs out of time.
    let deadline = Instant::now() + timeout;
    let answered = state.answered.notified();
    tokio::pin!(answered);
    let mut exited = None;
    while Instant::now() < deadline {
        tokio::select! {
            () = &mut answered => break,
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                if let Ok(Some(status)) = child.try_wait() {
                    exited = Some(status);
                    break;
                }
            }
        }
    }
    let peak = peak_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let logs = {
        let text = std::fs::read_to_string(&logs).unwrap_or_default();
        let _ = std::fs::remove_file(&logs);
        text
    };
    let exchange = state.exchange.lock().expect("lock");
    let answer = match (&exchange.answer, exited) {
        (Some(answer), _) => answer.clone(),
        (None, Some(status)) => Answer::Error(format!("the process exited ({status}) without answering")),
        (None, None) => Answer::Error(format!("no answer within {timeout:?}")),
    };
    ColdStart {
        answer,
        init: exchange.first_next.map(|at| at.duration_since(started)).unwrap_or(Duration::MAX),
        peak_kib: peak,
        logs,
    }
}

/// The local stand-ins a deployed function would find in AWS, and the values the template's
/// parameters and resources resolve to on this machine.
#[derive(Debug, Clone)]
pub struct LocalAccount {
    pub dynamodb_endpoint: String,
    pub moto_endpoint: String,
    /// `!Ref <name>` → value, for the template's parameters and resources.
    pub refs: BTreeMap<String, String>,
}

impl LocalAccount {
    /// The environment Lambda would give `function` (a logical name in the template): the
    /// template's variables, resolved, plus the credentials and region Lambda sets. A variable
    /// the template does not set is absent here too, so a handler that needs it fails to start.
    pub fn environment(&self, template: &serde_norway::Value, function: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
        let own = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        for variables in [globals, own] {
            for (key, value) in variables.as_mapping().cloned().unwrap_or_default() {
                let key = key.as_str().expect("variable name").to_owned();
                let value = self
                    .resolve(template, &value)
                    .unwrap_or_else(|why| panic!("{function}: {key} = {value:?} cannot be resolved here: {why}"));
                env.insert(key, value);
            }
        }
        for (key, value) in [
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_SESSION_TOKEN", "local"),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SQS", self.moto_endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.moto_endpoint.as_str()),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", self.moto_endpoint.as_str()),
        ] {
            env.insert(key.to_owned(), value.to_owned());
        }
        env
    }
}

impl LocalAccount {
    /// A value of the template as CloudFormation would resolve it here: a string, `!Ref`, `!Sub`
    /// (of refs and `AWS::StackName`), and `!If` on a condition of `!Equals`, `!Not`, `!And`,
    /// `!Or` and `!Condition`.
    pub fn resolve(&self, template: &serde_norway::Value, value: &serde_norway::Value) -> Result<String, String> {
        use serde_norway::Value;
        let lookup = |name: &str| match name {
            "AWS::StackName" => Ok(LOCAL_STACK_NAME.to_owned()),
            name => self.refs.get(name).cloned().ok_or_else(|| format!("!Ref {name} is unknown here")),
        };
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Tagged(t) if t.tag == "!Ref" => lookup(t.value.as_str().ok_or("!Ref of a name")?),
            // `Resource.Attribute`, as `refs` holds it.
            Value::Tagged(t) if t.tag == "!GetAtt" => lookup(t.value.as_str().ok_or("!GetAtt of Resource.Attribute")?),
            Value::Tagged(t) if t.tag == "!Sub" => {
                let mut text = t.value.as_str().ok_or("!Sub of a string")?.to_owned();
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}').ok_or("an unclosed ${")?;
                    let value = lookup(&text[start + 2..end])?;
                    text.replace_range(start..=end, &value);
                }
                Ok(text)
            }
            Value::Tagged(t) if t.tag == "!If" => {
                let branches = t.value.as_sequence().ok_or("!If [condition, then, else]")?;
                let condition = branches[0].as_str().ok_or("!If names its condition")?;
                let holds = self.condition(template, &template["Conditions"][condition])?;
                self.resolve(template, &branches[if holds { 1 } else { 2 }])
            }
            other => Err(format!("{other:?}")),
        }
    }

    fn condition(&self, template: &serde_norway::Value, condition: &serde_norway::Value) -> Result<bool, String> {
        use serde_norway::Value;
        let Value::Tagged(t) = condition else { return Err(format!("{condition:?} is no condition")) };
        let items = || t.value.as_sequence().ok_or_else(|| format!("{} takes a list", t.tag));
        match t.tag.to_string().as_str() {
            "!Equals" => {
                let items = items()?;
                Ok(self.resolve(template, &items[0])? == self.resolve(template, &items[1])?)
            }
            "!Not" => Ok(!self.condition(template, &items()?[0])?),
            "!And" => items()?.iter().try_fold(true, |all, c| Ok(all && self.condition(template, c)?)),
            "!Or" => items()?.iter().try_fold(false, |any, c| Ok(any || self.condition(template, c)?)),
            "!Condition" => {
                let name = t.value.as_str().ok_or("!Condition of a name")?;
                self.condition(template, &template["Conditions"][name])
            }
            other => Err(format!("condition {other} is not known here")),
        }
    }
}

/// The stack name the local account's resources are resolved under.
pub const LOCAL_STACK_NAME: &str = "stacc-social-local";

/// The template's logical name of the function built from `binary`: `retry-worker` is
/// `RetryWorkerFunction` (the Makefile's `build-%Function` rule maps it back for `sam build`).
pub fn logical_name(template: &serde_norway::Value, binary: &str) -> String {
    let pascal: String = binary
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect();
    let name = format!("{pascal}Function");
    assert!(
        template["Resources"][name.as_str()]["Type"] == "AWS::Serverless::Function",
        "template.yaml has no function {name} for the binary {binary}"
    );
    name
}

/// An HTTP API (payload 2.0) event as API Gateway sends it after the JWT authorizer passed.
pub fn http_api_event(
    method: &str,
    route: &str,
    path: &str,
    project: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut parameters = serde_json::Map::new();
    for (template, actual) in route.split('/').zip(path.split('/')) {
        if let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            parameters.insert(name.to_owned(), actual.into());
        }
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": "Bearer verified-by-the-authorizer", "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"jwt": {"claims": {"sub": "user-1", "project_id": project}, "scopes": null}},
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req-1",
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600000000u64
        },
        "pathParameters": parameters,
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// A function-URL event carrying a webhook body signed with `secret`.
pub fn function_url_event(body: &serde_json::Value, secret: &str) -> serde_json::Value {
    let raw = body.to_string();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-zernio-signature": shared::signature::sign(secret, raw.as_bytes())
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "local.lambda-url.us-east-1.on.aws",
            "domainPrefix": "local",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Zernio-Webhooks/1.0"},
            "requestId": "req-webhook",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600000000u64
        },
        "body": raw,
        "isBase64Encoded": false
    })
}

/// An SQS event with one message, as the event source mapping delivers it.
pub fn sqs_event(queue_arn: &str, body: &str) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "local",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795600000000",
                       "SenderId": "local", "ApproximateFirstReceiveTimestamp": "1795600000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    }]})
}

/// The project and profile the rehearsal below works on.
pub const PROJECT: &str = "proj_lambda";
pub const PROFILE: &str = "65aa0000000000000000aa01";

fn account_connected(event_id: &str, account: &str, platform: &str) -> serde_json::Value {
    serde_json::json!({
        "id": event_id, "event": "account.connected", "timestamp": crate::recent("2026-11-25T10:00:00Z"),
        "account": {"accountId": account, "profileId": PROFILE, "platform": platform, "username": format!("{account}_user")}
    })
}

/// Stores `value` under `name` in (moto's) Secrets Manager, replacing what was there.
async fn put_secret(moto: &str, name: &str, value: &str) -> Result<(), String> {
    let sdk = dev_gateway::local_sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).endpoint_url(moto).build(),
    );
    if secrets.create_secret().name(name).secret_string(value).send().await.is_ok() {
        return Ok(());
    }
    secrets.put_secret_value().secret_id(name).secret_string(value).send().await.map_err(|e| {
        format!("Secrets Manager (moto) at {moto}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e))
    })?;
    Ok(())
}

/// What the template's parameters and resources resolve to besides the secrets' names.
fn local_refs(table: &str, retry_url: &str, publisher: &str) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    refs.insert("Table".into(), table.to_owned());
    refs.insert("RetryQueue".into(), retry_url.to_owned());
    refs.insert("PublisherBaseUrl".into(), publisher.to_owned());
    refs.insert("LogLevel".into(), "info".into());
    refs.insert("ProjectClaim".into(), "project_id".into());
    refs.insert("ConnectRedirectOrigins".into(), "http://localhost:3000,http://127.0.0.1:3000".into());
    // No function URL here: a port nothing listens on (the reconciler finds no subscription of it).
    refs.insert("WebhookFunctionUrl.FunctionUrl".into(), "http://127.0.0.1:9/".into());
    for (parameter, value) in [
        ("SubscriptionCheckSeconds", 900),
        ("HistoryRetentionDays", 400),
        ("RefreshesPerMinute", 10),
        ("SyncsPerMinute", 30),
        ("PublishesPerMinute", 30),
        ("ConnectsPerMinute", 10),
        ("PostWritesPerMinute", 120),
        ("ReadsPerMinute", 300),
        ("ReconcileGraceSeconds", 600),
        ("ReconcileConnectionsMaxAgeSeconds", 86_400),
        ("ReconcileMaxCalls", 20),
        ("ReconcilerLeases", 1),
        ("PublishWaitSeconds", 10),
        ("PublishFollowUpSeconds", 60),
        ("VendorCallsPerMinute", 600),
        ("BudgetReadsPercent", 60),
        ("BudgetReconcilerPercent", 20),
    ] {
        refs.insert(parameter.into(), value.to_string());
    }
    refs
}

/// The stack made ready for one typical invocation of each function: the signing secrets and the
/// API key in (moto's) Secrets Manager under fresh names, and a project whose profile has live
/// X and LinkedIn accounts on the simulator. Returns what the template resolves to here.
pub async fn prepare(stack: &crate::Stack) -> LocalAccount {
    let moto = crate::moto_endpoint();
    let suffix = format!("{}-{}", std::process::id(), stack.table);
    let mut refs = local_refs(&stack.table, &stack.queues.retry_url, &stack.sim.api_url());
    let bus = format!("bus-{suffix}");
    let sdk = dev_gateway::local_sdk_config().await;
    let options = shared::adapters::aws::ClientOptions { endpoint: Some(moto.clone()), ..Default::default() };
    let events = shared::adapters::aws::eventbridge_client(&sdk, &options);
    let sqs = shared::adapters::aws::sqs_client(&sdk, &options);
    dev_gateway::infra::ensure_feed(&events, &sqs, &bus, &format!("changes-{}", std::process::id()))
        .await
        .expect("bus");
    refs.insert("ChangeBus".into(), bus);
    for (parameter, value) in [("WebhookSecretsName", crate::SECRET), ("PublisherApiKeyName", "sk_local")] {
        let name = format!("stacc-social/{parameter}-{suffix}");
        put_secret(&moto, &name, value).await.expect("secret in moto");
        refs.insert(parameter.to_owned(), name);
    }
    stack
        .given_profile(
            PROJECT,
            PROFILE,
            serde_json::json!([live_account("x1", "twitter"), live_account("li1", "linkedin")]),
        )
        .await;
    LocalAccount { dynamodb_endpoint: stack.dynamodb_endpoint.clone(), moto_endpoint: moto, refs }
}

/// The running local stack (`make run`, with its defaults or the same environment variables) as
/// a deployed function would find its AWS account: the table, the retry queue, the simulator, and
/// the webhook secrets and API key stored in moto's Secrets Manager under `stacc-social/local/…`.
pub async fn local_stack() -> Result<LocalAccount, String> {
    let setting = |name: &str, default: &str| {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
    };
    let dynamodb_endpoint =
        setting("AWS_ENDPOINT_URL_DYNAMODB", &format!("http://127.0.0.1:{}", setting("DYNAMODB_PORT", "8000")));
    let moto = setting("AWS_ENDPOINT_URL_SQS", &format!("http://127.0.0.1:{}", setting("MOTO_PORT", "5000")));
    let sdk = dev_gateway::local_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(&moto).build());
    let queue = setting("RETRY_QUEUE_NAME", "stacc-social-retry");
    let retry_url = sqs
        .get_queue_url()
        .queue_name(&queue)
        .send()
        .await
        .map_err(|e| {
            format!(
                "no queue {queue} at {moto}: is `make run` running? ({})",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            )
        })?
        .queue_url
        .unwrap_or_default();
    let mut refs = local_refs(
        &setting("TABLE_NAME", "stacc-social"),
        &retry_url,
        &setting("PUBLISHER_BASE_URL", "http://127.0.0.1:4010/api"),
    );
    for (parameter, variable, default) in [
        ("WebhookSecretsName", "WEBHOOK_SECRETS", "local-webhook-secret"),
        ("PublisherApiKeyName", "PUBLISHER_API_KEY", "sk_local"),
    ] {
        let name = format!("stacc-social/local/{parameter}");
        put_secret(&moto, &name, &setting(variable, default)).await?;
        refs.insert(parameter.to_owned(), name);
    }
    refs.insert("ChangeBus".into(), setting("EVENT_BUS_NAME", "stacc-social"));
    Ok(LocalAccount { dynamodb_endpoint, moto_endpoint: moto, refs })
}

/// A typical invocation of each function after [`prepare`], in an order where each one finds
/// what the ones before it stored, with the status it must answer (the retry worker's batch
/// response is checked by the caller).
pub fn typical_invocation(function: &str) -> (serde_json::Value, u16) {
    let posts = "/projects/{projectId}/posts";
    let project_path = |rest: &str| format!("/projects/{PROJECT}{rest}");
    match function {
        "webhook" => (function_url_event(&account_connected("evt_boot_1", "x1", "twitter"), crate::SECRET), 200),
        "retry-worker" => {
            let body = account_connected("evt_boot_2", "li1", "linkedin").to_string();
            let message =
                serde_json::json!({"event_id": "evt_boot_2", "received_at": "2026-11-25T10:00:01Z", "body": body});
            (sqs_event("arn:aws:sqs:us-east-1:123456789012:retry", &message.to_string()), 0)
        }
        "healthz" => (http_api_event("GET", "/healthz", "/healthz", PROJECT, None), 200),
        // EventBridge Scheduler sends the schedule's input (none here).
        "reconciler" => (serde_json::json!({}), 0),
        "post-history" => (
            http_api_event(
                "GET",
                "/projects/{projectId}/posts/{postId}/history",
                &project_path("/posts/post_boot/history"),
                PROJECT,
                None,
            ),
            200,
        ),
        "change-feed" => (history_stream_event(), 0),
        "connection-history" => (
            http_api_event(
                "GET",
                "/projects/{projectId}/connections/history",
                &project_path("/connections/history"),
                PROJECT,
                None,
            ),
            200,
        ),
        "list-connections" => (
            http_api_event("GET", "/projects/{projectId}/connections", &project_path("/connections"), PROJECT, None),
            200,
        ),
        "refresh-connections" => (
            http_api_event(
                "POST",
                "/projects/{projectId}/connections/refresh",
                &project_path("/connections/refresh"),
                PROJECT,
                None,
            ),
            200,
        ),
        "connect" => (
            http_api_event(
                "POST",
                "/projects/{projectId}/connections/{platform}/connect",
                &project_path("/connections/facebook/connect"),
                PROJECT,
                None,
            ),
            200,
        ),
        "publish-post" => (
            http_api_event(
                "POST",
                posts,
                &project_path("/posts"),
                PROJECT,
                Some(serde_json::json!({"post_id": "post_boot", "content": "Hello", "platforms": ["x", "linkedin"]})),
            ),
            201,
        ),
        "read-post" => (
            http_api_event(
                "GET",
                "/projects/{projectId}/posts/{postId}",
                &project_path("/posts/post_boot"),
                PROJECT,
                None,
            ),
            200,
        ),
        "sync-post" => (
            http_api_event(
                "POST",
                "/projects/{projectId}/posts/{postId}/sync",
                &project_path("/posts/post_boot/sync"),
                PROJECT,
                None,
            ),
            200,
        ),
        "manual-delete" => (
            http_api_event(
                "POST",
                "/projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete",
                &project_path("/posts/post_boot/platforms/x/manual-delete"),
                PROJECT,
                None,
            ),
            200,
        ),
        // Instagram was never connected to the prepared project: the function starts, reads the
        // store and answers its own 404 (the whole flow is `tests/tests/lifecycle.rs`).
        "disconnect" => (
            http_api_event(
                "POST",
                "/projects/{projectId}/connections/{platform}/disconnect",
                &project_path("/connections/instagram/disconnect"),
                PROJECT,
                None,
            ),
            404,
        ),
        // Another project than the prepared one (which the functions after it still read).
        "erase-project" => {
            (http_api_event("DELETE", "/projects/{projectId}", "/projects/proj_gone", "proj_gone", None), 202)
        }
        "project-erasure" => (
            http_api_event("GET", "/projects/{projectId}/erasure", "/projects/proj_gone/erasure", "proj_gone", None),
            200,
        ),
        other => panic!("no typical invocation for {other}"),
    }
}

/// A DynamoDB stream event carrying one history record, as the change feed's mapping delivers it.
pub fn history_stream_event() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("events/dynamodb-history-record.json")).expect("sample");
    serde_json::from_str(&text).expect("JSON")
}

/// Lambda's log-level filter for JSON logs, as its documentation states it: a line is taken at its
/// `level` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, any case) only when it is a JSON object with
/// that `level` and an RFC 3339 `timestamp`; any other line is INFO. Whether a function whose
/// application log level is `threshold` sends `line` to CloudWatch.
pub fn lambda_keeps(line: &str, threshold: &str) -> bool {
    const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |level: &str| ORDER.iter().position(|l| l.eq_ignore_ascii_case(level));
    let parsed: Option<serde_json::Value> = serde_json::from_str(line.trim()).ok();
    let level = parsed
        .as_ref()
        .filter(|v| {
            v["timestamp"]
                .as_str()
                .is_some_and(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok())
        })
        .and_then(|v| v["level"].as_str())
        .and_then(rank)
        .unwrap_or(2);
    level >= rank(threshold).expect("a Lambda log level")
}
