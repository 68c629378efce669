//! The storage seam of the durable queue: what the engine asks of a database.

use serde_json::Value;

use super::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, JobFilter, JobPage,
    JobRecord, JobState, NewJob, NewNode, NodeBeat, NodeRecord, StoreEvent, StoreEvents,
};
use crate::StoreFuture;

/// A database that holds jobs so they survive a restart: the one seam between the run
/// engine and SQLite or PostgreSQL (River's `riverdriver`).
///
/// Every implementation passes the same conformance suite (`tests/tests/queue_store.rs`),
/// so the engine relies on the behaviour written here and on nothing else.
///
/// # Time
///
/// Times are `i64` milliseconds since the Unix epoch. Methods that compare or write times
/// take the caller's `now_ms`: the engine computes it from a clock it controls, so tests
/// can run on tokio's paused clock, and every process sharing one SQLite file shares the
/// machine's clock. A store with a clock of its own (a database server's) says so with
/// [`JobStore::clock_ms`]: the engine's clock then follows it, sampled with each
/// heartbeat, so that nodes with skewed clocks agree.
///
/// # Fencing
///
/// A claim is a lease with an owner, an expiry and an epoch. Every write about a claimed
/// job (its outcome, a lease extension, progress, a checkpoint) names the epoch it was
/// claimed with, and is refused once the job has been claimed again or has left
/// `Running`; batched writes return which of them applied (River's
/// `JobSetStateIfRunningMany`).
///
/// # Cancel safety
///
/// Dropping a returned future does not undo its write: a write already handed to the
/// database may still be applied.
pub trait JobStore: Send + Sync + 'static {
    /// Stores `jobs` in one transaction: all of them or, on error, none.
    ///
    /// A job whose `unique_key` is held by a live (not finished) job of the same worker is
    /// not stored; the holder's id comes back with `inserted: false`. The same goes for
    /// an `idempotency_key` under which a job of the worker has completed. Jobs due after
    /// `now_ms` are stored `Scheduled`, the others `Available`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for a job that cannot be stored as
    /// given (no worker, zero attempts, an id already taken); [`Error::Store`](crate::Error::Store)
    /// when the database fails.
    fn enqueue(&self, now_ms: i64, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>>;

    /// Stores `job` and claims it for `owner` in the same transaction, due or not, leased
    /// until `now_ms + lease_ms` (its first attempt, epoch 1): a durable call that runs
    /// in the calling process at once, with one write.
    ///
    /// When a key matches (as for [`enqueue`](Self::enqueue)), nothing is stored or
    /// claimed, and the matching job's id comes back.
    ///
    /// # Errors
    ///
    /// As for [`enqueue`](Self::enqueue).
    fn enqueue_claimed<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        lease_ms: u64,
        job: NewJob,
    ) -> StoreFuture<'a, EnqueueClaim>;

    /// Atomically takes up to `request.limit` due jobs (waiting, with `run_at <= now_ms`)
    /// of the requested workers, at most each worker's count, by priority (highest
    /// first), then `run_at`, then insertion order; and returns them in that order.
    ///
    /// Each becomes `Running`, owned by `request.owner`, leased until
    /// `now_ms + request.lease_ms`, its epoch and attempt raised by one. Two processes
    /// claiming at once never both take a job.
    fn claim(&self, now_ms: i64, request: ClaimRequest) -> StoreFuture<'_, Vec<ClaimedJob>>;

    /// Writes attempts' outcomes, each only if its job is still `Running` under its
    /// epoch; returns, in order, which applied.
    ///
    /// Every error is appended to the job's errors. A job that completes with an
    /// idempotency key answers later enqueues with that key. A job whose cancel was asked
    /// while it ran ([`cancel`](Self::cancel) answered `Running`) and whose attempt then
    /// ends with a retry or a hand-back is `Cancelled` instead: a cancel once answered is
    /// never forgotten.
    fn finish(&self, now_ms: i64, finishes: Vec<Finish>) -> StoreFuture<'_, Vec<bool>>;

    /// Extends the leases of `owner`'s running jobs `(id, epoch)` to `now_ms + lease_ms`,
    /// each only if the job is still `Running` under that owner and epoch; returns, in
    /// order, which applied.
    fn extend<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        leases: Vec<(String, u64)>,
        lease_ms: u64,
    ) -> StoreFuture<'a, Vec<bool>>;

    /// Takes back running jobs whose lease has run out (`lease_until <= now_ms`: their
    /// owner died or stalled); returns their ids.
    ///
    /// The attempt stays counted, with an error "lease expired ...", and the job becomes
    /// `Available`: a job whose process died while it ran is run again, even past its
    /// attempts, since the job did not fail. Only a job that has lost
    /// [`LOST_ATTEMPTS_ALLOWED`] attempts beyond its own (it may be what kills its
    /// processes) is `Discarded`; one whose cancel was requested becomes `Cancelled`.
    fn rescue(&self, now_ms: i64) -> StoreFuture<'_, Vec<String>>;

    /// The `(id, epoch)` of `owner`'s running jobs that an operator asked to cancel
    /// ([`JobStore::cancel`]), so the engine can stop them.
    fn cancel_requests<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<(String, u64)>>;

    /// Stores a running job's latest progress, if it is still `Running` under `epoch`.
    fn progress<'a>(&'a self, id: &'a str, epoch: u64, value: Value) -> StoreFuture<'a, bool>;

    /// Stores a running job's checkpoint, if it is still `Running` under `epoch`; the
    /// next attempt's [`ClaimedJob::checkpoint`].
    fn save_checkpoint<'a>(
        &'a self,
        id: &'a str,
        epoch: u64,
        value: Value,
    ) -> StoreFuture<'a, bool>;

    /// The job's last checkpoint, if it has one.
    fn load_checkpoint<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Value>>;

    /// Everything stored about job `id`.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>>;

    /// One page of jobs matching `filter`, newest first.
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, JobPage>;

    /// Gives a discarded or cancelled job one more attempt, due at `now_ms`; returns
    /// whether it did (`false`: no such job, it is not discarded or cancelled, or its
    /// unique key is held by another live job now).
    fn retry<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, bool>;

    /// Cancels job `id`: at once if it is waiting, through its owner if it is running.
    fn cancel<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, CancelOutcome>;

    /// Deletes job `id` unless it is running (cancel it first); returns whether it did.
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;

    /// Deletes finished jobs that finished at or before `now_ms - older_than_ms` (with
    /// `older_than_ms` 0, every finished job), the cron ticks recorded by then except
    /// each worker's latest, the nodes silent since then, and expired
    /// idempotency records; returns how many jobs.
    fn prune(&self, now_ms: i64, older_than_ms: u64) -> StoreFuture<'_, u64>;

    /// How many jobs each worker has in each state (states with none are left out),
    /// sorted by worker, then state.
    fn counts(&self) -> StoreFuture<'_, Vec<(String, JobState, u64)>>;

    /// When the next waiting job is due (`now_ms` if one is due already), so a poller can
    /// sleep until then; `None` if no job waits.
    fn next_due(&self, now_ms: i64) -> StoreFuture<'_, Option<i64>>;

    /// Enqueues `job` for the cron tick `tick_ms` of `worker` exactly once: returns
    /// `true` if this call recorded the tick (the job is then stored, unless its unique
    /// key is held), `false` if the tick was recorded before, by anyone. A tick's record
    /// is kept until [`prune`](Self::prune) passes it, and each worker's latest for ever;
    /// the engine never asks for a tick older than the latest one.
    fn cron_tick<'a>(
        &'a self,
        now_ms: i64,
        worker: &'a str,
        tick_ms: i64,
        job: NewJob,
    ) -> StoreFuture<'a, bool>;

    /// The latest cron tick recorded for `worker`.
    fn last_cron_tick<'a>(&'a self, worker: &'a str) -> StoreFuture<'a, Option<i64>>;

    /// Records a node (a process that runs jobs) as its queue starts, at `now_ms`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for an id already registered: a
    /// node's id is never reused.
    fn register_node(&self, now_ms: i64, node: NewNode) -> StoreFuture<'_, ()>;

    /// Records a node's heartbeat at `now_ms`; returns `false` for a node unknown (pruned)
    /// or stopped.
    fn node_beat(&self, now_ms: i64, beat: NodeBeat) -> StoreFuture<'_, bool>;

    /// Marks node `id` stopped at `now_ms` (its queue shut down): offline from then on,
    /// and no longer the [leader](Self::lead) if it was.
    fn stop_node<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, ()>;

    /// Every node the store knows, newest first, each with its status at `now_ms`
    /// ([`NodeRecord::status_at`], offline after `offline_after_ms` without a beat).
    /// [`prune`](Self::prune) forgets the nodes silent since its horizon.
    fn nodes(&self, now_ms: i64, offline_after_ms: u64) -> StoreFuture<'_, Vec<NodeRecord>>;

    /// The store's own clock, in ms since the Unix epoch, when every process sharing it
    /// should read time from it (a database server's, so that nodes with skewed clocks
    /// agree on leases and schedules); `None`, the default, for a store whose processes
    /// share one machine's clock. The engine samples it when its queue starts, before it
    /// claims anything, and with every heartbeat, and passes times on it as `now_ms`.
    fn clock_ms(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// The store's events, from now on, for as long as the receiver is kept: jobs
    /// becoming available, cancels, and the messages of followed jobs, as every process
    /// sharing the store publishes them. `None`, the default, for a store that tells
    /// nothing: the engine then polls ([`QueueOptions::poll_interval`](super::QueueOptions::poll_interval))
    /// and reads cancels with its heartbeat.
    ///
    /// A store that can lose its subscription (a connection) reconnects by itself and
    /// sends [`StoreEvent::Resumed`] when it is back. Called on a tokio runtime, which
    /// may run the subscription's tasks.
    fn subscribe(&self) -> Option<StoreEvents> {
        None
    }

    /// Tells every subscribed process `events` ([`StoreEvent::Follow`],
    /// [`StoreEvent::Messages`], [`StoreEvent::Ended`]), in order, in one write where it
    /// can. The default, for a store that [tells nothing](Self::subscribe), does nothing.
    fn publish(&self, events: Vec<StoreEvent>) -> StoreFuture<'_, ()> {
        drop(events);
        Box::pin(std::future::ready(Ok(())))
    }

    /// Whether `owner` leads the processes sharing the store until `now_ms + ttl_ms`: the
    /// one that rescues expired leases and prunes, so that a cluster does it once, not
    /// once per node. Leadership is taken when nobody holds it or its holder's time ran
    /// out, kept by asking again before it does, and given up with
    /// [`stop_node`](Self::stop_node). The default, for a store whose processes share one
    /// machine, is `true` for everyone: its maintenance is cheap and idempotent.
    fn lead<'a>(&'a self, now_ms: i64, owner: &'a str, ttl_ms: u64) -> StoreFuture<'a, bool> {
        let _ = (now_ms, owner, ttl_ms);
        Box::pin(std::future::ready(Ok(true)))
    }
}

/// How many attempts beyond its own a job may lose to a dead process (lease expired)
/// before [`JobStore::rescue`] discards it.
pub const LOST_ATTEMPTS_ALLOWED: u32 = 2;
