use rustf_workers::prelude::*;

#[worker("bad-unit", timeout = "30x")]
async fn bad_unit(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("zero", timeout = "0s")]
async fn zero(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("not-a-string", timeout = 30)]
async fn not_a_string(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
