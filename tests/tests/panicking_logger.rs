//! A logger that panics must not keep a run from ending: its caller still gets the result,
//! the run is counted, and shutdown returns. Its own binary, because a `log` logger is
//! process-wide.

use std::future::Future;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{WorkerOptions, WorkerRegistry};
use rustf_workers_tests::quiet_worker_panics;

/// Panics on every line the runtime logs about a run's end or retry.
struct Panics;

impl log::Log for Panics {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "rustf_workers::run" {
            panic!("worker panic: the logger's disk is full");
        }
    }
    fn flush(&self) {}
}

/// Fails the test instead of hanging it when `future` never ends (on the paused clock,
/// the timeout fires as soon as nothing else can happen).
async fn ends<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("ended despite the panicking logger")
}

#[tokio::test(start_paused = true)]
async fn a_panicking_logger_does_not_keep_a_run_from_ending() {
    quiet_worker_panics();
    log::set_logger(&Panics).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let workers = WorkerRegistry::new();
    workers.register("ok", |_| async { Ok(()) }).await.unwrap();
    workers
        .register("fails", |_| async { Err(Error::internal("no data")) })
        .await
        .unwrap();
    workers
        .register_with("retried", WorkerOptions::new().retries(1), |_| async {
            Err(Error::internal("still no data"))
        })
        .await
        .unwrap();

    ends(workers.run("ok", None)).await.unwrap();
    let err = ends(workers.run("fails", None)).await.unwrap_err();
    assert_eq!(err.to_string(), Error::internal("no data").to_string());
    let handle = workers.call("ok", None, None).await.unwrap();
    ends(handle.await_result()).await.unwrap();
    // The retry logs twice more before its backoff.
    let err = ends(workers.run("retried", None)).await.unwrap_err();
    assert!(err.is_internal(), "{err}");

    let ok = workers.stats("ok").await.unwrap();
    assert_eq!((ok.runs, ok.errors, ok.running), (2, 0, 0));
    assert_eq!(workers.stats("fails").await.unwrap().failed, 1);
    assert_eq!(workers.stats("retried").await.unwrap().runs, 2);
    ends(workers.shutdown()).await.unwrap();
}
