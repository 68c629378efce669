use rustf_workers::prelude::*;

#[worker]
async fn nameless(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
