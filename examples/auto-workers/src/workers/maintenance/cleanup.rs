//! The older form: a file exporting `install()`, which `workers::installer()` calls.

use rustf_workers::prelude::*;

/// Registers `cleanup-temp-files`.
pub async fn install() -> Result<()> {
    WORKER::register("cleanup-temp-files", |ctx| async move {
        ctx.info("removing temporary files older than a day");
        ctx.emit(json!({ "removed": 0 }))?;
        Ok(())
    })
    .await
}
