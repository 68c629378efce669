//! Worker processes for the multi-process tests on PostgreSQL: the fixture
//! `tests/src/bin/queue-stress-node.rs`, started on a database, killed (SIGKILL), paused
//! (SIGSTOP), interrupted (SIGINT, a graceful shutdown), and the log its runs append to.
//!
//! The fixture's path is the caller's `env!("CARGO_BIN_EXE_queue-stress-node")`: cargo
//! sets it for integration tests only, not for this library.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustf_workers::queue::{JobFilter, JobRecord, JobStore};

/// A running fixture process, killed (SIGKILL) when dropped, so that a failing test
/// leaves none behind.
#[derive(Debug)]
pub struct Node {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Node {
    /// Starts `exe <db> <log> <name> <lease_ms>` with `env` added to its environment.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn start(
        exe: &str,
        db: &str,
        log: &Path,
        name: &str,
        lease_ms: u64,
        env: &[(&str, &str)],
    ) -> Node {
        let child = Command::new(exe)
            .arg(db)
            .arg(log)
            .arg(name)
            .arg(lease_ms.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("queue-stress-node starts");
        Node {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        }
    }

    /// Its name, as its log lines give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its queue is open: the fixture creates `<log>.<name>.ready` once it is.
    pub fn is_ready(&self) -> bool {
        let mut ready = self.log.clone().into_os_string();
        ready.push(format!(".{}.ready", self.name));
        Path::new(&ready).exists()
    }

    /// Whether it still runs (it has not exited, nor been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends it `signal` (`STOP`, `CONT`, `INT`...).
    ///
    /// # Panics
    ///
    /// If `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// Waits up to `within` for it to exit, and returns how it did.
    ///
    /// # Panics
    ///
    /// If it is still running then.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {} still running after {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits up to `within` for `done`, failing with `what`.
///
/// # Panics
///
/// If `done` is still false then.
pub async fn until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One line of the fixture's log: `<what> <id> <attempt> <node> <µs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// `start`, `done` or `end`.
    pub what: String,
    /// The job's id.
    pub id: String,
    /// Its attempt, from 1.
    pub attempt: u32,
    /// The node that ran it.
    pub node: String,
    /// When, in µs since the Unix epoch.
    pub at_us: u64,
}

/// The lines of the log at `log`, in the order written (none if there is no log yet).
pub fn read_log(log: &Path) -> Vec<Line> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            Some(Line {
                what: words.next()?.to_owned(),
                id: words.next()?.to_owned(),
                attempt: words.next()?.parse().ok()?,
                node: words.next()?.to_owned(),
                at_us: words.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Every job stored of `worker` (of every worker with `None`), newest first.
///
/// # Panics
///
/// If the store fails.
pub async fn all_jobs(store: &impl JobStore, worker: Option<&str>) -> Vec<JobRecord> {
    let filter = JobFilter {
        worker: worker.map(str::to_owned),
        limit: JobFilter::MAX_LIMIT,
        ..JobFilter::default()
    };
    let mut jobs = Vec::new();
    let mut page = store.list(filter.clone()).await.expect("jobs listed");
    loop {
        jobs.append(&mut page.jobs);
        let Some(next) = page.next.take() else {
            return jobs;
        };
        page = store
            .list(JobFilter {
                before_id: Some(next),
                ..filter.clone()
            })
            .await
            .expect("jobs listed");
    }
}

/// Waits up to `within` until `jobs` jobs are finished in `store`. A store error (the
/// server restarting) counts as not yet.
///
/// # Panics
///
/// If fewer are finished then, saying how many, or the store's error.
pub async fn until_finished(store: &impl JobStore, jobs: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match store.counts().await {
            Ok(counts) => {
                let finished: u64 = counts
                    .into_iter()
                    .filter(|(_, state, _)| state.is_finished())
                    .map(|(_, _, count)| count)
                    .sum();
                if finished == jobs as u64 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{finished} of {jobs} jobs finished after {within:?}"
                );
            }
            Err(err) => {
                assert!(
                    Instant::now() < deadline,
                    "jobs not finished after {within:?}: {err}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This machine's clock in ms since the Unix epoch: the database server's too, when it
/// runs here.
pub fn wall_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
