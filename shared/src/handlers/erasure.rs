//! Erasing a project (lifecycle.md): `DELETE /projects/{projectId}` seals it at once and queues
//! the erasure's steps; `GET /projects/{projectId}/erasure` says how far it is; each step runs on
//! the retry queue, reads what is left, does what `domain::erasure::next_step` says, and queues
//! the next, so a crash between (or inside) steps resumes and ends the same.

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::app::{self, Refusal};
use super::http;
use crate::domain::ProjectId;
use crate::domain::erasure::{Erasure, ITEMS_PER_STEP, Left, Step, next_step};
use crate::metrics::{self, Metric};
use crate::ports::{Clock, ErasureStore, FollowUpQueue, Publisher, PublisherError, SealStore, StoreError};

/// `DELETE /projects/{projectId}`.
pub struct Erase<S, Q, C> {
    pub store: S,
    pub queue: Q,
    pub clock: C,
}

/// `GET /projects/{projectId}/erasure`.
pub struct ErasureStatus<S> {
    pub store: S,
}

/// The erasure's steps, as the retry worker runs them.
pub struct EraseSteps<S, P, Q, C> {
    pub store: S,
    /// Its calls take from the shared budget's user share.
    pub publisher: P,
    pub queue: Q,
    pub clock: C,
}

/// How long a step waits after the service could not be reached or had no room.
const SERVICE_PAUSE_SECONDS: u64 = 60;

/// The erasure as the routes show it.
fn view(erasure: &Erasure) -> Value {
    json!({
        "status": erasure.status(), "since": erasure.since.to_rfc3339(),
        "finished_at": erasure.finished_at.map(|t| t.to_rfc3339()),
        "accounts_disconnected": erasure.accounts_disconnected, "items_deleted": erasure.items_deleted,
    })
}

impl<S: SealStore, Q: FollowUpQueue, C: Clock> Erase<S, Q, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(self.try_erase(&request).await)
    }

    async fn try_erase(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        let project = app::caller(request)?;
        let app::NoFields {} = app::body(request)?;
        let (erasure, _) = self.store.seal(&project, self.clock.now()).await?;
        if erasure.finished_at.is_none() {
            // Every DELETE while erasing queues a step: a repeat brings back a step a lost message
            // took with it (steps read what is left, so two at once only repeat a read).
            if let Err(e) = self.queue.erase_step(&project, 0).await {
                tracing::error!(project = %project, error = %e, "the erasure's step could not be queued; the DELETE may be repeated");
                return Err(Refusal::StoreUnavailable);
            }
        }
        tracing::info!(project = %project, status = erasure.status(), "project sealed for erasure");
        Ok(http::json(202, &view(&erasure)))
    }
}

impl<S: SealStore> ErasureStatus<S> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(
            async {
                let project = app::caller(&request)?;
                match self.store.erasure(&project).await? {
                    Some((erasure, _)) => Ok(http::json(200, &view(&erasure))),
                    None => Err(Refusal::NotFound("This project is not being erased.".into())),
                }
            }
            .await,
        )
    }
}

/// What a step did: its effect landed, or the seal moved meanwhile (another step ran).
enum Did {
    Landed,
    Raced,
}

impl<S: ErasureStore, P: Publisher, Q: FollowUpQueue, C: Clock> EraseSteps<S, P, Q, C> {
    /// One step of `project`'s erasure, then the next queued: `Err` to be delivered again (the
    /// store or the queue failed).
    pub async fn step(&self, project: &ProjectId) -> Result<(), String> {
        let delay = match self.try_step(project).await {
            Ok(true) => 0,
            Ok(false) => return Ok(()),
            Err(Paused(0)) => return Err("the store failed; the step is delivered again".into()),
            Err(Paused(after)) => {
                tracing::warn!(project = %project, after, "erasure paused: the service could not be reached or had no room");
                after
            }
        };
        self.queue.erase_step(project, delay).await.map_err(|e| e.to_string())
    }

    /// `Ok(true)` when there is more to do.
    async fn try_step(&self, project: &ProjectId) -> Result<bool, Paused> {
        let Some((erasure, version)) = self.store.erasure(project).await? else { return Ok(false) };
        let now = self.clock.now();
        match self.act(project, &erasure, version).await {
            Err(Paused(after)) if after > 0 && erasure.keep_alive_due(now) => {
                // Waiting on the service moves nothing: say the chain is alive, so no reconciler
                // pass takes the erasure for stalled and starts a second one.
                if let Err(e) = self.store.save_erasure(project, &erasure.stepped(now), version, false).await {
                    tracing::warn!(project = %project, error = %e, "the erasure's wait could not be recorded");
                }
                Err(Paused(after))
            }
            done => done,
        }
    }

    /// The step `erasure` (at `version`) needs next, done.
    async fn act(&self, project: &ProjectId, erasure: &Erasure, version: u64) -> Result<bool, Paused> {
        let profile = self.store.erased_profile(project).await?;
        let mut left = Left { profile: profile.is_some() && !erasure.profile_deleted, ..Left::default() };
        if let Some(profile) = profile.as_ref().filter(|_| left.profile && erasure.disconnecting.is_empty()) {
            // The live list, not only our records: every account the service holds for the profile.
            match self.publisher.accounts(profile).await? {
                Some(live) => left.live_accounts = live.into_iter().map(|a| a.id).collect(),
                None => left.profile = false, // the service no longer knows the profile
            }
        }
        let mut items = Vec::new();
        if left.live_accounts.is_empty() && erasure.disconnecting.is_empty() && !left.profile {
            items = self.store.items_left(project, ITEMS_PER_STEP).await?;
            left.items = items.len();
        }
        let step = next_step(erasure, &left);
        let mut next = erasure.stepped(self.clock.now());
        let did = match &step {
            Step::Done => return Ok(false),
            Step::Note(accounts) => {
                next.disconnecting = accounts.clone();
                self.save(project, &next, version, false).await?
            }
            Step::Disconnect(accounts) => {
                for account in accounts {
                    self.publisher.disconnect_account(account).await?;
                }
                next.disconnecting.retain(|a| !accounts.contains(a));
                next.accounts_disconnected += accounts.len() as u64;
                self.save(project, &next, version, false).await?
            }
            Step::DeleteProfile => {
                if let Some(profile) = &profile {
                    self.publisher.delete_profile(profile).await?;
                }
                next.profile_deleted = true;
                self.save(project, &next, version, false).await?
            }
            Step::DeleteItems => {
                next.items_deleted += items.len() as u64;
                landed(self.store.delete_items(project, &items, &next, version).await?)
            }
            Step::Announce => {
                next.announced = true;
                self.save(project, &next, version, true).await?
            }
            Step::Finish => {
                next.finished_at = Some(self.clock.now());
                let did = self.save(project, &next, version, false).await?;
                if matches!(did, Did::Landed) {
                    tracing::info!(project = %project, accounts = next.accounts_disconnected, items = next.items_deleted, "project erased");
                    metrics::count(Metric::ProjectsErased, 1);
                    return Ok(false); // the last step: none is queued after it
                }
                did
            }
        };
        if matches!(did, Did::Raced) {
            tracing::info!(project = %project, ?step, "the seal moved meanwhile; the next step reads again");
        }
        Ok(true)
    }

    async fn save(&self, project: &ProjectId, next: &Erasure, version: u64, announce: bool) -> Result<Did, Paused> {
        Ok(landed(self.store.save_erasure(project, next, version, announce).await?))
    }
}

fn landed(ok: bool) -> Did {
    if ok { Did::Landed } else { Did::Raced }
}

/// Why a step stopped short: the store failed (`0`: delivered again), or the service could not
/// be reached or had no room (queued again after this many seconds).
struct Paused(u64);

impl From<StoreError> for Paused {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "erasure step: the store failed");
        Paused(0)
    }
}

impl From<PublisherError> for Paused {
    fn from(e: PublisherError) -> Self {
        match e {
            PublisherError::Busy { retry_after } => Paused(retry_after.max(1)),
            PublisherError::Unavailable { retry_after, .. } => {
                Paused(retry_after.unwrap_or(SERVICE_PAUSE_SECONDS).max(1))
            }
            PublisherError::Refused { status, message, .. } => {
                // A profile still holding an account, a refusal we cannot read: try again later.
                tracing::warn!(status, message, "erasure step refused by the service");
                Paused(SERVICE_PAUSE_SECONDS)
            }
            PublisherError::NeedsOperator { .. } => Paused(SERVICE_PAUSE_SECONDS * 5),
        }
    }
}
