//! Claim-ahead: jobs claimed for this process before it has a free slot to run them, so
//! that a run's end starts the next job at once, without a round trip to the store, and
//! claims come in batches while the runs go on.
//!
//! How many are held ahead follows how long this process's jobs take: enough to keep
//! every slot busy for [`HORIZON`], never more than the option allows
//! ([`QueueOptions::claim_ahead`](crate::queue::QueueOptions::claim_ahead)), none until a
//! stored job has ended here. Short jobs get a full buffer; jobs longer than
//! [`HORIZON`] times the concurrency get none, so a node never sits on work another node
//! could start now: a job held ahead waits about [`HORIZON`]. A job held ahead is claimed
//! like a running one (its lease extended by the heartbeat, its cancel answered, handed
//! back at shutdown).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::queue::ClaimedJob;

/// About how long a job held ahead waits for a slot: what is held ahead is what the slots
/// finish in this time, at the mean run time seen here.
pub(super) const HORIZON: Duration = Duration::from_millis(25);

/// The jobs claimed here and not started yet, oldest claim first.
pub(super) struct Ahead {
    jobs: Mutex<VecDeque<Held>>,
    /// The mean run time of the stored jobs that ended here, in µs (a moving average of
    /// the last few), 0 before the first.
    mean_us: AtomicU64,
    /// The most held ahead; 0 turns claim-ahead off.
    max: usize,
}

/// A job held ahead.
pub(super) struct Held {
    pub(super) job: ClaimedJob,
    /// Another node asked to follow it while it waited here: its messages are forwarded
    /// once it starts.
    pub(super) followed: bool,
}

impl Ahead {
    pub(super) fn new(max: usize) -> Self {
        Self {
            jobs: Mutex::new(VecDeque::new()),
            mean_us: AtomicU64::new(0),
            max,
        }
    }

    fn jobs(&self) -> MutexGuard<'_, VecDeque<Held>> {
        // Held for one deque operation, never across an await.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many jobs are held ahead now.
    pub(super) fn len(&self) -> usize {
        self.jobs().len()
    }

    /// How many jobs to hold ahead of `concurrency` slots now.
    pub(super) fn target(&self, concurrency: usize) -> usize {
        // Relaxed: a hint for the size of the next claim.
        let mean = self.mean_us.load(Ordering::Relaxed);
        if self.max == 0 || mean == 0 {
            return 0;
        }
        let horizon = u64::try_from(HORIZON.as_micros()).unwrap_or(u64::MAX);
        let slots = u64::try_from(concurrency).unwrap_or(u64::MAX);
        let fits = slots.saturating_mul(horizon) / mean;
        usize::try_from(fits).unwrap_or(usize::MAX).min(self.max)
    }

    /// A stored job ran here for `elapsed`.
    pub(super) fn observe(&self, elapsed: Duration) {
        if self.max == 0 {
            return;
        }
        let sample = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // Relaxed, and a racing update may be lost: the mean is a hint.
        let mean = self.mean_us.load(Ordering::Relaxed);
        let next = if mean == 0 {
            sample
        } else {
            // An eighth of the way to each new sample: the last dozen or so count.
            (mean - mean / 8).saturating_add(sample / 8).max(1)
        };
        self.mean_us.store(next, Ordering::Relaxed);
    }

    /// Holds `job` until a slot is free.
    pub(super) fn push(&self, job: ClaimedJob) {
        self.jobs().push_back(Held {
            job,
            followed: false,
        });
    }

    /// The job to start next.
    pub(super) fn pop(&self) -> Option<Held> {
        self.jobs().pop_front()
    }

    /// Takes job `id` out (cancelled, its lease lost, claimed again).
    pub(super) fn take(&self, id: &str) -> Option<Held> {
        let mut jobs = self.jobs();
        let at = jobs.iter().position(|held| held.job.id == id)?;
        jobs.remove(at)
    }

    /// Marks job `id` followed, if it is held here; returns whether it is.
    pub(super) fn follow(&self, id: &str) -> bool {
        let mut jobs = self.jobs();
        match jobs.iter_mut().find(|held| held.job.id == id) {
            Some(held) => {
                held.followed = true;
                true
            }
            None => false,
        }
    }

    /// Takes every job out (shutdown hands them back).
    pub(super) fn take_all(&self) -> Vec<Held> {
        self.jobs().drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_nothing_until_a_job_has_ended_then_what_the_horizon_fits() {
        let ahead = Ahead::new(64);
        assert_eq!(ahead.target(16), 0);
        // 16 slots, 5 ms a job: 80 fit in 25 ms, the option allows 64.
        ahead.observe(Duration::from_millis(5));
        assert_eq!(ahead.target(16), 64);
        assert_eq!(ahead.target(4), 20);
    }

    #[test]
    fn long_jobs_are_not_held_ahead() {
        let ahead = Ahead::new(64);
        ahead.observe(Duration::from_secs(1));
        assert_eq!(ahead.target(16), 0);
        // The mean moves an eighth of the way to each new sample.
        for _ in 0..64 {
            ahead.observe(Duration::from_micros(10));
        }
        assert_eq!(ahead.target(16), 64);
    }

    #[test]
    fn off_holds_nothing() {
        let ahead = Ahead::new(0);
        ahead.observe(Duration::from_micros(10));
        assert_eq!(ahead.target(16), 0);
    }
}
