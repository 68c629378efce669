//! Where a run begins: whoever decided to start it (a call in this process, a stored job),
//! `launch` admits it, lists it and hands it to its task, and from there the engine takes
//! it to exactly one terminal outcome.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use serde_json::Value;

use crate::config::AppConfig;
use crate::policy::admission::Entry;
use crate::run::definition::{Definition, Step};
use crate::run::driver::{cancel, RunGuard};
use crate::run::live::{Phase, UniqueKey, UniqueRuns};
use crate::run::{Run, RunSettings};
use crate::{CancelReason, Error, Result};

/// Admits, lists and starts a run of `definition`, as its source decided it: its payload,
/// the application's settings it sees, how it is to behave (`settings.limited` is decided
/// here, by the admission queue), and its place in the admission queue if it must wait
/// for a cap. A call with a unique key passes the locked map of live unique keys and its
/// key: the run is recorded there before it is listed, and the lock released before it
/// starts. Returns the run and, when the caller takes the first step itself
/// (`first_step`), the step to take.
///
/// # Errors
///
/// [`Error::ShuttingDown`] once shutdown has started, [`Error::DaemonLimit`] when a
/// daemon's worker has its daemons, [`Error::QueueFull`] when the run must wait and the
/// queue is full. A refused run was never listed nor counted.
#[inline(always)]
pub(crate) fn launch(
    definition: Arc<Definition>,
    payload: Option<Value>,
    config: Arc<AppConfig>,
    mut settings: RunSettings,
    priority: i32,
    first_step: bool,
    unique: Option<(MutexGuard<'_, UniqueRuns>, UniqueKey)>,
) -> Result<(Arc<Run>, Option<Step>)> {
    definition.counters.admit();
    if definition.live.phase() != Phase::Open {
        definition.counters.unadmit();
        definition.live.settled();
        return Err(Error::ShuttingDown);
    }
    let daemon = settings.daemon;
    if daemon && !take_daemon_slot(&definition) {
        definition.counters.unadmit();
        definition.live.settled();
        return Err(Error::DaemonLimit {
            worker: definition.name.to_string(),
            max: definition.options.daemon_limit().unwrap_or(usize::MAX),
        });
    }
    let limited = definition.live.admission.limits(&definition);
    settings.limited = limited;
    let run = Run::new(definition, payload, config, settings);
    let definition = &*run.definition;
    let live = &*definition.live;
    if let Some((mut runs, key)) = unique {
        runs.insert(key, Arc::clone(&run));
    }
    // Listed before it can start, so no run is ever live and missing from the table.
    live.insert(Arc::clone(&run));
    let guard = RunGuard::new(Arc::clone(&run));
    let ready = if limited {
        match live.admission.enter(guard, priority) {
            Entry::Start(guard) => Some(guard),
            Entry::Queued => None,
            Entry::Full(guard, capacity) => {
                live.remove(&run);
                if daemon {
                    definition.daemons.fetch_sub(1, Ordering::Relaxed);
                }
                guard.discard();
                // Never to start: a later call with its unique key must not attach to it.
                run.mark_finished();
                if let Some(key) = run.unique_key() {
                    let mut runs = live.unique.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = (Box::from(run.worker_name()), Box::from(key));
                    if runs.get(&entry).is_some_and(|held| Arc::ptr_eq(held, &run)) {
                        runs.remove(&entry);
                    }
                }
                definition.counters.unadmit();
                live.settled();
                return Err(Error::QueueFull {
                    worker: definition.name.to_string(),
                    capacity,
                });
            }
        }
    } else {
        Some(guard)
    };
    // A shutdown that began after the check above may have swept the live table
    // before the insert; the shard lock orders the two, so if the sweep missed this
    // run, this load sees its phase.
    match live.phase() {
        Phase::Open => {}
        Phase::Stopping => run.request_stop(),
        Phase::Aborting => {
            cancel(&run, CancelReason::Shutdown);
        }
    }
    let step = match ready {
        Some(guard) => {
            let deadline = guard.deadline();
            (definition.spawn)(guard, deadline, first_step)
        }
        None => None,
    };
    Ok((run, step))
}

/// Counts one more live daemon of `definition`, unless it is at its cap.
fn take_daemon_slot(definition: &Definition) -> bool {
    let cap = definition.options.daemon_limit().unwrap_or(usize::MAX);
    // Relaxed: the count is its own only data; the CAS makes the cap exact.
    definition
        .daemons
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
            (live < cap).then_some(live + 1)
        })
        .is_ok()
}
