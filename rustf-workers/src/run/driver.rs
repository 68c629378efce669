//! The life of a run after admission: drive the handler against cancel and timeout, catch
//! panics, then reach exactly one terminal state and record it once.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::policy::admission::Waiter;
use crate::run::definition::Definition;
use crate::run::history::{Ended, EndedMore};
use crate::run::Run;
use crate::{Attempt, CancelReason, Error, Result, RunState, RunStatus};

/// When a run's timeout fires, and the timeout itself for the error message.
#[derive(Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) after: Duration,
}

impl Deadline {
    /// `after` from `start`; `None` when that is too far away to represent, which is no
    /// timeout.
    pub(crate) fn from(start: Instant, after: Duration) -> Option<Self> {
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
///
/// Small on purpose: it lives in the run's task, whose size every spawn pays for.
pub(crate) struct RunGuard {
    pub(crate) run: Arc<Run>,
    finished: bool,
    /// When the current attempt started (the call, leaving the queue, or a retry), in
    /// nanoseconds after the run's start.
    attempt_offset: u64,
}

impl RunGuard {
    pub(crate) fn new(run: Arc<Run>) -> Self {
        Self {
            run,
            finished: false,
            attempt_offset: 0,
        }
    }

    /// When the current attempt started.
    fn attempt_started(&self) -> Instant {
        // Usually the first attempt, which started with the run: no clock arithmetic.
        if self.attempt_offset == 0 {
            return self.run.started;
        }
        self.run.started + Duration::from_nanos(self.attempt_offset)
    }

    /// The next attempt starts now.
    fn restart_attempt(&mut self) {
        let since_start = self.run.started.elapsed().as_nanos();
        self.attempt_offset = u64::try_from(since_start).unwrap_or(u64::MAX);
    }

    /// When the current attempt times out.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        // Most runs have no timeout: no clock arithmetic for them.
        let timeout = self.run.timeout?;
        Deadline::from(self.attempt_started(), timeout)
    }

    /// An attempt ended: retry after a backoff if the policy allows, else finish.
    pub(crate) fn end(self, outcome: Outcome) {
        match self.retry_delay(&outcome) {
            Some(delay) => self.retry(outcome, delay),
            None => {
                let mut guard = self;
                guard.finish(outcome);
            }
        }
    }

    fn retry_delay(&self, outcome: &Outcome) -> Option<Duration> {
        let run = &*self.run;
        let retryable = match outcome {
            // Bad input stays bad: retrying cannot help.
            Outcome::Failed(err) => !err.is_validation(),
            Outcome::TimedOut(_) | Outcome::Panicked(_) => true,
            Outcome::Completed | Outcome::Cancelled(_) => false,
        };
        let attempt = run.attempt();
        if !retryable || attempt >= run.max_attempts || run.is_stop_requested() {
            return None;
        }
        let backoff = run.definition.options.retry_backoff();
        let healthy = self.attempt_started().elapsed() >= backoff.cap;
        let step = run.backoff_step(healthy);
        // The jitter comes from the run's random id: different runs back off differently.
        let jitter = (run.key >> (8 * (attempt % 16))) as u8;
        Some(backoff.delay(step, jitter))
    }

    /// Records the failed attempt, waits out the backoff, and starts the next attempt,
    /// unless the run is cancelled or shutdown asks it to stop meanwhile.
    fn retry(mut self, outcome: Outcome, delay: Duration) {
        let run = Arc::clone(&self.run);
        let definition = &*run.definition;
        let (status, result) = outcome.into_result(run.worker_name());
        let elapsed = self.attempt_started().elapsed();
        let error = result.err().map(|err| err.to_string());
        log_safely(|| {
            log_ending(&run, status, elapsed, error.as_deref());
            log::info!(
                target: "rustf_workers::run",
                "[Worker:{} run:{}] retrying in {}ms (attempt {} of {})",
                run.worker_name(),
                run.id(),
                delay.as_millis(),
                run.attempt() + 1,
                run.max_attempts,
            );
        });
        run.push_retried(Attempt {
            number: run.attempt(),
            state: RunState::from(status),
            error: error.clone(),
            duration_ms: Some(millis(elapsed)),
        });
        definition.counters.record(status, elapsed, error);
        let _ = run.state.become_(RunState::BackingOff);
        let backoff = async move {
            let mut sleep = pin!(tokio::time::sleep(delay));
            let stopped = poll_fn(|cx| {
                run.task.register(cx.waker());
                if let Some(reason) = run.abort_reason() {
                    return Poll::Ready(Some(reason));
                }
                if run.is_stop_requested() {
                    return Poll::Ready(Some(CancelReason::Shutdown));
                }
                sleep.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match stopped {
                Some(reason) => self.finish(Outcome::Cancelled(reason)),
                None if run.state.become_(RunState::Running).is_ok() => {
                    run.next_attempt();
                    self.restart_attempt();
                    let deadline = self.deadline();
                    (run.definition.spawn)(self, deadline, false);
                }
                None => self.finish(Outcome::Cancelled(CancelReason::Requested)),
            }
        };
        tokio::spawn(backoff);
    }

    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let run = &*self.run;
        let definition = &*run.definition;
        run.mark_finished();

        let (status, result) = outcome.into_result(run.worker_name());
        if let Some(key) = run.unique_key() {
            let mut runs = definition
                .live
                .unique
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let entry = (Box::from(run.worker_name()), Box::from(key));
            if runs.get(&entry).is_some_and(|r| Arc::ptr_eq(r, &self.run)) {
                runs.remove(&entry);
            }
        }
        if let (Some((key, retention)), RunStatus::Completed) = (run.idempotency_key(), status) {
            // Before the outcome is published: the caller's next call must find it.
            definition
                .live
                .idempotency
                .load()
                .record(run.worker_name(), key, run.id(), retention);
        }
        let from = match run.state.become_(RunState::from(status)) {
            Ok(from) => from,
            Err(illegal) => {
                debug_assert!(false, "{illegal:?}");
                RunState::Queued
            }
        };
        let held_slot = from != RunState::Queued;
        // A stored job hears of its attempt's end first: its outcome is stored before the
        // caller learns it, and a job that will be attempted again keeps its checkpoint.
        let keep_checkpoint = run
            .sink()
            .is_some_and(|sink| sink.ended(run, status, &result));
        // Stopped while waiting to retry: no attempt was under way, so none ends here.
        let between_attempts = from == RunState::BackingOff;
        // One clock read for both durations.
        let now = Instant::now();
        let elapsed = if between_attempts {
            Duration::ZERO
        } else {
            now.saturating_duration_since(self.attempt_started())
        };
        let error = result.as_ref().err().map(ToString::to_string);
        log_safely(|| log_ending(run, status, elapsed, error.as_deref()));
        // Usually the first attempt, started with the run: one subtraction for both.
        let duration_ms = millis(if self.attempt_offset == 0 && !between_attempts {
            elapsed
        } else {
            now.saturating_duration_since(run.started)
        });
        // Unlisted (and remembered), counted, published, settled, in that order: a caller
        // that awaited the result never finds the run in `running()` and reads statistics
        // that include it; `shutdown` returns only after the outcome is out.
        let retried = run.attempt() > 1 || between_attempts;
        definition.live.end(
            run,
            Ended {
                key: run.key,
                at: now,
                worker: definition.serial,
                attempt: run.attempt(),
                status,
                duration_ms: millis(elapsed),
                run_ms: duration_ms,
                // Only failed or retried runs have more to remember; only then is the run's
                // lock taken, or anything allocated.
                more: (error.is_some() || retried).then(|| {
                    Box::new(EndedMore {
                        error: error.clone(),
                        between_attempts,
                        retried: if retried {
                            run.take_retried()
                        } else {
                            Vec::new()
                        },
                    })
                }),
            },
        );
        definition.counters.record_end(status, elapsed, error);
        run.close(result, status, duration_ms);
        // Its slot goes to the next runs that fit, before it stops counting as in
        // flight, so `shutdown` never sees a gap between the two.
        if run.limited && held_slot {
            for guard in definition.live.admission.leave(definition) {
                start_waiting(guard);
            }
        }
        if run.daemon {
            // Relaxed: the count is its own only data.
            definition.daemons.fetch_sub(1, Ordering::Relaxed);
        }
        if run.has_checkpoint() && !keep_checkpoint && tokio::runtime::Handle::try_current().is_ok()
        {
            let store = definition.live.checkpoints.load_full();
            let run = Arc::clone(&self.run);
            tokio::spawn(async move {
                if let Err(err) = store.remove(run.worker_name(), run.id()).await {
                    log::warn!(
                        target: "rustf_workers::run",
                        "[Worker:{} run:{}] checkpoint not removed: {err}",
                        run.worker_name(),
                        run.id(),
                    );
                }
            });
        }
        definition.counters.settle();
        definition.live.settled();
    }

    /// Forgets a run refused before it was listed or started (the queue was full):
    /// nothing to count.
    pub(crate) fn discard(mut self) {
        self.finished = true;
    }
}

impl Outcome {
    /// The status, and the caller's result naming `worker`.
    fn into_result(self, worker: &str) -> (RunStatus, Result<()>) {
        match self {
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
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Starts a run that waited in the admission queue; its timeout counts from now.
pub(crate) fn start_waiting(mut guard: RunGuard) {
    if tokio::runtime::Handle::try_current().is_err() {
        // Its runtime is gone (a run finished while the runtime was dropping it).
        guard.finish(Outcome::Cancelled(CancelReason::Dropped));
        return;
    }
    guard.restart_attempt();
    let deadline = guard.deadline();
    let definition = Arc::clone(&guard.run.definition);
    (definition.spawn)(guard, deadline, false);
}

/// Stops a run: at its next `.await` if it executes, at once if it waits in the queue.
/// `false` if it has already finished.
pub(crate) fn cancel(run: &Run, reason: CancelReason) -> bool {
    if !run.abort(reason) {
        return false;
    }
    if run.is_queued() {
        if let Some(guard) = run.definition.live.admission.remove(run.key) {
            guard.end(Outcome::Cancelled(reason));
        }
    }
    true
}

impl Waiter for RunGuard {
    type Worker = Definition;

    fn worker(&self) -> &Arc<Definition> {
        &self.run.definition
    }

    fn key(&self) -> u128 {
        self.run.key
    }

    fn id(&self) -> &str {
        self.run.id()
    }

    fn admitted(&self) {
        // Only fails if a cancel won the race, and then the run's task stops it.
        let _ = self.run.state.become_(RunState::Running);
    }
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
            // Boxed, and only for runs that have a timer: every spawn pays for the size
            // of the task, and most runs have none.
            timers: Option<Pin<Box<Timers>>>,
            guard: RunGuard,
        },
        Finished,
    }
}

pin_project! {
    /// A run's timeout and its idle check (for workers with an idle timeout).
    pub(crate) struct Timers {
        #[pin]
        timeout: Option<Sleep>,
        timeout_after: Duration,
        #[pin]
        idle: Option<Sleep>,
        idle_after: Duration,
    }
}

impl<Fut> Driver<Fut>
where
    Fut: Future<Output = Result<()>>,
{
    pub(crate) fn new(guard: RunGuard, handler: Fut, deadline: Option<Deadline>) -> Self {
        // A stored job's run has no reader by design: it never stops for want of one.
        let idle_after = (guard.run.sink().is_none())
            .then(|| guard.run.definition.options.idle_after())
            .flatten();
        let timers = (deadline.is_some() || idle_after.is_some()).then(|| {
            Box::pin(Timers {
                timeout: deadline.map(|d| tokio::time::sleep_until(d.at)),
                timeout_after: deadline.map_or(Duration::ZERO, |d| d.after),
                idle: idle_after.map(tokio::time::sleep),
                idle_after: idle_after.unwrap_or_default(),
            })
        });
        Self::Running {
            handler,
            timers,
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
            timers,
            guard,
        } = self.as_mut().project()
        else {
            return Poll::Ready(());
        };
        let run = &*guard.run;
        let outcome = if let Some(reason) = run.abort_reason() {
            Outcome::Cancelled(reason)
        } else if let Poll::Ready(result) = poll_unless_held(run, handler, cx) {
            match result {
                Ok(Ok(())) => Outcome::Completed,
                Ok(Err(err)) => Outcome::Failed(err),
                Err(panic) => Outcome::Panicked(panic_message(&*panic)),
            }
        } else if let Some(Poll::Ready(outcome)) =
            timers.as_mut().map(|timers| timers.as_mut().poll(run, cx))
        {
            outcome
        } else {
            return pending(run, cx);
        };
        // Drops the handler's future in place, so whatever it held is released before
        // the caller learns the outcome.
        if let DriverDone::Running { guard, .. } = self.project_replace(Self::Finished) {
            guard.end(outcome);
        }
        Poll::Ready(())
    }
}

impl Timers {
    /// `Ready` with the outcome when the timeout fires, or when the idle check finds
    /// nobody listened for the whole idle timeout.
    fn poll(self: Pin<&mut Self>, run: &Run, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut this = self.project();
        if let Some(timeout) = this.timeout.as_pin_mut() {
            if timeout.poll(cx).is_ready() {
                return Poll::Ready(Outcome::TimedOut(*this.timeout_after));
            }
        }
        let Some(mut idle) = this.idle.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        if idle.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let after = *this.idle_after;
        match run.unheard_for(after) {
            // Nobody listened for the whole idle timeout: a clean stop.
            Ok(()) => {
                log::info!(
                    target: "rustf_workers::run",
                    "[Worker:{} run:{}] stopping: nobody listened for {}ms",
                    run.worker_name(),
                    run.id(),
                    after.as_millis(),
                );
                Poll::Ready(Outcome::Completed)
            }
            Err(next_check) => {
                idle.as_mut().reset(next_check);
                // Polled once more so the timer holds this task's waker.
                let _ = idle.poll(cx);
                Poll::Pending
            }
        }
    }
}

/// The handler waits: from now on an abort must wake this task. Registered only here, so
/// a handler that finishes at its first poll never clones the waker; the second look at
/// the signal catches an abort that came before the registration.
fn pending<T>(run: &Run, cx: &mut Context<'_>) -> Poll<T> {
    run.task.register(cx.waker());
    if run.abort_reason().is_some() {
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}

/// Polls the handler, unless its reader is behind: then it is held at its `.await` until
/// the reader's next take wakes this task (timers and cancel still apply meanwhile).
fn poll_unless_held<Fut: Future>(
    run: &Run,
    handler: Pin<&mut Fut>,
    cx: &mut Context<'_>,
) -> Poll<std::thread::Result<Fut::Output>> {
    if run.held_for_reader(cx) {
        return Poll::Pending;
    }
    poll_caught(handler, cx)
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

/// Logs through the application's logger without letting it break a run's ending: a
/// logger that panics would otherwise leave the run unpublished, its caller and
/// `shutdown` waiting for ever. The panic hook has reported the panic already.
fn log_safely(log: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(log));
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
