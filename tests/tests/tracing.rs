//! With the `tracing` feature, a run executes inside a span carrying the worker name and
//! run id. Its own binary, because the subscriber is process-wide.

use std::io::Write;
use std::sync::{Arc, Mutex};

use rustf_workers::WorkerRegistry;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn runs_execute_inside_a_span_naming_worker_and_run() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let workers = WorkerRegistry::new();
    workers
        .register("traced", |ctx| async move {
            tracing::info!(step = 1, "inside the worker");
            ctx.sleep(std::time::Duration::from_millis(1)).await;
            tracing::info!(step = 2, "after an await");
            Ok(())
        })
        .await
        .unwrap();
    let handle = workers.call("traced", None, None).await.unwrap();
    let id = handle.id().to_owned();
    handle.await_result().await.unwrap();
    tracing::info!("outside any run");

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let span = format!("worker_run{{worker=\"traced\" run_id=\"{id}\"}}");
    let inside: Vec<_> = text.lines().filter(|l| l.contains("step=")).collect();
    assert_eq!(inside.len(), 2, "{text}");
    assert!(inside.iter().all(|l| l.contains(&span)), "{text}");
    let outside = text
        .lines()
        .find(|l| l.contains("outside any run"))
        .unwrap();
    assert!(!outside.contains("worker_run"), "{outside}");
}
