//! The expansion is clean in a strict crate.
#![deny(warnings, missing_docs, clippy::pedantic)]

use rustf_workers::prelude::*;
use serde::Deserialize;

/// A typed payload.
#[derive(Deserialize)]
pub struct Greeting {
    /// Who to greet.
    pub name: String,
}

/// Greets, with a timeout.
#[worker("strict-greet", timeout = "5s")]
pub async fn greet(ctx: WorkerContext, input: Greeting) -> Result<()> {
    ctx.emit(json!(format!("hello, {}", input.name)))?;
    Ok(())
}

/// Runs nightly at 03:00 UTC.
#[worker("strict-nightly", cron = "0 3 * * *", timeout = "1m")]
pub async fn nightly(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

/// Does nothing, privately.
#[worker("strict-private")]
async fn private(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut handle = WORKER::call("strict-greet", None, Some(json!({ "name": "Ada" }))).await?;
    assert_eq!(handle.recv().await, Some(json!("hello, Ada")));
    handle.await_result().await?;
    WORKER::run("strict-private", None).await?;
    WORKER::run("strict-nightly", None).await?;
    // The function is still an ordinary function.
    let _ = private;
    Ok(())
}
