//! The data a [`JobStore`](super::JobStore) takes and returns.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JobState;

/// The queue a job goes to when none is named.
pub const DEFAULT_QUEUE: &str = "default";

/// A job to store: what [`JobStore::enqueue`](super::JobStore::enqueue) takes.
///
/// # Examples
///
/// ```
/// use rustf_workers::queue::NewJob;
///
/// let job = NewJob::new("0b7c…", "send-email")
///     .payload(serde_json::json!({ "to": "a@example.com" }))
///     .unique_key("welcome:42")
///     .max_attempts(5);
/// assert_eq!(job.queue, "default");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The job's id, made by the caller (a uuid); a run of this job has the same id.
    pub id: String,
    /// The name of the worker that runs it.
    pub worker: String,
    /// The queue it belongs to; [`DEFAULT_QUEUE`] unless named.
    pub queue: String,
    /// The worker's input.
    pub payload: Option<Value>,
    /// Higher runs first among due jobs.
    pub priority: i32,
    /// When it is due, in milliseconds since the Unix epoch; `None` means now.
    pub run_at_ms: Option<i64>,
    /// How many attempts it gets in all (at least 1).
    pub max_attempts: u32,
    /// The timeout of each attempt, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// At most one live (not finished) job of this worker holds a unique key; enqueueing
    /// another returns the holder instead.
    pub unique_key: Option<String>,
    /// Once a job of this worker has completed under this key, enqueueing another
    /// returns the completed one, for as long as it is stored (until it is pruned).
    pub idempotency_key: Option<String>,
    /// The memory it declares, in bytes (0: none), for the admission's memory pool.
    pub memory: u64,
}

impl NewJob {
    /// Refuses a job that no store could hold as given, before it reaches the database:
    /// every store's rule, in one place.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) naming what is wrong.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        let refuse = |why: &str| Err(Error::validation(format!("job `{}`: {why}", self.id)));
        if self.id.is_empty() {
            return Err(Error::validation("a job needs an id"));
        }
        if self.worker.is_empty() {
            return refuse("no worker named");
        }
        if self.queue.is_empty() {
            return refuse("the queue name is empty");
        }
        if self.max_attempts == 0 {
            return refuse("`max_attempts` must be at least 1");
        }
        if self.timeout_ms.is_some_and(|ms| i64::try_from(ms).is_err()) {
            return refuse("`timeout_ms` is out of range");
        }
        if i64::try_from(self.memory).is_err() {
            return refuse("`memory` is out of range");
        }
        Ok(())
    }

    /// A job for `worker` with id `id`: no payload, due now, priority 0, one attempt, in
    /// the default queue.
    pub fn new(id: impl Into<String>, worker: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            worker: worker.into(),
            queue: DEFAULT_QUEUE.to_owned(),
            payload: None,
            priority: 0,
            run_at_ms: None,
            max_attempts: 1,
            timeout_ms: None,
            unique_key: None,
            idempotency_key: None,
            memory: 0,
        }
    }

    /// Sets [`NewJob::payload`].
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets [`NewJob::queue`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets [`NewJob::priority`].
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets [`NewJob::run_at_ms`].
    pub fn run_at_ms(mut self, at_ms: i64) -> Self {
        self.run_at_ms = Some(at_ms);
        self
    }

    /// Sets [`NewJob::max_attempts`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`NewJob::timeout_ms`].
    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    /// Sets [`NewJob::unique_key`].
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Sets [`NewJob::idempotency_key`].
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets [`NewJob::memory`].
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }
}

/// What [`JobStore::enqueue`](super::JobStore::enqueue) did with one [`NewJob`], in the
/// order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The stored job: the new one, or the one that already held its unique key or
    /// completed under its idempotency key.
    pub id: String,
    /// Whether the job was stored; `false` when an existing job answered for it.
    pub inserted: bool,
}

/// What [`JobStore::enqueue_claimed`](super::JobStore::enqueue_claimed) did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EnqueueClaim {
    /// The job was stored and claimed by the caller: run it.
    Claimed(Box<ClaimedJob>),
    /// Nothing was stored: the job with this id holds the unique key, or completed under
    /// the idempotency key.
    Existing(String),
}

/// What a process asks of [`JobStore::claim`](super::JobStore::claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// Who claims: a name unique to this process, stored as the jobs' owner.
    pub owner: String,
    /// Each worker this process runs, with how many of its jobs it may take now (its
    /// free concurrency); jobs of other workers are left alone.
    pub workers: Vec<(String, usize)>,
    /// At most this many jobs in all.
    pub limit: usize,
    /// How long the lease lasts before another process may rescue the job, in ms.
    pub lease_ms: u64,
}

/// A job taken by [`JobStore::claim`](super::JobStore::claim): what a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedJob {
    /// The job's id (and the run's).
    pub id: String,
    /// The worker that runs it.
    pub worker: String,
    /// Its queue.
    pub queue: String,
    /// The worker's input.
    pub payload: Option<Value>,
    /// Its priority.
    pub priority: i32,
    /// The attempt starting now, from 1.
    pub attempt: u32,
    /// How many attempts it gets in all.
    pub max_attempts: u32,
    /// The claim's fence: every write about this attempt carries it, and is refused once
    /// another claim has taken the job.
    pub epoch: u64,
    /// The timeout of the attempt, in ms.
    pub timeout_ms: Option<u64>,
    /// Its unique key.
    pub unique_key: Option<String>,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// Its declared memory, in bytes.
    pub memory: u64,
    /// The checkpoint saved by an earlier attempt, so a retried job resumes.
    pub checkpoint: Option<Value>,
}

/// A fenced write of one attempt's outcome, for
/// [`JobStore::finish`](super::JobStore::finish).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finish {
    /// The job.
    pub id: String,
    /// The epoch of the claim that ran the attempt.
    pub epoch: u64,
    /// How the attempt ended.
    pub outcome: FinishOutcome,
}

/// How an attempt ended, and so where the job goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishOutcome {
    /// It succeeded: the job is completed.
    Completed,
    /// It failed and gets another attempt, due at `at_ms` (the backoff is stored, so it
    /// survives a restart).
    Retry {
        /// When the next attempt is due, in ms since the Unix epoch.
        at_ms: i64,
        /// Why the attempt failed.
        error: String,
    },
    /// It failed for good (out of attempts, or a validation error): discarded.
    Discard {
        /// Why.
        error: String,
    },
    /// It was cancelled while it ran.
    Cancelled {
        /// Why, or by whom.
        error: String,
    },
    /// Shutdown stopped it and hands it back: available again at once, and this attempt
    /// is not counted.
    Requeue,
    /// It was cancelled before it started: claimed ahead of a free slot, it never ran.
    /// The job is cancelled as a waiting one is: this attempt not counted, no error
    /// recorded.
    CancelledBeforeStart,
}

/// One failed attempt, as stored on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// What went wrong.
    pub error: String,
    /// When it was recorded, in ms since the Unix epoch.
    pub at_ms: i64,
}

/// Everything stored about one job, for operations pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job's id.
    pub id: String,
    /// The worker that runs it.
    pub worker: String,
    /// Its queue.
    pub queue: String,
    /// Where it is in its life.
    pub state: JobState,
    /// The worker's input.
    pub payload: Option<Value>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts started so far (the running one included).
    pub attempt: u32,
    /// Attempts it gets in all.
    pub max_attempts: u32,
    /// When it is (or was) due, in ms since the Unix epoch.
    pub run_at_ms: i64,
    /// When it was enqueued.
    pub created_at_ms: i64,
    /// When it finished, if it has.
    pub finished_at_ms: Option<i64>,
    /// Every error recorded, oldest first.
    pub errors: Vec<JobError>,
    /// The last progress its worker reported.
    pub progress: Option<Value>,
    /// The last checkpoint its worker saved.
    pub checkpoint: Option<Value>,
    /// Its unique key.
    pub unique_key: Option<String>,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// The process holding it, while it runs.
    pub owner: Option<String>,
    /// When the current lease runs out, while it runs.
    pub lease_until_ms: Option<i64>,
    /// How many times it has been claimed: the fence of the current claim.
    pub epoch: u64,
    /// Whether an operator asked to cancel it while it ran.
    pub cancel_requested: bool,
    /// The timeout of each attempt, in ms.
    pub timeout_ms: Option<u64>,
    /// Its declared memory, in bytes.
    pub memory: u64,
}

/// Which jobs [`JobStore::list`](super::JobStore::list) returns, newest first.
///
/// Paging is by cursor: pass the previous page's [`JobPage::next`] as `before_id` to get
/// the jobs enqueued before it. If the job named by `before_id` has been deleted, the page
/// is empty; start again from the top.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only jobs in these states; empty means any.
    pub states: Vec<JobState>,
    /// Only jobs of this worker.
    pub worker: Option<String>,
    /// Only jobs whose payload's JSON text contains this (case-sensitive).
    pub search: Option<String>,
    /// At most this many jobs (0 means [`JobFilter::DEFAULT_LIMIT`]; capped at
    /// [`JobFilter::MAX_LIMIT`]).
    pub limit: usize,
    /// Only jobs enqueued before this one.
    pub before_id: Option<String>,
}

impl JobFilter {
    /// The page size when `limit` is 0.
    pub const DEFAULT_LIMIT: usize = 50;
    /// The largest page.
    pub const MAX_LIMIT: usize = 1000;

    /// The page size this filter asks for, within the bounds.
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n.min(Self::MAX_LIMIT),
        }
    }
}

/// One page of [`JobStore::list`](super::JobStore::list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<JobRecord>,
    /// The `before_id` of the next page, if there may be one.
    pub next: Option<String>,
}

/// What a bulk action on the jobs matching a filter did
/// ([`WorkerRegistry::retry_jobs`](crate::WorkerRegistry::retry_jobs),
/// [`cancel_jobs`](crate::WorkerRegistry::cancel_jobs),
/// [`delete_jobs`](crate::WorkerRegistry::delete_jobs)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsChanged {
    /// The jobs the filter matched.
    pub matched: u64,
    /// Those the action applied to (a job in a state it does not apply to, or that
    /// changed meanwhile, is matched, not changed).
    pub changed: u64,
}

/// What [`JobStore::cancel`](super::JobStore::cancel) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// No job has this id.
    NotFound,
    /// The job had already finished; nothing changed.
    AlreadyFinished,
    /// The job was waiting; it is now cancelled and will not run.
    Cancelled,
    /// The job is running: its cancel flag is set, and its owner stops it.
    Running {
        /// The process running it.
        owner: String,
    },
}

/// How many jobs of one worker are in one state: a row of
/// [`WorkerRegistry::job_counts`](crate::WorkerRegistry::job_counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCount {
    /// The worker.
    pub worker: String,
    /// The state.
    pub state: JobState,
    /// How many of its jobs are in it.
    pub count: u64,
}
