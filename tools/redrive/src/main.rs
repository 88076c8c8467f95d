//! `make redrive`: moves what the retry worker gave up on from the dead-letter queue back to the
//! retry queue, so it is applied again (after fixing whatever made it fail).
//!
//! Usage: `redrive <dead-letter-queue-url> <retry-queue-url> [limit]`. AWS credentials, region and
//! `AWS_ENDPOINT_URL_SQS` come from the standard environment.

use shared::adapters::aws::{self, ClientOptions};
use shared::adapters::sqs::redrive;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to, rest @ ..] = args.as_slice() else {
        return Err("usage: redrive <dead-letter-queue-url> <retry-queue-url> [limit]".into());
    };
    let limit = match rest.first() {
        Some(n) => n.parse().map_err(|_| "limit must be a number")?,
        None => 10_000,
    };
    let sdk = aws::sdk_config().await;
    let moved = redrive(&aws::sqs_client(&sdk, &ClientOptions::default()), from, to, limit).await?;
    println!("moved {moved} message(s) from {from} to {to}");
    Ok(())
}
