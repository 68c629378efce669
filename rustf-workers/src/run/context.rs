//! What a worker sees of its run.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::run::Run;
use crate::{AppConfig, Progress, Result};

/// The context a worker's handler receives: identity, payload, settings, logging,
/// per-run state, messages to the caller, and the stop signal.
///
/// Cloning is cheap; every clone belongs to the same run.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// # let workers = rustf_workers::WorkerRegistry::new();
/// workers.register("send-email", |ctx: WorkerContext| async move {
///     let to = ctx
///         .payload()
///         .and_then(|p| p["to"].as_str())
///         .ok_or_else(|| Error::validation("'to' address required"))?;
///     ctx.info(&format!("sending to {to}"));
///     ctx.emit(json!({ "status": "sent", "to": to }))?;
///     Ok(())
/// }).await?;
/// # let err = workers.run("send-email", None).await.unwrap_err();
/// # assert!(err.is_validation());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkerContext {
    run: Arc<Run>,
}

impl WorkerContext {
    pub(crate) fn new(run: Arc<Run>) -> Self {
        Self { run }
    }

    /// The worker's registered name.
    pub fn worker_name(&self) -> &str {
        self.run.worker_name()
    }

    /// This run's id, as returned by [`WorkerHandle::id`](crate::WorkerHandle::id).
    pub fn run_id(&self) -> &str {
        self.run.id()
    }

    /// The application settings in force when this run started.
    pub fn config(&self) -> &Arc<AppConfig> {
        &self.run.config
    }

    /// Which attempt this is, from 1; above 1 when the run is retried
    /// ([`WorkerOptions::retries`](crate::WorkerOptions::retries)).
    pub fn attempt(&self) -> u32 {
        self.run.attempt()
    }

    /// The payload the caller passed, if any.
    pub fn payload(&self) -> Option<&Value> {
        self.run.payload.as_ref()
    }

    /// Whether the application runs in development: `RUSTF_ENV` (else `NODE_ENV`) is
    /// `development` or `dev`, or neither variable is set.
    pub fn is_development(&self) -> bool {
        matches!(environment().as_deref(), None | Some("development" | "dev"))
    }

    /// Whether the application runs in production: `RUSTF_ENV` (else `NODE_ENV`) is
    /// `production` or `prod`.
    pub fn is_production(&self) -> bool {
        matches!(environment().as_deref(), Some("production" | "prod"))
    }

    /// Writes a log line through the `log` crate, tagged with the worker name and run id:
    /// `[Worker:send-email run:550e8400-...] message`. The target is
    /// `rustf_workers::worker`.
    pub fn log(&self, level: log::Level, message: &str) {
        log::log!(
            target: "rustf_workers::worker",
            level,
            "[Worker:{} run:{}] {message}",
            self.worker_name(),
            self.run_id(),
        );
    }

    /// Logs at info level.
    pub fn info(&self, message: &str) {
        self.log(log::Level::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(&self, message: &str) {
        self.log(log::Level::Warn, message);
    }

    /// Logs at error level.
    pub fn error(&self, message: &str) {
        self.log(log::Level::Error, message);
    }

    /// Logs at debug level, only in development (see
    /// [`is_development`](Self::is_development)); use [`log`](Self::log) to write debug
    /// lines everywhere.
    pub fn debug(&self, message: &str) {
        if self.is_development() {
            self.log(log::Level::Debug, message);
        }
    }

    /// Sets a per-run state value. Other runs of the same worker have their own state.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is part of the seed API.
    pub async fn set_state(&self, key: impl Into<String>, value: Value) -> Result<()> {
        self.run
            .user_state()
            .get_or_insert_with(Default::default)
            .insert(key.into(), value);
        Ok(())
    }

    /// A per-run state value, if set.
    pub async fn get_state(&self, key: &str) -> Option<Value> {
        self.run.user_state().as_ref()?.get(key).cloned()
    }

    /// Removes every per-run state value.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is part of the seed API.
    pub async fn clear_state(&self) -> Result<()> {
        let cleared = self.run.user_state().take();
        drop(cleared);
        Ok(())
    }

    /// Sends a message to the caller, who reads it with
    /// [`WorkerHandle::recv`](crate::WorkerHandle::recv). Never waits.
    ///
    /// Messages are queued for the handle. Once the registry's message capacity (1024 by
    /// default) is unread, this run's handler is held at its next `.await` until the
    /// reader takes them (unless shutdown asked it to stop), so a worker that awaits
    /// between emits is paced by its reader. A task the handler spawned with a clone of
    /// the context is not held: it queues up to the budget. One that never
    /// awaits keeps queueing, up to the registry's byte budget
    /// ([`set_message_budget`](crate::WorkerRegistry::set_message_budget), 64 MiB by
    /// default). When nobody reads (the handle was dropped, or the caller is in
    /// `await_result`), messages are discarded and `emit` succeeds, so memory does not
    /// grow.
    ///
    /// # Errors
    ///
    /// - [`Error::MessageBufferFull`](crate::Error::MessageBufferFull) when the unread
    ///   messages are at the budget; the message is not queued. Use
    ///   [`emit_wait`](Self::emit_wait) to wait for room instead.
    /// - [`Error::RunFinished`](crate::Error::RunFinished) when called through a clone of
    ///   the context after the run ended.
    pub fn emit(&self, message: Value) -> Result<()> {
        self.run.emit(message)
    }

    /// Sends a message to the caller, waiting while the registry's message capacity is
    /// unread (or the byte budget is spent). Like tokio's
    /// channels it takes part in tokio's cooperative budget: a worker emitting in a tight
    /// loop yields now and then, so other tasks (its reader among them) get to run.
    ///
    /// # Errors
    ///
    /// [`Error::RunFinished`](crate::Error::RunFinished) when called after the run ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, the message was not
    /// queued.
    pub async fn emit_wait(&self, message: Value) -> Result<()> {
        self.run.emit_wait(message).await
    }

    /// Reports how far the run has got: kept on the run, where listings and the HTTP
    /// endpoints show it, and sent to its readers as the message
    /// `{"progress": {"percent": 40, "message": "rendering"}}`. A reader that is behind
    /// misses an update rather than slowing the worker; the latest is always kept.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for a percent over 100;
    /// [`Error::RunFinished`](crate::Error::RunFinished) after the run ended.
    pub fn progress(&self, percent: u8, message: impl Into<String>) -> Result<()> {
        if percent > 100 {
            return Err(crate::Error::validation(format!(
                "progress must be at most 100 percent, not {percent}"
            )));
        }
        self.run.progress(Progress {
            percent,
            message: message.into(),
        })
    }

    /// Saves `value` as this run's checkpoint, replacing the last one. A retried run or a
    /// restarted daemon keeps its run id and reads it back with
    /// [`get_checkpoint`](Self::get_checkpoint). Stored by the registry's
    /// [`CheckpointStore`](crate::CheckpointStore) (in memory by default) and removed when
    /// the run ends; a stored job's checkpoint is kept with the job instead, written only
    /// while this process holds the job's lease, and read by its next attempt, in this
    /// process or another, after a restart too.
    ///
    /// # Errors
    ///
    /// The store's error; for a stored job, [`Error::LeaseLost`](crate::Error::LeaseLost)
    /// once its lease was taken over (the run is being stopped).
    pub async fn checkpoint(&self, value: Value) -> Result<()> {
        match self.run.sink().filter(|sink| sink.keeps_checkpoints()) {
            Some(sink) => sink.save_checkpoint(&self.run, value).await?,
            None => {
                let store = self.run.definition.live.checkpoints.load_full();
                store.save(self.worker_name(), self.run_id(), value).await?;
            }
        }
        self.run.mark_checkpointed();
        Ok(())
    }

    /// This run's last checkpoint, if it saved one in an earlier attempt (or this one);
    /// for a stored job, the last one any attempt saved, in any process.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn get_checkpoint(&self) -> Result<Option<Value>> {
        if let Some(sink) = self.run.sink().filter(|sink| sink.keeps_checkpoints()) {
            return Ok(sink.last_checkpoint());
        }
        let store = self.run.definition.live.checkpoints.load_full();
        store.load(self.worker_name(), self.run_id()).await
    }

    /// Sleeps for `duration` (tokio's timer, so paused-clock tests control it).
    pub async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Whether this run has been asked to stop: by [`cancel`](crate::WORKER::cancel)
    /// (the handler is then dropped at its next `.await`) or by
    /// [`shutdown`](crate::WORKER::shutdown) (the handler may finish its work within the
    /// grace period).
    pub fn is_cancelled(&self) -> bool {
        self.run.is_stop_requested()
    }

    /// Resolves when this run is asked to stop. Use it to finish cleanly during a
    /// shutdown's grace period:
    ///
    /// ```
    /// # use rustf_workers::prelude::*;
    /// # async fn next_item(_: &WorkerContext) {}
    /// async fn drain(ctx: WorkerContext) -> Result<()> {
    ///     loop {
    ///         tokio::select! {
    ///             _ = ctx.cancelled() => return Ok(()), // save progress, then stop
    ///             _ = next_item(&ctx) => {}
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn cancelled(&self) {
        self.run.stop_requested().await;
    }
}

impl fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerContext")
            .field("worker", &self.worker_name())
            .field("run_id", &self.run_id())
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

fn environment() -> Option<String> {
    std::env::var("RUSTF_ENV")
        .or_else(|_| std::env::var("NODE_ENV"))
        .ok()
        .map(|value| value.trim().to_ascii_lowercase())
}
