-- 0002: the processes that run jobs from this database, and their heartbeats (as
-- SQLite's 0004).

CREATE TABLE nodes (
    id            text    PRIMARY KEY,
    host          text    NOT NULL,
    pid           bigint  NOT NULL,
    concurrency   bigint  NOT NULL,
    memory_pool   bigint  NOT NULL,
    workers       text[]  NOT NULL,
    heartbeat_ms  bigint  NOT NULL,
    started_at    bigint  NOT NULL,
    last_beat     bigint  NOT NULL,
    stopped_at    bigint,
    running       bigint  NOT NULL DEFAULT 0,
    memory_used   bigint  NOT NULL DEFAULT 0,
    cooling_until bigint
);

-- nodes(): newest first.
CREATE INDEX nodes_by_start ON nodes (started_at DESC, id);
