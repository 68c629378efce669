//! Retries with exponential backoff and jitter, on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CallOptions, CancelReason, RunState, WorkerOptions, WorkerRegistry};
use rustf_workers_tests::assert_wait_within;
use tokio::time::Instant;

/// A worker that fails the way its payload says, on attempts below `succeed_on`, and
/// records each attempt's number and start time.
async fn flaky(workers: &WorkerRegistry, retries: u32) -> Arc<Mutex<Vec<(u32, Instant)>>> {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    workers
        .register_with("flaky", WorkerOptions::new().retries(retries), move |ctx| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push((ctx.attempt(), Instant::now()));
                let payload = ctx.payload().cloned().unwrap_or_default();
                let succeed_on = payload["succeed_on"].as_u64().unwrap_or(u64::MAX);
                if u64::from(ctx.attempt()) >= succeed_on {
                    return Ok(());
                }
                match payload["how"].as_str().unwrap_or("error") {
                    "validation" => Err(Error::validation("bad input")),
                    "panic" => panic!("worker panic: attempt {}", ctx.attempt()),
                    "hang" => {
                        ctx.sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    }
                    _ => Err(Error::internal(format!("attempt {} failed", ctx.attempt()))),
                }
            }
        })
        .await
        .unwrap();
    attempts
}

fn numbers(attempts: &Mutex<Vec<(u32, Instant)>>) -> Vec<u32> {
    attempts.lock().unwrap().iter().map(|(n, _)| *n).collect()
}

#[tokio::test(start_paused = true)]
async fn a_failing_run_is_retried_with_growing_jittered_waits() {
    let workers = WorkerRegistry::new();
    let attempts = flaky(&workers, 3).await;
    workers
        .run("flaky", Some(json!({ "succeed_on": 3 })))
        .await
        .unwrap();
    assert_eq!(numbers(&attempts), [1, 2, 3]);
    let times: Vec<Instant> = attempts.lock().unwrap().iter().map(|(_, t)| *t).collect();
    let first_wait = times[1] - times[0];
    let second_wait = times[2] - times[1];
    assert_wait_within(first_wait, 500, 1_000);
    assert_wait_within(second_wait, 1_000, 2_000);

    // Statistics count every attempt.
    let stats = workers.stats("flaky").await.unwrap();
    assert_eq!(
        (stats.runs, stats.errors, stats.failed, stats.running),
        (3, 2, 2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_caller_gets_the_last_attempts_error_when_retries_run_out() {
    let workers = WorkerRegistry::new();
    let attempts = flaky(&workers, 2).await;
    let err = workers.run("flaky", None).await.unwrap_err();
    assert_eq!(err.to_string(), "internal error: attempt 3 failed");
    assert_eq!(numbers(&attempts), [1, 2, 3]);
    assert_eq!(workers.stats("flaky").await.unwrap().failed, 3);
}

#[tokio::test(start_paused = true)]
async fn validation_errors_are_never_retried() {
    let workers = WorkerRegistry::new();
    let attempts = flaky(&workers, 5).await;
    let err = workers
        .run("flaky", Some(json!({ "how": "validation" })))
        .await
        .unwrap_err();
    assert!(err.is_validation());
    assert_eq!(numbers(&attempts), [1]);
}

#[tokio::test(start_paused = true)]
async fn panics_and_timeouts_are_retried() {
    rustf_workers_tests::quiet_worker_panics();
    let workers = WorkerRegistry::new();
    let attempts = flaky(&workers, 1).await;
    let err = workers
        .run("flaky", Some(json!({ "how": "panic" })))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Worker 'flaky' panicked: worker panic: attempt 2"
    );

    let handle = workers
        .call(
            "flaky",
            Some(Duration::from_secs(5)),
            Some(json!({ "how": "hang" })),
        )
        .await
        .unwrap();
    assert!(handle.await_result().await.unwrap_err().is_timeout());
    assert_eq!(numbers(&attempts), [1, 2, 1, 2]);
    let stats = workers.stats("flaky").await.unwrap();
    assert_eq!((stats.panicked, stats.timed_out), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn a_call_can_set_its_own_retries() {
    let workers = WorkerRegistry::new();
    let attempts = flaky(&workers, 0).await;
    let handle = workers
        .call_with("flaky", None, CallOptions::new().retries(2))
        .await
        .unwrap();
    assert!(handle.await_result().await.is_err());
    assert_eq!(numbers(&attempts), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn cancel_and_shutdown_stop_a_run_that_is_backing_off() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "slow-backoff",
            WorkerOptions::new()
                .retries(10)
                .backoff(Duration::from_secs(100), Duration::from_secs(100)),
            |_ctx| async { Err(Error::internal("nope")) },
        )
        .await
        .unwrap();

    let handle = workers.call("slow-backoff", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let info = workers.run_info(handle.id()).unwrap();
    assert_eq!((info.state, info.attempt), (RunState::BackingOff, 1));
    let start = Instant::now();
    handle.cancel().await.unwrap();
    let err = handle.await_result().await.unwrap_err();
    assert_eq!(err.cancel_reason(), Some(CancelReason::Requested), "{err}");
    assert_eq!(start.elapsed(), Duration::ZERO);

    let backing_off = workers.call("slow-backoff", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    workers.shutdown().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a backing-off run stops at once"
    );
    let err = backing_off.await_result().await.unwrap_err();
    assert_eq!(err.cancel_reason(), Some(CancelReason::Shutdown), "{err}");
    let stats = workers.stats("slow-backoff").await.unwrap();
    // Two failed first attempts, then two cancellations.
    assert_eq!(
        (stats.runs, stats.failed, stats.cancelled, stats.running),
        (4, 2, 2, 0)
    );
}

/// What docs/policies.md promises of a run stopped while it waits to retry: the failed
/// attempt was counted when it ended, and the stop is counted once more, as a
/// cancellation that ran for no time (no attempt was under way); the run's record lists
/// the failed attempt once.
#[tokio::test(start_paused = true)]
async fn a_stop_during_backoff_counts_the_failed_attempt_and_one_cancellation() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "stopped-backing-off",
            WorkerOptions::new()
                .retries(3)
                .backoff(Duration::from_secs(100), Duration::from_secs(100)),
            |ctx| async move {
                ctx.sleep(Duration::from_secs(2)).await;
                Err(Error::internal("nope"))
            },
        )
        .await
        .unwrap();
    let handle = workers
        .call("stopped-backing-off", None, None)
        .await
        .unwrap();
    let id = handle.id().to_owned();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(workers.run_info(&id).unwrap().state, RunState::BackingOff);
    handle.cancel().await.unwrap();
    assert!(handle.await_result().await.unwrap_err().is_cancelled());

    let stats = workers.stats("stopped-backing-off").await.unwrap();
    assert_eq!(
        (stats.runs, stats.errors, stats.failed, stats.cancelled),
        (2, 2, 1, 1)
    );
    // The failed attempt's 2 s of work, once; the stop ended no attempt.
    assert_eq!(stats.last_run_ms, Some(0));
    assert_eq!(stats.total_runtime_ms, 2_000);
    assert!(
        stats.last_error.as_deref().unwrap().contains("cancelled"),
        "{:?}",
        stats.last_error
    );
    assert_eq!(stats.running, 0);

    let record = workers.run_record(&id).unwrap();
    assert_eq!(record.state, RunState::Cancelled);
    let attempts: Vec<(u32, RunState, Option<u64>)> = record
        .attempts
        .iter()
        .map(|a| (a.number, a.state, a.duration_ms))
        .collect();
    assert_eq!(attempts, [(1, RunState::Failed, Some(2_000))]);
}

#[tokio::test(start_paused = true)]
async fn state_and_attempt_history_while_live_and_for_a_while_after() {
    let workers = WorkerRegistry::new();
    let _attempts = flaky(&workers, 3).await;
    workers.keep_finished_runs(Some((Duration::from_secs(60), 100)));

    let handle = workers
        .call("flaky", None, Some(json!({ "succeed_on": 3 })))
        .await
        .unwrap();
    let id = handle.id().to_owned();
    tokio::task::yield_now().await;
    let live = workers.run_record(&id).unwrap();
    assert_eq!(live.state, RunState::BackingOff);
    // Backing off, no attempt is under way: the failed one is the last.
    assert_eq!(live.attempts.len(), 1);
    assert_eq!(
        (live.attempts[0].number, live.attempts[0].state),
        (1, RunState::Failed)
    );
    assert_eq!(
        live.attempts[0].error.as_deref(),
        Some("internal error: attempt 1 failed")
    );

    handle.await_result().await.unwrap();
    let ended = workers.run_record(&id).unwrap();
    assert_eq!(ended.state, RunState::Completed);
    let states: Vec<RunState> = ended.attempts.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [RunState::Failed, RunState::Failed, RunState::Completed]
    );
    assert_eq!(serde_json::to_value(&ended).unwrap()["state"], "completed");

    // Kept for the retention, then forgotten.
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(workers.run_record(&id).unwrap_err().is_run_not_found());
    // Turned off: an ended run is gone at once.
    workers.keep_finished_runs(None);
    let quick = workers
        .call("flaky", None, Some(json!({ "succeed_on": 1 })))
        .await
        .unwrap();
    let quick_id = quick.id().to_owned();
    quick.await_result().await.unwrap();
    assert!(workers
        .run_record(&quick_id)
        .unwrap_err()
        .is_run_not_found());
}

#[tokio::test(start_paused = true)]
async fn ended_runs_are_remembered_by_default_within_a_bound() {
    let workers = WorkerRegistry::new();
    workers
        .register("fails", |_ctx| async { Err(Error::internal("no luck")) })
        .await
        .unwrap();
    let handle = workers.call("fails", None, None).await.unwrap();
    let id = handle.id().to_owned();
    assert!(handle.await_result().await.is_err());
    // No set-up: the record outlives the run.
    let record = workers.run_record(&id).unwrap();
    assert_eq!(
        (record.worker.as_str(), record.state),
        ("fails", RunState::Failed)
    );
    assert_eq!(record.attempts.len(), 1);
    assert_eq!(
        record.attempts[0].error.as_deref(),
        Some("internal error: no luck")
    );
    // For the default retention, then forgotten.
    tokio::time::sleep(rustf_workers::DEFAULT_FINISHED_RETENTION).await;
    assert!(workers.run_record(&id).unwrap_err().is_run_not_found());

    // At most `max` (rounded up to the 32 shards): 64 remembered of 1000.
    workers.keep_finished_runs(Some((Duration::from_secs(60), 64)));
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let handle = workers.call("fails", None, None).await.unwrap();
        ids.push(handle.id().to_owned());
        let _ = handle.await_result().await;
    }
    let kept = ids
        .iter()
        .filter(|id| workers.run_record(id).is_ok())
        .count();
    assert!((1..=64).contains(&kept), "{kept} records kept");
    // The newest is always among them.
    assert!(workers.run_record(ids.last().unwrap()).is_ok());
    // A zero retention keeps nothing, as `None` does.
    workers.keep_finished_runs(Some((Duration::ZERO, 64)));
    let handle = workers.call("fails", None, None).await.unwrap();
    let id = handle.id().to_owned();
    let _ = handle.await_result().await;
    assert!(workers.run_record(&id).unwrap_err().is_run_not_found());
    // A malformed or unknown id is not found, not an error of another kind.
    assert!(workers.run_record("nope").unwrap_err().is_run_not_found());
}
