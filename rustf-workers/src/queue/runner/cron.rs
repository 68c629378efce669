//! The cron task: each tick of the registered workers' schedules, enqueued as it falls
//! due.

use std::sync::Arc;
use std::time::Duration;

use super::Runner;

/// Enqueues the ticks of the registered workers' cron schedules as they fall due. Every
/// process that runs jobs does this; the store enqueues each tick once, whoever asks.
pub(super) async fn cron(runner: Arc<Runner>) {
    use crate::queue::cron::{enqueue_due, next_wake, CronSchedule, MissedTicks};

    let schedules: Vec<(String, CronSchedule, crate::queue::NewJob)> =
        match runner.registry.upgrade() {
            Some(registry) => registry
                .cron_jobs()
                .into_iter()
                .filter_map(|(name, expr, job)| {
                    // Checked at registration; a schedule that fails here is skipped, not fatal.
                    CronSchedule::parse(expr)
                        .ok()
                        .map(|schedule| (name, schedule, job))
                })
                .collect(),
            None => return,
        };
    if schedules.is_empty() {
        return;
    }
    loop {
        let now = runner.clock.now_ms();
        for (worker, schedule, template) in &schedules {
            let make_job = |_tick: i64| {
                let mut job = template.clone();
                job.id = uuid::Uuid::new_v4().to_string();
                job
            };
            match enqueue_due(
                &*runner.store,
                now,
                worker,
                schedule,
                MissedTicks::default(),
                make_job,
            )
            .await
            {
                Ok(ticks) if !ticks.is_empty() => runner.wake(),
                Ok(_) => {}
                Err(err) => {
                    log::warn!(target: "rustf_workers::queue", "[Worker:{worker}] cron: {err}");
                }
            }
        }
        let now = runner.clock.now_ms();
        let wake = next_wake(schedules.iter().map(|(_, schedule, _)| schedule), now)
            .map_or(runner.options.poll_interval, |at| {
                Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
            });
        let mut stopped = std::pin::pin!(runner.stopped.notified());
        stopped.as_mut().enable();
        if runner.is_stopping() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(wake.max(Duration::from_millis(1))) => {}
            () = stopped => return,
        }
    }
}
