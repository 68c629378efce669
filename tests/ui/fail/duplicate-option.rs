use rustf_workers::prelude::*;

#[worker("duplicate-option", timeout = "1s", timeout = "2s")]
async fn duplicate_option(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
