//! Limits on how many runs execute at once, and the queue where calls over a limit wait.
//!
//! Only runs of a definition with a concurrency cap, or every run while a global cap is
//! set, come here; the others never touch this lock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::WorkerOptions;

/// Default bound of the admission queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;

/// Default memory pool shared by runs that declare memory: 256 MiB.
pub const DEFAULT_MEMORY_POOL: u64 = 256 * 1024 * 1024;

/// A place in the queue: priority (highest first), then call order.
type Slot = (Reverse<i32>, u64);

/// What the queue needs of a worker: its options (caps, declared memory) and how many of
/// its limited runs execute now.
pub(crate) trait Capped {
    fn options(&self) -> &WorkerOptions;
    /// Limited runs executing now; changed only under the queue's lock.
    fn executing(&self) -> &AtomicUsize;
}

/// What waits in the queue: a run that is to start when its limits allow. The queue holds
/// it, and hands it back to start, to cancel or to stop at shutdown.
pub(crate) trait Waiter {
    type Worker: Capped;
    fn worker(&self) -> &Arc<Self::Worker>;
    /// The run's key, to find it again for a cancel.
    fn key(&self) -> u128;
    fn id(&self) -> &str;
    /// It has room now and leaves the queue to execute.
    fn admitted(&self);
}

pub(crate) struct Admission<W: Waiter> {
    /// 0: no global cap.
    max_running: AtomicUsize,
    capacity: AtomicUsize,
    memory_pool: AtomicU64,
    state: Mutex<State<W>>,
}

struct State<W: Waiter> {
    /// Limited runs executing now.
    running: usize,
    /// Memory declared by the runs executing now.
    memory: u64,
    /// Waiting runs, one queue per definition (by the definition's address), each
    /// highest priority first, then in call order. Per definition, so that a worker at
    /// its cap never makes another's runs wait behind it.
    queues: HashMap<usize, Waiting<W>>,
    /// Where each waiting run sits, by run key.
    index: HashMap<u128, (usize, Slot)>,
    len: usize,
    next: u64,
}

impl<W: Waiter> Default for State<W> {
    fn default() -> Self {
        Self {
            running: 0,
            memory: 0,
            queues: HashMap::new(),
            index: HashMap::new(),
            len: 0,
            next: 0,
        }
    }
}

struct Waiting<W: Waiter> {
    definition: Arc<W::Worker>,
    runs: BTreeMap<Slot, W>,
}

fn key_of<T>(definition: &Arc<T>) -> usize {
    Arc::as_ptr(definition) as usize
}

/// What `enter` decided.
pub(crate) enum Entry<W> {
    /// Room now: start it.
    Start(W),
    /// Queued: it starts when room is made.
    Queued,
    /// The queue is full: refuse the call.
    Full(W, usize),
}

impl<W: Waiter> Admission<W> {
    pub(crate) fn new() -> Self {
        Self {
            max_running: AtomicUsize::new(0),
            capacity: AtomicUsize::new(DEFAULT_QUEUE_CAPACITY),
            memory_pool: AtomicU64::new(DEFAULT_MEMORY_POOL),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<W>> {
        // Held for queue operations only, never across user code or an await.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_max_running(&self, max: usize) {
        // Relaxed: a setting read at admission; the queue lock orders what matters.
        self.max_running.store(max, Ordering::Relaxed);
    }

    pub(crate) fn max_running(&self) -> usize {
        self.max_running.load(Ordering::Relaxed)
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    pub(crate) fn set_memory_pool(&self, bytes: u64) {
        self.memory_pool.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn memory_pool(&self) -> u64 {
        self.memory_pool.load(Ordering::Relaxed)
    }

    /// How many more runs the registry-wide cap lets start now (`usize::MAX` without a
    /// cap), and how many bytes of the memory pool are free: what the durable queue
    /// claims against.
    pub(crate) fn free(&self) -> (usize, u64) {
        let state = self.state();
        let max = self.max_running();
        let runs = if max == 0 {
            usize::MAX
        } else {
            max.saturating_sub(state.running)
        };
        (runs, self.memory_pool().saturating_sub(state.memory))
    }

    /// Whether runs of `definition` are limited, and so must come through here.
    pub(crate) fn limits(&self, definition: &W::Worker) -> bool {
        let options = definition.options();
        options.concurrency_cap().is_some()
            || options.declared_memory() > 0
            || self.max_running() > 0
    }

    fn has_room(&self, state: &State<W>, definition: &W::Worker) -> bool {
        let max = self.max_running();
        let options = definition.options();
        (max == 0 || state.running < max)
            && state.memory + options.declared_memory() <= self.memory_pool()
            && options
                .concurrency_cap()
                .is_none_or(|cap| definition.executing().load(Ordering::Relaxed) < cap)
    }

    /// Starts the run if its limits allow, else queues it by priority.
    pub(crate) fn enter(&self, waiting: W, priority: i32) -> Entry<W> {
        let definition = Arc::clone(waiting.worker());
        let mut state = self.state();
        if self.has_room(&state, &definition) {
            state.running += 1;
            state.memory += definition.options().declared_memory();
            // Relaxed: only ever changed under the queue lock.
            definition.executing().fetch_add(1, Ordering::Relaxed);
            waiting.admitted();
            return Entry::Start(waiting);
        }
        let capacity = self.capacity.load(Ordering::Relaxed);
        if state.len >= capacity {
            return Entry::Full(waiting, capacity);
        }
        let slot = (Reverse(priority), state.next);
        state.next += 1;
        state.len += 1;
        let key = key_of(&definition);
        state.index.insert(waiting.key(), (key, slot));
        state
            .queues
            .entry(key)
            .or_insert_with(|| Waiting {
                definition,
                runs: BTreeMap::new(),
            })
            .runs
            .insert(slot, waiting);
        Entry::Queued
    }

    /// A limited run of `definition` ended: the runs that now fit leave the queue, best
    /// first, to be started by the caller.
    pub(crate) fn leave(&self, definition: &W::Worker) -> Vec<W> {
        let mut state = self.state();
        state.running -= 1;
        state.memory -= definition.options().declared_memory();
        // Relaxed: only ever changed under the queue lock.
        definition.executing().fetch_sub(1, Ordering::Relaxed);
        let mut started = Vec::new();
        while let Some(key) = self.best_fit(&state) {
            let queue = state.queues.get_mut(&key).expect("best_fit names a queue");
            let Some((_, guard)) = queue.runs.pop_first() else {
                break;
            };
            let def = Arc::clone(&queue.definition);
            if queue.runs.is_empty() {
                state.queues.remove(&key);
            }
            state.index.remove(&guard.key());
            state.len -= 1;
            state.running += 1;
            state.memory += def.options().declared_memory();
            def.executing().fetch_add(1, Ordering::Relaxed);
            guard.admitted();
            started.push(guard);
        }
        started
    }

    /// The queue whose first run has room now and comes first, if any.
    fn best_fit(&self, state: &State<W>) -> Option<usize> {
        state
            .queues
            .iter()
            .filter(|(_, queue)| self.has_room(state, &queue.definition))
            .filter_map(|(key, queue)| Some((queue.runs.first_key_value()?.0, *key)))
            .min()
            .map(|(_, key)| key)
    }

    /// Takes a waiting run out of the queue, if it is still there.
    pub(crate) fn remove(&self, key: u128) -> Option<W> {
        let mut state = self.state();
        let (queue_key, slot) = state.index.remove(&key)?;
        let queue = state.queues.get_mut(&queue_key)?;
        let guard = queue.runs.remove(&slot)?;
        if queue.runs.is_empty() {
            state.queues.remove(&queue_key);
        }
        state.len -= 1;
        Some(guard)
    }

    /// Ids of the waiting runs, in the order they would start with room for all.
    pub(crate) fn queued_ids(&self) -> Vec<String> {
        let state = self.state();
        let mut all: Vec<(Slot, String)> = state
            .queues
            .values()
            .flat_map(|queue| {
                queue
                    .runs
                    .iter()
                    .map(|(slot, guard)| (*slot, guard.id().to_owned()))
            })
            .collect();
        all.sort();
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// Empties the queue (shutdown).
    pub(crate) fn drain(&self) -> Vec<W> {
        let mut state = self.state();
        state.index.clear();
        state.len = 0;
        std::mem::take(&mut state.queues)
            .into_values()
            .flat_map(|queue| queue.runs.into_values())
            .collect()
    }
}
