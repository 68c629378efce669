//! The welcome email a signup enqueues.

use std::io::Write;
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

/// Sends the welcome email (here: pretends to, for `work_ms`).
///
/// With `JOBS_LOG` set, it appends `start <job> <attempt>` before and `done <job>` after
/// to that file: what the crash test counts.
#[worker("send-welcome", timeout = "1m")]
pub async fn send_welcome(ctx: WorkerContext, welcome: Welcome) -> Result<()> {
    if !welcome.email.contains('@') {
        // A validation error is never retried: the job is discarded at once.
        return Err(Error::validation(format!(
            "`{}` is not an email address",
            welcome.email
        )));
    }
    record(&format!("start {} {}", ctx.run_id(), ctx.attempt()))?;
    ctx.sleep(Duration::from_millis(welcome.work_ms.unwrap_or(100)))
        .await;
    ctx.info(&format!("welcome email sent to {}", welcome.email));
    record(&format!("done {}", ctx.run_id()))
}

/// Appends `line` to `JOBS_LOG`, if set.
fn record(line: &str) -> Result<()> {
    let Some(path) = std::env::var_os("JOBS_LOG") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write of the whole line, in append mode: lines from two processes never
    // interleave.
    file.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}
