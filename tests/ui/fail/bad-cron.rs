use rustf_workers::prelude::*;

// The shape is checked at compile time; the fields themselves at registration.
#[worker("too-few-fields", cron = "0 3 * *")]
async fn too_few_fields(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("empty", cron = "")]
async fn empty(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("not-a-string", cron = 3)]
async fn not_a_string(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[worker("twice", cron = "@daily", cron = "@hourly")]
async fn twice(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

fn main() {}
