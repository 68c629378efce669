//! How a run ended, as callers, watchers and the HTTP endpoints see it.

use serde::{Deserialize, Serialize};

/// The terminal state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// The handler returned `Ok(())`.
    Completed,
    /// The handler returned an error.
    Failed,
    /// The timeout elapsed.
    TimedOut,
    /// `cancel()` or shutdown stopped it.
    Cancelled,
    /// The handler panicked.
    Panicked,
}

impl RunStatus {
    /// The name used in JSON and metrics: `completed`, `failed`, `timed_out`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Panicked => "panicked",
        }
    }
}

/// A finished run's outcome, delivered to watchers ([`RunEvent::Finished`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// The error's message, unless it completed.
    pub error: Option<String>,
    /// From `call` to the terminal state, in milliseconds.
    pub duration_ms: u64,
}

/// What a [`Subscription`](crate::Subscription) yields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEvent {
    /// A message the worker emitted.
    Message(serde_json::Value),
    /// This watcher fell behind and missed this many messages; the worker did not wait.
    Lagged(u64),
    /// The run ended; the last event.
    Finished(RunOutcome),
}
