//! The welcome email a signup enqueues, sent by whichever node claims it.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustf_workers::prelude::*;
use serde::Deserialize;

/// The payload of `send-welcome`.
#[derive(Debug, Deserialize)]
pub struct Welcome {
    /// The new user's address.
    pub email: String,
    /// How long the mail provider takes to accept it, in ms (100 by default).
    #[serde(default)]
    pub work_ms: Option<u64>,
}

/// Welcome emails this process has sent.
static SENT: AtomicUsize = AtomicUsize::new(0);

/// How many welcome emails this process has sent.
pub fn sent() -> usize {
    // Read once the queue has shut down, after every run ended: nothing to order with.
    SENT.load(Ordering::Relaxed)
}

/// Sends the welcome email (here: pretends to, for `work_ms`), then saves the checkpoint
/// `{"sent_by": <node>, "node_id": <its id in the store>}` with the job.
///
/// The checkpoint is what a later attempt reads first: when the node that sent the email
/// died before the job's outcome was stored, the node that runs the job again finds it
/// and does not send a second email. It is also how the demo tells which node sent what:
/// a finished job keeps its checkpoint, but not its owner.
///
/// With `CLUSTER_LOG` set, it appends `<job> <node> <attempt>` to that file as it sends:
/// what the end-to-end test counts.
#[worker("send-welcome", timeout = "1m")]
pub async fn send_welcome(ctx: WorkerContext, welcome: Welcome) -> Result<()> {
    if let Some(sent_by) = ctx.get_checkpoint().await?.and_then(|c| c["sent_by"].as_str().map(str::to_owned)) {
        ctx.info(&format!("{} was already welcomed by node {sent_by}", welcome.email));
        return Ok(());
    }
    let node = crate::node_name();
    record(&format!("{} {node} {}", ctx.run_id(), ctx.attempt()))?;
    ctx.sleep(Duration::from_millis(welcome.work_ms.unwrap_or(100)))
        .await;
    // Counted for the summary the node prints at exit, read after every run has ended.
    SENT.fetch_add(1, Ordering::Relaxed);
    ctx.debug(&format!("welcome email sent to {}", welcome.email));
    ctx.checkpoint(json!({
        "sent_by": node,
        "node_id": WORKER::registry().node_id(),
    }))
    .await
}

/// Appends `line` to `CLUSTER_LOG`, if set.
fn record(line: &str) -> Result<()> {
    let Some(path) = std::env::var_os("CLUSTER_LOG") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write of the whole line, in append mode: lines from the two nodes never
    // interleave.
    file.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}
