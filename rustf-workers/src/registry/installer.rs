//! What `auto_workers!()` hands back: the `install()` functions it found, to run once.

use std::fmt;

use crate::registry::linked::BoxFuture;
use crate::{Result, WorkerRegistry};

/// A file relative to `src/workers/`, and its `install()` started as a boxed future.
type Install = (&'static str, fn() -> BoxFuture);

/// Installs the workers `auto_workers!()` compiled from `src/workers/`.
///
/// Files with `#[worker]` functions register themselves when the binary is linked; files
/// in the older form export `pub async fn install() -> Result<()>`, and this calls each of
/// them, in path order. Then it checks every linked registration, so a worker name claimed
/// twice is reported at start-up instead of at its first call.
///
/// # Examples
///
/// ```no_run
/// # mod app {
/// use rustf_workers::prelude::*;
///
/// rustf_workers::auto_workers!();
///
/// #[tokio::main]
/// async fn main() -> Result<()> {
///     workers::installer().install().await?;
///     WORKER::run("send-email", Some(json!({ "to": "a@b.c" }))).await
/// }
/// # }
/// ```
pub struct Installer {
    files: &'static [&'static str],
    installs: &'static [Install],
}

impl Installer {
    #[doc(hidden)]
    /// Called by generated code only.
    pub const fn new(files: &'static [&'static str], installs: &'static [Install]) -> Self {
        Self { files, installs }
    }

    /// The files compiled from `src/workers/`, relative to it, sorted.
    pub fn files(&self) -> &'static [&'static str] {
        self.files
    }

    /// The files that export `pub async fn install()`, in the order `install` calls them.
    pub fn install_files(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.installs.iter().map(|(file, _)| *file)
    }

    /// Runs every `install()`, then [`WorkerRegistry::verify`]s the global registry.
    ///
    /// # Errors
    ///
    /// The first error an `install()` returns (it names its worker, e.g. a name already
    /// taken), or the first worker name claimed by two `#[worker]` functions.
    pub async fn install(self) -> Result<()> {
        for &(file, install) in self.installs {
            log::debug!(target: "rustf_workers::install", "installing workers from src/workers/{file}");
            install().await?;
        }
        WorkerRegistry::global().verify()
    }
}

impl fmt::Debug for Installer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Installer")
            .field("files", &self.files)
            .field("install_files", &self.install_files().collect::<Vec<_>>())
            .finish()
    }
}
