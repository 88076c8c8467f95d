//! DynamoDB Streams → Lambda for the change feed, locally: reads the embedded DynamoDB's stream
//! (dynoxide serves `DescribeStream`, `GetShardIterator` and `GetRecords` on its DynamoDB port),
//! hands history records to the same `change-feed` handler as a stream event with the mapping's
//! filter applied, and, like the event source mapping, starts again at the first record the
//! handler reported failed.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Value, json};
use shared::adapters::dynamo::history;
use shared::adapters::eventbridge::EventBridgeFeed;
use shared::handlers::change_feed::ChangeFeed;
use tokio::sync::watch;

/// How long the reader waits between reads of an idle stream.
const IDLE: Duration = Duration::from_millis(200);

/// A stream attribute value as DynamoDB's JSON (what a Lambda stream event carries).
fn json_of(value: &AttributeValue) -> Value {
    use base64::Engine;
    let b64 =
        |b: &aws_sdk_dynamodbstreams::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect::<serde_json::Map<_, _>>()})
        }
        AttributeValue::L(l) => json!({"L": l.iter().map(json_of).collect::<Vec<_>>()}),
        AttributeValue::Ss(ss) => json!({"SS": ss}),
        AttributeValue::Ns(ns) => json!({"NS": ns}),
        AttributeValue::Bs(bs) => json!({"BS": bs.iter().map(b64).collect::<Vec<_>>()}),
        _ => json!({"NULL": true}),
    }
}

fn image(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), json_of(v))).collect())
}

/// The mapping's filter: only history records.
fn is_history(record: &Record) -> bool {
    let sk = record.dynamodb.as_ref().and_then(|d| d.new_image.as_ref()).and_then(|i| i.get("sk"));
    matches!(sk, Some(AttributeValue::S(sk)) if sk.starts_with(history::PREFIX))
}

fn lambda_record(record: &Record) -> Value {
    let change = record.dynamodb.as_ref();
    json!({
        "eventID": record.event_id, "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": change.and_then(|c| c.keys.as_ref()).map(image).unwrap_or_default(),
            "NewImage": change.and_then(|c| c.new_image.as_ref()).map(image).unwrap_or_default(),
            "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
            "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or(0),
            "StreamViewType": "NEW_IMAGE",
        }
    })
}

/// Reads the table's stream from now on until `stopped`, feeding history records to `feed`.
pub async fn run(
    streams: Client,
    stream_arn: String,
    feed: ChangeFeed<EventBridgeFeed>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut positions: HashMap<String, Option<String>> = HashMap::new(); // shard → next iterator
    loop {
        if *stopped.borrow() {
            return;
        }
        let shards = match streams.describe_stream().stream_arn(&stream_arn).send().await {
            Ok(out) => out.stream_description.and_then(|d| d.shards).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e), "stream unreadable");
                Vec::new()
            }
        };
        let mut read_any = false;
        for shard in shards {
            let Some(shard_id) = shard.shard_id else { continue };
            let iterator = match positions.get(&shard_id).cloned() {
                Some(Some(iterator)) => Some(iterator),
                Some(None) => continue, // closed and read to its end
                None => streams
                    .get_shard_iterator()
                    .stream_arn(&stream_arn)
                    .shard_id(&shard_id)
                    .shard_iterator_type(ShardIteratorType::Latest)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.shard_iterator),
            };
            let Some(iterator) = iterator else { continue };
            let Ok(out) = streams.get_records().shard_iterator(&iterator).send().await else {
                positions.remove(&shard_id);
                continue;
            };
            let records = out.records.unwrap_or_default();
            let history: Vec<&Record> = records.iter().filter(|r| is_history(r)).collect();
            let mut next = out.next_shard_iterator;
            if !history.is_empty() {
                read_any = true;
                let event = json!({"Records": history.iter().map(|r| lambda_record(r)).collect::<Vec<_>>()});
                let event = serde_json::from_value(event).expect("a stream event");
                let response = shared::adapters::aws::as_function("change-feed", feed.handle(event)).await;
                // Like the event source mapping: start again at the first failed record.
                if let Some(first) = response.batch_item_failures.first().and_then(|f| f.item_identifier.clone()) {
                    next = streams
                        .get_shard_iterator()
                        .stream_arn(&stream_arn)
                        .shard_id(&shard_id)
                        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                        .sequence_number(first)
                        .send()
                        .await
                        .ok()
                        .and_then(|o| o.shard_iterator)
                        .or(Some(iterator));
                }
            }
            positions.insert(shard_id, next);
        }
        if !read_any {
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(IDLE) => {}
            }
        }
    }
}
