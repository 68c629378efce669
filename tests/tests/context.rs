//! What a worker sees: payload, config, per-run state, the stop signal.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;

#[tokio::test]
async fn state_is_per_run() {
    let workers = WorkerRegistry::new();
    workers
        .register("stateful", |ctx| async move {
            assert_eq!(ctx.get_state("seen").await, None, "a new run starts empty");
            let tag = ctx.payload().cloned().unwrap_or(Value::Null);
            ctx.set_state("seen", tag.clone()).await?;
            ctx.set_state("other", json!(1)).await?;
            // Let the other run interleave.
            tokio::task::yield_now().await;
            assert_eq!(ctx.get_state("seen").await, Some(tag));
            ctx.clear_state().await?;
            assert_eq!(ctx.get_state("other").await, None);
            Ok(())
        })
        .await
        .unwrap();
    let a = workers
        .call("stateful", None, Some(json!("a")))
        .await
        .unwrap();
    let b = workers
        .call("stateful", None, Some(json!("b")))
        .await
        .unwrap();
    a.await_result().await.unwrap();
    b.await_result().await.unwrap();
    workers.run("stateful", Some(json!("c"))).await.unwrap();
}

#[tokio::test]
async fn config_set_after_first_use_reaches_later_runs() {
    let workers = WorkerRegistry::new();
    workers
        .register("configured", |ctx| async move {
            let url = ctx
                .config()
                .get::<String>("api.base_url")
                .unwrap_or_else(|| "http://localhost".into());
            ctx.emit(json!(url))?;
            Ok(())
        })
        .await
        .unwrap();

    let mut before = workers.call("configured", None, None).await.unwrap();
    assert_eq!(before.recv().await, Some(json!("http://localhost")));

    workers.set_config(AppConfig::new(
        json!({ "api": { "base_url": "https://api.example" } }),
    ));
    assert_eq!(
        workers.config().get::<String>("api.base_url").as_deref(),
        Some("https://api.example")
    );
    let mut after = workers.call("configured", None, None).await.unwrap();
    assert_eq!(after.recv().await, Some(json!("https://api.example")));
}

#[tokio::test]
async fn payload_is_what_the_caller_passed() {
    let workers = WorkerRegistry::new();
    workers
        .register("payload", |ctx| async move {
            ctx.emit(ctx.payload().cloned().unwrap_or(json!("none")))?;
            Ok(())
        })
        .await
        .unwrap();
    let mut with = workers
        .call(
            "payload",
            None,
            Some(json!({ "user_id": 123, "tags": ["a"] })),
        )
        .await
        .unwrap();
    assert_eq!(
        with.recv().await,
        Some(json!({ "user_id": 123, "tags": ["a"] }))
    );
    let mut without = workers.call("payload", None, None).await.unwrap();
    assert_eq!(without.recv().await, Some(json!("none")));
}

#[tokio::test(start_paused = true)]
async fn is_cancelled_turns_true_when_shutdown_asks() {
    let workers = WorkerRegistry::new();
    workers
        .register("watcher", |ctx| async move {
            ctx.emit(json!(ctx.is_cancelled()))?;
            ctx.cancelled().await;
            ctx.emit(json!(ctx.is_cancelled()))?;
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("watcher", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!(false)));
    let shutdown = tokio::spawn({
        let workers = workers.clone();
        async move { workers.shutdown().await }
    });
    assert_eq!(handle.recv().await, Some(json!(true)));
    handle.await_result().await.unwrap();
    shutdown.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn context_clones_and_debug_name_the_run() {
    let workers = WorkerRegistry::new();
    workers
        .register("debuggable", |ctx| async move {
            let clone = ctx.clone();
            clone.sleep(Duration::from_millis(1)).await;
            ctx.emit(json!(format!("{clone:?}")))?;
            Ok(())
        })
        .await
        .unwrap();
    let mut handle = workers.call("debuggable", None, None).await.unwrap();
    let text = handle.recv().await.unwrap();
    let text = text.as_str().unwrap();
    assert!(
        text.contains("debuggable") && text.contains(handle.id()),
        "{text}"
    );
    assert!(format!("{handle:?}").contains(handle.id()));
}
