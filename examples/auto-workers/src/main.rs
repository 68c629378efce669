//! Workers registered by writing files: everything under `src/workers/` is compiled by
//! `auto_workers!()`, and the `#[worker]` functions in it register themselves.

use rustf_workers::prelude::*;

rustf_workers::auto_workers!();

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // Runs the files in the older `install()` form, and fails fast if two `#[worker]`
    // functions claimed one name.
    let installer = workers::installer();
    println!(
        "compiled from src/workers/: {}",
        installer.files().join(", ")
    );
    installer.install().await?;
    println!("registered: {}\n", WORKER::definitions().await?.join(", "));

    // A typed payload: the worker receives a `SendEmail`.
    WORKER::run(
        "send-email",
        Some(json!({ "to": "ada@example.com", "subject": "Welcome" })),
    )
    .await?;
    // A payload that does not match is refused before the worker runs.
    let err = WORKER::run("send-email", Some(json!({ "subject": "no recipient" })))
        .await
        .unwrap_err();
    println!("refused: {err}\n");

    let mut report =
        WORKER::call("daily-report", None, Some(json!({ "day": "2026-11-23" }))).await?;
    while let Some(progress) = report.recv().await {
        println!("daily-report: {progress}");
    }
    report.await_result().await?;

    WORKER::run("cleanup-temp-files", None).await?;

    println!();
    for name in WORKER::definitions().await? {
        let stats = WORKER::stats(&name).await.unwrap_or_default();
        println!("{name:<20} runs {} errors {}", stats.runs, stats.errors);
    }
    WORKER::shutdown().await
}
