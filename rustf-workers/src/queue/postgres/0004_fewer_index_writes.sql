-- 0004: fewer index entries per claim and per outcome. A claim or an outcome changes a
-- job's `state`, so its new row version gets an entry in every index whose condition it
-- meets, and the drain's cost was mostly these. Two indexes that every version entered go:
-- `jobs_by_worker_state` (the counts are read from the three partial indexes below, each
-- covering `worker`, and `state` where it is not one) and `jobs_running_by_owner` (an
-- owner's cancel requests are found through an index only those jobs enter). A claim now
-- writes three index entries (`seq`, `id`, `jobs_running_by_lease`) instead of five, an
-- outcome three (`seq`, `id`, `jobs_finished`) instead of four.

DROP INDEX jobs_by_worker_state;
DROP INDEX jobs_running_by_owner;

-- cancel_requests(): an owner's running jobs whose cancel was asked.
CREATE INDEX jobs_cancel_requested ON jobs (owner) WHERE state = 'running' AND cancel_requested;

-- The poller's next wake-up, as before, and the waiting jobs' counts.
DROP INDEX jobs_waiting_by_run_at;
CREATE INDEX jobs_waiting_by_run_at ON jobs (run_at) INCLUDE (worker, state)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- Rescues, as before, and the running jobs' counts.
DROP INDEX jobs_running_by_lease;
CREATE INDEX jobs_running_by_lease ON jobs (lease_until) INCLUDE (worker)
    WHERE state = 'running';

-- Pruning, as before (finished_at is set exactly when a job finishes), and the finished
-- jobs' counts.
DROP INDEX jobs_finished_at;
CREATE INDEX jobs_finished ON jobs (finished_at) INCLUDE (worker, state)
    WHERE state IN ('completed', 'discarded', 'cancelled');
