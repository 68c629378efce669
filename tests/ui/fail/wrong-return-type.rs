use rustf_workers::prelude::*;

#[worker("io-result")]
async fn io_result(_ctx: WorkerContext) -> std::io::Result<()> {
    Ok(())
}

fn main() {}
