-- 0003: the partial indexes on `state`, with their conditions spelt as comparisons.
--
-- SQLite evaluates `state IN (a, b, c)` (three constants or more) by building a
-- temporary b-tree of the list each time a statement runs, and it evaluates a partial
-- index's condition for the old and the new row of every write that changes `state`: a
-- claim built nine of them, an outcome seven, an enqueue four, most of a job's cost in
-- the store. `=` and `<>` chains build none. The queries that rely on these indexes spell
-- their conditions the same way (sql.rs), so that the planner still matches them.

DROP INDEX jobs_waiting_by_worker;
CREATE INDEX jobs_waiting_by_worker ON jobs (worker, priority DESC, run_at, seq)
    WHERE state = 'scheduled' OR state = 'available' OR state = 'retrying';

DROP INDEX jobs_waiting_by_run_at;
CREATE INDEX jobs_waiting_by_run_at ON jobs (run_at)
    WHERE state = 'scheduled' OR state = 'available' OR state = 'retrying';

DROP INDEX jobs_live_unique_key;
CREATE UNIQUE INDEX jobs_live_unique_key ON jobs (worker, unique_key)
    WHERE unique_key IS NOT NULL
      AND state <> 'completed' AND state <> 'discarded' AND state <> 'cancelled';
