//! A worker one directory down, using renamed imports: the expansion must not care.

use rustf_workers::prelude::{json, worker as register_worker, Result as WorkerResult};
use rustf_workers::WorkerContext as Ctx;

/// Emits its own module path.
#[register_worker("fixture-daily-report")]
pub async fn daily(ctx: Ctx) -> WorkerResult<()> {
    ctx.emit(json!(module_path!()))?;
    Ok(())
}
