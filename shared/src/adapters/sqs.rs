//! The retry queue on SQS. A message's body is the verified webhook body exactly as received (so
//! any body the webhook accepts fits in a 1 MiB message); its event id and receipt time travel as
//! message attributes.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::domain::{EventId, Timestamp};
use crate::ports::{FollowUp, FollowUpQueue, QueueError, Queued, RetryMessage, RetryQueue};

const EVENT_ID: &str = "event_id";
const RECEIVED_AT: &str = "received_at";
/// Marks a publish follow-up (its body is the `FollowUp` as JSON).
const KIND: &str = "kind";
const FOLLOW_UP: &str = "follow_up";
/// Marks a step of a project's erasure (its body `{"project": …}`).
const ERASE: &str = "erase";

#[derive(serde::Serialize, serde::Deserialize)]
struct EraseMessage {
    project: crate::domain::ProjectId,
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError(e.to_string()))
}

/// A message as the retry worker receives it: a publish follow-up, or a queued event
/// (`ports::QueueReader`).
pub fn queued(message: &SqsMessage) -> Result<Queued, String> {
    let kind = message.message_attributes.get(KIND).and_then(|a| a.string_value.as_deref());
    if kind == Some(FOLLOW_UP) {
        let body = message.body.as_deref().unwrap_or_default();
        return serde_json::from_str(body).map(Queued::FollowUp).map_err(|e| e.to_string());
    }
    if kind == Some(ERASE) {
        let body = message.body.as_deref().unwrap_or_default();
        return serde_json::from_str::<EraseMessage>(body).map(|m| Queued::Erase(m.project)).map_err(|e| e.to_string());
    }
    retry_message(message).map(Queued::Event)
}

/// A queued event as the retry worker receives it: the body and its attributes; a message written
/// before attributes were used carries the whole `RetryMessage` as JSON in its body.
pub fn retry_message(message: &SqsMessage) -> Result<RetryMessage, String> {
    let body = message.body.clone().unwrap_or_default();
    let attribute = |name: &str| message.message_attributes.get(name).and_then(|a| a.string_value.clone());
    match (attribute(EVENT_ID), attribute(RECEIVED_AT)) {
        (Some(id), Some(at)) => Ok(RetryMessage {
            event_id: EventId::parse(id).map_err(|e| e.to_string())?,
            received_at: Timestamp::parse(&at).ok_or_else(|| format!("received_at is not a time: {at:?}"))?,
            body,
        }),
        _ => serde_json::from_str(&body).map_err(|e| e.to_string()),
    }
}

/// The attributes SQS returns with a received message, as the event source mapping hands them on.
pub fn lambda_attributes(
    attributes: Option<HashMap<String, MessageAttributeValue>>,
) -> HashMap<String, aws_lambda_events::event::sqs::SqsMessageAttribute> {
    attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
            attribute.string_value = value.string_value;
            attribute.data_type = Some(value.data_type);
            (name, attribute)
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct SqsRetryQueue {
    client: Client,
    queue_url: String,
}

impl SqsRetryQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl RetryQueue for SqsRetryQueue {
    async fn enqueue(&self, message: &RetryMessage) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .message_attributes(EVENT_ID, string_attribute(message.event_id.as_str())?)
            .message_attributes(RECEIVED_AT, string_attribute(&message.received_at.to_rfc3339())?)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

impl FollowUpQueue for SqsRetryQueue {
    async fn follow_up(&self, follow_up: &FollowUp, delay_seconds: u64) -> Result<(), QueueError> {
        let body = serde_json::to_string(follow_up).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_seconds.min(900)).unwrap_or(900))
            .message_attributes(KIND, string_attribute(FOLLOW_UP)?)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    async fn erase_step(&self, project: &crate::domain::ProjectId, delay_seconds: u64) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(&EraseMessage { project: project.clone() }).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_seconds.min(900)).unwrap_or(900))
            .message_attributes(KIND, string_attribute(ERASE)?)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

/// Moves every message from a dead-letter queue back to its source queue, bodies and attributes intact, at most
/// `limit` of them; each is deleted from the dead-letter queue only once it is sent. Returns how
/// many moved. (moto has no `StartMessageMoveTask`, and this works against any SQS.)
pub async fn redrive(client: &Client, from: &str, to: &str, limit: usize) -> Result<usize, QueueError> {
    let error = |e: &dyn std::fmt::Display| QueueError(e.to_string());
    let mut moved = 0;
    while moved < limit {
        let batch = client
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(30)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        let messages = batch.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages.into_iter().take(limit - moved) {
            let (Some(body), Some(receipt)) = (message.body, message.receipt_handle) else { continue };
            client
                .send_message()
                .queue_url(to)
                .message_body(body)
                .set_message_attributes(message.message_attributes)
                .send()
                .await
                .map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            client
                .delete_message()
                .queue_url(from)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_from_its_attributes_or_as_the_older_json_envelope() {
        let mut message = SqsMessage::default();
        message.body = Some(r#"{"id":"evt_1","event":"post.published"}"#.into());
        for (name, value) in [(EVENT_ID, "evt_1"), (RECEIVED_AT, "2026-11-30T10:00:00Z")] {
            let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
            attribute.string_value = Some(value.into());
            message.message_attributes.insert(name.into(), attribute);
        }
        let read = retry_message(&message).unwrap();
        assert_eq!(
            (read.event_id.as_str(), read.body.as_str()),
            ("evt_1", r#"{"id":"evt_1","event":"post.published"}"#)
        );
        let older =
            RetryMessage { event_id: read.event_id.clone(), received_at: read.received_at, body: read.body.clone() };
        let mut envelope = SqsMessage::default();
        envelope.body = Some(serde_json::to_string(&older).unwrap());
        assert_eq!(retry_message(&envelope).unwrap(), older);
        envelope.body = Some("not a message".into());
        assert!(retry_message(&envelope).is_err());
    }
}
