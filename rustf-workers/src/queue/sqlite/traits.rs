//! [`SqliteQueue`] as a [`JobStore`], a [`CheckpointStore`] and an [`IdempotencyStore`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::sql::*;
use super::{ops, rows, Fail, SqliteQueue};
use crate::queue::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, JobFilter, JobPage,
    JobRecord, JobState, JobStore, NewJob, NewNode, NodeBeat, NodeRecord,
};
use crate::{CheckpointStore, IdempotencyStore, StoreFuture};

impl JobStore for SqliteQueue {
    fn enqueue(&self, now_ms: i64, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>> {
        Box::pin(async move {
            jobs.iter().try_for_each(NewJob::validate)?;
            self.write("enqueuing jobs into", move |c| {
                ops::enqueue(c, now_ms, &jobs)
            })
            .await
        })
    }

    fn enqueue_claimed<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        lease_ms: u64,
        job: NewJob,
    ) -> StoreFuture<'a, EnqueueClaim> {
        let owner = owner.to_owned();
        Box::pin(async move {
            job.validate()?;
            self.write("enqueuing jobs into", move |c| {
                ops::enqueue_claimed(c, now_ms, &owner, lease_ms, &job)
            })
            .await
        })
    }

    fn register_node(&self, now_ms: i64, node: NewNode) -> StoreFuture<'_, ()> {
        Box::pin(self.write("registering a node in", move |c| {
            ops::register_node(c, now_ms, &node)
        }))
    }

    fn node_beat(&self, now_ms: i64, beat: NodeBeat) -> StoreFuture<'_, bool> {
        Box::pin(self.write("recording a node's heartbeat in", move |c| {
            ops::node_beat(c, now_ms, &beat)
        }))
    }

    fn stop_node<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, ()> {
        let id = id.to_owned();
        Box::pin(self.write("stopping a node in", move |c| {
            ops::stop_node(c, now_ms, &id)
        }))
    }

    fn nodes(&self, now_ms: i64, offline_after_ms: u64) -> StoreFuture<'_, Vec<NodeRecord>> {
        Box::pin(self.read("listing nodes from", move |c| {
            ops::nodes(c, now_ms, offline_after_ms)
        }))
    }

    fn claim(&self, now_ms: i64, request: ClaimRequest) -> StoreFuture<'_, Vec<ClaimedJob>> {
        Box::pin(self.write("claiming jobs from", move |c| {
            ops::claim(c, now_ms, &request)
        }))
    }

    fn finish(&self, now_ms: i64, finishes: Vec<Finish>) -> StoreFuture<'_, Vec<bool>> {
        Box::pin(self.write("writing job outcomes to", move |c| {
            ops::finish(c, now_ms, &finishes)
        }))
    }

    fn extend<'a>(
        &'a self,
        now_ms: i64,
        owner: &'a str,
        leases: Vec<(String, u64)>,
        lease_ms: u64,
    ) -> StoreFuture<'a, Vec<bool>> {
        let owner = owner.to_owned();
        Box::pin(self.write("extending leases in", move |c| {
            ops::extend(c, now_ms, &owner, &leases, lease_ms)
        }))
    }

    fn rescue(&self, now_ms: i64) -> StoreFuture<'_, Vec<String>> {
        Box::pin(self.write("rescuing expired leases in", move |c| {
            ops::rescue(c, now_ms)
        }))
    }

    fn cancel_requests<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<(String, u64)>> {
        let owner = owner.to_owned();
        Box::pin(self.read("reading cancel requests from", move |c| {
            ops::cancel_requests(c, &owner)
        }))
    }

    fn progress<'a>(&'a self, id: &'a str, epoch: u64, value: Value) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        Box::pin(self.write("saving progress to", move |c| {
            ops::set_json(c, SAVE_PROGRESS, &id, epoch, &value)
        }))
    }

    fn save_checkpoint<'a>(
        &'a self,
        id: &'a str,
        epoch: u64,
        value: Value,
    ) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        Box::pin(self.write("saving a checkpoint to", move |c| {
            ops::set_json(c, SAVE_CHECKPOINT, &id, epoch, &value)
        }))
    }

    fn load_checkpoint<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Value>> {
        let id = id.to_owned();
        Box::pin(self.read("loading a checkpoint from", move |c| {
            ops::load_checkpoint(c, &id)
        }))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<JobRecord>> {
        let id = id.to_owned();
        Box::pin(self.read("reading a job from", move |c| ops::get(c, &id)))
    }

    fn list(&self, filter: JobFilter) -> StoreFuture<'_, JobPage> {
        Box::pin(self.read("listing jobs in", move |c| ops::list(c, &filter)))
    }

    fn retry<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        Box::pin(self.write("retrying a job in", move |c| ops::retry(c, now_ms, &id)))
    }

    fn cancel<'a>(&'a self, now_ms: i64, id: &'a str) -> StoreFuture<'a, CancelOutcome> {
        let id = id.to_owned();
        Box::pin(self.write("cancelling a job in", move |c| ops::cancel(c, now_ms, &id)))
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        let id = id.to_owned();
        Box::pin(self.write("deleting a job from", move |c| ops::delete(c, &id)))
    }

    fn prune(&self, now_ms: i64, older_than_ms: u64) -> StoreFuture<'_, u64> {
        Box::pin(self.write("pruning jobs from", move |c| {
            ops::prune(c, now_ms, older_than_ms)
        }))
    }

    fn counts(&self) -> StoreFuture<'_, Vec<(String, JobState, u64)>> {
        Box::pin(self.read("counting jobs in", ops::counts))
    }

    fn next_due(&self, now_ms: i64) -> StoreFuture<'_, Option<i64>> {
        Box::pin(self.read("finding the next due job in", move |c| {
            ops::next_due(c, now_ms)
        }))
    }

    fn cron_tick<'a>(
        &'a self,
        now_ms: i64,
        worker: &'a str,
        tick_ms: i64,
        job: NewJob,
    ) -> StoreFuture<'a, bool> {
        let worker = worker.to_owned();
        Box::pin(async move {
            job.validate()?;
            self.write("recording a cron tick in", move |c| {
                ops::cron_tick(c, now_ms, &worker, tick_ms, &job)
            })
            .await
        })
    }

    fn last_cron_tick<'a>(&'a self, worker: &'a str) -> StoreFuture<'a, Option<i64>> {
        let worker = worker.to_owned();
        Box::pin(self.read("reading cron ticks from", move |c| {
            ops::last_cron_tick(c, &worker)
        }))
    }
}

/// Checkpoints of in-process runs (not stored jobs: those use
/// [`JobStore::save_checkpoint`], fenced by their claim), in the table `run_checkpoints`.
impl CheckpointStore for SqliteQueue {
    fn save<'a>(&'a self, worker: &'a str, run_id: &'a str, value: Value) -> StoreFuture<'a, ()> {
        let (worker, run_id) = (worker.to_owned(), run_id.to_owned());
        Box::pin(self.write("saving a checkpoint to", move |c| {
            c.prepare_cached(SAVE_RUN_CHECKPOINT)?.execute(params![
                worker,
                run_id,
                value.to_string()
            ])?;
            Ok(())
        }))
    }

    fn load<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, Option<Value>> {
        let (worker, run_id) = (worker.to_owned(), run_id.to_owned());
        Box::pin(self.read("loading a checkpoint from", move |c| {
            let mut stmt = c.prepare_cached(LOAD_RUN_CHECKPOINT)?;
            Ok(stmt
                .query_row(params![worker, run_id], |row| rows::json(row, 0))
                .optional()?
                .flatten())
        }))
    }

    fn remove<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, ()> {
        let (worker, run_id) = (worker.to_owned(), run_id.to_owned());
        Box::pin(self.write("removing a checkpoint from", move |c| {
            c.prepare_cached(REMOVE_RUN_CHECKPOINT)?
                .execute(params![worker, run_id])?;
            Ok(())
        }))
    }
}

/// Idempotency records of in-process runs, in the table `run_idempotency`; a stored job's
/// idempotency key is answered by [`JobStore::enqueue`] instead.
///
/// The trait is synchronous, so both methods block the calling thread briefly: `lookup`
/// for one indexed read on a read connection, `record` until the writer thread has
/// committed it (one batch, typically well under a millisecond to a few for the fsync).
/// Expiry is by the system clock, which must outlive the process. A database error is
/// logged and taken as "no record" (`lookup`) or "not recorded" (`record`), since the
/// trait has no way to return it.
impl IdempotencyStore for SqliteQueue {
    fn lookup(&self, worker: &str, key: &str) -> Option<String> {
        let (worker, key) = (worker.to_owned(), key.to_owned());
        let now = wall_clock_ms();
        let found = self
            .inner
            .read_now("looking up an idempotency key in", move |c| {
                let mut stmt = c.prepare_cached(LOOKUP_RUN_IDEMPOTENCY)?;
                Ok(stmt
                    .query_row(params![worker, key, now], |row| row.get(0))
                    .optional()?)
            });
        found.unwrap_or_else(|err| {
            log::error!("{err}");
            None
        })
    }

    fn record(&self, worker: &str, key: &str, run_id: &str, retention: Duration) {
        let (worker, key, run_id) = (worker.to_owned(), key.to_owned(), run_id.to_owned());
        let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let expires = wall_clock_ms().saturating_add(retention);
        let recorded = self.inner.writer.write_blocking(
            "recording an idempotency key in",
            move |c| -> Result<(), Fail> {
                c.prepare_cached(RECORD_RUN_IDEMPOTENCY)?
                    .execute(params![worker, key, run_id, expires])?;
                Ok(())
            },
        );
        if let Err(err) = recorded {
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
