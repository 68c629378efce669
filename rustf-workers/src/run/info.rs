//! A live run as listings and the HTTP endpoints show it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::Run;
use crate::{Progress, RunState};

/// A snapshot of one live run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run's id.
    pub id: String,
    /// The worker's name.
    pub worker: String,
    /// When it was called, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// How long it has been live, in milliseconds.
    pub elapsed_ms: u64,
    /// Where it is: `queued`, `running` or `backing_off` (between attempts).
    pub state: RunState,
    /// The attempt executing or last executed, from 1.
    pub attempt: u32,
    /// Whether it has been asked to stop (by cancel or shutdown) and is stopping.
    pub stopping: bool,
    /// The last progress it reported with
    /// [`WorkerContext::progress`](crate::WorkerContext::progress).
    pub progress: Option<Progress>,
    /// The last message it emitted, when the registry keeps them
    /// ([`WorkerRegistry::keep_last_messages`](crate::WorkerRegistry::keep_last_messages)).
    pub last_message: Option<Value>,
}

impl RunInfo {
    pub(crate) fn of(run: &Run) -> Self {
        let elapsed = run.started.elapsed();
        // Derived from the monotonic start, so admission pays for one clock read only.
        let started_at = SystemTime::now()
            .checked_sub(elapsed)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO);
        Self {
            id: run.id().to_owned(),
            worker: run.worker_name().to_owned(),
            started_at_ms: millis(started_at),
            elapsed_ms: millis(elapsed),
            state: run.state.get(),
            attempt: run.attempt(),
            stopping: run.is_stop_requested(),
            progress: run.last_progress(),
            last_message: run.last_message(),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
