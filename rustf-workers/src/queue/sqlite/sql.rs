//! Every statement the SQLite store runs, named after what it does, with the index it
//! relies on. Parameters only: nothing here is built from input.
//!
//! States are compared with `=` and `<>`, never `IN (...)` lists of three or more: SQLite
//! builds a temporary b-tree for such a list every time a statement runs (see
//! `0003_waiting_without_in_lists.sql`), and the partial indexes spell their conditions
//! the same way, so that the planner matches them.
//!
//! Times are ms since the Unix epoch. `?N` parameters are numbered so each statement
//! reads on its own; the functions in `ops.rs` pass them in the same order.

/// The columns [`super::rows::job_record`] reads, in its order.
macro_rules! job_columns {
    () => {
        "id, worker, queue, state, payload, priority, attempt, max_attempts, run_at, \
         created_at, finished_at, errors, progress, checkpoint, unique_key, idempotency_key, \
         owner, lease_until, epoch, cancel_requested, timeout_ms, memory"
    };
}

/// The columns [`super::rows::claimed_job`] reads, in its order.
macro_rules! claimed_columns {
    () => {
        "id, worker, queue, payload, priority, attempt, max_attempts, epoch, timeout_ms, \
         unique_key, idempotency_key, memory, checkpoint, run_at, seq"
    };
}

// ---- enqueue -------------------------------------------------------------------------

/// The live job of worker ?1 holding unique key ?2. Index: `jobs_live_unique_key`.
pub(super) const FIND_LIVE_UNIQUE_KEY: &str = "
    SELECT id FROM jobs
    WHERE worker = ?1 AND unique_key = ?2
      AND state <> 'completed' AND state <> 'discarded' AND state <> 'cancelled'";

/// The latest job of worker ?1 that completed under idempotency key ?2.
/// Index: `jobs_completed_idempotency_key`.
pub(super) const FIND_COMPLETED_IDEMPOTENCY_KEY: &str = "
    SELECT id FROM jobs
    WHERE worker = ?1 AND idempotency_key = ?2 AND state = 'completed'
    ORDER BY seq DESC LIMIT 1";

/// Whether a job has id ?1. Index: the `UNIQUE` on `id`.
pub(super) const JOB_ID_TAKEN: &str = "SELECT 1 FROM jobs WHERE id = ?1";

/// Stores a new job.
pub(super) const INSERT_JOB: &str = "
    INSERT INTO jobs (id, worker, queue, state, payload, priority, max_attempts, run_at,
                      created_at, timeout_ms, unique_key, idempotency_key, memory)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

// ---- claim ---------------------------------------------------------------------------

/// Up to ?3 due jobs of worker ?1 at time ?2, in claim order.
/// Index: `jobs_waiting_by_worker` (its `WHERE` is this one's condition on `state`).
pub(super) const SELECT_DUE_JOBS_OF_WORKER: &str = "
    SELECT seq, priority, run_at FROM jobs
    WHERE worker = ?1
      AND (state = 'scheduled' OR state = 'available' OR state = 'retrying')
      AND run_at <= ?2
    ORDER BY priority DESC, run_at, seq
    LIMIT ?3";

/// Claims the waiting job at `seq` ?1 for owner ?2, leased until ?3. Runs in the same
/// `BEGIN IMMEDIATE` transaction as `SELECT_DUE_JOBS_OF_WORKER`, so no other writer comes
/// between the two. Index: the primary key.
pub(super) const CLAIM_JOB: &str = concat!(
    "
    UPDATE jobs
    SET state = 'running', owner = ?2, lease_until = ?3,
        epoch = epoch + 1, attempt = attempt + 1, cancel_requested = 0
    WHERE seq = ?1
      AND (state = 'scheduled' OR state = 'available' OR state = 'retrying')
    RETURNING ",
    claimed_columns!()
);

// ---- finish (each fenced: id ?1, epoch ?2, still running) ----------------------------

/// Completes a running job at ?3. Index: the `UNIQUE` on `id`, as every `id = ?1` here.
pub(super) const COMPLETE_JOB: &str = "
    UPDATE jobs
    SET state = 'completed', finished_at = ?3, owner = NULL, lease_until = NULL
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Stores a failed attempt's error ?4 (at ?3) and its next attempt's due time ?5; a job
/// whose cancel was asked while it ran is cancelled instead (the cancel was answered).
pub(super) const SCHEDULE_RETRY: &str = "
    UPDATE jobs
    SET state = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'retrying' END,
        finished_at = CASE cancel_requested WHEN 1 THEN ?3 ELSE finished_at END,
        run_at = ?5, owner = NULL, lease_until = NULL,
        errors = json_insert(errors, '$[#]',
                             json_object('attempt', attempt, 'error', ?4, 'at_ms', ?3))
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Ends a running job in state ?5 (`discarded` or `cancelled`) at ?3 with error ?4.
pub(super) const END_JOB_WITH_ERROR: &str = "
    UPDATE jobs
    SET state = ?5, finished_at = ?3, owner = NULL, lease_until = NULL,
        errors = json_insert(errors, '$[#]',
                             json_object('attempt', attempt, 'error', ?4, 'at_ms', ?3))
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Hands a running job back, due at ?3, its attempt not counted (shutdown stopped it);
/// a job whose cancel was asked while it ran is cancelled instead.
pub(super) const REQUEUE_JOB: &str = "
    UPDATE jobs
    SET state = CASE cancel_requested WHEN 1 THEN 'cancelled' ELSE 'available' END,
        finished_at = CASE cancel_requested WHEN 1 THEN ?3 ELSE finished_at END,
        run_at = ?3, attempt = attempt - CASE cancel_requested WHEN 1 THEN 0 ELSE 1 END,
        owner = NULL, lease_until = NULL
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Cancels at ?3 a claimed job that never started (held ahead of a free slot), its
/// attempt not counted, as a waiting job's cancel.
pub(super) const CANCEL_UNSTARTED_JOB: &str = "
    UPDATE jobs
    SET state = 'cancelled', finished_at = ?3, attempt = attempt - 1,
        owner = NULL, lease_until = NULL
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Extends to ?4 the lease of owner ?3 on job ?1 under epoch ?2.
pub(super) const EXTEND_LEASE: &str = "
    UPDATE jobs SET lease_until = ?4
    WHERE id = ?1 AND epoch = ?2 AND owner = ?3 AND state = 'running'";

/// Stores progress ?3 of job ?1 under epoch ?2.
pub(super) const SAVE_PROGRESS: &str = "
    UPDATE jobs SET progress = ?3
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// Stores checkpoint ?3 of job ?1 under epoch ?2.
pub(super) const SAVE_CHECKPOINT: &str = "
    UPDATE jobs SET checkpoint = ?3
    WHERE id = ?1 AND epoch = ?2 AND state = 'running'";

/// The checkpoint of job ?1.
pub(super) const LOAD_CHECKPOINT: &str = "SELECT checkpoint FROM jobs WHERE id = ?1";

// ---- rescue (lease ran out: lease_until <= ?1) ---------------------------------------
// Three statements, most specific first; each leaves the others nothing to do for its
// rows. Index: `jobs_running_by_lease`.

/// Expired jobs whose cancel was requested: their owner cannot stop them any more.
pub(super) const CANCEL_EXPIRED_CANCELLING: &str = "
    UPDATE jobs
    SET state = 'cancelled', finished_at = ?1, owner = NULL, lease_until = NULL,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt,
            'error', 'lease expired at ' || lease_until || ' (owner `' || owner
                     || '`) while its cancel was requested',
            'at_ms', ?1))
    WHERE state = 'running' AND lease_until <= ?1 AND cancel_requested = 1
    RETURNING id";

/// Expired jobs past their last attempt and two lost ones more: discarded. A process that
/// dies (SIGKILL, OOM, a power cut) while it runs a job must not spend the job's attempts,
/// so a lost attempt is run again even past them; but a job that keeps killing its
/// process is a poison pill, and after two such losses beyond its attempts it stops.
/// `LOST_ATTEMPTS_ALLOWED` in `queue/store.rs` says the same number.
pub(super) const DISCARD_EXPIRED_LAST_ATTEMPTS: &str = "
    UPDATE jobs
    SET state = 'discarded', finished_at = ?1, owner = NULL, lease_until = NULL,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt,
            'error', 'lease expired at ' || lease_until || ' (owner `' || owner
                     || '`), and its attempts were spent',
            'at_ms', ?1))
    WHERE state = 'running' AND lease_until <= ?1 AND attempt >= max_attempts + 2
    RETURNING id";

/// The other expired jobs: available again at ?1, the lost attempt counted.
pub(super) const RELEASE_EXPIRED_LEASES: &str = "
    UPDATE jobs
    SET state = 'available', run_at = ?1, owner = NULL, lease_until = NULL,
        errors = json_insert(errors, '$[#]', json_object(
            'attempt', attempt,
            'error', 'lease expired at ' || lease_until || ' (owner `' || owner || '`)',
            'at_ms', ?1))
    WHERE state = 'running' AND lease_until <= ?1
    RETURNING id";

/// Owner ?1's running jobs with a cancel request. Index: `jobs_running_by_owner` (0002).
pub(super) const SELECT_CANCEL_REQUESTS: &str = "
    SELECT id, epoch FROM jobs
    WHERE state = 'running' AND owner = ?1 AND cancel_requested = 1
    ORDER BY seq";

// ---- operations ----------------------------------------------------------------------

/// Job ?1, whole.
pub(super) const GET_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = ?1");

/// A page of jobs, newest first: states in JSON array ?1, worker ?2, payload text
/// containing ?3 (`instr`: a plain substring, no pattern characters), enqueued before job
/// ?4, at most ?5. Each filter is off when its parameter is NULL. Index: the primary key,
/// walked backwards; the filters are checked row by row.
pub(super) const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs
    WHERE (?1 IS NULL OR state IN (SELECT value FROM json_each(?1)))
      AND (?2 IS NULL OR worker = ?2)
      AND (?3 IS NULL OR instr(payload, ?3) > 0)
      AND (?4 IS NULL OR seq < (SELECT seq FROM jobs WHERE id = ?4))
    ORDER BY seq DESC
    LIMIT ?5"
);

/// Gives discarded or cancelled job ?1 one more attempt, due at ?2, unless another live
/// job holds its unique key now (the partial unique index would refuse it).
pub(super) const RETRY_FINISHED_JOB: &str = "
    UPDATE jobs
    SET state = 'available', run_at = ?2, finished_at = NULL, cancel_requested = 0,
        max_attempts = max(max_attempts, attempt + 1)
    WHERE id = ?1 AND state IN ('discarded', 'cancelled')
      AND NOT EXISTS (
          SELECT 1 FROM jobs AS holder
          WHERE jobs.unique_key IS NOT NULL
            AND holder.worker = jobs.worker AND holder.unique_key = jobs.unique_key
            AND holder.state <> 'completed' AND holder.state <> 'discarded'
            AND holder.state <> 'cancelled')";

/// The state and owner of job ?1, for `cancel`.
pub(super) const JOB_STATE_AND_OWNER: &str = "SELECT state, owner FROM jobs WHERE id = ?1";

/// Cancels waiting job ?1 at ?2.
pub(super) const CANCEL_WAITING_JOB: &str = "
    UPDATE jobs SET state = 'cancelled', finished_at = ?2
    WHERE id = ?1
      AND (state = 'scheduled' OR state = 'available' OR state = 'retrying')";

/// Flags running job ?1 for its owner to stop.
pub(super) const REQUEST_CANCEL: &str = "
    UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'";

/// Deletes job ?1 unless it runs.
pub(super) const DELETE_JOB: &str = "DELETE FROM jobs WHERE id = ?1 AND state <> 'running'";

/// Deletes jobs that finished before ?1. Index: `jobs_finished_at`.
pub(super) const PRUNE_FINISHED_JOBS: &str = "
    DELETE FROM jobs
    WHERE finished_at <= ?1
      AND (state = 'completed' OR state = 'discarded' OR state = 'cancelled')";

/// Forgets the cron ticks recorded at or before ?1, except each worker's latest, which
/// the next tick is counted from. Index: the primary key of `cron_ticks`.
pub(super) const PRUNE_CRON_TICKS: &str = "
    DELETE FROM cron_ticks
    WHERE recorded_at <= ?1
      AND tick_ms < (SELECT max(latest.tick_ms) FROM cron_ticks AS latest
                     WHERE latest.worker = cron_ticks.worker)";

/// Forgets idempotency records of in-process runs that expired by ?1.
pub(super) const PRUNE_RUN_IDEMPOTENCY: &str = "DELETE FROM run_idempotency WHERE expires_at <= ?1";

/// Jobs per worker and state. Index: `jobs_by_worker_state` (0002), a covering scan.
pub(super) const COUNT_JOBS: &str =
    "SELECT worker, state, count(*) FROM jobs GROUP BY worker, state";

/// The earliest due time of a waiting job. Index: `jobs_waiting_by_run_at`.
pub(super) const NEXT_DUE: &str = "
    SELECT min(run_at) FROM jobs
    WHERE (state = 'scheduled' OR state = 'available' OR state = 'retrying')";

// ---- cron ----------------------------------------------------------------------------

/// Records tick ?2 of worker ?1 (its job ?3, at ?4) unless it is recorded already.
/// Index: the primary key of `cron_ticks`.
pub(super) const RECORD_CRON_TICK: &str = "
    INSERT INTO cron_ticks (worker, tick_ms, job_id, recorded_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (worker, tick_ms) DO NOTHING";

/// The latest tick of worker ?1. Index: the primary key of `cron_ticks`.
pub(super) const LAST_CRON_TICK: &str = "SELECT max(tick_ms) FROM cron_ticks WHERE worker = ?1";

// ---- CheckpointStore and IdempotencyStore, for in-process runs -----------------------

/// Replaces the checkpoint of run ?2 of worker ?1 with ?3.
pub(super) const SAVE_RUN_CHECKPOINT: &str = "
    INSERT INTO run_checkpoints (worker, run_id, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (worker, run_id) DO UPDATE SET value = excluded.value";

/// The checkpoint of run ?2 of worker ?1.
pub(super) const LOAD_RUN_CHECKPOINT: &str =
    "SELECT value FROM run_checkpoints WHERE worker = ?1 AND run_id = ?2";

/// Forgets the checkpoint of run ?2 of worker ?1.
pub(super) const REMOVE_RUN_CHECKPOINT: &str =
    "DELETE FROM run_checkpoints WHERE worker = ?1 AND run_id = ?2";

/// Remembers that run ?3 of worker ?1 completed under key ?2, until ?4.
pub(super) const RECORD_RUN_IDEMPOTENCY: &str = "
    INSERT INTO run_idempotency (worker, key, run_id, expires_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (worker, key) DO UPDATE
    SET run_id = excluded.run_id, expires_at = excluded.expires_at";

/// The run of worker ?1 that completed under key ?2, if its record outlives ?3.
pub(super) const LOOKUP_RUN_IDEMPOTENCY: &str = "
    SELECT run_id FROM run_idempotency WHERE worker = ?1 AND key = ?2 AND expires_at > ?3";

// ---- nodes ---------------------------------------------------------------------------

/// Records node ?1 as started at ?8.
pub(super) const REGISTER_NODE: &str = "
    INSERT INTO nodes (id, host, pid, concurrency, memory_pool, workers, heartbeat_ms,
                       started_at, last_beat)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";

/// Records a heartbeat of node ?1 at ?2, unless it stopped. Index: the primary key.
pub(super) const BEAT_NODE: &str = "
    UPDATE nodes SET last_beat = ?2, running = ?3, memory_used = ?4, cooling_until = ?5
    WHERE id = ?1 AND stopped_at IS NULL";

/// Marks node ?1 stopped at ?2, nothing running.
pub(super) const STOP_NODE: &str = "
    UPDATE nodes SET stopped_at = ?2, last_beat = ?2, running = 0, memory_used = 0
    WHERE id = ?1 AND stopped_at IS NULL";

/// Every node, newest first.
pub(super) const SELECT_NODES: &str = "
    SELECT id, host, pid, concurrency, memory_pool, workers, heartbeat_ms, started_at,
           last_beat, stopped_at, running, memory_used, cooling_until
    FROM nodes ORDER BY started_at DESC, id";

/// Forgets the nodes silent (stopped, or not beating) since ?1.
pub(super) const PRUNE_NODES: &str = "DELETE FROM nodes WHERE last_beat <= ?1";
