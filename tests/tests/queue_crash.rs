//! A process killed with SIGKILL while it runs a durable job: the job runs again after the
//! restart, once its lease has expired, with its attempt counted; a job that completed is
//! never run again; a job scheduled when the process died is not lost.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustf_workers::queue::{JobState, JobStore, SqliteQueue};

/// A running `queue-node`, killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind.
struct Node(Child);

impl Node {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn node(db: &Path, log: &Path, enqueue: bool) -> Node {
    let mut command = Command::new(env!("CARGO_BIN_EXE_queue-node"));
    command.arg(db).arg(log).stdout(Stdio::piped());
    if enqueue {
        command.arg("enqueue");
    }
    Node(command.spawn().expect("queue-node starts"))
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits up to `within` for `done` to hold, failing with `what`.
fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_killed_mid_run_runs_again_after_the_restart_exactly_once_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("jobs.db"), dir.path().join("log.txt"));

    let mut first = node(&db, &log, true);
    let mut ids = String::new();
    BufReader::new(first.0.stdout.take().unwrap())
        .read_line(&mut ids)
        .unwrap();
    let ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
    let (now, later) = (&ids[0], &ids[1]);
    wait_for(Duration::from_secs(20), "the first attempts", || {
        let lines = lines(&log);
        lines.contains(&format!("start {now} 1")) && lines.contains(&format!("start {later} 1"))
    });
    first.kill(); // SIGKILL

    let store = SqliteQueue::open(&db).unwrap();
    let job = store.get(now).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Running, 1), "{job:?}");

    let mut second = node(&db, &log, false);
    for id in [now, later] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.get(id).await.unwrap().unwrap().state != JobState::Completed {
            assert!(Instant::now() < deadline, "timed out waiting for job {id}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Longer than a lease: nothing that completed runs again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    second.kill();

    let log = lines(&log);
    let of = |id: &str| -> Vec<&String> { log.iter().filter(|l| l.contains(id)).collect() };
    assert_eq!(
        of(now),
        [
            &format!("start {now} 1"),
            &format!("start {now} 2"),
            &format!("done {now}")
        ],
        "{log:?}"
    );
    assert_eq!(
        of(later),
        [
            &format!("start {later} 1"),
            &format!("start {later} 2"),
            &format!("done {later}")
        ],
        "{log:?}"
    );
    let job = store.get(now).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 2));
}
