//! Registering and running workers: results, payloads, errors, panics, listings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use rustf_workers::prelude::*;
use rustf_workers::{WorkerOptions, WorkerRegistry};
use rustf_workers_tests::quiet_worker_panics;

#[tokio::test]
async fn run_returns_the_result_and_updates_stats() {
    let workers = WorkerRegistry::new();
    workers
        .register("echo", |ctx| async move {
            let n = ctx.payload().and_then(|p| p["n"].as_i64()).unwrap_or(-1);
            ctx.emit(json!({ "n": n }))?;
            Ok(())
        })
        .await
        .unwrap();

    workers.run("echo", Some(json!({ "n": 7 }))).await.unwrap();
    let stats = workers.stats("echo").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.running), (1, 0, 0));
    assert!(stats.last_run_ms.is_some());

    let mut handle = workers
        .call("echo", None, Some(json!({ "n": 8 })))
        .await
        .unwrap();
    assert_eq!(handle.worker_name(), "echo");
    assert_eq!(handle.recv().await, Some(json!({ "n": 8 })));
    assert_eq!(handle.recv().await, None);
    handle.await_result().await.unwrap();
    assert_eq!(workers.stats("echo").await.unwrap().runs, 2);
}

#[tokio::test]
async fn unknown_worker_is_a_typed_error_with_the_seed_message() {
    let workers = WorkerRegistry::new();
    let err = workers.run("ghost", None).await.unwrap_err();
    assert!(err.is_not_registered());
    assert_eq!(err.to_string(), "Worker 'ghost' not registered");
    let err = workers.call("ghost", None, None).await.unwrap_err();
    assert!(err.is_not_registered());
    assert!(workers
        .running_for("ghost")
        .await
        .unwrap_err()
        .is_not_registered());
    assert!(workers.stats("ghost").await.is_none());
    assert!(workers.options("ghost").is_none());
}

#[tokio::test]
async fn registering_a_name_twice_is_refused_and_names_both_registrations() {
    let workers = WorkerRegistry::new();
    workers.register("dup", |_| async { Ok(()) }).await.unwrap();
    let err = workers
        .register("dup", |_| async { Err(Error::internal("the second one")) })
        .await
        .unwrap_err();
    assert!(err.is_already_registered());
    let text = err.to_string();
    assert!(
        text.starts_with("Worker 'dup' is registered twice"),
        "{text}"
    );
    assert_eq!(text.matches("tests/tests/run.rs:").count(), 2, "{text}");
    // The first registration stays.
    workers.run("dup", None).await.unwrap();
    assert_eq!(workers.definitions().await.unwrap(), ["dup"]);
}

#[tokio::test]
async fn invalid_names_and_options_are_refused() {
    let workers = WorkerRegistry::new();
    let err = workers
        .register("Send Email", |_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { ref name, .. } if name == "Send Email"),
        "{err}"
    );

    let err = workers
        .register_with(
            "zero",
            WorkerOptions::new().timeout(Duration::ZERO),
            |_| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert!(
        err.is_validation() && err.to_string().contains("timeout"),
        "{err}"
    );
    assert!(workers.definitions().await.unwrap().is_empty());

    workers.register("ok", |_| async { Ok(()) }).await.unwrap();
    let err = workers
        .call("ok", Some(Duration::ZERO), None)
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert_eq!(workers.stats("ok").await.unwrap().runs, 0);
}

#[tokio::test]
async fn a_handler_error_reaches_the_caller_unchanged_and_is_counted() {
    let workers = WorkerRegistry::new();
    workers
        .register("validate", |ctx| async move {
            ctx.payload()
                .and_then(|p| p["to"].as_str())
                .ok_or_else(|| Error::validation("'to' address required"))?;
            Ok(())
        })
        .await
        .unwrap();
    let err = workers.run("validate", None).await.unwrap_err();
    assert!(err.is_validation());
    assert_eq!(err.to_string(), "validation failed: 'to' address required");
    workers
        .run("validate", Some(json!({ "to": "a@b.c" })))
        .await
        .unwrap();

    let stats = workers.stats("validate").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.failed), (2, 1, 1));
    assert_eq!(
        stats.last_error.as_deref(),
        Some("validation failed: 'to' address required")
    );
    assert_eq!(stats.success_rate(), Some(0.5));
}

#[tokio::test]
async fn question_mark_works_on_io_json_and_boxed_errors_in_handlers() {
    let workers = WorkerRegistry::new();
    workers
        .register("io", |_| async {
            tokio::fs::read("/definitely/not/here").await?;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .register("json", |_| async {
            let _: Value = serde_json::from_str("{ nope")?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(matches!(workers.run("io", None).await, Err(Error::Io(_))));
    assert!(matches!(
        workers.run("json", None).await,
        Err(Error::Json(_))
    ));
}

#[tokio::test]
async fn a_panic_fails_only_its_own_run() {
    quiet_worker_panics();
    let workers = WorkerRegistry::new();
    workers
        .register("boom", |ctx| async move {
            ctx.sleep(Duration::from_millis(1)).await;
            panic!("worker panic: disk on fire");
        })
        .await
        .unwrap();
    workers
        .register("boom-early", |_ctx| -> std::future::Ready<Result<()>> {
            panic!("worker panic: before any future")
        })
        .await
        .unwrap();
    workers
        .register("boom-at-once", |_ctx| async move {
            panic!("worker panic: before any wait");
        })
        .await
        .unwrap();
    workers
        .register("steady", |ctx| async move {
            ctx.sleep(Duration::from_millis(5)).await;
            Ok(())
        })
        .await
        .unwrap();

    let steady = workers.call("steady", None, None).await.unwrap();
    let err = workers.run("boom", None).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(
        err.to_string(),
        "Worker 'boom' panicked: worker panic: disk on fire"
    );
    let err = workers.run("boom-early", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Worker 'boom-early' panicked: worker panic: before any future"
    );
    // `run` takes a handler's first step in the caller's poll: its panic is still the
    // run's alone.
    let err = workers.run("boom-at-once", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Worker 'boom-at-once' panicked: worker panic: before any wait"
    );
    steady.await_result().await.unwrap();

    let stats = workers.stats("boom").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.panicked), (1, 1, 1));
    assert_eq!(workers.stats("boom-early").await.unwrap().panicked, 1);
    assert!(workers.running().await.unwrap().is_empty());
    workers.run("steady", None).await.unwrap();
}

#[tokio::test]
async fn definitions_are_sorted_and_running_lists_live_runs_oldest_first() {
    let workers = WorkerRegistry::new();
    for name in ["zeta", "alpha", "mid"] {
        workers
            .register(name, |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            })
            .await
            .unwrap();
    }
    assert_eq!(
        workers.definitions().await.unwrap(),
        ["alpha", "mid", "zeta"]
    );

    let a = workers.call("alpha", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let b = workers.call("zeta", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let c = workers.call("alpha", None, None).await.unwrap();

    assert_eq!(workers.running().await.unwrap(), [a.id(), b.id(), c.id()]);
    assert_eq!(
        workers.running_for("alpha").await.unwrap(),
        [a.id(), c.id()]
    );
    assert!(workers.running_for("mid").await.unwrap().is_empty());
    assert_eq!(workers.stats("alpha").await.unwrap().running, 2);

    b.cancel().await.unwrap();
    assert!(b.await_result().await.unwrap_err().is_cancelled());
    assert_eq!(workers.running().await.unwrap(), [a.id(), c.id()]);
    workers.shutdown().await.unwrap();
    assert!(workers.running().await.unwrap().is_empty());
}

#[test]
fn calling_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let workers = WorkerRegistry::new();
    futures::executor::block_on(async {
        workers.register("w", |_| async { Ok(()) }).await.unwrap();
        let err = workers.call("w", None, None).await.unwrap_err();
        assert!(
            err.is_internal() && err.to_string().contains("tokio runtime"),
            "{err}"
        );
        let stats = workers.stats("w").await.unwrap();
        assert_eq!((stats.runs, stats.running), (0, 0));
    });
}

#[tokio::test]
async fn ids_are_unique_and_match_between_handle_and_context() {
    let workers = WorkerRegistry::new();
    workers
        .register("who", |ctx| async move {
            let id = ctx.run_id().to_owned();
            let name = ctx.worker_name().to_owned();
            ctx.emit(json!({ "id": id, "name": name }))?;
            Ok(())
        })
        .await
        .unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let mut handle = workers.call("who", None, None).await.unwrap();
        let message = handle.recv().await.unwrap();
        assert_eq!(message["id"], handle.id());
        assert_eq!(message["name"], "who");
        assert_eq!(handle.id().len(), 36);
        assert!(seen.insert(handle.id().to_owned()));
    }
}

#[tokio::test]
async fn run_finishes_a_handler_that_never_waits_within_the_callers_first_poll() {
    let workers = WorkerRegistry::new();
    workers
        .register("quick", |_| async { Ok(()) })
        .await
        .unwrap();
    workers
        .register("refuses", |_| async {
            Err(Error::validation("'to' address required"))
        })
        .await
        .unwrap();

    // Polled once, with a waker that goes nowhere: no task was needed.
    assert!(matches!(
        workers.run("quick", None).now_or_never(),
        Some(Ok(()))
    ));
    let err = (workers.run("refuses", None).now_or_never())
        .expect("finished in one poll")
        .unwrap_err();
    assert!(err.is_validation(), "{err}");

    let quick = workers.stats("quick").await.unwrap();
    assert_eq!((quick.runs, quick.errors, quick.running), (1, 0, 0));
    let refuses = workers.stats("refuses").await.unwrap();
    assert_eq!((refuses.runs, refuses.errors), (1, 1));
    assert!(workers.running().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_run_that_waits_becomes_a_task_and_outlives_a_caller_that_gives_up() {
    let workers = WorkerRegistry::new();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    workers
        .register("waits", move |_| {
            let released = released.lock().unwrap().take();
            async move {
                let released = released.ok_or_else(|| Error::internal("one run only"))?;
                released
                    .await
                    .map_err(|_| Error::internal("release dropped"))?;
                Ok(())
            }
        })
        .await
        .unwrap();

    // One poll with a waker that goes nowhere, then the caller gives up.
    assert!(workers.run("waits", None).now_or_never().is_none());
    assert_eq!(workers.running_for("waits").await.unwrap().len(), 1);

    // The wake-up must reach the run's own task: the caller's waker went nowhere.
    release.send(()).unwrap();
    for _ in 0..100 {
        if workers.running().await.unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let stats = workers.stats("waits").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.running), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_run_awaited_by_run_is_cancelled_by_id_at_its_next_await() {
    let workers = WorkerRegistry::new();
    workers
        .register("sleeps", |ctx| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    let caller = tokio::spawn({
        let workers = workers.clone();
        async move { workers.run("sleeps", None).await }
    });
    let id = loop {
        if let Some(id) = workers.running_for("sleeps").await.unwrap().pop() {
            break id;
        }
        tokio::task::yield_now().await;
    };
    workers.cancel(&id).await.unwrap();
    // Bounded, so that a run nobody drives fails the test instead of hanging it.
    let err = tokio::time::timeout(Duration::from_secs(60), caller)
        .await
        .expect("the cancelled run ends")
        .unwrap()
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let stats = workers.stats("sleeps").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (1, 1, 0));
}

#[tokio::test]
async fn a_loop_of_runs_that_never_wait_still_lets_other_tasks_run() {
    let workers = WorkerRegistry::new();
    workers
        .register("quick", |_| async { Ok(()) })
        .await
        .unwrap();
    // Queued on this same thread: it runs only when the loop below yields.
    let ticked = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let ticked = Arc::clone(&ticked);
        async move { ticked.store(true, Ordering::SeqCst) }
    });
    let mut ran = 0;
    while !ticked.load(Ordering::SeqCst) && ran < 100_000 {
        workers.run("quick", None).await.unwrap();
        ran += 1;
    }
    assert!(
        ticked.load(Ordering::SeqCst),
        "{ran} runs in a row never let the other task run"
    );
}

/// The registry of the recursive worker below, which runs itself through it.
static NESTED: OnceLock<WorkerRegistry> = OnceLock::new();

#[tokio::test]
async fn a_worker_that_runs_itself_thousands_deep_does_not_overflow_the_stack() {
    let workers = NESTED.get_or_init(WorkerRegistry::new);
    workers
        .register("descend", |ctx| async move {
            let depth = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
            if depth > 0 {
                let workers = NESTED.get().expect("registered through it");
                workers.run("descend", Some(json!(depth - 1))).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // Each level's first step would run inside the one above it, on this thread's stack.
    workers.run("descend", Some(json!(5000))).await.unwrap();
    let stats = workers.stats("descend").await.unwrap();
    assert_eq!((stats.runs, stats.errors, stats.running), (5001, 0, 0));
}

/// The registry of the worker below, which cancels itself through it.
static SELF_CANCELLING: OnceLock<WorkerRegistry> = OnceLock::new();

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("worker panic: dropped");
    }
}

#[tokio::test]
async fn a_panic_outside_the_handlers_poll_during_the_first_step_stays_with_the_run() {
    quiet_worker_panics();
    let workers = SELF_CANCELLING.get_or_init(WorkerRegistry::new);
    workers
        .register("drops-badly", |ctx| {
            // Cancelled before its first poll, so the run drops the handler's future
            // unpolled, outside the handler's own poll; dropping it panics.
            let workers = SELF_CANCELLING.get().expect("registered through it");
            futures::executor::block_on(workers.cancel(ctx.run_id())).unwrap();
            let bomb = PanicsOnDrop;
            async move {
                let _bomb = &bomb;
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .await
        .unwrap();
    let err = workers.run("drops-badly", None).await.unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let stats = workers.stats("drops-badly").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (1, 1, 0));
}
