use std::rc::Rc;

use rustf_workers::prelude::*;

#[worker("not-send")]
async fn not_send(ctx: WorkerContext) -> Result<()> {
    let shared = Rc::new(1);
    ctx.sleep(std::time::Duration::from_millis(1)).await;
    println!("{shared}");
    Ok(())
}

fn main() {}
