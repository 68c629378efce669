//! `use rustf_workers::prelude::*;` brings what a worker file and a controller need.

pub use crate::{
    worker, AppConfig, Error, Result, WorkerContext, WorkerHandle, WorkerStats, WORKER,
};
pub use serde_json::{json, Value};
