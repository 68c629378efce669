//! A run's messages: the mailbox its context emits into and its handle reads from, the
//! watchers' channel, and the outcome handed to whoever waits for it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::Run;
use crate::run::subscription::Subscription;
use crate::{Attempt, Error, Progress, Result, RunOutcome, RunStatus};

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
/// What is offering a message, which decides what a full mailbox means for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// `emit`: queues past the soft mark, up to the byte budget.
    Emit,
    /// `emit_wait`: waits at the soft mark, and at the budget.
    Wait,
    /// `emit_wait` again, about to wait: a full mailbox marks it as awaited, under the
    /// same lock, so the reader that makes room wakes it.
    Awaited,
    /// A progress update: dropped at the soft mark (the record keeps the latest).
    Progress,
}

enum Offer {
    Done(Result<()>),
    /// The buffer is full; the message comes back.
    Full(Value),
}

pub(super) struct Mailbox {
    pub(super) queue: VecDeque<Value>,
    /// About how many bytes `queue` holds (see `weight`), against the run's budget.
    pub(super) bytes: usize,
    /// The run's driver holds the handler until the reader takes the queue: the reader
    /// wakes the run's task when it does.
    pub(super) driver_held: bool,
    /// Whether a handle still reads messages; once it is gone, `emit` discards them.
    pub(super) attached: bool,
    pub(super) closed: bool,
    /// An `emit_wait` is waiting for room; whoever makes room wakes the waiters.
    pub(super) writer_waiting: bool,
    /// The handle found nothing (no message, or no outcome yet) and left its waker; the
    /// next message, or the run's end, wakes it. Kept under the lock both sides take
    /// anyway, so a reader that waits again and again re-registers without touching an
    /// atomic, and `emit` leaves a busy reader alone.
    pub(super) waiting_reader: Option<Waker>,
    /// The caller's result once the run has ended; cloned out, so every handle and
    /// watcher reads the same.
    pub(super) outcome: Option<Result<()>>,
    /// How the run ended and how long it took in all, in milliseconds: with `outcome`,
    /// what watchers see.
    pub(super) ended: Option<(RunStatus, u64)>,
    /// What only some runs use, created by the first of them.
    pub(super) extra: Option<Box<Extra>>,
}

/// The parts of a run's mailbox that most runs never use, kept out of its allocation.
#[derive(Default)]
pub(super) struct Extra {
    /// The last message emitted, when the registry keeps it for listings.
    pub(super) last: Option<Value>,
    /// The last progress the worker reported.
    pub(super) progress: Option<Progress>,
    /// The messages so far (the last `capacity` of them), for handles that attach later
    /// by unique key; kept only for runs that have one.
    pub(super) history: Option<VecDeque<Value>>,
    /// Watchers' channel: created by the first subscriber, dropped when the run ends,
    /// which closes every subscription after its buffered messages.
    pub(super) watchers: Option<broadcast::Sender<Value>>,
    /// Since when nobody has been reading the run's messages (no handle reading, no
    /// watcher), for the idle stop.
    pub(super) unheard_since: Option<Instant>,
    /// Attempts that ended in a retry; the last attempt is the run's own outcome.
    pub(super) retried: Vec<Attempt>,
}

impl Mailbox {
    pub(super) fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    pub(super) fn watchers(&self) -> Option<&broadcast::Sender<Value>> {
        self.extra.as_ref()?.watchers.as_ref()
    }
}

impl Run {
    // ---- messages ----

    pub(super) fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        // The lock is never held across user code, so poisoning cannot leave it torn.
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message if a reader is attached, within the run's byte budget. Past the
    /// soft mark (`capacity` unread messages) it still queues, and the driver holds the
    /// handler at its next poll until the reader catches up.
    pub(crate) fn emit(&self, message: Value) -> Result<()> {
        match self.offer_inner(message, Sender::Emit) {
            Offer::Done(result) => result,
            Offer::Full(_) => Err(self.budget_error()),
        }
    }

    #[cold]
    fn budget_error(&self) -> Error {
        let mailbox = self.mailbox();
        Error::MessageBufferFull {
            worker: self.worker_name().to_owned(),
            unread: mailbox.queue.len(),
            budget: self.budget,
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
        match self.offer_inner(message, Sender::Progress) {
            Offer::Done(result) => result,
            Offer::Full(_) => Ok(()),
        }
    }

    /// The last progress reported.
    pub(crate) fn last_progress(&self) -> Option<Progress> {
        self.mailbox().extra.as_ref()?.progress.clone()
    }

    /// Queues a message, waiting for room while the buffer is at its soft mark or its
    /// budget.
    pub(crate) async fn emit_wait(&self, message: Value) -> Result<()> {
        // Like tokio's own channels: a worker that emits in a loop yields now and then, so
        // its reader (often queued on the same thread) takes the messages in batches that
        // stay in cache (two-thread streaming: ~1.1x -> ~0.85x of an mpsc channel). Before
        // the message is offered, so a future dropped while yielding queued nothing.
        tokio::task::coop::consume_budget().await;
        let mut message = match self.offer_inner(message, Sender::Wait) {
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

    fn offer_or_wait(&self, message: Value) -> Offer {
        self.offer_inner(message, Sender::Awaited)
    }

    /// One attempt to queue a message for `sender`. Inlined into each caller, whose
    /// `sender` is a constant.
    #[inline(always)]
    fn offer_inner(&self, message: Value, sender: Sender) -> Offer {
        let mut mailbox = self.mailbox();
        if mailbox.closed {
            return Offer::Done(Err(self.finished_error()));
        }
        if !mailbox.attached {
            self.share(&mut mailbox, &message);
            return Offer::Done(Ok(()));
        }
        let unread = mailbox.queue.len();
        if unread >= self.capacity && sender != Sender::Emit {
            mailbox.writer_waiting |= sender == Sender::Awaited;
            return Offer::Full(message);
        }
        let weight = weight(&message);
        // Past the budget, unless the queue is empty: a message larger than the whole
        // budget still goes through once its reader has caught up.
        if unread > 0 && mailbox.bytes.saturating_add(weight) > self.budget {
            mailbox.writer_waiting |= sender == Sender::Awaited;
            return Offer::Full(message);
        }
        mailbox.bytes += weight;
        if unread + 1 >= self.capacity && sender == Sender::Emit {
            self.reader_behind();
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
        mailbox.bytes = 0;
        let wake_writers = std::mem::take(&mut mailbox.writer_waiting);
        let wake_driver = self.reader_caught_up(&mut mailbox);
        drop(mailbox);
        if wake_writers {
            self.waiters.notify_waiters();
        }
        if wake_driver {
            self.task.wake();
        }
        Poll::Ready(batch.pop_front())
    }

    /// Whether the driver is to hold the handler instead of polling it: an `emit` filled
    /// the mailbox to its soft mark and the reader has not taken it yet. Then the run's
    /// task is woken when the reader does, or leaves. One atomic load when the reader
    /// keeps up.
    pub(crate) fn held_for_reader(&self, cx: &Context<'_>) -> bool {
        // Asked to stop (shutdown), the handler runs on, to see `cancelled()` and finish
        // within the grace period; its messages still queue, up to the budget.
        if !self.is_reader_behind() || self.is_stop_requested() {
            return false;
        }
        // Registered before the look under the lock: a reader that takes the queue right
        // after it wakes this waker.
        self.task.register(cx.waker());
        let mut mailbox = self.mailbox();
        if mailbox.attached && mailbox.queue.len() >= self.capacity {
            mailbox.driver_held = true;
            return true;
        }
        self.reader_caught_up(&mut mailbox);
        false
    }

    /// Clears the reader-behind mark (under the mailbox lock, like its setting); `true` if
    /// the driver was holding the handler and must be woken.
    fn reader_caught_up(&self, mailbox: &mut Mailbox) -> bool {
        if self.is_reader_behind() {
            self.clear_reader_behind();
        }
        std::mem::take(&mut mailbox.driver_held)
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
        let (unread, wake_writers, wake_driver, outcome, reader) = {
            let mut mailbox = self.mailbox();
            mailbox.attached = false;
            mailbox.bytes = 0;
            if self.idle_stops() && !mailbox.listened() {
                mailbox.extra().unheard_since = Some(Instant::now());
            }
            (
                (!mailbox.queue.is_empty()).then(|| std::mem::take(&mut mailbox.queue)),
                std::mem::take(&mut mailbox.writer_waiting),
                self.reader_caught_up(&mut mailbox),
                mailbox.outcome.clone(),
                // The reader is leaving: its waker is no longer wanted.
                mailbox.waiting_reader.take(),
            )
        };
        if wake_writers {
            self.waiters.notify_waiters();
        }
        if wake_driver {
            self.task.wake();
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
}

/// About how many bytes a message holds, allocations included: its `Value`, and on the
/// heap its strings, its arrays' slots and its maps' tree nodes (serde_json's maps are
/// B-trees, whose every node is allocated whole: about 630 bytes for up to 11 entries).
/// An estimate, cheap for the scalars and small objects most messages are; what the run's
/// message budget is counted in.
#[inline]
pub(crate) fn weight(value: &Value) -> usize {
    // Scalars and strings, most messages, without a call.
    std::mem::size_of::<Value>()
        + match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(text) => text.capacity(),
            containers => heap(containers),
        }
}

/// What `value` holds on the heap, by the same estimate.
fn heap(value: &Value) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    // A B-tree leaf of `String` keys and `Value`s: 11 of each, and its header.
    const MAP_NODE: usize = 16 + 11 * (std::mem::size_of::<String>() + VALUE);
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(text) => text.capacity(),
        Value::Array(items) => items.capacity() * VALUE + items.iter().map(heap).sum::<usize>(),
        Value::Object(map) if map.is_empty() => 0,
        // Nodes are at least half full, so one per 6 entries bounds them.
        Value::Object(map) => {
            map.len().div_ceil(6) * MAP_NODE
                + map
                    .iter()
                    .map(|(key, value)| key.capacity() + heap(value))
                    .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::weight;

    #[test]
    fn weight_counts_what_a_message_allocates() {
        assert_eq!(weight(&json!(7)), 32);
        assert_eq!(weight(&json!(null)), 32);
        assert_eq!(weight(&json!("abc")), 32 + 3);
        assert_eq!(weight(&json!([1, 2])), 32 + 2 * 32);
        // One B-tree node, its key's byte, its value inline.
        assert_eq!(weight(&json!({ "i": 1 })), 32 + 632 + 1);
        let nested = json!({ "a": { "b": "xy" } });
        assert_eq!(weight(&nested), 32 + 632 + 1 + 632 + 1 + 2);
        let many: serde_json::Map<String, serde_json::Value> = (0..12)
            .map(|i| {
                (
                    String::from(["ka", "kb", "kc"][i % 3]) + &i.to_string(),
                    json!(i),
                )
            })
            .collect();
        let keys: usize = many.keys().map(String::capacity).sum();
        assert_eq!(weight(&many.into()), 32 + 2 * 632 + keys);
    }
}
