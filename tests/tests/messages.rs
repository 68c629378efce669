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
async fn emit_reports_a_full_buffer_instead_of_growing() {
    let workers = WorkerRegistry::new();
    workers.set_message_capacity(4).unwrap();
    workers
        .register("flood", |ctx| async move {
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
        text.contains("message buffer of worker 'flood' is full (4 unread"),
        "{text}"
    );
    handle.await_result().await.unwrap();
    assert!(workers.set_message_capacity(0).unwrap_err().is_validation());
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
