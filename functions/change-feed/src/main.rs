//! Publishes history records from the table's stream to EventBridge; DynamoDB stream event source
//! with `ReportBatchItemFailures`.
#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let feed = &wiring::from_env::change_feed().await?;
    run(service_fn(move |event: LambdaEvent<Event>| async move { Ok::<_, Error>(feed.handle(event.payload).await) }))
        .await
}
