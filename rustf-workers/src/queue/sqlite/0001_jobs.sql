-- 0001: the jobs, and the stores behind CheckpointStore and IdempotencyStore.

CREATE TABLE jobs (
    -- Insertion order: the last tie-break of claims, and the order of listings.
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    worker           TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                                 'retrying', 'completed', 'discarded', 'cancelled')),
    payload          TEXT,   -- JSON
    priority         INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at           INTEGER NOT NULL,  -- ms since the Unix epoch, as every time here
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    timeout_ms       INTEGER,
    unique_key       TEXT,
    idempotency_key  TEXT,
    memory           INTEGER NOT NULL DEFAULT 0,
    errors           TEXT    NOT NULL DEFAULT '[]',  -- JSON: [{attempt, error, at_ms}]
    progress         TEXT,   -- JSON
    checkpoint       TEXT,   -- JSON
    owner            TEXT,
    lease_until      INTEGER,
    epoch            INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

-- Claims: a worker's due jobs in claim order.
CREATE INDEX jobs_waiting_by_worker ON jobs (worker, priority DESC, run_at, seq)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- The poller's next wake-up.
CREATE INDEX jobs_waiting_by_run_at ON jobs (run_at)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- Rescues: expired leases.
CREATE INDEX jobs_running_by_lease ON jobs (lease_until) WHERE state = 'running';

-- At most one live job of a worker holds a unique key; enqueue looks the holder up here.
CREATE UNIQUE INDEX jobs_live_unique_key ON jobs (worker, unique_key)
    WHERE unique_key IS NOT NULL
      AND state NOT IN ('completed', 'discarded', 'cancelled');

-- Enqueue's replay of a completed job's idempotency key.
CREATE INDEX jobs_completed_idempotency_key ON jobs (worker, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state = 'completed';

-- Pruning: finished jobs by age.
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- CheckpointStore, for runs that are not stored jobs.
CREATE TABLE run_checkpoints (
    worker TEXT NOT NULL,
    run_id TEXT NOT NULL,
    value  TEXT NOT NULL,  -- JSON
    PRIMARY KEY (worker, run_id)
) WITHOUT ROWID;

-- IdempotencyStore, for runs that are not stored jobs.
CREATE TABLE run_idempotency (
    worker     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,  -- ms since the Unix epoch
    PRIMARY KEY (worker, key)
) WITHOUT ROWID;
