//! Where successful runs with an idempotency key are remembered: behind a small trait,
//! in memory today.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Remembers which run completed successfully under an idempotency key
/// ([`CallOptions::idempotency_key`](crate::CallOptions::idempotency_key)), for a
/// retention time. Methods are synchronous: the runtime records a run before its caller
/// learns the result, so the next call with the key always finds it.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// The id of the run of `worker` that completed under `key`, if within its retention.
    fn lookup(&self, worker: &str, key: &str) -> Option<String>;

    /// Remembers that run `run_id` of `worker` completed under `key`, for `retention`.
    fn record(&self, worker: &str, key: &str, run_id: &str, retention: Duration);
}

/// The default [`IdempotencyStore`]: a map in memory. Expired keys are dropped as new
/// ones come, so it holds at most about twice the keys recorded within one retention.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    by_key: HashMap<(String, String), (String, Instant)>,
    /// The size after the last sweep of expired records.
    swept_at: usize,
}

impl MemoryIdempotency {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdempotencyStore for MemoryIdempotency {
    fn lookup(&self, worker: &str, key: &str) -> Option<String> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let (run_id, expires) = records.by_key.get(&(worker.to_owned(), key.to_owned()))?;
        (Instant::now() < *expires).then(|| run_id.clone())
    }

    fn record(&self, worker: &str, key: &str, run_id: &str, retention: Duration) {
        let now = Instant::now();
        let expires = now
            .checked_add(retention)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.by_key.len() >= 2 * records.swept_at.max(64) {
            records.by_key.retain(|_, (_, until)| *until > now);
            records.swept_at = records.by_key.len();
        }
        records.by_key.insert(
            (worker.to_owned(), key.to_owned()),
            (run_id.to_owned(), expires),
        );
    }
}
