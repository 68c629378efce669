//! Log lines from the context carry the worker name and run id. Its own binary, because a
//! `log` logger is process-wide.

use std::sync::Mutex;

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;

static LINES: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

#[tokio::test]
async fn context_logging_is_tagged_and_run_endings_are_logged() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    std::env::set_var("RUSTF_ENV", "production");

    let workers = WorkerRegistry::new();
    workers
        .register("logger-demo", |ctx| async move {
            ctx.info("informational");
            ctx.warn("careful");
            ctx.error("bad");
            ctx.debug("hidden in production");
            ctx.log(log::Level::Trace, "custom");
            Err(Error::internal("gave up"))
        })
        .await
        .unwrap();
    let handle = workers.call("logger-demo", None, None).await.unwrap();
    let id = handle.id().to_owned();
    assert!(handle.await_result().await.is_err());

    let lines = LINES.lock().unwrap().clone();
    let tag = format!("[Worker:logger-demo run:{id}]");
    let worker_lines: Vec<_> = lines
        .iter()
        .filter(|(_, target, _)| target == "rustf_workers::worker")
        .map(|(level, _, text)| (*level, text.clone()))
        .collect();
    assert_eq!(
        worker_lines,
        [
            (log::Level::Info, format!("{tag} informational")),
            (log::Level::Warn, format!("{tag} careful")),
            (log::Level::Error, format!("{tag} bad")),
            (log::Level::Trace, format!("{tag} custom")),
        ]
    );
    let ending = lines
        .iter()
        .find(|(_, target, _)| target == "rustf_workers::run")
        .expect("the run's ending is logged");
    assert_eq!(ending.0, log::Level::Warn);
    assert!(
        ending.2.starts_with(&format!("{tag} failed after ")),
        "{}",
        ending.2
    );
    assert!(
        ending.2.ends_with("internal error: gave up"),
        "{}",
        ending.2
    );
}
