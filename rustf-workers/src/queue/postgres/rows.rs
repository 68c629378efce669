//! Rows to Rust values: the column orders of `sql.rs`'s `job_columns!` and
//! `claimed_columns!`. The schema stores unsigned values as `bigint`; reading one back
//! that does not fit (a row written by hand) is an error, not a wrap.

use serde_json::Value;
use tokio_postgres::Row;

use super::Fail;
use crate::queue::{ClaimedJob, JobError, JobRecord, JobState, NewNode, NodeRecord, NodeStatus};

type Done<T> = std::result::Result<T, Fail>;

/// A `JobRecord` from the columns of `job_columns!`.
pub(super) fn job_record(row: &Row) -> Done<JobRecord> {
    Ok(JobRecord {
        id: row.try_get(0)?,
        worker: row.try_get(1)?,
        queue: row.try_get(2)?,
        state: state(row, 3)?,
        payload: row.try_get(4)?,
        priority: row.try_get(5)?,
        attempt: unsigned(row, 6)?,
        max_attempts: unsigned(row, 7)?,
        run_at_ms: row.try_get(8)?,
        created_at_ms: row.try_get(9)?,
        finished_at_ms: row.try_get(10)?,
        errors: errors(row, 11)?,
        progress: row.try_get(12)?,
        checkpoint: row.try_get(13)?,
        unique_key: row.try_get(14)?,
        idempotency_key: row.try_get(15)?,
        owner: row.try_get(16)?,
        lease_until_ms: row.try_get(17)?,
        epoch: unsigned(row, 18)?,
        cancel_requested: row.try_get(19)?,
        timeout_ms: optional_unsigned(row, 20)?,
        memory: unsigned(row, 21)?,
    })
}

/// A claimed job from the columns of `claimed_columns!`.
pub(super) fn claimed_job(row: &Row) -> Done<ClaimedJob> {
    Ok(ClaimedJob {
        id: row.try_get(0)?,
        worker: row.try_get(1)?,
        queue: row.try_get(2)?,
        payload: row.try_get(3)?,
        priority: row.try_get(4)?,
        attempt: unsigned(row, 5)?,
        max_attempts: unsigned(row, 6)?,
        epoch: unsigned(row, 7)?,
        timeout_ms: optional_unsigned(row, 8)?,
        unique_key: row.try_get(9)?,
        idempotency_key: row.try_get(10)?,
        memory: unsigned(row, 11)?,
        checkpoint: row.try_get(12)?,
    })
}

/// A `NodeRecord` from the columns of `SELECT_NODES`, its status not yet derived.
pub(super) fn node_record(row: &Row) -> Done<NodeRecord> {
    Ok(NodeRecord {
        node: NewNode {
            id: row.try_get(0)?,
            host: row.try_get(1)?,
            pid: unsigned(row, 2)?,
            concurrency: unsigned(row, 3)?,
            memory_pool: unsigned(row, 4)?,
            workers: row.try_get(5)?,
            heartbeat_ms: unsigned(row, 6)?,
        },
        started_at_ms: row.try_get(7)?,
        last_beat_ms: row.try_get(8)?,
        stopped_at_ms: row.try_get(9)?,
        running: unsigned(row, 10)?,
        memory_used: unsigned(row, 11)?,
        cooling_until_ms: row.try_get(12)?,
        status: NodeStatus::Offline,
    })
}

/// A `bigint` column as an unsigned integer.
pub(super) fn unsigned<T: TryFrom<i64>>(row: &Row, idx: usize) -> Done<T> {
    let value: i64 = row.try_get(idx)?;
    T::try_from(value).map_err(|_| bad(row, idx, format!("{value} is out of range")))
}

fn optional_unsigned<T: TryFrom<i64>>(row: &Row, idx: usize) -> Done<Option<T>> {
    let value: Option<i64> = row.try_get(idx)?;
    value
        .map(|v| T::try_from(v).map_err(|_| bad(row, idx, format!("{v} is out of range"))))
        .transpose()
}

pub(super) fn state(row: &Row, idx: usize) -> Done<JobState> {
    let name: &str = row.try_get(idx)?;
    JobState::from_name(name).ok_or_else(|| bad(row, idx, format!("unknown job state `{name}`")))
}

fn errors(row: &Row, idx: usize) -> Done<Vec<JobError>> {
    let value: Value = row.try_get(idx)?;
    serde_json::from_value(value).map_err(|err| bad(row, idx, err.to_string()))
}

fn bad(row: &Row, idx: usize, why: String) -> Fail {
    let column = row.columns().get(idx).map_or("?", |c| c.name());
    Fail::Store {
        action: "reading rows from".into(),
        message: format!("column `{column}`: {why}"),
    }
}
