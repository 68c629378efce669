//! Procedural macros for `rustf-workers`. Use them through `rustf_workers`, which
//! re-exports them; this crate is not meant to be a direct dependency.
