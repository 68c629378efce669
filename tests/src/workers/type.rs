//! A file name that is a keyword, and the first of two functions claiming one name.

use rustf_workers::prelude::*;

/// Claims `fixture-duplicate`, as does `duplicate::second`.
#[worker("fixture-duplicate")]
pub async fn first(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}
