//! A DynamoDB wire-protocol proxy on loopback that, at seeded rates and per operation, answers as
//! DynamoDB does under trouble: throttling, an internal error, a transaction cancelled by a
//! conflict, a request applied whose answer is lost, and an answer slower than the client waits.
//!
//! Which request gets which fault is a function of the seed and the request's arrival number, so a
//! run that failed can be replayed with its seed (exactly, when requests arrive in the same order).
//! `GET /__faults` answers what was injected so far; `PUT /__faults` (a spec as the body) changes
//! the faults without a restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::TcpListener;

/// What can go wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// 400 `ProvisionedThroughputExceededException` or `ThrottlingException` (alternately).
    Throttle,
    /// 500 `InternalServerError`.
    Internal,
    /// 400 `TransactionCanceledException` with a `TransactionConflict` reason (transactions only).
    Conflict,
    /// Applied upstream, then the connection is dropped before the answer.
    LostAnswer,
    /// Held past the client's attempt timeout, then applied and answered (to nobody, usually).
    Timeout,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Throttle, Kind::Internal, Kind::Conflict, Kind::LostAnswer, Kind::Timeout];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Throttle => "throttle",
            Kind::Internal => "internal",
            Kind::Conflict => "conflict",
            Kind::LostAnswer => "lost_answer",
            Kind::Timeout => "timeout",
        }
    }

    fn applies_to(self, operation: &str) -> bool {
        self != Kind::Conflict || operation.starts_with("Transact")
    }
}

/// One fault at a rate, for every operation or only the ones named.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: Kind,
    pub rate: f64,
    pub operations: Vec<String>,
}

/// The faults to inject: `throttle:0.1,lost_answer:0.02@PutItem+TransactWriteItems,...`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub rules: Vec<Rule>,
    /// How long a `timeout` fault holds a request (past the client's attempt timeout).
    pub delay: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("`{0}` is not kind:rate (kinds: throttle, internal, conflict, lost_answer, timeout)")]
    Shape(String),
    #[error("`{0}`: the rate must be a number from 0 to 1")]
    Rate(String),
    #[error("the rates add up to {0}, more than 1")]
    Total(f64),
}

pub const DEFAULT_DELAY: Duration = Duration::from_millis(1_500);

impl Faults {
    /// No faults: every request is forwarded.
    pub fn none() -> Faults {
        Faults { rules: Vec::new(), delay: DEFAULT_DELAY }
    }

    /// Transactions (reads and writes) cancelled with `TransactionConflict` at this rate, as
    /// DynamoDB cancels one that touches an item another has in flight.
    pub fn conflicts(rate: f64) -> Faults {
        let operations = vec!["TransactGetItems".to_owned(), "TransactWriteItems".to_owned()];
        Faults { rules: vec![Rule { kind: Kind::Conflict, rate, operations }], delay: DEFAULT_DELAY }
    }

    /// One kind at a rate.
    pub fn only(kind: Kind, rate: f64) -> Faults {
        Faults { rules: vec![Rule { kind, rate, operations: Vec::new() }], delay: DEFAULT_DELAY }
    }

    /// How long a `timeout` fault holds its request.
    pub fn with_delay(self, delay: Duration) -> Faults {
        Faults { delay, ..self }
    }

    pub fn parse(spec: &str) -> Result<Faults, SpecError> {
        let mut rules = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (head, operations) = match part.split_once('@') {
                Some((head, ops)) => (head, ops.split('+').map(|o| o.trim().to_owned()).collect()),
                None => (part, Vec::new()),
            };
            let (name, rate) = head.split_once(':').ok_or_else(|| SpecError::Shape(part.to_owned()))?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name.trim())
                .ok_or_else(|| SpecError::Shape(part.to_owned()))?;
            let rate: f64 = rate.trim().parse().map_err(|_| SpecError::Rate(part.to_owned()))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(SpecError::Rate(part.to_owned()));
            }
            rules.push(Rule { kind, rate, operations });
        }
        let total: f64 = rules.iter().map(|r| r.rate).sum();
        if total > 1.0 + 1e-9 {
            return Err(SpecError::Total(total));
        }
        Ok(Faults { rules, delay: DEFAULT_DELAY })
    }

    /// The fault for the `n`-th request, an `operation`, under `seed`: one draw, the rules in
    /// order as slices of [0, 1), so each rule's rate holds whatever the others are.
    pub fn pick(&self, seed: u64, n: u64, operation: &str) -> Option<Kind> {
        let draw: f64 = StdRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).random();
        let mut edge = 0.0;
        for rule in &self.rules {
            edge += rule.rate;
            if draw < edge {
                let named = rule.operations.is_empty() || rule.operations.iter().any(|o| o == operation);
                return (named && rule.kind.applies_to(operation)).then_some(rule.kind);
            }
        }
        None
    }
}

/// What the proxy has seen and done so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub requests: u64,
    pub injected: BTreeMap<&'static str, u64>,
    pub by_operation: BTreeMap<String, u64>,
}

impl Stats {
    pub fn injected_total(&self) -> u64 {
        self.injected.values().sum()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"requests": self.requests, "injected": self.injected, "by_operation": self.by_operation})
    }
}

struct State {
    upstream: String,
    seed: u64,
    next: AtomicU64,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    client: reqwest::Client,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `listen` (port 0: any free one) and forwards to `upstream` (`http://host:port`).
    pub async fn start(listen: SocketAddr, upstream: &str, faults: Faults, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder().no_proxy().build().map_err(std::io::Error::other)?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            seed,
            next: AtomicU64::new(0),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            client,
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    // A lost answer ends the connection with an error: that is the point.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(FaultProxy { addr, state, task })
    }

    /// On a free loopback port.
    pub async fn on_loopback(upstream: &str, faults: Faults, seed: u64) -> std::io::Result<FaultProxy> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), upstream, faults, seed).await
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.lock().expect("faults") = faults;
    }

    pub fn stats(&self) -> Stats {
        self.state.stats.lock().expect("stats").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the answer was dropped on purpose")]
struct Dropped;

type Answer = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Answer, Dropped> {
    if request.uri().path() == "/__faults" {
        return Ok(control(&state, request).await);
    }
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned();
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else { return Err(Dropped) };
    let n = state.next.fetch_add(1, Ordering::SeqCst);
    let (fault, delay) = {
        let faults = state.faults.lock().expect("faults");
        (faults.pick(state.seed, n, &operation), faults.delay)
    };
    {
        let mut stats = state.stats.lock().expect("stats");
        stats.requests += 1;
        *stats.by_operation.entry(operation.clone()).or_default() += 1;
        if let Some(kind) = fault {
            *stats.injected.entry(kind.name()).or_default() += 1;
        }
    }
    match fault {
        Some(Kind::Throttle) if n.is_multiple_of(2) => Ok(error(
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            None,
        )),
        Some(Kind::Throttle) => Ok(error(
            StatusCode::BAD_REQUEST,
            "com.amazon.coral.availability#ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
            None,
        )),
        Some(Kind::Internal) => Ok(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
            None,
        )),
        Some(Kind::Conflict) => Ok(conflict(&body)),
        Some(Kind::LostAnswer) => {
            let _ = forward(&state, &parts, body).await;
            Err(Dropped)
        }
        Some(Kind::Timeout) => {
            tokio::time::sleep(delay).await;
            forward(&state, &parts, body).await.map_err(|_| Dropped)
        }
        None => forward(&state, &parts, body).await.map_err(|_| Dropped),
    }
}

async fn forward(state: &State, parts: &hyper::http::request::Parts, body: Bytes) -> Result<Answer, reqwest::Error> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = state.client.request(parts.method.clone(), format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await?;
    let mut answer = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
            answer = answer.header(name, value);
        }
    }
    let bytes = response.bytes().await?;
    Ok(answer.body(Full::new(bytes)).expect("a copied answer"))
}

fn error(status: StatusCode, kind: &str, message: &str, reasons: Option<serde_json::Value>) -> Answer {
    let mut body = serde_json::json!({"__type": kind, "message": message});
    if let Some(reasons) = reasons {
        body["CancellationReasons"] = reasons;
    }
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", "FAULTPROXY")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("an error answer")
}

/// A transaction cancelled because another one touched an item: the first item conflicts, the
/// rest say `None`, one reason per item as DynamoDB gives them.
fn conflict(body: &[u8]) -> Answer {
    let items = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1)
        .max(1);
    let reasons: Vec<serde_json::Value> = (0..items)
        .map(|i| match i {
            0 => serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
            _ => serde_json::json!({"Code": "None"}),
        })
        .collect();
    let message = format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict{}]",
        ", None".repeat(items - 1)
    );
    error(
        StatusCode::BAD_REQUEST,
        "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        &message,
        Some(serde_json::Value::Array(reasons)),
    )
}

async fn control(state: &State, request: Request<Incoming>) -> Answer {
    let reply = |status: StatusCode, body: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a control answer")
    };
    if request.method() == hyper::Method::PUT {
        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        match Faults::parse(&String::from_utf8_lossy(&body)) {
            Ok(faults) => *state.faults.lock().expect("faults") = faults,
            Err(e) => return reply(StatusCode::BAD_REQUEST, serde_json::json!({"error": e.to_string()})),
        }
    }
    reply(StatusCode::OK, state.stats.lock().expect("stats").to_json())
}

/// Reads `FAULTS` and `FAULT_SEED` (default: from the clock, printed so a run can be replayed).
pub fn from_env() -> Result<Option<(Faults, u64)>, String> {
    let Some(spec) = std::env::var("FAULTS").ok().filter(|v| !v.trim().is_empty()) else { return Ok(None) };
    let mut faults = Faults::parse(&spec).map_err(|e| format!("FAULTS: {e}"))?;
    if let Ok(ms) = std::env::var("FAULT_DELAY_MS") {
        faults.delay = Duration::from_millis(ms.parse().map_err(|_| "FAULT_DELAY_MS must be milliseconds")?);
    }
    let seed = match std::env::var("FAULT_SEED") {
        Ok(seed) => seed.parse().map_err(|_| "FAULT_SEED must be a number")?,
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    };
    Ok(Some((faults, seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_kinds_rates_and_operations_and_refuses_nonsense() {
        let faults = Faults::parse("throttle:0.1, lost_answer:0.02@PutItem+TransactWriteItems").unwrap();
        assert_eq!(faults.rules.len(), 2);
        assert_eq!(faults.rules[1].operations, vec!["PutItem", "TransactWriteItems"]);
        assert!(matches!(Faults::parse("slow:0.1"), Err(SpecError::Shape(_))));
        assert!(matches!(Faults::parse("throttle:2"), Err(SpecError::Rate(_))));
        assert!(matches!(Faults::parse("throttle:0.6,internal:0.6"), Err(SpecError::Total(_))));
        assert_eq!(Faults::parse("").unwrap().rules, vec![]);
    }

    #[test]
    fn the_same_seed_picks_the_same_faults_and_rates_hold() {
        let faults = Faults::parse("throttle:0.2,internal:0.1").unwrap();
        let run = |seed| (0..10_000).map(|n| faults.pick(seed, n, "PutItem")).collect::<Vec<_>>();
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let picks = run(7);
        let share = |k| picks.iter().filter(|p| **p == Some(k)).count() as f64 / 10_000.0;
        assert!((share(Kind::Throttle) - 0.2).abs() < 0.02, "{}", share(Kind::Throttle));
        assert!((share(Kind::Internal) - 0.1).abs() < 0.02, "{}", share(Kind::Internal));
    }

    #[test]
    fn a_conflict_only_cancels_transactions_and_an_operation_filter_holds() {
        let conflict = Faults::parse("conflict:1").unwrap();
        assert_eq!(conflict.pick(1, 0, "PutItem"), None);
        assert_eq!(conflict.pick(1, 0, "TransactWriteItems"), Some(Kind::Conflict));
        assert_eq!(Faults::conflicts(1.0).pick(1, 0, "TransactGetItems"), Some(Kind::Conflict));
        assert_eq!(Faults::conflicts(1.0).pick(1, 0, "PutItem"), None);
        let only_gets = Faults::parse("internal:1@GetItem").unwrap();
        assert_eq!(only_gets.pick(1, 0, "Query"), None);
        assert_eq!(only_gets.pick(1, 0, "GetItem"), Some(Kind::Internal));
    }
}
