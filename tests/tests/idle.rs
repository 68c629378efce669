//! Idle stop: a run nobody listens to stops cleanly after its idle timeout.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{WorkerOptions, WorkerRegistry};
use tokio::time::Instant;

async fn registry(daemon: bool) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "ticker",
            WorkerOptions::new()
                .idle_timeout(Duration::from_secs(10))
                .daemon(daemon),
            |ctx| async move {
                loop {
                    ctx.sleep(Duration::from_secs(1)).await;
                    ctx.emit(json!("tick"))?;
                }
            },
        )
        .await
        .unwrap();
    workers
}

#[tokio::test(start_paused = true)]
async fn a_run_stops_cleanly_once_nobody_has_listened_for_the_idle_timeout() {
    let workers = registry(false).await;
    let start = Instant::now();
    let mut handle = workers.call("ticker", None, None).await.unwrap();
    for _ in 0..25 {
        assert_eq!(handle.recv().await, Some(json!("tick")));
    }
    // Listened to for 25 s: still running. Then the reader leaves.
    let mut watcher = handle.subscribe();
    let id = handle.id().to_owned();
    drop(handle);
    assert!(workers.running().await.unwrap().contains(&id));
    // A watcher keeps it alive too.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert!(workers.running().await.unwrap().contains(&id));
    let mut last = None;
    while let Some(event) = watcher.recv().await {
        last = Some(event);
        if start.elapsed() >= Duration::from_secs(45) {
            break;
        }
    }
    drop(watcher);
    let left_at = start.elapsed();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(workers.running().await.unwrap().is_empty());
    assert!(last.is_some());
    let stats = workers.stats("ticker").await.unwrap();
    assert_eq!((stats.runs, stats.errors), (1, 0), "a clean stop");
    assert_eq!(
        stats.last_run_ms,
        Some((left_at + Duration::from_secs(10)).as_millis() as u64)
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_daemon_is_not_restarted() {
    let workers = registry(true).await;
    let handle = workers.call("ticker", None, None).await.unwrap();
    let watcher = handle.subscribe();
    drop(handle);
    let events = {
        let mut watcher = watcher;
        let mut events = Vec::new();
        while let Some(event) = watcher.recv().await {
            events.push(event);
            if events.len() == 3 {
                break;
            }
        }
        events
    };
    assert_eq!(events.len(), 3);
    // Nobody listens any more: it stops after 10 s and stays stopped.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(workers.running().await.unwrap().is_empty());
    let stats = workers.stats("ticker").await.unwrap();
    assert_eq!((stats.runs, stats.errors), (1, 0));
}
