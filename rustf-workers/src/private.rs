//! Not public API. Used by generated code.

pub use std::boxed::Box;

pub use inventory;
pub use serde;

pub use crate::linked::{BoxFuture, Registration};
pub use crate::{Installer, Result, WorkerContext, WorkerOptions};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// Reads a typed payload; a missing payload reads as JSON `null`, so `Option<T>` and
/// `()` accept it.
///
/// # Errors
///
/// [`Error::Validation`] naming the worker and serde's message.
pub fn payload<T: DeserializeOwned>(ctx: &WorkerContext) -> Result<T> {
    T::deserialize(ctx.payload().unwrap_or(&Value::Null)).map_err(|err| {
        Error::validation(format!(
            "worker '{}' cannot read its payload: {err}",
            ctx.worker_name()
        ))
    })
}
