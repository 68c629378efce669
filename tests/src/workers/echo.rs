//! A typed payload.

use rustf_workers::prelude::*;
use serde::Deserialize;

/// What `fixture-echo` reads.
#[derive(Debug, Deserialize)]
pub struct Echo {
    /// Sent back as is.
    pub text: String,
    /// How many times.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// Emits `text` `times` times.
#[worker("fixture-echo")]
pub async fn echo(ctx: WorkerContext, input: Echo) -> Result<()> {
    for _ in 0..input.times {
        ctx.emit(json!(input.text))?;
    }
    Ok(())
}

/// An optional payload: `None` when the caller passes none.
#[worker("fixture-optional", daemon = false)]
pub async fn optional(ctx: WorkerContext, input: Option<u32>) -> Result<()> {
    ctx.emit(json!(input))?;
    Ok(())
}
