//! The one error type of the crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// `Result<T, Error>`: the return type of workers and of every fallible operation here.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when registering, running or talking to a worker.
///
/// A handler returns its own failures with the constructors ([`Error::validation`],
/// [`Error::timeout`], [`Error::internal`]) or with `?` on [`std::io::Error`],
/// [`serde_json::Error`] and `Box<dyn std::error::Error + Send + Sync>`. The runtime adds
/// the variants that describe what happened to a run: it timed out, was cancelled,
/// panicked, or could not start.
///
/// `Error` is `Clone` (sources are shared behind an `Arc`), so one outcome can be handed to
/// several readers and kept in statistics.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let err = WORKER::run("no-such-worker", None).await.unwrap_err();
/// assert!(err.is_not_registered());
/// assert_eq!(err.to_string(), "Worker 'no-such-worker' not registered");
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was not acceptable: a missing or malformed payload, a bad setting.
    /// Raised by handlers through [`Error::validation`].
    #[error("validation failed: {0}")]
    Validation(String),

    /// Something the handler waited on took too long (an external API, say).
    /// Raised by handlers through [`Error::timeout`]; the runtime's own deadline is
    /// [`Error::TimedOut`].
    #[error("timed out: {0}")]
    Timeout(String),

    /// A failure that is nobody's input: raised by handlers through [`Error::internal`],
    /// or by the runtime when it is used outside a tokio runtime.
    #[error("internal error: {0}")]
    Internal(String),

    /// No worker is registered under this name.
    #[error("Worker '{name}' not registered")]
    NotRegistered {
        /// The name that was asked for.
        name: String,
    },

    /// Two registrations claimed the same worker name.
    #[error("Worker '{name}' is registered twice: by {first} and by {second}")]
    AlreadyRegistered {
        /// The contested name.
        name: String,
        /// Where the registration that holds the name came from.
        first: String,
        /// Where the refused registration came from.
        second: String,
    },

    /// A worker name that breaks the naming rule (see [`crate::WorkerRegistry::register`]).
    #[error("invalid worker name {name:?}: {reason}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The run did not finish within its timeout and was stopped.
    #[error("Worker '{worker}' timed out after {}", DisplayDuration(*after))]
    TimedOut {
        /// The worker's name.
        worker: String,
        /// The timeout that elapsed.
        after: Duration,
    },

    /// The run was stopped before it finished: by a cancel request or by shutdown.
    #[error("Worker '{worker}' {reason}")]
    Cancelled {
        /// The worker's name.
        worker: String,
        /// Who stopped it.
        reason: CancelReason,
    },

    /// The handler panicked; the panic was contained to its run.
    #[error("Worker '{worker}' panicked: {message}")]
    Panicked {
        /// The worker's name.
        worker: String,
        /// The panic message, when the payload was a string.
        message: String,
    },

    /// No live run has this id: it never existed, or it has already finished.
    #[error("no live run with id '{run_id}' (unknown id, or the run has already finished)")]
    RunNotFound {
        /// The id that was asked for.
        run_id: String,
    },

    /// No stored job has this id, in the registry's durable queue.
    #[error("no stored job with id '{id}' in the durable queue")]
    JobNotFound {
        /// The id that was asked for.
        id: String,
    },

    /// A durable-queue operation was asked of a registry that has no queue (a durable
    /// call or enqueue included).
    #[error("no durable queue: call `use_queue` first")]
    NoQueue,

    /// A stored job ran elsewhere, or later, and did not complete: it was discarded (its
    /// attempts spent, or a validation error) or cancelled. What a handle on a durable
    /// job that did not run in this process returns from `await_result`.
    #[error("job '{id}' of worker '{worker}' ended {state}: {error}")]
    JobFailed {
        /// The job's id.
        id: String,
        /// The worker's name.
        worker: String,
        /// Its stored final state: `discarded` or `cancelled`.
        state: crate::queue::JobState,
        /// Its last stored error.
        error: String,
    },

    /// A stored job's run wrote after its lease was lost: it stalled (or the store was out
    /// of reach) for longer than a lease, the job was rescued and may run elsewhere, and
    /// its writes (checkpoint, progress, outcome) are refused. The run is being stopped.
    #[error(
        "job '{id}' is no longer held by this process: its lease expired and it was \
         taken over, so this run's writes are refused"
    )]
    LeaseLost {
        /// The job's id.
        id: String,
    },

    /// The call had to wait for a limit (a concurrency cap, the registry's
    /// `set_max_running`, or its memory pool) and the admission queue was full.
    #[error("Worker '{worker}' cannot be queued: the admission queue is full ({capacity} calls waiting)")]
    QueueFull {
        /// The worker's name.
        worker: String,
        /// The queue's bound.
        capacity: usize,
    },

    /// The worker already has its maximum of live daemon runs.
    #[error("Worker '{worker}' already has {max} live daemons, its maximum")]
    DaemonLimit {
        /// The worker's name.
        worker: String,
        /// The cap.
        max: usize,
    },

    /// `shutdown()` has started: no new run is accepted.
    #[error("workers are shutting down: no new runs are accepted")]
    ShuttingDown,

    /// `emit` found the run's unread messages at its byte budget
    /// ([`WorkerRegistry::set_message_budget`](crate::WorkerRegistry::set_message_budget)):
    /// the handle holds them unread while the worker emits without ever awaiting.
    #[error(
        "message budget of worker '{worker}' is spent ({unread} unread messages, about \
         {budget} bytes): the caller is not reading; use `emit_wait` to wait for room, or \
         `.await` between emits so the caller can keep up"
    )]
    MessageBufferFull {
        /// The worker's name.
        worker: String,
        /// Messages queued and not read yet.
        unread: usize,
        /// The run's budget, in bytes (as `set_message_budget` counts them).
        budget: usize,
    },

    /// A message was emitted through a context whose run has already ended.
    #[error(
        "run '{run_id}' of worker '{worker}' has already finished: its message stream is closed"
    )]
    RunFinished {
        /// The worker's name.
        worker: String,
        /// The run's id.
        run_id: String,
    },

    /// The durable job store failed: the database could not be opened, read or written
    /// (a corrupt or foreign file, a read-only directory, a locked database, a full disk).
    /// Raised by the stores in [`crate::queue`]; rendered as what was being done, to what,
    /// and why: "claiming jobs from `jobs.db`: database is locked".
    #[error("{action} `{target}`: {message}")]
    Store {
        /// What was being done, ending with its preposition: "claiming jobs from".
        action: String,
        /// The database: a file path, or a connection target without its password.
        target: String,
        /// What the database said.
        message: String,
    },

    /// An I/O error, from `?` on [`std::io::Error`].
    #[error("I/O error: {0}")]
    Io(#[source] Arc<std::io::Error>),

    /// A JSON error, from `?` on [`serde_json::Error`].
    #[error("JSON error: {0}")]
    Json(#[source] Arc<serde_json::Error>),

    /// Any other error, from `?` on `Box<dyn std::error::Error + Send + Sync>`.
    #[error("{0}")]
    Other(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

/// Why a run was cancelled; part of [`Error::Cancelled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// `cancel()` was called on the run.
    Requested,
    /// `shutdown()` stopped the run after its grace period.
    Shutdown,
    /// The run's task was dropped before it finished, because its tokio runtime shut down.
    Dropped,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "was cancelled",
            Self::Shutdown => "was cancelled by shutdown",
            Self::Dropped => "was dropped before it finished (its tokio runtime shut down)",
        })
    }
}

impl Error {
    /// A validation error: the input was missing or malformed.
    ///
    /// ```
    /// # use rustf_workers::Error;
    /// let err = Error::validation("'to' address required");
    /// assert!(err.is_validation());
    /// ```
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    /// A timeout raised by the handler itself (an external call took too long).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::Timeout(message.into())
    }

    /// An internal error: a failure that is not the caller's input.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// Whether this is a validation error.
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Validation(_))
    }

    /// Whether this is a timeout: the run's own deadline ([`Error::TimedOut`]) or one the
    /// handler reported ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::TimedOut { .. })
    }

    /// Whether the run was cancelled, by request or by shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled { .. })
    }

    /// Who cancelled the run, if this is [`Error::Cancelled`].
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        match self {
            Self::Cancelled { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether the handler panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Self::Panicked { .. })
    }

    /// Whether this is an internal error.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Internal(_))
    }

    /// Whether the worker name was unknown.
    pub fn is_not_registered(&self) -> bool {
        matches!(self, Self::NotRegistered { .. })
    }

    /// Whether a registration was refused because the name was taken.
    pub fn is_already_registered(&self) -> bool {
        matches!(self, Self::AlreadyRegistered { .. })
    }

    /// Whether a run id did not name a live run.
    pub fn is_run_not_found(&self) -> bool {
        matches!(self, Self::RunNotFound { .. })
    }

    /// Whether an id did not name a stored job.
    pub fn is_job_not_found(&self) -> bool {
        matches!(self, Self::JobNotFound { .. })
    }

    /// Whether the call was refused because the admission queue was full.
    pub fn is_queue_full(&self) -> bool {
        matches!(self, Self::QueueFull { .. })
    }

    /// Whether a stored job's run lost its lease ([`Error::LeaseLost`]).
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }

    /// Whether the durable job store failed ([`Error::Store`]).
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Store { .. })
    }

    /// Whether the call was refused because shutdown had started.
    pub fn is_shutting_down(&self) -> bool {
        matches!(self, Self::ShuttingDown)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::Io(Arc::new(err))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::Json(Arc::new(err))
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(err: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self::Other(Arc::from(err))
    }
}

/// Formats a duration the way people write it: `5s`, `500ms`, `2m`, `1h`.
pub(crate) struct DisplayDuration(pub(crate) Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if d.subsec_nanos() == 0 {
            match secs {
                0 => f.write_str("0s"),
                s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
                s if s % 60 == 0 => write!(f, "{}m", s / 60),
                s => write!(f, "{s}s"),
            }
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{d:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let show = |d| DisplayDuration(d).to_string();
        assert_eq!(show(Duration::from_secs(5)), "5s");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_secs(120)), "2m");
        assert_eq!(show(Duration::from_secs(7200)), "2h");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(Duration::from_micros(1500)), "1.5ms");
    }

    #[test]
    fn runtime_errors_name_the_worker() {
        let timed_out = Error::TimedOut {
            worker: "slow-task".into(),
            after: Duration::from_secs(5),
        };
        assert_eq!(
            timed_out.to_string(),
            "Worker 'slow-task' timed out after 5s"
        );
        assert!(timed_out.is_timeout());

        let cancelled = Error::Cancelled {
            worker: "w".into(),
            reason: CancelReason::Shutdown,
        };
        assert_eq!(
            cancelled.to_string(),
            "Worker 'w' was cancelled by shutdown"
        );
        assert!(cancelled.is_cancelled() && !cancelled.is_timeout());
        assert_eq!(cancelled.cancel_reason(), Some(CancelReason::Shutdown));
        assert_eq!(timed_out.cancel_reason(), None);
    }

    #[test]
    fn question_mark_converts_common_errors() {
        fn io() -> Result<()> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"))?
        }
        fn json() -> Result<()> {
            serde_json::from_str::<serde_json::Value>("{")?;
            Ok(())
        }
        fn boxed() -> Result<()> {
            Err(Box::<dyn std::error::Error + Send + Sync>::from("custom"))?
        }
        assert!(matches!(io(), Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
        assert!(matches!(json(), Err(Error::Json(_))));
        assert_eq!(boxed().unwrap_err().to_string(), "custom");
    }
}
