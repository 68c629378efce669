//! A scheduled worker: every tick of its cron expression is enqueued once per database.

use rustf_workers::prelude::*;
use rustf_workers::queue::{JobFilter, JobState};

/// Every three seconds (croner takes a sixth field, seconds, first), reports how many
/// welcome emails the queue has sent. `"0 9 * * *"` would be every day at 09:00 UTC.
#[worker("digest", cron = "*/3 * * * * *", timeout = "10s")]
pub async fn digest(ctx: WorkerContext) -> Result<()> {
    let sent = WORKER::registry()
        .jobs(JobFilter {
            states: vec![JobState::Completed],
            worker: Some("send-welcome".to_owned()),
            limit: JobFilter::MAX_LIMIT,
            ..JobFilter::default()
        })
        .await?;
    let more = if sent.next.is_some() { " or more" } else { "" };
    ctx.info(&format!(
        "welcome emails sent: {}{more}",
        sent.jobs.len()
    ));
    Ok(())
}
