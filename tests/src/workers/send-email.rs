//! A file name with a `-`, and a worker with a default timeout and a concurrency cap.

use std::time::Duration;

use rustf_workers::prelude::*;

/// Sleeps for the payload's milliseconds; times out after 50 ms.
#[worker("fixture-send-email", timeout = "50ms", concurrency = 3, retries = 2)]
pub async fn send_email(ctx: WorkerContext) -> Result<()> {
    let ms = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
    ctx.sleep(Duration::from_millis(ms)).await;
    Ok(())
}
