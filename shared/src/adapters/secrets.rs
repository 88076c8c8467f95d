//! Secrets from AWS Secrets Manager. Functions are given a secret's name (never its value) in
//! their environment and read it once, at start-up.

use aws_config::SdkConfig;

#[derive(Debug, thiserror::Error)]
#[error("secret {id}: {reason}")]
pub struct SecretError {
    pub id: String,
    pub reason: String,
}

/// Reads secret strings by name or ARN.
#[derive(Debug, Clone)]
pub struct SecretReader {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretReader {
    pub fn new(config: &SdkConfig) -> Self {
        Self { client: super::aws::secretsmanager_client(config, &Default::default()) }
    }

    /// The current value of a string secret.
    pub async fn read(&self, id: &str) -> Result<String, SecretError> {
        let error = |reason: String| SecretError { id: id.to_owned(), reason };
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| error(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
        out.secret_string.filter(|s| !s.trim().is_empty()).ok_or_else(|| error("has no string value".into()))
    }
}
