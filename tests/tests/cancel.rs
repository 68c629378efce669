//! Cancelling runs by id and by handle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CancelReason, WorkerRegistry};
use rustf_workers_tests::Tracker;

async fn registry_with_sleeper(reached_end: Arc<AtomicBool>, tracker: Tracker) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register("sleeper", move |ctx| {
            let reached_end = Arc::clone(&reached_end);
            let held = tracker.track();
            async move {
                ctx.emit(json!("started"))?;
                ctx.sleep(Duration::from_secs(3600)).await;
                reached_end.store(true, Ordering::SeqCst);
                drop(held);
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
}

#[tokio::test(start_paused = true)]
async fn cancel_by_id_stops_the_run_at_its_next_await() {
    let reached_end = Arc::new(AtomicBool::new(false));
    let tracker = Tracker::default();
    let workers = registry_with_sleeper(Arc::clone(&reached_end), tracker.clone()).await;

    let mut handle = workers.call("sleeper", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!("started")));
    assert_eq!(workers.running().await.unwrap(), [handle.id()]);

    workers.cancel(handle.id()).await.unwrap();
    assert_eq!(handle.recv().await, None);
    assert!(handle.is_finished());
    let err = handle.await_result().await.unwrap_err();
    assert!(matches!(
        err,
        Error::Cancelled { ref worker, reason: CancelReason::Requested } if worker == "sleeper"
    ));
    assert_eq!(err.to_string(), "Worker 'sleeper' was cancelled");
    assert!(!reached_end.load(Ordering::SeqCst));
    assert_eq!(tracker.live(), 0);

    let stats = workers.stats("sleeper").await.unwrap();
    assert_eq!(
        (stats.runs, stats.errors, stats.cancelled, stats.running),
        (1, 1, 1, 0)
    );
    assert!(workers.running().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_through_the_handle() {
    let workers = registry_with_sleeper(Arc::default(), Tracker::default()).await;
    let handle = workers.call("sleeper", None, None).await.unwrap();
    handle.cancel().await.unwrap();
    // A second cancel while the run is still stopping is not an error.
    let second = handle.cancel().await;
    assert!(second.is_ok() || second.unwrap_err().is_run_not_found());
    assert!(handle.await_result().await.unwrap_err().is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn cancel_of_an_unknown_malformed_or_finished_run_is_not_found() {
    let workers = registry_with_sleeper(Arc::default(), Tracker::default()).await;
    workers
        .register("quick", |_| async { Ok(()) })
        .await
        .unwrap();

    let err = workers.cancel("not-a-run-id").await.unwrap_err();
    assert!(err.is_run_not_found());
    assert!(err.to_string().contains("'not-a-run-id'"), "{err}");
    assert!(workers
        .cancel("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err()
        .is_run_not_found());

    let mut handle = workers.call("quick", None, None).await.unwrap();
    let id = handle.id().to_owned();
    assert_eq!(handle.recv().await, None);
    assert!(workers.cancel(&id).await.unwrap_err().is_run_not_found());
    assert!(handle.cancel().await.unwrap_err().is_run_not_found());
    handle.await_result().await.unwrap();
    assert_eq!(workers.stats("quick").await.unwrap().cancelled, 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_one_run_leaves_the_others_running() {
    let workers = registry_with_sleeper(Arc::default(), Tracker::default()).await;
    let a = workers.call("sleeper", None, None).await.unwrap();
    let b = workers.call("sleeper", None, None).await.unwrap();
    a.cancel().await.unwrap();
    assert!(a.await_result().await.unwrap_err().is_cancelled());
    assert_eq!(workers.running().await.unwrap(), [b.id()]);
    assert!(!b.is_finished());
}
