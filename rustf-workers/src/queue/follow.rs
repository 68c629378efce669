//! The store's events in the engine ([`JobStore::subscribe`](super::JobStore::subscribe)):
//! the poller woken when jobs become available, a cancel asked on another machine
//! stopping its run here at once, and handles following the jobs that run on other
//! machines, whose messages their owners publish.
//!
//! Following: a handle to a stored job that runs elsewhere stands in for it (a stand-in
//! run, see `registry/queue.rs`). When its job is running, it publishes
//! [`StoreEvent::Follow`]; the owner, if the job is still its own, watches the run as a
//! [`Subscription`](crate::Subscription) would and publishes its messages in batches
//! ([`StoreEvent::Messages`]), then [`StoreEvent::Ended`] once the outcome is stored. The
//! stand-in passes each message on to its handle. What the run emitted before the
//! follow reached the owner is not sent; a follower that falls behind misses messages,
//! as a watcher does.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{oneshot, Notify};

use super::runner::Runner;
use super::{StoreEvent, StoreEvents};
use crate::run::Run;
use crate::{RunEvent, Subscription};

/// At most this many messages in one publish.
const BATCH: usize = 256;

/// How long a follower whose job has ended waits for the owner's last messages.
const LAST_MESSAGES_WAIT: Duration = Duration::from_secs(2);

/// The engine's side of following: who follows what here, what is published from here.
#[derive(Default)]
pub(crate) struct Follows {
    /// Stand-ins here following jobs that run elsewhere, by job id (several handles may
    /// follow one job).
    followers: Mutex<HashMap<String, Vec<Arc<Follower>>>>,
    /// Jobs running here whose messages are published for followers elsewhere.
    forwarding: Mutex<HashSet<String>>,
}

/// A stand-in following its job.
pub(crate) struct Follower {
    run: Weak<Run>,
    /// The owner has published messages: it is forwarding, and will say when it ends.
    heard: AtomicBool,
    /// The owner said the job ended (its outcome is stored).
    ended: AtomicBool,
    ended_notify: Notify,
}

impl Follower {
    /// Waits, if the owner has been publishing, until it says the job ended (its last
    /// messages have come), for [`LAST_MESSAGES_WAIT`] at most.
    pub(crate) async fn last_messages(&self) {
        if !self.heard.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(LAST_MESSAGES_WAIT, async {
            loop {
                let mut ended = std::pin::pin!(self.ended_notify.notified());
                ended.as_mut().enable();
                if self.ended.load(Ordering::Acquire) {
                    return;
                }
                ended.await;
            }
        })
        .await;
    }
}

/// A stand-in's registration as a follower, removed when dropped.
pub(crate) struct Following<'a> {
    follows: &'a Follows,
    id: String,
    pub(crate) follower: Arc<Follower>,
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        let mut followers = self.follows.followers();
        if let Some(these) = followers.get_mut(&self.id) {
            these.retain(|f| !Arc::ptr_eq(f, &self.follower));
            if these.is_empty() {
                followers.remove(&self.id);
            }
        }
    }
}

impl Follows {
    fn followers(&self) -> MutexGuard<'_, HashMap<String, Vec<Arc<Follower>>>> {
        // Held for one map operation, never across an await.
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forwarding(&self) -> MutexGuard<'_, HashSet<String>> {
        // Held for one set operation, never across an await.
        self.forwarding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stand-ins following job `id`.
    fn of(&self, id: &str) -> Vec<Arc<Follower>> {
        self.followers().get(id).cloned().unwrap_or_default()
    }

    /// Registers `run` as following job `id`'s messages.
    pub(crate) fn follow(&self, id: &str, run: &Arc<Run>) -> Following<'_> {
        let follower = Arc::new(Follower {
            run: Arc::downgrade(run),
            heard: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            ended_notify: Notify::new(),
        });
        self.followers()
            .entry(id.to_owned())
            .or_default()
            .push(Arc::clone(&follower));
        Following {
            follows: self,
            id: id.to_owned(),
            follower,
        }
    }
}

/// Passes the store's events to `runner` until they end or the runner is dropped
/// (`gone` then resolves).
pub(super) async fn listen(
    runner: Weak<Runner>,
    mut events: StoreEvents,
    mut gone: oneshot::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = &mut gone => return,
        };
        let Some(runner) = runner.upgrade() else {
            return;
        };
        on_event(&runner, event);
    }
}

fn on_event(runner: &Arc<Runner>, event: StoreEvent) {
    let Some(registry) = runner.registry.upgrade() else {
        return;
    };
    match event {
        StoreEvent::Available { worker } => {
            if registry.definition(&worker).is_ok() {
                runner.wake();
            }
        }
        StoreEvent::CancelRequested { owner, id } => {
            if owner == runner.node_id() && runner.holds(&id) {
                runner.cancel_here(&registry, &id);
            }
        }
        StoreEvent::Follow { id } => {
            // Held ahead: forwarded once it starts.
            if runner.holds(&id) && !runner.follow_ahead(&id) {
                forward_run(runner, &registry, id);
            }
        }
        StoreEvent::Messages { id, messages } => {
            let followers = runner.follows.of(&id);
            for follower in followers {
                follower.heard.store(true, Ordering::Release);
                let Some(run) = follower.run.upgrade() else {
                    continue;
                };
                for message in &messages {
                    if let Err(err) = run.emit(message.clone()) {
                        log::warn!(
                            target: "rustf_workers::queue",
                            "[job:{id}] a message from its node not passed on: {err}",
                        );
                        break;
                    }
                }
            }
        }
        StoreEvent::Ended { id } => {
            for follower in runner.follows.of(&id) {
                follower.ended.store(true, Ordering::Release);
                follower.ended_notify.notify_waiters();
            }
            runner.look_again();
        }
        StoreEvent::Resumed => {
            // Missed events: claim what may be due, and followers follow again.
            runner.resumed();
            runner.wake();
        }
    }
}

/// Publishes the messages of job `id`, running here, for the nodes that follow it, unless
/// they are published already.
pub(super) fn forward_run(runner: &Arc<Runner>, registry: &crate::WorkerRegistry, id: String) {
    if !runner.follows.forwarding().insert(id.clone()) {
        return;
    }
    match registry.subscribe(&id) {
        Ok(watcher) => {
            tokio::spawn(forward(Arc::clone(runner), watcher, id));
        }
        Err(_) => {
            runner.follows.forwarding().remove(&id);
        }
    }
}

/// Publishes job `id`'s messages, as `watcher` sees them, until the run ends; then, once
/// its outcome is stored, that it ended.
async fn forward(runner: Arc<Runner>, mut watcher: Subscription, id: String) {
    let mut finished = false;
    while !finished {
        let mut messages = Vec::new();
        finished = take(watcher.recv().await, &mut messages, &id);
        // And whatever else has come meanwhile, in the same publish.
        while !finished && messages.len() < BATCH {
            match watcher.recv().now_or_never() {
                Some(event) => finished = take(event, &mut messages, &id),
                None => break,
            }
        }
        if messages.is_empty() {
            continue;
        }
        let batch = vec![StoreEvent::Messages {
            id: id.clone(),
            messages,
        }];
        if let Err(err) = runner.store.publish(batch).await {
            log::warn!(target: "rustf_workers::queue", "[job:{id}] publishing its messages: {err}");
        }
    }
    runner.outcomes_stored(LAST_MESSAGES_WAIT).await;
    if let Err(err) = runner
        .store
        .publish(vec![StoreEvent::Ended { id: id.clone() }])
        .await
    {
        log::warn!(target: "rustf_workers::queue", "[job:{id}] publishing its end: {err}");
    }
    runner.follows.forwarding().remove(&id);
}

/// Adds a watcher's event to `messages`; returns whether the run has ended.
fn take(event: Option<RunEvent>, messages: &mut Vec<serde_json::Value>, id: &str) -> bool {
    match event {
        Some(RunEvent::Message(message)) => messages.push(message),
        Some(RunEvent::Lagged(missed)) => log::warn!(
            target: "rustf_workers::queue",
            "[job:{id}] {missed} messages not published: its followers fell behind",
        ),
        Some(RunEvent::Finished(_)) | None => return true,
    }
    false
}
