//! The connection routes: read, Refresh, and Connect with profile provisioning.

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::app::{self, Refusal};
use super::http;
use crate::domain::connection::{Disconnect as Decided, disconnect, disconnected};
use crate::domain::healing::expires_soon;
use crate::domain::limits::{CallKind, Limits, Spend};
use crate::domain::refresh::{message, reconcile};
use crate::domain::text::{allowed_redirect, encoded_len, is_http_url};
use crate::domain::{ConnectionStatus, Platform, ProfileId, ProjectId, Timestamp};
use crate::ports::{BudgetStore, Clock, ConnectionStore, Publisher, SealStore, Source, StoredConnection};

/// `GET /projects/{projectId}/connections`: the store only.
pub struct ListConnections<S, C> {
    pub store: S,
    pub clock: C,
    /// The project's budgets (its reads).
    pub limits: Limits,
}

/// `POST /projects/{projectId}/connections/refresh`.
pub struct Refresh<S, P, C> {
    pub store: S,
    pub publisher: P,
    pub clock: C,
    /// The project's budgets.
    pub limits: Limits,
}

/// `POST /projects/{projectId}/connections/{platform}/connect`.
pub struct Connect<S, P, C> {
    pub store: S,
    pub publisher: P,
    pub clock: C,
    /// The project's budgets.
    pub limits: Limits,
    /// The origins a `redirect_url` may go to (`CONNECT_REDIRECT_ORIGINS`).
    pub redirect_origins: Vec<String>,
}

/// `POST /projects/{projectId}/connections/{platform}/disconnect` (lifecycle.md).
pub struct Disconnect<S, P, C> {
    pub store: S,
    pub publisher: P,
    pub clock: C,
    /// The project's budgets (a Disconnect spends a Connect's).
    pub limits: Limits,
}

/// Longest `redirect_url` accepted, in bytes.
pub const MAX_REDIRECT_URL_BYTES: usize = 2048;
/// Rounds of Refresh when a concurrent Connect moves the project's profile under it.
const REFRESH_ROUNDS: usize = 3;

/// The API shape of one platform's connection at `now` (`not_connected` when there is no record).
fn view(platform: Platform, stored: Option<&StoredConnection>, now: Timestamp) -> Value {
    let Some(s) = stored else {
        return json!({
            "platform": platform.api_name(), "status": ConnectionStatus::NotConnected.as_str(),
            "account_id": null, "username": null, "display_name": null, "avatar_url": null,
            "profile_url": null, "needs_reconnect": false, "reason": null, "updated_at": null,
            "token_expires_at": null, "expires_soon": false,
        });
    };
    let v = s.connection.view();
    json!({
        "platform": platform.api_name(), "status": v.status.as_str(), "account_id": v.account_id,
        "username": v.username, "display_name": v.display_name, "avatar_url": v.avatar_url,
        "profile_url": v.profile_url, "needs_reconnect": v.status.needs_reconnect(), "reason": v.reason,
        "updated_at": s.updated_at.to_rfc3339(),
        "token_expires_at": v.token_expires_at.map(Timestamp::to_rfc3339),
        "expires_soon": expires_soon(&s.connection, now),
    })
}

/// All four platforms at `now`, the ones needing a reconnect, and the ones expiring soon.
fn views(stored: &[StoredConnection], now: Timestamp) -> (Vec<Value>, Vec<Platform>, Vec<Platform>) {
    let find = |p: Platform| stored.iter().find(|s| s.connection.platform == p);
    let all = Platform::ALL.iter().map(|p| view(*p, find(*p), now)).collect();
    let needing =
        Platform::ALL.into_iter().filter(|p| find(*p).is_some_and(|s| s.connection.status.needs_reconnect())).collect();
    let expiring =
        Platform::ALL.into_iter().filter(|p| find(*p).is_some_and(|s| expires_soon(&s.connection, now))).collect();
    (all, needing, expiring)
}

/// The body of `POST /projects/{projectId}/connections/{platform}/connect`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    #[serde(default)]
    redirect_url: Option<String>,
}

impl<S: ConnectionStore + BudgetStore + SealStore, C: Clock> ListConnections<S, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer(self.try_list(&request).await)
    }

    async fn try_list(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        let project = app::reader(request, &self.store, &self.limits, self.clock.now()).await?;
        let stored = match self.store.project_profile(&project).await? {
            Some(profile) => self.store.connections(&profile).await?,
            None => Vec::new(),
        };
        let (connections, needing, expiring) = views(&stored, self.clock.now());
        Ok(http::json(
            200,
            &json!({"connections": connections, "needs_reconnect": needing.len(), "expiring_soon": expiring.len()}),
        ))
    }
}

impl<S: ConnectionStore + BudgetStore, P: Publisher, C: Clock> Refresh<S, P, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer_in_time(self.try_refresh(&request)).await
    }

    async fn try_refresh(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        // The seal is read with the profile and the budget.
        let project = app::caller(request)?;
        let app::NoFields {} = app::body(request)?;
        let (profile, budget) = self.store.profile_and_budget(&project, CallKind::Refresh).await?;
        if profile.is_some() {
            app::spend(&self.store, &project, Spend::Refresh, (budget, &self.limits), self.clock.now()).await?;
        }
        let refreshed =
            refresh_project(&self.store, &self.publisher, &self.clock, (&project, profile), &Source::Refresh).await?;
        Ok(match refreshed {
            Refreshed::Connections(saved) => answer(&saved, false, self.clock.now()),
            Refreshed::NoProfile => answer(&[], false, self.clock.now()),
            Refreshed::ProfileReset => answer(&[], true, self.clock.now()),
        })
    }
}

/// What a Refresh found.
pub enum Refreshed {
    /// The connections as stored afterwards.
    Connections(Vec<StoredConnection>),
    /// The project has no profile yet: nothing to check.
    NoProfile,
    /// The service no longer knows the project's profile: it was forgotten.
    ProfileReset,
}

/// One Refresh of a project's connections against the live list (`profile` as the caller read
/// it): the route's and the reconciler's alike (`source` names which).
pub async fn refresh_project<S: ConnectionStore, P: Publisher, C: Clock>(
    store: &S,
    publisher: &P,
    clock: &C,
    (project, mut profile): (&ProjectId, Option<ProfileId>),
    source: &Source,
) -> Result<Refreshed, Refusal> {
    for round in 0..REFRESH_ROUNDS {
        if round > 0 {
            // Read as the first round's caller read it (one `BatchGetItem`): a function that may
            // Refresh needs no other read of the profile.
            profile = store.profile_and_budget(project, CallKind::Refresh).await?.0;
        }
        let Some(profile) = profile.clone() else {
            return Ok(Refreshed::NoProfile);
        };
        let read = store.connections(&profile).await?;
        // The evidence time is when the list was asked for: a webhook stamped meanwhile wins.
        let asked_at = clock.now();
        let (accounts, health) = tokio::join!(publisher.accounts(&profile), publisher.health(&profile));
        let accounts = accounts?;
        // Health is a hint: without it, every account is judged by the list alone.
        let health = health.unwrap_or_else(|e| {
            tracing::warn!(project = %project, error = %e, "health unreadable; judging by the list alone");
            None
        });
        if accounts.as_ref().is_none_or(Vec::is_empty) && !publisher.profile_exists(&profile).await? {
            if store.forget_profile(project, &profile, &read, source, clock.now()).await? {
                tracing::warn!(project = %project, profile = %profile, "the service no longer knows the profile: reset");
                return Ok(Refreshed::ProfileReset);
            }
            // A Connect moved the project (or wrote a connection) meanwhile: read and decide again.
            continue;
        }
        let stored = read.iter().map(|s| (s.connection.platform, s.connection.clone())).collect();
        let evidence = reconcile(&stored, &accounts.unwrap_or_default(), &health.unwrap_or_default(), asked_at);
        let saved = store
            .save_connections(project, &profile, read, evidence.into_values().collect(), source, clock.now())
            .await?;
        tracing::info!(project = %project, profile = %profile, "connections refreshed");
        crate::metrics::count(crate::metrics::Metric::Refreshes, 1);
        return Ok(Refreshed::Connections(saved));
    }
    Err(Refusal::from(crate::ports::StoreError::Contention))
}

impl<S: ConnectionStore + BudgetStore, P: Publisher, C: Clock> Connect<S, P, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer_in_time(self.try_connect(&request)).await
    }

    async fn try_connect(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        // The seal is read with the profile and the budget.
        let project = app::caller(request)?;
        let platform = app::platform(request)?;
        let body: ConnectBody = app::body(request)?;
        let redirect_url = match body.redirect_url.as_deref() {
            None => None,
            Some(url) if is_http_url(url, MAX_REDIRECT_URL_BYTES) => Some(url),
            Some(_) => {
                return Err(Refusal::InvalidRequest(format!(
                    "redirect_url must be an http(s) URL of at most {MAX_REDIRECT_URL_BYTES} bytes."
                )));
            }
        };
        if let Some(url) = redirect_url
            && !allowed_redirect(url, &self.redirect_origins)
        {
            return Err(Refusal::InvalidRequest(format!(
                "redirect_url must start with one of the app's origins: {}.",
                self.redirect_origins.join(", ")
            )));
        }
        if let (Some(url), Some(limit)) = (redirect_url, platform.redirect_limit())
            && encoded_len(url) > limit
        {
            return Err(Refusal::InvalidRequest(format!(
                "redirect_url is {} characters once URL-encoded; {} allows at most {limit}.",
                encoded_len(url),
                platform.display_name()
            )));
        }
        let (profile, budget) = self.store.profile_and_budget(&project, CallKind::Connect).await?;
        app::spend(&self.store, &project, Spend::Connect, (budget, &self.limits), self.clock.now()).await?;
        let (mut profile, reconnect) = match profile {
            Some(profile) => {
                // An expired, revoked or errored connection is refreshed in place on the service.
                let read = self.store.connections(&profile).await?;
                let held = read.iter().find(|s| s.connection.platform == platform);
                let reconnect = held.and_then(|s| s.connection.to_reconnect().cloned());
                (profile, reconnect)
            }
            None => (self.provision(&project).await?, None),
        };
        let mut link = self.publisher.connect_link(platform, &profile, redirect_url, reconnect.as_ref()).await?;
        if link.is_none() {
            // "Profile not found": the service forgot it. Provision a fresh one and ask again, once.
            let read = self.store.connections(&profile).await?;
            // The service forgot the profile: what a Refresh would have found.
            self.store.forget_profile(&project, &profile, &read, &Source::Refresh, self.clock.now()).await?;
            profile = match self.store.project_profile(&project).await? {
                Some(moved) if moved != profile => moved,
                _ => self.provision(&project).await?,
            };
            link = self.publisher.connect_link(platform, &profile, redirect_url, None).await?;
        }
        let auth_url = link.ok_or(Refusal::PublisherUnavailable { retry_after: app::DEFAULT_RETRY_AFTER })?;
        tracing::info!(project = %project, profile = %profile, platform = %platform, "connect link issued");
        Ok(http::json(200, &json!({"auth_url": auth_url, "profile_id": profile.as_str()})))
    }

    async fn provision(&self, project: &ProjectId) -> Result<ProfileId, Refusal> {
        let profile = self.publisher.create_profile(project).await?;
        if !self.store.link_profile(project, &profile).await? {
            tracing::error!(project = %project, profile = %profile, "the service's profile of this name is another project's");
            return Err(Refusal::ProfileConflict);
        }
        tracing::info!(project = %project, profile = %profile, "profile provisioned");
        Ok(profile)
    }
}

impl<S: ConnectionStore + BudgetStore, P: Publisher, C: Clock> Disconnect<S, P, C> {
    pub async fn handle(&self, request: Request) -> Response<Body> {
        app::answer_in_time(self.try_disconnect(&request)).await
    }

    async fn try_disconnect(&self, request: &Request) -> Result<Response<Body>, Refusal> {
        // The seal is read with the profile and the budget.
        let project = app::caller(request)?;
        let platform = app::platform(request)?;
        let app::NoFields {} = app::body(request)?;
        let never = || Refusal::NotFound(format!("{} was never connected to this project.", platform.display_name()));
        let (profile, budget) = self.store.profile_and_budget(&project, CallKind::Connect).await?;
        let Some(profile) = profile else { return Err(never()) };
        let read = self.store.connections(&profile).await?;
        let held = read.iter().find(|s| s.connection.platform == platform);
        let account = match disconnect(held.map(|s| &s.connection)) {
            Decided::NeverConnected => return Err(never()),
            Decided::AlreadyDone => return Ok(http::json(200, &view(platform, held, self.clock.now()))),
            Decided::Delete(account) => account,
        };
        app::spend(&self.store, &project, Spend::Connect, (budget, &self.limits), self.clock.now()).await?;
        if let Some(account) = &account {
            self.publisher.disconnect_account(account).await?;
        }
        let now = self.clock.now();
        let evidence = vec![disconnected(platform, now)];
        let saved = self.store.save_connections(&project, &profile, read, evidence, &Source::Disconnect, now).await?;
        tracing::info!(project = %project, platform = %platform, account = ?account.as_ref().map(|a| a.as_str()), "disconnected");
        let shown = saved.iter().find(|s| s.connection.platform == platform);
        Ok(http::json(200, &view(platform, shown, self.clock.now())))
    }
}

/// The Refresh answer at `now`.
fn answer(stored: &[StoredConnection], profile_reset: bool, now: Timestamp) -> Response<Body> {
    let (connections, needing, expiring) = views(stored, now);
    let message = if profile_reset {
        "The publishing service no longer knows this project's profile: every platform is now not connected. Click Connect on each platform to set it up again.".to_owned()
    } else {
        message(&needing, &expiring)
    };
    http::json(
        200,
        &json!({"connections": connections, "needs_reconnect": needing.len(), "expiring_soon": expiring.len(),
                "profile_reset": profile_reset, "message": message}),
    )
}
