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
//!
//! Here are the buffer ([`Ahead`]), the runner's side of it (how much a claim asks for,
//! starting held jobs as slots free, cancelling and handing them back), and the feeder
//! task that starts them as runs end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::Runner;
use crate::queue::follow;
use crate::queue::{ClaimedJob, Finish, FinishOutcome};

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

impl Runner {
    /// Hands the jobs held ahead back to the store, their attempts not counted.
    pub(super) fn hand_back(&self) {
        for Held { job, .. } in self.ahead.take_all() {
            self.send(Finish {
                id: job.id,
                epoch: job.epoch,
                outcome: FinishOutcome::Requeue,
            });
        }
    }

    /// What a claim now would be for: jobs to start at once (the free slots that the
    /// jobs held ahead cannot fill) and jobs to hold ahead; `None` while it is not worth
    /// a round trip (every slot busy or about to be, and more than half of what is to be
    /// held ahead still held).
    pub(super) fn claim_room(&self) -> Option<(usize, usize)> {
        let held = self.leased().len();
        let waiting = self.ahead.len().min(held);
        let running = held - waiting;
        let concurrency = self.options.concurrency;
        let target = self.ahead.target(concurrency);
        let unfilled = concurrency.saturating_sub(running + waiting);
        let room = (concurrency + target).saturating_sub(held);
        let refill = target > 0 && waiting * 2 <= target && room > 0;
        (unfilled > 0 || refill).then(|| (unfilled, room - unfilled))
    }

    /// How many of the jobs leased here run (the others are held ahead).
    pub(super) fn running(&self) -> usize {
        let held = self.leased().len();
        held.saturating_sub(self.ahead.len())
    }

    /// Starts jobs held ahead while slots are free; then wakes the poller if a claim is
    /// worth making. Hands them back instead once this process is stopping.
    pub(super) fn feed(self: &Arc<Self>) {
        if self.is_stopping() {
            self.hand_back();
            return;
        }
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        while self.running() < self.options.concurrency {
            let Some(Held { job, followed }) = self.ahead.pop() else {
                break;
            };
            let id = job.id.clone();
            let started = self.start_job(&registry, job);
            if started && followed {
                follow::forward_run(self, &registry, id);
            }
        }
        if self.claim_room().is_some() {
            self.wake();
        }
    }

    /// A stored job ran here for `elapsed`: how much to claim ahead follows it.
    pub(in crate::queue) fn observe_run(&self, elapsed: Duration) {
        self.ahead.observe(elapsed);
    }

    /// Marks job `id` followed if it is held ahead here; returns whether it is.
    pub(in crate::queue) fn follow_ahead(&self, id: &str) -> bool {
        self.ahead.follow(id)
    }

    /// Stops job `id` held here, whose cancel was asked: one held ahead is cancelled
    /// without starting, a running one as a local cancel would.
    pub(in crate::queue) fn cancel_here(&self, registry: &crate::WorkerRegistry, id: &str) {
        if !self.cancel_ahead(id) {
            registry.cancel_local(id);
        }
    }

    /// Cancels job `id` if it is held ahead here, never started (as a waiting job's
    /// cancel: its attempt not counted); returns whether it was.
    pub(super) fn cancel_ahead(&self, id: &str) -> bool {
        let Some(Held { job, .. }) = self.ahead.take(id) else {
            return false;
        };
        self.send(Finish {
            id: job.id,
            epoch: job.epoch,
            outcome: FinishOutcome::CancelledBeforeStart,
        });
        true
    }
}

/// Starts the jobs held ahead as runs end (see [`Runner::feed`]); ends once the process
/// is stopping, having handed them back.
pub(super) async fn feeder(runner: Arc<Runner>) {
    loop {
        let mut woken = std::pin::pin!(runner.feed_wake.notified());
        woken.as_mut().enable();
        let mut stopped = std::pin::pin!(runner.stopped.notified());
        stopped.as_mut().enable();
        runner.feed();
        if runner.is_stopping() || runner.registry.upgrade().is_none() {
            return;
        }
        tokio::select! {
            () = woken => {}
            () = stopped => {}
            // Ends with the registry, as the poller does.
            () = tokio::time::sleep(runner.options.poll_interval) => {}
        }
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
