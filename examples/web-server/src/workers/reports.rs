//! Report generation, streaming its progress, and a long export.

use std::time::Duration;

use rustf_workers::prelude::*;

/// Builds a report in `steps` steps (default 5), emitting progress after each.
#[worker("generate-report", timeout = "5m")]
pub async fn generate_report(ctx: WorkerContext) -> Result<()> {
    let steps = ctx.payload().and_then(|p| p["steps"].as_u64()).unwrap_or(5);
    if steps == 0 || steps > 100 {
        return Err(Error::validation("`steps` must be between 1 and 100"));
    }
    for step in 1..=steps {
        ctx.sleep(Duration::from_millis(20)).await;
        ctx.emit(json!({ "step": step, "of": steps, "percent": step * 100 / steps }))?;
    }
    Ok(())
}

/// An export that takes an hour and does not stop on request: shutdown cancels it when
/// the grace period ends.
#[worker("export")]
pub async fn export(ctx: WorkerContext) -> Result<()> {
    ctx.emit(json!({ "status": "exporting" }))?;
    ctx.sleep(Duration::from_secs(3600)).await;
    Ok(())
}
