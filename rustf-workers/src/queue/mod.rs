//! The durable queue's storage: jobs that survive a restart.
//!
//! [`JobStore`] is the seam between the run engine and a database, with the data it
//! speaks ([`NewJob`], [`ClaimedJob`], [`Finish`], [`JobRecord`], ...). One implementation
//! per database sits beside it, each behind a cargo feature, all held to one conformance
//! suite:
//!
//! - `SqliteQueue` (feature `sqlite`): one file on one machine, shared by the processes
//!   on it (a web process enqueues, a worker process runs jobs).
//! - `PostgresQueue` (feature `postgres`): one PostgreSQL database, shared by processes
//!   on many machines.
//!
//! With feature `cron` (enabled by `sqlite` and `postgres`), `CronSchedule` and `enqueue_due` enqueue
//! a worker's cron ticks, each exactly once across the processes sharing a store.
//!
//! A job lives through the states of [`JobState`]: it is enqueued, claimed under a lease
//! with an epoch, and leaves the store only through a recorded outcome, so whatever
//! process dies when, an enqueued job is either still stored or has its outcome.
#![cfg_attr(feature = "sqlite", doc = "\n\nSee [`SqliteQueue`] for an example.")]

mod clock;
#[cfg(feature = "cron")]
mod cron;
mod events;
mod follow;
mod job;
mod node;
mod options;
mod runner;
mod sink;
mod state;
mod store;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "cron")]
pub use cron::{enqueue_due, next_wake, CronSchedule, MissedTicks, CRON_GRACE_MS};
pub use events::{StoreEvent, StoreEvents};
pub use job::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Enqueued, Finish, FinishOutcome,
    JobCount, JobError, JobFilter, JobPage, JobRecord, JobsChanged, NewJob, DEFAULT_QUEUE,
};
pub use node::{NewNode, NodeBeat, NodeRecord, NodeStatus};
pub use options::QueueOptions;
pub(crate) use runner::{Called, Runner};
pub(crate) use sink::StoredJobSink;
pub use state::JobState;
pub use store::{JobStore, LOST_ATTEMPTS_ALLOWED};

#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresQueue};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteQueue};
