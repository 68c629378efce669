//! Per-call options, next to the seed's three-argument `call`.

use std::time::Duration;

/// Options for one call: [`WorkerRegistry::call_with`](crate::WorkerRegistry::call_with).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use rustf_workers::CallOptions;
///
/// let urgent = CallOptions::new().timeout(Duration::from_secs(5)).priority(10);
/// assert_eq!(urgent.run_timeout(), Some(Duration::from_secs(5)));
/// assert_eq!(urgent.run_priority(), 10);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    timeout: Option<Duration>,
    priority: i32,
    retries: Option<u32>,
    daemon: Option<bool>,
    durable: Option<bool>,
    unique_key: Option<String>,
    idempotency: Option<(String, Duration)>,
}

impl CallOptions {
    /// The defaults: the definition's timeout, priority 0.
    pub const fn new() -> Self {
        Self {
            timeout: None,
            priority: 0,
            retries: None,
            daemon: None,
            durable: None,
            unique_key: None,
            idempotency: None,
        }
    }

    /// Stops the run after `timeout` of execution (time spent waiting in the admission
    /// queue does not count), overriding the definition's default.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Its place in the admission queue when a concurrency cap makes it wait: higher
    /// first, call order within a priority. Default 0.
    #[must_use]
    pub const fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Retries this run up to `retries` times, overriding the definition's
    /// [`retries`](crate::WorkerOptions::retries).
    #[must_use]
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Makes this run a daemon (or not), overriding the definition's
    /// [`daemon`](crate::WorkerOptions::daemon).
    #[must_use]
    pub const fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Stores this call in the registry's durable queue before it runs (or not),
    /// overriding the definition's [`durable`](crate::WorkerOptions::durable).
    ///
    /// The call returns once the job is stored and claimed by this process, in one
    /// transaction; the job then runs here as any run does, with a live handle (`recv`,
    /// `await_result`, `cancel`), and is also a stored job: listed by
    /// [`jobs`](crate::WorkerRegistry::jobs), awaited by id with
    /// [`await_job`](crate::WorkerRegistry::await_job), run again after a crash, handed
    /// back at shutdown. Its timeout, priority, retries (stored between attempts) and keys
    /// are the job's; an idempotency key is kept with the job, so its retention does not
    /// apply. A key held by another job gives a handle on that job (live if it runs here,
    /// else one that awaits its stored outcome). With no queue, the call fails with
    /// [`Error::NoQueue`](crate::Error::NoQueue).
    #[must_use]
    pub const fn durable(mut self, durable: bool) -> Self {
        self.durable = Some(durable);
        self
    }

    /// Whether this call is stored first, if it overrides the definition.
    pub const fn run_durable(&self) -> Option<bool> {
        self.durable
    }

    /// While a run of the same worker with this key is queued or running, the call
    /// attaches to it instead of starting another: its handle receives the same messages
    /// (those emitted before it attached, up to the message capacity, then the rest) and
    /// the same result.
    #[must_use]
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// If a run of the same worker completed successfully under this key within
    /// `retention`, the call returns that outcome (a finished handle with the earlier
    /// run's id and `Ok(())`) without running again. Failed runs are not remembered.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>, retention: Duration) -> Self {
        self.idempotency = Some((key.into(), retention));
        self
    }

    /// The unique key, if any.
    pub fn run_unique_key(&self) -> Option<&str> {
        self.unique_key.as_deref()
    }

    /// The idempotency key and its retention, if any.
    pub fn run_idempotency_key(&self) -> Option<(&str, Duration)> {
        self.idempotency
            .as_ref()
            .map(|(key, retention)| (key.as_str(), *retention))
    }

    /// Whether this call asks for a daemon, if it overrides the definition.
    pub const fn run_daemon(&self) -> Option<bool> {
        self.daemon
    }

    /// The retries this call asks for, if it overrides the definition's.
    pub const fn run_retries(&self) -> Option<u32> {
        self.retries
    }

    /// The timeout this call asks for, if any.
    pub const fn run_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The priority this call asks for.
    pub const fn run_priority(&self) -> i32 {
        self.priority
    }
}
