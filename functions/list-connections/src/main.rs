//! `GET /projects/{projectId}/connections`: the four platforms, behind the JWT authorizer.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let routes = &wiring::connections_read().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(routes.list(request).await) })).await
}
