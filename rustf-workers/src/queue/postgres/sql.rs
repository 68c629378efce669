//! Every statement the PostgreSQL store runs, named after what it does, with the index it
//! relies on. Parameters only: nothing here is built from input.
//!
//! Batches travel as arrays, taken apart with `unnest(...) WITH ORDINALITY` (`i`, from 1,
//! the position in the caller's batch), so a batch of any size is one statement and one
//! round trip. Every parameter is cast where it first appears, so each statement prepares
//! on its own; the functions in `ops.rs` pass them in the same order. Times are ms since
//! the Unix epoch.

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
         unique_key, idempotency_key, memory, checkpoint"
    };
}

// ---- enqueue -------------------------------------------------------------------------

/// For each job of the batch (ids ?1, workers ?2, idempotency keys ?3, unique keys ?4):
/// its position, the latest job of its worker completed under its idempotency key, the
/// live job of its worker holding its unique key, and whether its id is taken.
/// Indexes: `jobs_completed_idempotency_key`, `jobs_live_unique_key`, the `UNIQUE` on `id`.
///
/// Whether the id is taken is a scalar subquery, not `EXISTS`: PostgreSQL may run an
/// `EXISTS` as a hashed subplan, a scan of the whole table hashing every id, and the
/// generic plan of a table still small (or never analysed) does so, then keeps doing it
/// as the table grows: every enqueue read every job (2-8 ms each at 20,000 jobs).
pub(super) const FIND_KEY_HOLDERS: &str = "
    SELECT k.i,
           (SELECT id FROM jobs
            WHERE worker = k.worker AND idempotency_key = k.idempotency_key
              AND state = 'completed'
            ORDER BY seq DESC LIMIT 1),
           (SELECT id FROM jobs
            WHERE worker = k.worker AND unique_key = k.unique_key
              AND state NOT IN ('completed', 'discarded', 'cancelled')),
           coalesce((SELECT true FROM jobs WHERE jobs.id = k.id), false)
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         WITH ORDINALITY AS k(id, worker, idempotency_key, unique_key, i)
    ORDER BY k.i";

/// Stores new jobs, one per element of the arrays ?1 to ?12, created at ?13, in their order (so `seq`
/// follows the batch); returns the ids stored. A job whose unique key another live job
/// took since `FIND_KEY_HOLDERS` looked (a racing transaction) is skipped, not an error:
/// the caller looks its holder up again. Index: `jobs_live_unique_key`, the arbiter.
pub(super) const INSERT_JOBS: &str = "
    INSERT INTO jobs (id, worker, queue, state, payload, priority, max_attempts, run_at,
                      created_at, timeout_ms, unique_key, idempotency_key, memory)
    SELECT id, worker, queue, state, payload, priority, max_attempts, run_at,
           $13::bigint, timeout_ms, unique_key, idempotency_key, memory
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::json[], $6::int4[],
                $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],
                $12::bigint[])
         WITH ORDINALITY AS j(id, worker, queue, state, payload, priority, max_attempts,
                              run_at, timeout_ms, unique_key, idempotency_key, memory, i)
    ORDER BY j.i
    ON CONFLICT (worker, unique_key)
        WHERE unique_key IS NOT NULL
          AND state NOT IN ('completed', 'discarded', 'cancelled')
        DO NOTHING
    RETURNING id";

/// Stores new jobs sent as binary `COPY` rows, in the order sent (so `seq` follows the
/// batch), each with the columns named here, in this order: for batches without keys,
/// where `INSERT_JOBS`' conflict clause has nothing to do. An id already stored fails the
/// `UNIQUE` on `id`, as it fails `INSERT_JOBS`.
pub(super) const COPY_JOBS: &str = "
    COPY jobs (id, worker, queue, state, payload, priority, max_attempts, run_at,
               created_at, timeout_ms, memory)
    FROM STDIN (FORMAT binary)";

/// Stores one job (?1 to ?12, as `INSERT_JOBS` takes them, created at ?8) already claimed
/// by owner ?13, leased until ?14: its first attempt, epoch 1. Skipped (no row) when a
/// racing transaction took its unique key.
pub(super) const INSERT_CLAIMED_JOB: &str = concat!(
    "
    INSERT INTO jobs (id, worker, queue, state, payload, priority, max_attempts, run_at,
                      created_at, timeout_ms, unique_key, idempotency_key, memory,
                      owner, lease_until, attempt, epoch)
    VALUES ($1::text, $2::text, $3::text, 'running', $4::json, $5::int4, $6::bigint,
            $7::bigint, $8::bigint, $9::bigint, $10::text, $11::text, $12::bigint,
            $13::text, $14::bigint, 1, 1)
    ON CONFLICT (worker, unique_key)
        WHERE unique_key IS NOT NULL
          AND state NOT IN ('completed', 'discarded', 'cancelled')
        DO NOTHING
    RETURNING ",
    claimed_columns!()
);

// ---- claim ---------------------------------------------------------------------------

/// Claims for owner ?4, leased until ?5, the due jobs (at ?3) of the workers ?1, at most
/// ?2[n] of worker ?1[n] (a worker named twice gets the sum) and ?6 in all, best first:
/// priority, then `run_at`, then `seq`; returned in that order.
///
/// Each worker's best are locked `FOR UPDATE SKIP LOCKED`, so two nodes claiming at once
/// take different jobs and neither waits; the best ?6 of those are claimed, and the rest
/// unlocked at the commit. Index: `jobs_waiting_by_worker`, one range scan per worker.
pub(super) const CLAIM_JOBS: &str = concat!(
    "
    WITH wanted AS (
        SELECT worker, least(sum(n), $6::bigint)::bigint AS n
        FROM unnest($1::text[], $2::bigint[]) AS w(worker, n)
        GROUP BY worker
        HAVING sum(n) > 0
    ),
    candidates AS (
        SELECT due.seq, due.priority, due.run_at
        FROM wanted
        CROSS JOIN LATERAL (
            SELECT seq, priority, run_at FROM jobs
            WHERE jobs.worker = wanted.worker
              AND state IN ('scheduled', 'available', 'retrying')
              AND run_at <= $3::bigint
            ORDER BY priority DESC, run_at, seq
            LIMIT wanted.n
            FOR UPDATE SKIP LOCKED
        ) AS due
    ),
    chosen AS (
        SELECT seq FROM candidates ORDER BY priority DESC, run_at, seq LIMIT $6::bigint
    ),
    claimed AS (
        UPDATE jobs
        SET state = 'running', owner = $4::text, lease_until = $5::bigint,
            epoch = epoch + 1, attempt = attempt + 1, cancel_requested = false
        FROM chosen
        WHERE jobs.seq = chosen.seq
        RETURNING jobs.seq, ",
    claimed_columns!(),
    ", jobs.run_at
    )
    SELECT ",
    claimed_columns!(),
    " FROM claimed ORDER BY priority DESC, run_at, seq"
);

// ---- finish, extend (each fenced: id, epoch, still running) --------------------------

/// Writes a batch of outcomes at ?6: ids ?1, epochs ?2, kinds ?3 (`completed`, `retry`,
/// `discard`, `cancelled`, `requeue`, `unstarted`: cancelled before it started), retry
/// due times ?4, errors ?5 (appended to the job's errors when not NULL); returns the
/// positions that applied.
///
/// A job named twice in the batch under its current epoch is written by the first of
/// those outcomes only (the later ones would find it no longer running, as on SQLite,
/// where they run one after another); one under a stale epoch never applies. A retry or a requeue of
/// a job whose cancel was asked while it ran cancels it instead: the cancel was answered.
/// A requeue does not count the attempt, nor does a cancel before the start.
/// Index: the `UNIQUE` on `id`.
pub(super) const FINISH_JOBS: &str = "
    WITH f AS (
        SELECT DISTINCT ON (id, epoch) id, epoch, kind, at_ms, error, i
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[])
             WITH ORDINALITY AS f(id, epoch, kind, at_ms, error, i)
        ORDER BY id, epoch, i
    )
    UPDATE jobs
    SET state = CASE
            WHEN f.kind = 'completed' THEN 'completed'
            WHEN f.kind = 'discard' THEN 'discarded'
            WHEN f.kind IN ('cancelled', 'unstarted') OR jobs.cancel_requested THEN 'cancelled'
            WHEN f.kind = 'retry' THEN 'retrying'
            ELSE 'available'
        END,
        finished_at = CASE
            WHEN f.kind IN ('completed', 'discard', 'cancelled', 'unstarted')
                 OR jobs.cancel_requested
            THEN $6::bigint
            ELSE jobs.finished_at
        END,
        run_at = CASE f.kind
            WHEN 'retry' THEN f.at_ms
            WHEN 'requeue' THEN $6::bigint
            ELSE jobs.run_at
        END,
        attempt = CASE
            WHEN f.kind = 'unstarted' OR (f.kind = 'requeue' AND NOT jobs.cancel_requested)
            THEN jobs.attempt - 1
            ELSE jobs.attempt
        END,
        owner = NULL, lease_until = NULL,
        errors = CASE
            WHEN f.error IS NULL THEN jobs.errors
            ELSE jobs.errors || jsonb_build_array(jsonb_build_object(
                'attempt', jobs.attempt, 'error', f.error, 'at_ms', $6::bigint))
        END
    FROM f
    WHERE jobs.id = f.id AND jobs.epoch = f.epoch AND jobs.state = 'running'
    RETURNING f.i";

/// Extends to ?4 the leases of owner ?3 on jobs ?1 under epochs ?2; returns the
/// `(id, epoch)` extended. Index: the `UNIQUE` on `id`.
pub(super) const EXTEND_LEASES: &str = "
    UPDATE jobs SET lease_until = $4::bigint
    FROM unnest($1::text[], $2::bigint[]) AS l(id, epoch)
    WHERE jobs.id = l.id AND jobs.epoch = l.epoch AND jobs.owner = $3::text
      AND jobs.state = 'running'
    RETURNING jobs.id, jobs.epoch";

/// Stores progress ?3 of job ?1 under epoch ?2.
pub(super) const SAVE_PROGRESS: &str = "
    UPDATE jobs SET progress = $3::jsonb
    WHERE id = $1::text AND epoch = $2::bigint AND state = 'running'";

/// Stores checkpoint ?3 of job ?1 under epoch ?2.
pub(super) const SAVE_CHECKPOINT: &str = "
    UPDATE jobs SET checkpoint = $3::jsonb
    WHERE id = $1::text AND epoch = $2::bigint AND state = 'running'";

/// The checkpoint of job ?1.
pub(super) const LOAD_CHECKPOINT: &str = "SELECT checkpoint FROM jobs WHERE id = $1::text";

// ---- rescue --------------------------------------------------------------------------

/// Takes back the running jobs whose lease ran out by ?1; returns their ids. Most specific
/// first, as on SQLite: a job whose cancel was requested is cancelled (its owner cannot
/// stop it any more); one that has lost ?2 (`LOST_ATTEMPTS_ALLOWED`) attempts beyond its
/// own is discarded (a poison pill that keeps killing its process); the others are
/// available again at ?1, the lost attempt counted. Index: `jobs_running_by_lease`.
pub(super) const RESCUE_EXPIRED_LEASES: &str = "
    UPDATE jobs
    SET state = CASE
            WHEN cancel_requested THEN 'cancelled'
            WHEN attempt >= max_attempts + $2::bigint THEN 'discarded'
            ELSE 'available'
        END,
        finished_at = CASE
            WHEN cancel_requested OR attempt >= max_attempts + $2::bigint THEN $1::bigint
            ELSE finished_at
        END,
        run_at = CASE
            WHEN cancel_requested OR attempt >= max_attempts + $2::bigint THEN run_at
            ELSE $1::bigint
        END,
        owner = NULL, lease_until = NULL,
        errors = errors || jsonb_build_array(jsonb_build_object(
            'attempt', attempt,
            'error', 'lease expired at ' || lease_until || ' (owner `' || owner || '`)'
                     || CASE
                            WHEN cancel_requested THEN ' while its cancel was requested'
                            WHEN attempt >= max_attempts + $2::bigint
                            THEN ', and its attempts were spent'
                            ELSE ''
                        END,
            'at_ms', $1::bigint))
    WHERE state = 'running' AND lease_until <= $1::bigint
    RETURNING id";

/// Owner ?1's running jobs with a cancel request. Index: `jobs_cancel_requested`.
pub(super) const SELECT_CANCEL_REQUESTS: &str = "
    SELECT id, epoch FROM jobs
    WHERE state = 'running' AND owner = $1::text AND cancel_requested
    ORDER BY seq";

// ---- operations ----------------------------------------------------------------------

/// Job ?1, whole.
pub(super) const GET_JOB: &str =
    concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1::text");

/// A page of jobs, newest first: states in ?1, worker ?2, payload text containing ?3
/// (`strpos`: a plain substring, no pattern characters), enqueued before job ?4, at most
/// ?5. Each filter is off when its parameter is NULL; a `before_id` that names no job
/// gives an empty page. Index: the primary key, walked backwards; the filters are checked
/// row by row.
pub(super) const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs
    WHERE ($1::text[] IS NULL OR state = ANY ($1::text[]))
      AND ($2::text IS NULL OR worker = $2::text)
      AND ($3::text IS NULL OR strpos(payload::text, $3::text) > 0)
      AND ($4::text IS NULL OR seq < (SELECT seq FROM jobs WHERE id = $4::text))
    ORDER BY seq DESC
    LIMIT $5::bigint"
);

/// Gives discarded or cancelled job ?1 one more attempt, due at ?2, unless another live
/// job holds its unique key now (a racing one is refused by `jobs_live_unique_key`).
pub(super) const RETRY_FINISHED_JOB: &str = "
    UPDATE jobs
    SET state = 'available', run_at = $2::bigint, finished_at = NULL,
        cancel_requested = false, max_attempts = greatest(max_attempts, attempt + 1)
    WHERE id = $1::text AND state IN ('discarded', 'cancelled')
      AND NOT EXISTS (
          SELECT 1 FROM jobs AS holder
          WHERE jobs.unique_key IS NOT NULL
            AND holder.worker = jobs.worker AND holder.unique_key = jobs.unique_key
            AND holder.state NOT IN ('completed', 'discarded', 'cancelled'))";

/// The state and owner of job ?1, locked until the cancel's transaction ends.
pub(super) const LOCK_JOB_STATE_AND_OWNER: &str =
    "SELECT state, owner FROM jobs WHERE id = $1::text FOR UPDATE";

/// Cancels waiting job ?1 at ?2.
pub(super) const CANCEL_WAITING_JOB: &str = "
    UPDATE jobs SET state = 'cancelled', finished_at = $2::bigint
    WHERE id = $1::text AND state IN ('scheduled', 'available', 'retrying')";

/// Flags running job ?1 for its owner to stop.
pub(super) const REQUEST_CANCEL: &str = "
    UPDATE jobs SET cancel_requested = true WHERE id = $1::text AND state = 'running'";

/// Deletes job ?1 unless it runs.
pub(super) const DELETE_JOB: &str = "DELETE FROM jobs WHERE id = $1::text AND state <> 'running'";

/// Deletes jobs that finished at or before ?1. Index: `jobs_finished`.
pub(super) const PRUNE_FINISHED_JOBS: &str = "
    DELETE FROM jobs
    WHERE finished_at <= $1::bigint AND state IN ('completed', 'discarded', 'cancelled')";

/// Forgets the cron ticks recorded at or before ?1, except each worker's latest, which
/// the next tick is counted from. Index: the primary key of `cron_ticks`.
pub(super) const PRUNE_CRON_TICKS: &str = "
    DELETE FROM cron_ticks
    WHERE recorded_at <= $1::bigint
      AND tick_ms < (SELECT max(latest.tick_ms) FROM cron_ticks AS latest
                     WHERE latest.worker = cron_ticks.worker)";

/// Forgets idempotency records of in-process runs that expired by ?1.
pub(super) const PRUNE_RUN_IDEMPOTENCY: &str =
    "DELETE FROM run_idempotency WHERE expires_at <= $1::bigint";

/// Jobs per worker and state, sorted: each part read from a partial index alone, which
/// covers `worker` (and `state`, for the parts of several states): `jobs_waiting_by_run_at`,
/// `jobs_running_by_lease`, `jobs_finished`. So no index that every row version enters is
/// kept for counting.
pub(super) const COUNT_JOBS: &str = "
    SELECT worker, state, sum(n)::bigint FROM (
        SELECT worker, state, count(*) AS n FROM jobs
        WHERE state IN ('scheduled', 'available', 'retrying') GROUP BY worker, state
        UNION ALL
        SELECT worker, 'running', count(*) FROM jobs WHERE state = 'running' GROUP BY worker
        UNION ALL
        SELECT worker, state, count(*) FROM jobs
        WHERE state IN ('completed', 'discarded', 'cancelled') GROUP BY worker, state
    ) AS parts
    GROUP BY worker, state
    ORDER BY worker, state";

/// The earliest due time of a waiting job. Index: `jobs_waiting_by_run_at`.
pub(super) const NEXT_DUE: &str = "
    SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'available', 'retrying')";

// ---- cron ----------------------------------------------------------------------------

/// Records tick ?2 of worker ?1 (its job ?3, at ?4) unless it is recorded already; a
/// racing transaction recording the same tick waits for this one, then does nothing.
/// Index: the primary key of `cron_ticks`.
pub(super) const RECORD_CRON_TICK: &str = "
    INSERT INTO cron_ticks (worker, tick_ms, job_id, recorded_at)
    VALUES ($1::text, $2::bigint, $3::text, $4::bigint)
    ON CONFLICT (worker, tick_ms) DO NOTHING";

/// The latest tick of worker ?1. Index: the primary key of `cron_ticks`.
pub(super) const LAST_CRON_TICK: &str =
    "SELECT max(tick_ms) FROM cron_ticks WHERE worker = $1::text";

// ---- nodes ---------------------------------------------------------------------------

/// Records node ?1 as started at ?8. Index: the primary key, which refuses an id again.
pub(super) const REGISTER_NODE: &str = "
    INSERT INTO nodes (id, host, pid, concurrency, memory_pool, workers, heartbeat_ms,
                       started_at, last_beat)
    VALUES ($1::text, $2::text, $3::bigint, $4::bigint, $5::bigint, $6::text[], $7::bigint,
            $8::bigint, $8::bigint)";

/// Records a heartbeat of node ?1 at ?2, unless it stopped. Index: the primary key.
pub(super) const BEAT_NODE: &str = "
    UPDATE nodes
    SET last_beat = $2::bigint, running = $3::bigint, memory_used = $4::bigint,
        cooling_until = $5::bigint
    WHERE id = $1::text AND stopped_at IS NULL";

/// Marks node ?1 stopped at ?2, nothing running.
pub(super) const STOP_NODE: &str = "
    UPDATE nodes SET stopped_at = $2::bigint, last_beat = $2::bigint, running = 0,
                     memory_used = 0
    WHERE id = $1::text AND stopped_at IS NULL";

/// Gives up node ?1's maintenance lead, if it holds it.
pub(super) const RESIGN: &str = "DELETE FROM leader WHERE owner = $1::text";

/// Every node, newest first. Index: `nodes_by_start`.
pub(super) const SELECT_NODES: &str = "
    SELECT id, host, pid, concurrency, memory_pool, workers, heartbeat_ms, started_at,
           last_beat, stopped_at, running, memory_used, cooling_until
    FROM nodes ORDER BY started_at DESC, id";

/// Forgets the nodes silent (stopped, or not beating) since ?1.
pub(super) const PRUNE_NODES: &str = "DELETE FROM nodes WHERE last_beat <= $1::bigint";

/// The database server's clock, in ms since the Unix epoch: `clock_timestamp()`, the
/// time of this call, not of the transaction's start.
pub(super) const CLOCK_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

// ---- CheckpointStore and IdempotencyStore, for in-process runs -----------------------

/// Replaces the checkpoint of run ?2 of worker ?1 with ?3.
pub(super) const SAVE_RUN_CHECKPOINT: &str = "
    INSERT INTO run_checkpoints (worker, run_id, value) VALUES ($1::text, $2::text, $3::jsonb)
    ON CONFLICT (worker, run_id) DO UPDATE SET value = excluded.value";

/// The checkpoint of run ?2 of worker ?1.
pub(super) const LOAD_RUN_CHECKPOINT: &str =
    "SELECT value FROM run_checkpoints WHERE worker = $1::text AND run_id = $2::text";

/// Forgets the checkpoint of run ?2 of worker ?1.
pub(super) const REMOVE_RUN_CHECKPOINT: &str =
    "DELETE FROM run_checkpoints WHERE worker = $1::text AND run_id = $2::text";

/// Remembers that run ?3 of worker ?1 completed under key ?2, until ?4.
pub(super) const RECORD_RUN_IDEMPOTENCY: &str = "
    INSERT INTO run_idempotency (worker, key, run_id, expires_at)
    VALUES ($1::text, $2::text, $3::text, $4::bigint)
    ON CONFLICT (worker, key) DO UPDATE
    SET run_id = excluded.run_id, expires_at = excluded.expires_at";

/// The run of worker ?1 that completed under key ?2, if its record outlives ?3.
pub(super) const LOOKUP_RUN_IDEMPOTENCY: &str = "
    SELECT run_id FROM run_idempotency
    WHERE worker = $1::text AND key = $2::text AND expires_at > $3::bigint";
