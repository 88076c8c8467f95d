//! A secret read at start-up and read again when the other side says it is wrong (a rotation):
//! at most once per interval, so a flood of bad requests cannot turn into a flood of reads.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Where a fresh value comes from (in Lambda: a Secrets Manager secret); `None` when it cannot be
/// read now.
pub type Source<T> = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<T>> + Send>> + Send + Sync>;

pub struct Reloading<T> {
    current: RwLock<T>,
    reload: Option<Reload<T>>,
}

struct Reload<T> {
    source: Source<T>,
    interval: Duration,
    last: Mutex<Instant>,
}

impl<T: Clone + PartialEq> Reloading<T> {
    /// A value that never changes (local runs, tests).
    pub fn fixed(value: T) -> Self {
        Self { current: RwLock::new(value), reload: None }
    }

    /// A value just read from `source`, which may be read again once `interval` has passed.
    pub fn new(value: T, interval: Duration, source: Source<T>) -> Self {
        Self {
            current: RwLock::new(value),
            reload: Some(Reload { source, interval, last: Mutex::new(Instant::now()) }),
        }
    }

    /// Looks at the current value without copying it (a webhook checks every delivery with it).
    pub fn with<R>(&self, look: impl FnOnce(&T) -> R) -> R {
        match self.current.read() {
            Ok(value) => look(&value),
            Err(poisoned) => look(&poisoned.into_inner()),
        }
    }

    /// Reads the source again if there is one and the interval has passed since the last read;
    /// true when that brought a different value (worth trying again with).
    pub async fn refresh(&self) -> bool {
        let Some(reload) = &self.reload else { return false };
        {
            let Ok(mut last) = reload.last.lock() else { return false };
            if last.elapsed() < reload.interval {
                return false;
            }
            *last = Instant::now();
        }
        let Some(fresh) = (reload.source)().await else { return false };
        let Ok(mut current) = self.current.write() else { return false };
        if *current == fresh {
            return false;
        }
        *current = fresh;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(value: &'static str, reads: Arc<AtomicUsize>) -> Source<String> {
        Arc::new(move || {
            reads.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Some(value.to_owned()) })
        })
    }

    #[tokio::test]
    async fn a_new_value_is_taken_and_reported_once_the_interval_has_passed() {
        let reads = Arc::new(AtomicUsize::new(0));
        let cell = Reloading::new("old".to_owned(), Duration::ZERO, counting("new", reads.clone()));
        assert!(cell.refresh().await, "a different value is worth a retry");
        assert_eq!(cell.with(String::clone), "new");
        assert!(!cell.refresh().await, "the same value again is not");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn within_the_interval_and_without_a_source_nothing_is_read() {
        let reads = Arc::new(AtomicUsize::new(0));
        let cell = Reloading::new("old".to_owned(), Duration::from_secs(60), counting("new", reads.clone()));
        for _ in 0..5 {
            assert!(!cell.refresh().await);
        }
        assert_eq!((reads.load(Ordering::SeqCst), cell.with(String::clone)), (0, "old".to_owned()));
        let fixed = Reloading::fixed("only".to_owned());
        assert!(!fixed.refresh().await);
        assert_eq!(fixed.with(String::clone), "only");
    }
}
