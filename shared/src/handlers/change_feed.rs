//! The change feed: each history record the table's stream carries is published as an
//! EventBridge event (`Post Status Changed` / `Connection Status Changed`), at least once and, while
//! publishing works, in order; a record that cannot be published is reported by its sequence
//! number, so the stream retries from there (and a poison record ends in the on-failure
//! destination instead of blocking the shard).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::ports::{FeedPublisher, FeedReader};

pub struct ChangeFeed<P> {
    pub publisher: P,
    /// How the store's stream images read as feed events.
    pub read: FeedReader,
}

impl<P: FeedPublisher> ChangeFeed<P> {
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        // The history records of the batch, in stream order, with their sequence numbers.
        let mut records = Vec::new();
        for record in event.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let Some(decoded) = (self.read)(record.change.new_image) else {
                continue; // not a history record (the mapping's filter keeps these out)
            };
            if let Err(e) = &decoded {
                tracing::error!(sequence = %sequence, error = %e, "a history record that cannot be read");
            }
            records.push((sequence, decoded.ok()));
        }
        // Everything from the first record that could not be read or published is reported:
        // the stream retries from there, so what follows keeps its order.
        let readable: Vec<_> = records.iter().map_while(|(_, e)| e.clone()).collect();
        let published = self.publisher.publish(&readable).await;
        let first_failed = published.iter().position(Result::is_err).unwrap_or(readable.len());
        if let Some(Err(e)) = published.get(first_failed) {
            tracing::warn!(error = %e, "an event could not be published; the stream retries from it");
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = records[first_failed..]
            .iter()
            .map(|(sequence, _)| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence.clone());
                failure
            })
            .collect();
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::FeedEvent;

    /// Publishes everything but the events whose id is in `refuse`, and remembers what it got.
    struct Bus {
        refuse: Vec<String>,
        got: Mutex<Vec<FeedEvent>>,
    }

    impl FeedPublisher for Bus {
        async fn publish(&self, events: &[FeedEvent]) -> Vec<Result<(), String>> {
            let mut results = Vec::new();
            for e in events {
                if self.refuse.contains(&e.id) {
                    results.push(Err("refused".into()));
                    break;
                }
                self.got.lock().unwrap().push(e.clone());
                results.push(Ok(()));
            }
            results.resize(events.len(), Err("not sent".into()));
            results
        }
    }

    /// Reads an image `{"sk": "HIST#<id>"}` as the event `<id>`, `{"sk": "HIST#"}` as unreadable,
    /// and anything else as no history record: the handler's order and reporting, not the format.
    fn read(image: serde_dynamo::Item) -> Option<Result<FeedEvent, String>> {
        let value: serde_json::Value = serde_dynamo::from_item(image).ok()?;
        let id = value["sk"].as_str()?.strip_prefix("HIST#")?;
        let event = FeedEvent { id: id.to_owned(), detail_type: "Connection Status Changed", detail: value.clone() };
        Some(if id.is_empty() { Err("unreadable".into()) } else { Ok(event) })
    }

    /// A stream record carrying the n-th history record (or `raw`, if given).
    fn record(n: u64, raw: Option<serde_json::Value>) -> serde_json::Value {
        let image = raw.unwrap_or_else(|| serde_json::json!({"sk": {"S": format!("HIST#r{n}")}}));
        serde_json::json!({"eventID": format!("e{n}"), "eventName": "INSERT", "awsRegion": "us-east-1",
            "eventSource": "aws:dynamodb",
            "dynamodb": {"SequenceNumber": format!("{n:05}"), "SizeBytes": 100, "StreamViewType": "NEW_IMAGE",
                         "Keys": {}, "NewImage": image}})
    }

    fn batch(records: Vec<serde_json::Value>) -> Event {
        serde_json::from_value(serde_json::json!({"Records": records})).unwrap()
    }

    fn failures(response: &DynamoDbEventResponse) -> Vec<String> {
        response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect()
    }

    #[tokio::test]
    async fn every_record_is_published_in_order_as_its_detail_type() {
        let feed = ChangeFeed { publisher: Bus { refuse: vec![], got: Mutex::new(vec![]) }, read };
        let other = serde_json::json!({"sk": {"S": "POST#p"}});
        let response =
            feed.handle(batch(vec![record(1, None), record(9, Some(other)), record(2, None), record(3, None)])).await;
        assert!(failures(&response).is_empty());
        let got = feed.publisher.got.lock().unwrap().clone();
        assert_eq!(got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ["r1", "r2", "r3"]);
    }

    #[tokio::test]
    async fn one_record_that_cannot_be_published_is_reported_and_the_ones_before_it_are_published() {
        let feed = ChangeFeed { publisher: Bus { refuse: vec!["r3".into()], got: Mutex::new(vec![]) }, read };
        let response = feed.handle(batch((1..=5).map(|n| record(n, None)).collect())).await;
        // The stream retries from the failed one; what follows it is sent again then, in order.
        assert_eq!(failures(&response), ["00003", "00004", "00005"]);
        assert_eq!(feed.publisher.got.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_read_is_reported_not_skipped() {
        let feed = ChangeFeed { publisher: Bus { refuse: vec![], got: Mutex::new(vec![]) }, read };
        let poison = serde_json::json!({"pk": {"S": "PROJECT#p"}, "sk": {"S": "HIST#"}});
        let response = feed.handle(batch(vec![record(1, None), record(2, Some(poison)), record(3, None)])).await;
        assert_eq!(failures(&response), ["00002", "00003"]);
        assert_eq!(feed.publisher.got.lock().unwrap().len(), 1);
    }
}
