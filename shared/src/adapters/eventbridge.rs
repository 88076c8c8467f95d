//! The change feed's EventBridge bus: `PutEvents` in batches of 10, retrying only the entries
//! EventBridge failed, a few times.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::ports::{FEED_SOURCE as SOURCE, FeedEvent, FeedPublisher};

/// Rounds of retrying the failed entries of a batch.
const ROUNDS: usize = 3;

#[derive(Clone)]
pub struct EventBridgeFeed {
    client: Client,
    bus: String,
}

impl EventBridgeFeed {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    fn entry(&self, event: &FeedEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.detail_type)
            .detail(event.detail.to_string())
            .build()
    }
}

impl FeedPublisher for EventBridgeFeed {
    async fn publish(&self, events: &[FeedEvent]) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Err("not sent".into()); events.len()];
        for (start, batch) in events.chunks(10).enumerate().map(|(i, b)| (i * 10, b)) {
            let mut pending: Vec<usize> = (0..batch.len()).collect();
            for _ in 0..ROUNDS {
                if pending.is_empty() {
                    break;
                }
                let entries = pending.iter().map(|i| self.entry(&batch[*i])).collect();
                match self.client.put_events().set_entries(Some(entries)).send().await {
                    Ok(out) => {
                        let answers = out.entries.unwrap_or_default();
                        let mut still = Vec::new();
                        for (n, i) in pending.iter().enumerate() {
                            match answers.get(n) {
                                Some(a) if a.error_code.is_none() && a.event_id.is_some() => {
                                    results[start + i] = Ok(())
                                }
                                other => {
                                    let why = other.and_then(|a| a.error_message.clone()).unwrap_or_default();
                                    results[start + i] = Err(format!("EventBridge failed the entry: {why}"));
                                    still.push(*i);
                                }
                            }
                        }
                        pending = still;
                    }
                    Err(e) => {
                        let why = aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string();
                        for i in &pending {
                            results[start + i] = Err(why.clone());
                        }
                    }
                }
            }
            if !pending.is_empty() {
                break; // keep the order: nothing after a failed entry is sent
            }
        }
        results
    }
}
