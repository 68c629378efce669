//! The older form: `install()` registers at run time. Two directories down.

use rustf_workers::prelude::*;

/// Registers `fixture-cleanup`.
pub async fn install() -> Result<()> {
    WORKER::register("fixture-cleanup", |ctx| async move {
        ctx.emit(json!("cleaned"))?;
        Ok(())
    })
    .await
}
