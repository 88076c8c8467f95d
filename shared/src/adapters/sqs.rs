//! The retry queue on SQS.

use aws_sdk_sqs::Client;

use crate::ports::{QueueError, RetryMessage, RetryQueue};

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
        let body = serde_json::to_string(message).map_err(|e| QueueError(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

/// Moves every message from a dead-letter queue back to its source queue, bodies intact, at most
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
