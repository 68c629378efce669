use rustf_workers::prelude::*;

#[worker(42)]
async fn numbered(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
