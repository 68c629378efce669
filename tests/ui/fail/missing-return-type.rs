use rustf_workers::prelude::*;

#[worker("no-return")]
async fn no_return(_ctx: WorkerContext) {}

fn main() {}
