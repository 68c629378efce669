use rustf_workers::prelude::*;

#[worker("too-many")]
async fn too_many(_ctx: WorkerContext, _a: u32, _b: u32) -> Result<()> {
    Ok(())
}

fn main() {}
