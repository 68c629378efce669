//! A registered worker: its name, options, handler and statistics.

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::policy::admission::Capped;
use crate::run::driver::{panic_message, Deadline, Driver, Outcome, RunGuard};
use crate::run::live::LiveRuns;
use crate::run::stats::Counters;
use crate::{Error, Result, WorkerContext, WorkerOptions};

/// Starts one run: calls the handler and spawns the task that drives its future.
///
/// Monomorphised per handler type, so the task holds the handler's future inline instead
/// of boxing it. Asked for the first step (by a caller that awaits the result), it
/// returns the run's future boxed instead, for that caller to poll once before spawning it
/// (see [`first_step`]).
pub(crate) type Spawner =
    Box<dyn Fn(RunGuard, Option<Deadline>, bool) -> Option<Step> + Send + Sync>;

/// A run's future, boxed so that it can move into a task after its first poll.
pub(crate) type Step = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How deep first steps may nest on one thread (a handler whose first step `run`s
/// another worker, whose first step runs another...) before the next run is spawned
/// instead: each level stacks a few frames, and a recursive workflow must not overflow
/// the thread's stack.
const MAX_NESTED_STEPS: u32 = 16;

thread_local! {
    /// First steps under way on this thread.
    static NESTED_STEPS: Cell<u32> = const { Cell::new(0) };
}

/// Takes a run's first step, for a caller that awaits its result, and spawns the run only
/// if it waits: a handler that finishes at once costs a box instead of a task.
///
/// The step is polled with a waker that goes nowhere. A run that waits is spawned, and its
/// task polls it again at once: that poll sees whatever happened since, and leaves the
/// task's waker with every future the handler waits on. So the caller is never woken on
/// the run's behalf, and no waker is cloned for a run that finishes.
///
/// As in a task, a panic that escapes the run (the handler's own are caught inside it;
/// this is one from dropping its future, say) ends there: the run is dropped, which
/// finishes it if it had not finished, and the caller is not affected.
pub(crate) fn first_step(mut step: Step) {
    let depth = NESTED_STEPS.get();
    if depth >= MAX_NESTED_STEPS {
        drop(tokio::spawn(step));
        return;
    }
    NESTED_STEPS.set(depth + 1);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        (step.as_mut()).poll(&mut Context::from_waker(Waker::noop()))
    }));
    NESTED_STEPS.set(depth);
    match polled {
        Ok(Poll::Pending) => drop(tokio::spawn(step)),
        Ok(Poll::Ready(())) => {}
        Err(_escaped) => drop(step),
    }
}

pub(crate) struct Definition {
    pub(crate) name: Box<str>,
    pub(crate) options: WorkerOptions,
    /// Where the registration came from, for duplicate-name errors.
    pub(crate) origin: String,
    pub(crate) spawn: Spawner,
    pub(crate) counters: Counters,
    /// The registry's live runs, reached by finishing runs without the registry.
    pub(crate) live: Arc<LiveRuns>,
    /// Checks a payload at call time, before a run exists (typed `#[worker]` payloads).
    pub(crate) check_payload: Option<PayloadCheck>,
    /// Limited runs executing now; changed only under the admission queue's lock.
    pub(crate) executing: AtomicUsize,
    /// Daemon runs alive now.
    pub(crate) daemons: AtomicUsize,
    /// Unique in the process: how an ended run's record names its worker without holding
    /// a reference to it.
    pub(crate) serial: u32,
}

/// Reads a payload as the worker's payload type, discarding it; the error names the
/// worker (its first argument).
pub type PayloadCheck = fn(&str, Option<&serde_json::Value>) -> Result<()>;

impl Definition {
    pub(crate) fn new<F, Fut>(
        name: String,
        options: WorkerOptions,
        origin: String,
        live: Arc<LiveRuns>,
        handler: F,
    ) -> Result<Self>
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        validate_name(&name)?;
        if options.default_timeout().is_some_and(|t| t.is_zero()) {
            return Err(Error::validation(format!(
                "worker '{name}': timeout must be greater than zero"
            )));
        }
        if options.idle_after().is_some_and(|idle| idle.is_zero()) {
            return Err(Error::validation(format!(
                "worker '{name}': idle_timeout must be greater than zero"
            )));
        }
        if options.daemon_limit() == Some(0) {
            return Err(Error::validation(format!(
                "worker '{name}': max_daemons must be at least 1"
            )));
        }
        if options.max_concurrency() == Some(0) {
            return Err(Error::validation(format!(
                "worker '{name}': concurrency must be at least 1"
            )));
        }
        if let Some(expr) = options.cron_expr() {
            #[cfg(feature = "cron")]
            crate::queue::CronSchedule::parse(expr).map_err(|error| match error {
                Error::Validation(why) => Error::validation(format!("worker '{name}': {why}")),
                other => other,
            })?;
            #[cfg(not(feature = "cron"))]
            return Err(Error::validation(format!(
                "worker '{name}': cron schedule `{expr}` needs rustf-workers' `cron` \
                 feature (or `sqlite`, which enables it)"
            )));
        }
        let spawn: Spawner = Box::new(move |mut guard: RunGuard, deadline, first: bool| {
            let ctx = WorkerContext::new(Arc::clone(&guard.run));
            // The closure's synchronous part runs here, like the argument of
            // `tokio::spawn`; a panic in it is the run's panic, not the caller's.
            match catch_unwind(AssertUnwindSafe(|| handler(ctx))) {
                Ok(future) => {
                    #[cfg(feature = "tracing")]
                    let future = tracing::Instrument::instrument(
                        future,
                        tracing::info_span!(
                            "worker_run",
                            worker = guard.run.worker_name(),
                            run_id = guard.run.id(),
                        ),
                    );
                    let driver = Driver::new(guard, future, deadline);
                    if first {
                        return Some(Box::pin(driver) as Step);
                    }
                    drop(tokio::spawn(driver));
                }
                Err(panic) => guard.finish(Outcome::Panicked(panic_message(&*panic))),
            }
            None
        });
        Ok(Self {
            name: name.into_boxed_str(),
            options,
            origin,
            spawn,
            counters: Counters::default(),
            live,
            check_payload: None,
            executing: AtomicUsize::new(0),
            daemons: AtomicUsize::new(0),
            serial: {
                static NEXT: AtomicU32 = AtomicU32::new(0);
                // Relaxed: only uniqueness matters.
                NEXT.fetch_add(1, Ordering::Relaxed)
            },
        })
    }
}

impl Capped for Definition {
    fn options(&self) -> &WorkerOptions {
        &self.options
    }

    fn executing(&self) -> &AtomicUsize {
        &self.executing
    }
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definition")
            .field("name", &self.name)
            .field("options", &self.options)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The naming rule: kebab or snake case, lowercase ASCII, at most 100 characters.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("a worker name must not be empty")
    } else if name.len() > 100 {
        Some("a worker name must be at most 100 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        Some("a worker name may contain only lowercase ASCII letters, digits, `-` and `_`")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("a worker name must start and end with a letter or digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_are_kebab_or_snake_case() {
        for good in ["send-email", "daily_report", "a", "v2-sync", "x1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Send-Email", "lowercase"),
            ("send email", "only"),
            ("-lead", "start and end"),
            ("trail_", "start and end"),
            ("a/b", "only"),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
