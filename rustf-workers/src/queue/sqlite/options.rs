//! How to open a [`SqliteQueue`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{migrate, SqliteQueue};
use crate::Result;

/// Settings for [`SqliteQueue`], opened with [`SqliteOptions::open`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use rustf_workers::queue::SqliteOptions;
///
/// let queue = SqliteOptions::new("jobs.db")
///     .busy_timeout(Duration::from_secs(10))
///     .full_sync(true)
///     .open()?;
/// # Ok::<(), rustf_workers::Error>(())
/// ```
#[derive(Clone)]
pub struct SqliteOptions {
    pub(super) path: PathBuf,
    pub(super) busy_timeout: Duration,
    pub(super) full_sync: bool,
    pub(super) schema_version: u32,
    pub(super) max_page_count: Option<u64>,
}

impl SqliteOptions {
    /// The default busy timeout: how long a write waits for another process's.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Options for the database file at `path` (created if missing), with the defaults.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            full_sync: false,
            schema_version: migrate::LATEST,
            max_page_count: None,
        }
    }

    /// How long an operation waits while another process holds the database's write
    /// lock before it fails with "database is locked". Default
    /// [`SqliteOptions::DEFAULT_BUSY_TIMEOUT`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether each commit is synced to disk before it is acknowledged
    /// (`PRAGMA synchronous = FULL`). Off by default: the store runs in WAL mode with
    /// `synchronous = NORMAL`, where a crash of the process loses nothing that was
    /// acknowledged, but a power loss or an operating-system crash may lose the last
    /// commits (never corrupting the file). Turn it on when that matters more than an
    /// fsync per batch.
    pub fn full_sync(mut self, on: bool) -> Self {
        self.full_sync = on;
        self
    }

    /// Applies migrations only up to `version`: for tests that need a database written
    /// by an earlier release. A queue opened this way may lack tables its methods use.
    #[doc(hidden)]
    pub fn schema_version(mut self, version: u32) -> Self {
        self.schema_version = version.min(migrate::LATEST);
        self
    }

    /// Caps the database at `pages` pages (`PRAGMA max_page_count` on the write
    /// connection): for tests of a full disk.
    #[doc(hidden)]
    pub fn max_page_count(mut self, pages: u64) -> Self {
        self.max_page_count = Some(pages);
        self
    }

    /// Opens the database, creating and migrating it as needed. Blocks while it does
    /// (call it at startup, or in `spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the file cannot be opened or created
    /// (a read-only directory), is not an SQLite database or is corrupt, is locked by
    /// another process past the busy timeout, or has a schema newer than this build.
    pub fn open(self) -> Result<SqliteQueue> {
        SqliteQueue::open_with(self)
    }
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("path", &self.path)
            .field("busy_timeout", &self.busy_timeout)
            .field("full_sync", &self.full_sync)
            .finish_non_exhaustive()
    }
}
