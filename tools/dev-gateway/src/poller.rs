//! Plays the SQS event source mapping: receives batches, calls the retry-worker handler, deletes
//! what succeeded and leaves the reported failures for redelivery (and, in the end, the DLQ).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use shared::handlers::retry::{FollowUps, RetryWorker};
use shared::ports::{Clock, EventStore};

#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// How long a received message stays hidden; `None` keeps the queue's own setting.
    pub visibility_timeout: Option<Duration>,
    pub wait: Duration,
    pub batch_size: i32,
    /// The retry worker's invocation time, as the template's `Timeout` gives it.
    pub timeout: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: None,
            wait: Duration::from_secs(1),
            batch_size: 10,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Receives one batch and hands it to the worker; returns how many messages it received.
pub async fn poll_once<S: EventStore, C: Clock, F: FollowUps>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    worker: &RetryWorker<S, C, F>,
    settings: PollSettings,
) -> Result<usize, String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(settings.batch_size)
        .wait_time_seconds(settings.wait.as_secs() as i32)
        .set_visibility_timeout(settings.visibility_timeout.map(|d| d.as_secs() as i32))
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let mut event = SqsEvent::default();
    let mut handles = Vec::new();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        record.message_attributes = shared::adapters::sqs::lambda_attributes(m.message_attributes.clone());
        record.event_source = Some("aws:sqs".into());
        event.records.push(record);
        handles.push((m.message_id.clone().unwrap_or_default(), m.receipt_handle.clone().unwrap_or_default()));
    }
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let response = shared::adapters::aws::as_function("retry-worker", worker.handle_until(event, Some(deadline))).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    let done: Vec<DeleteMessageBatchRequestEntry> = handles
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| !failed.contains(&id.as_str()))
        .filter_map(|(i, (_, receipt))| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
        })
        .collect();
    if !done.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(done))
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    }
    Ok(messages.len())
}

/// Polls until `stop` fires.
pub async fn run<S: EventStore, C: Clock, F: FollowUps>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    worker: RetryWorker<S, C, F>,
    settings: PollSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            polled = poll_once(&sqs, &queue_url, &worker, settings) => {
                if let Err(e) = polled {
                    tracing::warn!(error = %e, "retry queue poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
