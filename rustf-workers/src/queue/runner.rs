//! The durable queue's second source of runs: it claims due jobs from the store for this
//! process, hands each to the run engine as a run whose id is the job's, and stores each
//! run's outcome, fenced by the claim's epoch, in batches.
//!
//! Four tasks per process: the poller (claims when there is room, woken by a local
//! enqueue, the feeder, the store's notification that jobs became available, or its
//! poll interval), the feeder (starts the jobs claimed ahead, `runner/ahead.rs`, as runs
//! end, and wakes the poller when a claim is worth its round trip), the heartbeat
//! (`runner/heartbeat.rs`: extends the leases of the jobs it holds, stops the ones whose
//! lease was lost or whose cancel was asked from elsewhere, and, on the leader, rescues
//! expired leases), and the writer (`runner/writer.rs`: stores outcomes, several per
//! transaction). A store that tells events has a fifth, in `follow.rs`; with the `cron`
//! feature, a sixth enqueues the schedules' ticks (`runner/cron.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

use super::clock::Clock;
use super::follow::{self, Follows};
use super::sink::JobSink;
use super::QueueOptions;
use super::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Finish, FinishOutcome, JobStore, NewJob,
};
use crate::registry::WeakRegistry;
use crate::run::{Run, RunKeys};
use crate::{Error, Result, RunStatus};

mod ahead;
#[cfg(feature = "cron")]
mod cron;
mod heartbeat;
mod writer;

use ahead::Ahead;

/// One process's side of the durable queue.
pub(crate) struct Runner {
    pub(crate) store: Arc<dyn JobStore>,
    pub(super) registry: WeakRegistry,
    /// This process as the store knows it: a fresh id per start, never reused.
    owner: String,
    options: QueueOptions,
    pub(crate) clock: Arc<Clock>,
    /// Wakes the poller: a local enqueue, the feeder.
    wake: Notify,
    /// Wakes the feeder: a run's end.
    feed_wake: Notify,
    /// The jobs this process holds a lease on, by id, with their claim's epoch: those
    /// running and those held ahead.
    leased: Mutex<HashMap<String, u64>>,
    /// The jobs claimed here and not started yet.
    ahead: Ahead,
    /// Jobs whose outcome was sent to the writer and is not stored yet, with their epoch:
    /// their leases are extended still, so that a store out of reach for longer than a
    /// lease does not find them expired, and rescue them, while their outcome waits.
    unstored: Mutex<HashMap<String, u64>>,
    /// The progress last stored for each job run here.
    stored_progress: Mutex<HashMap<String, crate::Progress>>,
    finishes: mpsc::UnboundedSender<Finish>,
    /// Outcomes sent to the writer and not yet stored.
    unwritten: AtomicUsize,
    /// Wakes `flush` and `await_job`'s waiters when outcomes are stored.
    written: Notify,
    /// Claims under way.
    claiming: AtomicUsize,
    /// Runs started here from claims, ever: what `drain` counts.
    started_runs: AtomicUsize,
    /// Stored jobs in a row that panicked or timed out here (reset by any other end).
    node_failures: AtomicU32,
    /// Until when this node claims nothing (store clock, ms), 0 when it may.
    cooling_until: AtomicI64,
    stopping: AtomicBool,
    stopped: Notify,
    /// Whether the store tells events ([`JobStore::subscribe`]): wake-ups, cancels and
    /// followed jobs' messages come as they happen.
    has_events: bool,
    /// Who follows what here, and what is published from here.
    pub(super) follows: Follows,
    /// How many times the store's events resumed after a gap: followers follow again.
    resumes: AtomicU64,
    /// Dropped with the runner: ends the task passing the store's events on.
    _gone: oneshot::Sender<()>,
}

impl Runner {
    /// Starts the queue's tasks on the current runtime.
    pub(crate) fn start(
        store: Arc<dyn JobStore>,
        registry: WeakRegistry,
        options: QueueOptions,
    ) -> Arc<Self> {
        let (finishes, outcomes) = mpsc::unbounded_channel();
        let events = store.subscribe();
        let (gone_tx, gone) = oneshot::channel();
        let runner = Arc::new(Self {
            store,
            registry,
            owner: uuid::Uuid::new_v4().to_string(),
            ahead: Ahead::new(options.claim_ahead_max()),
            options,
            clock: Arc::new(Clock::new()),
            wake: Notify::new(),
            feed_wake: Notify::new(),
            leased: Mutex::new(HashMap::new()),
            unstored: Mutex::new(HashMap::new()),
            stored_progress: Mutex::new(HashMap::new()),
            finishes,
            unwritten: AtomicUsize::new(0),
            written: Notify::new(),
            claiming: AtomicUsize::new(0),
            started_runs: AtomicUsize::new(0),
            node_failures: AtomicU32::new(0),
            cooling_until: AtomicI64::new(0),
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
            has_events: events.is_some(),
            follows: Follows::default(),
            resumes: AtomicU64::new(0),
            _gone: gone_tx,
        });
        if let Some(events) = events {
            tokio::spawn(follow::listen(Arc::downgrade(&runner), events, gone));
        }
        // The writer holds the runner weakly: the runner holds the writer's sender, and a
        // strong hold both ways kept the runner, its store and the writer for ever.
        tokio::spawn(writer::write_outcomes(
            Arc::clone(&runner.store),
            Arc::clone(&runner.clock),
            Arc::downgrade(&runner),
            outcomes,
        ));
        let starting = Arc::clone(&runner);
        tokio::spawn(async move {
            // The store's clock first, so that no claim or cron tick reads another.
            if let Err(err) = starting.clock.sync(&*starting.store).await {
                log::warn!(target: "rustf_workers::queue", "reading the store's clock: {err}");
            }
            if starting.options.runs_jobs {
                if let Err(err) = starting.register().await {
                    log::warn!(target: "rustf_workers::queue", "registering this node: {err}");
                }
            }
            // Always: durable calls run here even in a process that claims nothing.
            tokio::spawn(heartbeat::heartbeat(Arc::clone(&starting)));
            tokio::spawn(ahead::feeder(Arc::clone(&starting)));
            if starting.options.runs_jobs {
                tokio::spawn(poll(Arc::clone(&starting)));
                #[cfg(feature = "cron")]
                tokio::spawn(cron::cron(starting));
            }
        });
        runner
    }

    /// Registers this process as a node of the store.
    async fn register(&self) -> Result<()> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(());
        };
        let mut workers = registry.definition_names();
        workers.sort_unstable();
        let node = super::NewNode {
            id: self.owner.clone(),
            host: host_name(),
            pid: std::process::id(),
            concurrency: u32::try_from(self.options.concurrency).unwrap_or(u32::MAX),
            memory_pool: registry.memory_pool(),
            workers,
            heartbeat_ms: millis(self.options.heartbeat_every()),
        };
        self.store.register_node(self.clock.now_ms(), node).await
    }

    /// This node's id in the store: the owner of the jobs it claims.
    pub(crate) fn node_id(&self) -> &str {
        &self.owner
    }

    /// Marks this node stopped in the store (its queue has shut down).
    pub(crate) async fn stop_node(&self) -> Result<()> {
        if !self.options.runs_jobs {
            return Ok(());
        }
        self.store.stop_node(self.clock.now_ms(), &self.owner).await
    }

    /// The store's nodes, offline after a lease without a beat (when their jobs are
    /// rescued).
    pub(crate) async fn nodes(&self) -> Result<Vec<super::NodeRecord>> {
        self.store
            .nodes(self.clock.now_ms(), millis(self.options.lease))
            .await
    }

    /// Whether this node is in its cooldown now.
    fn is_cooling(&self) -> bool {
        // Relaxed: a hint read before each claim.
        self.cooling_until.load(Ordering::Relaxed) > self.clock.now_ms()
    }

    /// Counts a stored job's end here toward the cooldown: a panic or a timeout may be
    /// the node's fault, anything else shows it works.
    pub(super) fn count_end(&self, status: RunStatus) {
        let (threshold, period) = self.options.cooldown;
        if !matches!(status, RunStatus::Panicked | RunStatus::TimedOut) {
            self.node_failures.store(0, Ordering::Relaxed);
            return;
        }
        // Relaxed: a count of its own; the cooldown is a hint to the poller.
        let failures = self.node_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if threshold > 0 && failures >= threshold {
            self.node_failures.store(0, Ordering::Relaxed);
            let until = self
                .clock
                .now_ms()
                .saturating_add(i64::try_from(period.as_millis()).unwrap_or(i64::MAX));
            self.cooling_until.store(until, Ordering::Relaxed);
            log::warn!(
                target: "rustf_workers::queue",
                "{failures} stored jobs in a row panicked or timed out here: this node claims \
                 nothing for {period:?}",
            );
        }
    }

    /// A job was enqueued here, or room was made: look for due jobs now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Outcomes were stored (or a waiter should look again).
    pub(crate) async fn written(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.written.notified()).await;
    }

    /// Wakes whoever waits in [`written`](Self::written) to look at the store again.
    pub(super) fn look_again(&self) {
        self.written.notify_waiters();
    }

    /// Waits until every outcome sent to the writer so far is stored, for `within` at
    /// most.
    pub(super) async fn outcomes_stored(&self, within: Duration) {
        let stored = self.until_written(|runner| runner.unwritten.load(Ordering::Acquire) == 0);
        let _ = tokio::time::timeout(within, stored).await;
    }

    /// Waits until `done` holds, looked at again each time outcomes are stored (or a
    /// waiter is woken). `done` reads `unwritten` with Acquire, pairing with the writer's
    /// Release after a batch is stored.
    async fn until_written(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let mut written = std::pin::pin!(self.written.notified());
            written.as_mut().enable();
            if done(self) {
                return;
            }
            written.await;
        }
    }

    /// Whether this process holds the lease of job `id`.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.leased().contains_key(id)
    }

    /// The store's events resumed after a gap.
    pub(super) fn resumed(&self) {
        // Relaxed: a counter compared by followers, ordering nothing.
        self.resumes.fetch_add(1, Ordering::Relaxed);
    }

    /// Registers stand-in `run` as following stored job `id`, when the store tells
    /// events (else its handle gets the outcome only).
    pub(crate) fn follow(&self, id: &str, run: &Arc<Run>) -> Option<follow::Following<'_>> {
        self.has_events.then(|| self.follows.follow(id, run))
    }

    /// Asks the owner of job `id`, running under `epoch`, for its messages, unless this
    /// follower asked since that claim and since the events last resumed (`asked`).
    pub(crate) async fn ask_messages(&self, id: &str, epoch: u64, asked: &mut Option<(u64, u64)>) {
        // Relaxed: see `resumed`.
        let mark = (epoch, self.resumes.load(Ordering::Relaxed));
        if *asked == Some(mark) {
            return;
        }
        *asked = Some(mark);
        let follow = vec![super::StoreEvent::Follow { id: id.to_owned() }];
        if let Err(err) = self.store.publish(follow).await {
            log::warn!(target: "rustf_workers::queue", "[job:{id}] following it: {err}");
            *asked = None;
        }
    }

    /// Stops claiming; the runs under way end as the registry's shutdown ends them.
    pub(crate) fn stop_claiming(&self) {
        // SeqCst: read by the poller between claims; orders with the registry's phase.
        self.stopping.store(true, Ordering::SeqCst);
        self.stopped.notify_waiters();
        self.hand_back();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits until every outcome sent to the writer is stored.
    pub(crate) async fn flush(&self) {
        self.until_written(|runner| {
            runner.unwritten.load(Ordering::Acquire) == 0
                && runner.claiming.load(Ordering::SeqCst) == 0
        })
        .await;
    }

    /// Claims and runs every due job, here and now, until none is due and every outcome
    /// is stored; returns how many runs of claimed jobs started here meanwhile (a job
    /// the engine refused, an unknown worker say, is not one). For tests: see
    /// [`WorkerRegistry::drain_jobs`](crate::WorkerRegistry::drain_jobs).
    pub(crate) async fn drain(self: &Arc<Self>) -> Result<usize> {
        // Relaxed: a count read before and after; the waits below order the runs' ends.
        let before = self.started_runs.load(Ordering::Relaxed);
        let started = || self.started_runs.load(Ordering::Relaxed) - before;
        loop {
            let claimed = self.claim().await?;
            // Wait for what runs here (claimed now or by the poller) to end and be stored.
            self.until_written(|runner| {
                runner.leased().is_empty() && runner.unwritten.load(Ordering::Acquire) == 0
            })
            .await;
            if claimed == 0 {
                return Ok(started());
            }
        }
    }

    /// Whether this process could claim a job now, of any of its workers.
    fn has_room(&self) -> bool {
        let Some(registry) = self.registry.upgrade() else {
            return false;
        };
        let Some((run, ahead)) = self.claim_room() else {
            return false;
        };
        !self.is_cooling() && !registry.job_room(run, ahead).1.is_empty()
    }

    fn leased(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // Held for one map operation, never across an await.
        self.leased.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unstored(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // Held for one map operation (or one batch's), never across an await.
        self.unstored.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn send(&self, finish: Finish) {
        {
            let mut leased = self.leased();
            // Only this claim's entry: the job may have been claimed here again since.
            if leased.get(&finish.id) == Some(&finish.epoch) {
                leased.remove(&finish.id);
            }
        }
        let id = finish.id.clone();
        self.unstored().insert(id.clone(), finish.epoch);
        // Release: `flush` reads it after the writer decrements.
        self.unwritten.fetch_add(1, Ordering::Release);
        if self.finishes.send(finish).is_err() {
            // The writer is gone with its runtime: nothing can be stored any more, and the
            // job's lease will expire and be rescued.
            self.unwritten.fetch_sub(1, Ordering::Release);
            self.unstored().remove(&id);
        }
        self.feed_wake.notify_one();
    }

    /// Claims what this process has room for, to start now and to hold ahead, and starts
    /// what the free slots take. Returns how many it claimed (a job the engine refuses, a
    /// full admission queue say, goes back to the store).
    async fn claim(self: &Arc<Self>) -> Result<usize> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(0);
        };
        let Some((run, ahead)) = self.claim_room() else {
            return Ok(0);
        };
        if registry.is_shutting_down() || self.is_cooling() {
            return Ok(0);
        }
        let (limit, workers) = registry.job_room(run, ahead);
        if workers.is_empty() {
            return Ok(0);
        }
        let request = ClaimRequest {
            owner: self.owner.clone(),
            workers,
            limit,
            lease_ms: millis(self.options.lease),
        };
        // Counted while under way, so that `flush` waits for a claim that shutdown began
        // during: its jobs are handed back before `shutdown` returns.
        let claiming = Claiming::new(self);
        let claimed = self.store.claim(self.clock.now_ms(), request).await;
        let claimed = claimed.map(|jobs| {
            let claimed = jobs.len();
            for job in jobs {
                let stale = self.leased().insert(job.id.clone(), job.epoch);
                if stale.is_some() {
                    // Claimed here again after its lease ran out (the store was out of
                    // reach longer than a lease): the old run stops, its writes refused
                    // (or, still held ahead, it is dropped).
                    if self.ahead.take(&job.id).is_none() {
                        registry.cancel_local(&job.id);
                    }
                }
                self.ahead.push(job);
            }
            // Started here (the slots free now), or by the feeder as runs end.
            self.feed();
            claimed
        });
        drop(claiming);
        claimed
    }

    /// Hands a claimed job to the run engine; a job that cannot start now goes back.
    /// Returns whether it started.
    fn start_job(self: &Arc<Self>, registry: &crate::WorkerRegistry, job: ClaimedJob) -> bool {
        let started = self.start_claimed(registry, job, false).is_ok();
        // Relaxed: a count for `drain`.
        self.started_runs
            .fetch_add(usize::from(started), Ordering::Relaxed);
        started
    }

    /// Hands a job claimed for this process to the run engine, its messages kept for a
    /// reader when `read`; returns its run. A job the engine refuses is discarded (it can
    /// never run: an unknown worker, a payload the worker cannot read) or goes back to
    /// the queue, its attempt not counted (shutting down, a full admission queue), and
    /// the refusal is returned.
    pub(crate) fn start_claimed(
        self: &Arc<Self>,
        registry: &crate::WorkerRegistry,
        job: ClaimedJob,
        read: bool,
    ) -> Result<Arc<Run>> {
        let (id, epoch) = (job.id.clone(), job.epoch);
        let sink = Arc::new(JobSink {
            runner: Arc::clone(self),
            epoch,
            max_attempts: job.max_attempts,
            checkpoint: Mutex::new(job.checkpoint.clone()),
        });
        let keys = Box::new(RunKeys {
            sink: Some(sink),
            ..RunKeys::default()
        });
        let refused = match registry.start_job(job, keys, read) {
            Ok(run) => return Ok(run),
            Err(err) => err,
        };
        let outcome = if refused.is_validation() || refused.is_not_registered() {
            FinishOutcome::Discard {
                error: refused.to_string(),
            }
        } else {
            // Shutting down, or a full admission queue: back to the queue, uncounted.
            FinishOutcome::Requeue
        };
        self.send(Finish { id, epoch, outcome });
        Err(refused)
    }

    /// A durable call: stores `job`, claims it for this process in the same write, and
    /// starts it here (its messages kept for a reader when `read`). On a task of its own,
    /// so that a caller dropped while the store writes leaves nothing half done: the job
    /// then runs with nobody reading it.
    pub(crate) async fn call(
        self: &Arc<Self>,
        registry: crate::WorkerRegistry,
        job: NewJob,
        read: bool,
    ) -> Result<Called> {
        let (answer, called) = tokio::sync::oneshot::channel();
        let runner = Arc::clone(self);
        tokio::spawn(async move {
            let started = runner.store_and_start(&registry, job, read).await;
            if let Err(Ok(Called::Started(run))) = answer.send(started) {
                // The caller is gone: its messages are not to be kept for it.
                if read {
                    drop(run.detach());
                }
            }
        });
        called
            .await
            .unwrap_or_else(|_| Err(Error::internal("a durable call's task ended early")))
    }

    async fn store_and_start(
        self: &Arc<Self>,
        registry: &crate::WorkerRegistry,
        job: NewJob,
        read: bool,
    ) -> Result<Called> {
        // Counted until the job runs or its hand-back is sent, so that `flush` waits for
        // a call that shutdown began during.
        let _claiming = Claiming::new(self);
        let lease = millis(self.options.lease);
        let stored = self
            .store
            .enqueue_claimed(self.clock.now_ms(), &self.owner, lease, job)
            .await?;
        let job = match stored {
            EnqueueClaim::Existing(id) => return Ok(Called::Existing(id)),
            EnqueueClaim::Claimed(job) => *job,
        };
        let id = job.id.clone();
        self.leased().insert(id.clone(), job.epoch);
        match self.start_claimed(registry, job, read) {
            Ok(run) => Ok(Called::Started(run)),
            // Handed back to the queue: it runs when a process has room.
            Err(refused)
                if refused.is_queue_full()
                    || refused.is_shutting_down()
                    || matches!(refused, Error::DaemonLimit { .. }) =>
            {
                Ok(Called::Waiting(id))
            }
            Err(refused) => Err(refused),
        }
    }

    /// The lease of job `id` under `epoch` was taken over: forget it, and stop its run
    /// here, whose writes the store now refuses.
    pub(super) fn lease_lost(&self, registry: &crate::WorkerRegistry, id: &str, epoch: u64) {
        log::warn!(
            target: "rustf_workers::queue",
            "[job:{id}] lease lost: cancelling its run here",
        );
        {
            let mut leased = self.leased();
            if leased.get(id) == Some(&epoch) {
                leased.remove(id);
            }
        }
        // Held ahead under that claim: dropped, the store's record is another's now.
        if self.ahead.take(id).is_none() {
            registry.cancel_local(id);
        }
    }

    /// Cancels stored job `id` that does not run here: one held ahead here or waiting at
    /// once, one running elsewhere through its owner (its notification or next
    /// heartbeat).
    pub(crate) async fn cancel_stored(&self, id: &str) -> Result<()> {
        if self.cancel_ahead(id) {
            return Ok(());
        }
        match self.store.cancel(self.clock.now_ms(), id).await? {
            CancelOutcome::Cancelled | CancelOutcome::Running { .. } => {
                self.written.notify_waiters();
                Ok(())
            }
            CancelOutcome::NotFound | CancelOutcome::AlreadyFinished => Err(Error::RunNotFound {
                run_id: id.to_owned(),
            }),
        }
    }
}

/// What a durable call became.
pub(crate) enum Called {
    /// It runs here: this is its run.
    Started(Arc<Run>),
    /// Stored and handed back (shutdown began, a full admission queue, the daemon limit):
    /// it runs when a process has room.
    Waiting(String),
    /// A key matched the stored job with this id: nothing was stored.
    Existing(String),
}

/// A claim under way, counted for `flush` until dropped, a dropped future's included.
struct Claiming<'a>(&'a Runner);

impl<'a> Claiming<'a> {
    fn new(runner: &'a Runner) -> Self {
        runner.claiming.fetch_add(1, Ordering::SeqCst);
        Self(runner)
    }
}

impl Drop for Claiming<'_> {
    fn drop(&mut self) {
        self.0.claiming.fetch_sub(1, Ordering::SeqCst);
        self.0.written.notify_waiters();
    }
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Claims whenever there is room and something may be due.
async fn poll(runner: Arc<Runner>) {
    // A due job the last claim could not take (its worker at a cap, say): waited for, not
    // claimed again and again, until a run's end or the poll interval.
    let mut due_untaken = false;
    loop {
        // Ends with shutdown, or with the registry itself.
        if runner.is_stopping() || runner.registry.upgrade().is_none() {
            return;
        }
        let mut woken = std::pin::pin!(runner.wake.notified());
        woken.as_mut().enable();
        let wait = match runner.claim().await {
            // Claimed some: there may be more due at once.
            Ok(claimed) if claimed > 0 => {
                due_untaken = false;
                continue;
            }
            Ok(_) => runner.options.poll_interval,
            Err(err) => {
                log::warn!(target: "rustf_workers::queue", "claiming jobs: {err}");
                runner.options.poll_interval
            }
        };
        // With no room, a run's end wakes the poller: no need to know what is due.
        let next_due = if runner.has_room() {
            let now = runner.clock.now_ms();
            match runner.store.next_due(now).await {
                Ok(Some(at)) if at > now => {
                    due_untaken = false;
                    Duration::from_millis(u64::try_from(at - now).unwrap_or(u64::MAX))
                }
                // Due now yet not claimed: it became due since the claim (look once
                // more), or its worker has no room (wait).
                Ok(Some(_)) if !due_untaken => {
                    due_untaken = true;
                    continue;
                }
                _ => wait,
            }
        } else {
            wait
        };
        let mut stopped = std::pin::pin!(runner.stopped.notified());
        stopped.as_mut().enable();
        if runner.is_stopping() {
            return;
        }
        tokio::select! {
            () = woken => due_untaken = false,
            () = stopped => return,
            () = tokio::time::sleep(wait.min(next_due)) => {}
        }
    }
}

/// This machine's name, as the kernel has it; `unknown` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
