//! `make run`'s gateway (see `dev_gateway::standalone`).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    dev_gateway::standalone::run().await
}
