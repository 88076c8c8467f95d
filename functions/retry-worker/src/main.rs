//! Applies queued webhook events; SQS event source with `ReportBatchItemFailures`.
#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::handlers::retry;
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let worker = &wiring::from_env::retry_worker().await?;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = retry::deadline(event.context.deadline);
        Ok::<_, Error>(worker.handle_until(event.payload, Some(deadline)).await)
    }))
    .await
}
