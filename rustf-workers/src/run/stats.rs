//! Per-definition statistics: the public snapshot and the atomic counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::padded::Padded;
use crate::RunStatus;

use serde::{Deserialize, Serialize};

/// A snapshot of one worker definition's statistics.
///
/// `runs` counts every finished execution, whatever its outcome, and `errors` every one
/// that did not complete successfully, so `(runs - errors) / runs` is the success rate.
/// `errors` is broken down into `failed` (the handler returned an error), `timed_out`,
/// `cancelled` (by request or by shutdown) and `panicked`.
///
/// A retried run counts once per attempt. A run stopped (cancelled, or by shutdown) while
/// it waits out a retry's backoff counts its failed attempt when that attempt ended, then
/// one cancellation that lasted no time (no attempt was under way): one failed attempt and
/// a cancel during its backoff make `runs == 2`, `failed == 1`, `cancelled == 1`.
///
/// `running` counts runs that have not reached their terminal state: once a caller has a
/// run's result (`await_result`, `run`), no later snapshot counts it as running.
///
/// Each field is read atomically but the snapshot as a whole is not: while runs are
/// finishing, a field may already include a run another does not. `errors <= runs` holds
/// in every snapshot.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let workers = rustf_workers::WorkerRegistry::new();
/// workers.register("tick", |_ctx| async { Ok(()) }).await?;
/// workers.run("tick", None).await?;
///
/// let stats = workers.stats("tick").await.unwrap();
/// assert_eq!((stats.runs, stats.errors), (1, 0));
/// assert_eq!(stats.success_rate(), Some(1.0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Finished executions, failed ones included.
    pub runs: u64,
    /// Finished executions that did not complete successfully.
    pub errors: u64,
    /// Duration of the last finished execution, in milliseconds.
    pub last_run_ms: Option<u64>,
    /// Sum of the durations of all finished executions, in milliseconds.
    pub total_runtime_ms: u64,
    /// Executions whose handler returned an error.
    pub failed: u64,
    /// Executions stopped by their timeout.
    pub timed_out: u64,
    /// Executions cancelled by request or by shutdown.
    pub cancelled: u64,
    /// Executions whose handler panicked.
    pub panicked: u64,
    /// Executions running now.
    pub running: u64,
    /// Duration of the longest finished execution, in milliseconds.
    pub max_run_ms: u64,
    /// The message of the last error, if any execution has failed.
    pub last_error: Option<String>,
}

impl WorkerStats {
    /// Share of finished runs that completed successfully, in `0.0..=1.0`; `None` before the
    /// first run finishes.
    pub fn success_rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| (self.runs - self.errors) as f64 / self.runs as f64)
    }

    /// Mean duration of finished runs in milliseconds; `None` before the first run finishes.
    pub fn average_run_ms(&self) -> Option<u64> {
        (self.runs > 0).then(|| self.total_runtime_ms / self.runs)
    }
}

const NO_LAST_RUN: u64 = u64::MAX;

/// Upper bounds, in milliseconds, of the run-duration histogram the metrics endpoint
/// exposes; runs longer than the last bound fall in `+Inf`.
#[cfg(feature = "http")]
pub(crate) const DURATION_BUCKETS_MS: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000,
];

/// The live counters of one definition: atomics, except the last error's text, which is
/// written only on the error path.
///
/// A run touches `admitted` when it starts, and `runs`, `total_runtime_ms` and `settled`
/// when it ends (plus `errors` and one breakdown counter if it failed). The two groups
/// are written by different threads, so they live on separate cache lines.
#[derive(Debug)]
pub(crate) struct Counters {
    admitted: Padded<AtomicU64>,
    ended: Padded<Ended>,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Ended {
    runs: AtomicU64,
    errors: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    total_runtime_ms: AtomicU64,
    max_run_ms: AtomicU64,
    last_run_ms: AtomicU64,
    /// Runs that have reached their terminal state, counted before their outcome is
    /// published: `admitted - ended` are the snapshot's `running`.
    ended: AtomicU64,
    /// Runs whose outcome has been published; `admitted - settled` are in flight, which
    /// is what `shutdown` waits out.
    settled: AtomicU64,
    /// Finished runs per duration bucket (not cumulative); the rest are over the last
    /// bound.
    #[cfg(feature = "http")]
    buckets: [AtomicU64; DURATION_BUCKETS_MS.len()],
}

impl Default for Counters {
    fn default() -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            admitted: Padded(zero()),
            ended: Padded(Ended {
                runs: zero(),
                errors: zero(),
                failed: zero(),
                timed_out: zero(),
                cancelled: zero(),
                panicked: zero(),
                total_runtime_ms: zero(),
                max_run_ms: zero(),
                last_run_ms: AtomicU64::new(NO_LAST_RUN),
                ended: zero(),
                settled: zero(),
                #[cfg(feature = "http")]
                buckets: std::array::from_fn(|_| zero()),
            }),
            last_error: Mutex::new(None),
        }
    }
}

impl Counters {
    /// A run was admitted. SeqCst: `shutdown` stores its phase and then reads the
    /// in-flight count, admission bumps the count and then reads the phase; one of the two
    /// always sees the other.
    pub(crate) fn admit(&self) {
        self.admitted.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes back an admission refused after all (shutdown had started).
    pub(crate) fn unadmit(&self) {
        self.admitted.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// Records how a run's last attempt ended, and that the run no longer runs. Called
    /// once per run, before its outcome is published, so a caller that awaited the result
    /// sees it counted in `runs` and no longer in `running`.
    pub(crate) fn record_end(&self, status: RunStatus, elapsed: Duration, error: Option<String>) {
        // Before `runs`, whose Release publishes it: a snapshot that counts the run in
        // `runs` (read with Acquire) also sees it gone from `running`.
        self.ended.0.ended.fetch_add(1, Ordering::Relaxed);
        self.record(status, elapsed, error);
    }

    /// Records how an attempt ended: one that is retried, or through `record_end` a run's
    /// last.
    pub(crate) fn record(&self, status: RunStatus, elapsed: Duration, error: Option<String>) {
        let ended = &self.ended.0;
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        // Relaxed: independent totals; readers need no ordering among them.
        ended.total_runtime_ms.fetch_add(ms, Ordering::Relaxed);
        if ms > ended.max_run_ms.load(Ordering::Relaxed) {
            ended.max_run_ms.fetch_max(ms, Ordering::Relaxed);
        }
        ended.last_run_ms.store(ms, Ordering::Relaxed);
        #[cfg(feature = "http")]
        if let Some(bucket) = DURATION_BUCKETS_MS.iter().position(|&bound| ms <= bound) {
            ended.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        // Release: see `record_end`.
        ended.runs.fetch_add(1, Ordering::Release);
        let breakdown = match status {
            RunStatus::Completed => return,
            RunStatus::Failed => &ended.failed,
            RunStatus::TimedOut => &ended.timed_out,
            RunStatus::Cancelled => &ended.cancelled,
            RunStatus::Panicked => &ended.panicked,
        };
        if let Some(message) = error {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        }
        breakdown.fetch_add(1, Ordering::Relaxed);
        // Release: pairs with the Acquire load in `snapshot`, so a reader that sees this
        // error also sees the `runs` increment above and never computes runs < errors.
        ended.errors.fetch_add(1, Ordering::Release);
    }

    /// The run's outcome has been published: it no longer counts as in flight. SeqCst:
    /// see `admit`.
    pub(crate) fn settle(&self) {
        self.ended.0.settled.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs admitted and not yet settled.
    pub(crate) fn in_flight(&self) -> u64 {
        // `settled` first: it never passes `admitted`, so reading it first keeps the
        // difference from going negative.
        let settled = self.ended.0.settled.load(Ordering::SeqCst);
        self.admitted
            .0
            .load(Ordering::SeqCst)
            .saturating_sub(settled)
    }

    /// Finished runs per duration bucket (not cumulative), for the metrics endpoint.
    #[cfg(feature = "http")]
    pub(crate) fn duration_buckets(&self) -> [u64; DURATION_BUCKETS_MS.len()] {
        // Relaxed: a scrape is a best-effort snapshot, like the other counters.
        std::array::from_fn(|i| self.ended.0.buckets[i].load(Ordering::Relaxed))
    }

    /// Runs admitted and not yet at their terminal state.
    fn running(&self) -> u64 {
        // `ended` first: it never passes `admitted`, so reading it first keeps the
        // difference from going negative. SeqCst pairs with `admit`, like `in_flight`.
        let ended = self.ended.0.ended.load(Ordering::SeqCst);
        self.admitted.0.load(Ordering::SeqCst).saturating_sub(ended)
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let ended = &self.ended.0;
        // Acquire, and read before `runs`: see `record`.
        let errors = ended.errors.load(Ordering::Acquire);
        let last = ended.last_run_ms.load(Ordering::Relaxed);
        // Acquire, and read before `running`: see `record_end`.
        let runs = ended.runs.load(Ordering::Acquire);
        WorkerStats {
            runs,
            errors,
            last_run_ms: (last != NO_LAST_RUN).then_some(last),
            total_runtime_ms: ended.total_runtime_ms.load(Ordering::Relaxed),
            failed: ended.failed.load(Ordering::Relaxed),
            timed_out: ended.timed_out.load(Ordering::Relaxed),
            cancelled: ended.cancelled.load(Ordering::Relaxed),
            panicked: ended.panicked.load(Ordering::Relaxed),
            running: self.running(),
            max_run_ms: ended.max_run_ms.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_counts_once_and_errors_are_broken_down() {
        let counters = Counters::default();
        let endings = [
            (RunStatus::Completed, 10),
            (RunStatus::Failed, 20),
            (RunStatus::TimedOut, 30),
            (RunStatus::Cancelled, 5),
            (RunStatus::Panicked, 1),
        ];
        for (status, ms) in endings {
            counters.admit();
            assert_eq!(counters.snapshot().running, 1);
            let error = (status != RunStatus::Completed).then(|| format!("{status:?}"));
            counters.record_end(status, Duration::from_millis(ms), error);
            assert_eq!(counters.snapshot().running, 0, "ended, not yet settled");
            assert_eq!(counters.in_flight(), 1, "shutdown still waits for it");
            counters.settle();
        }
        let stats = counters.snapshot();
        assert_eq!(stats.runs, 5);
        assert_eq!(stats.errors, 4);
        assert_eq!(
            stats.failed + stats.timed_out + stats.cancelled + stats.panicked,
            stats.errors
        );
        assert_eq!(stats.total_runtime_ms, 66);
        assert_eq!(stats.max_run_ms, 30);
        assert_eq!(stats.last_run_ms, Some(1));
        assert_eq!(stats.running, 0);
        assert_eq!(stats.last_error.as_deref(), Some("Panicked"));
        assert_eq!(stats.success_rate(), Some(0.2));
        assert_eq!(stats.average_run_ms(), Some(13));
    }

    #[test]
    fn an_unused_definition_has_no_rates() {
        let stats = Counters::default().snapshot();
        assert_eq!(stats.last_run_ms, None);
        assert_eq!(stats.success_rate(), None);
        assert_eq!(stats.average_run_ms(), None);
    }

    #[test]
    fn stats_round_trip_through_json_and_accept_older_documents() {
        let counters = Counters::default();
        counters.admit();
        counters.record_end(
            RunStatus::Failed,
            Duration::from_millis(7),
            Some("boom".into()),
        );
        counters.settle();
        let stats = counters.snapshot();
        let text = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<WorkerStats>(&text).unwrap(), stats);

        let seed_shaped: WorkerStats = serde_json::from_str(
            r#"{"runs":3,"errors":1,"last_run_ms":null,"total_runtime_ms":9}"#,
        )
        .unwrap();
        assert_eq!((seed_shaped.runs, seed_shaped.errors), (3, 1));
    }
}
