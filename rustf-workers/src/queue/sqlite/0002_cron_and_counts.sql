-- 0002: cron ticks, and an index for the stats pages.

-- One row per (worker, tick) ever enqueued: the primary key makes a tick happen once,
-- whichever process gets there first.
CREATE TABLE cron_ticks (
    worker      TEXT    NOT NULL,
    tick_ms     INTEGER NOT NULL,
    job_id      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (worker, tick_ms)
) WITHOUT ROWID;

-- counts(): jobs per worker and state, read from the index alone.
CREATE INDEX jobs_by_worker_state ON jobs (worker, state);

-- cancel_requests(): an owner's running jobs.
CREATE INDEX jobs_running_by_owner ON jobs (owner) WHERE state = 'running';
