//! Looking at a registry: its workers, the runs live and finished, their records,
//! statistics and options.

use std::sync::Arc;
use std::time::Duration;

use super::{run_key, run_not_found, WorkerRegistry};
use crate::run::Run;
use crate::{Result, RunInfo, RunRecord, Subscription, WorkerOptions, WorkerStats};

impl WorkerRegistry {
    /// Names of the registered workers, sorted.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is part of the seed API.
    pub async fn definitions(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = (self.inner.catalog.load().definitions.keys())
            .map(|name| name.to_string())
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Ids of the runs executing now, oldest first. Runs waiting in the admission queue
    /// are listed by [`queued`](Self::queued) instead.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is part of the seed API.
    pub async fn running(&self) -> Result<Vec<String>> {
        Ok(self.live_ids(|run| !run.is_queued()))
    }

    /// Ids of the runs waiting in the admission queue for a concurrency cap, in the order
    /// they will start: highest priority first, then call order.
    pub fn queued(&self) -> Vec<String> {
        self.inner.live.admission.queued_ids()
    }

    /// Ids of the live runs of worker `name`, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`](crate::Error::NotRegistered) for an unknown name.
    pub async fn running_for(&self, name: &str) -> Result<Vec<String>> {
        self.definition(name)?;
        Ok(self.live_ids(|run| run.worker_name() == name && !run.is_queued()))
    }

    pub(crate) fn live_ids(&self, keep: impl Fn(&Run) -> bool) -> Vec<String> {
        self.inner
            .live
            .snapshot()
            .iter()
            .filter(|run| keep(run))
            .map(|run| run.id().to_owned())
            .collect()
    }

    /// A watcher of the live run `run_id`: its messages from now on, then its outcome.
    /// See [`Subscription`].
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`](crate::Error::RunNotFound) when no live run has this id.
    pub fn subscribe(&self, run_id: &str) -> Result<Subscription> {
        self.live_run(run_id).map(|run| run.subscribe())
    }

    /// Every live run, oldest first, with its worker, start time, elapsed time and last
    /// message.
    pub fn live_runs(&self) -> Vec<RunInfo> {
        self.inner
            .live
            .snapshot()
            .iter()
            .map(|run| RunInfo::of(run))
            .collect()
    }

    /// The state and attempt history of run `run_id`: while it is live, and afterwards
    /// for as long as [`keep_finished_runs`](Self::keep_finished_runs) says.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`](crate::Error::RunNotFound) when the run is neither live nor kept.
    pub fn run_record(&self, run_id: &str) -> Result<RunRecord> {
        let key = run_key(run_id).ok_or_else(|| run_not_found(run_id))?;
        if let Some(run) = self.inner.live.get(key) {
            return Ok(run.record());
        }
        let catalog = self.inner.catalog.load();
        self.inner
            .live
            .ended(key, |ended| {
                let worker = catalog
                    .definitions
                    .values()
                    .find(|definition| definition.serial == ended.worker)
                    .map_or_else(String::new, |definition| definition.name.to_string());
                ended.record(run_id.to_owned(), worker)
            })
            .ok_or_else(|| run_not_found(run_id))
    }

    /// The outcome of the ended run `run_id`, while it is remembered (see
    /// [`keep_finished_runs`](Self::keep_finished_runs)); `None` while it is live, or once
    /// forgotten.
    #[cfg(feature = "http")]
    pub(crate) fn ended_outcome(&self, run_id: &str) -> Option<crate::RunOutcome> {
        (self.inner.live).ended(run_key(run_id)?, crate::run::history::Ended::outcome)
    }

    /// How long, and how many, ended runs are remembered for
    /// [`run_record`](Self::run_record) (and the HTTP router's late `GET /runs/{id}` and
    /// `GET /runs/{id}/events`): by default the last
    /// [`DEFAULT_FINISHED_MAX`](crate::DEFAULT_FINISHED_MAX) (1024) for
    /// [`DEFAULT_FINISHED_RETENTION`](crate::DEFAULT_FINISHED_RETENTION) (10 minutes).
    ///
    /// The records are kept beside the live runs, in 32 shards, so `max` is rounded up to
    /// a multiple of 32, and the oldest are dropped shard by shard (roughly, not strictly,
    /// oldest first). A record is a few dozen bytes plus the error message of a failed
    /// attempt. `None`, a zero `max` or a zero `retention` turns it off and forgets what
    /// was kept.
    pub fn keep_finished_runs(&self, keep: Option<(Duration, usize)>) {
        self.inner.live.keep_ended(keep);
    }

    /// The live run `run_id`.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`](crate::Error::RunNotFound) when no live run has this id.
    pub fn run_info(&self, run_id: &str) -> Result<RunInfo> {
        self.live_run(run_id).map(|run| RunInfo::of(&run))
    }

    pub(crate) fn live_run(&self, run_id: &str) -> Result<Arc<Run>> {
        run_key(run_id)
            .and_then(|key| self.inner.live.get(key))
            .ok_or_else(|| run_not_found(run_id))
    }

    /// Statistics of worker `name`; `None` for an unknown name.
    pub async fn stats(&self, name: &str) -> Option<WorkerStats> {
        self.definition(name)
            .ok()
            .map(|definition| definition.counters.snapshot())
    }

    /// The options worker `name` was registered with; `None` for an unknown name.
    pub fn options(&self, name: &str) -> Option<WorkerOptions> {
        self.definition(name)
            .ok()
            .map(|definition| definition.options.clone())
    }
}
