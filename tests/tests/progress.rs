//! `ctx.progress`: recorded on the run and delivered as a message.

use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{Progress, WorkerRegistry};

async fn registry() -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register("steps", |ctx| async move {
            for (percent, stage) in [(0, "start"), (50, "half"), (100, "done")] {
                ctx.progress(percent, stage)?;
                ctx.sleep(Duration::from_secs(1)).await;
            }
            let err = ctx.progress(101, "too far").unwrap_err();
            ctx.emit(json!(err.to_string()))?;
            Ok(())
        })
        .await
        .unwrap();
    workers
}

#[tokio::test(start_paused = true)]
async fn progress_is_a_message_of_a_documented_shape_and_is_kept_on_the_run() {
    let workers = registry().await;
    let mut handle = workers.call("steps", None, None).await.unwrap();
    assert_eq!(
        handle.recv().await,
        Some(json!({ "progress": { "percent": 0, "message": "start" } }))
    );
    assert_eq!(
        handle.recv().await,
        Some(json!({ "progress": { "percent": 50, "message": "half" } }))
    );
    let info = workers.run_info(handle.id()).unwrap();
    let progress: Progress = info.progress.clone().unwrap();
    assert_eq!((progress.percent, progress.message.as_str()), (50, "half"));
    assert_eq!(
        serde_json::to_value(&info).unwrap()["progress"]["percent"],
        50
    );
    assert_eq!(
        handle.recv().await,
        Some(json!({ "progress": { "percent": 100, "message": "done" } }))
    );
    let refused = handle.recv().await.unwrap();
    assert_eq!(
        refused,
        json!("validation failed: progress must be at most 100 percent, not 101")
    );
    handle.await_result().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_is_behind_never_fails_the_worker() {
    let workers = registry().await;
    workers.set_message_capacity(1).unwrap();
    let handle = workers.call("steps", None, None).await.unwrap();
    // Nobody reads: the buffer holds one message and the rest of the updates are dropped.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        workers
            .run_info(handle.id())
            .unwrap()
            .progress
            .unwrap()
            .percent,
        100
    );
    // Awaiting the result detaches the reader; the worker finishes untroubled.
    handle.await_result().await.unwrap();
}
