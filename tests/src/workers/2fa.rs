//! A file name starting with a digit.

use rustf_workers::prelude::*;

/// Does nothing.
#[worker("fixture-2fa", memory = "1KB")]
pub async fn two_factor(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}
