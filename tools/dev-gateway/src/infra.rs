//! The table and queues, defined once here for the local stack and checked against
//! `template.yaml` by a test, so what runs locally is what deploys.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::adapters::dynamo::index;

pub struct TableDefinition {
    pub hash_key: &'static str,
    pub range_key: &'static str,
    pub ttl_attribute: &'static str,
}

/// The one table: string `pk`/`sk`, on-demand, TTL on `expires_at`, and the reconciler's sparse
/// index (`shared::adapters::dynamo::index`: string hash, number range, two attributes projected).
pub const TABLE: TableDefinition = TableDefinition { hash_key: "pk", range_key: "sk", ttl_attribute: "expires_at" };

pub struct QueueDefinition {
    pub visibility_timeout_seconds: u32,
    pub message_retention_seconds: u32,
    /// Any body the webhook accepts (1 MiB) fits in one message.
    pub maximum_message_size: u32,
}

/// The retry queue: visibility 6x the retry worker's 60-second timeout, 14 days of retention.
pub const RETRY_QUEUE: QueueDefinition = QueueDefinition {
    visibility_timeout_seconds: 360,
    message_retention_seconds: 1_209_600,
    maximum_message_size: 1_048_576,
};
/// Where a message lands after `MAX_RECEIVE_COUNT` failed receives, kept 14 days.
pub const DEAD_LETTER_QUEUE: QueueDefinition = QueueDefinition {
    visibility_timeout_seconds: 30,
    message_retention_seconds: 1_209_600,
    maximum_message_size: 1_048_576,
};
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Timeouts for setting the stand-ins up (tables, queues, the bus): not on any request path, so a
/// slow start on a busy machine waits instead of failing.
pub fn setup_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(10))
        .operation_timeout(std::time::Duration::from_secs(30))
        .build()
}

#[derive(Debug, Clone)]
pub struct Queues {
    pub retry_url: String,
    pub dead_letter_url: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Creates the table unless it exists (a restart of `make run` keeps its data).
pub async fn ensure_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), BoxError> {
    let tables = client.list_tables().send().await?;
    if tables.table_names().iter().any(|t| t == name) {
        return upgrade_table(client, name).await;
    }
    let attention = attention_index()?;
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(TABLE.hash_key, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(TABLE.range_key, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(index::HASH, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(index::RANGE, ScalarAttributeType::N)?)
        .key_schema(key(TABLE.hash_key, KeyType::Hash)?)
        .key_schema(key(TABLE.range_key, KeyType::Range)?)
        .global_secondary_indexes(attention)
        .stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewImage).build()?,
        )
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name(TABLE.ttl_attribute).enabled(true).build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates the retry queue and its dead-letter queue (idempotent: SQS returns existing ones).
pub async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    retry_name: &str,
    dead_letter_name: &str,
) -> Result<Queues, BoxError> {
    let dead_letter_url = client
        .create_queue()
        .queue_name(dead_letter_name)
        .set_attributes(Some(attributes(&DEAD_LETTER_QUEUE, None)))
        .send()
        .await?
        .queue_url
        .ok_or("no dead-letter queue url")?;
    let dead_letter_arn = queue_arn(client, &dead_letter_url).await?;
    let retry_url = client
        .create_queue()
        .queue_name(retry_name)
        .set_attributes(Some(attributes(&RETRY_QUEUE, Some(&dead_letter_arn))))
        .send()
        .await?
        .queue_url
        .ok_or("no retry queue url")?;
    Ok(Queues { retry_url, dead_letter_url })
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, BoxError> {
    let attributes =
        client.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await?;
    Ok(attributes.attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).ok_or("no queue arn")?)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, BoxError> {
    Ok(AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build()?)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, aws_sdk_dynamodb::error::BuildError> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build()
}

/// The reconciler's sparse index.
fn attention_index() -> Result<GlobalSecondaryIndex, BoxError> {
    let projection = Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(index::PROJECTED.iter().map(|a| a.to_string()).collect()))
        .build();
    Ok(GlobalSecondaryIndex::builder()
        .index_name(index::NAME)
        .key_schema(key(index::HASH, KeyType::Hash)?)
        .key_schema(key(index::RANGE, KeyType::Range)?)
        .projection(projection)
        .build()?)
}

/// A table `make run` created before the index or the stream existed gets them (its data kept).
async fn upgrade_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), BoxError> {
    use aws_sdk_dynamodb::types::{CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate};
    let table = client.describe_table().table_name(name).send().await?.table.ok_or("no table")?;
    if !table.global_secondary_indexes().iter().any(|i| i.index_name() == Some(index::NAME)) {
        let gsi = attention_index()?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(index::NAME)
            .set_key_schema(Some(gsi.key_schema().to_vec()))
            .set_projection(gsi.projection().cloned())
            .build()?;
        client
            .update_table()
            .table_name(name)
            .attribute_definitions(attribute(index::HASH, ScalarAttributeType::S)?)
            .attribute_definitions(attribute(index::RANGE, ScalarAttributeType::N)?)
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await?;
    }
    if table.latest_stream_arn().is_none() {
        let stream =
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::NewImage).build()?;
        client.update_table().table_name(name).stream_specification(stream).send().await?;
    }
    Ok(())
}

/// The table's stream (the change feed reads it).
pub async fn stream_arn(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, BoxError> {
    let described = client.describe_table().table_name(table).send().await?;
    Ok(described.table.and_then(|t| t.latest_stream_arn).ok_or("the table has no stream")?)
}

/// The change feed's bus, and (as `make run` sets it up) a rule forwarding every event on it to
/// the queue `changes_queue`, whose URL it returns (idempotent).
pub async fn ensure_feed(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    changes_queue: &str,
) -> Result<String, BoxError> {
    if events.describe_event_bus().name(bus).send().await.is_err() {
        events.create_event_bus().name(bus).send().await?;
    }
    let url = sqs.create_queue().queue_name(changes_queue).send().await?.queue_url.ok_or("no changes queue url")?;
    let arn = queue_arn(sqs, &url).await?;
    let rule = format!("{bus}-to-{changes_queue}");
    let pattern = serde_json::json!({"source": [shared::ports::FEED_SOURCE]}).to_string();
    events.put_rule().name(&rule).event_bus_name(bus).event_pattern(pattern).send().await?;
    let target = aws_sdk_eventbridge::types::Target::builder().id("changes").arn(arn).build()?;
    events.put_targets().rule(&rule).event_bus_name(bus).targets(target).send().await?;
    Ok(url)
}

fn attributes(queue: &QueueDefinition, dead_letter_arn: Option<&str>) -> HashMap<QueueAttributeName, String> {
    let mut attributes = HashMap::from([
        (QueueAttributeName::VisibilityTimeout, queue.visibility_timeout_seconds.to_string()),
        (QueueAttributeName::MessageRetentionPeriod, queue.message_retention_seconds.to_string()),
        (QueueAttributeName::MaximumMessageSize, queue.maximum_message_size.to_string()),
    ]);
    if let Some(arn) = dead_letter_arn {
        attributes.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT}).to_string(),
        );
    }
    attributes
}
