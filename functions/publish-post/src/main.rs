//! `POST /projects/{projectId}/posts`: store, then publish or schedule, catching stale connections.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let routes = &wiring::posts().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(routes.publish(request).await) })).await
}
