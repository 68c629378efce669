//! The state one run shares between its task, its context and its handle.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use futures::task::AtomicWaker;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::Notify;

use tokio::time::Instant;
use uuid::Uuid;

use crate::config::AppConfig;
use crate::run::definition::Definition;
use crate::run::mailbox::{Extra, Mailbox};
use crate::run::state::StateCell;
use crate::{Attempt, CancelReason, RunRecord, RunState, RunStatus, StoreFuture};

/// The worker may stop: cooperative, visible through `WorkerContext::is_cancelled`.
const STOP: u8 = 1;
/// The run must stop now: its task drops the handler future at the next poll.
const ABORT: u8 = 1 << 1;
/// Set together with `ABORT` when shutdown is the one aborting.
const BY_SHUTDOWN: u8 = 1 << 2;
/// The run has an outcome; it can no longer be cancelled.
const FINISHED: u8 = 1 << 3;
/// An `emit` filled the mailbox to its soft mark while a handle reads: the driver holds
/// the handler at its next poll until the reader takes the queue. Set and cleared under
/// the mailbox lock; read without it by the driver.
const READER_BEHIND: u8 = 1 << 4;

/// One run: identity, inputs, stop signals, message mailbox and per-run state.
///
/// Shared by `Arc` between the run's task, every clone of its `WorkerContext`, its
/// `WorkerHandle` and the registry's live table.
// `repr(C)`, in this order: the fields both the caller's and the run's thread write
// (signals, wakers, mailbox) first, right after the `Arc`'s counts; then what is read
// after the start; last, what most runs never touch. Runs are allocated one after another,
// so the tail of one shares a cache line with the head of the next: a cold tail keeps the
// thread that finishes one run from contending with the thread that starts the next.
// Measured: laid out by the compiler, some run sizes cost the 100k-concurrent row on two
// threads ~25%.
#[repr(C)]
pub(crate) struct Run {
    // ---- written by both sides ----
    signal: AtomicU8,
    pub(crate) state: StateCell,
    /// The attempt executing or last executed, from 1.
    attempt: AtomicU32,
    pub(super) mailbox: Mutex<Mailbox>,
    /// The run's task, woken by `abort`.
    pub(crate) task: AtomicWaker,
    /// Waiters on the context side: `cancelled()` (a stop request) and `emit_wait` (room
    /// in the buffer, the reader left, or the run ended). Rare, so they share one list and
    /// re-check their own condition when woken.
    pub(super) waiters: Notify,
    // ---- read after the start ----
    pub(crate) key: u128,
    /// Where the live table keeps it; written under the table shard's lock.
    slot: AtomicU32,
    pub(crate) definition: Arc<Definition>,
    pub(crate) payload: Option<Value>,
    pub(crate) config: Arc<AppConfig>,
    pub(crate) started: Instant,
    /// Each attempt's timeout.
    pub(crate) timeout: Option<Duration>,
    /// The call's keys, for the few runs that have any.
    pub(crate) keys: Option<Box<RunKeys>>,
    pub(super) capacity: usize,
    /// About how many bytes of unread messages the mailbox may hold.
    pub(super) budget: usize,
    /// Attempts allowed in all: 1 plus the retries; unbounded for a daemon.
    pub(crate) max_attempts: u32,
    /// Counted against concurrency caps: it holds a slot while executing.
    pub(crate) limited: bool,
    /// Restarts forever on failure, holding a daemon slot of its definition.
    pub(crate) daemon: bool,
    /// Whether to keep the last message for the run listings (`RunInfo`).
    pub(super) keep_last: bool,
    /// Whether the run ever saved a checkpoint, which its end then removes.
    checkpointed: AtomicBool,
    // ---- seldom used ----
    /// Retries since the last healthy attempt: the backoff's exponent.
    backoff_step: AtomicU32,
    /// Created by the first `set_state`: most runs never use it.
    #[allow(clippy::box_collection)] // 8 bytes in every run rather than 48
    user_state: Mutex<Option<Box<HashMap<String, Value>>>>,
    /// The key as a hyphenated uuid, written on first use: most runs are never asked.
    id: OnceLock<[u8; 36]>,
}

/// How a run is to behave, decided at admission from the registry, the definition and
/// the call.
pub(crate) struct RunSettings {
    /// The mailbox's soft mark: unread messages past which the driver waits for the
    /// reader.
    pub(crate) capacity: usize,
    /// About how many bytes of unread messages the mailbox may hold.
    pub(crate) budget: usize,
    /// Whether to keep the last message for listings.
    pub(crate) keep_last: bool,
    /// Whether a handle will read the messages: `WORKER::run` never does, so its runs
    /// discard them from the start and never need to detach.
    pub(crate) read: bool,
    /// Whether it counts against concurrency caps.
    pub(crate) limited: bool,
    /// 1 plus the retries; unbounded for a daemon.
    pub(crate) max_attempts: u32,
    /// Whether it restarts forever on failure.
    pub(crate) daemon: bool,
    /// Each attempt's timeout.
    pub(crate) timeout: Option<Duration>,
    /// The call's keys, if any.
    pub(crate) keys: Option<Box<RunKeys>>,
    /// The run's key when its source chose it (a stored job's id); else a random one.
    pub(crate) key: Option<u128>,
    /// The number of its first attempt here: a stored job's attempt, else 1.
    pub(crate) first_attempt: u32,
}

/// A run's unique and idempotency keys, and who else hears of its end: what few runs
/// have, in one box.
#[derive(Default)]
pub(crate) struct RunKeys {
    /// Calls with this key attach to this run while it lives.
    pub(crate) unique: Option<Box<str>>,
    /// A successful end is recorded under this key, for this long.
    pub(crate) idempotency: Option<(Box<str>, Duration)>,
    /// Told of the run's end before its outcome is published.
    pub(crate) sink: Option<Arc<dyn RunSink>>,
}

/// Hears of a run's end before its outcome is published: the durable queue, for a run
/// that is one attempt of a stored job. The engine does not know what it does.
pub(crate) trait RunSink: Send + Sync + 'static {
    /// The run reached `status` with the caller's `result`. Returns whether the run's
    /// checkpoint is to be kept (its job will be attempted again).
    fn ended(&self, run: &Run, status: RunStatus, result: &crate::Result<()>) -> bool;

    /// Whether the run's checkpoints are kept by this sink rather than by the registry's
    /// `CheckpointStore`: a stored job's, fenced by its claim.
    fn keeps_checkpoints(&self) -> bool {
        false
    }

    /// Saves the run's checkpoint (when [`keeps_checkpoints`](Self::keeps_checkpoints)).
    fn save_checkpoint<'a>(&'a self, run: &'a Run, value: Value) -> StoreFuture<'a, ()> {
        let _ = (run, value);
        Box::pin(std::future::ready(Ok(())))
    }

    /// The run's last checkpoint (when [`keeps_checkpoints`](Self::keeps_checkpoints)).
    fn last_checkpoint(&self) -> Option<Value> {
        None
    }

    /// Cancels the run where it really runs, when the run here only stands in for a
    /// stored job (see [`Run::stand_in`]); `None` for a run that runs here.
    fn cancel_elsewhere<'a>(&'a self, run: &'a Run) -> Option<StoreFuture<'a, ()>> {
        let _ = run;
        None
    }
}

impl Run {
    pub(crate) fn unique_key(&self) -> Option<&str> {
        self.keys.as_ref()?.unique.as_deref()
    }

    pub(crate) fn sink(&self) -> Option<&Arc<dyn RunSink>> {
        self.keys.as_ref()?.sink.as_ref()
    }

    pub(crate) fn idempotency_key(&self) -> Option<(&str, Duration)> {
        let (key, retention) = self.keys.as_ref()?.idempotency.as_ref()?;
        Some((key, *retention))
    }
}

impl Run {
    /// A new run, in its shared allocation.
    pub(crate) fn new(
        definition: Arc<Definition>,
        payload: Option<Value>,
        config: Arc<AppConfig>,
        settings: RunSettings,
    ) -> Arc<Self> {
        // Built where `Arc::new` takes it from: the run is several hundred bytes, and a
        // frame of its own would cost one more copy.
        Arc::new(Self::build(definition, payload, config, settings))
    }

    #[inline(always)]
    fn build(
        definition: Arc<Definition>,
        payload: Option<Value>,
        config: Arc<AppConfig>,
        settings: RunSettings,
    ) -> Self {
        let RunSettings {
            capacity,
            budget,
            keep_last,
            read,
            limited,
            max_attempts,
            daemon,
            timeout,
            keys,
            key,
            first_attempt,
        } = settings;
        let keeps_history = keys.as_ref().is_some_and(|keys| keys.unique.is_some());
        let started = Instant::now();
        // Unheard from the start when nobody will read, for a worker that stops when idle.
        let stored_job = keys.as_ref().is_some_and(|keys| keys.sink.is_some());
        let unheard_since =
            (!read && !stored_job && definition.options.idle_after().is_some()).then_some(started);
        Self {
            key: key.unwrap_or_else(|| Uuid::new_v4().as_u128()),
            slot: AtomicU32::new(0),
            id: OnceLock::new(),
            definition,
            payload,
            config,
            started,
            limited,
            // A limited run waits for its slot; `Admission::enter` starts it at once when
            // there is room.
            state: StateCell::new(if limited {
                RunState::Queued
            } else {
                RunState::Running
            }),
            attempt: AtomicU32::new(first_attempt),
            max_attempts,
            daemon,
            timeout,
            keys,
            backoff_step: AtomicU32::new(0),
            checkpointed: AtomicBool::new(false),
            signal: AtomicU8::new(0),
            task: AtomicWaker::new(),
            waiters: Notify::new(),
            mailbox: Mutex::new(Mailbox {
                queue: VecDeque::new(),
                bytes: 0,
                driver_held: false,
                attached: read,
                closed: false,
                writer_waiting: false,
                waiting_reader: None,
                outcome: None,
                ended: None,
                extra: (keeps_history || unheard_since.is_some()).then(|| {
                    Box::new(Extra {
                        history: keeps_history.then(VecDeque::new),
                        unheard_since,
                        ..Extra::default()
                    })
                }),
            }),
            capacity,
            budget,
            keep_last,
            user_state: Mutex::new(None),
        }
    }

    /// A finished run standing for an earlier one that completed under an idempotency
    /// key: same id, `Ok(())`, no messages. Never listed, never counted.
    pub(crate) fn replayed(
        definition: Arc<Definition>,
        run_id: &str,
        config: Arc<AppConfig>,
    ) -> Arc<Self> {
        let run = Self::stand_in(definition, run_id, config, None, None);
        run.close_stand_in(Ok(()), RunStatus::Completed);
        run
    }

    /// A run standing for one that is not live here (a stored job waiting, or running in
    /// another process): same id, the outcome given to
    /// [`close_stand_in`](Self::close_stand_in), and, with a `mailbox` (its capacity and
    /// byte budget), the messages passed on to it with [`emit`](Self::emit) for a handle
    /// to read. Never listed, never counted; its sink, if any, cancels the real one.
    pub(crate) fn stand_in(
        definition: Arc<Definition>,
        run_id: &str,
        config: Arc<AppConfig>,
        keys: Option<Box<RunKeys>>,
        mailbox: Option<(usize, usize)>,
    ) -> Arc<Self> {
        let (capacity, budget) = mailbox.unwrap_or((1, 0));
        let settings = RunSettings {
            capacity,
            budget,
            keep_last: false,
            read: mailbox.is_some(),
            limited: false,
            max_attempts: 1,
            daemon: false,
            timeout: None,
            keys,
            key: None,
            first_attempt: 1,
        };
        let mut run = Self::build(definition, None, config, settings);
        if let Ok(id) = Uuid::try_parse(run_id) {
            run.key = id.as_u128();
        }
        Arc::new(run)
    }

    /// Ends a stand-in with the real run's outcome.
    pub(crate) fn close_stand_in(&self, result: crate::Result<()>, status: RunStatus) {
        let _ = self.state.become_(RunState::Running);
        let _ = self.state.become_(RunState::from(status));
        self.mark_finished();
        self.close(result, status, 0);
    }

    pub(crate) fn id(&self) -> &str {
        let id = self.id.get_or_init(|| {
            let mut id = [0; 36];
            Uuid::from_u128(self.key).hyphenated().encode_lower(&mut id);
            id
        });
        std::str::from_utf8(id).expect("a hyphenated uuid is ASCII")
    }

    /// Its slot in the live table.
    pub(crate) fn slot(&self) -> u32 {
        // Relaxed: written and read under the same shard lock.
        self.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slot(&self, slot: u32) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    pub(crate) fn worker_name(&self) -> &str {
        &self.definition.name
    }

    pub(crate) fn is_queued(&self) -> bool {
        self.state.get() == RunState::Queued
    }

    pub(crate) fn attempt(&self) -> u32 {
        // Relaxed: written by the run's own task between attempts, read for display.
        self.attempt.load(Ordering::Relaxed)
    }

    pub(crate) fn next_attempt(&self) {
        self.attempt.fetch_add(1, Ordering::Relaxed);
    }

    /// The backoff step for the next retry: back to 1 after a healthy attempt.
    pub(crate) fn backoff_step(&self, healthy: bool) -> u32 {
        // Relaxed: only the run's own task, between attempts, touches it.
        if healthy {
            self.backoff_step.store(1, Ordering::Relaxed);
            1
        } else {
            self.backoff_step.fetch_add(1, Ordering::Relaxed) + 1
        }
    }

    /// Remembers an attempt that ended in a retry.
    pub(crate) fn push_retried(&self, attempt: Attempt) {
        self.mailbox().extra().retried.push(attempt);
    }

    /// The attempts that ended in a retry, taken out for the run's record when it ends.
    pub(crate) fn take_retried(&self) -> Vec<Attempt> {
        self.mailbox()
            .extra
            .as_mut()
            .map(|extra| std::mem::take(&mut extra.retried))
            .unwrap_or_default()
    }

    /// The live run's state and attempts, the one under way last (its error and duration
    /// not known yet). An ended run's record comes from the live table's ring instead.
    pub(crate) fn record(&self) -> RunRecord {
        let mut attempts = self
            .mailbox()
            .extra
            .as_ref()
            .map(|extra| extra.retried.clone())
            .unwrap_or_default();
        let state = self.state.get();
        // Backing off, the last attempt is the last retried one: none is under way.
        if state != RunState::BackingOff {
            attempts.push(Attempt {
                number: self.attempt(),
                state,
                error: None,
                duration_ms: None,
            });
        }
        RunRecord {
            id: self.id().to_owned(),
            worker: self.worker_name().to_owned(),
            state,
            attempts,
        }
    }

    pub(crate) fn mark_checkpointed(&self) {
        self.checkpointed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn has_checkpoint(&self) -> bool {
        self.checkpointed.load(Ordering::Relaxed)
    }

    // ---- stop signals ----

    /// Asks the worker to stop on its own (shutdown's grace period).
    pub(crate) fn request_stop(&self) {
        // AcqRel: a worker that sees STOP also sees everything the requester did before.
        if self.signal.fetch_or(STOP, Ordering::AcqRel) & STOP == 0 {
            self.waiters.notify_waiters();
            // A run backing off between attempts waits on this waker, and stops.
            self.task.wake();
        }
    }

    /// Makes the run's task stop the handler at its next poll. `false` when the run already
    /// has an outcome, so there was nothing left to cancel.
    pub(crate) fn abort(&self, reason: CancelReason) -> bool {
        let bits = match reason {
            CancelReason::Shutdown => STOP | ABORT | BY_SHUTDOWN,
            _ => STOP | ABORT,
        };
        // AcqRel: orders the abort against the task's FINISHED mark, so exactly one of
        // "cancelled" and "already finished" wins.
        let mut current = self.signal.load(Ordering::Acquire);
        loop {
            if current & FINISHED != 0 {
                return false;
            }
            if current & ABORT != 0 {
                return true;
            }
            match self.signal.compare_exchange_weak(
                current,
                current | bits,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if current & STOP == 0 {
            self.waiters.notify_waiters();
        }
        self.task.wake();
        true
    }

    pub(crate) fn abort_reason(&self) -> Option<CancelReason> {
        let signal = self.signal.load(Ordering::Acquire);
        (signal & ABORT != 0).then_some(if signal & BY_SHUTDOWN != 0 {
            CancelReason::Shutdown
        } else {
            CancelReason::Requested
        })
    }

    pub(crate) fn mark_finished(&self) {
        self.signal.fetch_or(FINISHED, Ordering::AcqRel);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.signal.load(Ordering::Acquire) & FINISHED != 0
    }

    pub(super) fn is_reader_behind(&self) -> bool {
        // Relaxed: a hint; the mailbox lock orders what the driver then looks at.
        self.signal.load(Ordering::Relaxed) & READER_BEHIND != 0
    }

    /// Marks the reader behind, once per fill. Under the mailbox lock.
    pub(super) fn reader_behind(&self) {
        if !self.is_reader_behind() {
            self.signal.fetch_or(READER_BEHIND, Ordering::Relaxed);
        }
    }

    /// Under the mailbox lock.
    pub(super) fn clear_reader_behind(&self) {
        self.signal.fetch_and(!READER_BEHIND, Ordering::Relaxed);
    }

    pub(crate) fn is_stop_requested(&self) -> bool {
        self.signal.load(Ordering::Acquire) & STOP != 0
    }

    pub(crate) async fn stop_requested(&self) {
        loop {
            let mut notified = pin!(self.waiters.notified());
            // Register before checking, so a request between the check and the await
            // still wakes us.
            notified.as_mut().enable();
            if self.is_stop_requested() {
                return;
            }
            notified.await;
        }
    }

    // ---- per-run state ----

    #[allow(clippy::box_collection)] // see the field
    pub(crate) fn user_state(&self) -> MutexGuard<'_, Option<Box<HashMap<String, Value>>>> {
        // Held only inside `WorkerContext`'s state methods, never across an await.
        self.user_state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
