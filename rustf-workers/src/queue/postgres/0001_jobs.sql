-- 0001: the jobs, cron ticks, and the stores behind CheckpointStore and IdempotencyStore.
-- The same tables as SQLite's 0001-0003, in PostgreSQL's types. Times are bigint ms since
-- the Unix epoch, as the store's callers pass them (`now_ms`).

CREATE TABLE jobs (
    -- Insertion order: the last tie-break of claims, and the order of listings.
    seq              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               text    NOT NULL UNIQUE,
    worker           text    NOT NULL,
    queue            text    NOT NULL,
    state            text    NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                                 'retrying', 'completed', 'discarded', 'cancelled')),
    -- `json`, not `jsonb`: the text as the caller's serializer wrote it, which
    -- `JobFilter::search` matches (as on SQLite); nothing queries into payloads.
    payload          json,
    priority         integer NOT NULL,
    attempt          bigint  NOT NULL DEFAULT 0,
    max_attempts     bigint  NOT NULL CHECK (max_attempts >= 1),
    run_at           bigint  NOT NULL,
    created_at       bigint  NOT NULL,
    finished_at      bigint,
    timeout_ms       bigint,
    unique_key       text,
    idempotency_key  text,
    memory           bigint  NOT NULL DEFAULT 0,
    errors           jsonb   NOT NULL DEFAULT '[]',  -- [{attempt, error, at_ms}]
    progress         jsonb,
    checkpoint       jsonb,
    owner            text,
    lease_until      bigint,
    epoch            bigint  NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false
);

-- Claims: a worker's due jobs in claim order.
CREATE INDEX jobs_waiting_by_worker ON jobs (worker, priority DESC, run_at, seq)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- The poller's next wake-up.
CREATE INDEX jobs_waiting_by_run_at ON jobs (run_at)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- Rescues: expired leases.
CREATE INDEX jobs_running_by_lease ON jobs (lease_until) WHERE state = 'running';

-- cancel_requests(): an owner's running jobs.
CREATE INDEX jobs_running_by_owner ON jobs (owner) WHERE state = 'running';

-- At most one live job of a worker holds a unique key: enqueue looks the holder up here,
-- and its `ON CONFLICT` names this index, so two racing enqueues store one job.
CREATE UNIQUE INDEX jobs_live_unique_key ON jobs (worker, unique_key)
    WHERE unique_key IS NOT NULL
      AND state NOT IN ('completed', 'discarded', 'cancelled');

-- Enqueue's replay of a completed job's idempotency key.
CREATE INDEX jobs_completed_idempotency_key ON jobs (worker, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state = 'completed';

-- Pruning: finished jobs by age.
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- counts(): jobs per worker and state, from the index alone.
CREATE INDEX jobs_by_worker_state ON jobs (worker, state);

-- One row per (worker, tick) ever enqueued: the primary key makes a tick happen once,
-- whichever node gets there first.
CREATE TABLE cron_ticks (
    worker      text   NOT NULL,
    tick_ms     bigint NOT NULL,
    job_id      text   NOT NULL,
    recorded_at bigint NOT NULL,
    PRIMARY KEY (worker, tick_ms)
);

-- CheckpointStore, for runs that are not stored jobs.
CREATE TABLE run_checkpoints (
    worker text  NOT NULL,
    run_id text  NOT NULL,
    value  jsonb NOT NULL,
    PRIMARY KEY (worker, run_id)
);

-- IdempotencyStore, for runs that are not stored jobs.
CREATE TABLE run_idempotency (
    worker     text   NOT NULL,
    key        text   NOT NULL,
    run_id     text   NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (worker, key)
);
