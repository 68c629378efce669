//! The schema, as numbered migrations applied in order on open.

use rusqlite::Connection;

use super::writer::begin_immediate;
use super::Fail;

/// Every migration, in order: `(version, file, SQL)`. A database at version `n` has had
/// the first `n` applied; the version lives in `PRAGMA user_version`.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "0001_jobs.sql", include_str!("0001_jobs.sql")),
    (
        2,
        "0002_cron_and_counts.sql",
        include_str!("0002_cron_and_counts.sql"),
    ),
    (
        3,
        "0003_waiting_without_in_lists.sql",
        include_str!("0003_waiting_without_in_lists.sql"),
    ),
    (4, "0004_nodes.sql", include_str!("0004_nodes.sql")),
];

/// The schema version this build writes.
pub(super) const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to version `target`, in one transaction: two processes opening
/// a new file at once migrate it once (the second finds it done), and a failed migration
/// leaves the file as it was.
pub(super) fn migrate(
    conn: &Connection,
    target: u32,
    busy_timeout: std::time::Duration,
) -> Result<(), Fail> {
    begin_immediate(conn, busy_timeout)?;
    let result = apply(conn, target);
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

fn apply(conn: &Connection, target: u32) -> Result<(), Fail> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > LATEST {
        return Err(Fail::Store {
            action: "opening".into(),
            message: format!(
                "the database has schema version {version}, newer than this build of \
                 rustf-workers knows ({LATEST}): it was written by a newer release; \
                 upgrade rustf-workers"
            ),
        });
    }
    for &(number, file, sql) in MIGRATIONS {
        if number <= version || number > target {
            continue;
        }
        conn.execute_batch(sql).map_err(|err| Fail::Store {
            action: format!("applying migration {file} to"),
            message: err.to_string(),
        })?;
        // `user_version` is in the file header, written with this transaction.
        conn.execute_batch(&format!("PRAGMA user_version = {number}"))?;
    }
    Ok(())
}
