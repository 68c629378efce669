//! Durable calls: `call_with(.., CallOptions::new().durable(true))` and workers marked
//! `durable` store the job first, then run it here with a live handle; daemons stored as
//! jobs resume from their checkpoint after a restart; checkpoints and progress of a stored
//! job are kept with it, written only under its lease.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::queue::{JobState, QueueOptions, SqliteQueue};
use rustf_workers::{CallOptions, JobOptions, RunState, WorkerOptions, WorkerRegistry};
use rustf_workers_tests as _;
use tokio::sync::Notify;

fn options() -> QueueOptions {
    QueueOptions::new()
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(3))
}

fn durable() -> CallOptions {
    CallOptions::new().durable(true)
}

/// Waits (polling the store, with a deadline) until job `id` is in `state`.
async fn until_state(workers: &WorkerRegistry, id: &str, state: JobState) {
    for _ in 0..1_000 {
        if workers.job(id).await.unwrap().state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never became {state}");
}

#[tokio::test]
async fn a_durable_call_streams_and_awaits_as_a_call_and_its_job_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let go = Arc::new(Notify::new());
    let gate = Arc::clone(&go);
    workers
        .register("steps", move |ctx| {
            let gate = Arc::clone(&gate);
            async move {
                ctx.emit(json!({ "step": 1 }))?;
                gate.notified().await;
                ctx.emit(json!({ "step": 2 }))?;
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();

    let mut handle = workers
        .call_with("steps", Some(json!({ "n": 7 })), durable())
        .await
        .unwrap();
    // Stored and claimed by this process before `call_with` returned.
    let stored = workers.job(handle.id()).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Running, 1));
    assert_eq!(stored.payload, Some(json!({ "n": 7 })));
    assert_eq!(handle.recv().await, Some(json!({ "step": 1 })));
    // A live run of the engine, listed and counted as any.
    assert_eq!(workers.running().await.unwrap(), [handle.id()]);
    assert_eq!(workers.stats("steps").await.unwrap().running, 1);
    go.notify_one();
    assert_eq!(handle.recv().await, Some(json!({ "step": 2 })));
    assert_eq!(handle.recv().await, None);
    let id = handle.id().to_owned();
    handle.await_result().await.unwrap();
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 1));
    let stats = workers.stats("steps").await.unwrap();
    assert_eq!((stats.runs, stats.running), (1, 0));
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_marked_durable_stores_every_call_and_needs_a_queue() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let ran = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&ran);
    workers
        .register_with("billing", WorkerOptions::new().durable(true), move |_ctx| {
            let count = Arc::clone(&count);
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    // No queue yet: refused, nothing run.
    let err = workers.run("billing", None).await.unwrap_err();
    assert!(matches!(err, Error::NoQueue), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    workers.run("billing", None).await.unwrap();
    let handle = workers.call("billing", None, None).await.unwrap();
    let id = handle.id().to_owned();
    handle.await_result().await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    let listed = workers.jobs(Default::default()).await.unwrap().jobs;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().any(|job| job.id == id));
    // Once each outcome is stored, both are completed.
    for job in listed {
        let done = workers.await_job(&job.id).await.unwrap();
        assert_eq!(done.state, JobState::Completed);
    }
    // A call can opt out of the worker's durability.
    workers
        .call_with("billing", None, CallOptions::new().durable(false))
        .await
        .unwrap()
        .await_result()
        .await
        .unwrap();
    assert_eq!(
        workers.jobs(Default::default()).await.unwrap().jobs.len(),
        2
    );
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_through_a_durable_handle_stops_the_run_and_stores_it_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("long", |ctx| async move {
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let handle = workers.call_with("long", None, durable()).await.unwrap();
    let id = handle.id().to_owned();
    handle.cancel().await.unwrap();
    let err = handle.await_result().await.unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(workers.run_record(&id).unwrap().state, RunState::Cancelled);
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_durable_call_retries_through_the_store_and_its_handle_sees_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "flaky",
            WorkerOptions::new().backoff(Duration::from_millis(10), Duration::from_millis(10)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    return Err(Error::internal("first attempt fails"));
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let handle = workers
        .call_with("flaky", None, durable().retries(1))
        .await
        .unwrap();
    let id = handle.id().to_owned();
    // The handle is on the first attempt's run; the retry is the queue's.
    let err = handle.await_result().await.unwrap_err();
    assert!(err.is_internal(), "{err}");
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 2));
    assert_eq!(job.errors.len(), 1);
    assert!(job.errors[0].error.contains("first attempt fails"));
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_durable_call_whose_key_another_job_holds_awaits_that_jobs_stored_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("report", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    // Claims nothing by itself: the job waits until the test drains it.
    let quiet = QueueOptions::new().runs_jobs(false);
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            quiet,
        )
        .unwrap();
    let waiting = workers
        .enqueue_with("report", None, JobOptions::new().unique_key("daily"))
        .await
        .unwrap();
    let handle = workers
        .call_with("report", None, durable().unique_key("daily"))
        .await
        .unwrap();
    assert_eq!(handle.id(), waiting, "the holder's id");
    assert!(!handle.is_finished());
    assert_eq!(workers.drain_jobs().await.unwrap(), 1);
    handle.await_result().await.unwrap();

    // The same for a held job that is then cancelled: its handle sees the stored end.
    let second = workers
        .enqueue_with("report", None, JobOptions::new().unique_key("weekly"))
        .await
        .unwrap();
    let handle = workers
        .call_with("report", None, durable().unique_key("weekly"))
        .await
        .unwrap();
    assert_eq!(handle.id(), second);
    // Cancelled in the store, since it does not run here.
    handle.cancel().await.unwrap();
    assert_eq!(
        workers.job(&second).await.unwrap().state,
        JobState::Cancelled
    );
    match handle.await_result().await.unwrap_err() {
        Error::JobFailed { id, state, .. } => {
            assert_eq!((id.as_str(), state), (second.as_str(), JobState::Cancelled));
        }
        other => panic!("expected JobFailed, got {other}"),
    }
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_durable_call_of_a_name_no_worker_has_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("known", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let err = workers
        .call_with("unknown", None, durable())
        .await
        .unwrap_err();
    assert!(err.is_not_registered(), "{err}");
    let err = workers
        .call_with("known", None, durable().daemon(true))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    let err = workers
        .call_with("known", None, durable().timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(workers
        .jobs(Default::default())
        .await
        .unwrap()
        .jobs
        .is_empty());
    workers.shutdown().await.unwrap();
}

/// A daemon that counts from its checkpoint, saving each step; it returns once it has
/// counted to `until`. Each process records the first value it resumed from.
async fn counting_daemon(
    path: &std::path::Path,
    until: u64,
    resumed: Arc<Mutex<Vec<u64>>>,
) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers.set_shutdown_grace(Duration::from_millis(20));
    workers
        .register_with("counter", WorkerOptions::new().daemon(true), move |ctx| {
            let resumed = Arc::clone(&resumed);
            async move {
                let mut n = ctx
                    .get_checkpoint()
                    .await?
                    .and_then(|value| value["n"].as_u64())
                    .unwrap_or(0);
                resumed.lock().unwrap().push(n);
                while n < until {
                    n += 1;
                    ctx.checkpoint(json!({ "n": n })).await?;
                    ctx.sleep(Duration::from_millis(5)).await;
                }
                // Ignores the stop request: shutdown cancels it after the grace.
                ctx.sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(path).unwrap(), options())
        .unwrap();
    workers
}

#[tokio::test]
async fn a_stored_daemon_resumes_from_its_checkpoint_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let resumed = Arc::new(Mutex::new(Vec::new()));

    let first = counting_daemon(&path, 3, Arc::clone(&resumed)).await;
    let id = first
        .enqueue_with("counter", None, JobOptions::new().unique_key("the-counter"))
        .await
        .unwrap();
    // Counted to 3: its checkpoint is stored with the job.
    for _ in 0..1_000 {
        if first.job(&id).await.unwrap().checkpoint == Some(json!({ "n": 3 })) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        first.job(&id).await.unwrap().checkpoint,
        Some(json!({ "n": 3 }))
    );
    first.shutdown().await.unwrap();
    let handed_back = first.job(&id).await.unwrap();
    assert_eq!(handed_back.state, JobState::Available);
    assert_eq!(
        handed_back.attempt, 0,
        "shutdown does not count the attempt"
    );
    assert!(
        handed_back.max_attempts > 1_000,
        "a daemon's attempts are unbounded"
    );

    let second = counting_daemon(&path, 6, Arc::clone(&resumed)).await;
    // At start-up the application asks for its daemon again: the key finds the stored one.
    let again = second
        .enqueue_with("counter", None, JobOptions::new().unique_key("the-counter"))
        .await
        .unwrap();
    assert_eq!(again, id);
    until_state(&second, &id, JobState::Running).await;
    for _ in 0..1_000 {
        if second.job(&id).await.unwrap().checkpoint == Some(json!({ "n": 6 })) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        *resumed.lock().unwrap(),
        [0, 3],
        "the second process resumed at 3"
    );
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stored_daemon_that_fails_restarts_here_without_leaving_running() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    workers
        .register_with(
            "flaky-daemon",
            WorkerOptions::new()
                .daemon(true)
                .backoff(Duration::from_millis(5), Duration::from_millis(5)),
            move |_ctx| {
                let seen = Arc::clone(&seen);
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                        return Err(Error::internal("not yet"));
                    }
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let id = workers.enqueue("flaky-daemon", None).await.unwrap();
    let job = workers.await_job(&id).await.unwrap();
    // Restarted in its process twice, then returned Ok: one claim, completed.
    assert_eq!((job.state, job.attempt), (JobState::Completed, 1));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_cannot_write_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let workers = WorkerRegistry::new();
    let (started, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let writes = Arc::new(Mutex::new(Vec::new()));
    let (s, g, w) = (Arc::clone(&started), Arc::clone(&go), Arc::clone(&writes));
    workers
        .register("writer", move |ctx| {
            let (s, g, w) = (Arc::clone(&s), Arc::clone(&g), Arc::clone(&w));
            async move {
                let first = ctx.checkpoint(json!({ "page": 1 })).await;
                w.lock().unwrap().push(first.map_err(|e| e.to_string()));
                s.notify_one();
                g.notified().await;
                let second = ctx.checkpoint(json!({ "page": 2 })).await;
                w.lock().unwrap().push(second.map_err(|e| e.to_string()));
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(&path).unwrap(), options())
        .unwrap();
    let handle = workers.call_with("writer", None, durable()).await.unwrap();
    let id = handle.id().to_owned();
    started.notified().await;
    assert_eq!(
        workers.job(&id).await.unwrap().checkpoint,
        Some(json!({ "page": 1 }))
    );
    // Another process claimed the job meanwhile (its lease ran out, it was rescued and
    // claimed again): the claim's epoch moved on.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(5)).unwrap();
    raw.execute("UPDATE jobs SET epoch = epoch + 1 WHERE id = ?1", [&id])
        .unwrap();
    go.notify_one();
    let _ = handle.await_result().await;
    let writes = writes.lock().unwrap().clone();
    assert_eq!(writes[0], Ok(()));
    let refused = writes[1].as_ref().unwrap_err();
    assert!(refused.contains("no longer held"), "{refused}");
    assert_eq!(
        workers.job(&id).await.unwrap().checkpoint,
        Some(json!({ "page": 1 })),
        "the fenced-out run did not overwrite the checkpoint"
    );
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stored_jobs_progress_is_kept_with_it_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("render", |ctx| async move {
            ctx.progress(40, "rendering")?;
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    // Heartbeats every 30 ms: the progress is stored with the next one.
    let quick = options().lease(Duration::from_millis(90));
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            quick,
        )
        .unwrap();
    let id = workers.enqueue("render", None).await.unwrap();
    let want = Some(json!({ "percent": 40, "message": "rendering" }));
    for _ in 0..1_000 {
        if workers.job(&id).await.unwrap().progress == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(workers.job(&id).await.unwrap().progress, want);
    workers.cancel(&id).await.unwrap();
    assert_eq!(
        workers.await_job(&id).await.unwrap().state,
        JobState::Cancelled
    );
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stored_daemon_that_returns_when_shutdown_asks_is_handed_back_not_completed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "polite",
            WorkerOptions::new().daemon(true),
            |ctx| async move {
                ctx.checkpoint(json!({ "at": 1 })).await?;
                ctx.cancelled().await;
                Ok(())
            },
        )
        .await
        .unwrap();
    workers
        .register("once", |ctx| async move {
            // Not a daemon: returning after the stop request finishes the job.
            ctx.cancelled().await;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(&path).unwrap(), options())
        .unwrap();
    let daemon = workers.enqueue("polite", None).await.unwrap();
    let job = workers.enqueue("once", None).await.unwrap();
    until_state(&workers, &daemon, JobState::Running).await;
    until_state(&workers, &job, JobState::Running).await;
    workers.shutdown().await.unwrap();
    let stored = workers.job(&daemon).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Available, 0));
    assert_eq!(stored.checkpoint, Some(json!({ "at": 1 })));
    assert_eq!(workers.job(&job).await.unwrap().state, JobState::Completed);
}

#[tokio::test]
async fn a_durable_call_dropped_while_its_job_is_stored_leaves_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    let ran = Arc::new(AtomicU32::new(0));
    let count = Arc::clone(&ran);
    workers
        .register("quick", move |ctx| {
            let count = Arc::clone(&count);
            async move {
                ctx.emit(json!("nobody reads this"))?;
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    // Polled once (the store write is under way), then dropped, as a timeout or a client
    // that went away would.
    {
        let call = workers.call_with("quick", None, durable());
        let mut call = std::pin::pin!(call);
        assert!(futures::poll!(call.as_mut()).is_pending());
    }
    // The job was stored, ran once and its outcome was stored, and shutdown does not wait
    // on a claim that never ended.
    let id = loop {
        if let Some(job) = workers.jobs(Default::default()).await.unwrap().jobs.pop() {
            break job.id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Completed, 1));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    tokio::time::timeout(Duration::from_secs(5), workers.shutdown())
        .await
        .expect("shutdown returns")
        .unwrap();
}

#[tokio::test]
async fn a_durable_call_refused_by_the_daemon_limit_waits_stored_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "singleton",
            WorkerOptions::new().daemon(true).max_daemons(1),
            |ctx| async move {
                ctx.cancelled().await;
                Ok(())
            },
        )
        .await
        .unwrap();
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            options(),
        )
        .unwrap();
    let first = workers
        .call_with("singleton", None, durable())
        .await
        .unwrap();
    let second = workers
        .call_with("singleton", None, durable())
        .await
        .unwrap();
    // Stored and handed back (the hand-back is stored with the writer's next batch): not
    // running, and the handle follows it in the store.
    until_state(&workers, second.id(), JobState::Available).await;
    let stored = workers.job(second.id()).await.unwrap();
    assert_eq!((stored.state, stored.attempt), (JobState::Available, 0));
    assert!(!second.is_finished());
    // The slot frees: the waiting daemon runs, here, and its handle sees it through.
    let second_id = second.id().to_owned();
    workers.cancel(first.id()).await.unwrap();
    until_state(&workers, &second_id, JobState::Running).await;
    workers.cancel(&second_id).await.unwrap();
    match second.await_result().await.unwrap_err() {
        Error::JobFailed { state, .. } => assert_eq!(state, JobState::Cancelled),
        other => panic!("expected JobFailed, got {other}"),
    }
    workers.shutdown().await.unwrap();
}
