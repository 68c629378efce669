use rustf_workers::prelude::*;

#[worker("unknown-option", retries = "3")]
async fn unknown_option(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
