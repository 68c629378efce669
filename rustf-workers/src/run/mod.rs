//! The run engine: whoever starts a run (a call in this process, later a stored job), it
//! is driven here to exactly one terminal outcome, counted once, and unlisted.
//!
//! - `shared`: the state one run shares between its task, its context and its handle,
//!   with its stop signals and message mailbox.
//! - `launch`: where every run begins, whatever its source: admitted, listed, started.
//! - `definition`: a registered worker as the engine runs it (handler, options, counters).
//! - `driver`: the run's task (handler raced against cancel and timeout, panics caught),
//!   and the guard that turns an attempt's end into a retry or the terminal outcome.
//! - `live`: the table of live runs and the records of ended ones.
//! - `mailbox`: a run's messages, from its context to its handle and watchers.
//! - `context`, `handle`, `subscription`: what the worker, the caller and watchers hold.
//! - `state`, `outcome`, `history`, `info`, `progress`, `stats`: what is reported.

pub(crate) mod context;
pub(crate) mod definition;
pub(crate) mod driver;
pub(crate) mod handle;
pub(crate) mod history;
pub(crate) mod info;
pub(crate) mod launch;
pub(crate) mod live;
mod mailbox;
pub(crate) mod outcome;
pub(crate) mod progress;
pub(crate) mod shared;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod subscription;

pub(crate) use shared::{Run, RunKeys, RunSettings, RunSink};
