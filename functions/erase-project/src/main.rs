//! `DELETE /projects/{projectId}`: the project sealed at once, then erased step by step.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let route = &wiring::from_env::erase().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(route.handle(request).await) })).await
}
