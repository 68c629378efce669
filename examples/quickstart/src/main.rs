//! rustf-workers end to end.
//!
//! `cargo run -p quickstart` registers a few workers, runs them every way a controller
//! would, prints their statistics, then shuts down gracefully: on Ctrl-C or SIGTERM if one
//! arrives, otherwise once the tour is over.

use std::time::Duration;

use rustf_workers::prelude::*;

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // The default hook prints every panic, with a backtrace when RUST_BACKTRACE is set,
    // before the runtime turns it into the run's error. One line is enough here.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    WORKER::set_config(AppConfig::new(
        json!({ "mail": { "from": "noreply@example.com" } }),
    ));
    WORKER::set_shutdown_grace(Duration::from_secs(2));
    register_workers().await?;

    // A long-running worker that stops cleanly when shutdown asks, and one that does not.
    let sync = WORKER::call("nightly-sync", None, None).await?;
    let stubborn = WORKER::call("stubborn", None, None).await?;

    tokio::select! {
        result = tour() => result?,
        signal = shutdown_signal() => println!("\n{signal} received: stopping early"),
    }

    println!(
        "\nshutting down (grace {:?})",
        WORKER::registry().shutdown_grace()
    );
    WORKER::shutdown().await?;
    println!("nightly-sync: {:?}", sync.await_result().await);
    println!(
        "stubborn:     {}",
        stubborn.await_result().await.unwrap_err()
    );

    println!(
        "\n{:<14} {:>5} {:>6} {:>9} {:>9} {:>7}",
        "worker", "runs", "errors", "timed out", "cancelled", "avg ms"
    );
    for name in WORKER::definitions().await? {
        let stats = WORKER::stats(&name).await.unwrap_or_default();
        println!(
            "{name:<14} {:>5} {:>6} {:>9} {:>9} {:>7}",
            stats.runs,
            stats.errors,
            stats.timed_out,
            stats.cancelled,
            stats.average_run_ms().unwrap_or(0)
        );
    }
    assert!(WORKER::running().await?.is_empty());
    Ok(())
}

async fn register_workers() -> Result<()> {
    WORKER::register("send-email", |ctx| async move {
        let to = ctx
            .payload()
            .and_then(|p| p["to"].as_str())
            .ok_or_else(|| Error::validation("'to' address required"))?;
        let from: String = ctx.config().get("mail.from").unwrap_or_default();
        ctx.info(&format!("sending from {from} to {to}"));
        ctx.sleep(Duration::from_millis(50)).await;
        ctx.emit(json!({ "status": "sent", "to": to }))?;
        Ok(())
    })
    .await?;

    WORKER::register("report", |ctx| async move {
        for step in 1..=4 {
            ctx.sleep(Duration::from_millis(100)).await;
            ctx.emit(json!({ "progress": step * 25 }))?;
        }
        Ok(())
    })
    .await?;

    WORKER::register("slow-task", |ctx| async move {
        ctx.sleep(Duration::from_secs(30)).await;
        Ok(())
    })
    .await?;

    WORKER::register("flaky", |_ctx| async move {
        panic!("the flaky worker fell over");
    })
    .await?;

    WORKER::register("nightly-sync", |ctx| async move {
        let mut batches = 0u64;
        loop {
            tokio::select! {
                _ = ctx.cancelled() => break,
                _ = ctx.sleep(Duration::from_millis(200)) => batches += 1,
            }
        }
        ctx.info(&format!(
            "asked to stop after {batches} batches: saving and exiting"
        ));
        Ok(())
    })
    .await?;

    WORKER::register("stubborn", |ctx| async move {
        // Never looks at ctx.cancelled(): shutdown cancels it when the grace period ends.
        ctx.sleep(Duration::from_secs(3600)).await;
        Ok(())
    })
    .await
}

/// What a controller does with workers.
async fn tour() -> Result<()> {
    println!("1. run and wait");
    WORKER::run("send-email", Some(json!({ "to": "ada@example.com" }))).await?;
    let err = WORKER::run("send-email", None).await.unwrap_err();
    println!("   without a payload: {err}");

    println!("2. stream a worker's messages");
    let mut report = WORKER::call("report", None, None).await?;
    while let Some(message) = report.recv().await {
        println!("   report says {message}");
    }
    report.await_result().await?;

    println!("3. a timeout");
    let slow = WORKER::call("slow-task", Some(Duration::from_millis(300)), None).await?;
    println!("   {}", slow.await_result().await.unwrap_err());

    println!("4. cancel by id");
    let slow = WORKER::call("slow-task", None, None).await?;
    println!("   running: {:?}", WORKER::running_for("slow-task").await?);
    WORKER::cancel(slow.id()).await?;
    println!("   {}", slow.await_result().await.unwrap_err());

    println!("5. a panic stays in its run");
    println!("   {}", WORKER::run("flaky", None).await.unwrap_err());
    WORKER::run("send-email", Some(json!({ "to": "still@working.com" }))).await?;

    println!("6. unknown worker");
    println!(
        "   {}",
        WORKER::run("no-such-worker", None).await.unwrap_err()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one; names the signal.
async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.expect("Ctrl-C handler");
        "Ctrl-C"
    };
    #[cfg(unix)]
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler")
            .recv()
            .await;
        "SIGTERM"
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        name = ctrl_c => name,
        name = terminate => name,
    }
}
