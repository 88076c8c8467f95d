//! The local stack for whole-flow tests: a fresh in-memory DynamoDB emulator per test, moto's SQS
//! (and DynamoDB) server once per test process, the dev gateway and the simulator, all on loopback.

use std::collections::HashMap;
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use dev_gateway::infra::{self, Queues};
use dev_gateway::local_dynamo::LocalDynamo;
use dev_gateway::{Gateway, GatewayConfig, PollSettings, local_sdk_config};
use shared::adapters::aws::{self, ClientOptions, RequestTap};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsRetryQueue;
use shared::adapters::zernio::ZernioClient;
use shared::handlers::publishing::Timing;
use shared::signature::WebhookSecrets;
use zernio_sim::{SimConfig, Simulator};

pub mod chaos;
pub mod evidence;
pub mod lambda;

pub const SECRET: &str = "local-webhook-secret";
/// The audience the tests' identity provider issues app tokens for.
pub const JWT_AUDIENCE: &str = "stacc-app";

/// The tests' identity provider's key: one RSA key a process (a key takes a moment to make).
pub fn issuer_key() -> dev_gateway::auth::SigningKey {
    static KEY: OnceLock<dev_gateway::auth::SigningKey> = OnceLock::new();
    KEY.get_or_init(dev_gateway::auth::SigningKey::generate).clone()
}

/// An identity provider on loopback (discovery document, JWKS, tokens), as the app's would be.
pub async fn start_issuer() -> dev_gateway::auth::Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("loopback port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let issuer = dev_gateway::auth::Issuer::new(&url, JWT_AUDIENCE, issuer_key());
    issuer.serve(listener, dev_gateway::auth::DEFAULT_PROJECT_CLAIM);
    issuer
}

/// The workspace root (where `events/`, `template.yaml` and `.venv` are).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// A YAML file of the workspace (`template.yaml`, `openapi.yaml`), parsed.
pub fn yaml(name: &str) -> serde_norway::Value {
    let text = std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// The SAM template that deploys, parsed: what the tests check the functions and the stack against.
pub fn template() -> serde_norway::Value {
    yaml("template.yaml")
}

static MOTO: OnceLock<String> = OnceLock::new();
/// Keeps the watchdog's stdin open while this process lives; when it exits, moto stops.
static MOTO_WATCHDOG: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// moto's server: `MOTO_ENDPOINT` if given, else one started for this process from `.venv`.
pub fn moto_endpoint() -> String {
    MOTO.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
            return endpoint;
        }
        let bin =
            std::env::var("MOTO_SERVER").unwrap_or_else(|_| root().join(".venv/bin/moto_server").display().to_string());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        // The watchdog lives as long as this process; init reaps it after we exit.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; read _; kill $pid"#)
            .arg(&bin)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (run `make test`, which installs it): {e}"));
        *MOTO_WATCHDOG.lock().expect("watchdog") = child.stdin.take();
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..300 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return format!("http://{addr}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not start on {addr} within 30 s");
    })
    .clone()
}

/// Stops this process's moto early (never needed: it stops when the process exits).
pub fn stop_moto() {
    if let Some(mut stdin) = MOTO_WATCHDOG.lock().ok().and_then(|mut w| w.take()) {
        let _ = stdin.write_all(b"\n");
    }
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Which DynamoDB a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Dynoxide,
    Moto,
}

pub struct Stack {
    pub dynamo: Option<LocalDynamo>,
    pub dynamodb_endpoint: String,
    pub table: String,
    pub queues: Queues,
    pub tap: RequestTap,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: DynamoStore,
    pub gateway: Gateway,
    pub sim: Simulator,
    /// The app's identity provider: its tokens are what the gateway's authorizer takes.
    pub issuer: dev_gateway::auth::Issuer,
    pub http: reqwest::Client,
    /// Between the gateway and DynamoDB, when `StackOptions::faults` asked for it.
    pub faults: Option<fault_proxy::FaultProxy>,
    /// The queue every change-feed event is forwarded to, when `StackOptions::feed` asked for it.
    pub changes_url: Option<String>,
    pub publish_timing: Timing,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub backend: Backend,
    pub secrets: String,
    /// Runs the gateway's retry-queue poller (otherwise tests drive `poll` themselves).
    pub poller: bool,
    /// Puts a fault proxy between the gateway and DynamoDB (`Stack::faults`), with these faults
    /// and this seed to begin with.
    pub faults: Option<(fault_proxy::Faults, u64)>,
    /// Runs the gateway's reconciler schedule (otherwise tests run passes themselves).
    pub reconcile: Option<dev_gateway::Reconcile>,
    /// Runs the change feed: the table's stream to a bus in moto, forwarded to `Stack::changes_url`.
    pub feed: bool,
    /// How long a publish waits for the simulator before answering 202, and the first follow-up's
    /// delay (short here: the simulator's publishes are instant unless a test slows them).
    pub publish_timing: Timing,
    /// The shared budget of the service's API key (`VENDOR_CALLS_PER_MINUTE`).
    pub vendor_calls_per_minute: u32,
    /// Each project's budgets (app-api.md's when not set).
    pub limits: shared::config::Limits,
    /// How long history is kept and shown (the template's default when not set).
    pub history_retention: shared::domain::history::Retention,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Dynoxide,
            secrets: SECRET.to_owned(),
            poller: false,
            faults: None,
            reconcile: None,
            feed: false,
            publish_timing: Timing { wait: Duration::from_secs(3), follow_up_seconds: 1 },
            // Generous, so that tests of other things never meet it; the budget's own tests set it.
            vendor_calls_per_minute: 12_000,
            limits: shared::config::Limits::default(),
            history_retention: Default::default(),
        }
    }
}

/// Every whole-flow test on a stack ends with at most one post on the service per publication:
/// the simulator counts a second post carrying the same publication's metadata.
impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let twice = self.sim.shared.stats()["duplicate_publications"].as_u64().unwrap_or(0);
            assert_eq!(twice, 0, "{twice} publication(s) reached the service as a second post");
        }
    }
}

impl Stack {
    pub async fn start() -> Stack {
        Self::with(StackOptions::default()).await
    }

    pub async fn with(options: StackOptions) -> Stack {
        let moto = moto_endpoint();
        let (dynamo, dynamodb_endpoint) = match options.backend {
            Backend::Dynoxide => {
                let local = LocalDynamo::memory().await.expect("embedded DynamoDB");
                let endpoint = local.endpoint();
                (Some(local), endpoint)
            }
            Backend::Moto => (None, moto.clone()),
        };
        let sdk = local_sdk_config().await;
        let tap = RequestTap::new();
        tap.record_evidence(evidence_file());
        let faults = match options.faults {
            Some((faults, seed)) => {
                Some(fault_proxy::FaultProxy::on_loopback(&dynamodb_endpoint, faults, seed).await.expect("fault proxy"))
            }
            None => None,
        };
        let gateway_dynamodb =
            faults.as_ref().map(|proxy| proxy.endpoint()).unwrap_or_else(|| dynamodb_endpoint.clone());
        let dynamo_options =
            ClientOptions { endpoint: Some(dynamodb_endpoint.clone()), tap: Some(tap.clone()), timeouts: None };
        let sqs_options = ClientOptions { endpoint: Some(moto.clone()), tap: Some(tap.clone()), timeouts: None };
        let dynamodb = aws::dynamodb_client(&sdk, &dynamo_options);
        let sqs = aws::sqs_client(&sdk, &sqs_options);
        let table = unique("social");
        infra::ensure_table(&dynamodb, &table).await.expect("table");
        let queues = infra::ensure_queues(&sqs, &unique("retry"), &unique("retry-dlq")).await.expect("queues");
        let sim = Simulator::start(SimConfig::default()).await.expect("simulator");
        let issuer = start_issuer().await;
        let feed = match options.feed {
            false => None,
            true => {
                let bus = unique("bus");
                let events = aws::eventbridge_client(&sdk, &sqs_options);
                let url = infra::ensure_feed(&events, &sqs, &bus, &unique("changes")).await.expect("feed");
                Some((bus, url))
            }
        };
        let gateway = Gateway::start(GatewayConfig {
            listen: "127.0.0.1:0".parse().expect("loopback"),
            dynamodb: ClientOptions { endpoint: Some(gateway_dynamodb), ..dynamo_options.clone() },
            sqs: sqs_options,
            table: table.clone(),
            retry_queue_url: queues.retry_url.clone(),
            secrets: WebhookSecrets::from_list(&options.secrets),
            poll: options
                .poller
                .then(|| PollSettings { visibility_timeout: Some(Duration::from_secs(1)), ..PollSettings::default() }),
            publisher_base_url: sim.api_url(),
            publisher_api_key: "sk_local".into(),
            jwt: issuer.expect(),
            limits: options.limits,
            history_retention: options.history_retention,
            redirect_origins: shared::domain::text::DEFAULT_REDIRECT_ORIGINS.map(str::to_owned).to_vec(),
            budget: shared::domain::budget::Plan::new(options.vendor_calls_per_minute),
            publish_timing: options.publish_timing,
            reconcile: options.reconcile,
            feed: feed.as_ref().map(|(bus, _)| bus.clone()),
            streams: Some(ClientOptions { endpoint: Some(dynamodb_endpoint.clone()), ..Default::default() }),
        })
        .await
        .expect("gateway");
        tap.reset();
        Stack {
            dynamo,
            dynamodb_endpoint,
            store: DynamoStore::new(dynamodb.clone(), &table).with_history_retention(options.history_retention),
            table,
            queues,
            tap,
            dynamodb,
            sqs,
            gateway,
            sim,
            issuer,
            http: reqwest::Client::new(),
            faults,
            changes_url: feed.map(|(_, url)| url),
            publish_timing: options.publish_timing,
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/zernio", self.gateway.url())
    }

    pub fn queue(&self) -> SqsRetryQueue {
        SqsRetryQueue::new(self.sqs.clone(), &self.queues.retry_url)
    }

    pub fn worker(&self) -> shared::wiring::Worker {
        self.worker_on(self.store.clone())
    }

    /// The retry worker on `store` (as `patient_store`), this stack's simulator and queue.
    pub fn worker_on(&self, store: DynamoStore) -> shared::wiring::Worker {
        let publisher = ZernioClient::new(self.sim.api_url(), "sk_local").expect("client");
        shared::wiring::retry_worker(store, (publisher.clone(), publisher), self.queue(), self.publish_timing)
    }

    /// The reconciler handler on this stack's store and simulator, as the schedule invokes it.
    pub fn reconciler(
        &self,
        settings: shared::domain::healing::Settings,
    ) -> shared::handlers::reconciler::Reconciler<
        DynamoStore,
        shared::adapters::zernio::ZernioClient,
        SqsRetryQueue,
        shared::ports::SystemClock,
    > {
        let publisher = shared::adapters::zernio::ZernioClient::new(self.sim.api_url(), "sk_local").expect("client");
        shared::wiring::reconciler(self.store.clone(), publisher, self.queue(), settings)
    }

    /// The reconciler as `reconciler` builds it, its clock `ahead` seconds past the wall clock: a
    /// pass as it runs that much later.
    pub fn reconciler_ahead(
        &self,
        settings: shared::domain::healing::Settings,
        ahead: i64,
    ) -> shared::handlers::reconciler::Reconciler<
        DynamoStore,
        shared::adapters::zernio::ZernioClient,
        SqsRetryQueue,
        Ahead,
    > {
        let r = self.reconciler(settings);
        shared::handlers::reconciler::Reconciler {
            store: r.store,
            publisher: r.publisher,
            queue: r.queue,
            clock: Ahead(ahead),
            settings: r.settings,
            budget: r.budget,
            subscription: r.subscription,
        }
    }

    /// One reconciler pass of at most `budget` that also watches the webhook subscription
    /// delivering to this stack's gateway, read at least every `every_seconds`.
    pub async fn reconcile_watching(
        &self,
        settings: shared::domain::healing::Settings,
        every_seconds: i64,
        budget: Duration,
    ) -> Result<shared::handlers::reconciler::PassReport, shared::ports::StoreError> {
        let watch = shared::domain::subscription::WatchSettings { url: self.webhook_url(), every_seconds };
        aws::as_function("reconciler", self.reconciler(settings).watching(Some(watch)).pass(budget)).await
    }

    /// One reconciler pass of at most `budget`, as the schedule invokes it (its requests credited
    /// to the reconciler function).
    pub async fn reconcile(
        &self,
        settings: shared::domain::healing::Settings,
        budget: Duration,
    ) -> Result<shared::handlers::reconciler::PassReport, shared::ports::StoreError> {
        aws::as_function("reconciler", self.reconciler(settings).pass(budget)).await
    }

    /// Receives one batch from the retry queue and runs the retry worker on it, as the event
    /// source mapping does; failures become visible again after `visibility` seconds.
    pub async fn poll(&self, visibility: u64) -> usize {
        let settings = PollSettings {
            visibility_timeout: Some(Duration::from_secs(visibility)),
            wait: Duration::ZERO,
            ..PollSettings::default()
        };
        dev_gateway::poller::poll_once(&self.sqs, &self.queues.retry_url, &self.worker(), settings).await.expect("poll")
    }

    /// Every item the app's answers rest on, sorted by key, for before/after comparisons: the
    /// project's call budgets and the shared budget's shards are left out (a call to the service
    /// that failed was still a call).
    pub async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = self.all_items().await;
        let key = |i: &HashMap<String, AttributeValue>, name: &str| {
            i.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
        };
        items.retain(|i| !key(i, "sk").starts_with("BUDGET#") && !key(i, "pk").starts_with("BUDGET#"));
        items
    }

    /// Every item in the table, sorted by key.
    /// The stack's store with the patience of a setup instead of the functions' 2 s: for seeding
    /// and measuring large projects, whose writes the emulator slows as its table grows
    /// (DynamoDB's do not). Its requests are counted by the stack's tap.
    pub async fn patient_store(&self) -> DynamoStore {
        let options = ClientOptions {
            endpoint: Some(self.dynamodb_endpoint.clone()),
            tap: Some(self.tap.clone()),
            timeouts: Some(infra::setup_timeouts()),
        };
        DynamoStore::new(aws::dynamodb_client(&local_sdk_config().await, &options), self.table.clone())
    }

    /// Every item of a project, sorted by key: its partition and its profile's.
    pub async fn items_of(&self, project: &str, profile: &str) -> Vec<HashMap<String, AttributeValue>> {
        let ours = |i: &HashMap<String, AttributeValue>| {
            let pk = s(i, "pk").unwrap_or_default();
            pk == format!("PROJECT#{project}") || pk == format!("PROFILE#{profile}")
        };
        let mut items: Vec<_> = self.all_items().await.into_iter().filter(ours).collect();
        items.sort_by_key(|i| (s(i, "pk").unwrap_or_default().to_owned(), s(i, "sk").unwrap_or_default().to_owned()));
        items
    }

    pub async fn all_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out =
                self.dynamodb.scan().table_name(&self.table).set_exclusive_start_key(start).send().await.expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let key = |i: &HashMap<String, AttributeValue>| {
            let s = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (s("pk"), s("sk"))
        };
        items.sort_by_key(key);
        items
    }

    /// Messages waiting in a queue (visible or in flight), as SQS counts them.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        chaos::depth(&self.sqs, url).await
    }

    /// Sends a body signed with `secret` (none: unsigned) to the webhook; returns status and body.
    pub async fn deliver(&self, body: &[u8], secret: Option<&str>) -> (u16, serde_json::Value) {
        let mut request =
            self.http.post(self.webhook_url()).header("content-type", "application/json").body(body.to_vec());
        if let Some(secret) = secret {
            request = request.header("x-zernio-signature", shared::signature::sign(secret, body));
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// Sends an event body (a JSON value) signed with the local secret.
    pub async fn send(&self, event: &serde_json::Value) -> (u16, serde_json::Value) {
        self.deliver(event.to_string().as_bytes(), Some(SECRET)).await
    }
}

/// A usable live account as the service lists it.
pub fn live_account(id: &str, platform: &str) -> serde_json::Value {
    serde_json::json!({"_id": id, "platform": platform, "username": format!("{id}_user"), "isActive": true})
}

/// A sample function-URL event from `events/`.
pub struct Sample {
    pub name: String,
    pub event: serde_json::Value,
}

impl Sample {
    /// The sample from `events/` as it would arrive today (see [`Sample::made_recently`]).
    pub fn load(name: &str) -> Sample {
        Sample::file(name).made_recently()
    }

    /// A signed webhook's `timestamp` moved by [`recent`] and its signature made again with the
    /// local secret it was signed with (the webhook ignores an event made more than 7 days before
    /// it arrives). Any other event as it is.
    pub fn made_recently(mut self) -> Sample {
        let body = self.body();
        let signed = self.header("x-zernio-signature") == Some(shared::signature::sign(SECRET, &body));
        if let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(&body)
            && let Some(stamp) = event["timestamp"].as_str().map(recent)
            && signed
        {
            use base64::Engine;
            event["timestamp"] = serde_json::Value::String(stamp);
            let body = serde_json::to_vec(&event).expect("JSON");
            self.event["headers"]["x-zernio-signature"] = shared::signature::sign(SECRET, &body).into();
            self.event["body"] = match self.event["isBase64Encoded"].as_bool().unwrap_or(false) {
                true => base64::engine::general_purpose::STANDARD.encode(&body).into(),
                false => String::from_utf8(body).expect("UTF-8").into(),
            };
        }
        self
    }

    /// The sample exactly as the file in `events/` holds it.
    pub fn file(name: &str) -> Sample {
        let path = root().join("events").join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Sample { name: name.to_owned(), event: serde_json::from_str(&text).expect("sample is JSON") }
    }

    /// The raw body bytes, decoded from base64 when the sample says so.
    pub fn body(&self) -> Vec<u8> {
        use base64::Engine;
        let body = self.event["body"].as_str().unwrap_or_default();
        if self.event["isBase64Encoded"].as_bool().unwrap_or(false) {
            base64::engine::general_purpose::STANDARD.decode(body).expect("base64 body")
        } else {
            body.as_bytes().to_vec()
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.event["headers"][name].as_str().map(str::to_owned)
    }

    /// Sends the sample as it stands (body and headers) through the gateway.
    pub async fn send(&self, stack: &Stack) -> (u16, serde_json::Value) {
        let mut request = stack.http.post(stack.webhook_url()).body(self.body());
        if let Some(headers) = self.event["headers"].as_object() {
            for (name, value) in headers {
                if let Some(v) = value.as_str() {
                    request = request.header(name.as_str(), v);
                }
            }
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

/// An item's size as DynamoDB bills it: attribute names and values, numbers at about a byte per
/// two digits, a map or list at 3 bytes plus a byte per element.
pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        use AttributeValue as V;
        match v {
            V::S(s) => s.len(),
            V::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
            V::Bool(_) | V::Null(_) => 1,
            V::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>(),
            V::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            V::Ss(ss) => ss.iter().map(String::len).sum(),
            V::Ns(ns) => ns.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// A string attribute of an item.
pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// Just a store on a fresh table, on either emulator, with its request tap; optionally behind a
/// fault proxy (`faults`), as real DynamoDB cancels transactions that touch an item in flight.
pub struct StoreUnderTest {
    pub store: DynamoStore,
    pub tap: RequestTap,
    /// The emulator reached directly (not tapped, no faults), and the store's table there.
    pub direct: aws_sdk_dynamodb::Client,
    pub table: String,
    pub dynamo: Option<LocalDynamo>,
    pub faults: Option<fault_proxy::FaultProxy>,
}

impl StoreUnderTest {
    pub async fn start(backend: Backend) -> StoreUnderTest {
        Self::behind(backend, None).await
    }

    /// The store reaching the emulator through a fault proxy injecting these faults.
    pub async fn behind(backend: Backend, faults: Option<fault_proxy::Faults>) -> StoreUnderTest {
        let (dynamo, endpoint) = match backend {
            Backend::Dynoxide => {
                let local = LocalDynamo::memory().await.expect("embedded DynamoDB");
                let endpoint = local.endpoint();
                (Some(local), endpoint)
            }
            Backend::Moto => (None, moto_endpoint()),
        };
        let tap = RequestTap::new();
        let sdk = local_sdk_config().await;
        let direct =
            aws::dynamodb_client(&sdk, &ClientOptions { endpoint: Some(endpoint.clone()), ..Default::default() });
        let table = unique("store");
        infra::ensure_table(&direct, &table).await.expect("table");
        let faults = match faults {
            Some(faults) => {
                Some(fault_proxy::FaultProxy::on_loopback(&endpoint, faults, 7).await.expect("fault proxy"))
            }
            None => None,
        };
        let endpoint = faults.as_ref().map(|p| p.endpoint()).unwrap_or(endpoint);
        let client = aws::dynamodb_client(
            &sdk,
            &ClientOptions { endpoint: Some(endpoint), tap: Some(tap.clone()), timeouts: None },
        );
        StoreUnderTest { store: DynamoStore::new(client, table.clone()), tap, direct, table, dynamo, faults }
    }

    /// How many conflicts the proxy made (0 without one).
    pub fn conflicts_made(&self) -> u64 {
        self.faults.as_ref().map_or(0, |p| p.stats().injected.get("conflict").copied().unwrap_or(0))
    }
}

impl Stack {
    /// An app token for a project, valid for an hour: RS256, from the stack's identity provider.
    pub fn token(&self, project: &str) -> String {
        self.issuer.token_for(dev_gateway::auth::DEFAULT_PROJECT_CLAIM, project, 3600)
    }

    /// Calls an app route through the gateway; returns status, JSON body and headers.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.gateway.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("gateway answers");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)), headers)
    }

    /// A profile the service and our store both know, with these live accounts on the service.
    pub async fn given_profile(&self, project: &str, profile: &str, accounts: serde_json::Value) {
        use shared::ports::ConnectionStore;
        let control = |method: reqwest::Method, path: String, body: serde_json::Value| {
            let request = self.http.request(method, format!("{}{path}", self.sim.control_url())).json(&body);
            async move { assert!(request.send().await.expect("control API").status().is_success()) }
        };
        control(reqwest::Method::PUT, format!("/control/profiles/{profile}"), serde_json::json!({})).await;
        control(reqwest::Method::PUT, format!("/control/profiles/{profile}/accounts"), accounts).await;
        let (project, profile) =
            (shared::domain::ProjectId::parse(project).unwrap(), shared::domain::ProfileId::parse(profile).unwrap());
        self.store.link_profile(&project, &profile).await.expect("link profile");
    }

    /// A profile with these live accounts, linked to the project, refreshed so every one of them
    /// is recorded connected.
    pub async fn given_connected(&self, project: &str, profile: &str, accounts: serde_json::Value) {
        self.given_profile(project, profile, accounts).await;
        let token = self.token(project);
        let path = format!("/projects/{project}/connections/refresh");
        assert_eq!(self.call(reqwest::Method::POST, &path, Some(&token), None).await.0, 200, "refresh");
    }

    /// Replaces the live accounts of a profile on the service.
    pub async fn set_accounts(&self, profile: &str, accounts: serde_json::Value) {
        let url = format!("{}/control/profiles/{profile}/accounts", self.sim.control_url());
        assert!(self.http.put(url).json(&accounts).send().await.unwrap().status().is_success());
    }

    /// Points the service's webhook at this stack's gateway.
    pub async fn register_webhook(&self) {
        let body = serde_json::json!({"name": "stacc", "url": self.webhook_url(), "secret": SECRET, "isActive": true, "events": []});
        let response = self
            .http
            .post(format!("{}/v1/webhooks/settings", self.sim.api_url()))
            .bearer_auth("sk_local")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Publishing-service calls so far, by route.
    pub fn publisher_calls(&self) -> serde_json::Value {
        self.sim.shared.stats()["calls"].clone()
    }
}

/// Where this test process appends the AWS actions each function's handler made
/// (`target/iam-evidence/`, read by the IAM evidence test that `make test` runs last).
pub fn evidence_file() -> std::path::PathBuf {
    let folder = root().join("target").join("iam-evidence");
    std::fs::create_dir_all(&folder).expect("evidence folder");
    folder.join(format!("{}.txt", std::process::id()))
}

/// A fixed event time moved to yesterday, its time of day kept: events the tests send are always
/// recent (the webhook ignores one made more than 7 days before it arrives), in the same order.
pub fn recent(stamp: &str) -> String {
    let yesterday = now().plus_seconds(-24 * 3600).to_rfc3339();
    format!("{}{}", &yesterday[..10], &stamp[10..])
}

/// An erasure's status (`GET /projects/{projectId}/erasure`) says it ended as an erasure without
/// crash or fault would: erased, each of `accounts` disconnected once, and every one of the
/// `items_before` items counted once but the routing (deleted with the seal), plus the
/// `project.erased` record.
pub fn assert_erased(done: &serde_json::Value, accounts: u64, items_before: u64, context: &str) {
    assert_eq!(done["status"], "erased", "{context}: {done}");
    assert!(done["finished_at"].is_string(), "{context}: {done}");
    assert_eq!(done["accounts_disconnected"], accounts, "{context}: each account once: {done}");
    let items = Some(items_before - 1 + 1);
    assert_eq!(done["items_deleted"].as_u64(), items, "{context}: every item once, and the announcement: {done}");
}

/// The wall clock this many seconds ahead.
#[derive(Debug, Clone, Copy)]
pub struct Ahead(pub i64);

impl shared::ports::Clock for Ahead {
    fn now(&self) -> shared::domain::Timestamp {
        now().plus_seconds(self.0)
    }
}

/// The wall clock, as the functions read it.
pub fn now() -> shared::domain::Timestamp {
    use shared::ports::Clock;
    shared::ports::SystemClock.now()
}

/// What a post webhook reports about one platform's copy of generation `generation`.
pub fn post_report(
    generation: u32,
    platform: shared::domain::Platform,
    status: shared::domain::EntryStatus,
) -> shared::domain::post::PostReport {
    shared::domain::post::PostReport {
        service_post_id: shared::domain::ServicePostId::parse(format!("svc{generation}")).unwrap(),
        generation: Some(generation),
        owner: None,
        cancelled: false,
        published_at: None,
        scheduled_for: None,
        reported_at: shared::domain::Timestamp::from_unix(1),
        default_status: shared::domain::EntryStatus::Queued,
        platforms: vec![shared::domain::post::PlatformReport::bare(platform, status)],
    }
}

/// `n` posts of `project`, each published on X with its history, written by the store directly
/// (as many as a test needs, without the routes' budgets).
pub async fn seed_posts(stack: &Stack, project: &str, n: usize) {
    use shared::domain::post::PlatformEntry;
    use shared::domain::{EntryStatus, Platform, PostId, PostState, ProjectId};
    use shared::ports::{PostChange, PostStore, Source};
    let project = ProjectId::parse(project).unwrap();
    let live = PostState {
        entries: [(
            Platform::X,
            PlatformEntry { url: Some("https://x.com/1".into()), ..PlatformEntry::bare(1, EntryStatus::Published) },
        )]
        .into(),
        ..PostState::default()
    };
    let store = stack.patient_store().await;
    let writes = (0..n).map(|i| {
        let (store, project, live) = (&store, &project, &live);
        async move {
            let post = PostId::parse(format!("post_{i:05}")).unwrap();
            store
                .save_post(project, &post, None, PostChange::new(&Source::Publish, live), now())
                .await
                .expect("seeded");
        }
    });
    // Eight at a time: quick, and well within what the embedded DynamoDB takes at once.
    use futures::StreamExt;
    futures::stream::iter(writes).buffer_unordered(8).collect::<Vec<()>>().await;
}
