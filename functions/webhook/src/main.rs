//! Webhook receipt behind a Lambda function URL.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::adapters::{aws, dynamo::DynamoStore, sqs::SqsRetryQueue};
use shared::handlers::webhook::Webhook;
use shared::{config, ports::SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let sdk = aws::sdk_config().await;
    let webhook = Webhook {
        store: DynamoStore::new(aws::dynamodb_client(&sdk, &Default::default()), config::table_name()?),
        queue: SqsRetryQueue::new(aws::sqs_client(&sdk, &Default::default()), config::retry_queue_url()?),
        clock: SystemClock,
        secrets: config::webhook_secrets()?,
    };
    let webhook = &webhook;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(webhook.handle(request).await) })).await
}
