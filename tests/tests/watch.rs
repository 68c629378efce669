//! Watching runs: subscriptions next to the handle, and live-run listings.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{RunEvent, RunStatus, WorkerRegistry};

async fn registry() -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register("ticker", |ctx| async move {
            let n = ctx.payload().and_then(Value::as_u64).unwrap_or(3);
            for i in 0..n {
                ctx.sleep(Duration::from_millis(10)).await;
                ctx.emit_wait(json!(i)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    workers
        .register("failing", |ctx| async move {
            ctx.sleep(Duration::from_millis(10)).await;
            ctx.emit(json!("about to fail"))?;
            Err(Error::internal("broke"))
        })
        .await
        .unwrap();
    workers
}

async fn drain(mut watcher: rustf_workers::Subscription) -> Vec<RunEvent> {
    let mut events = Vec::new();
    while let Some(event) = watcher.recv().await {
        events.push(event);
    }
    events
}

#[tokio::test(start_paused = true)]
async fn several_watchers_and_the_handle_each_see_every_message() {
    let workers = registry().await;
    let mut handle = workers.call("ticker", None, Some(json!(3))).await.unwrap();
    let first = tokio::spawn(drain(workers.subscribe(handle.id()).unwrap()));
    let second = tokio::spawn(drain(handle.subscribe()));

    let mut seen = Vec::new();
    while let Some(message) = handle.recv().await {
        seen.push(message);
    }
    assert_eq!(seen, [json!(0), json!(1), json!(2)]);
    for watcher in [first, second] {
        let events = watcher.await.unwrap();
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[..3], [0, 1, 2].map(|i| RunEvent::Message(json!(i))));
        let RunEvent::Finished(outcome) = &events[3] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (
                outcome.status,
                outcome.error.as_deref(),
                outcome.duration_ms
            ),
            (RunStatus::Completed, None, 30)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_watcher_lags_instead_of_slowing_the_worker() {
    let workers = registry().await;
    workers.set_message_capacity(4).unwrap();
    let mut handle = workers.call("ticker", None, Some(json!(20))).await.unwrap();
    let mut watcher = handle.subscribe();

    // The handle reads everything while the watcher reads nothing.
    let mut seen = 0;
    while handle.recv().await.is_some() {
        seen += 1;
    }
    assert_eq!(seen, 20);
    handle.await_result().await.unwrap();

    let mut events = Vec::new();
    while let Some(event) = watcher.recv().await {
        events.push(event);
    }
    assert_eq!(events[0], RunEvent::Lagged(16));
    assert_eq!(
        events[1..5],
        [16, 17, 18, 19].map(|i| RunEvent::Message(json!(i)))
    );
    assert!(matches!(&events[5], RunEvent::Finished(o) if o.status == RunStatus::Completed));
    assert_eq!(events.len(), 6);
}

#[tokio::test(start_paused = true)]
async fn watchers_get_the_outcome_of_failures_and_cancels() {
    let workers = registry().await;
    let handle = workers.call("failing", None, None).await.unwrap();
    let events = drain(handle.subscribe()).await;
    assert_eq!(events[0], RunEvent::Message(json!("about to fail")));
    let RunEvent::Finished(outcome) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.as_deref(), Some("internal error: broke"));

    let handle = workers
        .call("ticker", None, Some(json!(1000)))
        .await
        .unwrap();
    let watcher = workers.subscribe(handle.id()).unwrap();
    handle.cancel().await.unwrap();
    let events = drain(watcher).await;
    assert!(
        matches!(events.last(), Some(RunEvent::Finished(o)) if o.status == RunStatus::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn subscribing_to_a_finished_or_unknown_run() {
    let workers = registry().await;
    let mut handle = workers.call("ticker", None, Some(json!(1))).await.unwrap();
    let id = handle.id().to_owned();
    while handle.recv().await.is_some() {}
    assert!(workers.subscribe(&id).unwrap_err().is_run_not_found());
    assert!(workers.subscribe("nope").unwrap_err().is_run_not_found());
    // Through the handle: nothing but the outcome.
    let events = drain(handle.subscribe()).await;
    assert!(matches!(&events[..], [RunEvent::Finished(o)] if o.status == RunStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn live_runs_describe_what_is_running() {
    let workers = registry().await;
    let quiet = workers
        .call("ticker", None, Some(json!(100)))
        .await
        .unwrap();
    workers.keep_last_messages(true);
    // Runs called at the same instant have no order; this one is called later.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let chatty = workers
        .call("ticker", None, Some(json!(100)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(35)).await;

    let runs = workers.live_runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].id.as_str(), runs[1].id.as_str()),
        (quiet.id(), chatty.id())
    );
    assert_eq!(runs[0].worker, "ticker");
    assert_eq!((runs[0].elapsed_ms, runs[1].elapsed_ms), (36, 35));
    assert_eq!(
        runs[0].last_message, None,
        "started before keep_last_messages"
    );
    assert_eq!(runs[1].last_message, Some(json!(2)));
    assert!(!runs[1].stopping);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(runs[1].started_at_ms <= now_ms && now_ms - runs[1].started_at_ms < 60_000);

    let info = workers.run_info(chatty.id()).unwrap();
    assert_eq!(info.id, chatty.id());
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["worker"], "ticker");
    assert!(workers.run_info("nope").unwrap_err().is_run_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_racing_the_end_of_their_run_always_end() {
    let workers = registry().await;
    let mut rng = rustf_workers_tests::Rng::new(7);
    let mut watchers = Vec::new();
    for _ in 0..2_000 {
        let handle = workers
            .call("ticker", None, Some(json!(rng.below(2))))
            .await
            .unwrap();
        let yields = rng.below(4);
        let via_registry = rng.below(2) == 0;
        let workers = workers.clone();
        watchers.push(tokio::spawn(async move {
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            let subscription = if via_registry {
                match workers.subscribe(handle.id()) {
                    Ok(subscription) => subscription,
                    Err(err) => {
                        assert!(err.is_run_not_found());
                        return;
                    }
                }
            } else {
                handle.subscribe()
            };
            let events = tokio::time::timeout(Duration::from_secs(10), drain(subscription))
                .await
                .expect("a subscription ends when its run does");
            assert!(
                matches!(events.last(), Some(RunEvent::Finished(o)) if o.status == RunStatus::Completed),
                "{events:?}"
            );
        }));
    }
    for watcher in watchers {
        watcher.await.unwrap();
    }
}
