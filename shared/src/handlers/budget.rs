//! The shared budget of the API key as every call to the publishing service meets it: a token
//! from a shard before the call (`domain::budget` decides which lanes and shards), and every
//! shard shut when the service answers 429.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::domain::budget::{self, Class, Plan};
use crate::domain::limits::Limited;
use crate::metrics::{self, Metric};
use crate::ports::{Booking, BoxFuture, CallGate, Clock, SharedBudgetStore, StoreError};

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

/// Not knowing whether there is room, no call goes: the key is everyone's.
fn unknown(e: StoreError, what: &str) -> Limited {
    tracing::warn!(error = %e, "the shared budget could not be read: {what}");
    Limited { retry_after: STORE_DOWN_RETRY_AFTER }
}

impl<S: SharedBudgetStore, C: Clock> SharedBudget<S, C> {
    /// Up to `calls` calls at once from a random shard, then another: how many were taken, or
    /// the refusal that opens first, with its shard.
    async fn take(&self, calls: u32) -> Result<u32, (u32, Limited)> {
        let now = self.clock.now();
        let mut refused = Vec::with_capacity(budget::TRIES);
        for shard in self.plan.tries(uuid::Uuid::new_v4().as_u64_pair().0) {
            let (taken, lanes) = self.plan.lanes_for(self.class, shard, calls);
            match self.store.take_shared(shard, &lanes, now).await {
                Ok(Ok(())) => {
                    metrics::count(Metric::BudgetCalls, taken.into());
                    return Ok(taken);
                }
                Ok(Err(limited)) => refused.push((shard, limited)),
                Err(e) => {
                    refused.push((shard, unknown(e, "no call made")));
                    break;
                }
            }
        }
        metrics::count(Metric::BudgetRefused, 1);
        let soonest = budget::soonest(refused).expect("at least one shard tried");
        tracing::info!(retry_after = soonest.1.retry_after, class = ?self.class, "the shared budget has no room");
        Err(soonest)
    }

    /// Room on the shard a publish holds a place on, when its moment has come.
    async fn take_booked(&self, booking: Booking) -> Result<(), Limited> {
        let now = self.clock.now();
        let shard = booking.shard % self.plan.shards();
        match self.store.take_shared(shard, &self.plan.booked_lanes(shard), now).await {
            Ok(taken) => {
                if taken.is_ok() {
                    metrics::count(Metric::BudgetCalls, 1);
                }
                taken
            }
            Err(e) => Err(unknown(e, "no call made")),
        }
    }

    /// Room now for a publish, or a place in the line of the shard tried that opens first, once
    /// it opens.
    async fn take_or_place(&self) -> Result<Option<Booking>, Limited> {
        match self.take(1).await {
            Ok(_) => Ok(None),
            Err((shard, limited)) => self.take_place(shard, limited.retry_after).await.map(Some),
        }
    }

    /// A place in `shard`'s line, `after` seconds from now at the earliest.
    async fn take_place(&self, shard: u32, after: u64) -> Result<Booking, Limited> {
        let now = self.clock.now();
        let earliest = now.plus_seconds(after as i64);
        match self.store.book_shared(shard, self.plan.line(shard), earliest, budget::LINE_AHEAD_SECONDS).await {
            Ok(Ok(at)) => {
                metrics::count(Metric::PublishesQueued, 1);
                tracing::info!(shard, at = %at.to_rfc3339(), "publish queued past the shared budget");
                Ok(Booking { shard, at })
            }
            Ok(Err(limited)) => Err(limited),
            Err(e) => Err(unknown(e, "no place in line taken")),
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
        Box::pin(async move { self.take(1).await.map(|_| ()).map_err(|(_, limited)| limited) })
    }

    fn reserve(&self, calls: u32) -> BoxFuture<'_, Result<u32, Limited>> {
        Box::pin(async move { self.take(calls).await.map_err(|(_, limited)| limited) })
    }

    fn admit_booked(&self, booking: Booking) -> BoxFuture<'_, Result<(), Limited>> {
        Box::pin(self.take_booked(booking))
    }

    fn admit_or_book(&self) -> BoxFuture<'_, Result<Option<Booking>, Limited>> {
        Box::pin(self.take_or_place())
    }

    fn shut(&self, retry_after: Option<u64>) -> BoxFuture<'_, ()> {
        Box::pin(self.shut_all(retry_after))
    }
}

/// A gate for a caller that does one operation at a time (the reconciler's pass): `reserve` takes
/// the operation's calls at once and keeps them, and the operation's calls spend what is kept
/// before taking more. What an operation leaves unspent is dropped by the next `reserve`.
pub struct Prepaid {
    inner: Arc<dyn CallGate>,
    kept: AtomicU32,
}

impl Prepaid {
    pub fn new(inner: Arc<dyn CallGate>) -> Prepaid {
        Prepaid { inner, kept: AtomicU32::new(0) }
    }

    fn spend_kept(&self) -> bool {
        self.kept.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1)).is_ok()
    }
}

impl CallGate for Prepaid {
    fn admit(&self) -> BoxFuture<'_, Result<(), Limited>> {
        if self.spend_kept() {
            return Box::pin(std::future::ready(Ok(())));
        }
        self.inner.admit()
    }

    fn reserve(&self, calls: u32) -> BoxFuture<'_, Result<u32, Limited>> {
        Box::pin(async move {
            self.kept.store(0, Ordering::SeqCst);
            let taken = self.inner.reserve(calls).await?;
            self.kept.store(taken, Ordering::SeqCst);
            Ok(taken)
        })
    }

    fn admit_booked(&self, booking: Booking) -> BoxFuture<'_, Result<(), Limited>> {
        self.inner.admit_booked(booking)
    }

    fn admit_or_book(&self) -> BoxFuture<'_, Result<Option<Booking>, Limited>> {
        self.inner.admit_or_book()
    }

    fn shut(&self, retry_after: Option<u64>) -> BoxFuture<'_, ()> {
        self.kept.store(0, Ordering::SeqCst);
        self.inner.shut(retry_after)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A gate that records what it was asked and grants at most `burst` calls at once.
    #[derive(Default)]
    struct Recording {
        asked: Mutex<Vec<u32>>,
        burst: u32,
    }

    impl CallGate for Recording {
        fn admit(&self) -> BoxFuture<'_, Result<(), Limited>> {
            self.asked.lock().unwrap().push(1);
            Box::pin(std::future::ready(Ok(())))
        }
        fn reserve(&self, calls: u32) -> BoxFuture<'_, Result<u32, Limited>> {
            self.asked.lock().unwrap().push(calls);
            Box::pin(std::future::ready(Ok(calls.min(self.burst))))
        }
        fn admit_booked(&self, _: Booking) -> BoxFuture<'_, Result<(), Limited>> {
            unreachable!("not a publish")
        }
        fn admit_or_book(&self) -> BoxFuture<'_, Result<Option<Booking>, Limited>> {
            unreachable!("not a publish")
        }
        fn shut(&self, _: Option<u64>) -> BoxFuture<'_, ()> {
            Box::pin(std::future::ready(()))
        }
    }

    #[tokio::test]
    async fn an_operations_calls_spend_what_was_taken_for_it_and_no_more() {
        let inner = Arc::new(Recording { burst: 3, ..Recording::default() });
        let gate = Prepaid::new(inner.clone());
        assert_eq!(gate.reserve(2).await, Ok(2));
        gate.admit().await.unwrap();
        gate.admit().await.unwrap();
        assert_eq!(*inner.asked.lock().unwrap(), vec![2], "two calls paid for at once");
        gate.admit().await.unwrap();
        assert_eq!(*inner.asked.lock().unwrap(), vec![2, 1], "a third takes its own");
        // Granted fewer than asked: only those are kept.
        assert_eq!(gate.reserve(5).await, Ok(3));
        for _ in 0..4 {
            gate.admit().await.unwrap();
        }
        assert_eq!(*inner.asked.lock().unwrap(), vec![2, 1, 5, 1]);
        // What one operation left unspent is not the next one's.
        gate.reserve(2).await.unwrap();
        gate.admit().await.unwrap();
        gate.reserve(1).await.unwrap();
        gate.admit().await.unwrap();
        gate.admit().await.unwrap();
        assert_eq!(*inner.asked.lock().unwrap(), vec![2, 1, 5, 1, 2, 1, 1]);
    }
}
