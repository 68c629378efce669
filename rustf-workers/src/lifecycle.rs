//! The life of a run after admission: drive the handler against cancel and timeout, catch
//! panics, then reach exactly one terminal state and record it once.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;

use crate::registry::Shared;
use crate::run::Run;
use crate::stats::Ending;
use crate::{CancelReason, Error, Result};

/// How a run ended.
pub(crate) enum Outcome {
    Completed,
    Failed(Error),
    TimedOut(Duration),
    Cancelled(CancelReason),
    Panicked(String),
}

/// Owns the obligation to finish a run. Dropping it unfinished (the task was dropped
/// because its runtime shut down, or never ran) finishes the run as cancelled, so every
/// admitted run reaches a terminal state and is counted once.
pub(crate) struct RunGuard {
    pub(crate) run: Arc<Run>,
    shared: Arc<Shared>,
    finished: bool,
}

impl RunGuard {
    pub(crate) fn new(run: Arc<Run>, shared: Arc<Shared>) -> Self {
        Self {
            run,
            shared,
            finished: false,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let run = &*self.run;
        run.mark_finished();
        self.shared.live.remove(run.key);

        let worker = run.worker_name();
        let (ending, result) = match outcome {
            Outcome::Completed => (Ending::Completed, Ok(())),
            Outcome::Failed(err) => (Ending::Failed, Err(err)),
            Outcome::TimedOut(after) => (
                Ending::TimedOut,
                Err(Error::TimedOut {
                    worker: worker.to_owned(),
                    after,
                }),
            ),
            Outcome::Cancelled(reason) => (
                Ending::Cancelled,
                Err(Error::Cancelled {
                    worker: worker.to_owned(),
                    reason,
                }),
            ),
            Outcome::Panicked(message) => (
                Ending::Panicked,
                Err(Error::Panicked {
                    worker: worker.to_owned(),
                    message,
                }),
            ),
        };
        let elapsed = run.started.elapsed();
        let error = result.as_ref().err().map(ToString::to_string);
        log_ending(run, ending, elapsed, error.as_deref());
        // Statistics first, then the outcome: a caller that awaited the result reads
        // statistics that already include this run, and never finds it in `running()`.
        run.definition.counters.finished(ending, elapsed, error);
        run.close(result);
        self.shared.run_ended();
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled(CancelReason::Dropped));
    }
}

/// The run's task: the handler's future raced against the abort signal and the timeout.
pub(crate) async fn drive<Fut>(mut guard: RunGuard, started: std::thread::Result<Fut>)
where
    Fut: Future<Output = Result<()>>,
{
    let outcome = match started {
        Err(panic) => Outcome::Panicked(panic_message(&*panic)),
        Ok(future) => {
            let run = &*guard.run;
            let mut handler = pin!(AssertUnwindSafe(future).catch_unwind());
            // A timeout too far away to represent is no timeout.
            let deadline = run
                .timeout
                .and_then(|after| Some((run.started.checked_add(after)?, after)));
            let mut timer = pin!(async move {
                match deadline {
                    Some((at, after)) => {
                        tokio::time::sleep_until(at).await;
                        after
                    }
                    None => std::future::pending().await,
                }
            });
            poll_fn(|cx| {
                run.task.register(cx.waker());
                if let Some(reason) = run.abort_reason() {
                    return Poll::Ready(Outcome::Cancelled(reason));
                }
                if let Poll::Ready(result) = handler.as_mut().poll(cx) {
                    return Poll::Ready(match result {
                        Ok(Ok(())) => Outcome::Completed,
                        Ok(Err(err)) => Outcome::Failed(err),
                        Err(panic) => Outcome::Panicked(panic_message(&*panic)),
                    });
                }
                if let Poll::Ready(after) = timer.as_mut().poll(cx) {
                    return Poll::Ready(Outcome::TimedOut(after));
                }
                Poll::Pending
            })
            .await
            // The handler's future is dropped here, before the outcome is published, so
            // whatever it held is released by the time the caller resumes.
        }
    };
    guard.finish(outcome);
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload is not a string".to_owned()
    }
}

fn log_ending(run: &Run, ending: Ending, elapsed: Duration, error: Option<&str>) {
    let (level, what) = match ending {
        Ending::Completed => (log::Level::Debug, "completed"),
        Ending::Failed => (log::Level::Warn, "failed"),
        Ending::TimedOut => (log::Level::Warn, "timed out"),
        Ending::Cancelled => (log::Level::Warn, "cancelled"),
        Ending::Panicked => (log::Level::Error, "panicked"),
    };
    log::log!(
        target: "rustf_workers::run",
        level,
        "[Worker:{} run:{}] {what} after {}ms{}{}",
        run.worker_name(),
        run.id(),
        elapsed.as_millis(),
        if error.is_some() { ": " } else { "" },
        error.unwrap_or(""),
    );
}
