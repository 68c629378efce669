//! The PostgreSQL server restarted under three worker processes (the fixture
//! `tests/src/bin/queue-stress-node.rs`) while they drain jobs: they reconnect and carry
//! on, no job is lost, and none runs twice but as the at-least-once contract allows.
//!
//! Each test restarts a cluster of its own: restarting the shared one would cut the
//! other tests off.
//!
//! # What a restart may run twice
//!
//! While the server is away every write fails: claims, lease extensions, rescues, and
//! outcomes. The engine's writer keeps each outcome and tries its write again (after
//! 10 ms, doubling up to 5 s); it never drops one. No heartbeat extends a lease meanwhile.
//!
//! - Back within a lease, the server finds every lease alive: the retried outcomes are
//!   stored, runs under way go on, and nothing runs twice.
//! - Away longer than a lease, it finds leases run out. Each owner's next heartbeat
//!   extends its leases again, those of the jobs whose outcome waits for the writer
//!   included, and the leader waits two heartbeats after the server is back before it
//!   rescues, so usually nothing is rescued (0 in the runs we watched; 16 to 28 jobs
//!   when leases of waiting outcomes were not extended and the leader rescued at
//!   once). A job whose owner is not back within those two beats is rescued and runs
//!   again: the rescue records the attempt in the job's errors as "lease expired", and
//!   the fence refuses the former attempt's outcome when its retry comes.
//!
//! Either way a claim may be stored with its answer lost in the cut: that job waits,
//! unstarted, until its lease runs out and a rescue takes it back.
//!
//! So: every job completes; an attempt is done at most once; a job is done by more than
//! its completing attempt only for attempts whose lease expired, as its errors record;
//! and a lease expires only because the server was away.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rustf_workers::queue::{JobRecord, JobState, PostgresQueue, QueueOptions};
use rustf_workers::{JobOptions, WorkerRegistry};
use rustf_workers_tests::nodes::{all_jobs, read_log, until, until_finished, wall_ms, Line, Node};
use rustf_workers_tests::postgres::{Cluster, StopMode};
use serde_json::json;

const JOBS: usize = 3_000;
const NODES: [&str; 3] = ["a", "b", "c"];

/// What three nodes left after draining [`JOBS`] jobs through an outage of the server.
struct Drained {
    /// The jobs as stored at the end, by id.
    records: HashMap<String, JobRecord>,
    /// The whole log.
    lines: Vec<Line>,
    /// When the outage began (this machine's clock, the server's too), in ms.
    down_at_ms: i64,
    /// When the server was back.
    up_at_ms: i64,
}

impl Drained {
    /// The lines of job `id`'s attempts: `(what, attempt)`.
    fn runs_of(&self, id: &str) -> Vec<(&str, u32)> {
        self.lines
            .iter()
            .filter(|line| line.id == id && line.what != "end")
            .map(|line| (line.what.as_str(), line.attempt))
            .collect()
    }
}

/// Three nodes with leases of `lease_ms` drain [`JOBS`] jobs of 20 ms; once each has
/// done some, `outage` is done to the server. Waits until every job is finished, checks
/// that the nodes worked before the outage and after it and are still running, and
/// asserts what holds after any outage (see the module's docs).
async fn drain_through_outage(lease_ms: u64, outage: impl FnOnce(&Cluster)) -> Drained {
    let cluster = Cluster::start().unwrap_or_else(|why| panic!("{why}"));
    let url = cluster.url("postgres");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let client = WorkerRegistry::new();
    client
        .register("slow", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    let store = PostgresQueue::connect(&url).await.unwrap();
    client
        .use_queue_with(store.clone(), QueueOptions::new().runs_jobs(false))
        .unwrap();
    let mut nodes: Vec<Node> = NODES
        .into_iter()
        .map(|name| start(&url, &log, name, lease_ms))
        .collect();
    until(
        Duration::from_secs(30),
        "the nodes to open their queues",
        || nodes.iter().all(Node::is_ready),
    )
    .await;
    let jobs = (0..JOBS).map(|_| ("slow", Some(json!({ "ms": [20] })), JobOptions::new()));
    let ids = client.enqueue_many(jobs).await.unwrap();

    // Mid-drain: every node has done some work, and most jobs are still to do.
    until(
        Duration::from_secs(30),
        "every node to do some work",
        || {
            let lines = read_log(&log);
            NODES.iter().all(|name| {
                lines
                    .iter()
                    .filter(|line| line.what == "done" && line.node == *name)
                    .count()
                    >= 20
            })
        },
    )
    .await;
    let done_before = read_log(&log)
        .iter()
        .filter(|line| line.what == "done")
        .count();
    assert!(done_before < JOBS / 2, "the outage comes mid-drain");
    let down_at_ms = wall_ms();
    // `pg_ctl` waits for the server: on this thread, which the runtime can spare.
    tokio::task::block_in_place(|| outage(&cluster));
    let up_at_ms = wall_ms();

    until_finished(&store, JOBS, Duration::from_secs(60)).await;
    for node in &mut nodes {
        assert!(node.is_running(), "node {} died", node.name());
    }
    drop(nodes);
    let records: HashMap<String, JobRecord> = all_jobs(&store, Some("slow"))
        .await
        .into_iter()
        .map(|job| (job.id.clone(), job))
        .collect();
    let drained = Drained {
        records,
        lines: read_log(&log),
        down_at_ms,
        up_at_ms,
    };

    // They reconnected and carried on: each did work once the server was back.
    let up_at_us = u64::try_from(up_at_ms).unwrap() * 1_000;
    for name in NODES {
        assert!(
            drained
                .lines
                .iter()
                .any(|line| line.what == "start" && line.node == name && line.at_us > up_at_us),
            "node {name} started nothing after the server came back"
        );
    }
    // Nothing lost: every job completed.
    assert_eq!(drained.records.len(), JOBS, "no job lost, none added");
    for id in &ids {
        let job = &drained.records[id];
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        let runs = drained.runs_of(id);
        // Each attempt is one claim: started once, done at most once.
        for attempt in 1..=job.attempt {
            let lines = |what| runs.iter().filter(|run| **run == (what, attempt)).count();
            assert!(lines("start") <= 1, "{id} attempt {attempt}: {runs:?}");
            assert!(lines("done") <= 1, "{id} attempt {attempt}: {runs:?}");
        }
        assert!(
            runs.contains(&("done", job.attempt)),
            "{id}: the completing attempt {} was done: {runs:?}",
            job.attempt
        );
        // Only leases that ran out while the server was away: no other error, none
        // before the outage.
        for error in &job.errors {
            let lease_until = expired_lease(&error.error)
                .unwrap_or_else(|| panic!("{id}: an error but a lost lease: {job:?}"));
            assert!(
                lease_until > down_at_ms,
                "{id}: a lease ran out at {lease_until}, before the server went down at \
                 {down_at_ms}: {job:?}"
            );
            assert!(lease_until <= error.at_ms, "{id}: rescued early: {job:?}");
        }
        // Done by another attempt than the completing one: only if that attempt's lease
        // expired, its outcome never stored.
        for &(_, attempt) in runs.iter().filter(|(what, _)| *what == "done") {
            let lost = job
                .errors
                .iter()
                .any(|error| error.attempt == attempt && expired_lease(&error.error).is_some());
            assert!(
                attempt == job.attempt || lost,
                "{id} done at attempt {attempt}, neither stored nor rescued: {job:?} {runs:?}"
            );
        }
    }
    drained
}

/// A restart (`pg_ctl restart -m fast`, every session ended) while the nodes drain, with
/// leases longer than the server is away: each job is done exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_restart_within_a_lease_loses_nothing_and_runs_nothing_twice() {
    let drained = drain_through_outage(10_000, |cluster| {
        cluster.restart_with(StopMode::Fast);
    })
    .await;
    for (id, job) in &drained.records {
        let runs = drained.runs_of(id);
        let done = runs.iter().filter(|(what, _)| *what == "done").count();
        assert_eq!(done, 1, "{id} done once: {runs:?} {job:?}");
    }
    eprintln!(
        "server away {} ms; {} jobs with a lost claim",
        drained.up_at_ms - drained.down_at_ms,
        drained
            .records
            .values()
            .filter(|job| job.attempt > 1)
            .count()
    );
}

/// The server crashes (`pg_ctl stop -m immediate`) and stays down four seconds, longer
/// than the nodes' leases of 1.5 s: nothing is lost, and a job runs again only where
/// its earlier attempt's lease expired unstored (see the module's docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_longer_than_a_lease_loses_nothing_and_reruns_only_expired_attempts() {
    let drained = drain_through_outage(1_500, |cluster| {
        cluster.stop_server(StopMode::Immediate);
        // The outage itself, not a wait for something: the server is gone meanwhile.
        std::thread::sleep(Duration::from_secs(4));
        cluster.start_server();
    })
    .await;
    let rescued = drained
        .records
        .values()
        .filter(|job| !job.errors.is_empty())
        .count();
    let twice = drained
        .records
        .keys()
        .filter(|id| {
            let runs = drained.runs_of(id);
            runs.iter().filter(|(what, _)| *what == "done").count() > 1
        })
        .count();
    eprintln!(
        "server away {} ms; {rescued} jobs rescued, {twice} of them done twice",
        drained.up_at_ms - drained.down_at_ms
    );
}

fn start(url: &str, log: &Path, name: &str, lease_ms: u64) -> Node {
    Node::start(
        env!("CARGO_BIN_EXE_queue-stress-node"),
        url,
        log,
        name,
        lease_ms,
        &[],
    )
}

/// The time the lease ran out, from a rescue's error: "lease expired at <ms> (owner ...".
fn expired_lease(error: &str) -> Option<i64> {
    let rest = error.strip_prefix("lease expired at ")?;
    rest.split(' ').next()?.parse().ok()
}
