//! Statistics agree with what callers see: once a caller has a run's result, a snapshot
//! counts the run as finished and no longer as running, on any thread.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{RunState, WorkerOptions, WorkerRegistry};

/// 3,000 runs on two threads, each awaited by its caller, then a snapshot: the run is
/// counted in `runs` and not in `running`, never in both. Before `running` was counted
/// down ahead of the outcome's publication, tens to hundreds of these snapshots still
/// counted the run as live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_after_the_result_never_counts_the_run_as_running() {
    let workers = WorkerRegistry::new();
    workers
        .register("hop", |ctx| async move {
            // Waits once, so the run finishes on its own task, often on the other thread.
            tokio::task::yield_now().await;
            if ctx.payload().is_some() {
                return Err(Error::internal("asked to fail"));
            }
            Ok(())
        })
        .await
        .unwrap();
    let mut both = 0;
    for i in 0..3_000u64 {
        let payload = (i % 3 == 0).then(|| json!({ "fail": true }));
        if i % 2 == 0 {
            let handle = workers.call("hop", None, payload).await.unwrap();
            let _ = handle.await_result().await;
        } else {
            let _ = workers.run("hop", payload).await;
        }
        let stats = workers.stats("hop").await.unwrap();
        assert_eq!(stats.runs, i + 1, "the awaited run is counted");
        if stats.running != 0 {
            both += 1;
        }
    }
    assert_eq!(both, 0, "snapshots that counted a finished run as running");
}

/// While a retried run waits out its backoff, its record lists each attempt once: the
/// failed one, and nothing under way.
#[tokio::test(start_paused = true)]
async fn a_backing_off_run_lists_each_attempt_once() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "twice",
            WorkerOptions::new()
                .retries(1)
                .backoff(Duration::from_secs(10), Duration::from_secs(10)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    return Err(Error::internal("first try"));
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    let handle = workers.call("twice", None, None).await.unwrap();
    let id = handle.id().to_owned();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let record = workers.run_record(&id).unwrap();
    assert_eq!(record.state, RunState::BackingOff);
    let attempts: Vec<(u32, RunState)> = record
        .attempts
        .iter()
        .map(|a| (a.number, a.state))
        .collect();
    assert_eq!(attempts, [(1, RunState::Failed)]);

    handle.await_result().await.unwrap();
    let record = workers.run_record(&id).unwrap();
    let attempts: Vec<(u32, RunState)> = record
        .attempts
        .iter()
        .map(|a| (a.number, a.state))
        .collect();
    assert_eq!(attempts, [(1, RunState::Failed), (2, RunState::Completed)]);
}
