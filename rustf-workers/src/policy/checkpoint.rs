//! Where checkpoints live: behind a small trait, in memory today, so that a durable store
//! can plug in without touching workers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

use crate::Result;

/// The future a [`CheckpointStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Keeps each run's last checkpoint ([`WorkerContext::checkpoint`]), by run id, for as
/// long as the run lives: a retried run or a restarted daemon keeps its id, and starts
/// from [`WorkerContext::get_checkpoint`]. The runtime removes a run's checkpoint when the
/// run ends.
///
/// [`WorkerContext::checkpoint`]: crate::WorkerContext::checkpoint
/// [`WorkerContext::get_checkpoint`]: crate::WorkerContext::get_checkpoint
pub trait CheckpointStore: Send + Sync + 'static {
    /// Replaces the checkpoint of run `run_id` of worker `worker`.
    fn save<'a>(&'a self, worker: &'a str, run_id: &'a str, value: Value) -> StoreFuture<'a, ()>;

    /// The last checkpoint of run `run_id`, if any.
    fn load<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, Option<Value>>;

    /// Forgets the checkpoint of run `run_id`.
    fn remove<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, ()>;
}

/// The default [`CheckpointStore`]: a map in memory, gone with the process.
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    values: Mutex<HashMap<String, Value>>,
}

impl MemoryCheckpoints {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn values(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        // Held for one map operation.
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many runs have a checkpoint.
    pub fn len(&self) -> usize {
        self.values().len()
    }

    /// Whether no run has a checkpoint.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CheckpointStore for MemoryCheckpoints {
    fn save<'a>(&'a self, _worker: &'a str, run_id: &'a str, value: Value) -> StoreFuture<'a, ()> {
        self.values().insert(run_id.to_owned(), value);
        Box::pin(std::future::ready(Ok(())))
    }

    fn load<'a>(&'a self, _worker: &'a str, run_id: &'a str) -> StoreFuture<'a, Option<Value>> {
        let value = self.values().get(run_id).cloned();
        Box::pin(std::future::ready(Ok(value)))
    }

    fn remove<'a>(&'a self, _worker: &'a str, run_id: &'a str) -> StoreFuture<'a, ()> {
        self.values().remove(run_id);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A shared store, so the application can keep a handle on it.
impl<T: CheckpointStore + ?Sized> CheckpointStore for std::sync::Arc<T> {
    fn save<'a>(&'a self, worker: &'a str, run_id: &'a str, value: Value) -> StoreFuture<'a, ()> {
        (**self).save(worker, run_id, value)
    }

    fn load<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, Option<Value>> {
        (**self).load(worker, run_id)
    }

    fn remove<'a>(&'a self, worker: &'a str, run_id: &'a str) -> StoreFuture<'a, ()> {
        (**self).remove(worker, run_id)
    }
}
