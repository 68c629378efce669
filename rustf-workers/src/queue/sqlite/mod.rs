//! The SQLite [`JobStore`](super::JobStore): one file, shared by the processes of one
//! machine.

mod migrate;
mod ops;
mod options;
mod rows;
mod sql;
mod traits;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use options::SqliteOptions;

use crate::{Error, Result};
use writer::Writer;

/// Idle read connections kept for reuse; more are opened when reads overlap.
const IDLE_READERS: usize = 4;

/// A durable job store in one SQLite file: the [`JobStore`](super::JobStore) for one
/// machine. Several processes may open the same file (a web process enqueues, a worker
/// process runs jobs); SQLite's locks keep them consistent.
///
/// Writes go to one writer thread, which commits every write waiting in one transaction
/// (group commit: a busy queue pays one fsync per batch, not one per job) and answers
/// each caller after the commit. Reads (`get`, `list`, `counts`, ...) run on separate
/// read connections on tokio's blocking pool, and see the last commit.
///
/// The file runs in WAL mode with `synchronous = NORMAL` unless
/// [`SqliteOptions::full_sync`] says otherwise: a crash of the process loses nothing that
/// was acknowledged; a power loss may lose the last commits, never the file's
/// consistency.
///
/// The queue also implements [`CheckpointStore`](crate::CheckpointStore) and
/// [`IdempotencyStore`](crate::IdempotencyStore), so in-process runs can keep their
/// checkpoints and idempotency records in the same file.
///
/// Cloning is cheap (an `Arc`); the file is closed when the last clone is dropped, after
/// the writes already sent are committed.
///
/// # Examples
///
/// ```
/// use rustf_workers::queue::{ClaimRequest, Finish, FinishOutcome, JobStore, NewJob, SqliteQueue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> rustf_workers::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("rustf-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let queue = SqliteQueue::open(dir.join("jobs.db"))?;
/// let now = 1_700_000_000_000;
/// queue.enqueue(now, vec![NewJob::new("job-1", "send-email")]).await?;
///
/// let claimed = queue
///     .claim(now, ClaimRequest {
///         owner: "worker-a".into(),
///         workers: vec![("send-email".into(), 10)],
///         limit: 10,
///         lease_ms: 30_000,
///     })
///     .await?;
/// let job = &claimed[0];
/// let applied = queue
///     .finish(now + 5, vec![Finish { id: job.id.clone(), epoch: job.epoch, outcome: FinishOutcome::Completed }])
///     .await?;
/// assert_eq!(applied, [true]);
/// # drop(queue);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteQueue {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteOptions,
    /// The path as shown in errors.
    target: Arc<str>,
    writer: Writer,
    /// Held only to pop or push one connection.
    readers: Mutex<Vec<Connection>>,
}

impl SqliteQueue {
    /// Opens (creating and migrating it as needed) the database file at `path`, with
    /// the default [`SqliteOptions`]. Blocks while it does.
    ///
    /// # Errors
    ///
    /// As [`SqliteOptions::open`].
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<SqliteQueue> {
        SqliteOptions::new(path).open()
    }

    /// The options to open `path` with other settings.
    pub fn options(path: impl AsRef<std::path::Path>) -> SqliteOptions {
        SqliteOptions::new(path)
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.options.path
    }

    fn open_with(options: SqliteOptions) -> Result<SqliteQueue> {
        let target: Arc<str> = options.path.display().to_string().into();
        let conn = connect(&options, true).map_err(|fail| fail.into_error("opening", &target))?;
        migrate::migrate(&conn, options.schema_version, options.busy_timeout)
            .map_err(|fail| fail.into_error("migrating", &target))?;
        let writer = Writer::spawn(conn, target.clone(), options.busy_timeout)?;
        Ok(SqliteQueue {
            inner: Arc::new(Inner {
                options,
                target,
                writer,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `write` in the writer thread's next transaction.
    async fn write<T, F>(&self, action: &'static str, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        self.inner.writer.write(action, write).await
    }

    /// Runs `read` on a read connection, on tokio's blocking pool.
    async fn read<T, F>(&self, action: &'static str, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Fail> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.read_now(action, read))
            .await
            .unwrap_or_else(|_| Err(store_error(action, &self.inner.target, "the read panicked")))
    }
}

impl Inner {
    /// Runs `read` on this thread, on an idle read connection or a new one.
    fn read_now<T>(
        &self,
        action: &'static str,
        read: impl FnOnce(&Connection) -> Result<T, Fail>,
    ) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                connect(&self.options, false).map_err(|f| f.into_error(action, &self.target))?
            }
        };
        let result = read(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        drop(readers);
        result.map_err(|fail| fail.into_error(action, &self.target))
    }
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("path", &self.inner.options.path)
            .finish_non_exhaustive()
    }
}

/// Opens a connection with the store's settings: the writer's sets the file's journal
/// mode and sync level; readers are `query_only`, so a bug cannot write around the writer.
fn connect(options: &SqliteOptions, writer: bool) -> Result<Connection, Fail> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&options.path, flags)?;
    conn.set_prepared_statement_cache_capacity(64);
    if writer {
        // The writer waits for locks in `writer::retry_busy`, which polls finer than
        // SQLite's busy handler (see there).
        conn.busy_timeout(Duration::ZERO)?;
        let mode: String = writer::retry_busy(options.busy_timeout, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Fail::Store {
                action: "opening".into(),
                message: format!("cannot switch to WAL mode (the journal mode is `{mode}`)"),
            });
        }
        let sync = if options.full_sync { "FULL" } else { "NORMAL" };
        conn.pragma_update(None, "synchronous", sync)?;
        // Each command runs in a savepoint, whose sub-journal (the pages it changed, to
        // roll back to) spills to a new temporary file past 64 KiB: a claim or a batch of
        // outcomes did, so every transaction opened, wrote and deleted a file. In memory,
        // it is as durable: the sub-journal only undoes a command inside its open
        // transaction, and a crash is recovered from the WAL, never from it.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // SQLite re-plans a cached statement when a bound value it weighed changes (the
        // claim's `now` does on every claim); with no statistics stored there is nothing
        // to weigh, and the plans are the ones `sql.rs` names.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        if let Some(pages) = options.max_page_count {
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
    } else {
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(conn)
}

/// A failure inside the store, before it is given what was being done and to what.
pub(super) enum Fail {
    /// The database refused.
    Sql(rusqlite::Error),
    /// The store refused, saying what it was doing (a migration, say).
    Store { action: String, message: String },
    /// The input was refused: passed on as it is.
    Refused(Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(err: rusqlite::Error) -> Self {
        Fail::Sql(err)
    }
}

impl Fail {
    /// What went wrong, without what was being done.
    fn message(&self) -> String {
        match self {
            Fail::Sql(err) => err.to_string(),
            Fail::Store { message, .. } => message.clone(),
            Fail::Refused(err) => err.to_string(),
        }
    }

    /// The crate's error: the one place where database errors are wrapped.
    fn into_error(self, action: &str, target: &str) -> Error {
        match self {
            Fail::Sql(err) => store_error(action, target, &err.to_string()),
            Fail::Store { action, message } => store_error(&action, target, &message),
            Fail::Refused(err) => err,
        }
    }
}

fn store_error(action: &str, target: &str, message: &str) -> Error {
    // rusqlite ends "unable to open database file" with the path, which is named already.
    let message = message
        .strip_suffix(target)
        .and_then(|m| m.strip_suffix(": "))
        .unwrap_or(message);
    Error::Store {
        action: action.to_owned(),
        target: target.to_owned(),
        message: message.to_owned(),
    }
}
