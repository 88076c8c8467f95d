//! `POST /projects/{projectId}/posts/{postId}/platforms/{platform}/manual-delete`: "I deleted this myself".
#![recursion_limit = "256"]

use lambda_http::{Error, Request, run, service_fn};
use shared::{config, wiring};

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    let routes = &wiring::posts_store_only().await?;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(routes.manual_delete(request).await) })).await
}
