//! Nodes on one PostgreSQL database hearing each other through `LISTEN`/`NOTIFY`: a job
//! stored on one node wakes another at once, a cancel asked on one node stops the run on
//! the node that holds it, a handle on one node streams the messages of a job running on
//! another (one claimed ahead there too), one node leads the maintenance, and a subscription comes back after the
//! server restarts.
//!
//! Each node here polls once an hour and beats once every half hour, so anything that
//! happens within the tests' deadlines came by notification.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustf_workers::queue::{
    JobState, JobStore, NewJob, PostgresQueue, QueueOptions, StoreEvent, StoreEvents,
};
use rustf_workers::{CallOptions, Error, JobOptions, WorkerRegistry};
use rustf_workers_tests::postgres::{Cluster, TestDatabase};
use serde_json::json;

/// Long enough that no poll or heartbeat happens during a test.
const HOUR: Duration = Duration::from_secs(3600);

/// What a test waits for a notification's effect, at most.
const DEADLINE: Duration = Duration::from_secs(20);

/// A queue that hears of work only through notifications.
fn quiet() -> QueueOptions {
    QueueOptions::new()
        .poll_interval(HOUR)
        .lease(HOUR)
        .heartbeat(HOUR / 2)
}

async fn node(url: &str, options: QueueOptions) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    let store = PostgresQueue::connect(url).await.unwrap();
    workers.use_queue_with(store, options).unwrap();
    workers
}

/// Polls `check` until it holds, failing after [`DEADLINE`] with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < DEADLINE,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The subscription's next event, within [`DEADLINE`].
async fn next(events: &mut StoreEvents) -> StoreEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event in time")
        .expect("the subscription lives")
}

async fn state(store: &PostgresQueue, id: &str) -> JobState {
    store.get(id).await.unwrap().unwrap().state
}

/// Waits until job `id` is `wanted` in `store`, failing after [`DEADLINE`] with `what`.
async fn until_state(store: &PostgresQueue, id: &str, wanted: JobState, what: &str) {
    eventually(what, || async { state(store, id).await == wanted }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stored_on_one_node_wakes_another_at_once() {
    let db = TestDatabase::create();
    let runner = node(db.url(), quiet()).await;
    runner
        .register("welcome", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    // A web process: stores jobs, runs none.
    let web = node(db.url(), quiet().runs_jobs(false)).await;
    web.register("welcome", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    // Let the runner make its first (empty) claim and go to sleep for the hour.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 0..3 {
        let id = web.enqueue("welcome", None).await.unwrap().to_string();
        until_state(
            &store,
            &id,
            JobState::Completed,
            &format!("job {round} run by the sleeping node"),
        )
        .await;
    }
    // A batch (of the size stored by COPY), one notification for the worker: every job
    // runs.
    let batch = (0..100).map(|_| ("welcome", None, JobOptions::new()));
    let ids = web.enqueue_many(batch).await.unwrap();
    for id in ids {
        let id = id.to_string();
        until_state(
            &store,
            &id,
            JobState::Completed,
            "a batch run by the sleeping node",
        )
        .await;
    }
    web.shutdown().await.unwrap();
    runner.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_on_one_node_stops_the_run_on_the_node_that_holds_it() {
    let db = TestDatabase::create();
    let runner = node(db.url(), quiet()).await;
    runner
        .register("long", |ctx| async move {
            ctx.cancelled().await;
            Err(Error::validation("stopped"))
        })
        .await
        .unwrap();
    let other = node(db.url(), quiet().runs_jobs(false)).await;
    other
        .register("long", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = other.enqueue("long", None).await.unwrap().to_string();
    until_state(
        &store,
        &id,
        JobState::Running,
        "the job running on the runner",
    )
    .await;
    other.cancel(&id).await.unwrap();
    until_state(
        &store,
        &id,
        JobState::Cancelled,
        "the run stopped and stored cancelled",
    )
    .await;
    assert!(runner.running().await.unwrap().is_empty());
    other.shutdown().await.unwrap();
    runner.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_on_one_node_streams_the_messages_of_a_job_running_on_another() {
    const STEPS: u64 = 30;
    let db = TestDatabase::create();
    let big = "x".repeat(20_000);
    let runner = node(db.url(), quiet()).await;
    let sent = big.clone();
    runner
        .register("steps", move |ctx| {
            let big = sent.clone();
            async move {
                for step in 0..STEPS {
                    ctx.emit(json!({ "step": step }))?;
                    if step == STEPS / 2 {
                        // Too large for a notification: it travels through a table.
                        ctx.emit(json!({ "big": big }))?;
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                ctx.emit(json!("done"))?;
                Ok(())
            }
        })
        .await
        .unwrap();
    let caller = node(db.url(), quiet().runs_jobs(false)).await;
    caller
        .register("steps", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = caller
        .enqueue_with("steps", None, JobOptions::new().unique_key("report"))
        .await
        .unwrap()
        .to_string();
    until_state(
        &store,
        &id,
        JobState::Running,
        "the job running on the runner",
    )
    .await;
    // The key is held by the job running on the other node: each handle follows it.
    let follow = || async {
        let mut handle = caller
            .call_with(
                "steps",
                None,
                CallOptions::new().durable(true).unique_key("report"),
            )
            .await
            .unwrap();
        assert_eq!(handle.id(), id);
        let mut messages = Vec::new();
        while let Some(message) = handle.recv().await {
            messages.push(message);
        }
        handle.await_result().await.unwrap();
        messages
    };
    let (messages, second) = tokio::join!(follow(), follow());
    assert!(!second.is_empty(), "a second handle follows too");
    assert_eq!(second.last(), Some(&json!("done")));

    // From when the follow reached the owner, in order, the large one whole, to the last.
    let steps: Vec<u64> = messages.iter().filter_map(|m| m["step"].as_u64()).collect();
    assert!(
        steps.len() >= (STEPS / 2) as usize,
        "most steps streamed: {steps:?}"
    );
    assert!(steps.windows(2).all(|w| w[1] == w[0] + 1), "{steps:?}");
    assert_eq!(steps.last(), Some(&(STEPS - 1)));
    assert_eq!(
        messages.last(),
        Some(&json!("done")),
        "the tail is not lost"
    );
    if steps[0] <= STEPS / 2 {
        assert!(
            messages
                .iter()
                .any(|m| m["big"].as_str() == Some(big.as_str())),
            "the large message arrived whole"
        );
    }
    caller.shutdown().await.unwrap();
    runner.shutdown().await.unwrap();
}

/// A job claimed ahead on its node (waiting for a slot there) when a handle elsewhere
/// asks to follow it: its messages are forwarded from its first once it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_follows_a_job_held_ahead_on_another_node_from_its_start() {
    let db = TestDatabase::create();
    let runner = node(db.url(), quiet().concurrency(1).claim_ahead(4)).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = Arc::clone(&gate);
    runner
        .register("gate", move |_ctx| {
            let held = Arc::clone(&held);
            async move {
                held.acquire().await.unwrap().forget();
                Ok(())
            }
        })
        .await
        .unwrap();
    runner
        .register("quick", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    runner
        .register("steps", |ctx| async move {
            for step in 0..5 {
                ctx.emit(json!({ "step": step }))?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ctx.emit(json!("done"))?;
            Ok(())
        })
        .await
        .unwrap();
    let caller = node(db.url(), quiet().runs_jobs(false)).await;
    for name in ["gate", "quick", "steps"] {
        caller
            .register(name, |_ctx| async { Ok(()) })
            .await
            .unwrap();
    }
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A short job first: the runner claims ahead once it has seen how long jobs take.
    let quick = caller.enqueue("quick", None).await.unwrap().to_string();
    until_state(
        &store,
        &quick,
        JobState::Completed,
        "the quick job completed",
    )
    .await;
    let gated = caller.enqueue("gate", None).await.unwrap().to_string();
    until_state(&store, &gated, JobState::Running, "the gate running").await;
    let id = caller
        .enqueue_with("steps", None, JobOptions::new().unique_key("report"))
        .await
        .unwrap()
        .to_string();
    until_state(
        &store,
        &id,
        JobState::Running,
        "the steps job claimed ahead",
    )
    .await;
    assert_eq!(runner.running().await.unwrap(), vec![gated.clone()]);

    let mut handle = caller
        .call_with(
            "steps",
            None,
            CallOptions::new().durable(true).unique_key("report"),
        )
        .await
        .unwrap();
    assert_eq!(handle.id(), id);
    // The follow reaches the runner while the job waits there; then a slot frees.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gate.add_permits(1);
    let mut messages = Vec::new();
    while let Some(message) = handle.recv().await {
        messages.push(message);
    }
    handle.await_result().await.unwrap();
    let steps: Vec<u64> = messages.iter().filter_map(|m| m["step"].as_u64()).collect();
    assert_eq!(steps, vec![0, 1, 2, 3, 4], "{messages:?}");
    assert_eq!(messages.last(), Some(&json!("done")));
    caller.shutdown().await.unwrap();
    runner.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_node_leads_until_its_time_runs_out_or_it_stops() {
    let db = TestDatabase::create();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    let t0 = 1_700_000_000_000;
    assert!(store.lead(t0, "a", 1_000).await.unwrap());
    assert!(!store.lead(t0 + 10, "b", 1_000).await.unwrap(), "a leads");
    assert!(
        store.lead(t0 + 500, "a", 1_000).await.unwrap(),
        "a keeps it"
    );
    assert!(
        !store.lead(t0 + 1_400, "b", 1_000).await.unwrap(),
        "kept to 1500"
    );
    assert!(
        store.lead(t0 + 1_500, "b", 1_000).await.unwrap(),
        "a's ran out"
    );
    assert!(!store.lead(t0 + 1_600, "a", 1_000).await.unwrap());
    // Stopping gives it up at once.
    store.stop_node(t0 + 1_700, "b").await.unwrap();
    assert!(store.lead(t0 + 1_800, "a", 1_000).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_resumes_after_the_server_restarts() {
    // A cluster of its own: restarting the shared one would cut the other tests off.
    let cluster = Arc::new(Cluster::start().unwrap_or_else(|why| panic!("{why}")));
    let store = PostgresQueue::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    let mut events = store.subscribe().expect("PostgreSQL tells events");
    assert_eq!(next(&mut events).await, StoreEvent::Resumed, "listening");
    let now = 1_700_000_000_000;
    store
        .enqueue(now, vec![NewJob::new("j1", "w")])
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        StoreEvent::Available { worker: "w".into() }
    );

    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, StoreEvent::Resumed, "back");
    // The pool's connections were cut too: the first write may meet a broken one.
    let mut stored = false;
    for _ in 0..3 {
        let job = NewJob::new("j2", "w2");
        if store.enqueue(now, vec![job]).await.is_ok() {
            stored = true;
            break;
        }
    }
    assert!(stored);
    assert_eq!(
        next(&mut events).await,
        StoreEvent::Available {
            worker: "w2".into()
        }
    );
}
