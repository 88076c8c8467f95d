//! The dev gateway as its own process, for the tests that kill it (`make run` runs the same code).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    dev_gateway::standalone::run().await
}
