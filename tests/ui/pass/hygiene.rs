//! Generated code does not depend on what the user imported, renamed or shadowed.

use rustf_workers as rw;

// Shadow everything the expansion might reach for without a leading `::`.
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
mod inventory {}
#[allow(dead_code)]
mod __private {}
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
type Result = ();
#[allow(dead_code)]
struct WorkerContext;

#[rw::worker("hygienic")]
async fn hygienic(ctx: rw::WorkerContext) -> rw::Result<()> {
    ctx.emit(rw::prelude::json!("clean"))?;
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut handle = rw::WORKER::call("hygienic", None, None).await.unwrap();
        assert_eq!(handle.recv().await, Some(rw::prelude::json!("clean")));
    });
}
