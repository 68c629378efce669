//! What a store tells every process sharing it, as it happens: PostgreSQL's
//! `LISTEN`/`NOTIFY`, so that nodes wake at once, cancels reach a job's owner at once, and
//! a handle follows a job that runs on another machine.

use serde_json::Value;
use tokio::sync::mpsc;

/// Something that happened in a [`JobStore`](super::JobStore), told to every process
/// subscribed to it ([`JobStore::subscribe`](super::JobStore::subscribe)).
///
/// Events are hints that save a poll, never the record: a process that misses one (a
/// lost connection, [`StoreEvent::Resumed`]) finds the same facts in the store at its
/// next poll or heartbeat.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// Jobs of `worker` became available: stored, handed back, rescued or retried. At
    /// most one per worker per transaction, however many jobs it stored.
    Available {
        /// The worker whose jobs can be claimed now.
        worker: String,
    },
    /// Running job `id` was asked to cancel ([`JobStore::cancel`](super::JobStore::cancel));
    /// its owner stops it.
    CancelRequested {
        /// The node that runs it.
        owner: String,
        /// The job.
        id: String,
    },
    /// A process holds a handle to job `id` that runs elsewhere, and wants its messages:
    /// the process running it publishes them from now on, as [`StoreEvent::Messages`].
    Follow {
        /// The job followed.
        id: String,
    },
    /// Messages running job `id` emitted, in the order it emitted them.
    Messages {
        /// The job.
        id: String,
        /// The messages, as the job's own handle would have received them.
        messages: Vec<Value>,
    },
    /// Followed job `id` has ended and its outcome is stored: read it now.
    Ended {
        /// The job.
        id: String,
    },
    /// The subscription was interrupted (its connection was lost) and is back: events
    /// of the meantime are lost, so look at the store again.
    Resumed,
}

/// The events of a store, as [`JobStore::subscribe`](super::JobStore::subscribe) hands
/// them out, in order. Dropping it ends the subscription (and closes its connection).
pub type StoreEvents = mpsc::UnboundedReceiver<StoreEvent>;
