//! `make redrive`: moves what the retry worker gave up on from the dead-letter queue back to the
//! retry queue, so it is applied again (after fixing whatever made it fail).
//!
//! Usage: `redrive <dead-letter-queue-url> <retry-queue-url> [limit]`. Credentials come from the
//! caller's standard AWS configuration (environment, profile, SSO), the region from it or else
//! from the queue's URL (`https://sqs.<region>.amazonaws.com/...`); `AWS_ENDPOINT_URL_SQS` points
//! it at a local SQS. An operator's tool, so the SDK's own timeouts, not a function's.

use aws_config::{BehaviorVersion, Region};
use shared::adapters::sqs::redrive;

/// The region an SQS queue URL names, if it is AWS's.
fn region_of(queue_url: &str) -> Option<String> {
    let host = queue_url.strip_prefix("https://")?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if !region.is_empty() && host.contains(".amazonaws.") => Some(region.to_owned()),
        _ => None,
    }
}

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
    let mut sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    if sdk.region().is_none() {
        let region = region_of(from).ok_or("no AWS region configured (set AWS_REGION or a profile's region)")?;
        sdk = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region)).load().await;
    }
    let moved = redrive(&aws_sdk_sqs::Client::new(&sdk), from, to, limit).await?;
    println!("moved {moved} message(s) from {from} to {to}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::region_of;

    #[test]
    fn the_region_is_read_from_an_aws_queue_url_only() {
        assert_eq!(region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/x-dlq").as_deref(), Some("eu-west-1"));
        assert_eq!(region_of("https://sqs.cn-north-1.amazonaws.com.cn/1/q").as_deref(), Some("cn-north-1"));
        assert_eq!(region_of("http://127.0.0.1:5000/123456789012/q"), None);
    }
}
