//! The message stream from worker to caller: order, end, bounds.

use std::sync::Arc;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{WorkerRegistry, DEFAULT_MESSAGE_CAPACITY};

async fn counter(workers: &WorkerRegistry) {
    workers
        .register("count", |ctx| async move {
            let n = ctx.payload().and_then(Value::as_u64).unwrap_or(0);
            for i in 0..n {
                ctx.emit_wait(json!(i)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn every_message_arrives_in_order_then_none() {
    let workers = WorkerRegistry::new();
    counter(&workers).await;
    let n = 10 * DEFAULT_MESSAGE_CAPACITY as u64;
    let mut handle = workers.call("count", None, Some(json!(n))).await.unwrap();
    let mut expected = 0;
    while let Some(message) = handle.recv().await {
        assert_eq!(message, json!(expected));
        expected += 1;
    }
    assert_eq!(expected, n);
    assert!(handle.is_finished());
    handle.await_result().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn none_comes_only_after_the_worker_has_finished() {
    let workers = WorkerRegistry::new();
    workers
        .register("slow-talker", |ctx| async move {
            ctx.emit(json!("first"))?;
            ctx.sleep(Duration::from_secs(10)).await;
            ctx.emit(json!("second"))?;
            ctx.sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut handle = workers.call("slow-talker", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!("first")));
    assert_eq!(handle.recv().await, Some(json!("second")));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(!handle.is_finished());
    assert_eq!(handle.recv().await, None);
    assert_eq!(start.elapsed(), Duration::from_secs(20));
    assert!(handle.is_finished());
    assert_eq!(handle.recv().await, None, "None again after the end");
}

#[tokio::test(start_paused = true)]
async fn recv_is_cancel_safe() {
    let workers = WorkerRegistry::new();
    workers
        .register("ticker", |ctx| async move {
            for i in 0..50 {
                ctx.emit(json!(i))?;
                ctx.sleep(Duration::from_millis(7)).await;
            }
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("ticker", None, None).await.unwrap();
    let mut got = Vec::new();
    let mut timeouts = 0;
    loop {
        tokio::select! {
            message = handle.recv() => match message {
                Some(m) => got.push(m.as_u64().unwrap()),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(3)) => timeouts += 1,
        }
    }
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    assert!(timeouts > 0, "the select did drop pending recv futures");
}

#[tokio::test]
async fn emit_past_the_budget_is_an_error_and_queues_nothing() {
    let workers = WorkerRegistry::new();
    workers.set_message_capacity(2).unwrap();
    // Four numbers, as the budget counts them (a `Value` each).
    workers.set_message_budget(4 * 32).unwrap();
    workers
        .register("flood", |ctx| async move {
            // Past the soft mark of 2, `emit` still queues, up to the budget.
            for i in 0..4 {
                ctx.emit(json!(i))?;
            }
            let err = ctx.emit(json!("overflow")).unwrap_err();
            ctx.emit_wait(json!(err.to_string())).await?;
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("flood", None, None).await.unwrap();
    // Let the worker fill the buffer before reading anything.
    tokio::task::yield_now().await;
    let mut got = Vec::new();
    while let Some(message) = handle.recv().await {
        got.push(message);
    }
    assert_eq!(&got[..4], &[json!(0), json!(1), json!(2), json!(3)]);
    assert_eq!(got.len(), 5);
    let text = got[4].as_str().unwrap();
    assert!(
        text.contains(
            "message budget of worker 'flood' is spent (4 unread messages, about 128 bytes)"
        ),
        "{text}"
    );
    handle.await_result().await.unwrap();
    assert!(workers.set_message_capacity(0).unwrap_err().is_validation());
    assert!(workers.set_message_budget(0).unwrap_err().is_validation());
}

/// The seed's own pattern, `ctx.emit(..)?` once per item, with a reader that reads every
/// message: whether the run succeeds never depends on how the two are scheduled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_in_a_loop_that_awaits_never_fails_a_reader_that_reads_everything() {
    let workers = WorkerRegistry::new();
    workers
        .register("items", |ctx| async move {
            for i in 0..100_000u64 {
                ctx.emit(json!(i))?;
                if i % 1_000 == 999 {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    for round in 0..20 {
        let mut handle = workers.call("items", None, None).await.unwrap();
        let mut next = 0u64;
        while let Some(message) = handle.recv().await {
            assert_eq!(message, json!(next), "round {round}");
            next += 1;
        }
        assert_eq!(next, 100_000, "round {round}");
        handle.await_result().await.unwrap();
    }
}

/// A worker that never awaits queues past the soft mark, within its budget: a million
/// small messages all reach a reader that reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_in_a_loop_with_no_await_delivers_a_million_messages() {
    let workers = WorkerRegistry::new();
    workers
        .register("burst", |ctx| async move {
            for i in 0..1_000_000u64 {
                ctx.emit(json!(i))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    for round in 0..3 {
        let mut handle = workers.call("burst", None, None).await.unwrap();
        let mut next = 0u64;
        while let Some(message) = handle.recv().await {
            assert_eq!(message.as_u64(), Some(next), "round {round}");
            next += 1;
        }
        assert_eq!(next, 1_000_000, "round {round}");
        handle.await_result().await.unwrap();
    }
}

/// Past the soft mark, a worker that awaits is held at its `.await` until its reader
/// takes the queue; its timeout and cancel still apply while it is held.
#[tokio::test(start_paused = true)]
async fn a_worker_that_awaits_is_paced_by_its_reader() {
    use std::sync::atomic::{AtomicU64, Ordering};

    let workers = WorkerRegistry::new();
    workers.set_message_capacity(4).unwrap();
    let emitted = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&emitted);
    workers
        .register("paced", move |ctx| {
            let counted = Arc::clone(&counted);
            async move {
                for i in 0.. {
                    ctx.emit(json!(i))?;
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    let mut handle = workers
        .call("paced", Some(Duration::from_secs(5)), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(emitted.load(Ordering::SeqCst), 4, "held at the soft mark");
    // One `recv` takes the whole queue: the worker runs on to the mark again.
    assert_eq!(handle.recv().await, Some(json!(0)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(emitted.load(Ordering::SeqCst), 8);
    let first = (1..8).map(|i| json!(i));
    for expected in first {
        assert_eq!(handle.recv().await, Some(expected));
    }
    // Held, it still times out.
    let err = tokio::time::timeout(Duration::from_secs(10), handle.await_result())
        .await
        .expect("a held run still ends");
    // `await_result` detached the reader, so the worker ran on, discarding, until its
    // timeout.
    assert!(err.unwrap_err().is_timeout());
    assert!(emitted.load(Ordering::SeqCst) > 8);

    // Held with its handle kept and unread, it still times out, and a cancel stops it.
    let held = workers
        .call("paced", Some(Duration::from_secs(1)), None)
        .await
        .unwrap();
    let before = emitted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(emitted.load(Ordering::SeqCst), before + 4);
    let stats = workers.stats("paced").await.unwrap();
    assert_eq!((stats.timed_out, stats.running), (2, 0), "{stats:?}");
    drop(held);

    let cancelled = workers.call("paced", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    workers.cancel(cancelled.id()).await.unwrap();
    assert!(cancelled.await_result().await.unwrap_err().is_cancelled());
}

#[tokio::test]
async fn nobody_reading_means_messages_are_discarded_not_kept() {
    let workers = WorkerRegistry::new();
    workers.set_message_capacity(8).unwrap();
    workers
        .register("chatty", |ctx| async move {
            // Far past the capacity: with no reader, every emit succeeds and is dropped.
            for i in 0..10_000 {
                ctx.emit(json!(i))?;
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Ok(())
        })
        .await
        .unwrap();

    // `run` never reads.
    workers.run("chatty", None).await.unwrap();
    // A dropped handle never reads.
    let handle = workers.call("chatty", None, None).await.unwrap();
    let id = handle.id().to_owned();
    drop(handle);
    while workers.running().await.unwrap().contains(&id) {
        tokio::task::yield_now().await;
    }
    let stats = workers.stats("chatty").await.unwrap();
    assert_eq!((stats.runs, stats.errors), (2, 0));
}

#[tokio::test]
async fn emitting_through_a_context_kept_past_the_run_is_an_error() {
    let workers = WorkerRegistry::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    workers
        .register("leaky", move |ctx| {
            let tx = tx.lock().unwrap().take();
            async move {
                if let Some(tx) = tx {
                    let _ = tx.send(ctx.clone());
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    let mut handle = workers.call("leaky", None, None).await.unwrap();
    assert_eq!(handle.recv().await, None);
    let kept = rx.await.unwrap();
    let err = kept.emit(json!("late")).unwrap_err();
    assert!(matches!(err, Error::RunFinished { .. }), "{err}");
    assert!(err.to_string().contains(handle.id()));
    assert_eq!(handle.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn a_handle_moved_to_another_task_is_woken_there() {
    let workers = WorkerRegistry::new();
    workers
        .register("late", |ctx| async move {
            ctx.sleep(Duration::from_millis(10)).await;
            ctx.emit(json!("late"))?;
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("late", None, None).await.unwrap();
    // This task waits for a message, leaves its waker, and gives up.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), handle.recv())
            .await
            .is_err()
    );
    // Another task waits on the same handle: the message must wake that one.
    let reader = tokio::spawn(async move {
        let first = handle.recv().await;
        (first, handle.recv().await)
    });
    let read = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("the second task was woken")
        .unwrap();
    assert_eq!(read, (Some(json!("late")), None));
}

#[tokio::test(start_paused = true)]
async fn an_emit_wait_dropped_before_it_completes_queues_nothing() {
    let workers = WorkerRegistry::new();
    workers.set_message_capacity(1).unwrap();
    workers
        .register("impatient", |ctx| async move {
            ctx.emit_wait(json!(1)).await?;
            // The buffer is full: give up on the second message after a while.
            let gave_up = tokio::time::timeout(Duration::from_millis(5), ctx.emit_wait(json!(2)))
                .await
                .is_err();
            ctx.emit_wait(json!(if gave_up { "gave up" } else { "sent" }))
                .await?;
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("impatient", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut seen = Vec::new();
    while let Some(message) = handle.recv().await {
        seen.push(message);
    }
    assert_eq!(seen, [json!(1), json!("gave up")]);
}

#[tokio::test]
async fn a_worker_emitting_in_a_loop_lets_other_tasks_run() {
    use std::sync::atomic::{AtomicU64, Ordering};
    // One thread, and nobody reads: every emit is accepted at once, so only tokio's
    // cooperative budget makes the loop yield to the ticker.
    let workers = WorkerRegistry::new();
    let ticks = Arc::new(AtomicU64::new(0));
    let during = Arc::new(AtomicU64::new(0));
    workers
        .register("chatty", {
            let (ticks, during) = (Arc::clone(&ticks), Arc::clone(&during));
            move |ctx| {
                let (ticks, during) = (Arc::clone(&ticks), Arc::clone(&during));
                async move {
                    let before = ticks.load(Ordering::Relaxed);
                    for i in 0..100_000u64 {
                        ctx.emit_wait(json!(i)).await?;
                    }
                    during.store(ticks.load(Ordering::Relaxed) - before, Ordering::Relaxed);
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            loop {
                ticks.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        }
    });
    workers.run("chatty", None).await.unwrap();
    ticker.abort();
    assert!(
        during.load(Ordering::Relaxed) > 0,
        "the ticker never ran while the worker emitted"
    );
}

/// A run held at the soft mark by a reader that does not read still hears shutdown's stop
/// request: it is polled again, sees `cancelled()`, and finishes on its own within the
/// grace period instead of being cancelled at its end.
#[tokio::test(start_paused = true)]
async fn a_held_run_hears_shutdown_and_finishes_within_the_grace() {
    let workers = WorkerRegistry::new();
    workers.set_message_capacity(2).unwrap();
    workers.set_shutdown_grace(Duration::from_secs(30));
    workers
        .register("chatty", |ctx| async move {
            loop {
                ctx.emit(json!("tick"))?;
                tokio::select! {
                    () = ctx.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        })
        .await
        .unwrap();
    let held = workers.call("chatty", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = tokio::time::Instant::now();
    workers.shutdown().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let stats = workers.stats("chatty").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled), (1, 0), "{stats:?}");
    drop(held);
}
