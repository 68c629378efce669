//! SQLite only: the file itself (schemas, foreign and corrupt files, permissions, locks,
//! a full disk, group commit).

use super::*;

fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("jobs.db")
}

#[tokio::test]
async fn opens_a_database_written_by_schema_0001() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        SqliteOptions::new(path(&dir))
            .schema_version(1)
            .open()
            .unwrap(),
    );
    {
        let raw = rusqlite::Connection::open(path(&dir)).unwrap();
        let version: u32 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let no_cron: bool = raw
            .query_row(
                "SELECT count(*) = 0 FROM sqlite_master WHERE name = 'cron_ticks'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(no_cron, "0001 has no cron table");
        raw.execute(
            "INSERT INTO jobs (id, worker, queue, state, payload, priority, max_attempts,
                               run_at, created_at)
             VALUES ('old-1', 'w', 'default', 'available', '{\"v\":1}', 0, 3, ?1, ?1)",
            [T0],
        )
        .unwrap();
    }
    let store = SqliteQueue::open(path(&dir)).unwrap();
    let got = store.get("old-1").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.payload),
        (JobState::Available, Some(json!({ "v": 1 })))
    );
    assert_eq!(claim_one(&store, T0, "w").await.id, "old-1");
    assert!(
        store
            .cron_tick(T0, "c", T0, job("tick", "c"))
            .await
            .unwrap(),
        "0002 applied"
    );
    drop(store);
    let raw = rusqlite::Connection::open(path(&dir)).unwrap();
    let version: u32 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteQueue::open(path(&dir)).unwrap());
    rusqlite::Connection::open(path(&dir))
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = SqliteQueue::open(path(&dir)).unwrap_err();
    assert!(err.is_store(), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("opening `"), "{text}");
    assert!(text.contains("schema version 99, newer than"), "{text}");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(&dir), "name,email\n".repeat(1_000)).unwrap();
    let err = SqliteQueue::open(path(&dir)).unwrap_err();
    assert!(err.is_store(), "{err}");
    let expected = format!("opening `{}`: file is not a database", path(&dir).display());
    assert_eq!(err.to_string(), expected);
}

#[tokio::test]
async fn a_corrupt_file_gives_a_store_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteQueue::open(path(&dir)).unwrap();
        let jobs = (0..300)
            .map(|i| job(&format!("j{i}"), "w").payload(json!("x".repeat(200))))
            .collect();
        enqueue(&store, T0, jobs).await;
    }
    // Keep the header page, scribble over the rest.
    let mut bytes = std::fs::read(path(&dir)).unwrap();
    assert!(bytes.len() > 8 * 4096, "the jobs spill over several pages");
    for (i, byte) in bytes.iter_mut().enumerate().skip(4096) {
        *byte = (i * 31 % 251) as u8;
    }
    std::fs::write(path(&dir), bytes).unwrap();

    let err = match SqliteQueue::open(path(&dir)) {
        Err(err) => err,
        Ok(store) => store.list(JobFilter::default()).await.unwrap_err(),
    };
    assert!(err.is_store(), "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test]
async fn a_read_only_directory_gives_a_store_error() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = ReadOnly::make(dir.path());
    let err = SqliteQueue::open(path(&dir)).unwrap_err();
    assert!(err.is_store(), "{err}");
    let expected = format!(
        "opening `{}`: unable to open database file",
        path(&dir).display()
    );
    assert_eq!(err.to_string(), expected);
}

/// Makes a directory read-only for as long as it lives. Permission bits do not bind
/// root (tests may run as root in CI), so it then also sets the immutable attribute.
struct ReadOnly(std::path::PathBuf, bool);

impl ReadOnly {
    fn make(dir: &std::path::Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let mut guard = ReadOnly(dir.to_owned(), false);
        if std::fs::write(dir.join("probe"), "").is_ok() {
            std::fs::remove_file(dir.join("probe")).unwrap();
            let status = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status();
            guard.1 = status.is_ok_and(|s| s.success());
            assert!(
                std::fs::write(dir.join("probe"), "").is_err(),
                "cannot make {} read-only here",
                dir.display()
            );
        }
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status();
        }
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[tokio::test]
async fn a_locked_database_gives_a_store_error_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOptions::new(path(&dir))
        .busy_timeout(Duration::from_millis(50))
        .open()
        .unwrap();
    let other_process = rusqlite::Connection::open(path(&dir)).unwrap();
    other_process.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let err = store.enqueue(T0, vec![job("x", "w")]).await.unwrap_err();
    assert!(err.is_store(), "{err}");
    let expected = format!(
        "enqueuing jobs into `{}`: database is locked",
        path(&dir).display()
    );
    assert_eq!(err.to_string(), expected);
    let err = store
        .claim(T0, request("n", &[("w", 1)], 1))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("claiming jobs from `"), "{err}");

    other_process.execute_batch("COMMIT").unwrap();
    enqueue(&store, T0, vec![job("x", "w")]).await;
    assert_eq!(claim_one(&store, T0, "w").await.id, "x");
}

#[tokio::test]
async fn a_full_disk_gives_a_store_error_and_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteOptions::new(path(&dir))
        .max_page_count(64)
        .open()
        .unwrap();
    enqueue(&store, T0, vec![job("small", "w")]).await;

    let big = json!("x".repeat(64 * 4096));
    let err = store
        .enqueue(T0, vec![job("big", "w").payload(big)])
        .await
        .unwrap_err();
    assert!(err.is_store(), "{err}");
    let expected = format!(
        "enqueuing jobs into `{}`: database or disk is full",
        path(&dir).display()
    );
    assert_eq!(err.to_string(), expected);

    assert!(store.get("big").await.unwrap().is_none());
    assert_eq!(claim_one(&store, T0, "w").await.id, "small");
}

#[tokio::test]
async fn writes_batched_together_each_get_their_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteQueue::open(path(&dir)).unwrap();
    enqueue(&store, T0, vec![job("dup", "w")]).await;
    // Sent at once, these are likely committed in one transaction; a failing one must
    // not take the others down with it.
    let writes = (0..50).map(|i| {
        let store = store.clone();
        async move {
            let id = if i % 10 == 0 {
                "dup".to_string()
            } else {
                format!("n{i}")
            };
            store.enqueue(T0, vec![job(&id, "w")]).await
        }
    });
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), i % 10 == 0, "write {i}: {result:?}");
    }
    let claimed = store
        .claim(T0, request("n", &[("w", 100)], 100))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1 + 45);
}

#[tokio::test]
async fn pruning_forgets_old_cron_ticks_but_each_workers_latest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteQueue::open(path(&dir)).unwrap();
    for (worker, tick) in [("a", 1_000), ("a", 2_000), ("a", 3_000), ("b", 1_000)] {
        let job = NewJob::new(format!("{worker}-{tick}"), worker);
        assert!(store.cron_tick(T0, worker, tick, job).await.unwrap());
    }
    let ticks = || {
        let raw = rusqlite::Connection::open(path(&dir)).unwrap();
        let mut stmt = raw
            .prepare("SELECT worker, tick_ms FROM cron_ticks ORDER BY worker, tick_ms")
            .unwrap();
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>()
    };
    // Recorded after the horizon: kept.
    store.prune(T0 - 1, 0).await.unwrap();
    assert_eq!(ticks().len(), 4);
    store.prune(T0, 0).await.unwrap();
    assert_eq!(ticks(), [("a".into(), 3_000), ("b".into(), 1_000)]);
}
