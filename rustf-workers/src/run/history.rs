//! A run's attempts, and what the registry remembers of runs that have ended.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{RunState, RunStatus};

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

/// What the registry remembers of a run that has ended: enough to answer
/// [`WorkerRegistry::run_record`](crate::WorkerRegistry::run_record), and small, because
/// every run leaves one (no allocation unless it was retried or failed).
pub(crate) struct Ended {
    pub(crate) key: u128,
    pub(crate) at: Instant,
    /// The worker's `Definition::serial`: its name is looked up only when asked.
    pub(crate) worker: u32,
    /// The last attempt's number, how it ended and its duration.
    pub(crate) attempt: u32,
    pub(crate) status: RunStatus,
    pub(crate) duration_ms: u64,
    /// The whole run's duration, from the call (`RunOutcome::duration_ms`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // read by the events route
    pub(crate) run_ms: u64,
    /// The last attempt's error and the earlier attempts, for the runs that have them.
    pub(crate) more: Option<Box<EndedMore>>,
}

/// The parts of an ended run's record that most runs do not have.
pub(crate) struct EndedMore {
    pub(crate) error: Option<String>,
    /// The run was stopped while it waited to retry: its last attempt is the last of
    /// `retried`, and none ended with the run.
    pub(crate) between_attempts: bool,
    /// Attempts that ended in a retry.
    pub(crate) retried: Vec<Attempt>,
}

impl Ended {
    pub(crate) fn record(&self, id: String, worker: String) -> RunRecord {
        let mut attempts = self
            .more
            .as_ref()
            .map(|more| more.retried.clone())
            .unwrap_or_default();
        if !self.more.as_ref().is_some_and(|more| more.between_attempts) {
            attempts.push(Attempt {
                number: self.attempt,
                state: RunState::from(self.status),
                error: self.error(),
                duration_ms: Some(self.duration_ms),
            });
        }
        RunRecord {
            id,
            worker,
            state: RunState::from(self.status),
            attempts,
        }
    }

    /// The outcome, as the run's watchers saw it at its end.
    #[cfg(feature = "http")]
    pub(crate) fn outcome(&self) -> crate::RunOutcome {
        crate::RunOutcome {
            status: self.status,
            error: self.error(),
            duration_ms: self.run_ms,
        }
    }

    fn error(&self) -> Option<String> {
        self.more.as_ref().and_then(|more| more.error.clone())
    }
}

/// How long and how many ended runs are remembered.
pub(crate) struct Retention {
    /// Milliseconds; 0 (with `per_shard` 0) is off.
    for_ms: AtomicU64,
    /// At most this many in each shard of the live table.
    per_shard: AtomicUsize,
}

/// Ended runs are remembered this long by default.
pub const DEFAULT_FINISHED_RETENTION: Duration = Duration::from_secs(600);

/// At most this many ended runs are remembered by default.
pub const DEFAULT_FINISHED_MAX: usize = 1024;

impl Retention {
    pub(crate) fn new(shards: usize) -> Self {
        let retention = Self {
            for_ms: AtomicU64::new(0),
            per_shard: AtomicUsize::new(0),
        };
        retention.set(
            Some((DEFAULT_FINISHED_RETENTION, DEFAULT_FINISHED_MAX)),
            shards,
        );
        retention
    }

    pub(crate) fn set(&self, keep: Option<(Duration, usize)>, shards: usize) {
        let (for_ms, max) = keep.unwrap_or_default();
        let for_ms = u64::try_from(for_ms.as_millis()).unwrap_or(u64::MAX);
        // Nothing is shown after a zero retention: nothing is kept either.
        let max = if for_ms == 0 { 0 } else { max };
        // Relaxed: a setting; each shard applies it under its own lock.
        self.for_ms.store(for_ms, Ordering::Relaxed);
        self.per_shard
            .store(max.div_ceil(shards.max(1)), Ordering::Relaxed);
    }

    /// How long, and how many per shard.
    pub(crate) fn get(&self) -> (Duration, usize) {
        (
            Duration::from_millis(self.for_ms.load(Ordering::Relaxed)),
            self.per_shard.load(Ordering::Relaxed),
        )
    }
}

/// One shard's ended runs: a ring that overwrites the oldest once full.
#[derive(Default)]
pub(crate) struct EndedRing {
    slots: Vec<Ended>,
    /// The oldest, overwritten next once `slots` is full.
    next: usize,
}

impl EndedRing {
    /// Remembers `ended`, forgetting the oldest past `max`. Records past their retention
    /// are hidden by `find` and overwritten by later ones; the count bounds the memory.
    /// Returns the record it forgot, to be dropped outside the lock.
    pub(crate) fn push(&mut self, ended: Ended, max: usize) -> Option<Ended> {
        if self.slots.len() < max {
            self.slots.push(ended);
            return None;
        }
        if max == 0 {
            return Some(ended);
        }
        if self.slots.len() > max {
            // The bound was lowered.
            self.slots.truncate(max);
            self.next = 0;
        }
        let oldest = self.next;
        self.next = if oldest + 1 == max { 0 } else { oldest + 1 };
        Some(std::mem::replace(&mut self.slots[oldest], ended))
    }

    pub(crate) fn find(&self, key: u128, retention: Duration) -> Option<&Ended> {
        self.slots
            .iter()
            .find(|ended| ended.key == key)
            .filter(|ended| ended.at.elapsed() < retention)
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}
