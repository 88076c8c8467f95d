//! Fair use of the shared publishing service: a token bucket per project and kind of call, so
//! that one project cannot spend the service's whole budget (60 calls a minute for small accounts).

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// The app routes that call the service, each with its own budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    Refresh,
    Sync,
    Publish,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Refresh => "refresh",
            CallKind::Sync => "sync",
            CallKind::Publish => "publish",
        }
    }
}

/// How many calls a minute a project may make of one kind; a burst of twice that is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_minute: u32,
}

impl Limit {
    /// The limits of app-api.md: 10 Refreshes, 30 Syncs and 30 publishes a minute.
    pub const fn default_for(kind: CallKind) -> Limit {
        match kind {
            CallKind::Refresh => Limit { per_minute: 10 },
            CallKind::Sync | CallKind::Publish => Limit { per_minute: 30 },
        }
    }

    fn capacity(self) -> u64 {
        2 * u64::from(self.per_minute) * TOKEN
    }
}

/// One call, in thousandths of a token (so refill needs no floating point).
const TOKEN: u64 = 1000;
const MINUTE_MS: i64 = 60_000;

/// What is left of a project's budget for one kind of call, as of `at_ms` (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub milli_tokens: u64,
    pub at_ms: i64,
}

/// Refused: try again after this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
}

/// Takes one call from the bucket at `now`: the bucket after it, or how long until one is free.
/// A bucket never seen is full; it refills at the limit's rate up to the burst, and a clock that
/// went backwards refills nothing.
pub fn take(bucket: Option<&Bucket>, limit: Limit, now: Timestamp) -> Result<Bucket, Limited> {
    let now_ms = now.unix_millis();
    let capacity = limit.capacity();
    let available = match bucket {
        None => capacity,
        Some(b) => {
            let elapsed = u64::try_from((now_ms - b.at_ms).clamp(0, MINUTE_MS)).unwrap_or(0);
            let refill = elapsed * u64::from(limit.per_minute) * TOKEN / MINUTE_MS as u64;
            (b.milli_tokens + refill).min(capacity)
        }
    };
    if limit.per_minute == 0 || available < TOKEN {
        let missing = TOKEN - available.min(TOKEN);
        let wait_ms = (missing * MINUTE_MS as u64).div_ceil(u64::from(limit.per_minute.max(1)) * TOKEN);
        return Err(Limited { retry_after: wait_ms.div_ceil(1000).max(1) });
    }
    Ok(Bucket { milli_tokens: available - TOKEN, at_ms: now_ms.max(bucket.map_or(now_ms, |b| b.at_ms)) })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at_ms(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_800_000_000_000 + ms)
    }

    /// Calls at the given offsets (ms): how many were allowed.
    fn allowed(limit: Limit, offsets: &[i64]) -> Vec<i64> {
        let mut bucket = None;
        let mut taken = Vec::new();
        for &ms in offsets {
            if let Ok(next) = take(bucket.as_ref(), limit, at_ms(ms)) {
                bucket = Some(next);
                taken.push(ms);
            }
        }
        taken
    }

    #[test]
    fn a_burst_of_twice_the_limit_then_the_rate() {
        let limit = Limit::default_for(CallKind::Refresh);
        let at_once: Vec<i64> = vec![0; 25];
        assert_eq!(allowed(limit, &at_once).len(), 20, "a burst of twice ten");
        let mut bucket = None;
        for _ in 0..20 {
            bucket = Some(take(bucket.as_ref(), limit, at_ms(0)).unwrap());
        }
        assert_eq!(take(bucket.as_ref(), limit, at_ms(0)), Err(Limited { retry_after: 6 }));
        assert!(take(bucket.as_ref(), limit, at_ms(5_999)).is_err());
        assert!(take(bucket.as_ref(), limit, at_ms(6_000)).is_ok(), "one call every six seconds");
    }

    #[test]
    fn a_clock_that_went_backwards_refills_nothing() {
        let limit = Limit { per_minute: 1 };
        let after_one = take(None, limit, at_ms(60_000)).unwrap();
        let after_two = take(Some(&after_one), limit, at_ms(0)).unwrap();
        assert!(take(Some(&after_two), limit, at_ms(30_000)).is_err());
    }

    proptest! {
        /// In any window of `w` ms, no more than the burst plus what the rate refills in `w`.
        #[test]
        fn never_more_than_the_burst_plus_the_rate(
            per_minute in 1u32..40,
            gaps in prop::collection::vec(0i64..5_000, 1..200),
        ) {
            let limit = Limit { per_minute };
            let offsets: Vec<i64> = gaps.iter().scan(0, |t, g| { *t += g; Some(*t) }).collect();
            let taken = allowed(limit, &offsets);
            for (i, start) in taken.iter().enumerate() {
                for (j, end) in taken.iter().enumerate().skip(i) {
                    let window = end - start;
                    let most = 2 * u64::from(per_minute) + (window as u64 * u64::from(per_minute)).div_ceil(60_000);
                    prop_assert!((j - i + 1) as u64 <= most, "{} calls in {} ms", j - i + 1, window);
                }
            }
        }
    }
}
