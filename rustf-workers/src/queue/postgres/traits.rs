//! [`PostgresQueue`] as a [`JobStore`], a [`CheckpointStore`] and an [`IdempotencyStore`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::sql::*;
use super::{ops, Fail, PostgresQueue};
use crate::queue::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, JobFilter, JobPage,
    JobRecord, JobState, JobStore, NewJob, NewNode, NodeBeat, NodeRecord, StoreEvent, StoreEvents,
};
use crate::{CheckpointStore, IdempotencyStore, StoreFuture};

/// Runs `$body` (an `ops` function's future) on a pooled connection `$c`, and wraps its
/// failure, saying `$action`.
macro_rules! on_conn {
    ($store:ident, $action:literal, |$c:ident| $body:expr) => {{
        let action = $action;
        let conn = $store.conn(action).await?;
        let $c = &conn;
        $body.await.map_err($store.error(action))
    }};
}

/// Runs `$body` inside a transaction `$tx` on a pooled connection, committing when it
/// succeeds (rolling back when it fails: the transaction is dropped).
///
/// A transaction that PostgreSQL rolled back as a deadlock's victim (two batches storing
/// the same unique keys in opposite orders) is run again, a few times: it was undone
/// whole, so nothing is written twice.
macro_rules! in_transaction {
    ($store:ident, $action:literal, |$tx:ident| $body:expr) => {{
        let action = $action;
        let mut conn = $store.conn(action).await?;
        let mut tries = 0;
        loop {
            tries += 1;
            let result: Result<_, Fail> = async {
                let $tx = conn.transaction().await?;
                let value = $body.await?;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Err(fail) if tries < TRANSACTION_TRIES && fail.is_deadlock() => continue,
                result => break result.map_err($store.error(action)),
            }
        }
    }};
}

/// How many times a transaction chosen as a deadlock's victim is run in all.
const TRANSACTION_TRIES: u32 = 3;

impl JobStore for PostgresQueue {
    fn enqueue(&self, now_ms: i64, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>> {
        Box::pin(async move {
            jobs.iter().try_for_each(NewJob::validate)?;
            if jobs.is_empty() {
                return Ok(Vec::new());
            }
            in_transaction!(self, "enqueuing jobs into", |tx| ops::enqueue_in(
                &tx, now_ms, &jobs
            ))
        })
    }

    fn enqueue_claimed<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        lease_ms: u64,
        job: NewJob,
    ) -> StoreFuture<'a, EnqueueClaim> {
        Box::pin(async move {
            job.validate()?;
            in_transaction!(self, "enqueuing jobs into", |tx| ops::enqueue_claimed(
                &tx, now_ms, owner, lease_ms, &job
            ))
        })
    }

    fn register_node(&self, now_ms: i64, node: NewNode) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            on_conn!(self, "registering a node in", |c| ops::register_node(
                c, now_ms, &node
            ))
        })
    }

    fn node_beat(&self, now_ms: i64, beat: NodeBeat) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            on_conn!(self, "recording a node's heartbeat in", |c| ops::node_beat(
                c, now_ms, &beat
            ))
        })
    }

    fn stop_node<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            on_conn!(self, "stopping a node in", |c| ops::stop_node(
                c, now_ms, id
            ))
        })
    }

    fn nodes(&self, now_ms: i64, offline_after_ms: u64) -> StoreFuture<'_, Vec<NodeRecord>> {
        Box::pin(async move {
            on_conn!(self, "listing nodes from", |c| ops::nodes(
                c,
                now_ms,
                offline_after_ms
            ))
        })
    }

    /// The database server's clock: every process sharing the database reads time from
    /// it, so nodes with skewed clocks agree on leases and schedules.
    fn clock_ms(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(
            async move { on_conn!(self, "reading the clock of", |c| ops::clock_ms(c)).map(Some) },
        )
    }

    /// A connection of its own that `LISTEN`s: jobs stored or made available, cancels,
    /// and the messages of followed jobs, from every process on the database. It
    /// reconnects when lost (after 0.1 s, growing to 5 s), sending
    /// [`StoreEvent::Resumed`] each time it listens again.
    fn subscribe(&self) -> Option<StoreEvents> {
        Some(self.subscribe_events())
    }

    /// `NOTIFY`, in one transaction: a message whose JSON is over 6,000 bytes (a
    /// notification carries fewer than 8,000) is stored in the table `job_messages` and
    /// its notification names the row, read by the subscribers (rows are kept ten
    /// minutes).
    fn publish(&self, events: Vec<StoreEvent>) -> StoreFuture<'_, ()> {
        Box::pin(self.publish_events(events))
    }

    /// A row of the table `leader` with a time to live.
    fn lead<'a>(&'a self, now_ms: i64, owner: &'a str, ttl_ms: u64) -> StoreFuture<'a, bool> {
        Box::pin(self.lead_until(now_ms, owner, ttl_ms))
    }

    fn claim(&self, now_ms: i64, request: ClaimRequest) -> StoreFuture<'_, Vec<ClaimedJob>> {
        Box::pin(async move {
            if request.limit == 0 {
                return Ok(Vec::new());
            }
            on_conn!(self, "claiming jobs from", |c| ops::claim(
                c, now_ms, &request
            ))
        })
    }

    fn finish(&self, now_ms: i64, finishes: Vec<Finish>) -> StoreFuture<'_, Vec<bool>> {
        Box::pin(async move {
            on_conn!(self, "writing job outcomes to", |c| ops::finish(
                c, now_ms, &finishes
            ))
        })
    }

    fn extend<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        leases: Vec<(String, u64)>,
        lease_ms: u64,
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            on_conn!(self, "extending leases in", |c| ops::extend(
                c, now_ms, owner, &leases, lease_ms
            ))
        })
    }

    fn rescue(&self, now_ms: i64) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            on_conn!(self, "rescuing expired leases in", |c| ops::rescue(
                c, now_ms
            ))
        })
    }

    fn cancel_requests<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<(String, u64)>> {
        Box::pin(async move {
            on_conn!(self, "reading cancel requests from", |c| {
                ops::cancel_requests(c, owner)
            })
        })
    }

    fn progress<'a>(&'a self, id: &'a str, epoch: u64, value: Value) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            on_conn!(self, "saving progress to", |c| ops::set_json(
                c,
                SAVE_PROGRESS,
                id,
                epoch,
                &value
            ))
        })
    }

    fn save_checkpoint<'a>(
        &'a self,
        id: &'a str,
        epoch: u64,
        value: Value,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            on_conn!(self, "saving a checkpoint to", |c| ops::set_json(
                c,
                SAVE_CHECKPOINT,
                id,
                epoch,
                &value
            ))
        })
    }

    fn load_checkpoint<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(async move {
            on_conn!(self, "loading a checkpoint from", |c| ops::load_checkpoint(
                c, id
            ))
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        Box::pin(async move { on_conn!(self, "reading a job from", |c| ops::get(c, id)) })
    }

    fn list(&self, filter: JobFilter) -> StoreFuture<'_, JobPage> {
        Box::pin(async move { on_conn!(self, "listing jobs in", |c| ops::list(c, &filter)) })
    }

    fn retry<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { on_conn!(self, "retrying a job in", |c| ops::retry(c, now_ms, id)) })
    }

    fn cancel<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, CancelOutcome> {
        Box::pin(async move {
            in_transaction!(self, "cancelling a job in", |tx| ops::cancel(
                &tx, now_ms, id
            ))
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { on_conn!(self, "deleting a job from", |c| ops::delete(c, id)) })
    }

    fn prune(&self, now_ms: i64, older_than_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            in_transaction!(self, "pruning jobs from", |tx| ops::prune(
                &tx,
                now_ms,
                older_than_ms
            ))
        })
    }

    fn counts(&self) -> StoreFuture<'_, Vec<(String, JobState, u64)>> {
        Box::pin(async move { on_conn!(self, "counting jobs in", |c| ops::counts(c)) })
    }

    fn next_due(&self, now_ms: i64) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            on_conn!(self, "finding the next due job in", |c| ops::next_due(
                c, now_ms
            ))
        })
    }

    fn cron_tick<'a>(
        &'a self,
        now_ms: i64,
        worker: &'a str,
        tick_ms: i64,
        job: NewJob,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            job.validate()?;
            in_transaction!(self, "recording a cron tick in", |tx| ops::cron_tick(
                &tx, now_ms, worker, tick_ms, &job
            ))
        })
    }

    fn last_cron_tick<'a>(&'a self, worker: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            on_conn!(self, "reading cron ticks from", |c| ops::last_cron_tick(
                c, worker
            ))
        })
    }
}

/// Checkpoints of in-process runs (not stored jobs: those use
/// [`JobStore::save_checkpoint`], fenced by their claim), in the table `run_checkpoints`.
impl CheckpointStore for PostgresQueue {
    fn save<'a>(&'a self, worker: &'a str, run_id: &'a str, value: Value) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            on_conn!(self, "saving a checkpoint to", |c| async {
                let stmt = c.prepare_cached(SAVE_RUN_CHECKPOINT).await?;
                c.execute(&stmt, &[&worker, &run_id, &value]).await?;
                Ok::<_, Fail>(())
            })
        })
    }

    fn load<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, Option<Value>> {
        Box::pin(async move {
            on_conn!(self, "loading a checkpoint from", |c| async {
                let stmt = c.prepare_cached(LOAD_RUN_CHECKPOINT).await?;
                let row = c.query_opt(&stmt, &[&worker, &run_id]).await?;
                Ok::<_, Fail>(row.map(|row| row.try_get(0)).transpose()?)
            })
        })
    }

    fn remove<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            on_conn!(self, "removing a checkpoint from", |c| async {
                let stmt = c.prepare_cached(REMOVE_RUN_CHECKPOINT).await?;
                c.execute(&stmt, &[&worker, &run_id]).await?;
                Ok::<_, Fail>(())
            })
        })
    }
}

/// Idempotency records of in-process runs, in the table `run_idempotency`; a stored job's
/// idempotency key is answered by [`JobStore::enqueue`] instead.
///
/// The trait is synchronous, so both methods block the calling thread for one round trip
/// to the database. They run on a connection of their own, driven by a thread the queue
/// starts on first use, not on the pool: a pooled connection is driven by the caller's
/// runtime, which a blocked `current_thread` runtime cannot do (a deadlock), and
/// `block_in_place` panics there. Expiry is by the system clock. A database error is
/// logged and taken as "no record" (`lookup`) or "not recorded" (`record`), since the
/// trait has no way to return it.
impl IdempotencyStore for PostgresQueue {
    fn lookup(&self, worker: &str, key: &str) -> Option<String> {
        let found = self.inner.blocking.lookup(worker, key, wall_clock_ms());
        found.unwrap_or_else(|err| {
            log::error!("{err}");
            None
        })
    }

    fn record(&self, worker: &str, key: &str, run_id: &str, retention: Duration) {
        let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let expires = wall_clock_ms().saturating_add(retention);
        if let Err(err) = self.inner.blocking.record(worker, key, run_id, expires) {
            log::error!("{err}");
        }
    }
}

fn wall_clock_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
