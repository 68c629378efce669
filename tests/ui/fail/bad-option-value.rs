use rustf_workers::prelude::*;

#[worker("zero", concurrency = 0)]
async fn zero(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("text", concurrency = "4")]
async fn text(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}


#[worker("negative-retries", retries = -1)]
async fn negative_retries(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("maybe-daemon", daemon = "yes")]
async fn maybe_daemon(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("huge", memory = "lots")]
async fn huge(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("bare-memory", memory = 64)]
async fn bare_memory(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("bare-idle", idle_timeout = 300)]
async fn bare_idle(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
