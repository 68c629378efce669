//! How far a run has got, as the worker reports it.

use serde::{Deserialize, Serialize};

/// A run's progress, set by [`WorkerContext::progress`](crate::WorkerContext::progress):
/// kept on the run (listings, `RunInfo::progress`) and delivered to its readers as the
/// message `{"progress": {"percent": 40, "message": "rendering"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// From 0 to 100.
    pub percent: u8,
    /// What the worker is doing.
    pub message: String,
}
