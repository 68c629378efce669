//! Daemons: restarts with backoff, checkpoints, the daemon cap; on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CallOptions, CancelReason, MemoryCheckpoints, WorkerOptions, WorkerRegistry};
use rustf_workers_tests::assert_wait_within;
use tokio::time::Instant;

type Starts = Arc<Mutex<Vec<(u32, u64, Instant)>>>;

/// A daemon that processes one item a second from its checkpoint; attempt 1 panics at
/// item 3, attempt 2 at item 5, and attempt 3 stops cleanly at item 7.
async fn cursor_daemon(workers: &WorkerRegistry) -> Starts {
    let starts: Starts = Arc::default();
    let seen = Arc::clone(&starts);
    workers
        .register_with("cursor", WorkerOptions::new().daemon(true), move |ctx| {
            let seen = Arc::clone(&seen);
            async move {
                let mut cursor = ctx
                    .get_checkpoint()
                    .await?
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0);
                seen.lock()
                    .unwrap()
                    .push((ctx.attempt(), cursor, Instant::now()));
                loop {
                    match (ctx.attempt(), cursor) {
                        (1, 3) | (2, 5) => panic!("worker panic: at item {cursor}"),
                        (_, 7) => return Ok(()),
                        _ => {}
                    }
                    ctx.sleep(Duration::from_secs(1)).await;
                    cursor += 1;
                    ctx.checkpoint(json!(cursor)).await?;
                }
            }
        })
        .await
        .unwrap();
    starts
}

#[tokio::test(start_paused = true)]
async fn a_panicking_daemon_restarts_from_its_checkpoint_with_backoff() {
    rustf_workers_tests::quiet_worker_panics();
    let workers = WorkerRegistry::new();
    let store = Arc::new(MemoryCheckpoints::new());
    workers.set_checkpoint_store(Arc::clone(&store));
    let starts = cursor_daemon(&workers).await;

    workers.run("cursor", None).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    let resumed: Vec<(u32, u64)> = starts.iter().map(|(a, c, _)| (*a, *c)).collect();
    assert_eq!(resumed, [(1, 0), (2, 3), (3, 5)]);
    // Attempt 1 ran 3 s and attempt 2 ran 2 s, so the waits are the first two steps of
    // the default backoff: 0.5-1 s, then 1-2 s.
    let first_wait = starts[1].2 - starts[0].2 - Duration::from_secs(3);
    let second_wait = starts[2].2 - starts[1].2 - Duration::from_secs(2);
    assert_wait_within(first_wait, 500, 1_000);
    assert_wait_within(second_wait, 1_000, 2_000);

    let stats = workers.stats("cursor").await.unwrap();
    assert_eq!((stats.runs, stats.panicked, stats.errors), (3, 2, 2));
    // The checkpoint is removed once the run has ended.
    tokio::task::yield_now().await;
    assert!(store.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_healthy_attempt_resets_the_backoff() {
    let workers = WorkerRegistry::new();
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = Arc::clone(&starts);
    workers
        .register_with("flapping", WorkerOptions::new().daemon(true), move |ctx| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(Instant::now());
                // Attempts 1-3 fail at once; attempt 4 runs for 61 s first; 6 stops.
                match ctx.attempt() {
                    4 => ctx.sleep(Duration::from_secs(61)).await,
                    6 => return Ok(()),
                    _ => {}
                }
                Err(Error::internal("flap"))
            }
        })
        .await
        .unwrap();
    workers.run("flapping", None).await.unwrap();
    let starts = starts.lock().unwrap().clone();
    let waits: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_wait_within(waits[0], 500, 1_000);
    assert_wait_within(waits[1], 1_000, 2_000);
    assert_wait_within(waits[2], 2_000, 4_000);
    // Attempt 4 ran 61 s, longer than the backoff's 60 s cap: healthy, so step 1 again.
    assert_wait_within(waits[3] - Duration::from_secs(61), 500, 1_000);
}

#[tokio::test(start_paused = true)]
async fn the_daemon_cap_refuses_extra_daemons() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "watcher",
            WorkerOptions::new().daemon(true).max_daemons(2),
            |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            },
        )
        .await
        .unwrap();
    let first = workers.call("watcher", None, None).await.unwrap();
    let _second = workers.call("watcher", None, None).await.unwrap();
    let err = workers.call("watcher", None, None).await.unwrap_err();
    assert!(matches!(err, Error::DaemonLimit { max: 2, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "Worker 'watcher' already has 2 live daemons, its maximum"
    );
    // A run that is not a daemon is not counted.
    let plain = workers
        .call_with("watcher", None, CallOptions::new().daemon(false))
        .await
        .unwrap();
    plain.cancel().await.unwrap();

    first.cancel().await.unwrap();
    assert!(first.await_result().await.unwrap_err().is_cancelled());
    let _third = workers.call("watcher", None, None).await.unwrap();
    assert_eq!(workers.stats("watcher").await.unwrap().runs, 2);
    assert!(workers
        .register_with("none", WorkerOptions::new().max_daemons(0), |_| async {
            Ok(())
        })
        .await
        .unwrap_err()
        .is_validation());
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_daemons_that_are_backing_off() {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "crashing",
            WorkerOptions::new()
                .daemon(true)
                .backoff(Duration::from_secs(30), Duration::from_secs(60)),
            |_ctx| async { Err(Error::internal("crash")) },
        )
        .await
        .unwrap();
    let daemons: Vec<_> =
        futures::future::try_join_all((0..3).map(|_| workers.call("crashing", None, None)))
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    workers.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    for daemon in daemons {
        let err = daemon.await_result().await.unwrap_err();
        assert_eq!(err.cancel_reason(), Some(CancelReason::Shutdown), "{err}");
    }
    let stats = workers.stats("crashing").await.unwrap();
    assert_eq!(
        (stats.runs, stats.failed, stats.cancelled, stats.running),
        (6, 3, 3, 0)
    );
}
