//! The durable queue behind the registry: jobs enqueued, claimed and run by the same run
//! engine as calls, with their outcomes stored; retries whose backoff is stored; a
//! restart that finds what was left; shutdown that hands running jobs back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::queue::{JobFilter, JobState, QueueOptions, SqliteQueue};
use rustf_workers::{JobOptions, WorkerOptions, WorkerRegistry};
use rustf_workers_tests as _;
use serde::Deserialize;

fn options() -> QueueOptions {
    QueueOptions::new()
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(3))
}

async fn registry(path: &std::path::Path) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register("echo", |ctx| async move {
            ctx.emit(ctx.payload().cloned().unwrap_or(Value::Null))?;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(path).unwrap(), options())
        .unwrap();
    workers
}

#[tokio::test]
async fn an_enqueued_job_runs_once_as_a_run_with_its_id_and_is_stored_completed() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    workers
        .register("record", move |ctx| {
            let log = Arc::clone(&log);
            async move {
                log.lock().unwrap().push((
                    ctx.run_id().to_owned(),
                    ctx.attempt(),
                    ctx.payload().cloned(),
                ));
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();

    let id = workers
        .enqueue("record", Some(json!({ "n": 1 })))
        .await
        .unwrap();
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 1));
    assert_eq!(
        *seen.lock().unwrap(),
        [(id.clone(), 1, Some(json!({ "n": 1 })))]
    );
    let stats = workers.stats("record").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.running), (1, 0, 0));
    // The run was the engine's own: its record is remembered under the job's id.
    let record = workers.run_record(&id).unwrap();
    assert_eq!(record.state, rustf_workers::RunState::Completed);
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_at_enqueue_and_nothing_is_stored() {
    #[derive(Deserialize)]
    struct Email {
        #[allow(dead_code)] // read only to check the payload
        to: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let workers = registry(&dir.path().join("jobs.db")).await;
    workers
        .register("typed", |ctx| async move {
            let _email: Email = serde_json::from_value(ctx.payload().cloned().unwrap_or_default())?;
            Ok(())
        })
        .await
        .unwrap();

    let err = workers.enqueue("no-such-worker", None).await.unwrap_err();
    assert!(err.is_not_registered(), "{err}");
    let err = workers
        .enqueue_with("echo", None, JobOptions::new().timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    // A batch with one bad job stores none of them.
    let err = workers
        .enqueue_many([
            ("echo", None, JobOptions::new()),
            ("missing", None, JobOptions::new()),
        ])
        .await
        .unwrap_err();
    assert!(err.is_not_registered(), "{err}");
    let page = workers.jobs(JobFilter::default()).await.unwrap();
    assert!(page.jobs.is_empty(), "{:?}", page.jobs);

    let none = WorkerRegistry::new();
    assert!(matches!(
        none.enqueue("echo", None).await.unwrap_err(),
        Error::NoQueue
    ));
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_typed_worker_refuses_a_bad_payload_before_anything_is_stored() {
    // `fixture-echo` reads `{ "text": .. }` (tests/src/workers/echo.rs).
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::with_linked();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let err = workers
        .enqueue("fixture-echo", Some(json!({ "txet": "typo" })))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(err.to_string().contains("fixture-echo"), "{err}");
    assert!(workers
        .jobs(JobFilter::default())
        .await
        .unwrap()
        .jobs
        .is_empty());
    let id = workers
        .enqueue("fixture-echo", Some(json!({ "text": "hi" })))
        .await
        .unwrap();
    assert_eq!(
        workers.await_job(&id).await.unwrap().state,
        JobState::Completed
    );
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_attempt_is_retried_after_a_stored_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    workers
        .register_with(
            "flaky",
            WorkerOptions::new()
                .retries(2)
                .backoff(Duration::from_millis(200), Duration::from_millis(200)),
            move |ctx| {
                let counted = Arc::clone(&counted);
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if ctx.attempt() < 2 {
                        return Err(Error::internal(format!("attempt {} failed", ctx.attempt())));
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let id = workers.enqueue("flaky", None).await.unwrap();
    // The first attempt fails: the job waits in the store, retrying, with its error.
    let waiting = loop {
        let job = workers.job(&id).await.unwrap();
        if job.state == JobState::Retrying {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(waiting.attempt, 1);
    assert_eq!(waiting.errors.len(), 1);
    assert!(waiting.errors[0].error.contains("attempt 1 failed"));
    assert!(
        waiting.run_at_ms > waiting.errors[0].at_ms,
        "the backoff is stored"
    );

    let done = workers.await_job(&id).await.unwrap();
    assert_eq!((done.state, done.attempt), (JobState::Completed, 2));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    let stats = workers.stats("flaky").await.unwrap();
    assert_eq!((stats.runs, stats.failed), (2, 1), "each attempt is a run");
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn jobs_left_in_the_store_run_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let first = registry(&path).await;
    let later = first
        .enqueue_with(
            "echo",
            None,
            JobOptions::new().delay(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    first.shutdown().await.unwrap();
    drop(first);
    assert_eq!(
        SqliteQueue::open(&path)
            .map(|_| ())
            .err()
            .map(|e| e.to_string()),
        None
    );

    // A new process (here, a new registry) on the same file finds the job and runs it.
    let second = registry(&path).await;
    let job = second.job(&later).await.unwrap();
    assert_eq!(job.state, JobState::Scheduled);
    let done = second.await_job(&later).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_hands_a_running_job_back_without_counting_its_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let workers = WorkerRegistry::new();
    workers.set_shutdown_grace(Duration::from_millis(50));
    workers
        .register("stubborn", |ctx| async move {
            // Ignores the stop request: shutdown cancels it after the grace period.
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(&path).unwrap(), options())
        .unwrap();
    let id = workers.enqueue("stubborn", None).await.unwrap();
    while workers.job(&id).await.unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    workers.shutdown().await.unwrap();
    let job = workers.job(&id).await.unwrap();
    assert_eq!(job.state, JobState::Available, "handed back to the queue");
    assert_eq!(job.attempt, 0, "the stopped attempt is not counted");
}

#[tokio::test]
async fn cancel_by_id_stops_a_waiting_job_and_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let workers = registry(&dir.path().join("jobs.db")).await;
    workers
        .register("long", |ctx| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    let waiting = workers
        .enqueue_with(
            "echo",
            None,
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    workers.cancel(&waiting).await.unwrap();
    assert_eq!(
        workers.job(&waiting).await.unwrap().state,
        JobState::Cancelled
    );

    let running = workers.enqueue("long", None).await.unwrap();
    while workers.job(&running).await.unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    workers.cancel(&running).await.unwrap();
    let job = workers.await_job(&running).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(workers
        .cancel(&running)
        .await
        .unwrap_err()
        .is_run_not_found());
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_unique_key_holds_one_live_job_and_an_idempotency_key_replays() {
    let dir = tempfile::tempdir().unwrap();
    let workers = registry(&dir.path().join("jobs.db")).await;
    let later = JobOptions::new()
        .delay(Duration::from_secs(3600))
        .unique_key("daily-report");
    let first = workers
        .enqueue_with("echo", None, later.clone())
        .await
        .unwrap();
    let second = workers.enqueue_with("echo", None, later).await.unwrap();
    assert_eq!(first, second);

    let once = JobOptions::new().idempotency_key("payment-42");
    let paid = workers
        .enqueue_with("echo", None, once.clone())
        .await
        .unwrap();
    workers.await_job(&paid).await.unwrap();
    let again = workers.enqueue_with("echo", None, once).await.unwrap();
    assert_eq!(
        paid, again,
        "the completed job stands for the second enqueue"
    );
    workers.shutdown().await.unwrap();
}

/// Two processes (here, two registries) share one file and both run a worker scheduled
/// every second: each tick is enqueued once, and runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_worker_on_two_nodes_runs_each_tick_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let workers = WorkerRegistry::new();
        workers
            .register_with(
                "every-second",
                WorkerOptions::new().cron("* * * * * *"),
                |_ctx| async { Ok(()) },
            )
            .await
            .unwrap();
        workers
            .use_queue_with(SqliteQueue::open(&path).unwrap(), options())
            .unwrap();
        nodes.push(workers);
    }
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let page = nodes[0]
        .jobs(JobFilter {
            worker: Some("every-second".into()),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    let mut seconds: Vec<i64> = page
        .jobs
        .iter()
        .map(|job| job.created_at_ms / 1000)
        .collect();
    let ticks = seconds.len();
    seconds.dedup();
    assert!(ticks >= 2, "ticks enqueued: {ticks}");
    assert_eq!(seconds.len(), ticks, "one job per tick: {:?}", page.jobs);
    let runs: u64 = {
        let mut runs = 0;
        for node in &nodes {
            runs += node.stats("every-second").await.unwrap().runs;
        }
        runs
    };
    let completed = page
        .jobs
        .iter()
        .filter(|job| job.state == JobState::Completed)
        .count() as u64;
    assert_eq!(runs, completed, "each completed tick ran once");
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// The testing helpers: nothing runs until the test drains the queue, inline, with no
/// sleeps; what was enqueued can be asserted first.
#[tokio::test]
async fn a_test_asserts_what_was_enqueued_then_drains_it_inline() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let runs = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&runs);
    workers
        .register_with(
            "welcome",
            WorkerOptions::new()
                .retries(1)
                .backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
            move |ctx| {
                let counted = Arc::clone(&counted);
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    match ctx.payload().and_then(|p| p["user"].as_u64()) {
                        Some(_) => Ok(()),
                        None => Err(Error::internal("no user")),
                    }
                }
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    workers
        .enqueue("welcome", Some(json!({ "user": 7 })))
        .await
        .unwrap();
    workers
        .enqueue("welcome", Some(json!({ "nobody": true })))
        .await
        .unwrap();
    let waiting = workers.enqueued("welcome").await.unwrap();
    assert_eq!(waiting.len(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing runs until drained");

    assert_eq!(workers.drain_jobs().await.unwrap(), 2);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The failed one waits for its (hour-long) backoff: still enqueued, as retrying.
    let left = workers.enqueued("welcome").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].state, JobState::Retrying);
    assert_eq!(left[0].payload, Some(json!({ "nobody": true })));
    assert_eq!(workers.drain_jobs().await.unwrap(), 0, "nothing due");
    workers.shutdown().await.unwrap();
}

/// `drain_jobs` counts the runs it started: a stored job its worker cannot read (stored by
/// a process whose worker of that name takes anything) is claimed and discarded, not run.
#[tokio::test]
async fn drain_counts_the_runs_it_started_not_a_job_discarded_unrun() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let producer = WorkerRegistry::new();
    producer
        .register("fixture-echo", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    producer
        .use_queue_with(
            SqliteQueue::open(&path).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    let bad = producer
        .enqueue("fixture-echo", Some(json!({ "txet": "typo" })))
        .await
        .unwrap();
    producer
        .enqueue("fixture-echo", Some(json!({ "text": "hi" })))
        .await
        .unwrap();
    // `fixture-echo` here reads `{ "text": .. }` (tests/src/workers/echo.rs).
    let workers = WorkerRegistry::with_linked();
    workers
        .use_queue_with(
            SqliteQueue::open(&path).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    assert_eq!(workers.drain_jobs().await.unwrap(), 1);
    let job = workers.job(&bad).await.unwrap();
    assert_eq!(job.state, JobState::Discarded, "{job:?}");
    assert!(job.errors[0].error.contains("fixture-echo"), "{job:?}");
    workers.shutdown().await.unwrap();
    producer.shutdown().await.unwrap();
}

/// A stored job's run has no reader by design: a worker's idle timeout (stop when nobody
/// listens) does not cut it short.
#[tokio::test]
async fn an_idle_timeout_never_stops_a_stored_job() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "patient",
            WorkerOptions::new().idle_timeout(Duration::from_millis(20)),
            |ctx| async move {
                ctx.sleep(Duration::from_millis(200)).await;
                ctx.emit(json!("finished the work"))?;
                Err(Error::validation("reached the end"))
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let id = workers.enqueue("patient", None).await.unwrap();
    let job = workers.await_job(&id).await.unwrap();
    // Stopped when idle, it would have completed at 20 ms; it ran to its own end.
    assert_eq!(job.state, JobState::Discarded, "{job:?}");
    assert!(job.errors[0].error.contains("reached the end"), "{job:?}");
    workers.shutdown().await.unwrap();
}

/// A process claims only what its limits let it start: the registry's `set_max_running`
/// and its memory pool against each job's declared memory. The rest stays in the store,
/// free for another process, instead of waiting here under a lease.
#[tokio::test]
async fn a_process_claims_no_more_than_its_running_cap_and_memory_pool_allow() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers.set_max_running(2);
    workers.set_memory_pool(100);
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    for (name, memory) in [("light", 0), ("heavy", 60)] {
        let release = Arc::clone(&release);
        workers
            .register_with(name, WorkerOptions::new().memory(memory), move |_ctx| {
                let release = Arc::clone(&release);
                async move {
                    release.acquire().await.unwrap().forget();
                    Ok(())
                }
            })
            .await
            .unwrap();
    }
    // All due before the first claim, stored by another process (that runs nothing).
    let path = dir.path().join("jobs.db");
    let producer = WorkerRegistry::new();
    for name in ["heavy", "light"] {
        producer
            .register(name, |_ctx| async { Ok(()) })
            .await
            .unwrap();
    }
    producer
        .use_queue_with(
            SqliteQueue::open(&path).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    let jobs = ["heavy", "heavy", "heavy", "light", "light", "light"]
        .map(|name| (name, None, JobOptions::new()));
    let ids = producer.enqueue_many(jobs).await.unwrap();
    workers
        .use_queue_with(SqliteQueue::open(&path).unwrap(), options())
        .unwrap();
    let running = || async {
        let filter = JobFilter {
            states: vec![JobState::Running],
            ..JobFilter::default()
        };
        workers.jobs(filter).await.unwrap().jobs
    };
    // Two run at once (the cap), of which at most one heavy (60 of 100 bytes).
    while workers.running().await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Give the poller time to claim more, were it to.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let claimed = running().await;
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert!(
        claimed.iter().filter(|job| job.worker == "heavy").count() <= 1,
        "{claimed:?}"
    );
    release.add_permits(ids.len());
    for id in &ids {
        assert_eq!(
            workers.await_job(id).await.unwrap().state,
            JobState::Completed
        );
    }
    workers.shutdown().await.unwrap();
}

/// Shut down and dropped, a registry leaves none of its queue's tasks running: they held
/// one another (the outcome writer held the runner, which held the writer's channel), so
/// the runner, its store and the writer lived for ever.
#[tokio::test]
async fn a_registry_shut_down_and_dropped_leaves_no_queue_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    {
        let dir = tempfile::tempdir().unwrap();
        let workers = registry(&dir.path().join("jobs.db")).await;
        let id = workers.enqueue("echo", None).await.unwrap();
        workers.await_job(&id).await.unwrap();
        workers.shutdown().await.unwrap();
    }
    for _ in 0..1_000 {
        if metrics.num_alive_tasks() == before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "{} tasks still alive, {before} before the queue",
        metrics.num_alive_tasks()
    );
}

/// Each process that runs jobs is a node of the store: listed with its capacity and load
/// and a status from its heartbeats, offline once its queue shut down. One whose jobs keep
/// panicking cools down: it claims nothing for a while, and shows unhealthy.
#[tokio::test]
async fn nodes_are_listed_with_their_load_and_cool_down_after_repeated_panics() {
    use rustf_workers::queue::NodeStatus;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let node = |cooldown: u32| {
        let path = path.clone();
        async move {
            let workers = WorkerRegistry::new();
            workers
                .register("boom", |_ctx| async { panic!("a node-shaped failure") })
                .await
                .unwrap();
            let quick = options()
                .lease(Duration::from_millis(300))
                .cooldown(cooldown, Duration::from_secs(3600));
            workers
                .use_queue_with(SqliteQueue::open(&path).unwrap(), quick)
                .unwrap();
            workers
        }
    };
    let a = node(2).await;
    // A web process that only enqueues is not a node.
    let web = WorkerRegistry::new();
    web.register("boom", |_ctx| async { Ok(()) }).await.unwrap();
    web.use_queue_with(
        SqliteQueue::open(&path).unwrap(),
        QueueOptions::new().runs_jobs(false),
    )
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(web.enqueue("boom", None).await.unwrap());
    }
    // Two panics in a row: `a` stops claiming; a third job waits.
    for id in &ids {
        assert_eq!(a.await_job(id).await.unwrap().state, JobState::Discarded);
    }
    ids.push(web.enqueue("boom", None).await.unwrap());
    let a_id = a.node_id().unwrap();
    let mut status = None;
    for _ in 0..1_000 {
        let nodes = web.nodes().await.unwrap();
        assert_eq!(nodes.len(), 1, "only `a` runs jobs: {nodes:?}");
        assert_eq!(
            (nodes[0].node.id.as_str(), nodes[0].node.concurrency),
            (a_id.as_str(), 16)
        );
        assert_eq!(nodes[0].node.workers, ["boom"]);
        status = Some(nodes[0].status);
        if status == Some(NodeStatus::Unhealthy) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status, Some(NodeStatus::Unhealthy), "cooling down");
    // Asked to run what is due, here and now, it claims nothing.
    assert_eq!(
        a.drain_jobs().await.unwrap(),
        0,
        "a cooling node claims nothing"
    );
    assert_eq!(web.job(&ids[2]).await.unwrap().state, JobState::Available);

    // Another node, with no cooldown, takes it; `a`, shut down, is offline.
    let b = node(0).await;
    assert_eq!(
        b.await_job(&ids[2]).await.unwrap().state,
        JobState::Discarded
    );
    a.shutdown().await.unwrap();
    let nodes = web.nodes().await.unwrap();
    let of = |id: &str| nodes.iter().find(|n| n.node.id == id).unwrap();
    assert_eq!(of(&a_id).status, NodeStatus::Offline);
    assert!(of(&a_id).stopped_at_ms.is_some());
    assert_ne!(of(&b.node_id().unwrap()).status, NodeStatus::Offline);
    b.shutdown().await.unwrap();
    web.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_heartbeat_longer_than_half_the_lease_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let options = QueueOptions::new()
        .lease(Duration::from_secs(10))
        .heartbeat(Duration::from_secs(6));
    let err = workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options,
        )
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(err.to_string().contains("at most half its lease"), "{err}");
    // Nothing was started: the registry still has no queue.
    assert!(matches!(workers.nodes().await, Err(Error::NoQueue)));
}
