//! A daemon that survives restarts: one stored job per database, which counts and
//! resumes from its checkpoint.

use std::time::Duration;

use rustf_workers::prelude::*;

/// The unique key of the one `counter` job: enqueueing it again, from this process or
/// after a restart, returns the job that holds it.
pub const UNIQUE_KEY: &str = "counter";

/// How often it counts, and saves its checkpoint.
const EVERY: Duration = Duration::from_millis(250);

/// Counts for as long as the application runs, saving `{"count", "resumed_from"}` as its
/// checkpoint after each step; a later run of the same job (after a shutdown handed it
/// back, or a crash) reads it back and carries on.
///
/// As a stored daemon it runs until it returns: when shutdown asks it to stop, it returns
/// at once, and its job is handed back to the queue, available again with its checkpoint
/// kept, rather than completed. After a crash, its lease runs out and the next process
/// resumes it the same way.
#[worker("counter", daemon = true)]
pub async fn counter(ctx: WorkerContext) -> Result<()> {
    let resumed_from = ctx
        .get_checkpoint()
        .await?
        .and_then(|checkpoint| checkpoint["count"].as_u64());
    match resumed_from {
        Some(count) => ctx.info(&format!("resuming from checkpoint {count}")),
        None => ctx.info("starting from 0"),
    }
    let mut count = resumed_from.unwrap_or(0);
    loop {
        tokio::select! {
            () = ctx.cancelled() => return Ok(()),
            () = ctx.sleep(EVERY) => {}
        }
        count += 1;
        ctx.checkpoint(json!({ "count": count, "resumed_from": resumed_from }))
            .await?;
    }
}
