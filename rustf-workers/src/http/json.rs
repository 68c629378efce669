//! The JSON shapes of the HTTP endpoints: part of the public API.

use serde::{Deserialize, Serialize};

use crate::WorkerStats;

/// One definition in `GET /`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DefinitionSummary {
    /// The worker's name.
    pub name: String,
    /// Its statistics.
    pub stats: WorkerStats,
    /// How many of its runs are live.
    pub live: u64,
    /// How many of its live runs wait in this process's admission queue (`"state":
    /// "queued"`); stored jobs waiting in the durable queue are in `GET /jobs/counts`.
    #[serde(default)]
    pub queued: u64,
    /// The median duration of its finished attempts, in milliseconds, estimated from the
    /// duration histogram of `GET /metrics`; `None` before any has finished.
    #[serde(default)]
    pub p50_ms: Option<u64>,
    /// The 95th percentile of the same, estimated the same way.
    #[serde(default)]
    pub p95_ms: Option<u64>,
}

/// `GET /{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DefinitionDetail {
    /// The worker's name.
    pub name: String,
    /// Its statistics.
    pub stats: WorkerStats,
    /// The options it was registered with.
    pub options: DefinitionOptions,
    /// Ids of its live runs, oldest first.
    pub live_runs: Vec<String>,
}

/// A definition's options, in `GET /{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DefinitionOptions {
    /// The default timeout, in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// The answer to `POST /{name}/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StartedRun {
    /// The new run's id, for `GET /runs/{id}` and its events.
    pub id: String,
    /// The worker's name.
    pub worker: String,
}

/// Every error response: `{"error": {"kind": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The detail of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// A stable machine-readable kind: `not_registered`, `run_not_found`,
    /// `invalid_json`, `invalid_path`, `invalid_body`, `body_too_large`, `validation`,
    /// `already_registered`, `shutting_down`, `disabled`, `csrf`, `not_found`,
    /// `method_not_allowed`, `job_not_found`, `no_queue`, `invalid_query`, `store`,
    /// `internal`.
    pub kind: String,
    /// A sentence for people, naming the thing that was wrong.
    pub message: String,
}
