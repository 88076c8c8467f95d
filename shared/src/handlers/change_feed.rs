//! The change feed: each history record the table's stream carries is published as an
//! EventBridge event (`Post Status Changed` / `Connection Status Changed`), at least once and, while
//! publishing works, in order; a record that cannot be published is reported by its sequence
//! number, so the stream retries from there (and a poison record ends in the on-failure
//! destination instead of blocking the shard).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::json;

use crate::adapters::dynamo::{HistoryItem, history};
use crate::ports::{FeedEvent, FeedPublisher};

/// The event source every event carries.
pub const SOURCE: &str = "stacc.social";

pub struct ChangeFeed<P> {
    pub publisher: P,
}

/// The event a record is published as.
pub fn feed_event(record: &HistoryItem) -> FeedEvent {
    let detail_type = if record.kind == "post" { "Post Status Changed" } else { "Connection Status Changed" };
    FeedEvent {
        id: record.id.clone(),
        detail_type,
        detail: json!({
            "id": record.id, "project_id": record.project_id.as_str(),
            "post_id": record.post_id.as_ref().map(|p| p.as_str()), "platform": record.platform,
            "field": record.field, "from": record.from, "to": record.to, "source": record.source,
            "evidence": record.evidence, "at": record.at.to_rfc3339(),
        }),
    }
}

impl<P: FeedPublisher> ChangeFeed<P> {
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        // The history records of the batch, in stream order, with their sequence numbers.
        let mut records: Vec<(String, Option<FeedEvent>)> = Vec::new();
        for record in event.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let image = record.change.new_image;
            let is_record = image.iter().any(|(k, v)| {
                k == "sk" && matches!(v, serde_dynamo::AttributeValue::S(s) if s.starts_with(history::PREFIX))
            });
            if !is_record {
                continue; // not a history record (the mapping's filter keeps these out)
            }
            let decoded = serde_dynamo::from_item::<_, HistoryItem>(image).map(|r| feed_event(&r));
            if let Err(e) = &decoded {
                tracing::error!(sequence = %sequence, error = %e, "a history record that cannot be read");
            }
            records.push((sequence, decoded.ok()));
        }
        // Everything from the first record that could not be read or published is reported:
        // the stream retries from there, so what follows keeps its order.
        let readable: Vec<FeedEvent> = records.iter().map_while(|(_, e)| e.clone()).collect();
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
    use crate::adapters::dynamo::history::{Subject, records};
    use crate::domain::history::{Change, Field, Source};
    use crate::domain::{Platform, ProjectId, Timestamp};

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

    /// A stream record carrying the n-th history record of a connection (or `raw`, if given).
    fn record(n: u64, raw: Option<serde_json::Value>) -> serde_json::Value {
        let change = Change {
            platform: Some(Platform::X),
            field: Field::Status,
            from: Some("connected".into()),
            to: Some("revoked".into()),
        };
        let project = ProjectId::parse("proj_1").unwrap();
        let item = &records(&project, Subject::Connection, &[change], &Source::Refresh, Timestamp::from_unix(1), n)[0];
        let image: serde_dynamo::Item = serde_dynamo::to_item(item).unwrap();
        let image = raw.unwrap_or_else(|| serde_json::to_value(&image).unwrap());
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
        let feed = ChangeFeed { publisher: Bus { refuse: vec![], got: Mutex::new(vec![]) } };
        let response = feed.handle(batch((1..=3).map(|n| record(n, None)).collect())).await;
        assert!(failures(&response).is_empty());
        let got = feed.publisher.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|e| e.detail_type == "Connection Status Changed"));
        assert_eq!(got[0].detail["to"], "revoked");
        assert_eq!(got[0].detail["project_id"], "proj_1");
        assert_eq!(
            got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            ["connection-proj_1-x-1000-1-0", "connection-proj_1-x-1000-2-0", "connection-proj_1-x-1000-3-0"]
        );
    }

    #[tokio::test]
    async fn one_record_that_cannot_be_published_is_reported_and_the_ones_before_it_are_published() {
        let feed = ChangeFeed {
            publisher: Bus { refuse: vec!["connection-proj_1-x-1000-3-0".into()], got: Mutex::new(vec![]) },
        };
        let response = feed.handle(batch((1..=5).map(|n| record(n, None)).collect())).await;
        // The stream retries from the failed one; what follows it is sent again then, in order.
        assert_eq!(failures(&response), ["00003", "00004", "00005"]);
        assert_eq!(feed.publisher.got.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_read_is_reported_not_skipped() {
        let feed = ChangeFeed { publisher: Bus { refuse: vec![], got: Mutex::new(vec![]) } };
        let poison = serde_json::json!({"pk": {"S": "PROJECT#p"}, "sk": {"S": "HIST#CONN#broken"}});
        let response = feed.handle(batch(vec![record(1, None), record(2, Some(poison)), record(3, None)])).await;
        assert_eq!(failures(&response), ["00002", "00003"]);
        assert_eq!(feed.publisher.got.lock().unwrap().len(), 1);
    }
}
