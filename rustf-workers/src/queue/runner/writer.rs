//! The outcome writer: stores the outcomes the runs send, several per transaction.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Runner;
use crate::queue::clock::Clock;
use crate::queue::{Finish, JobStore};

/// Stores outcomes, as many per transaction as have arrived, and never drops one: a
/// failed write is tried again. Ends once the runner is gone and every outcome it sent is
/// stored.
pub(super) async fn write_outcomes(
    store: Arc<dyn JobStore>,
    clock: Arc<Clock>,
    runner: std::sync::Weak<Runner>,
    mut outcomes: mpsc::UnboundedReceiver<Finish>,
) {
    const BATCH: usize = 256;
    let mut batch = Vec::with_capacity(BATCH);
    while outcomes.recv_many(&mut batch, BATCH).await > 0 {
        let mut retry = Duration::from_millis(10);
        loop {
            match store.finish(clock.now_ms(), batch.clone()).await {
                Ok(applied) => {
                    for (finish, applied) in batch.iter().zip(applied) {
                        if !applied {
                            log::warn!(
                                target: "rustf_workers::queue",
                                "[job:{}] outcome refused: its lease was taken over",
                                finish.id,
                            );
                        }
                    }
                    break;
                }
                Err(err) => {
                    log::warn!(target: "rustf_workers::queue", "storing job outcomes: {err}");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Some(runner) = runner.upgrade() {
            {
                let mut unstored = runner.unstored();
                for finish in &batch {
                    if unstored.get(&finish.id) == Some(&finish.epoch) {
                        unstored.remove(&finish.id);
                    }
                }
            }
            // Release: pairs with `flush`'s Acquire.
            runner.unwritten.fetch_sub(batch.len(), Ordering::Release);
            runner.written.notify_waiters();
        }
        batch.clear();
    }
}
