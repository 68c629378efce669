//! Cron on three worker processes sharing one PostgreSQL database (the fixture
//! `tests/src/bin/queue-stress-node.rs`): each registers the same worker scheduled every
//! second, so all three race for every tick. The store records each tick once, by the
//! primary key of `cron_ticks`, whichever node gets there first: one job per tick, no
//! tick missed, and every tick's job runs once.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rustf_workers::queue::{JobState, PostgresQueue};
use rustf_workers_tests::nodes::{all_jobs, read_log, until, until_finished, wall_ms, Node};
use rustf_workers_tests::postgres::TestDatabase;

/// How many ticks the three nodes race for, at least.
const TICKS: usize = 6;

fn start(url: &str, log: &Path, name: &str, env: &[(&str, &str)]) -> Node {
    Node::start(
        env!("CARGO_BIN_EXE_queue-stress-node"),
        url,
        log,
        name,
        10_000,
        env,
    )
}

/// The ticks recorded for worker `cron`, oldest first, with the job each enqueued.
async fn recorded_ticks(db: &tokio_postgres::Client) -> Vec<(i64, String)> {
    db.query(
        "SELECT tick_ms, job_id FROM cron_ticks WHERE worker = 'cron' ORDER BY tick_ms",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_schedule_enqueue_each_tick_once_and_run_it() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    let (raw, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

    let every_second = [("QUEUE_NODE_CRON", "* * * * * *")];
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .into_iter()
        .map(|name| start(db.url(), &log, name, &every_second))
        .collect();
    until(
        Duration::from_secs(30),
        "the nodes to open their queues",
        || nodes.iter().all(Node::is_ready),
    )
    .await;
    // Ticks from now on find all three nodes racing.
    let all_ready_ms = wall_ms();
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded_ticks(&raw)
        .await
        .iter()
        .filter(|(tick, _)| *tick > all_ready_ms)
        .count()
        < TICKS
    {
        assert!(
            Instant::now() < deadline,
            "fewer than {TICKS} ticks in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A graceful stop: the schedules stop, and what runs ends or is handed back.
    let stopping_ms = wall_ms();
    for node in &nodes {
        node.signal("INT");
    }
    for node in &mut nodes {
        let status = node.exited(Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "node {} exited with {status}",
            node.name()
        );
    }
    let ticks = recorded_ticks(&raw).await;
    // A node without the schedule runs what the last ticks left waiting, and adds none.
    let mut mop = start(db.url(), &log, "d", &[]);
    until_finished(&store, ticks.len(), Duration::from_secs(30)).await;
    // Before it is ready, a SIGINT would find no handler, and kill it.
    until(Duration::from_secs(30), "d to open its queue", || {
        mop.is_ready()
    })
    .await;
    mop.signal("INT");
    assert!(mop.exited(Duration::from_secs(30)).await.success());
    assert_eq!(recorded_ticks(&raw).await, ticks, "d enqueued no tick");

    // Every second from the first tick to the last, on whole seconds, once each.
    let seconds: Vec<i64> = ticks.iter().map(|(tick, _)| *tick).collect();
    assert!(seconds.len() >= TICKS, "{seconds:?}");
    assert!(seconds.iter().all(|tick| tick % 1_000 == 0), "{seconds:?}");
    assert!(
        seconds.windows(2).all(|pair| pair[1] - pair[0] == 1_000),
        "one tick a second, none missed or repeated: {seconds:?}"
    );
    // One job per tick: the jobs stored are exactly those the ticks enqueued.
    let jobs = all_jobs(&store, Some("cron")).await;
    let tick_jobs: HashSet<&str> = ticks.iter().map(|(_, job)| job.as_str()).collect();
    let stored: HashSet<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(tick_jobs.len(), ticks.len(), "a job of its own per tick");
    assert_eq!(stored, tick_jobs, "no job but the ticks'");
    // Each ran once, and completed.
    for job in &jobs {
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert!(job.errors.is_empty(), "{job:?}");
    }
    let lines = read_log(&log);
    let mut runs: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for line in lines.iter().filter(|line| line.what != "end") {
        runs.entry(&line.id)
            .or_default()
            .push((&line.what, &line.node));
    }
    for (tick, id) in &ticks {
        let run = runs.get(id.as_str()).cloned().unwrap_or_default();
        let [("start", on), ("done", _)] = run[..] else {
            panic!("the job of tick {tick} did not run once: {run:?}");
        };
        // Claimed at once by the node that enqueued it (its poller is woken), so the
        // three ran every tick but those of the stop's last second.
        assert!(
            on != "d" || *tick > stopping_ms - 1_000,
            "tick {tick} waited for d, though the nodes ran until {stopping_ms}"
        );
    }
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for run in runs.values() {
        *per_node.entry(run[0].1).or_default() += 1;
    }
    eprintln!("{} ticks, run by {per_node:?}", ticks.len());
}
