//! Configuration, read once at start-up; a missing variable stops the process with its name.

use crate::signature::WebhookSecrets;

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

pub fn webhook_secrets() -> Result<WebhookSecrets, ConfigError> {
    let secrets = WebhookSecrets::from_list(&required("WEBHOOK_SECRETS")?);
    if secrets.is_empty() {
        return Err(ConfigError("WEBHOOK_SECRETS lists no secret".into()));
    }
    Ok(secrets)
}

/// Structured logs: JSON (as CloudWatch wants) unless `LOG_FORMAT=text`; level from `RUST_LOG`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let result = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "text") {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).without_time().try_init()
    };
    drop(result); // already initialised (tests, the dev gateway): keep the first
}

/// The publishing service client: `PUBLISHER_BASE_URL` and `PUBLISHER_API_KEY`.
pub fn publisher() -> Result<crate::adapters::zernio::ZernioClient, ConfigError> {
    crate::adapters::zernio::ZernioClient::new(required("PUBLISHER_BASE_URL")?, required("PUBLISHER_API_KEY")?)
        .map_err(|e| ConfigError(format!("publishing service client: {e}")))
}
