use rustf_workers::prelude::*;

#[worker("generic")]
async fn generic<T: Default>(_ctx: WorkerContext) -> Result<()> {
    let _ = T::default();
    Ok(())
}

fn main() {}
