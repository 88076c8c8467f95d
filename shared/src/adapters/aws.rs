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
        $sdk::Client::from_conf(builder.build())
    }};
}

pub fn dynamodb_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_dynamodb::Client {
    client!(aws_sdk_dynamodb, config, options)
}

pub fn sqs_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_sqs::Client {
    client!(aws_sdk_sqs, config, options)
}

pub fn eventbridge_client(config: &SdkConfig, options: &ClientOptions) -> aws_sdk_eventbridge::Client {
    client!(aws_sdk_eventbridge, config, options)
}

#[derive(Debug, Default)]
struct TapState {
    counts: BTreeMap<String, u64>,
    bytes: BTreeMap<String, u64>,
    failing: BTreeSet<String>,
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

    pub fn heal(&self) {
        if let Ok(mut s) = self.0.lock() {
            s.failing.clear();
        }
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
        let body = context.request().body().bytes().map_or(0, <[u8]>::len);
        *state.bytes.entry(op.clone()).or_default() += body as u64;
        if state.failing.contains(&op) {
            return Err(Box::new(Tapped(op)));
        }
        Ok(())
    }
}
