//! Several worker processes on one PostgreSQL database (the fixture
//! `tests/src/bin/queue-stress-node.rs`, given a `postgres://` URL): they share the work,
//! each job completes once, a node killed with SIGKILL mid-run has its jobs run again by
//! the others once their leases expire, with the attempt counted, and a node paused with
//! SIGSTOP past its lease cannot overwrite the outcome of the node that rescued its job.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustf_workers::queue::{JobFilter, JobState, JobStore, PostgresQueue, QueueOptions};
use rustf_workers::{JobOptions, WorkerRegistry};
use rustf_workers_tests::postgres::TestDatabase;
use serde_json::json;

/// A running node, killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Node(Child);

impl Node {
    fn start(url: &str, log: &Path, name: &str, lease_ms: u64) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_queue-stress-node"))
            .arg(url)
            .arg(log)
            .arg(name)
            .arg(lease_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("queue-stress-node starts");
        Node(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }
}

/// Waits up to `within` for `done`, failing with `what`.
async fn until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The log's lines as `(what, id, attempt, node)`.
fn read_log(log: &Path) -> Vec<(String, String, u32, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let what = words.next()?.to_owned();
            let id = words.next()?.to_owned();
            let attempt = words.next()?.parse().ok()?;
            let node = words.next()?.to_owned();
            Some((what, id, attempt, node))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_the_work_and_a_killed_ones_jobs_run_again() {
    const JOBS: usize = 1_500;
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    // The test's own side: it enqueues and reads, and runs nothing.
    let client = WorkerRegistry::new();
    client
        .register("slow", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    client
        .use_queue_with(store, QueueOptions::new().runs_jobs(false))
        .unwrap();

    let mut nodes: HashMap<&str, Node> = ["a", "b", "c"]
        .into_iter()
        .map(|name| (name, Node::start(db.url(), &log, name, 1_500)))
        .collect();
    // Each job takes 20 ms: a kill always finds some under way.
    let jobs = (0..JOBS).map(|_| ("slow", Some(json!({ "ms": [20] })), JobOptions::new()));
    let ids = client.enqueue_many(jobs).await.unwrap();

    // Once `a` has done some work, it is killed; `d` joins the other two.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_log(&log)
        .iter()
        .filter(|(what, _, _, node)| what == "done" && node == "a")
        .count()
        < 20
    {
        assert!(Instant::now() < deadline, "node a did no work");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes.get_mut("a").unwrap().kill();
    let at_kill = read_log(&log);
    nodes.insert("d", Node::start(db.url(), &log, "d", 1_500));

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let finished = client
            .job_counts()
            .await
            .unwrap()
            .into_iter()
            .filter(|count| count.state.is_finished())
            .map(|count| count.count)
            .sum::<u64>();
        if finished == JOBS as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{finished} of {JOBS} jobs finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(nodes);

    // Every job completed; none is lost.
    let filter = JobFilter {
        states: vec![JobState::Completed],
        limit: JobFilter::MAX_LIMIT,
        ..JobFilter::default()
    };
    let mut completed = 0;
    let mut page = client.jobs(filter.clone()).await.unwrap();
    let mut attempts: HashMap<String, u32> = HashMap::new();
    loop {
        completed += page.jobs.len();
        for job in &page.jobs {
            attempts.insert(job.id.clone(), job.attempt);
        }
        let Some(next) = page.next.clone() else { break };
        page = client
            .jobs(JobFilter {
                before_id: Some(next),
                ..filter.clone()
            })
            .await
            .unwrap();
    }
    assert_eq!(completed, JOBS, "every job completed");

    // Each job was done once, except those `a` had under way when it died: started there
    // and not done, they ran again elsewhere, their attempt counted.
    let lines = read_log(&log);
    let mut done: HashMap<&str, Vec<(&str, u32)>> = HashMap::new();
    for (what, id, attempt, node) in &lines {
        if what == "done" {
            done.entry(id).or_default().push((node, *attempt));
        }
    }
    assert_eq!(done.len(), JOBS, "every job was done");
    let in_flight_on_a: Vec<&str> = at_kill
        .iter()
        .filter(|(what, id, _, node)| {
            what == "start"
                && node == "a"
                && !at_kill.iter().any(|(w, i, _, _)| w == "done" && i == id)
        })
        .map(|(_, id, _, _)| id.as_str())
        .collect();
    assert!(
        !in_flight_on_a.is_empty(),
        "the kill found jobs under way on a"
    );
    for id in &ids {
        let by = &done[id.as_str()];
        // The one documented way to be done twice: `a` did it, and died before its
        // outcome was stored.
        let done_on_a_unstored = by.len() == 2
            && by[0].0 == "a"
            && at_kill
                .iter()
                .any(|(w, i, _, n)| w == "done" && i == id && n == "a")
            && attempts[id] == 2;
        assert!(
            by.len() == 1 || done_on_a_unstored,
            "{id} done more than once: {by:?}"
        );
        if in_flight_on_a.contains(&id.as_str()) {
            assert_ne!(by[0].0, "a", "{id} finished on the killed node");
            assert_eq!(attempts[id], 2, "{id}: the lost attempt is counted");
        }
    }
    // The three first nodes all did work (`d`, started late, may find little left).
    for name in ["a", "b", "c"] {
        assert!(
            done.values().flatten().any(|(node, _)| *node == name),
            "node {name} did no work"
        );
    }
}

/// A node paused (SIGSTOP) past its lease on PostgreSQL: another rescues the job and
/// completes it; woken (SIGCONT), the paused node's run is cancelled at its next beat and
/// its late outcome is refused by the fence, so the stored record stays the rescuer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_past_its_lease_cannot_overwrite_the_rescuers_outcome() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    let client = WorkerRegistry::new();
    client
        .register("slow", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    client
        .use_queue_with(store.clone(), QueueOptions::new().runs_jobs(false))
        .unwrap();
    let mut a = Node::start(db.url(), &log, "a", 600);
    // Ten seconds in A, so that A is still in it when it wakes; quick in B.
    let id = client
        .enqueue("slow", Some(json!({ "ms": [10_000, 100] })))
        .await
        .unwrap();
    until(Duration::from_secs(10), "A to start the job", || {
        read_log(&log).iter().any(|(what, ..)| what == "start")
    })
    .await;
    a.signal("STOP");

    let mut b = Node::start(db.url(), &log, "b", 3_000);
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.get(&id).await.unwrap().unwrap().state != JobState::Completed {
        assert!(
            Instant::now() < deadline,
            "B never completed the rescued job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by_b = store.get(&id).await.unwrap().unwrap();
    assert_eq!((by_b.attempt, by_b.epoch), (2, 2), "{by_b:?}");

    a.signal("CONT");
    until(Duration::from_secs(15), "A's run to end", || {
        read_log(&log)
            .iter()
            .any(|(what, _, _, node)| what == "end" && node == "a")
    })
    .await;
    let a_done = read_log(&log)
        .iter()
        .any(|(what, _, _, node)| what == "done" && node == "a");
    assert!(!a_done, "A's run was cancelled, not done");
    a.kill();
    b.kill();
    let after = store.get(&id).await.unwrap().unwrap();
    assert_eq!(after, by_b, "the stored record is still B's completion");
}
