//! A route's deadline: API Gateway's HTTP API ends an integration at 30 s (a cold start's init
//! included), so every app route that calls the service answers within [`ROUTE_DEADLINE`] of its
//! start, whatever calls it makes one after another. The route runs `within` it; the service
//! client gives each call only what is left (less a margin for the writes that follow), and sends
//! none when too little is left, so the route ends with its usual answer for a call that got no
//! answer (503, or 202 for a publish that may have been taken), never cut off half way.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// From the start of a route to its answer, at most (production.md, section 5).
pub const ROUTE_DEADLINE: Duration = Duration::from_secs(24);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with a deadline `budget` from now, or the deadline it already runs within, if
/// that comes first.
pub async fn within<F: Future>(budget: Duration, work: F) -> F::Output {
    let at = Instant::now() + budget;
    let at = DEADLINE.try_with(|outer| (*outer).min(at)).unwrap_or(at);
    DEADLINE.scope(at, work).await
}

/// What is left before the deadline of the work this runs in; `None` where there is none (the
/// retry worker and the reconciler have their invocation's own).
pub fn left() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn what_is_left_shrinks_with_time_and_there_is_none_outside() {
        assert_eq!(left(), None);
        within(Duration::from_secs(24), async {
            assert_eq!(left(), Some(Duration::from_secs(24)));
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert_eq!(left(), Some(Duration::from_secs(4)));
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert_eq!(left(), Some(Duration::ZERO));
        })
        .await;
        within(
            Duration::from_secs(8),
            within(Duration::from_secs(24), async {
                assert_eq!(left(), Some(Duration::from_secs(8)), "an outer deadline that comes first holds");
            }),
        )
        .await;
    }
}
