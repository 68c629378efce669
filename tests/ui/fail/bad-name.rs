use rustf_workers::prelude::*;

#[worker("Send Email")]
async fn send_email(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("-leading-dash")]
async fn leading(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
