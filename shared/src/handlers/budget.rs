//! The shared budget of the API key as every call to the publishing service meets it: a token
//! from a shard before the call (`domain::budget` decides which lanes and shards), and every
//! shard shut when the service answers 429.

use crate::domain::budget::{self, Class, Plan};
use crate::domain::limits::Limited;
use crate::metrics::{self, Metric};
use crate::ports::{Booking, BoxFuture, CallGate, Clock, SharedBudgetStore};

/// How long a caller is told to wait when the budget itself could not be read.
const STORE_DOWN_RETRY_AFTER: u64 = 5;

#[derive(Debug, Clone)]
pub struct SharedBudget<S, C> {
    pub store: S,
    pub clock: C,
    pub plan: Plan,
    /// Whose calls these are (one per function).
    pub class: Class,
}

impl<S: SharedBudgetStore, C: Clock> SharedBudget<S, C> {
    async fn take(&self) -> Result<(), Limited> {
        let now = self.clock.now();
        let mut refused = Vec::with_capacity(budget::TRIES);
        for shard in self.plan.tries(uuid::Uuid::new_v4().as_u64_pair().0) {
            match self.store.take_shared(shard, &self.plan.lanes(self.class, shard), now).await {
                Ok(Ok(())) => {
                    metrics::count(Metric::BudgetCalls, 1);
                    return Ok(());
                }
                Ok(Err(limited)) => refused.push(limited),
                // Not knowing whether there is room, no call goes: the key is everyone's.
                Err(e) => {
                    tracing::warn!(error = %e, "the shared budget could not be read: no call made");
                    refused.push(Limited { retry_after: STORE_DOWN_RETRY_AFTER });
                    break;
                }
            }
        }
        metrics::count(Metric::BudgetRefused, 1);
        let soonest = budget::soonest(refused).unwrap_or(Limited { retry_after: STORE_DOWN_RETRY_AFTER });
        tracing::info!(retry_after = soonest.retry_after, class = ?self.class, "the shared budget has no room");
        Err(soonest)
    }

    /// Room on the shard a publish holds a place on, when its moment has come.
    async fn take_booked(&self, booking: Booking) -> Result<(), Limited> {
        let now = self.clock.now();
        let shard = booking.shard % self.plan.shards();
        match self.store.take_shared(shard, &self.plan.booked_lanes(shard), now).await {
            Ok(Ok(())) => {
                metrics::count(Metric::BudgetCalls, 1);
                Ok(())
            }
            Ok(Err(limited)) => Err(limited),
            Err(e) => {
                tracing::warn!(error = %e, "the shared budget could not be read: no call made");
                Err(Limited { retry_after: STORE_DOWN_RETRY_AFTER })
            }
        }
    }

    /// A place in a random shard's line, `after` seconds from now at the earliest.
    async fn take_place(&self, after: u64) -> Result<Booking, Limited> {
        let now = self.clock.now();
        let shard = self.plan.tries(uuid::Uuid::new_v4().as_u64_pair().0)[0];
        let earliest = now.plus_seconds(after as i64);
        match self.store.book_shared(shard, self.plan.line(shard), earliest, budget::LINE_AHEAD_SECONDS).await {
            Ok(Ok(at)) => {
                metrics::count(Metric::PublishesQueued, 1);
                tracing::info!(shard, at = %at.to_rfc3339(), "publish queued past the shared budget");
                Ok(Booking { shard, at })
            }
            Ok(Err(limited)) => Err(limited),
            Err(e) => {
                tracing::warn!(error = %e, "no place in line could be taken");
                Err(Limited { retry_after: STORE_DOWN_RETRY_AFTER })
            }
        }
    }

    async fn shut_all(&self, retry_after: Option<u64>) {
        let now = self.clock.now();
        let until = budget::shut_until(now, retry_after);
        metrics::count(Metric::ServiceThrottled, 1);
        metrics::count(Metric::BudgetShutSeconds, (until.unix() - now.unix()).max(0) as u64);
        tracing::warn!(until = %until.to_rfc3339(), "the service answered 429: the shared budget is shut");
        for shard in 0..self.plan.shards() {
            if let Err(e) = self.store.shut_shared(shard, self.plan.shut(shard, until), now).await {
                tracing::warn!(error = %e, shard, "a shard of the shared budget could not be shut");
            }
        }
    }
}

impl<S: SharedBudgetStore, C: Clock> CallGate for SharedBudget<S, C> {
    fn admit(&self) -> BoxFuture<'_, Result<(), Limited>> {
        Box::pin(self.take())
    }

    fn admit_booked(&self, booking: Booking) -> BoxFuture<'_, Result<(), Limited>> {
        Box::pin(self.take_booked(booking))
    }

    fn book(&self, after: u64) -> BoxFuture<'_, Result<Booking, Limited>> {
        Box::pin(self.take_place(after))
    }

    fn shut(&self, retry_after: Option<u64>) -> BoxFuture<'_, ()> {
        Box::pin(self.shut_all(retry_after))
    }
}
