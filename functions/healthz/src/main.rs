//! `GET /healthz`: liveness, with no authorizer and no dependency to reach.

use lambda_http::{Error, Request, run, service_fn};
use shared::config;
use shared::handlers::http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    config::init_logging();
    run(service_fn(|_: Request| async { Ok::<_, Error>(http::alive()) })).await
}
