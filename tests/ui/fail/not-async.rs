use rustf_workers::prelude::*;

#[worker("sync")]
fn sync(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
