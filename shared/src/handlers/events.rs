//! Applying a parsed webhook event: the same code for the webhook and the retry worker.

use crate::domain::Timestamp;
use crate::domain::event::{Action, WebhookEvent};
use crate::ports::{EventStore, Outcome, StoreError};

/// Applies the event to the store. `Deferred` and errors mean "try again later".
pub async fn apply<S: EventStore>(store: &S, event: &WebhookEvent, now: Timestamp) -> Result<Outcome, StoreError> {
    match &event.action {
        Action::Ignore(_) => Ok(Outcome::Ignored),
        Action::Post { project, post, report } => store.apply_post_report(&event.id, project, post, report, now).await,
        Action::Account { profile, news } => store.apply_account_news(&event.id, profile, news, now).await,
    }
}
