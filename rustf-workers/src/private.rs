//! Not public API. Used by generated code.

pub use std::boxed::Box;

pub use inventory;
pub use serde;

pub use crate::registry::linked::{BoxFuture, Registration};
pub use crate::run::definition::PayloadCheck;
pub use crate::{Installer, Result, WorkerContext, WorkerOptions};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// How a typed `#[worker]` reads its payload: `check` at call time, so a bad payload is
/// refused before a run exists, and `read` in the run. Made by one generic function, so
/// a payload type that is not `Deserialize` is reported once.
pub struct PayloadFns<T> {
    /// Reads and discards.
    pub check: PayloadCheck,
    /// Reads.
    pub read: fn(&str, Option<&Value>) -> Result<T>,
}

/// The payload functions for `T`.
pub const fn payload_fns<T: DeserializeOwned>() -> PayloadFns<T> {
    PayloadFns {
        check: check::<T>,
        read: read::<T>,
    }
}

fn check<T: DeserializeOwned>(worker: &str, payload: Option<&Value>) -> Result<()> {
    read::<T>(worker, payload).map(drop)
}

/// A missing payload reads as JSON `null`, so `Option<T>` and `()` accept it. The error
/// is [`Error::Validation`] naming the worker and serde's message.
fn read<T: DeserializeOwned>(worker: &str, payload: Option<&Value>) -> Result<T> {
    T::deserialize(payload.unwrap_or(&Value::Null)).map_err(|err| {
        Error::validation(format!("worker '{worker}' cannot read its payload: {err}"))
    })
}
