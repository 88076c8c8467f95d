//! `GET /projects/{projectId}/posts/{postId}/history`: what changed on a post, when and why.
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let route = &wiring::from_env::post_history().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(route.handle(request).await) })).await
}
