//! Handles to stored jobs that do not run here: a stand-in run with the job's id that
//! follows the stored job (polling its record, and, where the store tells events, passing
//! on the messages its owner publishes) and ends with its stored outcome.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Started, WorkerRegistry};
use crate::queue::{JobRecord, JobState, Runner, StoredJobSink};
use crate::run::{Run, RunKeys};
use crate::{Error, Result, RunStatus};

impl WorkerRegistry {
    /// A handle's run for stored job `id`: its live run here, or a stand-in that ends with
    /// its stored outcome, and that passes on the messages it emits on another node when
    /// `read` (and the store tells events).
    pub(super) async fn stored_job(
        &self,
        queue: &Arc<Runner>,
        id: &str,
        read: bool,
    ) -> Result<Started> {
        if let Ok(run) = self.live_run(id) {
            return Ok(Started::Attached(run));
        }
        let record = self.job(id).await?;
        let definition = self.definition(&record.worker)?;
        let config = Arc::clone(&self.inner.catalog.load().config);
        let keys = Box::new(RunKeys {
            sink: Some(Arc::new(StoredJobSink {
                runner: Arc::clone(queue),
            })),
            ..RunKeys::default()
        });
        let mailbox = read.then(|| {
            (
                // Relaxed: settings read once per run, as for any run.
                self.inner.message_capacity.load(Ordering::Relaxed),
                self.inner.message_budget.load(Ordering::Relaxed),
            )
        });
        let run = Run::stand_in(definition, id, config, Some(keys), mailbox);
        if !close_with_record(&run, &record) {
            tokio::spawn(stand_in_for(Arc::clone(queue), Arc::clone(&run), read));
        }
        Ok(Started::Own(run))
    }
}

/// Ends stand-in `run` if `record` is finished; returns whether it did.
fn close_with_record(run: &Run, record: &JobRecord) -> bool {
    let status = match record.state {
        JobState::Completed => {
            run.close_stand_in(Ok(()), RunStatus::Completed);
            return true;
        }
        JobState::Cancelled => RunStatus::Cancelled,
        JobState::Discarded => RunStatus::Failed,
        _ => return false,
    };
    let failed = Error::JobFailed {
        id: record.id.clone(),
        worker: record.worker.clone(),
        state: record.state,
        error: record
            .errors
            .last()
            .map_or_else(String::new, |error| error.error.clone()),
    };
    run.close_stand_in(Err(failed), status);
    true
}

/// Watches the stored job `run` stands in for until it finishes, then ends `run` with
/// its outcome; when `read` and the store tells events, passes on the messages the job's
/// owner publishes meanwhile (see `queue/follow.rs`). Looks again when this process
/// stores an outcome or hears the job ended, else after a wait that grows from 50 ms to
/// 1 s. Gives up once nobody holds `run` (it just ends), when this
/// process shuts down or the store keeps failing (`run` ends with that error; the job
/// stays stored either way).
async fn stand_in_for(queue: Arc<Runner>, run: Arc<Run>, read: bool) {
    const FAILURES: u32 = 10;
    let mut wait = Duration::from_millis(50);
    let mut failures = 0;
    // Its messages, for a handle that reads them, when its owner publishes them: asked
    // for each claim of the job.
    let following = read.then(|| queue.follow(run.id(), &run)).flatten();
    let mut asked = None;
    loop {
        queue.written(wait).await;
        wait = (wait * 2).min(Duration::from_secs(1));
        // Only this task holds it: its handle and watchers are gone.
        if Arc::strong_count(&run) == 1 {
            return;
        }
        if queue.is_stopping() {
            run.close_stand_in(Err(Error::ShuttingDown), RunStatus::Cancelled);
            return;
        }
        match queue.store.get(run.id()).await {
            Ok(Some(record)) => {
                failures = 0;
                if let Some(following) = &following {
                    if record.state.is_finished() {
                        // Its owner's last messages come before its word that it ended.
                        following.follower.last_messages().await;
                    } else if record.state == JobState::Running
                        && record.owner.as_deref() != Some(queue.node_id())
                    {
                        queue.ask_messages(run.id(), record.epoch, &mut asked).await;
                    }
                }
                if close_with_record(&run, &record) {
                    return;
                }
            }
            Ok(None) => {
                let gone = Error::JobNotFound {
                    id: run.id().to_owned(),
                };
                run.close_stand_in(Err(gone), RunStatus::Failed);
                return;
            }
            Err(err) => {
                failures += 1;
                log::warn!(
                    target: "rustf_workers::queue",
                    "[job:{}] reading its state: {err}",
                    run.id()
                );
                if failures == FAILURES {
                    run.close_stand_in(Err(err), RunStatus::Failed);
                    return;
                }
            }
        }
    }
}
