//! The daily report, one directory down.

use std::time::Duration;

use rustf_workers::prelude::*;

/// Builds the report for `payload.day`, emitting its progress.
#[worker("daily-report", timeout = "5s")]
pub async fn daily_report(ctx: WorkerContext) -> Result<()> {
    let day = ctx
        .payload()
        .and_then(|p| p["day"].as_str())
        .ok_or_else(|| Error::validation("`day` is required"))?
        .to_owned();
    for (percent, stage) in [(25, "fetching"), (50, "aggregating"), (75, "rendering"), (100, "done")] {
        ctx.sleep(Duration::from_millis(50)).await;
        ctx.emit(json!({ "day": day, "stage": stage, "percent": percent }))?;
    }
    Ok(())
}
