//! The `WORKER` facade over the global registry. Every test uses its own worker names,
//! since the registry is shared by the whole test binary.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;

#[tokio::test]
async fn the_seed_api_works_end_to_end_with_no_setup() {
    WORKER::register("g-send-email", |ctx| async move {
        let to = ctx
            .payload()
            .and_then(|p| p["to"].as_str())
            .ok_or_else(|| Error::validation("'to' address required"))?;
        ctx.emit(json!({ "status": "sent", "to": to }))?;
        Ok(())
    })
    .await
    .unwrap();

    WORKER::run("g-send-email", Some(json!({ "to": "a@b.c" })))
        .await
        .unwrap();
    let mut handle = WORKER::call("g-send-email", None, Some(json!({ "to": "x@y.z" })))
        .await
        .unwrap();
    assert_eq!(
        handle.recv().await,
        Some(json!({ "status": "sent", "to": "x@y.z" }))
    );
    handle.await_result().await.unwrap();
    assert!(WORKER::run("g-send-email", None)
        .await
        .unwrap_err()
        .is_validation());

    let stats = WORKER::stats("g-send-email").await.unwrap();
    assert_eq!((stats.runs, stats.errors), (3, 1));
    assert!(WORKER::definitions()
        .await
        .unwrap()
        .contains(&"g-send-email".to_owned()));
    assert!(std::ptr::eq(WORKER::registry(), WorkerRegistry::global()));
}

#[tokio::test(start_paused = true)]
async fn cancel_running_and_running_for_through_the_facade() {
    WORKER::register("g-sleeper", |ctx| async move {
        ctx.sleep(Duration::from_secs(3600)).await;
        Ok(())
    })
    .await
    .unwrap();
    let handle = WORKER::call("g-sleeper", Some(Duration::from_secs(7200)), None)
        .await
        .unwrap();
    assert!(WORKER::running()
        .await
        .unwrap()
        .contains(&handle.id().to_owned()));
    assert_eq!(
        WORKER::running_for("g-sleeper").await.unwrap(),
        [handle.id()]
    );
    WORKER::cancel(handle.id()).await.unwrap();
    assert!(handle.await_result().await.unwrap_err().is_cancelled());
    assert!(WORKER::running_for("g-sleeper").await.unwrap().is_empty());
    assert!(WORKER::cancel("nope").await.unwrap_err().is_run_not_found());
}

#[tokio::test]
async fn config_and_grace_through_the_facade() {
    WORKER::register_with(
        "g-config",
        rustf_workers::WorkerOptions::new().timeout(Duration::from_secs(30)),
        |ctx| async move {
            ctx.emit(json!(ctx.config().get::<u32>("g.answer")))?;
            Ok(())
        },
    )
    .await
    .unwrap();
    WORKER::set_config(AppConfig::new(json!({ "g": { "answer": 42 } })));
    assert_eq!(WORKER::config().get::<u32>("g.answer"), Some(42));
    let mut handle = WORKER::call("g-config", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!(42)));

    WORKER::set_shutdown_grace(Duration::from_secs(3));
    assert_eq!(WORKER::registry().shutdown_grace(), Duration::from_secs(3));
}
