//! Background workers for Rust web applications.
//!
//! A worker is a plain async function registered under a name. Any part of the
//! application starts it by that name, with an optional JSON payload, and either awaits
//! its result or keeps a handle to read its messages, cancel it, or await it later.
//!
//! ```
//! use rustf_workers::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! WORKER::register("send-email", |ctx| async move {
//!     let to = ctx.payload().and_then(|p| p["to"].as_str())
//!         .ok_or_else(|| Error::validation("'to' address required"))?;
//!     ctx.emit(json!({ "status": "sent", "to": to }))?;
//!     Ok(())
//! }).await?;
//!
//! // From a controller: run and wait.
//! WORKER::run("send-email", Some(json!({ "to": "a@b.c" }))).await?;
//!
//! // Or keep a handle to stream the worker's messages.
//! let mut handle = WORKER::call("send-email", None, Some(json!({ "to": "x@y.z" }))).await?;
//! assert_eq!(handle.recv().await, Some(json!({ "status": "sent", "to": "x@y.z" })));
//! handle.await_result().await?;
//!
//! let stats = WORKER::stats("send-email").await.unwrap();
//! assert_eq!((stats.runs, stats.errors), (2, 0));
//! # Ok(())
//! # }
//! ```
//!
//! Workers can also be plain functions registered at build time, one file each under
//! `src/workers/`, compiled by [`auto_workers!`]:
//!
//! ```
//! use rustf_workers::prelude::*;
//!
//! #[worker("resize-image", timeout = "30s")]
//! async fn resize_image(ctx: WorkerContext) -> Result<()> {
//!     ctx.emit(json!({ "done": true }))?;
//!     Ok(())
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! WORKER::run("resize-image", None).await
//! # }
//! ```
//!
//! Every run reaches exactly one terminal state (completed, failed, timed out, cancelled
//! or panicked), is counted in its worker's [`WorkerStats`] (once per attempt when
//! retried), and is listed by [`WORKER::running`] exactly while it is live. A panicking
//! worker fails its own run and nothing else. [`WORKER::shutdown`] refuses new runs,
//! gives running ones a grace period, cancels the rest, and returns when none is left.
//!
//! Anyone can follow a run's messages next to its handle with a [`Subscription`], and
//! [`WorkerRegistry::live_runs`] lists what is running.
//!
//! # Features
//!
//! - `http`: `rustf_workers::http::router()`, an axum router with statistics, live runs,
//!   Server-Sent Events of a run's messages and Prometheus metrics.
//! - `dashboard`: the same router also serves a web page for operators at `ui/` (live
//!   runs and their messages, the durable queue's jobs, retry and cancel). Enables `http`.
//! - `tracing`: every run executes inside a `tracing` span carrying the worker name and
//!   run id.
//!
//! The guide lives in the repository's `docs/` folder: concepts and API, registration
//! (`#[worker]`, `auto_workers!()` and their compile errors), HTTP endpoints, the
//! dashboard, execution policies, and performance.

mod config;
mod error;
mod padded;
mod policy;
mod registry;
mod run;

pub mod prelude;
pub mod queue;

#[cfg(feature = "http")]
pub mod http;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use config::AppConfig;
pub use error::{CancelReason, Error, Result};
pub use policy::admission::{DEFAULT_MEMORY_POOL, DEFAULT_QUEUE_CAPACITY};
pub use policy::call_options::CallOptions;
pub use policy::checkpoint::{CheckpointStore, MemoryCheckpoints, StoreFuture};
pub use policy::idempotency::{IdempotencyStore, MemoryIdempotency};
pub use policy::job_options::JobOptions;
pub use policy::options::{Backoff, WorkerOptions};
pub use registry::global::WORKER;
pub use registry::installer::Installer;
pub use registry::{
    WorkerRegistry, DEFAULT_MESSAGE_BUDGET, DEFAULT_MESSAGE_CAPACITY, DEFAULT_SHUTDOWN_GRACE,
};
pub use run::context::WorkerContext;
pub use run::handle::WorkerHandle;
pub use run::history::{Attempt, RunRecord, DEFAULT_FINISHED_MAX, DEFAULT_FINISHED_RETENTION};
pub use run::info::RunInfo;
pub use run::outcome::{RunEvent, RunOutcome, RunStatus};
pub use run::progress::Progress;
pub use run::state::RunState;
pub use run::stats::WorkerStats;
pub use run::subscription::Subscription;

pub use rustf_workers_macros::{auto_workers, worker};
