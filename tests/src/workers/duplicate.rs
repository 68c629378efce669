//! The second function claiming `fixture-duplicate`.

use rustf_workers::prelude::*;

/// Claims `fixture-duplicate`, as does `type::first`.
#[worker("fixture-duplicate")]
pub async fn second(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}
