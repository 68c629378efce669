//! The life of a run after admission: drive the handler against cancel and timeout, catch
//! panics, then reach exactly one terminal state and record it once.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::admission::Waiting;

use crate::run::Run;
use crate::{CancelReason, Error, Result, RunOutcome, RunStatus};

/// When a run's timeout fires, and the timeout itself for the error message.
#[derive(Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) after: Duration,
}

impl Deadline {
    /// `after` from `start`; `None` when that is too far away to represent, which is no
    /// timeout.
    pub(crate) fn from(start: Instant, after: Option<Duration>) -> Option<Self> {
        let after = after?;
        Some(Self {
            at: start.checked_add(after)?,
            after,
        })
    }
}

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
    finished: bool,
}

impl RunGuard {
    pub(crate) fn new(run: Arc<Run>) -> Self {
        Self {
            run,
            finished: false,
        }
    }

    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let run = &*self.run;
        let definition = &*run.definition;
        run.mark_finished();
        definition.live.remove(run.key);

        let worker = run.worker_name();
        let (status, result) = match outcome {
            Outcome::Completed => (RunStatus::Completed, Ok(())),
            Outcome::Failed(err) => (RunStatus::Failed, Err(err)),
            Outcome::TimedOut(after) => (
                RunStatus::TimedOut,
                Err(Error::TimedOut {
                    worker: worker.to_owned(),
                    after,
                }),
            ),
            Outcome::Cancelled(reason) => (
                RunStatus::Cancelled,
                Err(Error::Cancelled {
                    worker: worker.to_owned(),
                    reason,
                }),
            ),
            Outcome::Panicked(message) => (
                RunStatus::Panicked,
                Err(Error::Panicked {
                    worker: worker.to_owned(),
                    message,
                }),
            ),
        };
        let elapsed = run.started.elapsed();
        let error = result.as_ref().err().map(ToString::to_string);
        log_ending(run, status, elapsed, error.as_deref());
        let outcome = RunOutcome {
            status,
            error: error.clone(),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        };
        // Unlisted, counted, published, settled, in that order: a caller that awaited the
        // result never finds the run in `running()` and reads statistics that include it;
        // `shutdown` returns only after the outcome is out.
        definition.counters.record(status, elapsed, error);
        run.close(result, outcome);
        // Its slot goes to the next runs that fit, before it stops counting as in
        // flight, so `shutdown` never sees a gap between the two.
        if run.limited && !run.is_queued() {
            for waiting in definition.live.admission.leave(definition) {
                start_waiting(waiting);
            }
        }
        definition.counters.settle();
        definition.live.settled();
    }

    /// Finishes a run refused before it was listed or started (the queue was full):
    /// nothing to count.
    pub(crate) fn discard(mut self) {
        self.finished = true;
    }
}

/// Starts a run that waited in the admission queue; its timeout counts from now.
pub(crate) fn start_waiting(waiting: Waiting) {
    let Waiting { mut guard, timeout } = waiting;
    if tokio::runtime::Handle::try_current().is_err() {
        // Its runtime is gone (a run finished while the runtime was dropping it).
        guard.finish(Outcome::Cancelled(CancelReason::Dropped));
        return;
    }
    let deadline = Deadline::from(Instant::now(), timeout);
    let definition = Arc::clone(&guard.run.definition);
    (definition.spawn)(guard, deadline);
}

/// Stops a run: at its next `.await` if it executes, at once if it waits in the queue.
/// `false` if it has already finished.
pub(crate) fn cancel(run: &Run, reason: CancelReason) -> bool {
    if !run.abort(reason) {
        return false;
    }
    if run.is_queued() {
        if let Some(waiting) = run.definition.live.admission.remove(run.key) {
            let Waiting { mut guard, .. } = waiting;
            guard.finish(Outcome::Cancelled(reason));
        }
    }
    true
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled(CancelReason::Dropped));
    }
}

pin_project! {
    /// The run's task: the handler's future raced against the abort signal and the
    /// timeout. Written out as a state machine rather than an `async fn` so the handler's
    /// future is stored once, inline, and dropped before the outcome is published.
    #[project = DriverProj]
    #[project_replace = DriverDone]
    pub(crate) enum Driver<Fut> {
        Running {
            #[pin]
            handler: Fut,
            // Boxed: a run without a timeout does not pay for a timer's space.
            timer: Option<(Pin<Box<Sleep>>, Duration)>,
            guard: RunGuard,
        },
        Finished,
    }
}

impl<Fut> Driver<Fut>
where
    Fut: Future<Output = Result<()>>,
{
    pub(crate) fn new(guard: RunGuard, handler: Fut, deadline: Option<Deadline>) -> Self {
        let timer = deadline.map(|d| (Box::pin(tokio::time::sleep_until(d.at)), d.after));
        Self::Running {
            handler,
            timer,
            guard,
        }
    }
}

impl<Fut> Future for Driver<Fut>
where
    Fut: Future<Output = Result<()>>,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let DriverProj::Running {
            handler,
            timer,
            guard,
        } = self.as_mut().project()
        else {
            return Poll::Ready(());
        };
        let run = &*guard.run;
        run.task.register(cx.waker());
        let outcome = if let Some(reason) = run.abort_reason() {
            Outcome::Cancelled(reason)
        } else if let Poll::Ready(result) = poll_caught(handler, cx) {
            match result {
                Ok(Ok(())) => Outcome::Completed,
                Ok(Err(err)) => Outcome::Failed(err),
                Err(panic) => Outcome::Panicked(panic_message(&*panic)),
            }
        } else if let Some((sleep, after)) = timer {
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Outcome::TimedOut(*after),
                Poll::Pending => return Poll::Pending,
            }
        } else {
            return Poll::Pending;
        };
        // Drops the handler's future in place, so whatever it held is released before
        // the caller learns the outcome.
        if let DriverDone::Running { mut guard, .. } = self.project_replace(Self::Finished) {
            guard.finish(outcome);
        }
        Poll::Ready(())
    }
}

fn poll_caught<Fut: Future>(
    future: Pin<&mut Fut>,
    cx: &mut Context<'_>,
) -> Poll<std::thread::Result<Fut::Output>> {
    match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Err(panic) => Poll::Ready(Err(panic)),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload is not a string".to_owned()
    }
}

fn log_ending(run: &Run, status: RunStatus, elapsed: Duration, error: Option<&str>) {
    let (level, what) = match status {
        RunStatus::Completed => (log::Level::Debug, "completed"),
        RunStatus::Failed => (log::Level::Warn, "failed"),
        RunStatus::TimedOut => (log::Level::Warn, "timed out"),
        RunStatus::Cancelled => (log::Level::Warn, "cancelled"),
        RunStatus::Panicked => (log::Level::Error, "panicked"),
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
