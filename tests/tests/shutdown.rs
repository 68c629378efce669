//! Graceful shutdown on an owned registry, on tokio's paused clock.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CancelReason, WorkerRegistry, DEFAULT_SHUTDOWN_GRACE};
use tokio::time::Instant;

async fn registry() -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    // Finishes its work when asked to stop, taking 2 s to wrap up.
    workers
        .register("polite", |ctx| async move {
            ctx.cancelled().await;
            assert!(ctx.is_cancelled());
            ctx.sleep(Duration::from_secs(2)).await;
            ctx.emit(json!("saved"))?;
            Ok(())
        })
        .await
        .unwrap();
    // Ignores the request.
    workers
        .register("stubborn", |ctx| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_workers_that_stop_within_the_grace_period() {
    let workers = registry().await;
    assert_eq!(workers.shutdown_grace(), DEFAULT_SHUTDOWN_GRACE);
    let mut handle = workers.call("polite", None, None).await.unwrap();
    tokio::task::yield_now().await;

    let start = Instant::now();
    workers.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(workers.running().await.unwrap().is_empty());
    assert_eq!(handle.recv().await, Some(json!("saved")));
    handle.await_result().await.unwrap();
    let stats = workers.stats("polite").await.unwrap();
    assert_eq!((stats.runs, stats.errors), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_what_is_left_after_the_grace_period() {
    let workers = registry().await;
    workers.set_shutdown_grace(Duration::from_secs(10));
    let stubborn = workers.call("stubborn", None, None).await.unwrap();
    let polite = workers.call("polite", None, None).await.unwrap();
    tokio::task::yield_now().await;

    let start = Instant::now();
    workers.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(workers.running().await.unwrap().is_empty());

    polite.await_result().await.unwrap();
    let err = stubborn.await_result().await.unwrap_err();
    assert_eq!(err.cancel_reason(), Some(CancelReason::Shutdown), "{err}");
    assert_eq!(
        err.to_string(),
        "Worker 'stubborn' was cancelled by shutdown"
    );
    let stats = workers.stats("stubborn").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_starts_new_calls_are_refused() {
    let workers = registry().await;
    workers.set_shutdown_grace(Duration::from_secs(1));
    let _stubborn = workers.call("stubborn", None, None).await.unwrap();
    assert!(!workers.is_shutting_down());

    let shutdown = tokio::spawn({
        let workers = workers.clone();
        async move { workers.shutdown().await }
    });
    tokio::task::yield_now().await;
    assert!(workers.is_shutting_down());
    let err = workers.call("polite", None, None).await.unwrap_err();
    assert!(err.is_shutting_down());
    assert_eq!(
        err.to_string(),
        "workers are shutting down: no new runs are accepted"
    );
    assert!(workers
        .run("polite", None)
        .await
        .unwrap_err()
        .is_shutting_down());
    assert_eq!(workers.stats("polite").await.unwrap().runs, 0);

    shutdown.await.unwrap().unwrap();
    assert!(workers
        .call("polite", None, None)
        .await
        .unwrap_err()
        .is_shutting_down());
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_nothing_running_returns_at_once_and_can_be_repeated() {
    let workers = registry().await;
    let start = Instant::now();
    workers.shutdown().await.unwrap();
    workers.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn concurrent_shutdowns_all_return_when_the_last_run_is_gone() {
    let workers = registry().await;
    workers.set_shutdown_grace(Duration::from_secs(5));
    let _run = workers.call("stubborn", None, None).await.unwrap();
    let start = Instant::now();
    let (a, b) = tokio::join!(workers.shutdown(), workers.shutdown());
    a.unwrap();
    b.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(workers.running().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_runtime_still_counts_its_runs() {
    let workers = registry().await;
    let inner = workers.clone();
    // A runtime that goes away with a run still in it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let handle = inner.call("stubborn", None, None).await.unwrap();
            tokio::task::yield_now().await;
            drop(handle);
        });
    })
    .join()
    .unwrap();
    let stats = workers.stats("stubborn").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (1, 1, 0));
    assert!(workers.running().await.unwrap().is_empty());
}
