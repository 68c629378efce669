//! Timeouts, on tokio's paused clock.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{WorkerOptions, WorkerRegistry};
use rustf_workers_tests::Tracker;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_run_past_its_timeout_is_stopped_and_reported() {
    let workers = WorkerRegistry::new();
    let tracker = Tracker::default();
    let t = tracker.clone();
    workers
        .register("slow-task", move |ctx| {
            let held = t.track();
            async move {
                ctx.sleep(Duration::from_secs(60)).await;
                drop(held);
                ctx.emit(json!("never"))?;
                Ok(())
            }
        })
        .await
        .unwrap();

    let start = Instant::now();
    let mut handle = workers
        .call("slow-task", Some(Duration::from_secs(5)), None)
        .await
        .unwrap();
    assert_eq!(handle.recv().await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(tracker.live(), 0, "the handler's future is dropped");
    let err = handle.await_result().await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.to_string(), "Worker 'slow-task' timed out after 5s");

    let stats = workers.stats("slow-task").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.timed_out), (1, 1, 1));
    assert_eq!(stats.last_run_ms, Some(5000));
    assert!(workers.running().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_definition_timeout_applies_unless_the_call_overrides_it() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "report",
            WorkerOptions::new().timeout(Duration::from_millis(500)),
            |ctx| async move {
                let ms = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
                ctx.sleep(Duration::from_millis(ms)).await;
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(
        workers.options("report").unwrap().default_timeout(),
        Some(Duration::from_millis(500))
    );

    workers.run("report", Some(json!(400))).await.unwrap();
    let err = workers.run("report", Some(json!(600))).await.unwrap_err();
    assert_eq!(err.to_string(), "Worker 'report' timed out after 500ms");

    let handle = workers
        .call("report", Some(Duration::from_secs(1)), Some(json!(600)))
        .await
        .unwrap();
    handle.await_result().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_that_finishes_in_time_is_not_timed_out() {
    let workers = WorkerRegistry::new();
    workers
        .register("quick", |ctx| async move {
            ctx.sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await
        .unwrap();
    let handle = workers
        .call("quick", Some(Duration::from_secs(2)), None)
        .await
        .unwrap();
    handle.await_result().await.unwrap();
    // Long after: the finished run's timer fired nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = workers.stats("quick").await.unwrap();
    assert_eq!(
        (stats.runs, stats.timed_out, stats.last_run_ms),
        (1, 0, Some(1000))
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_timeout_is_no_timeout() {
    let workers = WorkerRegistry::new();
    workers.register("w", |_| async { Ok(()) }).await.unwrap();
    let handle = workers.call("w", Some(Duration::MAX), None).await.unwrap();
    handle.await_result().await.unwrap();
}
