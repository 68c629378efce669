//! `WORKER::shutdown` on the global registry, alone in its binary because it ends the
//! registry for good.

use std::time::Duration;

use rustf_workers::prelude::*;

#[tokio::test(start_paused = true)]
async fn global_shutdown_stops_everything_and_refuses_new_calls() {
    WORKER::set_shutdown_grace(Duration::from_secs(2));
    WORKER::register("gs-forever", |ctx| async move {
        ctx.sleep(Duration::from_secs(3600)).await;
        Ok(())
    })
    .await
    .unwrap();
    let handles =
        futures::future::try_join_all((0..10).map(|_| WORKER::call("gs-forever", None, None)))
            .await
            .unwrap();
    assert_eq!(WORKER::running().await.unwrap().len(), 10);

    let start = tokio::time::Instant::now();
    WORKER::shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(WORKER::running().await.unwrap().is_empty());
    for handle in handles {
        assert!(handle.await_result().await.unwrap_err().is_cancelled());
    }
    let stats = WORKER::stats("gs-forever").await.unwrap();
    assert_eq!((stats.runs, stats.cancelled, stats.running), (10, 10, 0));
    assert!(WORKER::run("gs-forever", None)
        .await
        .unwrap_err()
        .is_shutting_down());
}
