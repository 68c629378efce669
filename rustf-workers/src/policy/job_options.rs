//! What one enqueue asks of its stored job: when, how urgent, how often to try.

use std::time::{Duration, SystemTime};

/// Options of one stored job, for
/// [`WorkerRegistry::enqueue_with`](crate::WorkerRegistry::enqueue_with). Unset options
/// take the worker's own ([`WorkerOptions`](crate::WorkerOptions)): its retries, backoff
/// and timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rustf_workers::JobOptions;
///
/// let options = JobOptions::new()
///     .delay(Duration::from_secs(60))
///     .priority(10)
///     .retries(5)
///     .unique_key("report:2026-12-01");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    run_at: Option<SystemTime>,
    delay: Option<Duration>,
    priority: i32,
    retries: Option<u32>,
    timeout: Option<Duration>,
    unique_key: Option<String>,
    idempotency_key: Option<String>,
    queue: Option<String>,
}

impl JobOptions {
    /// No options: due now, priority 0, the worker's retries and timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Not before `at` (the store's clock decides when it is due).
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Not before `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Higher runs first among due jobs; 0 by default.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// How many times a failed attempt is retried, after the worker's backoff, stored
    /// so that it survives a restart. Default: the worker's
    /// [`retries`](crate::WorkerOptions::retries).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Each attempt's timeout. Default: the worker's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most one live (not finished) job of this worker holds `key`, across restarts
    /// and processes: an enqueue with a key already held returns that job's id.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// A job that completed under `key` is not run again: an enqueue with that key
    /// returns the completed job's id, for as long as the job is kept (see pruning).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The queue's name, for listing and filtering; `"default"` by default.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    pub(crate) fn job_run_at(&self) -> Option<SystemTime> {
        self.run_at
    }

    pub(crate) fn job_delay(&self) -> Option<Duration> {
        self.delay
    }

    pub(crate) fn job_priority(&self) -> i32 {
        self.priority
    }

    pub(crate) fn job_retries(&self) -> Option<u32> {
        self.retries
    }

    pub(crate) fn job_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn job_unique_key(&self) -> Option<&str> {
        self.unique_key.as_deref()
    }

    pub(crate) fn job_idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    pub(crate) fn job_queue(&self) -> Option<&str> {
        self.queue.as_deref()
    }
}
