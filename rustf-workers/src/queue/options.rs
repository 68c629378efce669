//! How a process runs a durable queue's jobs: [`QueueOptions`].

use std::time::Duration;

/// How this process runs stored jobs: [`WorkerRegistry::use_queue_with`].
///
/// [`WorkerRegistry::use_queue_with`]: crate::WorkerRegistry::use_queue_with
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub(crate) concurrency: usize,
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) cooldown: (u32, Duration),
    pub(crate) poll_interval: Duration,
    pub(crate) runs_jobs: bool,
    pub(crate) retention: Option<Duration>,
    pub(crate) claim_ahead: Option<usize>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            lease: Duration::from_secs(30),
            heartbeat: None,
            cooldown: (10, Duration::from_secs(60)),
            poll_interval: Duration::from_secs(1),
            runs_jobs: true,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            claim_ahead: None,
        }
    }
}

impl QueueOptions {
    /// The defaults: 16 jobs at once, 30 s leases, a poll every second, finished jobs
    /// pruned after 7 days.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many stored jobs this process claims to run at once (workers' own concurrency
    /// caps, the registry's `set_max_running` and its memory pool apply too). Durable
    /// calls made here count against it, but run whatever it says, as calls do.
    /// Default 16.
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// How long a claim holds a job without a heartbeat. A process killed while it runs
    /// a job leaves it to be run again this long after its last heartbeat; heartbeats
    /// come every third of it. Default 30 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often this process beats: it extends its leases, reports its load as a node
    /// ([`WorkerRegistry::nodes`](crate::WorkerRegistry::nodes)), and hears of cancels
    /// asked elsewhere. Default: a third of the lease; at most half of it (a longer one is
    /// refused by `use_queue_with`).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every.max(Duration::from_millis(10)));
        self
    }

    /// Stops claiming for `period` once `failures` of this process's stored jobs in a
    /// row failed for reasons that may be the node's (a panic or a timeout), as Phase-3's
    /// scheduler cools a failing worker down: the node shows `unhealthy`, other nodes take
    /// the work, and claiming resumes after the period. Durable calls still run. Default
    /// 10 in a row, 60 s; `failures` 0 turns it off.
    pub fn cooldown(mut self, failures: u32, period: Duration) -> Self {
        self.cooldown = (failures, period);
        self
    }

    /// How many jobs this process may claim beyond `concurrency`, to start each as soon
    /// as a slot is free, without a round trip to the store; 0 turns it off. Default 8
    /// times `concurrency` (graphile_worker's throughput configuration holds 100).
    ///
    /// What is held ahead follows how long the jobs take here: as many as the slots
    /// finish in about 25 ms, so short jobs are claimed in batches and the store is not
    /// asked once per job, while jobs longer than 25 ms times `concurrency` (400 ms at
    /// 16) are claimed only for a free slot and never wait here while another node could
    /// run them. None is held before
    /// a stored job has ended here, nor for workers with a concurrency cap, a daemon
    /// limit or declared memory, nor while the registry's `set_max_running` is set. A
    /// job held ahead is claimed (the store shows it `running`, owned by this node): its
    /// lease is kept, a cancel takes it out at once (cancelled as a waiting job is, its
    /// attempt not counted), and shutdown hands it back uncounted. Jobs start in the order they were claimed, so a job of higher
    /// priority enqueued meanwhile waits for those held ahead.
    pub fn claim_ahead(mut self, jobs: usize) -> Self {
        self.claim_ahead = Some(jobs);
        self
    }

    /// The most held ahead, [`claim_ahead`](Self::claim_ahead) or its default.
    pub(crate) fn claim_ahead_max(&self) -> usize {
        self.claim_ahead
            .unwrap_or_else(|| self.concurrency.saturating_mul(8))
    }

    pub(crate) fn heartbeat_every(&self) -> Duration {
        self.heartbeat.unwrap_or(self.lease / 3)
    }

    /// How often the store is asked for due jobs when nothing wakes the poller sooner (a
    /// local enqueue, a run's end, the next scheduled job). Default 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Whether this process runs jobs at all; `false` makes it enqueue only (a web
    /// process beside a worker process). Default `true`.
    pub fn runs_jobs(mut self, runs: bool) -> Self {
        self.runs_jobs = runs;
        self
    }

    /// How long finished jobs (completed, discarded, cancelled) are kept before the
    /// heartbeat prunes them; `None` keeps them until pruned by hand. Default 7 days.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }
}
