//! A run whose handle is held and never read keeps its unread messages within its byte
//! budget: the process's memory stays bounded whatever the worker emits. Alone in its
//! test binary, so the process's peak memory is this test's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;

/// The process's peak resident set so far, in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_million_unread_messages_keep_memory_within_the_budget() {
    let workers = WorkerRegistry::new();
    let refused = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&refused);
    workers
        .register("firehose", move |ctx| {
            let refused = Arc::clone(&counted);
            async move {
                // No await: nothing paces this loop but the budget.
                for i in 0..2_000_000u64 {
                    match ctx.emit(json!({ "seq": i })) {
                        Ok(()) => {}
                        Err(Error::MessageBufferFull { .. }) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => return Err(err),
                    }
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    let before = peak_rss();
    let handle = workers.call("firehose", None, None).await.unwrap();
    // Held, never read, until the worker has emitted everything.
    while workers.stats("firehose").await.unwrap().runs == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let growth = peak_rss().saturating_sub(before);
    let refused = refused.load(Ordering::Relaxed);
    assert!(
        growth < 150 << 20,
        "peak memory grew by {} MiB",
        growth >> 20
    );
    assert!(
        refused > 1_000_000,
        "the budget refused most of the messages: {refused}"
    );
    handle.await_result().await.unwrap();
}
