//! The heartbeat: every third of a lease it extends the leases this process holds (those
//! of outcomes still waiting to be stored too), stops the runs whose lease was lost or
//! whose cancel was asked elsewhere, stores the progress that moved and the node's beat;
//! and, on the store's leader, rescues expired leases and prunes now and then.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::{millis, Runner};
use crate::Result;

impl Runner {
    /// One heartbeat: extend the leases held, stop the runs whose lease was lost or whose
    /// cancel was asked from elsewhere.
    async fn beat(&self) -> Result<()> {
        let Some(registry) = self.registry.upgrade() else {
            return Ok(());
        };
        let leases: Vec<(String, u64)> = self
            .leased()
            .iter()
            .map(|(id, epoch)| (id.clone(), *epoch))
            .collect();
        let running = leases.len();
        let mut leases = leases;
        leases.extend(
            self.unstored()
                .iter()
                .map(|(id, epoch)| (id.clone(), *epoch)),
        );
        if !leases.is_empty() {
            let kept = self
                .store
                .extend(
                    self.clock.now_ms(),
                    &self.owner,
                    leases.clone(),
                    millis(self.options.lease),
                )
                .await?;
            // Past `running`: outcomes waiting in the writer, whose refusal it logs.
            for ((id, epoch), kept) in leases.into_iter().zip(kept).take(running) {
                if !kept {
                    // Rescued and maybe given to another process: this run's writes would
                    // be refused; it stops here.
                    self.lease_lost(&registry, &id, epoch);
                }
            }
        }
        for (id, _) in self.store.cancel_requests(&self.owner).await? {
            self.cancel_here(&registry, &id);
        }
        self.store_progress(&registry).await?;
        // Not while shutting down: shutdown marks the node stopped, and a beat after that
        // would register it again.
        if self.options.runs_jobs && !self.is_stopping() {
            let cooling = self.cooling_until.load(Ordering::Relaxed);
            let beat = crate::queue::NodeBeat {
                id: self.owner.clone(),
                running: u32::try_from(self.running()).unwrap_or(u32::MAX),
                memory_used: registry.memory_in_use(),
                cooling_until_ms: (cooling > self.clock.now_ms()).then_some(cooling),
            };
            if !self.store.node_beat(self.clock.now_ms(), beat).await? {
                // Pruned while silent (a long pause): registered again, as it runs on.
                self.register().await?;
            }
        }
        Ok(())
    }

    /// Stores the progress of each job run here whose progress moved since the last beat,
    /// fenced by its claim: what [`JobRecord::progress`](super::JobRecord::progress) shows.
    async fn store_progress(&self, registry: &crate::WorkerRegistry) -> Result<()> {
        let leases: Vec<(String, u64)> = self
            .leased()
            .iter()
            .map(|(id, epoch)| (id.clone(), *epoch))
            .collect();
        let mut moved = Vec::new();
        {
            let mut stored = self.stored_progress();
            stored.retain(|id, _| leases.iter().any(|(leased, _)| leased == id));
            for (id, epoch) in leases {
                let Some(progress) = registry
                    .live_run(&id)
                    .ok()
                    .and_then(|run| run.last_progress())
                else {
                    continue;
                };
                if stored.get(&id) != Some(&progress) {
                    moved.push((id, epoch, progress));
                }
            }
        }
        // Each one on its own: a write that fails is tried again at the next beat, and
        // does not keep the others from being stored.
        let mut failed = None;
        for (id, epoch, progress) in moved {
            let value = serde_json::to_value(&progress)?;
            match self.store.progress(&id, epoch, value).await {
                Ok(_) => {
                    self.stored_progress().insert(id, progress);
                }
                Err(err) => failed = Some(err),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    fn stored_progress(&self) -> MutexGuard<'_, HashMap<String, crate::Progress>> {
        // Held for the comparison, never across an await.
        self.stored_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Extends leases every third of a lease; and, on the store's leader
/// ([`JobStore::lead`]), rescues expired ones and prunes now and then.
pub(super) async fn heartbeat(runner: Arc<Runner>) {
    let every = runner.options.heartbeat_every();
    let mut beats: u64 = 0;
    // After the store was out of reach: the beats that reached it since. Every node's
    // leases ran out meanwhile; a leader that rescued them at once would take back jobs
    // that run on, whose owners extend them at their next beat. So it waits two beats.
    let mut recovering: Option<u32> = None;
    loop {
        let mut stopped = std::pin::pin!(runner.stopped.notified());
        stopped.as_mut().enable();
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stopped => {}
        }
        if let Err(err) = runner.clock.sync(&*runner.store).await {
            log::warn!(target: "rustf_workers::queue", "reading the store's clock: {err}");
        }
        match runner.beat().await {
            Ok(()) => {
                recovering = recovering.map(|beats| beats + 1).filter(|&beats| beats < 2);
            }
            Err(err) => {
                log::warn!(target: "rustf_workers::queue", "heartbeat: {err}");
                recovering = Some(0);
            }
        }
        let gone = runner.registry.upgrade().is_none();
        let claiming = runner.claiming.load(Ordering::SeqCst);
        // Acquire: pairs with the writer's Release once a batch is stored.
        let unwritten = runner.unwritten.load(Ordering::Acquire);
        if gone
            || (runner.is_stopping()
                && runner.leased().is_empty()
                && claiming == 0
                && unwritten == 0)
        {
            return;
        }
        // The cluster's maintenance, by its leader only; not by a node on its way out.
        let leads = !runner.is_stopping()
            && runner
                .store
                .lead(
                    runner.clock.now_ms(),
                    &runner.owner,
                    millis(runner.options.lease),
                )
                .await
                .unwrap_or_else(|err| {
                    log::warn!(target: "rustf_workers::queue", "taking the lead: {err}");
                    false
                });
        if leads && recovering.is_none() && beats.is_multiple_of(3) {
            match runner.store.rescue(runner.clock.now_ms()).await {
                Ok(rescued) if !rescued.is_empty() => {
                    log::info!(
                        target: "rustf_workers::queue",
                        "rescued {} jobs whose lease expired",
                        rescued.len()
                    );
                    runner.wake();
                }
                Ok(_) => {}
                Err(err) => log::warn!(target: "rustf_workers::queue", "rescuing jobs: {err}"),
            }
        }
        // About hourly at the default lease.
        if let (Some(retention), true) =
            (runner.options.retention, leads && beats.is_multiple_of(360))
        {
            if let Err(err) = runner
                .store
                .prune(runner.clock.now_ms(), millis(retention))
                .await
            {
                log::warn!(target: "rustf_workers::queue", "pruning jobs: {err}");
            }
        }
        beats = beats.wrapping_add(1);
    }
}
