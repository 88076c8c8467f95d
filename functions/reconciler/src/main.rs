//! One reconciler pass per invocation, from an EventBridge Scheduler schedule.
#![recursion_limit = "256"]

use std::time::Duration;

use tokio::time::Instant;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::handlers::retry;
use shared::{config, wiring};

/// The pass ends this long before the function's deadline, leaving time to give the lease back.
const MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let reconciler = &wiring::from_env::reconciler().await?;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = retry::deadline(event.context.deadline);
        let budget = deadline.saturating_duration_since(Instant::now()).saturating_sub(MARGIN);
        let report = reconciler.pass(budget).await?;
        Ok::<_, Error>(report)
    }))
    .await
}
