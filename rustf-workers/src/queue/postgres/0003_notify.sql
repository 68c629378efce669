-- 0003: notifications, so that nodes wake when jobs become available and a running job's
-- owner hears of its cancel at once (LISTEN rustf_workers); the leader of the cluster's
-- maintenance; the messages too large for a notification.
--
-- A notification's payload is JSON: {"s": schema, "k": kind, ...}. Every schema of a
-- database shares the channel, and listeners keep their own schema's. PostgreSQL
-- delivers identical notifications of one transaction once, so a batch of jobs of one
-- worker wakes each listener once.

-- Jobs stored available: one notification per worker per statement (transition table).
CREATE FUNCTION rustf_workers_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rustf_workers',
        json_build_object('s', TG_TABLE_SCHEMA, 'k', 'available', 'w', worker)::text)
    FROM (SELECT DISTINCT worker FROM inserted WHERE state = 'available') AS workers;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION rustf_workers_jobs_inserted();

-- A job made available again (handed back, rescued, retried by an operator), or a
-- running job's cancel asked. Row triggers whose WHEN skips every other update (claims,
-- outcomes, lease extensions) without calling the function.
CREATE FUNCTION rustf_workers_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'available' THEN
        PERFORM pg_notify('rustf_workers',
            json_build_object('s', TG_TABLE_SCHEMA, 'k', 'available', 'w', NEW.worker)::text);
    ELSE
        PERFORM pg_notify('rustf_workers',
            json_build_object('s', TG_TABLE_SCHEMA, 'k', 'cancel', 'o', NEW.owner,
                              'id', NEW.id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_available AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.state = 'available' AND OLD.state <> 'available')
    EXECUTE FUNCTION rustf_workers_job_changed();

CREATE TRIGGER jobs_notify_cancel AFTER UPDATE OF cancel_requested ON jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested
                       AND NEW.state = 'running')
    EXECUTE FUNCTION rustf_workers_job_changed();

-- Who leads the cluster's maintenance (rescue, pruning), until when (ms, the database's
-- clock as the nodes pass it).
CREATE TABLE leader (
    name  text   PRIMARY KEY,
    owner text   NOT NULL,
    until bigint NOT NULL
);

-- A followed job's message too large for a notification (8000 bytes): stored here, and
-- the notification names its row. Deleted as later ones are stored, ten minutes on.
CREATE TABLE job_messages (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     text   NOT NULL,
    body       json   NOT NULL,
    created_at bigint NOT NULL
);
