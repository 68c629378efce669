-- 0004: the processes that run jobs from this file, and their heartbeats.

CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    concurrency   INTEGER NOT NULL,
    memory_pool   INTEGER NOT NULL,
    workers       TEXT    NOT NULL,  -- JSON: the worker names, sorted
    heartbeat_ms  INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,  -- ms since the Unix epoch, as every time here
    last_beat     INTEGER NOT NULL,
    stopped_at    INTEGER,
    running       INTEGER NOT NULL DEFAULT 0,
    memory_used   INTEGER NOT NULL DEFAULT 0,
    cooling_until INTEGER
) WITHOUT ROWID;
