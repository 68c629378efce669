//! The registry's settings: what runs see, limits, buffers, grace, and the stores behind
//! the policies.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::WorkerRegistry;
use crate::{AppConfig, CheckpointStore, Error, IdempotencyStore, Result};

impl WorkerRegistry {
    /// Replaces the settings workers read through [`WorkerContext::config`](crate::WorkerContext::config). Runs that
    /// start afterwards see the new value; running ones keep theirs.
    pub fn set_config(&self, config: AppConfig) {
        let config = Arc::new(config);
        self.update_catalog(|catalog| catalog.config = config);
    }

    /// The settings new runs will get.
    pub fn config(&self) -> Arc<AppConfig> {
        Arc::clone(&self.inner.catalog.load().config)
    }

    /// Lets at most `max` runs execute at once over every worker; `0` (the default) is no
    /// cap. Calls over it wait in the admission queue, as for a worker's own concurrency
    /// cap. Applies to runs called afterwards.
    pub fn set_max_running(&self, max: usize) {
        self.inner.live.admission.set_max_running(max);
    }

    /// Sets the memory pool shared by runs of workers that declare memory
    /// ([`WorkerOptions::memory`](crate::WorkerOptions::memory)). Default: [`DEFAULT_MEMORY_POOL`](crate::DEFAULT_MEMORY_POOL).
    pub fn set_memory_pool(&self, bytes: u64) {
        self.inner.live.admission.set_memory_pool(bytes);
    }

    /// Bounds the admission queue: a call that would wait when `capacity` calls already
    /// wait gets [`Error::QueueFull`]. Default: [`DEFAULT_QUEUE_CAPACITY`](crate::DEFAULT_QUEUE_CAPACITY).
    pub fn set_queue_capacity(&self, capacity: usize) {
        self.inner.live.admission.set_capacity(capacity);
    }

    /// Keeps each run's last message, for [`live_runs`](Self::live_runs) and the HTTP
    /// endpoints (which turn it on). Off by default: it costs a copy of every message.
    /// Applies to runs started afterwards.
    pub fn keep_last_messages(&self, keep: bool) {
        // Relaxed: read once per run at admission; no other data depends on it.
        self.inner.keep_last.store(keep, Ordering::Relaxed);
    }

    /// Sets how long [`shutdown`](Self::shutdown) lets running workers finish on their own
    /// before cancelling them. Default: [`DEFAULT_SHUTDOWN_GRACE`](crate::DEFAULT_SHUTDOWN_GRACE).
    pub fn set_shutdown_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        // Relaxed: a setting read once per shutdown; no other data depends on it.
        self.inner.grace_ms.store(ms, Ordering::Relaxed);
    }

    /// The current shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.inner.grace_ms.load(Ordering::Relaxed))
    }

    /// Sets the soft mark of a run's mailbox: once `capacity` messages are unread by its
    /// handle, the run's handler is not polled again (it is held at its next `.await`)
    /// until the reader takes them, and `emit_wait` waits for room. `emit` itself still
    /// queues, within the byte budget ([`set_message_budget`](Self::set_message_budget)),
    /// so a worker that emits in a loop never fails because its reader was scheduled a
    /// little late. Applies to runs started afterwards. Default:
    /// [`DEFAULT_MESSAGE_CAPACITY`](crate::DEFAULT_MESSAGE_CAPACITY).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a capacity of zero.
    pub fn set_message_capacity(&self, capacity: usize) -> Result<()> {
        if capacity == 0 {
            return Err(Error::validation("message capacity must be at least 1"));
        }
        // Relaxed: read once per run at admission; no other data depends on it.
        self.inner
            .message_capacity
            .store(capacity, Ordering::Relaxed);
        Ok(())
    }

    /// Sets how many bytes of unread messages a run may hold for its handle: past it,
    /// `emit` returns [`Error::MessageBufferFull`] and queues nothing, and `emit_wait`
    /// waits. Only a worker that emits without ever awaiting, while its handle reads
    /// nothing, gets there: one that awaits is held at the soft mark
    /// ([`set_message_capacity`](Self::set_message_capacity)). Bytes are estimated from
    /// what a message allocates: a `serde_json::Value` is 32 bytes, plus its strings, its
    /// arrays' slots, and about 630 bytes per object node (serde_json's objects are
    /// B-trees of up to 11 entries a node): the default holds two million numbers, or
    /// about 100,000 one-field objects. A message larger than the whole budget still
    /// goes through when nothing is unread. Runs nobody reads keep nothing, whatever the
    /// budget. Applies to runs started afterwards. Default: [`DEFAULT_MESSAGE_BUDGET`](crate::DEFAULT_MESSAGE_BUDGET).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a budget of zero.
    pub fn set_message_budget(&self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::validation("message budget must be at least 1 byte"));
        }
        // Relaxed: read once per run at admission; no other data depends on it.
        self.inner.message_budget.store(bytes, Ordering::Relaxed);
        Ok(())
    }
}

/// Stores behind the policies.
impl WorkerRegistry {
    /// Replaces where runs keep their checkpoints (in memory by default). Runs already
    /// holding checkpoints in the old store lose them.
    pub fn set_checkpoint_store(&self, store: impl CheckpointStore) {
        self.inner.live.checkpoints.store(Arc::new(Box::new(store)));
    }

    /// Replaces where successful runs with an idempotency key are remembered (in memory
    /// by default).
    pub fn set_idempotency_store(&self, store: impl IdempotencyStore) {
        self.inner.live.idempotency.store(Arc::new(Box::new(store)));
    }
}
