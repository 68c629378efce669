//! A long run to watch on the dashboard: it reports progress and emits a message per
//! step; a cancel stops it at its next `.await`.

use std::time::Duration;

use rustf_workers::prelude::*;
use serde::Deserialize;

/// The payload of `import-contacts`.
#[derive(Debug, Deserialize)]
pub struct Import {
    /// How many contacts to import (20 by default).
    #[serde(default)]
    pub contacts: Option<u32>,
    /// How long each one takes, in ms (250 by default).
    #[serde(default)]
    pub step_ms: Option<u64>,
}

/// Imports `contacts` contacts (here: pretends to, `step_ms` each), emitting
/// `{"imported", "of"}` and reporting its progress after each one.
#[worker("import-contacts", timeout = "10m")]
pub async fn import_contacts(ctx: WorkerContext, import: Import) -> Result<()> {
    let total = import.contacts.unwrap_or(20).max(1);
    let step = Duration::from_millis(import.step_ms.unwrap_or(250));
    for imported in 1..=total {
        // A cancel ends the run here, at its next `.await`.
        ctx.sleep(step).await;
        ctx.emit(json!({ "imported": imported, "of": total }))?;
        let percent = u8::try_from(imported * 100 / total).unwrap_or(100);
        ctx.progress(percent, format!("{imported} of {total}"))?;
    }
    ctx.info(&format!("imported {total} contacts"));
    Ok(())
}
