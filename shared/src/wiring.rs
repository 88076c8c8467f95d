//! How each Lambda binary builds its ports from configuration: once per process, at start-up,
//! failing with the name of anything missing.

use crate::adapters::aws;
use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sqs::SqsRetryQueue;
use crate::adapters::zernio::ZernioClient;
use crate::config::{self, ConfigError};
use crate::handlers::connections::Connections;
use crate::handlers::posts::Posts;
use crate::handlers::retry::RetryWorker;
use crate::handlers::webhook::Webhook;
use crate::ports::{NoPublisher, SystemClock};

fn store(sdk: &aws_config::SdkConfig) -> Result<DynamoStore, ConfigError> {
    Ok(DynamoStore::new(aws::dynamodb_client(sdk, &Default::default()), config::table_name()?))
}

pub async fn webhook() -> Result<Webhook<DynamoStore, SqsRetryQueue, SystemClock>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(Webhook {
        store: store(&sdk)?,
        queue: SqsRetryQueue::new(aws::sqs_client(&sdk, &Default::default()), config::retry_queue_url()?),
        clock: SystemClock,
        secrets: config::webhook_keys(&sdk).await?,
    })
}

pub async fn retry_worker() -> Result<RetryWorker<DynamoStore>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(RetryWorker { store: store(&sdk)? })
}

pub async fn connections() -> Result<Connections<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(Connections { store: store(&sdk)?, publisher: config::publisher(&sdk).await?, clock: SystemClock })
}

pub async fn posts() -> Result<Posts<DynamoStore, ZernioClient, SystemClock>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(Posts { store: store(&sdk)?, publisher: config::publisher(&sdk).await?, clock: SystemClock })
}

/// The connection read: the store only (no publishing-service key in its environment).
pub async fn connections_read() -> Result<Connections<DynamoStore, NoPublisher, SystemClock>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(Connections { store: store(&sdk)?, publisher: NoPublisher, clock: SystemClock })
}

/// The post read and the manual delete: the store only.
pub async fn posts_store_only() -> Result<Posts<DynamoStore, NoPublisher, SystemClock>, ConfigError> {
    let sdk = aws::sdk_config().await;
    Ok(Posts { store: store(&sdk)?, publisher: NoPublisher, clock: SystemClock })
}
