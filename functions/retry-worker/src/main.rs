//! Applies queued webhook events; SQS event source with `ReportBatchItemFailures`.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::{aws, dynamo::DynamoStore};
use shared::config;
use shared::handlers::retry::RetryWorker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let sdk = aws::sdk_config().await;
    let worker =
        RetryWorker { store: DynamoStore::new(aws::dynamodb_client(&sdk, &Default::default()), config::table_name()?) };
    let worker = &worker;
    run(service_fn(
        move |event: LambdaEvent<SqsEvent>| async move { Ok::<_, Error>(worker.handle(event.payload).await) },
    ))
    .await
}
