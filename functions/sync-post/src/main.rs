//! `POST /projects/{projectId}/posts/{postId}/sync`: the authoritative state, joined like a webhook.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let route = &wiring::from_env::sync().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(route.handle(request).await) })).await
}
