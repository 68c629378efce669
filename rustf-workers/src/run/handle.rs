//! The caller's side of a run.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;

use serde_json::Value;

use crate::run::Run;
use crate::{CancelReason, Error, Result, Subscription};

/// The caller's handle on one run, returned by [`WORKER::call`](crate::WORKER::call):
/// read its messages, cancel it, await its result.
///
/// Dropping the handle does not stop the run (like dropping a `JoinHandle`); its unread
/// and later messages are discarded.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// # let workers = rustf_workers::WorkerRegistry::new();
/// workers.register("count", |ctx| async move {
///     for i in 1..=3 {
///         ctx.emit(json!({ "progress": i }))?;
///     }
///     Ok(())
/// }).await?;
///
/// let mut handle = workers.call("count", None, None).await?;
/// let mut seen = Vec::new();
/// while let Some(message) = handle.recv().await {
///     seen.push(message["progress"].as_u64().unwrap());
/// }
/// assert_eq!(seen, [1, 2, 3]);
/// handle.await_result().await?;
/// # Ok(())
/// # }
/// ```
pub struct WorkerHandle {
    run: Arc<Run>,
    /// Messages taken from the run's buffer and not yet returned by `recv`.
    // Boxed, and made by the first message read: a handle is kept by every caller that
    // awaits a run (100k of them in the benchmark's concurrent row), and most never read
    // a message. 32 bytes in all instead of 80.
    #[allow(clippy::box_collection)]
    batch: Option<Box<VecDeque<Value>>>,
    /// `await_result` already detached the reader; dropping has nothing left to do.
    detached: bool,
    /// A handle that attached to a run another call started (same unique key) reads
    /// through a subscription, leaving the first handle's stream alone.
    attached: Option<Box<Subscription>>,
}

impl WorkerHandle {
    pub(crate) fn new(run: Arc<Run>) -> Self {
        Self {
            run,
            batch: None,
            detached: false,
            attached: None,
        }
    }

    /// A second handle on a run started by another call with the same unique key.
    pub(crate) fn attached(run: Arc<Run>) -> Self {
        let (history, watcher) = run.attach();
        Self {
            run,
            batch: Some(Box::new(history)),
            detached: true,
            attached: Some(Box::new(watcher)),
        }
    }

    /// The run's id, for [`WORKER::cancel`](crate::WORKER::cancel) and the listings.
    pub fn id(&self) -> &str {
        self.run.id()
    }

    /// The worker's name.
    pub fn worker_name(&self) -> &str {
        self.run.worker_name()
    }

    /// A watcher of this run's messages and outcome, alongside this handle's own stream:
    /// see [`Subscription`]. A subscription made after the run ended yields only its
    /// outcome.
    pub fn subscribe(&self) -> Subscription {
        self.run.subscribe()
    }

    /// Whether the run has reached its terminal state.
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }

    /// The next message the worker emitted, in order; `None` once the worker has ended
    /// and every message was read.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a message is taken only when the future completes, so using `recv`
    /// in `tokio::select!` loses nothing.
    pub async fn recv(&mut self) -> Option<Value> {
        if let Some(watcher) = &mut self.attached {
            // First what was emitted before this handle attached.
            if let Some(message) = self.batch.as_mut().and_then(|batch| batch.pop_front()) {
                return Some(message);
            }
            loop {
                match watcher.recv().await? {
                    crate::RunEvent::Message(message) => return Some(message),
                    crate::RunEvent::Finished(_) => return None,
                    _ => {}
                }
            }
        }
        let batch = self.batch.get_or_insert_with(Box::default);
        poll_fn(|cx| self.run.poll_recv(cx, batch)).await
    }

    /// Cancels the run: its handler is dropped at its next `.await`, and
    /// [`await_result`](Self::await_result) returns [`Error::Cancelled`]. A handle on a
    /// durable job that does not run in this process cancels it in the store (a waiting
    /// job at once, a running one at its owner's next heartbeat), and its `await_result`
    /// then returns [`Error::JobFailed`] with the state `cancelled`.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] when the run (or stored job) has already finished;
    /// [`Error::Store`] when the store cannot be written.
    pub async fn cancel(&self) -> Result<()> {
        // A stored job that does not run here: cancelled in the store.
        if let Some(cancel) = self
            .run
            .sink()
            .and_then(|sink| sink.cancel_elsewhere(&self.run))
        {
            return cancel.await;
        }
        if crate::run::driver::cancel(&self.run, CancelReason::Requested) {
            Ok(())
        } else {
            Err(Error::RunNotFound {
                run_id: self.id().to_owned(),
            })
        }
    }

    /// Waits for the run to finish and returns its result. Messages not yet read are
    /// discarded, and so are those emitted while waiting.
    ///
    /// # Errors
    ///
    /// The handler's own error, or [`Error::TimedOut`], [`Error::Cancelled`],
    /// [`Error::Panicked`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes is like dropping the handle: the run goes
    /// on, and its result is discarded.
    pub async fn await_result(mut self) -> Result<()> {
        if let Some(mut watcher) = self.attached.take() {
            while watcher.recv().await.is_some() {}
            return self.run.shared_result();
        }
        self.detached = true;
        self.run.outcome().await
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if !self.detached {
            // An outcome already stored is dropped with the run.
            drop(self.run.detach());
        }
    }
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("worker", &self.worker_name())
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}
