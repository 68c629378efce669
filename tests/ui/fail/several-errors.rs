use rustf_workers::prelude::*;

// Every problem is reported in one build, and callers of the function still compile.
#[worker("Bad Name", colour = "blue", timeout = "soon")]
fn several<T>(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {
    let _ = several::<u8>;
}
