//! A run's attempts, and what the registry remembers of runs that have ended.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::RunState;

/// One attempt of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// From 1.
    pub number: u32,
    /// How it ended, or `running` for the attempt under way.
    pub state: RunState,
    /// Its error's message, if it failed.
    pub error: Option<String>,
    /// How long it ran, in milliseconds; `None` for the attempt under way.
    pub duration_ms: Option<u64>,
}

/// A run's state and the history of its attempts:
/// [`WorkerRegistry::run_record`](crate::WorkerRegistry::run_record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// The worker's name.
    pub worker: String,
    /// Where it is now.
    pub state: RunState,
    /// Its attempts, oldest first; one unless it was retried or is a daemon.
    pub attempts: Vec<Attempt>,
}

/// The records of runs that have ended, kept for a while when the registry is asked to
/// ([`WorkerRegistry::keep_finished_runs`](crate::WorkerRegistry::keep_finished_runs)).
#[derive(Default)]
pub(crate) struct Finished {
    /// Checked by every ending run; the lock is taken only when it is set.
    enabled: AtomicBool,
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// How long and how many.
    policy: Option<(Duration, usize)>,
    order: VecDeque<(Instant, String)>,
    by_id: HashMap<String, (Instant, RunRecord)>,
}

impl Finished {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Held for a map operation.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_policy(&self, policy: Option<(Duration, usize)>) {
        let mut kept = self.kept();
        kept.policy = policy;
        if policy.is_none() {
            kept.order.clear();
            kept.by_id.clear();
        }
        // Relaxed: a hint; `keep` re-reads the policy under the lock.
        self.enabled.store(policy.is_some(), Ordering::Relaxed);
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub(crate) fn keep(&self, record: RunRecord) {
        let now = Instant::now();
        let mut kept = self.kept();
        let Some((retention, max)) = kept.policy else {
            return;
        };
        kept.order.push_back((now, record.id.clone()));
        kept.by_id.insert(record.id.clone(), (now, record));
        // Oldest first out: expired ones, and any past the count.
        while let Some((at, id)) = kept.order.front() {
            if now.saturating_duration_since(*at) < retention && kept.order.len() <= max {
                break;
            }
            let id = id.clone();
            kept.order.pop_front();
            kept.by_id.remove(&id);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<RunRecord> {
        let kept = self.kept();
        let (retention, _) = kept.policy?;
        let (at, record) = kept.by_id.get(id)?;
        (at.elapsed() < retention).then(|| record.clone())
    }
}
