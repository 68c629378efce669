use rustf_workers::prelude::*;

struct Plain {
    _to: String,
}

#[worker("plain-payload")]
async fn plain_payload(_ctx: WorkerContext, _input: Plain) -> Result<()> {
    Ok(())
}

fn main() {}
