use rustf_workers::prelude::*;

#[worker("")]
async fn empty(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
