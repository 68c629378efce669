//! The bodies of the store's operations: synchronous functions on a connection, run by
//! the writer thread inside its transaction, or on a read connection.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::rows;
use super::sql::*;
use super::Fail;
use crate::queue::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, FinishOutcome,
    JobFilter, JobPage, JobRecord, JobState, NewJob, NewNode, NodeBeat, NodeRecord,
};
use crate::Error;

type Done<T> = std::result::Result<T, Fail>;

pub(super) fn enqueue(conn: &Connection, now: i64, jobs: &[NewJob]) -> Done<Vec<Enqueued>> {
    jobs.iter().map(|job| enqueue_one(conn, now, job)).collect()
}

fn enqueue_one(conn: &Connection, now: i64, job: &NewJob) -> Done<Enqueued> {
    let existing = |sql: &str, key: &Option<String>| -> Done<Option<String>> {
        let Some(key) = key else { return Ok(None) };
        let mut stmt = conn.prepare_cached(sql)?;
        Ok(stmt
            .query_row(params![job.worker, key], |row| row.get(0))
            .optional()?)
    };
    let holder = match existing(FIND_COMPLETED_IDEMPOTENCY_KEY, &job.idempotency_key)? {
        Some(id) => Some(id),
        None => existing(FIND_LIVE_UNIQUE_KEY, &job.unique_key)?,
    };
    if let Some(id) = holder {
        return Ok(Enqueued {
            id,
            inserted: false,
        });
    }
    if conn.prepare_cached(JOB_ID_TAKEN)?.exists([&job.id])? {
        return Err(Fail::Refused(Error::validation(format!(
            "job `{}`: a job with this id is already stored",
            job.id
        ))));
    }
    let run_at = job.run_at_ms.unwrap_or(now);
    let state = if run_at > now {
        JobState::Scheduled
    } else {
        JobState::Available
    };
    conn.prepare_cached(INSERT_JOB)?.execute(params![
        job.id,
        job.worker,
        job.queue,
        state.as_str(),
        job.payload.as_ref().map(Value::to_string),
        job.priority,
        job.max_attempts,
        run_at,
        now,
        job.timeout_ms,
        job.unique_key,
        job.idempotency_key,
        job.memory,
    ])?;
    Ok(Enqueued {
        id: job.id.clone(),
        inserted: true,
    })
}

pub(super) fn enqueue_claimed(
    conn: &Connection,
    now: i64,
    owner: &str,
    lease_ms: u64,
    job: &NewJob,
) -> Done<EnqueueClaim> {
    let enqueued = enqueue_one(conn, now, job)?;
    if !enqueued.inserted {
        return Ok(EnqueueClaim::Existing(enqueued.id));
    }
    // The row just inserted, by its `seq` (the rowid).
    let seq = conn.last_insert_rowid();
    let lease_until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
    let (claimed, _, _) = conn
        .prepare_cached(CLAIM_JOB)?
        .query_row(params![seq, owner, lease_until], rows::claimed_job)?;
    Ok(EnqueueClaim::Claimed(Box::new(claimed)))
}

pub(super) fn claim(conn: &Connection, now: i64, request: &ClaimRequest) -> Done<Vec<ClaimedJob>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    // A worker named twice gets the sum of its counts.
    let mut wanted: BTreeMap<&str, usize> = BTreeMap::new();
    for (worker, count) in &request.workers {
        *wanted.entry(worker).or_default() += count;
    }
    // (priority, run_at, seq): each worker's best `count`, then the best `limit` of all.
    let mut candidates: Vec<(i32, i64, i64)> = Vec::new();
    let mut due = conn.prepare_cached(SELECT_DUE_JOBS_OF_WORKER)?;
    for (worker, count) in wanted {
        let take = count.min(request.limit);
        if take == 0 {
            continue;
        }
        let rows = due.query_map(params![worker, now, take], |row| {
            Ok((row.get(1)?, row.get(2)?, row.get(0)?))
        })?;
        for row in rows {
            candidates.push(row?);
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    candidates.truncate(request.limit);

    let lease_until = now.saturating_add(i64::try_from(request.lease_ms).unwrap_or(i64::MAX));
    let mut take = conn.prepare_cached(CLAIM_JOB)?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for (_, _, seq) in candidates {
        let job = take
            .query_row(params![seq, request.owner, lease_until], rows::claimed_job)
            .optional()?;
        claimed.extend(job.map(|(job, _, _)| job));
    }
    Ok(claimed)
}

pub(super) fn finish(conn: &Connection, now: i64, finishes: &[Finish]) -> Done<Vec<bool>> {
    finishes
        .iter()
        .map(|finish| {
            let (id, epoch) = (&finish.id, finish.epoch);
            let changed = match &finish.outcome {
                FinishOutcome::Completed => conn
                    .prepare_cached(COMPLETE_JOB)?
                    .execute(params![id, epoch, now])?,
                FinishOutcome::Retry { at_ms, error } => conn
                    .prepare_cached(SCHEDULE_RETRY)?
                    .execute(params![id, epoch, now, error, at_ms])?,
                FinishOutcome::Discard { error } => {
                    end_with_error(conn, id, epoch, now, error, JobState::Discarded)?
                }
                FinishOutcome::Cancelled { error } => {
                    end_with_error(conn, id, epoch, now, error, JobState::Cancelled)?
                }
                FinishOutcome::Requeue => conn
                    .prepare_cached(REQUEUE_JOB)?
                    .execute(params![id, epoch, now])?,
                FinishOutcome::CancelledBeforeStart => conn
                    .prepare_cached(CANCEL_UNSTARTED_JOB)?
                    .execute(params![id, epoch, now])?,
            };
            // A stored job's checkpoint is its row's (`SAVE_CHECKPOINT`, fenced): nothing
            // else to remove with its outcome.
            Ok(changed == 1)
        })
        .collect()
}

fn end_with_error(
    conn: &Connection,
    id: &str,
    epoch: u64,
    now: i64,
    error: &str,
    state: JobState,
) -> Done<usize> {
    let mut stmt = conn.prepare_cached(END_JOB_WITH_ERROR)?;
    Ok(stmt.execute(params![id, epoch, now, error, state.as_str()])?)
}

pub(super) fn extend(
    conn: &Connection,
    now: i64,
    owner: &str,
    leases: &[(String, u64)],
    lease_ms: u64,
) -> Done<Vec<bool>> {
    let until = now.saturating_add(i64::try_from(lease_ms).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(EXTEND_LEASE)?;
    leases
        .iter()
        .map(|(id, epoch)| Ok(stmt.execute(params![id, epoch, owner, until])? == 1))
        .collect()
}

pub(super) fn rescue(conn: &Connection, now: i64) -> Done<Vec<String>> {
    let mut ids = Vec::new();
    for sql in [
        CANCEL_EXPIRED_CANCELLING,
        DISCARD_EXPIRED_LAST_ATTEMPTS,
        RELEASE_EXPIRED_LEASES,
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([now], |row| row.get(0))?;
        for id in rows {
            ids.push(id?);
        }
    }
    Ok(ids)
}

pub(super) fn cancel_requests(conn: &Connection, owner: &str) -> Done<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(SELECT_CANCEL_REQUESTS)?;
    let rows = stmt.query_map([owner], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A fenced update of one JSON column (`SAVE_PROGRESS`, `SAVE_CHECKPOINT`).
pub(super) fn set_json(
    conn: &Connection,
    sql: &str,
    id: &str,
    epoch: u64,
    value: &Value,
) -> Done<bool> {
    Ok(conn
        .prepare_cached(sql)?
        .execute(params![id, epoch, value.to_string()])?
        == 1)
}

pub(super) fn load_checkpoint(conn: &Connection, id: &str) -> Done<Option<Value>> {
    let mut stmt = conn.prepare_cached(LOAD_CHECKPOINT)?;
    Ok(stmt
        .query_row([id], |row| rows::json(row, 0))
        .optional()?
        .flatten())
}

pub(super) fn get(conn: &Connection, id: &str) -> Done<Option<JobRecord>> {
    let mut stmt = conn.prepare_cached(GET_JOB)?;
    Ok(stmt.query_row([id], rows::job_record).optional()?)
}

pub(super) fn list(conn: &Connection, filter: &JobFilter) -> Done<JobPage> {
    let size = filter.page_size();
    let states = (!filter.states.is_empty()).then(|| {
        Value::from(filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>()).to_string()
    });
    let mut stmt = conn.prepare_cached(LIST_JOBS)?;
    // One more than a page tells whether there is a next one.
    let rows = stmt.query_map(
        params![
            states,
            filter.worker,
            filter.search,
            filter.before_id,
            size + 1
        ],
        rows::job_record,
    )?;
    let mut jobs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let next = if jobs.len() > size {
        jobs.truncate(size);
        jobs.last().map(|job| job.id.clone())
    } else {
        None
    };
    Ok(JobPage { jobs, next })
}

pub(super) fn retry(conn: &Connection, now: i64, id: &str) -> Done<bool> {
    Ok(conn
        .prepare_cached(RETRY_FINISHED_JOB)?
        .execute(params![id, now])?
        == 1)
}

pub(super) fn cancel(conn: &Connection, now: i64, id: &str) -> Done<CancelOutcome> {
    let found = conn
        .prepare_cached(JOB_STATE_AND_OWNER)?
        .query_row([id], |row| {
            Ok((rows::state(row, 0)?, row.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    Ok(match found {
        None => CancelOutcome::NotFound,
        Some((state, _)) if state.is_finished() => CancelOutcome::AlreadyFinished,
        Some((JobState::Running, owner)) => {
            conn.prepare_cached(REQUEST_CANCEL)?.execute([id])?;
            CancelOutcome::Running {
                owner: owner.unwrap_or_default(),
            }
        }
        Some(_) => {
            conn.prepare_cached(CANCEL_WAITING_JOB)?
                .execute(params![id, now])?;
            CancelOutcome::Cancelled
        }
    })
}

pub(super) fn delete(conn: &Connection, id: &str) -> Done<bool> {
    Ok(conn.prepare_cached(DELETE_JOB)?.execute([id])? == 1)
}

pub(super) fn prune(conn: &Connection, now: i64, older_than_ms: u64) -> Done<u64> {
    let horizon = now.saturating_sub(i64::try_from(older_than_ms).unwrap_or(i64::MAX));
    let pruned = conn
        .prepare_cached(PRUNE_FINISHED_JOBS)?
        .execute([horizon])?;
    conn.prepare_cached(PRUNE_CRON_TICKS)?.execute([horizon])?;
    conn.prepare_cached(PRUNE_NODES)?.execute([horizon])?;
    conn.prepare_cached(PRUNE_RUN_IDEMPOTENCY)?.execute([now])?;
    Ok(pruned as u64)
}

pub(super) fn counts(conn: &Connection) -> Done<Vec<(String, JobState, u64)>> {
    let mut stmt = conn.prepare_cached(COUNT_JOBS)?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get(0)?, rows::state(row, 1)?, row.get(2)?))
    })?;
    let mut counts = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    counts.sort();
    Ok(counts)
}

pub(super) fn next_due(conn: &Connection, now: i64) -> Done<Option<i64>> {
    let earliest: Option<i64> = conn
        .prepare_cached(NEXT_DUE)?
        .query_row([], |row| row.get(0))?;
    Ok(earliest.map(|at| at.max(now)))
}

pub(super) fn cron_tick(
    conn: &Connection,
    now: i64,
    worker: &str,
    tick_ms: i64,
    job: &NewJob,
) -> Done<bool> {
    let recorded = conn
        .prepare_cached(RECORD_CRON_TICK)?
        .execute(params![worker, tick_ms, job.id, now])?
        == 1;
    if recorded {
        enqueue_one(conn, now, job)?;
    }
    Ok(recorded)
}

pub(super) fn last_cron_tick(conn: &Connection, worker: &str) -> Done<Option<i64>> {
    Ok(conn
        .prepare_cached(LAST_CRON_TICK)?
        .query_row([worker], |row| row.get(0))?)
}

pub(super) fn register_node(conn: &Connection, now: i64, node: &NewNode) -> Done<()> {
    let workers = serde_json::to_string(&node.workers)
        .map_err(|err| Fail::Refused(Error::validation(format!("node `{}`: {err}", node.id))))?;
    let inserted = conn.prepare_cached(REGISTER_NODE)?.execute(params![
        node.id,
        node.host,
        node.pid,
        node.concurrency,
        node.memory_pool,
        workers,
        node.heartbeat_ms,
        now,
    ]);
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(err, _))
            if err.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Fail::Refused(Error::validation(format!(
                "node `{}` is already registered: a node's id is never reused",
                node.id
            ))))
        }
        Err(err) => Err(err.into()),
    }
}

pub(super) fn node_beat(conn: &Connection, now: i64, beat: &NodeBeat) -> Done<bool> {
    let changed = conn.prepare_cached(BEAT_NODE)?.execute(params![
        beat.id,
        now,
        beat.running,
        beat.memory_used,
        beat.cooling_until_ms,
    ])?;
    Ok(changed == 1)
}

pub(super) fn stop_node(conn: &Connection, now: i64, id: &str) -> Done<()> {
    conn.prepare_cached(STOP_NODE)?.execute(params![id, now])?;
    Ok(())
}

pub(super) fn nodes(conn: &Connection, now: i64, offline_after_ms: u64) -> Done<Vec<NodeRecord>> {
    let mut stmt = conn.prepare_cached(SELECT_NODES)?;
    let rows = stmt.query_map([], rows::node_record)?;
    let mut nodes = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for node in &mut nodes {
        node.status = node.status_at(now, offline_after_ms);
    }
    Ok(nodes)
}
