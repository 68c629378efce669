use rustf_workers::prelude::*;

// A misspelt option: the error lists every option the attribute takes.
#[worker("unknown-option", retry = 3)]
async fn unknown_option(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
