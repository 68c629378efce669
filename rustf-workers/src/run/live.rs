//! The registry's live runs, sharded so concurrent calls rarely share a lock, and its
//! admission phase.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use arc_swap::ArcSwap;

use crate::padded::Padded;
use crate::policy::admission::Admission;
use crate::run::driver::RunGuard;
use crate::run::history::{Ended, EndedRing, Retention};
use crate::run::Run;
use crate::{CheckpointStore, IdempotencyStore, MemoryCheckpoints, MemoryIdempotency};

const SHARDS: usize = 32;

/// Whether the registry admits new runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Open = 0,
    /// Shutdown started: no new runs; running ones were asked to stop.
    Stopping = 1,
    /// The grace period is over: running ones are being cancelled.
    Aborting = 2,
}

/// Live runs by key, and the admission phase. Shared by the registry and each of its
/// definitions, so a finishing run reaches it without going through the registry. Each
/// shard's lock is held for one map operation, never across an await or user code.
pub(crate) struct LiveRuns {
    shards: [Padded<Mutex<Shard>>; SHARDS],
    phase: AtomicU8,
    /// Wakes `shutdown` when a run settles.
    idle: Notify,
    /// Concurrency caps and the queue of calls waiting for room.
    pub(crate) admission: Admission<RunGuard>,
    /// Where runs keep their checkpoints.
    pub(crate) checkpoints: ArcSwap<Box<dyn CheckpointStore>>,
    /// Where successful runs with an idempotency key are remembered.
    pub(crate) idempotency: ArcSwap<Box<dyn IdempotencyStore>>,
    /// How long and how many ended runs each shard remembers.
    retention: Retention,
    /// Live runs by worker and unique key.
    pub(crate) unique: Mutex<UniqueRuns>,
}

/// Live runs, and the runs that ended here lately: a run moves from one to the other
/// under one lock.
#[derive(Default)]
struct Shard {
    live: Slots,
    ended: EndedRing,
}

/// A shard's live runs: a slab in which each run knows its slot, so listing and unlisting
/// a run are a push and a take, with no hashing. Finding a run by id scans the shard's keys,
/// kept beside the runs so the scan reads one array: ids are looked up by cancel and the
/// listings, not by calls.
#[derive(Default)]
struct Slots {
    runs: Vec<Option<(u128, Arc<Run>)>>,
    /// Empty slots, reused first.
    free: Vec<u32>,
}

impl Slots {
    fn insert(&mut self, run: Arc<Run>) {
        let index = match self.free.pop() {
            Some(index) => index as usize,
            None => {
                self.runs.push(None);
                self.runs.len() - 1
            }
        };
        run.set_slot(u32::try_from(index).expect("fewer than 2^32 live runs per shard"));
        self.runs[index] = Some((run.key, run));
    }

    fn remove(&mut self, run: &Run) -> Option<Arc<Run>> {
        let index = run.slot() as usize;
        let slot = self.runs.get_mut(index)?;
        if !slot
            .as_ref()
            .is_some_and(|(_, live)| std::ptr::eq(&**live, run))
        {
            return None;
        }
        self.free.push(run.slot());
        slot.take().map(|(_, run)| run)
    }

    fn get(&self, key: u128) -> Option<&Arc<Run>> {
        self.runs
            .iter()
            .flatten()
            .find(|(live, _)| *live == key)
            .map(|(_, run)| run)
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Run>> {
        self.runs.iter().flatten().map(|(_, run)| run)
    }
}

/// A worker's name and a unique key given by calls.
pub(crate) type UniqueKey = (Box<str>, Box<str>);

/// Live runs by their worker and unique key.
pub(crate) type UniqueRuns = HashMap<UniqueKey, Arc<Run>>;

impl LiveRuns {
    pub(crate) fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Padded(Mutex::new(Shard::default()))),
            phase: AtomicU8::new(Phase::Open as u8),
            idle: Notify::new(),
            admission: Admission::new(),
            checkpoints: ArcSwap::from_pointee(Box::new(MemoryCheckpoints::new())),
            idempotency: ArcSwap::from_pointee(Box::new(MemoryIdempotency::new())),
            unique: Mutex::new(HashMap::new()),
            retention: Retention::new(SHARDS),
        }
    }

    /// SeqCst: see `Counters::admit`.
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Open,
            1 => Phase::Stopping,
            _ => Phase::Aborting,
        }
    }

    /// Moves to `phase` unless already there or past it; `true` if this call moved it.
    pub(crate) fn advance(&self, phase: Phase) -> bool {
        self.phase.fetch_max(phase as u8, Ordering::SeqCst) < phase as u8
    }

    /// A run settled, or an admission was taken back: wake `shutdown` if it waits.
    pub(crate) fn settled(&self) {
        if self.phase() != Phase::Open {
            self.idle.notify_waiters();
        }
    }

    /// Waits until `in_flight` returns 0, re-checking each time a run settles.
    pub(crate) async fn wait_idle(&self, in_flight: impl Fn() -> u64) {
        loop {
            let mut idle = std::pin::pin!(self.idle.notified());
            idle.as_mut().enable();
            if in_flight() == 0 {
                return;
            }
            idle.await;
        }
    }

    fn shard(&self, key: u128) -> MutexGuard<'_, Shard> {
        // Run keys are random uuids: the high bits pick the shard.
        lock(&self.shards[(key >> 96) as usize % SHARDS])
    }

    pub(crate) fn insert(&self, run: Arc<Run>) {
        self.shard(run.key).live.insert(run);
    }

    /// Unlists a run that never started (refused by a full queue).
    pub(crate) fn remove(&self, run: &Run) {
        let removed = self.shard(run.key).live.remove(run);
        // Dropped outside the lock: it may be the last reference to the run.
        drop(removed);
    }

    /// Unlists a run that has ended and remembers it, under one lock.
    pub(crate) fn end(&self, run: &Run, ended: Ended) {
        let (_, max) = self.retention.get();
        let (removed, forgotten) = {
            let mut shard = self.shard(run.key);
            let removed = shard.live.remove(run);
            let forgotten = shard.ended.push(ended, max);
            (removed, forgotten)
        };
        drop(forgotten);
        // Dropped outside the lock: it may be the last reference to the run.
        drop(removed);
    }

    pub(crate) fn get(&self, key: u128) -> Option<Arc<Run>> {
        self.shard(key).live.get(key).cloned()
    }

    /// `read` of what is remembered of the ended run `key`, if it still is.
    pub(crate) fn ended<T>(&self, key: u128, read: impl FnOnce(&Ended) -> T) -> Option<T> {
        let (retention, _) = self.retention.get();
        self.shard(key).ended.find(key, retention).map(read)
    }

    /// Sets how long and how many ended runs are remembered; `None` forgets them all.
    pub(crate) fn keep_ended(&self, keep: Option<(std::time::Duration, usize)>) {
        self.retention.set(keep, SHARDS);
        if self.retention.get().1 == 0 {
            for shard in &self.shards {
                lock(shard).ended.clear();
            }
        }
    }

    /// Every live run, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Run>> {
        let mut runs: Vec<Arc<Run>> = self
            .shards
            .iter()
            .flat_map(|shard| lock(shard).live.values().cloned().collect::<Vec<_>>())
            .collect();
        runs.sort_by(|a, b| a.started.cmp(&b.started).then_with(|| a.id().cmp(b.id())));
        runs
    }
}

fn lock(shard: &Padded<Mutex<Shard>>) -> MutexGuard<'_, Shard> {
    // Never held across user code, so a poisoned shard is still consistent.
    shard.0.lock().unwrap_or_else(|e| e.into_inner())
}
