//! The PostgreSQL [`JobStore`](super::JobStore): one database, shared by processes on
//! many machines.

mod blocking;
mod listen;
mod migrate;
mod ops;
mod options;
mod rows;
mod sql;
mod traits;

use std::sync::Arc;

use deadpool_postgres::{Object, Pool, PoolError};

pub use options::PostgresOptions;

use crate::{Error, Result};

/// A durable job store in a PostgreSQL database: the [`JobStore`](super::JobStore) for
/// many processes on many machines. Every process connects to the same database (an
/// application's own, in its own schema if you like); PostgreSQL's row locks keep them
/// consistent, and a claim takes its jobs with `FOR UPDATE SKIP LOCKED`, so claimers
/// never wait for each other.
///
/// Each operation is one statement on a pooled connection where it can be (a batch of
/// enqueues, claims, outcomes or lease extensions travels as arrays, one round trip),
/// or a short transaction where it needs more. The pool
/// ([`deadpool-postgres`](https://docs.rs/deadpool-postgres)) replaces a connection that
/// broke (a restarted server, a network cut) instead of handing it out again; the
/// operation that met the break fails with [`Error::Store`], and the next one gets a new
/// connection.
///
/// The schema is created and migrated on connect (numbered migrations, recorded in the
/// table `rustf_workers_migrations`, applied in one transaction under an advisory lock,
/// so processes starting together migrate once).
///
/// The queue also implements [`CheckpointStore`](crate::CheckpointStore) and
/// [`IdempotencyStore`](crate::IdempotencyStore), so in-process runs can keep their
/// checkpoints and idempotency records in the same database.
///
/// Cloning is cheap (an `Arc`); the pool closes when the last clone is dropped.
///
/// # Runtime
///
/// The pool's connections are driven by tasks spawned on the tokio runtime that first
/// used them, which needs its I/O and time drivers (`enable_all`): use a queue within
/// one runtime, as an application does. The synchronous `IdempotencyStore` is served by
/// a thread of the queue's own instead (see there), so it works on any runtime.
///
/// # Time
///
/// The queue compares and writes the times its callers pass (`now_ms`), as the SQLite
/// store does; its [`clock_ms`](super::JobStore::clock_ms) is the database server's clock,
/// which the engine samples and passes on as `now_ms`, so that every node reads one
/// clock.
///
/// # Examples
///
/// ```no_run
/// use rustf_workers::queue::{ClaimRequest, Finish, FinishOutcome, JobStore, NewJob, PostgresQueue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> rustf_workers::Result<()> {
/// let queue = PostgresQueue::connect("postgres://app@localhost/app").await?;
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
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// How to open a connection outside the pool (the subscription's).
    config: tokio_postgres::Config,
    /// The database as shown in errors: its URL without the password.
    target: Arc<str>,
    /// The schema the tables live in, when not `public`.
    schema: Option<String>,
    /// Set once the schema is known to be migrated, by this handle or its blocking thread.
    migrated: Arc<tokio::sync::OnceCell<()>>,
    /// The connection behind the synchronous `IdempotencyStore`.
    blocking: blocking::Blocking,
}

impl PostgresQueue {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value`
    /// connection string, as libpq takes them) with the default [`PostgresOptions`], and
    /// creates or migrates the schema as needed.
    ///
    /// # Errors
    ///
    /// As [`PostgresOptions::connect`].
    pub async fn connect(url: &str) -> Result<PostgresQueue> {
        PostgresOptions::new(url).connect().await
    }

    /// The options to connect to `url` with other settings.
    pub fn options(url: &str) -> PostgresOptions {
        PostgresOptions::new(url)
    }

    /// The database, as shown in errors: its URL without the password.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Migrates the schema, unless this handle knows it is done.
    async fn ready(&self) -> Result<()> {
        let inner = &self.inner;
        inner
            .migrated
            .get_or_try_init(|| async {
                let mut conn =
                    inner.pool.get().await.map_err(|err| {
                        Fail::from(err).into_error("connecting to", &inner.target)
                    })?;
                migrate::migrate(&mut conn, inner.schema.as_deref())
                    .await
                    .map_err(|fail| fail.into_error("migrating", &inner.target))
            })
            .await
            .map(|_| ())
    }

    /// A pooled connection to the migrated database; `action` names the operation in
    /// the error if there is none.
    async fn conn(&self, action: &str) -> Result<Object> {
        self.ready().await?;
        self.inner
            .pool
            .get()
            .await
            .map_err(|err| Fail::from(err).into_error(action, &self.inner.target))
    }

    /// The crate's error for a failure of `action`.
    fn error<'a>(&'a self, action: &'a str) -> impl FnOnce(Fail) -> Error + 'a {
        move |fail| fail.into_error(action, &self.inner.target)
    }
}

impl std::fmt::Debug for PostgresQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresQueue")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// A failure inside the store, before it is given what was being done and to what.
pub(super) enum Fail {
    /// The database refused, or could not be reached.
    Sql(tokio_postgres::Error),
    /// The pool had no connection to give.
    Pool(PoolError),
    /// The store refused, saying what it was doing (a migration, say).
    Store { action: String, message: String },
    /// The input was refused: passed on as it is.
    Refused(Error),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(err: tokio_postgres::Error) -> Self {
        Fail::Sql(err)
    }
}

impl From<PoolError> for Fail {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Backend(err) => Fail::Sql(err),
            other => Fail::Pool(other),
        }
    }
}

impl Fail {
    /// Whether PostgreSQL rolled the transaction back to break a deadlock.
    fn is_deadlock(&self) -> bool {
        matches!(self, Fail::Sql(err)
            if err.code() == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED))
    }

    /// The crate's error: the one place where database errors are wrapped.
    fn into_error(self, action: &str, target: &str) -> Error {
        let (action, message) = match self {
            Fail::Sql(err) => (action.to_owned(), describe(&err)),
            Fail::Pool(PoolError::Timeout(_)) => (
                action.to_owned(),
                "timed out waiting for a connection from the pool".to_owned(),
            ),
            Fail::Pool(err) => (action.to_owned(), err.to_string()),
            Fail::Store { action, message } => (action, message),
            Fail::Refused(err) => return err,
        };
        store_error(&action, target, message)
    }
}

fn store_error(action: &str, target: &str, message: String) -> Error {
    Error::Store {
        action: action.to_owned(),
        target: target.to_owned(),
        message,
    }
}

/// What went wrong, in PostgreSQL's words: tokio-postgres's own `Display` says only
/// "db error" or "error connecting to server", and keeps the reason in its source.
fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
