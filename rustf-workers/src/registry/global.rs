//! `WORKER`: the global registry, usable from anywhere with no set-up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::{
    AppConfig, CallOptions, Result, WorkerContext, WorkerHandle, WorkerOptions, WorkerRegistry,
    WorkerStats,
};

/// The global worker registry: `WORKER::run("send-email", payload).await?` from any
/// controller, with no set-up call.
///
/// Each function forwards to the same method of [`WorkerRegistry::global`]; see
/// [`WorkerRegistry`] for the details and errors of each.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// WORKER::register("send-email", |ctx| async move {
///     let to = ctx.payload().and_then(|p| p["to"].as_str())
///         .ok_or_else(|| Error::validation("'to' address required"))?;
///     ctx.emit(json!({ "status": "sent", "to": to }))?;
///     Ok(())
/// }).await?;
///
/// WORKER::run("send-email", Some(json!({ "to": "a@b.c" }))).await?;
/// assert_eq!(WORKER::stats("send-email").await.unwrap().runs, 1);
/// # Ok(())
/// # }
/// ```
// The all-caps name is the public API contract (the RustF worker system).
#[derive(Debug, Clone, Copy)]
pub struct WORKER;

impl WORKER {
    /// The global registry itself.
    pub fn registry() -> &'static WorkerRegistry {
        WorkerRegistry::global()
    }

    /// Registers a worker; see [`WorkerRegistry::register`].
    #[track_caller]
    pub fn register<F, Fut>(
        name: impl Into<String>,
        handler: F,
    ) -> impl Future<Output = Result<()>> + Send + 'static
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Self::registry().register(name, handler)
    }

    /// Registers a worker with options; see [`WorkerRegistry::register_with`].
    #[track_caller]
    pub fn register_with<F, Fut>(
        name: impl Into<String>,
        options: WorkerOptions,
        handler: F,
    ) -> impl Future<Output = Result<()>> + Send + 'static
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Self::registry().register_with(name, options, handler)
    }

    /// Starts a run and returns its handle; see [`WorkerRegistry::call`].
    pub async fn call(
        worker_name: &str,
        timeout: Option<Duration>,
        payload: Option<Value>,
    ) -> Result<WorkerHandle> {
        Self::registry().call(worker_name, timeout, payload).await
    }

    /// Starts a run with [`CallOptions`]; see [`WorkerRegistry::call_with`].
    pub async fn call_with(
        worker_name: &str,
        payload: Option<Value>,
        options: CallOptions,
    ) -> Result<WorkerHandle> {
        Self::registry()
            .call_with(worker_name, payload, options)
            .await
    }

    /// Runs a worker and waits for its result; see [`WorkerRegistry::run`].
    pub async fn run(worker_name: &str, payload: Option<Value>) -> Result<()> {
        Self::registry().run(worker_name, payload).await
    }

    /// Cancels a live run by id; see [`WorkerRegistry::cancel`].
    pub async fn cancel(run_id: &str) -> Result<()> {
        Self::registry().cancel(run_id).await
    }

    /// Registered worker names, sorted; see [`WorkerRegistry::definitions`].
    pub async fn definitions() -> Result<Vec<String>> {
        Self::registry().definitions().await
    }

    /// Ids of live runs, oldest first; see [`WorkerRegistry::running`].
    pub async fn running() -> Result<Vec<String>> {
        Self::registry().running().await
    }

    /// Ids of one worker's live runs; see [`WorkerRegistry::running_for`].
    pub async fn running_for(worker_name: &str) -> Result<Vec<String>> {
        Self::registry().running_for(worker_name).await
    }

    /// One worker's statistics; see [`WorkerRegistry::stats`].
    pub async fn stats(worker_name: &str) -> Option<WorkerStats> {
        Self::registry().stats(worker_name).await
    }

    /// Stops every worker gracefully; see [`WorkerRegistry::shutdown`].
    pub async fn shutdown() -> Result<()> {
        Self::registry().shutdown().await
    }

    /// Replaces the settings workers read; see [`WorkerRegistry::set_config`].
    pub fn set_config(config: AppConfig) {
        Self::registry().set_config(config);
    }

    /// The settings new runs will get; see [`WorkerRegistry::config`].
    pub fn config() -> Arc<AppConfig> {
        Self::registry().config()
    }

    /// Caps runs executing at once over every worker; see
    /// [`WorkerRegistry::set_max_running`].
    pub fn set_max_running(max: usize) {
        Self::registry().set_max_running(max);
    }

    /// Sets the shutdown grace period; see [`WorkerRegistry::set_shutdown_grace`].
    pub fn set_shutdown_grace(grace: Duration) {
        Self::registry().set_shutdown_grace(grace);
    }
}
