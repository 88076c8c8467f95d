//! `POST /projects/{projectId}/connections/{platform}/connect`: the hosted OAuth link, provisioning a profile when needed.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let routes = &wiring::connections().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(routes.connect(request).await) })).await
}
