//! `GET /projects/{projectId}/erasure`: how far a project's erasure is.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let route = &wiring::from_env::erasure_status().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(route.handle(request).await) })).await
}
