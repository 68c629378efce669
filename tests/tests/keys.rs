//! Unique keys (attach to the live run) and idempotency keys (replay a success).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CallOptions, WorkerRegistry};

/// A worker that counts its runs, emits a tick a second for three seconds, and fails or
/// succeeds as its payload says.
async fn registry() -> (WorkerRegistry, Arc<AtomicUsize>) {
    let workers = WorkerRegistry::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    workers
        .register("sync-account", move |ctx| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                for tick in 1..=3 {
                    ctx.sleep(Duration::from_secs(1)).await;
                    ctx.emit(json!(tick))?;
                }
                match ctx.payload().and_then(|p| p["fail"].as_bool()) {
                    Some(true) => Err(Error::internal("remote refused")),
                    _ => Ok(()),
                }
            }
        })
        .await
        .unwrap();
    (workers, runs)
}

#[tokio::test(start_paused = true)]
async fn a_second_call_with_the_same_unique_key_attaches_to_the_live_run() {
    let (workers, runs) = registry().await;
    let keyed = || CallOptions::new().unique_key("account-42");
    let mut first = workers
        .call_with("sync-account", Some(json!({ "fail": true })), keyed())
        .await
        .unwrap();
    assert_eq!(first.recv().await, Some(json!(1)));
    let mut second = workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap();
    assert_eq!(second.id(), first.id());
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");

    // The attached handle sees the messages emitted before it attached, then the rest;
    // both get one result.
    assert_eq!(second.recv().await, Some(json!(1)));
    assert_eq!(second.recv().await, Some(json!(2)));
    assert_eq!(first.recv().await, Some(json!(2)));
    assert_eq!(second.recv().await, Some(json!(3)));
    let (a, b) = tokio::join!(first.await_result(), second.await_result());
    assert_eq!(a.unwrap_err().to_string(), "internal error: remote refused");
    assert_eq!(b.unwrap_err().to_string(), "internal error: remote refused");
    let stats = workers.stats("sync-account").await.unwrap();
    assert_eq!((stats.runs, stats.failed), (1, 1));

    // Another key, or the same key after the run ended, starts a new run.
    let other = workers
        .call_with(
            "sync-account",
            None,
            CallOptions::new().unique_key("account-7"),
        )
        .await
        .unwrap();
    let again = workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap();
    assert_ne!(other.id(), again.id());
    other.await_result().await.unwrap();
    again.await_result().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn an_idempotent_call_replays_a_recent_success_without_running() {
    let (workers, runs) = registry().await;
    let keyed = || CallOptions::new().idempotency_key("invoice-9", Duration::from_secs(60));
    let first = workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap();
    let id = first.id().to_owned();
    first.await_result().await.unwrap();

    let mut replay = workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap();
    assert_eq!(replay.id(), id);
    assert!(replay.is_finished());
    assert_eq!(replay.recv().await, None);
    replay.await_result().await.unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler did not run again"
    );
    assert_eq!(workers.stats("sync-account").await.unwrap().runs, 1);

    // After the retention, the key runs again.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let later = workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap();
    assert_ne!(later.id(), id);
    later.await_result().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_not_remembered_under_its_idempotency_key() {
    let (workers, runs) = registry().await;
    let keyed = || CallOptions::new().idempotency_key("invoice-10", Duration::from_secs(60));
    let failed = workers
        .call_with("sync-account", Some(json!({ "fail": true })), keyed())
        .await
        .unwrap();
    assert!(failed.await_result().await.is_err());
    workers
        .call_with("sync-account", None, keyed())
        .await
        .unwrap()
        .await_result()
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// A call refused by a full admission queue leaves its unique key free: the next call
/// with the key starts a run of its own instead of attaching to one that never started.
#[tokio::test(start_paused = true)]
async fn a_unique_key_refused_by_a_full_queue_is_not_held() {
    let workers = WorkerRegistry::new();
    workers
        .register("slow", |ctx| async move {
            ctx.sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers.set_max_running(1);
    workers.set_queue_capacity(0);
    let first = workers.call("slow", None, None).await.unwrap();
    let keyed = CallOptions::new().unique_key("only-one");
    let err = workers
        .call_with("slow", None, keyed.clone())
        .await
        .unwrap_err();
    assert!(err.is_queue_full(), "{err}");
    first.await_result().await.unwrap();

    let again = workers.call_with("slow", None, keyed).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), again.await_result())
        .await
        .expect("a run of its own, not the refused one");
    result.unwrap();
}
