//! Execution policies: what a worker or a call asks for (options), the stores behind
//! checkpoints and idempotency keys, and the admission queue that enforces caps.

pub(crate) mod admission;
pub(crate) mod call_options;
pub(crate) mod checkpoint;
pub(crate) mod idempotency;
pub(crate) mod job_options;
pub(crate) mod options;
