//! The state one run shares between its task, its context and its handle.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

use tokio::time::Instant;
use uuid::Uuid;

use crate::config::AppConfig;
use crate::run::definition::Definition;
use crate::run::state::StateCell;
use crate::run::subscription::Subscription;
use crate::{
    Attempt, CancelReason, Error, Progress, Result, RunOutcome, RunRecord, RunState, RunStatus,
};

/// The worker may stop: cooperative, visible through `WorkerContext::is_cancelled`.
const STOP: u8 = 1;
/// The run must stop now: its task drops the handler future at the next poll.
const ABORT: u8 = 1 << 1;
/// Set together with `ABORT` when shutdown is the one aborting.
const BY_SHUTDOWN: u8 = 1 << 2;
/// The run has an outcome; it can no longer be cancelled.
const FINISHED: u8 = 1 << 3;

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
    mailbox: Mutex<Mailbox>,
    /// The run's task, woken by `abort`.
    pub(crate) task: AtomicWaker,
    /// Waiters on the context side: `cancelled()` (a stop request) and `emit_wait` (room
    /// in the buffer, the reader left, or the run ended). Rare, so they share one list and
    /// re-check their own condition when woken.
    waiters: Notify,
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
    capacity: usize,
    /// Attempts allowed in all: 1 plus the retries; unbounded for a daemon.
    pub(crate) max_attempts: u32,
    /// Counted against concurrency caps: it holds a slot while executing.
    pub(crate) limited: bool,
    /// Restarts forever on failure, holding a daemon slot of its definition.
    pub(crate) daemon: bool,
    /// Whether to keep the last message for the run listings (`RunInfo`).
    keep_last: bool,
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
    /// The message buffer's capacity.
    pub(crate) capacity: usize,
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
}

/// A run's unique and idempotency keys.
pub(crate) struct RunKeys {
    /// Calls with this key attach to this run while it lives.
    pub(crate) unique: Option<Box<str>>,
    /// A successful end is recorded under this key, for this long.
    pub(crate) idempotency: Option<(Box<str>, Duration)>,
}

impl Run {
    pub(crate) fn unique_key(&self) -> Option<&str> {
        self.keys.as_ref()?.unique.as_deref()
    }

    pub(crate) fn idempotency_key(&self) -> Option<(&str, Duration)> {
        let (key, retention) = self.keys.as_ref()?.idempotency.as_ref()?;
        Some((key, *retention))
    }
}

impl Mailbox {
    /// Whether someone reads the run's messages: its handle, or a watcher.
    fn listened(&self) -> bool {
        self.attached || self.watchers().is_some_and(|w| w.receiver_count() > 0)
    }
}

/// Leaves the reader's waker in `slot` (held under the mailbox lock), keeping the one
/// already there when it wakes the same task: a reader that waits again and again
/// registers without touching an atomic. One reader at a time (`recv` takes `&mut`,
/// `await_result` takes the handle), so no queue of waiters.
fn wait_in(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        slot => *slot = Some(cx.waker().clone()),
    }
}

/// The result of offering a message to the mailbox.
enum Offer {
    Done(Result<()>),
    /// The buffer is full; the message comes back.
    Full(Value),
}

struct Mailbox {
    queue: VecDeque<Value>,
    /// Whether a handle still reads messages; once it is gone, `emit` discards them.
    attached: bool,
    closed: bool,
    /// An `emit_wait` is waiting for room; whoever makes room wakes the waiters.
    writer_waiting: bool,
    /// The handle found nothing (no message, or no outcome yet) and left its waker; the
    /// next message, or the run's end, wakes it. Kept under the lock both sides take
    /// anyway, so a reader that waits again and again re-registers without touching an
    /// atomic, and `emit` leaves a busy reader alone.
    waiting_reader: Option<Waker>,
    /// The caller's result once the run has ended; cloned out, so every handle and
    /// watcher reads the same.
    outcome: Option<Result<()>>,
    /// How the run ended and how long it took in all, in milliseconds: with `outcome`,
    /// what watchers see.
    ended: Option<(RunStatus, u64)>,
    /// What only some runs use, created by the first of them.
    extra: Option<Box<Extra>>,
}

/// The parts of a run's mailbox that most runs never use, kept out of its allocation.
#[derive(Default)]
struct Extra {
    /// The last message emitted, when the registry keeps it for listings.
    last: Option<Value>,
    /// The last progress the worker reported.
    progress: Option<Progress>,
    /// The messages so far (the last `capacity` of them), for handles that attach later
    /// by unique key; kept only for runs that have one.
    history: Option<VecDeque<Value>>,
    /// Watchers' channel: created by the first subscriber, dropped when the run ends,
    /// which closes every subscription after its buffered messages.
    watchers: Option<broadcast::Sender<Value>>,
    /// Since when nobody has been reading the run's messages (no handle reading, no
    /// watcher), for the idle stop.
    unheard_since: Option<Instant>,
    /// Attempts that ended in a retry; the last attempt is the run's own outcome.
    retried: Vec<Attempt>,
}

impl Mailbox {
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn watchers(&self) -> Option<&broadcast::Sender<Value>> {
        self.extra.as_ref()?.watchers.as_ref()
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
            keep_last,
            read,
            limited,
            max_attempts,
            daemon,
            timeout,
            keys,
        } = settings;
        let keeps_history = keys.as_ref().is_some_and(|keys| keys.unique.is_some());
        let started = Instant::now();
        // Unheard from the start when nobody will read, for a worker that stops when idle.
        let unheard_since = (!read && definition.options.idle_after().is_some()).then_some(started);
        Self {
            key: Uuid::new_v4().as_u128(),
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
            attempt: AtomicU32::new(1),
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
        let settings = RunSettings {
            capacity: 1,
            keep_last: false,
            read: false,
            limited: false,
            max_attempts: 1,
            daemon: false,
            timeout: None,
            keys: None,
        };
        let mut run = Self::build(definition, None, config, settings);
        if let Ok(id) = Uuid::try_parse(run_id) {
            run.key = id.as_u128();
        }
        let _ = run.state.become_(RunState::Completed);
        run.mark_finished();
        run.close(Ok(()), RunStatus::Completed, 0);
        Arc::new(run)
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

    // ---- messages ----

    fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        // The lock is never held across user code, so poisoning cannot leave it torn.
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message if a reader is attached and the buffer has room.
    pub(crate) fn emit(&self, message: Value) -> Result<()> {
        match self.offer(message) {
            Offer::Done(result) => result,
            Offer::Full(_) => Err(Error::MessageBufferFull {
                worker: self.worker_name().to_owned(),
                capacity: self.capacity,
            }),
        }
    }

    /// Records progress and sends it to the readers as a message. A reader that is behind
    /// misses this update (the next one supersedes it); the record always has the latest.
    pub(crate) fn progress(&self, progress: Progress) -> Result<()> {
        let message = serde_json::json!({ "progress": &progress });
        {
            let mut mailbox = self.mailbox();
            if mailbox.closed {
                return Err(self.finished_error());
            }
            mailbox.extra().progress = Some(progress);
        }
        match self.offer(message) {
            Offer::Done(result) => result,
            Offer::Full(_) => Ok(()),
        }
    }

    /// The last progress reported.
    pub(crate) fn last_progress(&self) -> Option<Progress> {
        self.mailbox().extra.as_ref()?.progress.clone()
    }

    /// Queues a message, waiting for room while the buffer is full.
    pub(crate) async fn emit_wait(&self, message: Value) -> Result<()> {
        // Like tokio's own channels: a worker that emits in a loop yields now and then, so
        // its reader (often queued on the same thread) takes the messages in batches that
        // stay in cache (two-thread streaming: ~1.1x -> ~0.85x of an mpsc channel). Before
        // the message is offered, so a future dropped while yielding queued nothing.
        tokio::task::coop::consume_budget().await;
        let mut message = match self.offer(message) {
            Offer::Done(result) => return result,
            Offer::Full(message) => message,
        };
        loop {
            let mut room = pin!(self.waiters.notified());
            // Register before offering again, so room made in between still wakes us.
            room.as_mut().enable();
            message = match self.offer_or_wait(message) {
                Offer::Done(result) => return result,
                Offer::Full(message) => message,
            };
            room.await;
        }
    }

    fn offer(&self, message: Value) -> Offer {
        self.offer_inner(message, false)
    }

    fn offer_or_wait(&self, message: Value) -> Offer {
        self.offer_inner(message, true)
    }

    /// One attempt to queue a message; `wait` marks a full buffer as awaited.
    fn offer_inner(&self, message: Value, wait: bool) -> Offer {
        let mut mailbox = self.mailbox();
        if mailbox.closed {
            return Offer::Done(Err(self.finished_error()));
        }
        if !mailbox.attached {
            self.share(&mut mailbox, &message);
            return Offer::Done(Ok(()));
        }
        if mailbox.queue.len() >= self.capacity {
            mailbox.writer_waiting |= wait;
            return Offer::Full(message);
        }
        self.share(&mut mailbox, &message);
        mailbox.queue.push_back(message);
        let reader = mailbox.waiting_reader.take();
        drop(mailbox);
        if let Some(reader) = reader {
            reader.wake();
        }
        Offer::Done(Ok(()))
    }

    /// Copies an accepted message to the watchers and the last-message slot, for those
    /// that want it. Called with the mailbox locked, so it needs no lock of its own.
    fn share(&self, mailbox: &mut Mailbox, message: &Value) {
        if self.keep_last {
            mailbox.extra().last = Some(message.clone());
        }
        let Some(extra) = &mut mailbox.extra else {
            return;
        };
        if let Some(watchers) = &extra.watchers {
            // An error only means every watcher has gone.
            let _ = watchers.send(message.clone());
        }
        if let Some(history) = &mut extra.history {
            if history.len() >= self.capacity {
                history.pop_front();
            }
            history.push_back(message.clone());
        }
    }

    /// The last message emitted, if the registry keeps them.
    pub(crate) fn last_message(&self) -> Option<Value> {
        self.mailbox().extra.as_ref()?.last.clone()
    }

    /// A new watcher of this run's messages and outcome. The mailbox lock orders it with
    /// the run's end: a watcher either joins the channel before `close` drops it, or finds
    /// the run closed and gets only the outcome.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Subscription {
        let mut mailbox = self.mailbox();
        self.subscribe_locked(&mut mailbox)
    }

    /// The messages so far and a watcher of the rest, taken together so that none falls
    /// between them: what a handle attaching by unique key reads.
    pub(crate) fn attach(self: &Arc<Self>) -> (VecDeque<Value>, Subscription) {
        let mut mailbox = self.mailbox();
        let history = mailbox
            .extra
            .as_ref()
            .and_then(|extra| extra.history.clone())
            .unwrap_or_default();
        (history, self.subscribe_locked(&mut mailbox))
    }

    fn subscribe_locked(self: &Arc<Self>, mailbox: &mut Mailbox) -> Subscription {
        if mailbox.closed {
            return Subscription::new(Arc::clone(self), None);
        }
        let extra = mailbox.extra();
        extra.unheard_since = None;
        let receiver = match &extra.watchers {
            Some(watchers) => watchers.subscribe(),
            None => {
                let (watchers, receiver) = broadcast::channel(self.capacity);
                extra.watchers = Some(watchers);
                receiver
            }
        };
        Subscription::new(Arc::clone(self), Some(receiver))
    }

    /// The result for an attached handle, once the run has ended.
    pub(crate) fn shared_result(&self) -> Result<()> {
        self.mailbox()
            .outcome
            .clone()
            .unwrap_or_else(|| Err(Error::internal("the run ended without a result")))
    }

    /// The outcome as watchers see it, once the run has ended.
    pub(crate) fn ended(&self) -> Option<RunOutcome> {
        let mailbox = self.mailbox();
        let (status, duration_ms) = mailbox.ended?;
        Some(RunOutcome {
            status,
            error: mailbox
                .outcome
                .as_ref()
                .and_then(|outcome| outcome.as_ref().err())
                .map(ToString::to_string),
            duration_ms,
        })
    }

    /// The next message; `None` once the run has ended and every message was read.
    ///
    /// The reader takes the whole queue into its own `batch` in one critical section and
    /// pops from there without the lock, so a fast emitter and its reader meet on the
    /// lock once per batch, not once per message.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        batch: &mut VecDeque<Value>,
    ) -> Poll<Option<Value>> {
        if let Some(message) = batch.pop_front() {
            return Poll::Ready(Some(message));
        }
        self.refill(cx, batch)
    }

    /// Detaches the reader, then waits for the outcome and reads it. Only the handle
    /// calls this, once.
    pub(crate) async fn outcome(&self) -> Result<()> {
        if let Some(outcome) = self.detach() {
            return outcome;
        }
        self.detached_outcome().await
    }

    /// Waits for the outcome of a run nobody reads messages from (detached, or never
    /// attached), and reads it. The wait leaves its waker in the mailbox like `recv`
    /// does; a detached run's messages are discarded before they reach it, so only the
    /// run's end wakes it.
    pub(crate) async fn detached_outcome(&self) -> Result<()> {
        poll_fn(|cx| self.poll_outcome(cx)).await
    }

    /// One look for the outcome of a run nobody reads from; see `detached_outcome`.
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut mailbox = self.mailbox();
        if let Some(outcome) = &mailbox.outcome {
            return Poll::Ready(outcome.clone());
        }
        wait_in(&mut mailbox.waiting_reader, cx);
        Poll::Pending
    }

    /// Moves every queued message into the reader's empty `batch` and returns the first,
    /// or `None` at the end of the stream. When there is nothing yet, the reader registers
    /// under the lock the emitter takes, so one critical section decides between "take"
    /// and "wait": a reader that catches up with its emitter takes the lock once per wake,
    /// not twice.
    fn refill(&self, cx: &mut Context<'_>, batch: &mut VecDeque<Value>) -> Poll<Option<Value>> {
        let mut mailbox = self.mailbox();
        if mailbox.queue.is_empty() {
            if mailbox.closed {
                return Poll::Ready(None);
            }
            wait_in(&mut mailbox.waiting_reader, cx);
            return Poll::Pending;
        }
        std::mem::swap(&mut mailbox.queue, batch);
        let wake_writers = std::mem::take(&mut mailbox.writer_waiting);
        drop(mailbox);
        if wake_writers {
            self.waiters.notify_waiters();
        }
        Poll::Ready(batch.pop_front())
    }

    /// `Ok` if nobody has read the run's messages for `idle`; else when to look again.
    pub(crate) fn unheard_for(&self, idle: Duration) -> std::result::Result<(), Instant> {
        let now = Instant::now();
        let mut mailbox = self.mailbox();
        if mailbox.listened() {
            return Err(now + idle);
        }
        let since = *mailbox.extra().unheard_since.get_or_insert(now);
        match since.checked_add(idle) {
            Some(at) if at > now => Err(at),
            _ => Ok(()),
        }
    }

    /// Whether the worker stops when nobody listens: only then is the time unheard kept.
    fn idle_stops(&self) -> bool {
        self.definition.options.idle_after().is_some()
    }

    /// A watcher left: if it was the last reader, the run is unheard from now.
    pub(crate) fn watcher_left(&self) {
        let mut mailbox = self.mailbox();
        // The leaving watcher's receiver still counts here.
        let others = mailbox
            .watchers()
            .map_or(0, |w| w.receiver_count().saturating_sub(1));
        if self.idle_stops() && !mailbox.attached && others == 0 {
            mailbox
                .extra()
                .unheard_since
                .get_or_insert_with(Instant::now);
        }
    }

    /// The reader is gone: drop what it did not read, and discard what comes later.
    /// Returns the outcome if the run has one already, in the same critical section.
    pub(crate) fn detach(&self) -> Option<Result<()>> {
        let (unread, wake_writers, outcome, reader) = {
            let mut mailbox = self.mailbox();
            mailbox.attached = false;
            if self.idle_stops() && !mailbox.listened() {
                mailbox.extra().unheard_since = Some(Instant::now());
            }
            (
                (!mailbox.queue.is_empty()).then(|| std::mem::take(&mut mailbox.queue)),
                std::mem::take(&mut mailbox.writer_waiting),
                mailbox.outcome.clone(),
                // The reader is leaving: its waker is no longer wanted.
                mailbox.waiting_reader.take(),
            )
        };
        if wake_writers {
            self.waiters.notify_waiters();
        }
        drop((unread, reader));
        outcome
    }

    /// Ends the message streams, and stores the outcome for the handle and the watchers.
    pub(crate) fn close(&self, outcome: Result<()>, status: RunStatus, duration_ms: u64) {
        let (wake_writers, watchers, reader) = {
            let mut mailbox = self.mailbox();
            mailbox.closed = true;
            mailbox.outcome = Some(outcome);
            mailbox.ended = Some((status, duration_ms));
            (
                std::mem::take(&mut mailbox.writer_waiting),
                mailbox
                    .extra
                    .as_mut()
                    .and_then(|extra| extra.watchers.take()),
                mailbox.waiting_reader.take(),
            )
        };
        drop(watchers);
        if let Some(reader) = reader {
            reader.wake();
        }
        if wake_writers {
            self.waiters.notify_waiters();
        }
    }

    fn finished_error(&self) -> Error {
        Error::RunFinished {
            worker: self.worker_name().to_owned(),
            run_id: self.id().to_owned(),
        }
    }

    // ---- per-run state ----

    #[allow(clippy::box_collection)] // see the field
    pub(crate) fn user_state(&self) -> MutexGuard<'_, Option<Box<HashMap<String, Value>>>> {
        // Held only inside `WorkerContext`'s state methods, never across an await.
        self.user_state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
