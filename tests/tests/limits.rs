//! Concurrency caps and the admission queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CallOptions, CancelReason, WorkerOptions, WorkerRegistry};
use rustf_workers_tests::{Rng, Tracker};
use tokio::time::Instant;

/// Counts how many runs execute at once, and the most ever seen.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Gauge {
    /// Counts one more run executing, until the returned guard is dropped: also when a
    /// cancel drops the worker's future mid-way.
    fn enter(&self) -> Inside {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        Inside(Arc::clone(&self.now))
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

struct Inside(Arc<AtomicUsize>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A worker capped at `cap` that sleeps for its payload's seconds (default 1).
async fn capped(workers: &WorkerRegistry, name: &str, cap: usize, gauge: &Gauge) {
    let gauge = gauge.clone();
    workers
        .register_with(name, WorkerOptions::new().concurrency(cap), move |ctx| {
            let gauge = gauge.clone();
            async move {
                let _inside = gauge.enter();
                let secs = ctx.payload().and_then(Value::as_u64).unwrap_or(1);
                ctx.sleep(Duration::from_secs(secs)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cap_of_two_never_runs_more_than_two_at_once() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    capped(&workers, "capped", 2, &gauge).await;
    assert_eq!(
        workers.options("capped").unwrap().max_concurrency(),
        Some(2)
    );

    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..10 {
        handles.push(workers.call("capped", None, None).await.unwrap());
    }
    tokio::task::yield_now().await;
    assert_eq!(workers.running().await.unwrap().len(), 2);
    assert_eq!(workers.queued().len(), 8);
    assert_eq!(workers.running_for("capped").await.unwrap().len(), 2);
    let infos = workers.live_runs();
    assert_eq!(
        infos
            .iter()
            .filter(|r| r.state == rustf_workers::RunState::Queued)
            .count(),
        8
    );

    for handle in handles {
        handle.await_result().await.unwrap();
    }
    assert_eq!(gauge.max(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let stats = workers.stats("capped").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.running), (10, 0, 0));
    assert!(workers.queued().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_global_cap_holds_across_workers() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    for name in ["a", "b"] {
        let gauge = gauge.clone();
        workers
            .register(name, move |ctx| {
                let gauge = gauge.clone();
                async move {
                    let _inside = gauge.enter();
                    ctx.sleep(Duration::from_secs(1)).await;
                    Ok(())
                }
            })
            .await
            .unwrap();
    }
    workers.set_max_running(3);
    let mut handles = Vec::new();
    for i in 0..12 {
        let name = if i % 2 == 0 { "a" } else { "b" };
        handles.push(workers.call(name, None, None).await.unwrap());
    }
    for handle in handles {
        handle.await_result().await.unwrap();
    }
    assert_eq!(gauge.max(), 3);
}

#[tokio::test(start_paused = true)]
async fn queued_calls_start_by_priority_then_in_call_order() {
    let workers = WorkerRegistry::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    workers
        .register_with(
            "one-at-a-time",
            WorkerOptions::new().concurrency(1),
            move |ctx| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock()
                        .unwrap()
                        .push(ctx.payload().cloned().unwrap_or_default());
                    ctx.sleep(Duration::from_secs(1)).await;
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    let mut handles = Vec::new();
    for (label, priority) in [
        ("first", 0),
        ("low-a", 0),
        ("high", 10),
        ("mid", 5),
        ("low-b", 0),
    ] {
        let options = CallOptions::new().priority(priority);
        handles.push(
            workers
                .call_with("one-at-a-time", Some(json!(label)), options)
                .await
                .unwrap(),
        );
    }
    for handle in handles {
        handle.await_result().await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        ["first", "high", "mid", "low-a", "low-b"].map(|l| json!(l))
    );
}

#[tokio::test(start_paused = true)]
async fn a_queued_run_can_be_cancelled_and_never_runs() {
    let workers = WorkerRegistry::new();
    let tracker = Tracker::default();
    let t = tracker.clone();
    workers
        .register_with("single", WorkerOptions::new().concurrency(1), move |ctx| {
            let held = t.track();
            async move {
                ctx.sleep(Duration::from_secs(10)).await;
                drop(held);
                Ok(())
            }
        })
        .await
        .unwrap();
    let running = workers.call("single", None, None).await.unwrap();
    let waiting = workers.call("single", None, None).await.unwrap();
    let by_id = workers.call("single", None, None).await.unwrap();
    assert_eq!(workers.queued(), [waiting.id(), by_id.id()]);
    assert_eq!(tracker.live(), 1, "only the first has started");

    let start = Instant::now();
    waiting.cancel().await.unwrap();
    workers.cancel(by_id.id()).await.unwrap();
    let err = waiting.await_result().await.unwrap_err();
    assert_eq!(err.cancel_reason(), Some(CancelReason::Requested), "{err}");
    assert!(by_id.await_result().await.unwrap_err().is_cancelled());
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "cancelled at once, not after the first"
    );
    assert!(workers.queued().is_empty());

    running.await_result().await.unwrap();
    assert_eq!(tracker.live(), 0);
    let stats = workers.stats("single").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (3, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_the_call() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    capped(&workers, "narrow", 1, &gauge).await;
    workers.set_queue_capacity(2);
    let handles = [
        workers.call("narrow", None, None).await.unwrap(),
        workers.call("narrow", None, None).await.unwrap(),
        workers.call("narrow", None, None).await.unwrap(),
    ];
    let err = workers.call("narrow", None, None).await.unwrap_err();
    assert!(err.is_queue_full());
    assert_eq!(
        err.to_string(),
        "Worker 'narrow' cannot be queued: the admission queue is full (2 calls waiting)"
    );
    for handle in handles {
        handle.await_result().await.unwrap();
    }
    let stats = workers.stats("narrow").await.unwrap();
    assert_eq!(
        (stats.runs, stats.running),
        (3, 0),
        "the refused call is not a run"
    );
    assert!(workers
        .register_with("zero", WorkerOptions::new().concurrency(0), |_| async {
            Ok(())
        })
        .await
        .unwrap_err()
        .is_validation());
}

#[tokio::test(start_paused = true)]
async fn the_timeout_counts_execution_not_waiting() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    capped(&workers, "slow", 1, &gauge).await;
    let first = workers.call("slow", None, Some(json!(10))).await.unwrap();
    let second = workers
        .call("slow", Some(Duration::from_secs(3)), Some(json!(2)))
        .await
        .unwrap();
    first.await_result().await.unwrap();
    second.await_result().await.unwrap();
    let third = workers
        .call("slow", Some(Duration::from_secs(3)), Some(json!(5)))
        .await
        .unwrap();
    assert_eq!(
        third.await_result().await.unwrap_err().to_string(),
        "Worker 'slow' timed out after 3s"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_queued_runs_ends_promptly_and_counts_them() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    capped(&workers, "busy", 1, &gauge).await;
    workers.set_shutdown_grace(Duration::from_secs(1));
    let running = workers.call("busy", None, Some(json!(3600))).await.unwrap();
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(workers.call("busy", None, None).await.unwrap());
    }

    let start = Instant::now();
    workers.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(workers.running().await.unwrap().is_empty());
    assert!(workers.queued().is_empty());
    for handle in queued {
        let err = handle.await_result().await.unwrap_err();
        assert_eq!(err.cancel_reason(), Some(CancelReason::Shutdown), "{err}");
    }
    assert!(running.await_result().await.unwrap_err().is_cancelled());
    let stats = workers.stats("busy").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (6, 6, 0));
    assert_eq!(gauge.max(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_calls_and_cancels_under_a_cap() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    let g = gauge.clone();
    workers
        .register_with("stress", WorkerOptions::new().concurrency(4), move |ctx| {
            let g = g.clone();
            async move {
                let _inside = g.enter();
                let micros = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
                tokio::time::sleep(Duration::from_micros(micros)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
    let mut rng = Rng::new(42);
    let mut tasks = Vec::new();
    for _ in 0..3_000 {
        let micros = rng.below(500);
        let cancel = rng.below(4) == 0;
        let priority = rng.below(3) as i32;
        let workers = workers.clone();
        tasks.push(tokio::spawn(async move {
            let handle = workers
                .call_with(
                    "stress",
                    Some(json!(micros)),
                    CallOptions::new().priority(priority),
                )
                .await
                .unwrap();
            if cancel {
                tokio::task::yield_now().await;
                let _ = handle.cancel().await;
            }
            match handle.await_result().await {
                Ok(()) => 0,
                Err(err) if err.is_cancelled() => 1,
                Err(err) => panic!("{err}"),
            }
        }));
    }
    let mut cancelled = 0;
    for task in tasks {
        cancelled += task.await.unwrap();
    }
    assert!(gauge.max() <= 4, "{} at once", gauge.max());
    let stats = workers.stats("stress").await.unwrap();
    assert_eq!(
        (stats.runs, stats.cancelled, stats.running),
        (3_000, cancelled, 0)
    );
    assert!(workers.running().await.unwrap().is_empty() && workers.queued().is_empty());
}

#[tokio::test(start_paused = true)]
async fn declared_memory_is_drawn_from_a_shared_pool() {
    let workers = WorkerRegistry::new();
    let gauge = Gauge::default();
    let g = gauge.clone();
    workers
        .register_with("big", WorkerOptions::new().memory(100 << 20), move |ctx| {
            let g = g.clone();
            async move {
                let _inside = g.enter();
                ctx.sleep(Duration::from_secs(1)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(rustf_workers::DEFAULT_MEMORY_POOL, 256 << 20);
    let start = Instant::now();
    let handles: Vec<_> =
        futures::future::try_join_all((0..5).map(|_| workers.call("big", None, None)))
            .await
            .unwrap();
    tokio::task::yield_now().await;
    assert_eq!(workers.queued().len(), 3, "two 100 MiB runs fit in 256 MiB");
    for handle in handles {
        handle.await_result().await.unwrap();
    }
    assert_eq!(gauge.max(), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(3));

    workers.set_memory_pool(50 << 20);
    let err = workers.call("big", None, None).await.unwrap_err();
    assert!(err.is_validation());
    assert!(
        err.to_string().contains("declares 104857600 bytes of memory per run, more than the whole memory pool of 52428800 bytes"),
        "{err}"
    );
}
