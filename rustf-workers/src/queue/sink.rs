//! What a stored job's run tells the store: its outcome when it ends, its checkpoints
//! while it runs, fenced by its claim; and the stand-in's cancel for a job that runs
//! elsewhere.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::runner::{millis, Runner};
use super::{Finish, FinishOutcome};
use crate::run::{Run, RunSink};
use crate::{CancelReason, Error, Result, RunStatus, StoreFuture};

/// Told of each run's end: decides what the store records.
pub(super) struct JobSink {
    pub(super) runner: Arc<Runner>,
    pub(super) epoch: u64,
    pub(super) max_attempts: u32,
    /// The job's last checkpoint: the one it was claimed with, then each one saved.
    pub(super) checkpoint: Mutex<Option<Value>>,
}

impl JobSink {
    fn checkpoint(&self) -> MutexGuard<'_, Option<Value>> {
        // Held for one read or write, never across an await.
        self.checkpoint.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RunSink for JobSink {
    fn ended(&self, run: &Run, status: RunStatus, result: &Result<()>) -> bool {
        let error = || {
            result
                .as_ref()
                .err()
                .map_or_else(String::new, ToString::to_string)
        };
        self.runner.count_end(status);
        self.runner.observe_run(run.started.elapsed());
        let outcome = match status {
            // A daemon that returned because shutdown asked it to stop has stopped, not
            // finished: handed back, to resume from its checkpoint after the next start.
            RunStatus::Completed
                if run.daemon && run.is_stop_requested() && self.runner.is_stopping() =>
            {
                FinishOutcome::Requeue
            }
            RunStatus::Completed => FinishOutcome::Completed,
            RunStatus::Cancelled => match result.as_ref().err().and_then(Error::cancel_reason) {
                // Handed back: it runs after the next start, this attempt not counted.
                Some(CancelReason::Shutdown | CancelReason::Dropped) => FinishOutcome::Requeue,
                _ => FinishOutcome::Cancelled { error: error() },
            },
            RunStatus::Failed if result.as_ref().err().is_some_and(Error::is_validation) => {
                FinishOutcome::Discard { error: error() }
            }
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Panicked => {
                let attempt = run.attempt();
                if attempt < self.max_attempts {
                    let backoff = run.definition.options.retry_backoff();
                    // The jitter comes from the job's random id, as for in-process retries.
                    let jitter = (run.key >> (8 * (attempt % 16))) as u8;
                    let delay = backoff.delay(attempt, jitter);
                    FinishOutcome::Retry {
                        at_ms: self
                            .runner
                            .clock
                            .now_ms()
                            .saturating_add(millis(delay) as i64),
                        error: error(),
                    }
                } else {
                    FinishOutcome::Discard { error: error() }
                }
            }
        };
        self.runner.send(Finish {
            id: run.id().to_owned(),
            epoch: self.epoch,
            outcome,
        });
        // A job's checkpoint stays with its record (a retried job resumes from it); a run
        // whose lease was taken over must not remove what its successor resumes from.
        true
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn save_checkpoint<'a>(&'a self, run: &'a Run, value: Value) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let saved = self
                .runner
                .store
                .save_checkpoint(run.id(), self.epoch, value.clone())
                .await?;
            if !saved {
                if let Some(registry) = self.runner.registry.upgrade() {
                    self.runner.lease_lost(&registry, run.id(), self.epoch);
                }
                return Err(Error::LeaseLost {
                    id: run.id().to_owned(),
                });
            }
            *self.checkpoint() = Some(value);
            Ok(())
        })
    }

    fn last_checkpoint(&self) -> Option<Value> {
        self.checkpoint().clone()
    }
}

/// The sink of a run that stands in for a stored job running elsewhere (or waiting): it
/// cancels the job in the store.
pub(crate) struct StoredJobSink {
    pub(crate) runner: Arc<Runner>,
}

impl RunSink for StoredJobSink {
    fn ended(&self, _run: &Run, _status: RunStatus, _result: &Result<()>) -> bool {
        // A stand-in never runs, so it never ends through the engine.
        true
    }

    fn cancel_elsewhere<'a>(&'a self, run: &'a Run) -> Option<StoreFuture<'a, ()>> {
        Some(Box::pin(async move {
            // Claimed here since the stand-in was made: stopped here at once.
            if let Some(registry) = self.runner.registry.upgrade() {
                if let Ok(live) = registry.live_run(run.id()) {
                    if crate::run::driver::cancel(&live, CancelReason::Requested) {
                        return Ok(());
                    }
                }
            }
            self.runner.cancel_stored(run.id()).await
        }))
    }
}
