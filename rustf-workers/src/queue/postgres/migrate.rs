//! The schema, as numbered migrations applied in order, recorded in the table
//! `rustf_workers_migrations`.

use tokio_postgres::Client;

use super::Fail;

/// Every migration, in order: `(version, file, SQL)`. A database at version `n` has had
/// the first `n` applied, each recorded as a row of `rustf_workers_migrations`.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "0001_jobs.sql", include_str!("0001_jobs.sql")),
    (2, "0002_nodes.sql", include_str!("0002_nodes.sql")),
    (3, "0003_notify.sql", include_str!("0003_notify.sql")),
    (
        4,
        "0004_fewer_index_writes.sql",
        include_str!("0004_fewer_index_writes.sql"),
    ),
];

/// The schema version this build writes.
pub(super) const LATEST: i32 = MIGRATIONS.len() as i32;

/// The first key of the migrations' advisory lock ("rstf"); the second is the schema's
/// hash, so stores in different schemas of one database migrate independently. The
/// two-key form never collides with an application's one-key (`bigint`) locks.
const LOCK_CLASS: i32 = 0x7273_7466;

/// Brings the database (in `schema`, or `public`) up to [`LATEST`] in one transaction,
/// under a transaction-scoped advisory lock: two processes connecting to a new database
/// at once migrate it once (the second waits, then finds it done), and a failed
/// migration leaves the database as it was.
pub(super) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), Fail> {
    let tx = client.transaction().await?;
    // `IF NOT EXISTS` on a migrated database is a NOTICE ("already exists, skipping"),
    // which tokio-postgres logs at info on every connect: not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    let lock_key = schema.unwrap_or("public");
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text))",
        &[&LOCK_CLASS, &lock_key],
    )
    .await?;
    if let Some(schema) = schema {
        // A name checked by `PostgresOptions::schema` (lower-case letters, digits, `_`),
        // so quoting it cannot go wrong; DDL takes no parameters.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rustf_workers_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM rustf_workers_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if version > LATEST {
        return Err(Fail::Store {
            action: "migrating".into(),
            message: format!(
                "the database has schema version {version}, newer than this build of \
                 rustf-workers knows ({LATEST}): it was migrated by a newer release; \
                 upgrade rustf-workers"
            ),
        });
    }
    for &(number, file, sql) in MIGRATIONS {
        if number <= version {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|err| Fail::Store {
            action: format!("applying migration {file} to"),
            message: super::describe(&err),
        })?;
        tx.execute(
            "INSERT INTO rustf_workers_migrations (version, name) VALUES ($1::int4, $2::text)",
            &[&number, &file],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
