//! Rows to Rust values: the column orders of `sql.rs`'s `job_columns!` and
//! `claimed_columns!`.

use rusqlite::types::Type;
use rusqlite::Row;
use serde_json::Value;

use crate::queue::{ClaimedJob, JobError, JobRecord, JobState, NewNode, NodeRecord, NodeStatus};

/// A `JobRecord` from the columns of `job_columns!`.
pub(super) fn job_record(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        id: row.get(0)?,
        worker: row.get(1)?,
        queue: row.get(2)?,
        state: state(row, 3)?,
        payload: json(row, 4)?,
        priority: row.get(5)?,
        attempt: row.get(6)?,
        max_attempts: row.get(7)?,
        run_at_ms: row.get(8)?,
        created_at_ms: row.get(9)?,
        finished_at_ms: row.get(10)?,
        errors: errors(row, 11)?,
        progress: json(row, 12)?,
        checkpoint: json(row, 13)?,
        unique_key: row.get(14)?,
        idempotency_key: row.get(15)?,
        owner: row.get(16)?,
        lease_until_ms: row.get(17)?,
        epoch: row.get(18)?,
        cancel_requested: row.get(19)?,
        timeout_ms: row.get(20)?,
        memory: row.get(21)?,
    })
}

/// A claimed job from the columns of `claimed_columns!`, with its `run_at` and `seq` for
/// ordering the batch.
pub(super) fn claimed_job(row: &Row<'_>) -> rusqlite::Result<(ClaimedJob, i64, i64)> {
    let job = ClaimedJob {
        id: row.get(0)?,
        worker: row.get(1)?,
        queue: row.get(2)?,
        payload: json(row, 3)?,
        priority: row.get(4)?,
        attempt: row.get(5)?,
        max_attempts: row.get(6)?,
        epoch: row.get(7)?,
        timeout_ms: row.get(8)?,
        unique_key: row.get(9)?,
        idempotency_key: row.get(10)?,
        memory: row.get(11)?,
        checkpoint: json(row, 12)?,
    };
    Ok((job, row.get(13)?, row.get(14)?))
}

/// A `NodeRecord` from the columns of `SELECT_NODES`, its status not yet derived.
pub(super) fn node_record(row: &Row<'_>) -> rusqlite::Result<NodeRecord> {
    let workers: String = row.get(5)?;
    Ok(NodeRecord {
        node: NewNode {
            id: row.get(0)?,
            host: row.get(1)?,
            pid: row.get(2)?,
            concurrency: row.get(3)?,
            memory_pool: row.get(4)?,
            workers: serde_json::from_str(&workers).map_err(|err| bad(5, err))?,
            heartbeat_ms: row.get(6)?,
        },
        started_at_ms: row.get(7)?,
        last_beat_ms: row.get(8)?,
        stopped_at_ms: row.get(9)?,
        running: row.get(10)?,
        memory_used: row.get(11)?,
        cooling_until_ms: row.get(12)?,
        status: NodeStatus::Offline,
    })
}

/// A JSON column: `NULL` is `None`.
pub(super) fn json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|text| serde_json::from_str(&text).map_err(|err| bad(idx, err)))
        .transpose()
}

pub(super) fn state(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobState> {
    let name: String = row.get(idx)?;
    JobState::from_name(&name).ok_or_else(|| bad(idx, format!("unknown job state `{name}`")))
}

fn errors(row: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<JobError>> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|err| bad(idx, err))
}

fn bad(idx: usize, err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, err.into())
}
