//! The bodies of the store's operations: async functions on a pooled connection, each
//! one statement (one round trip) where it can be, in a transaction where it needs more.

use std::collections::HashMap;

use deadpool_postgres::{Object, Transaction};
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::sql::*;
use super::{rows, Fail};
use crate::queue::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, FinishOutcome,
    JobFilter, JobPage, JobRecord, JobState, NewJob, NewNode, NodeBeat, NodeRecord,
    LOST_ATTEMPTS_ALLOWED,
};
use crate::Error;

type Done<T> = std::result::Result<T, Fail>;

fn id_taken(id: &str) -> Fail {
    Fail::Refused(Error::validation(format!(
        "job `{id}`: a job with this id is already stored"
    )))
}

/// `now + ms`, saturating.
fn after(now: i64, ms: u64) -> i64 {
    now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A value the schema stores as `bigint`, from an unsigned one that fits (validated).
fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What `FIND_KEY_HOLDERS` says about one job.
struct Holders {
    completed: Option<String>,
    live: Option<String>,
    id_taken: bool,
}

async fn key_holders(tx: &Transaction<'_>, jobs: &[&NewJob]) -> Done<Vec<Holders>> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let workers: Vec<&str> = jobs.iter().map(|j| j.worker.as_str()).collect();
    let idem: Vec<Option<&str>> = jobs.iter().map(|j| j.idempotency_key.as_deref()).collect();
    let unique: Vec<Option<&str>> = jobs.iter().map(|j| j.unique_key.as_deref()).collect();
    let stmt = tx.prepare_cached(FIND_KEY_HOLDERS).await?;
    let found = tx.query(&stmt, &[&ids, &workers, &idem, &unique]).await?;
    found
        .iter()
        .map(|row| {
            Ok(Holders {
                completed: row.try_get(1)?,
                live: row.try_get(2)?,
                id_taken: row.try_get(3)?,
            })
        })
        .collect()
}

/// Decides, in batch order, which jobs are stored and which an existing job answers for;
/// `None` marks a job to insert.
fn decide(jobs: &[&NewJob], holders: Vec<Holders>) -> Done<Vec<Option<String>>> {
    // Unique keys taken by earlier jobs of this batch: (worker, key) -> id.
    let mut batch_keys: HashMap<(&str, &str), &str> = HashMap::new();
    let mut batch_ids: HashMap<&str, ()> = HashMap::new();
    let mut answers = Vec::with_capacity(jobs.len());
    for (job, holder) in jobs.iter().zip(holders) {
        let in_batch = job
            .unique_key
            .as_deref()
            .and_then(|key| batch_keys.get(&(job.worker.as_str(), key)))
            .map(|id| id.to_string());
        if let Some(id) = holder.completed.or(holder.live).or(in_batch) {
            answers.push(Some(id));
            continue;
        }
        if holder.id_taken || batch_ids.insert(&job.id, ()).is_some() {
            return Err(id_taken(&job.id));
        }
        if let Some(key) = job.unique_key.as_deref() {
            batch_keys.insert((&job.worker, key), &job.id);
        }
        answers.push(None);
    }
    Ok(answers)
}

/// Enqueues `jobs` inside `tx`: one statement to find every key's holder, one to insert
/// what is left.
pub(super) async fn enqueue_in(
    tx: &Transaction<'_>,
    now: i64,
    jobs: &[NewJob],
) -> Done<Vec<Enqueued>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    if jobs.iter().all(has_no_keys) {
        store_keyless(tx, now, jobs).await?;
        return Ok(jobs
            .iter()
            .map(|job| Enqueued {
                id: job.id.clone(),
                inserted: true,
            })
            .collect());
    }
    let all: Vec<&NewJob> = jobs.iter().collect();
    let answers = decide(&all, key_holders(tx, &all).await?)?;
    let new: Vec<&NewJob> = all
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.is_none())
        .map(|(job, _)| *job)
        .collect();
    let stored = insert_jobs(tx, now, &new).await?;
    let mut out = Vec::with_capacity(jobs.len());
    for (job, answer) in jobs.iter().zip(answers) {
        out.push(match answer {
            Some(id) => Enqueued {
                id,
                inserted: false,
            },
            None if stored.contains(&job.id) => Enqueued {
                id: job.id.clone(),
                inserted: true,
            },
            // A racing transaction took its unique key after `key_holders` looked.
            None => Enqueued {
                id: live_holder(tx, job).await?,
                inserted: false,
            },
        });
    }
    Ok(out)
}

/// Batches of at least this many jobs without keys are stored with binary `COPY`.
const COPY_AT_LEAST: usize = 64;

fn has_no_keys(job: &NewJob) -> bool {
    job.unique_key.is_none() && job.idempotency_key.is_none()
}

/// Stores `jobs`, none of which has a key: no key holder to look up first, and nothing
/// for `INSERT_JOBS`' conflict clause to skip. An id already stored, or twice in the
/// batch, fails the `UNIQUE` on `id`, and the whole batch is refused naming it, as
/// `decide` refuses it on the other path. Large batches go by binary `COPY`.
async fn store_keyless(tx: &Transaction<'_>, now: i64, jobs: &[NewJob]) -> Done<()> {
    if jobs.len() >= COPY_AT_LEAST {
        return copy_jobs(tx, now, jobs).await;
    }
    let all: Vec<&NewJob> = jobs.iter().collect();
    insert_jobs(tx, now, &all).await?;
    Ok(())
}

/// The state a new job starts in: scheduled when it is due later.
fn first_state(job: &NewJob, now: i64) -> (i64, &'static str) {
    let at = job.run_at_ms.unwrap_or(now);
    let state = if at > now {
        JobState::Scheduled
    } else {
        JobState::Available
    };
    (at, state.as_str())
}

/// Stores `jobs`, none of which has a key, with binary `COPY` (`COPY_JOBS`): rows
/// streamed as they are encoded, no arrays to build and take apart again.
async fn copy_jobs(tx: &Transaction<'_>, now: i64, jobs: &[NewJob]) -> Done<()> {
    let stmt = tx.prepare_cached(COPY_JOBS).await?;
    let sink = tx.copy_in(&stmt).await?;
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::JSON,
        Type::INT4,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for job in jobs {
        let (run_at, state) = first_state(job, now);
        writer
            .as_mut()
            .write(&[
                &job.id,
                &job.worker,
                &job.queue,
                &state,
                &job.payload,
                &job.priority,
                &i64::from(job.max_attempts),
                &run_at,
                &now,
                &job.timeout_ms.map(big),
                &big(job.memory),
            ])
            .await
            .map_err(refuse_taken_id)?;
    }
    writer.finish().await.map_err(refuse_taken_id)?;
    Ok(())
}

async fn insert_jobs(
    tx: &Transaction<'_>,
    now: i64,
    jobs: &[&NewJob],
) -> Done<std::collections::HashSet<String>> {
    if jobs.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let workers: Vec<&str> = jobs.iter().map(|j| j.worker.as_str()).collect();
    let queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
    let (run_at, states): (Vec<i64>, Vec<&str>) =
        jobs.iter().map(|job| first_state(job, now)).unzip();
    let payloads: Vec<Option<&Value>> = jobs.iter().map(|j| j.payload.as_ref()).collect();
    let priorities: Vec<i32> = jobs.iter().map(|j| j.priority).collect();
    let attempts: Vec<i64> = jobs.iter().map(|j| i64::from(j.max_attempts)).collect();
    let timeouts: Vec<Option<i64>> = jobs.iter().map(|j| j.timeout_ms.map(big)).collect();
    let unique: Vec<Option<&str>> = jobs.iter().map(|j| j.unique_key.as_deref()).collect();
    let idem: Vec<Option<&str>> = jobs.iter().map(|j| j.idempotency_key.as_deref()).collect();
    let memory: Vec<i64> = jobs.iter().map(|j| big(j.memory)).collect();
    let stmt = tx.prepare_cached(INSERT_JOBS).await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &ids,
                &workers,
                &queues,
                &states,
                &payloads,
                &priorities,
                &attempts,
                &run_at,
                &timeouts,
                &unique,
                &idem,
                &memory,
                &now,
            ],
        )
        .await
        .map_err(refuse_taken_id)?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// A unique violation on `id` (a racing transaction stored the same id): the input's
/// fault, reported as `enqueue` reports an id already stored.
fn refuse_taken_id(err: tokio_postgres::Error) -> Fail {
    let taken = err.as_db_error().filter(|db| {
        db.code() == &SqlState::UNIQUE_VIOLATION && db.constraint() == Some("jobs_id_key")
    });
    match taken {
        Some(db) => {
            // "Key (id)=(job-1) already exists."
            let id = db
                .detail()
                .and_then(|d| d.split_once("=("))
                .and_then(|(_, rest)| rest.split_once(")"))
                .map_or("?", |(id, _)| id);
            id_taken(id)
        }
        None => Fail::Sql(err),
    }
}

async fn live_holder(tx: &Transaction<'_>, job: &NewJob) -> Done<String> {
    let holders = key_holders(tx, &[job]).await?;
    holders
        .into_iter()
        .next()
        .and_then(|h| h.live)
        .ok_or_else(|| Fail::Store {
            action: "enqueuing jobs into".into(),
            message: format!(
                "job `{}`: its unique key was taken and released while it was stored",
                job.id
            ),
        })
}

pub(super) async fn enqueue_claimed(
    tx: &Transaction<'_>,
    now: i64,
    owner: &str,
    lease_ms: u64,
    job: &NewJob,
) -> Done<EnqueueClaim> {
    let holders = key_holders(tx, &[job]).await?;
    if let Some(id) = decide(&[job], holders)?.pop().flatten() {
        return Ok(EnqueueClaim::Existing(id));
    }
    let stmt = tx.prepare_cached(INSERT_CLAIMED_JOB).await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &job.id,
                &job.worker,
                &job.queue,
                &job.payload,
                &job.priority,
                &i64::from(job.max_attempts),
                &job.run_at_ms.unwrap_or(now),
                &now,
                &job.timeout_ms.map(big),
                &job.unique_key,
                &job.idempotency_key,
                &big(job.memory),
                &owner,
                &after(now, lease_ms),
            ],
        )
        .await
        .map_err(refuse_taken_id)?;
    match row {
        Some(row) => Ok(EnqueueClaim::Claimed(Box::new(rows::claimed_job(&row)?))),
        None => Ok(EnqueueClaim::Existing(live_holder(tx, job).await?)),
    }
}

pub(super) async fn claim(c: &Object, now: i64, request: &ClaimRequest) -> Done<Vec<ClaimedJob>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let workers: Vec<&str> = request.workers.iter().map(|(w, _)| w.as_str()).collect();
    let counts: Vec<i64> = request
        .workers
        .iter()
        .map(|(_, n)| i64::try_from(*n).unwrap_or(i64::MAX))
        .collect();
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let stmt = c.prepare_cached(CLAIM_JOBS).await?;
    let rows = c
        .query(
            &stmt,
            &[
                &workers,
                &counts,
                &now,
                &request.owner,
                &after(now, request.lease_ms),
                &limit,
            ],
        )
        .await?;
    rows.iter().map(rows::claimed_job).collect()
}

pub(super) async fn finish(c: &Object, now: i64, finishes: &[Finish]) -> Done<Vec<bool>> {
    if finishes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = finishes.iter().map(|f| f.id.as_str()).collect();
    let epochs: Vec<i64> = finishes.iter().map(|f| big(f.epoch)).collect();
    let mut kinds = Vec::with_capacity(finishes.len());
    let mut due = Vec::with_capacity(finishes.len());
    let mut errors = Vec::with_capacity(finishes.len());
    for finish in finishes {
        let (kind, at, error) = match &finish.outcome {
            FinishOutcome::Completed => ("completed", None, None),
            FinishOutcome::Retry { at_ms, error } => ("retry", Some(*at_ms), Some(error)),
            FinishOutcome::Discard { error } => ("discard", None, Some(error)),
            FinishOutcome::Cancelled { error } => ("cancelled", None, Some(error)),
            FinishOutcome::Requeue => ("requeue", None, None),
            FinishOutcome::CancelledBeforeStart => ("unstarted", None, None),
        };
        kinds.push(kind);
        due.push(at);
        errors.push(error.map(String::as_str));
    }
    let stmt = c.prepare_cached(FINISH_JOBS).await?;
    let rows = c
        .query(&stmt, &[&ids, &epochs, &kinds, &due, &errors, &now])
        .await?;
    let mut applied = vec![false; finishes.len()];
    for row in rows {
        let i: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| applied.get_mut(i)) {
            *slot = true;
        }
    }
    Ok(applied)
}

pub(super) async fn extend(
    c: &Object,
    now: i64,
    owner: &str,
    leases: &[(String, u64)],
    lease_ms: u64,
) -> Done<Vec<bool>> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = leases.iter().map(|(id, _)| id.as_str()).collect();
    let epochs: Vec<i64> = leases.iter().map(|(_, epoch)| big(*epoch)).collect();
    let stmt = c.prepare_cached(EXTEND_LEASES).await?;
    let rows = c
        .query(&stmt, &[&ids, &epochs, &owner, &after(now, lease_ms)])
        .await?;
    let extended: std::collections::HashSet<(String, i64)> = rows
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Done<_>>()?;
    Ok(ids
        .iter()
        .zip(&epochs)
        .map(|(id, epoch)| extended.contains(&(id.to_string(), *epoch)))
        .collect())
}

pub(super) async fn rescue(c: &Object, now: i64) -> Done<Vec<String>> {
    let stmt = c.prepare_cached(RESCUE_EXPIRED_LEASES).await?;
    let rows = c
        .query(&stmt, &[&now, &i64::from(LOST_ATTEMPTS_ALLOWED)])
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

pub(super) async fn cancel_requests(c: &Object, owner: &str) -> Done<Vec<(String, u64)>> {
    let stmt = c.prepare_cached(SELECT_CANCEL_REQUESTS).await?;
    let rows = c.query(&stmt, &[&owner]).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, rows::unsigned(row, 1)?)))
        .collect()
}

/// A fenced update of one JSON column (`SAVE_PROGRESS`, `SAVE_CHECKPOINT`).
pub(super) async fn set_json(
    c: &Object,
    sql: &str,
    id: &str,
    epoch: u64,
    value: &Value,
) -> Done<bool> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, &[&id, &big(epoch), value]).await? == 1)
}

pub(super) async fn load_checkpoint(c: &Object, id: &str) -> Done<Option<Value>> {
    let stmt = c.prepare_cached(LOAD_CHECKPOINT).await?;
    let row = c.query_opt(&stmt, &[&id]).await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?.flatten())
}

pub(super) async fn get(c: &Object, id: &str) -> Done<Option<JobRecord>> {
    let stmt = c.prepare_cached(GET_JOB).await?;
    let row = c.query_opt(&stmt, &[&id]).await?;
    row.as_ref().map(rows::job_record).transpose()
}

pub(super) async fn list(c: &Object, filter: &JobFilter) -> Done<JobPage> {
    let size = filter.page_size();
    let states = (!filter.states.is_empty())
        .then(|| filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    // One more than a page tells whether there is a next one.
    let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
    let stmt = c.prepare_cached(LIST_JOBS).await?;
    let rows = c
        .query(
            &stmt,
            &[
                &states,
                &filter.worker,
                &filter.search,
                &filter.before_id,
                &limit,
            ],
        )
        .await?;
    let mut jobs = rows
        .iter()
        .map(rows::job_record)
        .collect::<Done<Vec<_>>>()?;
    let next = if jobs.len() > size {
        jobs.truncate(size);
        jobs.last().map(|job| job.id.clone())
    } else {
        None
    };
    Ok(JobPage { jobs, next })
}

pub(super) async fn retry(c: &Object, now: i64, id: &str) -> Done<bool> {
    let stmt = c.prepare_cached(RETRY_FINISHED_JOB).await?;
    match c.execute(&stmt, &[&id, &now]).await {
        Ok(changed) => Ok(changed == 1),
        // Another job took its unique key between the check and the write.
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

pub(super) async fn cancel(tx: &Transaction<'_>, now: i64, id: &str) -> Done<CancelOutcome> {
    let stmt = tx.prepare_cached(LOCK_JOB_STATE_AND_OWNER).await?;
    let found = match tx.query_opt(&stmt, &[&id]).await? {
        None => None,
        Some(row) => Some((rows::state(&row, 0)?, row.try_get::<_, Option<String>>(1)?)),
    };
    Ok(match found {
        None => CancelOutcome::NotFound,
        Some((state, _)) if state.is_finished() => CancelOutcome::AlreadyFinished,
        Some((JobState::Running, owner)) => {
            let stmt = tx.prepare_cached(REQUEST_CANCEL).await?;
            tx.execute(&stmt, &[&id]).await?;
            CancelOutcome::Running {
                owner: owner.unwrap_or_default(),
            }
        }
        Some(_) => {
            let stmt = tx.prepare_cached(CANCEL_WAITING_JOB).await?;
            tx.execute(&stmt, &[&id, &now]).await?;
            CancelOutcome::Cancelled
        }
    })
}

pub(super) async fn delete(c: &Object, id: &str) -> Done<bool> {
    let stmt = c.prepare_cached(DELETE_JOB).await?;
    Ok(c.execute(&stmt, &[&id]).await? == 1)
}

pub(super) async fn prune(tx: &Transaction<'_>, now: i64, older_than_ms: u64) -> Done<u64> {
    let horizon = now.saturating_sub(big(older_than_ms));
    let (jobs, ticks, nodes, records) = tokio::try_join!(
        tx.prepare_cached(PRUNE_FINISHED_JOBS),
        tx.prepare_cached(PRUNE_CRON_TICKS),
        tx.prepare_cached(PRUNE_NODES),
        tx.prepare_cached(PRUNE_RUN_IDEMPOTENCY),
    )?;
    // Sent together: tokio-postgres pipelines them on the connection, one round trip.
    let (by_horizon, by_now): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&horizon], [&now]);
    let (pruned, _, _, _) = tokio::try_join!(
        tx.execute(&jobs, &by_horizon),
        tx.execute(&ticks, &by_horizon),
        tx.execute(&nodes, &by_horizon),
        tx.execute(&records, &by_now),
    )?;
    Ok(pruned)
}

pub(super) async fn counts(c: &Object) -> Done<Vec<(String, JobState, u64)>> {
    let stmt = c.prepare_cached(COUNT_JOBS).await?;
    let rows = c.query(&stmt, &[]).await?;
    let mut counts = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                rows::state(row, 1)?,
                rows::unsigned(row, 2)?,
            ))
        })
        .collect::<Done<Vec<_>>>()?;
    // By worker, then by the states' order (not their names').
    counts.sort();
    Ok(counts)
}

pub(super) async fn next_due(c: &Object, now: i64) -> Done<Option<i64>> {
    let stmt = c.prepare_cached(NEXT_DUE).await?;
    let earliest: Option<i64> = c.query_one(&stmt, &[]).await?.try_get(0)?;
    Ok(earliest.map(|at| at.max(now)))
}

pub(super) async fn cron_tick(
    tx: &Transaction<'_>,
    now: i64,
    worker: &str,
    tick_ms: i64,
    job: &NewJob,
) -> Done<bool> {
    let stmt = tx.prepare_cached(RECORD_CRON_TICK).await?;
    let recorded = tx
        .execute(&stmt, &[&worker, &tick_ms, &job.id, &now])
        .await?
        == 1;
    if recorded {
        enqueue_in(tx, now, std::slice::from_ref(job)).await?;
    }
    Ok(recorded)
}

pub(super) async fn last_cron_tick(c: &Object, worker: &str) -> Done<Option<i64>> {
    let stmt = c.prepare_cached(LAST_CRON_TICK).await?;
    Ok(c.query_one(&stmt, &[&worker]).await?.try_get(0)?)
}

pub(super) async fn register_node(c: &Object, now: i64, node: &NewNode) -> Done<()> {
    let stmt = c.prepare_cached(REGISTER_NODE).await?;
    let inserted = c
        .execute(
            &stmt,
            &[
                &node.id,
                &node.host,
                &i64::from(node.pid),
                &i64::from(node.concurrency),
                &big(node.memory_pool),
                &node.workers,
                &big(node.heartbeat_ms),
                &now,
            ],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(Fail::Refused(Error::validation(format!(
                "node `{}` is already registered: a node's id is never reused",
                node.id
            ))))
        }
        Err(err) => Err(err.into()),
    }
}

pub(super) async fn node_beat(c: &Object, now: i64, beat: &NodeBeat) -> Done<bool> {
    let stmt = c.prepare_cached(BEAT_NODE).await?;
    let changed = c
        .execute(
            &stmt,
            &[
                &beat.id,
                &now,
                &i64::from(beat.running),
                &big(beat.memory_used),
                &beat.cooling_until_ms,
            ],
        )
        .await?;
    Ok(changed == 1)
}

pub(super) async fn stop_node(c: &Object, now: i64, id: &str) -> Done<()> {
    let (stop, resign) = tokio::try_join!(c.prepare_cached(STOP_NODE), c.prepare_cached(RESIGN))?;
    // Sent together: one round trip.
    let (stop_params, resign_params): (&[&(dyn ToSql + Sync)], &[&(dyn ToSql + Sync)]) =
        (&[&id, &now], &[&id]);
    tokio::try_join!(
        c.execute(&stop, stop_params),
        c.execute(&resign, resign_params)
    )?;
    Ok(())
}

pub(super) async fn nodes(c: &Object, now: i64, offline_after_ms: u64) -> Done<Vec<NodeRecord>> {
    let stmt = c.prepare_cached(SELECT_NODES).await?;
    let rows = c.query(&stmt, &[]).await?;
    let mut nodes = rows
        .iter()
        .map(rows::node_record)
        .collect::<Done<Vec<_>>>()?;
    for node in &mut nodes {
        node.status = node.status_at(now, offline_after_ms);
    }
    Ok(nodes)
}

pub(super) async fn clock_ms(c: &Object) -> Done<i64> {
    let stmt = c.prepare_cached(CLOCK_MS).await?;
    Ok(c.query_one(&stmt, &[]).await?.try_get(0)?)
}
