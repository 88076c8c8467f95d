//! Webhook receipt behind a Lambda function URL.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let webhook = &wiring::from_env::webhook().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(webhook.handle(request).await) })).await
}
