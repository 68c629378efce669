//! Watching a run's messages from anywhere, next to the handle's own stream.

use std::fmt;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use crate::run::Run;
use crate::RunEvent;

/// A watcher of one run's messages: every message emitted after it subscribed, then the
/// run's outcome.
///
/// Several watchers can follow one run, and the caller holding the
/// [`WorkerHandle`](crate::WorkerHandle) still receives every message. A watcher that
/// reads too slowly does not slow the worker: it misses the oldest messages and gets a
/// [`RunEvent::Lagged`] saying how many. Each watcher buffers at most the registry's
/// message capacity.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
/// use rustf_workers::{RunEvent, RunStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// # let workers = rustf_workers::WorkerRegistry::new();
/// workers.register("count", |ctx| async move {
///     tokio::task::yield_now().await;
///     ctx.emit(json!(1))?;
///     Ok(())
/// }).await?;
/// let handle = workers.call("count", None, None).await?;
/// let mut watcher = workers.subscribe(handle.id())?;
/// assert_eq!(watcher.recv().await, Some(RunEvent::Message(json!(1))));
/// match watcher.recv().await {
///     Some(RunEvent::Finished(outcome)) => assert_eq!(outcome.status, RunStatus::Completed),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(watcher.recv().await, None);
/// # Ok(())
/// # }
/// ```
pub struct Subscription {
    run: Arc<Run>,
    receiver: Option<broadcast::Receiver<serde_json::Value>>,
    finished: bool,
}

impl Subscription {
    pub(crate) fn new(
        run: Arc<Run>,
        receiver: Option<broadcast::Receiver<serde_json::Value>>,
    ) -> Self {
        Self {
            run,
            receiver,
            finished: false,
        }
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        self.run.id()
    }

    /// The worker's name.
    pub fn worker_name(&self) -> &str {
        self.run.worker_name()
    }

    /// The next event; `None` after [`RunEvent::Finished`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<RunEvent> {
        if self.finished {
            return None;
        }
        if let Some(receiver) = &mut self.receiver {
            match receiver.recv().await {
                Ok(message) => return Some(RunEvent::Message(message)),
                Err(RecvError::Lagged(missed)) => return Some(RunEvent::Lagged(missed)),
                Err(RecvError::Closed) => {}
            }
        }
        self.finished = true;
        // Stored before the channel closes, so it is there now.
        self.run.ended().map(RunEvent::Finished)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.receiver.is_some() {
            self.run.watcher_left();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("worker", &self.worker_name())
            .field("run_id", &self.run_id())
            .field("finished", &self.finished)
            .finish()
    }
}
