//! Configuration, read once at start-up; a missing variable stops the process with its name.
//!
//! Secrets never sit in the environment of a deployed function: it is given the *name* of a
//! Secrets Manager secret (`WEBHOOK_SECRETS_SECRET_ID`, `PUBLISHER_API_KEY_SECRET_ID`) and reads
//! the value at start-up. Where no name is given (a local run), the value variables
//! (`WEBHOOK_SECRETS`, `PUBLISHER_API_KEY`) are read instead.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::adapters::secrets::SecretReader;
use crate::domain::limits::Limit;
use crate::reloading::{Reloading, Source};
use crate::signature::{WebhookKeys, WebhookSecrets};

/// A webhook signed with no known secret, or a 401 from the publishing service, reads the secret
/// again at most this often.
pub const SECRET_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

pub fn required(name: &str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError(format!("environment variable {name} is not set"))),
    }
}

/// The table every function uses.
pub fn table_name() -> Result<String, ConfigError> {
    required("TABLE_NAME")
}

pub fn retry_queue_url() -> Result<String, ConfigError> {
    required("RETRY_QUEUE_URL")
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn non_empty(secrets: WebhookSecrets, from: &str) -> Result<WebhookSecrets, ConfigError> {
    if secrets.is_empty() {
        return Err(ConfigError(format!("{from} lists no secret")));
    }
    Ok(secrets)
}

/// A secret read now from Secrets Manager, with a source that reads it again (for rotation).
async fn from_secrets_manager<T: Send + 'static>(
    sdk: &SdkConfig,
    id: String,
    parse: fn(&str) -> T,
) -> Result<(T, Source<T>), ConfigError> {
    let reader = SecretReader::new(sdk);
    let value = reader.read(&id).await.map_err(|e| ConfigError(e.to_string()))?;
    let source: Source<T> = Arc::new(move || {
        let (reader, id) = (reader.clone(), id.clone());
        Box::pin(async move {
            match reader.read(&id).await {
                Ok(value) => Some(parse(&value)),
                Err(e) => {
                    tracing::warn!(error = %e, "a secret could not be read again");
                    None
                }
            }
        })
    });
    Ok((parse(&value), source))
}

/// The webhook signing secrets: from the secret named by `WEBHOOK_SECRETS_SECRET_ID` (read again
/// when a signature matches none of them), else from `WEBHOOK_SECRETS`.
pub async fn webhook_keys(sdk: &SdkConfig) -> Result<WebhookKeys, ConfigError> {
    let Some(id) = optional("WEBHOOK_SECRETS_SECRET_ID") else {
        return Ok(non_empty(WebhookSecrets::from_list(&required("WEBHOOK_SECRETS")?), "WEBHOOK_SECRETS")?.into());
    };
    let (secrets, source) = from_secrets_manager(sdk, id.clone(), WebhookSecrets::from_list).await?;
    Ok(WebhookKeys::reloading(non_empty(secrets, &id)?, SECRET_RELOAD_INTERVAL, source))
}

/// The publishing service's API key: from the secret named by `PUBLISHER_API_KEY_SECRET_ID` (read
/// again when the service answers 401), else from `PUBLISHER_API_KEY`.
pub async fn publisher_api_key(sdk: &SdkConfig) -> Result<Reloading<String>, ConfigError> {
    match optional("PUBLISHER_API_KEY_SECRET_ID") {
        Some(id) => {
            let (key, source) = from_secrets_manager(sdk, id, |k| k.trim().to_owned()).await?;
            Ok(Reloading::new(key, SECRET_RELOAD_INTERVAL, source))
        }
        None => Ok(Reloading::fixed(required("PUBLISHER_API_KEY")?)),
    }
}

/// Structured logs: JSON (as CloudWatch wants) unless `LOG_FORMAT=text`; level from `RUST_LOG`.
/// The level Lambda's logging configuration sets (`AWS_LAMBDA_LOG_LEVEL`) wins over `RUST_LOG`,
/// so a level changed in the console takes effect without a deploy.
pub fn init_logging() {
    init_logging_quieting(&[]);
}

/// `init_logging`, with the crates in `quiet` logging only errors unless the level asked names
/// them: the local stand-ins embedded in the dev gateway (the DynamoDB emulator logs every
/// refused condition, an answer the code asks for, as a WARN).
pub fn init_logging_quieting(quiet: &[&str]) {
    // Lambda's levels are tracing's, with FATAL for the most severe.
    let asked = optional("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase().replace("fatal", "error"))
        .or_else(|| optional("RUST_LOG"))
        .unwrap_or_else(|| "info".to_owned());
    let mut directives = log_filter(&asked);
    for target in quiet.iter().filter(|t| !asked.contains(*t)) {
        directives.push_str(&format!(",{target}=error"));
    }
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter("info")));
    // Colour only for a person at a terminal: a log file or CloudWatch gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    let result = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "text") {
        builder.try_init()
    } else {
        // Lambda filters JSON lines by `level` and reads one without an RFC 3339 `timestamp` as
        // INFO (so dropped at WARN): the subscriber's own time is RFC 3339 in UTC.
        builder.json().flatten_event(true).try_init()
    };
    drop(result); // already initialised (tests, the dev gateway): keep the first
}

/// Crates that log what passes through them at TRACE: the Lambda runtime the raw event (an app
/// request with its JWT, a signed webhook body), the AWS SDK whole requests and responses (a
/// secret's value), the signer its canonical request, the HTTP stack headers and frames.
const BODY_LOGGERS: [&str; 14] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tower",
];

/// The log filter for the level (or `RUST_LOG` directives) asked: as asked, but no crate that
/// logs bodies ever below DEBUG, so no level logs a request body, a JWT, a webhook body or a
/// secret. The caps come last, so they win over a directive that names one of those crates.
pub fn log_filter(asked: &str) -> String {
    let caps: Vec<String> = BODY_LOGGERS.iter().map(|target| format!("{target}=debug")).collect();
    match asked.trim() {
        "" => format!("info,{}", caps.join(",")),
        asked if asked.to_ascii_lowercase().contains("trace") => format!("{asked},{}", caps.join(",")),
        // At DEBUG or less, nothing is raised: a cap never makes a crate more verbose.
        asked => asked.to_owned(),
    }
}

/// The publishing service client: `PUBLISHER_BASE_URL` and the API key.
pub async fn publisher(sdk: &SdkConfig) -> Result<crate::adapters::zernio::ZernioClient, ConfigError> {
    let base_url = required("PUBLISHER_BASE_URL")?;
    crate::adapters::zernio::ZernioClient::with_key(base_url, publisher_api_key(sdk).await?)
        .map_err(|e| ConfigError(format!("publishing service client: {e}")))
}

pub use crate::domain::limits::Limits;

/// `REFRESHES_PER_MINUTE`, `SYNCS_PER_MINUTE`, `PUBLISHES_PER_MINUTE`, `CONNECTS_PER_MINUTE`,
/// `POST_WRITES_PER_MINUTE`, `READS_PER_MINUTE`: each a whole number a minute per project, the contract's when unset.
pub fn limits() -> Result<Limits, ConfigError> {
    let read = |name: &str, default: Limit| -> Result<Limit, ConfigError> {
        match optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map(|per_minute| Limit { per_minute })
                .map_err(|_| ConfigError(format!("{name} must be a whole number a minute, not {raw:?}"))),
        }
    };
    let default = Limits::default();
    Ok(Limits {
        refresh: read("REFRESHES_PER_MINUTE", default.refresh)?,
        sync: read("SYNCS_PER_MINUTE", default.sync)?,
        publish: read("PUBLISHES_PER_MINUTE", default.publish)?,
        connect: read("CONNECTS_PER_MINUTE", default.connect)?,
        post_writes: read("POST_WRITES_PER_MINUTE", default.post_writes)?,
        reads: read("READS_PER_MINUTE", default.reads)?,
    })
}

/// `CONNECT_REDIRECT_ORIGINS`: the comma-separated origins a Connect's `redirect_url` may go to
/// (`http(s)://host[:port]`), the app run locally when unset.
pub fn redirect_origins() -> Result<Vec<String>, ConfigError> {
    use crate::domain::text::{DEFAULT_REDIRECT_ORIGINS, is_origin};
    let Some(raw) = optional("CONNECT_REDIRECT_ORIGINS") else {
        return Ok(DEFAULT_REDIRECT_ORIGINS.map(str::to_owned).to_vec());
    };
    let origins: Vec<String> =
        raw.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect();
    match origins.iter().find(|o| !is_origin(o)) {
        Some(bad) => Err(ConfigError(format!(
            "CONNECT_REDIRECT_ORIGINS must list http(s)://host[:port] origins without a path, not {bad:?}"
        ))),
        None if origins.is_empty() => Err(ConfigError("CONNECT_REDIRECT_ORIGINS lists no origin".into())),
        None => Ok(origins),
    }
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError(format!("{name} must be a whole number, not {raw:?}"))),
    }
}

/// The reconciler's pass: `RECONCILE_GRACE_SECONDS` [600], `RECONCILE_CONNECTIONS_MAX_AGE_SECONDS`
/// [86400], `RECONCILE_MAX_CALLS` [20] (a pass), `RECONCILE_LEASES` [1] (passes side by side).
pub fn healing() -> Result<crate::domain::healing::Settings, ConfigError> {
    let default = crate::domain::healing::Settings::default();
    Ok(crate::domain::healing::Settings {
        grace_seconds: number("RECONCILE_GRACE_SECONDS", default.grace_seconds)?,
        connections_max_age_seconds: number(
            "RECONCILE_CONNECTIONS_MAX_AGE_SECONDS",
            default.connections_max_age_seconds,
        )?,
        max_calls: number("RECONCILE_MAX_CALLS", default.max_calls)?,
        leases: match number("RECONCILE_LEASES", default.leases)? {
            n if crate::domain::healing::leases_allowed(n) => n,
            n => return Err(ConfigError(format!("RECONCILE_LEASES must divide 16 (1, 2, 4, 8 or 16), not {n}"))),
        },
    })
}

/// The shared budget of the API key (capacity.md): `VENDOR_CALLS_PER_MINUTE` [600] (the plan's
/// limit), `BUDGET_READS_PERCENT` [60] and `BUDGET_RECONCILER_PERCENT` [20] (the shares).
pub fn budget_plan() -> Result<crate::domain::budget::Plan, ConfigError> {
    let default = crate::domain::budget::Shares::default();
    let calls: u32 = number("VENDOR_CALLS_PER_MINUTE", 600)?;
    if calls == 0 {
        return Err(ConfigError("VENDOR_CALLS_PER_MINUTE must be at least 1".into()));
    }
    Ok(crate::domain::budget::Plan {
        calls_per_minute: calls,
        shares: crate::domain::budget::Shares {
            reads_percent: number("BUDGET_READS_PERCENT", default.reads_percent)?,
            reconciler_percent: number("BUDGET_RECONCILER_PERCENT", default.reconciler_percent)?,
        },
    })
}

/// How long history is kept: `HISTORY_RETENTION_DAYS` [400; 0 = for ever].
pub fn history_retention() -> Result<crate::domain::history::Retention, ConfigError> {
    let days = number("HISTORY_RETENTION_DAYS", crate::domain::history::Retention::default().days)?;
    Ok(crate::domain::history::Retention { days })
}

/// Our webhook subscription, as the reconciler watches it: `WEBHOOK_PUBLIC_URL` (our endpoint as
/// the service delivers to it; unset or empty: not watched) and `SUBSCRIPTION_CHECK_SECONDS`
/// [900] (how often it is read while nothing is being repaired).
pub fn subscription_watch() -> Result<Option<crate::domain::subscription::WatchSettings>, ConfigError> {
    let url = std::env::var("WEBHOOK_PUBLIC_URL").unwrap_or_default();
    if url.trim().is_empty() {
        return Ok(None);
    }
    let every: i64 = number("SUBSCRIPTION_CHECK_SECONDS", crate::domain::subscription::DEFAULT_CHECK_SECONDS)?;
    if every < 1 {
        return Err(ConfigError("SUBSCRIPTION_CHECK_SECONDS must be at least 1".into()));
    }
    Ok(Some(crate::domain::subscription::WatchSettings { url: url.trim().to_owned(), every_seconds: every }))
}

/// How often the local stack runs a pass: `RECONCILE_INTERVAL_SECONDS` [60; 0 = never].
pub fn reconcile_interval() -> Result<Option<Duration>, ConfigError> {
    let seconds: u64 = number("RECONCILE_INTERVAL_SECONDS", 60)?;
    Ok((seconds > 0).then(|| Duration::from_secs(seconds)))
}

/// How a publish outlasts its request: `PUBLISH_WAIT_SECONDS` [10], `PUBLISH_FOLLOWUP_SECONDS` [60].
pub fn publish_timing() -> Result<crate::handlers::publishing::Timing, ConfigError> {
    let default = crate::handlers::publishing::Timing::default();
    Ok(crate::handlers::publishing::Timing {
        wait: Duration::from_secs(number("PUBLISH_WAIT_SECONDS", default.wait.as_secs())?),
        follow_up_seconds: number("PUBLISH_FOLLOWUP_SECONDS", default.follow_up_seconds)?,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::log_filter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What is logged under the filter for `asked` when the runtime traces a raw event, the SDK
    /// a response, and our own code a line at TRACE.
    fn logged(asked: &str) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(asked)))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "RAW-EVENT-WITH-JWT", "raw JSON event");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", response = "SECRET-VALUE", "received");
            tracing::debug!(target: "lambda_runtime::runtime", "a debug line of the runtime");
            tracing::trace!(target: "shared::handlers", "our own trace line");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn no_level_lets_the_runtime_or_the_sdk_log_bodies_and_our_own_trace_still_shows() {
        for asked in
            ["trace", "TRACE".to_ascii_lowercase().as_str(), "info,lambda_runtime=trace,aws_smithy_runtime=trace"]
        {
            let logs = logged(asked);
            assert!(!logs.contains("RAW-EVENT-WITH-JWT") && !logs.contains("SECRET-VALUE"), "{asked}: {logs}");
        }
        let at_trace = logged("trace");
        assert!(
            at_trace.contains("our own trace line") && at_trace.contains("a debug line of the runtime"),
            "{at_trace}"
        );
        assert!(!logged("info").contains("a debug line of the runtime"), "a cap never raises a crate's level");
    }
}
