//! Building AWS clients once, with timeouts that keep a webhook inside the service's 5-second
//! budget, and a request tap that counts (and, in tests, fails) requests on the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

/// The shared SDK configuration: region, credentials and endpoints from the standard
/// environment (`AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` point at local stand-ins).
pub async fn sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`sdk_config`], for callers that add credentials or a region of their own.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(900))
                .operation_timeout(Duration::from_millis(2_000))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// What a caller may add to a client: another endpoint, a request tap.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub endpoint: Option<String>,
    pub tap: Option<RequestTap>,
    /// Replaces the request-path timeouts (a long-polling receive needs longer ones).
    pub timeouts: Option<TimeoutConfig>,
}

/// One builder for every SDK client: each crate has its own `Config` type with the same methods.
macro_rules! client {
    ($sdk:ident, $config:expr, $options:expr) => {{
        let options: &ClientOptions = $options;
        let mut builder = $sdk::config::Builder::from($config);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if let Some(timeouts) = &options.timeouts {
            builder = builder.timeout_config(timeouts.clone());
        }
        if let Some(tap) = &options.tap {
            builder = builder.interceptor(tap.clone());
        }
        builder = builder.interceptor(XrayCalls);
        $sdk::Client::from_conf(builder.build())
    }};
}

pub fn dynamodb_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_dynamodb::Client {
    client!(aws_sdk_dynamodb, config, options)
}

pub fn sqs_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_sqs::Client {
    client!(aws_sdk_sqs, config, options)
}

pub fn secretsmanager_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_secretsmanager::Client {
    client!(aws_sdk_secretsmanager, config, options)
}

pub fn eventbridge_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_eventbridge::Client {
    client!(aws_sdk_eventbridge, config, options)
}

#[derive(Debug, Default)]
struct TapState {
    counts: BTreeMap<String, u64>,
    bytes: BTreeMap<String, u64>,
    failing: BTreeSet<String>,
    /// Every (function, IAM action) seen while a function was acting (`as_function`).
    actions: BTreeSet<(String, String)>,
    /// Where each new (function, IAM action) is appended as a line, when set.
    evidence: Option<std::path::PathBuf>,
}

tokio::task_local! {
    /// The function whose handler is running, where one process hosts several (the dev gateway).
    static FUNCTION: &'static str;
}

/// Runs `work` as `function`'s handler: a request tap credits its requests to that function.
pub async fn as_function<F: std::future::Future>(function: &'static str, work: F) -> F::Output {
    FUNCTION.scope(function, work).await
}

/// The IAM actions a request needs, from its `X-Amz-Target` and body: a transaction needs the
/// action of each of its elements (`TransactWriteItems` is no IAM action), and a query of an index
/// is granted on that index (`dynamodb:Query@index/attention`).
pub fn iam_actions(target: &str, body: &[u8]) -> Vec<String> {
    let (prefix, operation) = target.rsplit_once('.').unwrap_or(("", target));
    let service = match prefix {
        p if p.starts_with("DynamoDB") => "dynamodb",
        "AmazonSQS" => "sqs",
        "AWSEvents" => "events",
        "secretsmanager" => "secretsmanager",
        other => other,
    };
    let json = || serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    match operation {
        "TransactWriteItems" | "TransactGetItems" => {
            let items = json()["TransactItems"].as_array().cloned().unwrap_or_default();
            let names = items.iter().filter_map(|item| item.as_object()?.keys().next().cloned());
            let actions: BTreeSet<String> = names
                .map(|element| match element.as_str() {
                    "Put" => "dynamodb:PutItem".to_owned(),
                    "Update" => "dynamodb:UpdateItem".to_owned(),
                    "Delete" => "dynamodb:DeleteItem".to_owned(),
                    "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                    "Get" => "dynamodb:GetItem".to_owned(),
                    other => format!("dynamodb:{other}"),
                })
                .collect();
            actions.into_iter().collect()
        }
        "Query" | "Scan" => match json()["IndexName"].as_str() {
            Some(index) => vec![format!("{service}:{operation}@index/{index}")],
            None => vec![format!("{service}:{operation}")],
        },
        _ => vec![format!("{service}:{operation}")],
    }
}

/// Appends one `function action` line per action to an evidence file, which the IAM test reads.
pub fn append_evidence(file: &std::path::Path, function: &str, actions: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    if actions.is_empty() {
        return Ok(());
    }
    let lines: String = actions.iter().map(|action| format!("{function} {action}\n")).collect();
    std::fs::OpenOptions::new().create(true).append(true).open(file)?.write_all(lines.as_bytes())
}

/// Counts every request attempt sent, and the bytes of their bodies, by operation
/// (`TransactGetItems`, `SendMessage`, ...), and can make chosen operations fail before they are
/// sent, as a lost connection would.
#[derive(Debug, Clone, Default)]
pub struct RequestTap(Arc<Mutex<TapState>>);

#[derive(Debug, thiserror::Error)]
#[error("{0} failed by the request tap")]
struct Tapped(String);

impl RequestTap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|s| s.counts.clone()).unwrap_or_default()
    }

    /// The bytes of the request bodies sent, by operation.
    pub fn bytes(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|s| s.bytes.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut s) = self.0.lock() {
            s.counts.clear();
            s.bytes.clear();
        }
    }

    /// From now on, requests for `operation` fail before they reach the wire.
    pub fn fail(&self, operation: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.failing.insert(operation.to_owned());
        }
    }

    /// Credits every request made while a function acts to it, appending each new (function, IAM
    /// action) to `file` as a line `function action`.
    pub fn record_evidence(&self, file: std::path::PathBuf) {
        if let Ok(mut s) = self.0.lock() {
            s.evidence = Some(file);
        }
    }

    /// The (function, IAM action) pairs seen so far.
    pub fn actions(&self) -> BTreeSet<(String, String)> {
        self.0.lock().map(|s| s.actions.clone()).unwrap_or_default()
    }

    pub fn heal(&self) {
        if let Ok(mut s) = self.0.lock() {
            s.failing.clear();
        }
    }
}

/// Sends every request attempt to X-Ray as a subsegment, when the invocation is traced
/// (`adapters::xray`).
#[derive(Debug, Clone, Copy)]
pub struct XrayCalls;

/// When an attempt began, and its `X-Amz-Target` (the request is gone once it is sent).
#[derive(Debug, Clone)]
struct AttemptStart(f64, String);

impl aws_smithy_types::config_bag::Storable for AttemptStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for XrayCalls {
    fn name(&self) -> &'static str {
        "XrayCalls"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if super::xray::traced() {
            let target = context.request().headers().get("x-amz-target").unwrap_or("AWS.unknown").to_owned();
            cfg.interceptor_state().store_put(AttemptStart(super::xray::now(), target));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let Some(AttemptStart(start, target)) = cfg.load::<AttemptStart>().cloned() else { return Ok(()) };
        let (prefix, operation) = target.rsplit_once('.').unwrap_or(("", &target));
        super::xray::record(super::xray::Call {
            name: super::xray::service_name(prefix).to_owned(),
            namespace: "aws",
            operation: operation.to_owned(),
            start,
            end: super::xray::now(),
            status: context.response().map(|r| r.status().as_u16()),
        });
        Ok(())
    }
}

/// The operation a request is for: DynamoDB and SQS (JSON protocol) name it in `X-Amz-Target`.
fn operation(context: &BeforeTransmitInterceptorContextRef<'_>) -> String {
    let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
    target.rsplit('.').next().unwrap_or(target).to_owned()
}

impl Intercept for RequestTap {
    fn name(&self) -> &'static str {
        "RequestTap"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let op = operation(context);
        let mut state = self.0.lock().map_err(|_| Tapped("lock".into()))?;
        *state.counts.entry(op.clone()).or_default() += 1;
        let body = context.request().body().bytes().unwrap_or_default();
        *state.bytes.entry(op.clone()).or_default() += body.len() as u64;
        if let Ok(function) = FUNCTION.try_with(|f| *f) {
            let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
            let actions = iam_actions(target, body);
            let new: Vec<String> = actions
                .into_iter()
                .filter(|action| state.actions.insert((function.to_owned(), action.clone())))
                .collect();
            if let Some(file) = &state.evidence {
                append_evidence(file, function, &new).map_err(|e| Tapped(e.to_string()))?;
            }
        }
        if state.failing.contains(&op) {
            return Err(Box::new(Tapped(op)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_needs_the_action_of_each_element_and_an_index_query_is_its_own() {
        let body = br#"{"TransactItems":[{"Put":{}},{"Update":{}},{"Put":{}},{"ConditionCheck":{}}]}"#;
        assert_eq!(
            iam_actions("DynamoDB_20120810.TransactWriteItems", body),
            ["dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        );
        assert_eq!(
            iam_actions("DynamoDB_20120810.TransactGetItems", br#"{"TransactItems":[{"Get":{}}]}"#),
            ["dynamodb:GetItem"]
        );
        assert_eq!(
            iam_actions("DynamoDB_20120810.Query", br#"{"TableName":"t","IndexName":"attention"}"#),
            ["dynamodb:Query@index/attention"]
        );
        assert_eq!(iam_actions("DynamoDB_20120810.Query", br#"{"TableName":"t"}"#), ["dynamodb:Query"]);
        assert_eq!(iam_actions("AmazonSQS.SendMessage", b"{}"), ["sqs:SendMessage"]);
        assert_eq!(iam_actions("AWSEvents.PutEvents", b"{}"), ["events:PutEvents"]);
        assert_eq!(iam_actions("secretsmanager.GetSecretValue", b"{}"), ["secretsmanager:GetSecretValue"]);
    }
}
