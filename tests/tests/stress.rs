//! Tens of thousands of runs with random cancels, timeouts, errors and panics, then the
//! invariants of DESIGN.md: one terminal state each, counted once, nothing left listed or
//! alive, no message lost or reordered.

use std::sync::Arc;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::{CancelReason, WorkerOptions, WorkerRegistry, WorkerStats};
use rustf_workers_tests::{quiet_worker_panics, Rng, Tracked, Tracker};

const KINDS: u64 = 4;
const OK: u64 = 0;
const FAIL: u64 = 1;
const PANIC: u64 = 2;
const SLEEP: u64 = 3;

/// The timeout of the "mixed-timed" worker, for runs started by `run`.
const RUN_TIMEOUT: Duration = Duration::from_micros(1500);

async fn registry(tracker: Tracker) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    // Small enough that emit_wait really waits for slow readers.
    workers.set_message_capacity(2).unwrap();
    let held = tracker.clone();
    workers
        .register("mixed", move |ctx| mixed(ctx, held.track()))
        .await
        .unwrap();
    // The same worker with a timeout of its own: `run` has no timeout argument.
    workers
        .register_with(
            "mixed-timed",
            WorkerOptions::new().timeout(RUN_TIMEOUT),
            move |ctx| mixed(ctx, tracker.track()),
        )
        .await
        .unwrap();
    workers
}

/// Emits, yields, then ends as the payload says; `held` is dropped with its future.
async fn mixed(ctx: WorkerContext, held: Tracked) -> Result<()> {
    let p = ctx.payload().cloned().unwrap_or_default();
    let (kind, messages, sleep_us) = (
        p["kind"].as_u64().unwrap(),
        p["messages"].as_u64().unwrap(),
        p["sleep_us"].as_u64().unwrap(),
    );
    for i in 0..messages {
        ctx.emit_wait(json!(i)).await?;
        if i % 2 == 1 {
            tokio::task::yield_now().await;
        }
    }
    let result = match kind {
        OK => Ok(()),
        FAIL => Err(Error::internal("failed on purpose")),
        PANIC => panic!("worker panic: on purpose"),
        _ => {
            ctx.sleep(Duration::from_micros(sleep_us)).await;
            Ok(())
        }
    };
    drop(held);
    result
}

#[derive(Debug, Default)]
struct Tally {
    completed: u64,
    failed: u64,
    timed_out: u64,
    cancelled: u64,
    panicked: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.cancelled += other.cancelled;
        self.panicked += other.panicked;
    }

    fn total(&self) -> u64 {
        self.completed + self.failed + self.timed_out + self.cancelled + self.panicked
    }

    /// The statistics of all `workers` together count exactly this.
    fn assert_matches(&self, workers: &[WorkerStats]) {
        let sum = |field: fn(&WorkerStats) -> u64| workers.iter().map(field).sum::<u64>();
        assert_eq!(sum(|s| s.runs), self.total(), "{workers:?} vs {self:?}");
        assert_eq!(sum(|s| s.runs - s.errors), self.completed, "{workers:?}");
        assert_eq!(sum(|s| s.failed), self.failed);
        assert_eq!(sum(|s| s.timed_out), self.timed_out);
        assert_eq!(sum(|s| s.cancelled), self.cancelled);
        assert_eq!(sum(|s| s.panicked), self.panicked);
        assert_eq!(sum(|s| s.running), 0);
    }
}

/// One run with random behaviour; returns how it ended after checking it against what
/// was asked.
async fn one_run(workers: WorkerRegistry, seed: u64, check_listing: bool) -> Tally {
    let mut rng = Rng::new(seed);
    let kind = rng.below(KINDS);
    let messages = rng.below(6);
    let sleep_us = rng.below(3000);
    let timeout = (rng.below(3) == 0).then(|| Duration::from_micros(1 + rng.below(3000)));
    let cancel_at = (rng.below(5) == 0).then(|| rng.below(3));
    let read = rng.below(2) == 0;

    let payload = json!({ "kind": kind, "messages": messages, "sleep_us": sleep_us });
    if !read && cancel_at.is_none() && rng.below(2) == 0 {
        // The way a controller calls `WORKER::run`: no handle, nobody reading; the
        // timeout is then the worker's own.
        let (worker, timeout) = match timeout {
            Some(_) => ("mixed-timed", Some(RUN_TIMEOUT)),
            None => ("mixed", None),
        };
        let result = workers.run(worker, Some(payload)).await;
        return tally(kind, timeout, cancel_at, result);
    }
    let mut handle = workers.call("mixed", timeout, Some(payload)).await.unwrap();
    let id = handle.id().to_owned();
    if check_listing {
        // Invariant 2: listed while its handle exists and it is not terminal.
        let listed = workers.running().await.unwrap().contains(&id);
        assert!(
            listed || handle.is_finished(),
            "run {id} missing from running()"
        );
    }

    if let Some(at) = cancel_at {
        for _ in 0..at {
            tokio::task::yield_now().await;
        }
        let cancelled = if rng.below(2) == 0 {
            handle.cancel().await
        } else {
            workers.cancel(&id).await
        };
        if let Err(err) = cancelled {
            assert!(err.is_run_not_found(), "{err}");
        }
    }

    let mut received = Vec::new();
    if read {
        while let Some(message) = handle.recv().await {
            received.push(message.as_u64().unwrap());
        }
        assert!(handle.is_finished());
    }
    // Invariant 3: in order, nothing lost.
    assert_eq!(received, (0..received.len() as u64).collect::<Vec<_>>());
    let result = handle.await_result().await;
    if check_listing {
        assert!(
            !workers.running().await.unwrap().contains(&id),
            "finished run {id} still listed"
        );
    }

    let tally = tally(kind, timeout, cancel_at, result);
    let ran_to_the_end = tally.completed + tally.failed + tally.panicked == 1;
    if read && ran_to_the_end {
        assert_eq!(
            received.len() as u64,
            messages,
            "a finished run's messages all arrive"
        );
    }
    tally
}

/// Checks one run's result against what it was asked to do, and counts it.
fn tally(
    kind: u64,
    timeout: Option<Duration>,
    cancel_at: Option<u64>,
    result: Result<()>,
) -> Tally {
    let mut tally = Tally::default();
    match result {
        Ok(()) => {
            assert!(kind == OK || kind == SLEEP, "kind {kind} completed");
            tally.completed += 1;
        }
        Err(Error::Internal(ref m)) if m == "failed on purpose" => {
            assert_eq!(kind, FAIL);
            tally.failed += 1;
        }
        Err(Error::Panicked { ref message, .. }) => {
            assert_eq!(
                (kind, message.as_str()),
                (PANIC, "worker panic: on purpose")
            );
            tally.panicked += 1;
        }
        Err(Error::TimedOut { after, .. }) => {
            assert_eq!(Some(after), timeout);
            tally.timed_out += 1;
        }
        Err(Error::Cancelled { reason, .. }) => {
            assert_eq!(reason, CancelReason::Requested);
            assert!(cancel_at.is_some(), "cancelled without a cancel");
            tally.cancelled += 1;
        }
        Err(other) => panic!("unexpected outcome: {other}"),
    }
    tally
}

async fn stress(runs: u64, seed: u64, multi_thread: bool) {
    quiet_worker_panics();
    let tracker = Tracker::default();
    let workers = registry(tracker.clone()).await;
    let mut seeds = Rng::new(seed);
    let tasks: Vec<_> = (0..runs)
        .map(|i| {
            let run = one_run(workers.clone(), seeds.next_u64(), i % 97 == 0);
            if multi_thread {
                tokio::spawn(run)
            } else {
                tokio::task::spawn_local(run)
            }
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(&task.await.unwrap());
    }

    tally.assert_matches(&[
        workers.stats("mixed").await.unwrap(),
        workers.stats("mixed-timed").await.unwrap(),
    ]);
    assert!(workers.running().await.unwrap().is_empty());
    assert_eq!(tracker.live(), 0, "every handler future was dropped");
    let timed = workers.stats("mixed-timed").await.unwrap();
    assert!(
        timed.timed_out > 0 && timed.runs > timed.errors,
        "{timed:?}"
    );
    assert!(tally.cancelled > 0 && tally.timed_out > 0 && tally.panicked > 0 && tally.failed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_random_runs_on_two_threads() {
    stress(20_000, 0x5EED_0001, true).await;
}

#[tokio::test(start_paused = true)]
async fn twenty_thousand_random_runs_on_the_paused_clock() {
    tokio::task::LocalSet::new()
        .run_until(stress(20_000, 0x5EED_0002, false))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_counts_every_accepted_run() {
    quiet_worker_panics();
    let tracker = Tracker::default();
    let workers = registry(tracker.clone()).await;
    workers.set_shutdown_grace(Duration::from_millis(5));
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let callers: Vec<_> = (0..4u64)
        .map(|c| {
            let workers = workers.clone();
            let accepted = Arc::clone(&accepted);
            tokio::spawn(async move {
                let mut rng = Rng::new(0xC0FFEE + c);
                let mut handles = Vec::new();
                loop {
                    let payload = json!({
                        "kind": rng.below(KINDS),
                        "messages": rng.below(3),
                        "sleep_us": rng.below(50_000),
                    });
                    match workers.call("mixed", None, Some(payload)).await {
                        Ok(handle) => {
                            accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            handles.push(handle);
                        }
                        Err(err) => {
                            assert!(err.is_shutting_down(), "{err}");
                            break;
                        }
                    }
                    if handles.len() % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                handles
            })
        })
        .collect();

    // Callers that `run` and wait, as controllers do: their runs take their first step
    // in the caller's poll, some of them while shutdown begins.
    let ran = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let runners: Vec<_> = (0..2u64)
        .map(|c| {
            let workers = workers.clone();
            let ran = Arc::clone(&ran);
            tokio::spawn(async move {
                let mut rng = Rng::new(0xBEEF + c);
                loop {
                    let payload = json!({
                        "kind": rng.below(KINDS),
                        "messages": rng.below(3),
                        "sleep_us": rng.below(5_000),
                    });
                    match workers.run("mixed", Some(payload)).await {
                        Err(err) if err.is_shutting_down() => break,
                        _ => ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(20)).await;
    workers.shutdown().await.unwrap();
    // Invariant 5: nothing is running once shutdown returns.
    assert!(workers.running().await.unwrap().is_empty());
    let stats = workers.stats("mixed").await.unwrap();
    assert_eq!(stats.running, 0);

    let mut finished = 0;
    for caller in callers {
        for handle in caller.await.unwrap() {
            assert!(handle.is_finished());
            let _ = handle.await_result().await;
            finished += 1;
        }
    }
    let accepted = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        accepted > 100,
        "only {accepted} calls got in before shutdown"
    );
    assert_eq!(finished, accepted);
    for runner in runners {
        runner.await.unwrap();
    }
    let ran = ran.load(std::sync::atomic::Ordering::SeqCst);
    assert!(ran > 0, "no run got in before shutdown");
    // Invariant 1: every accepted run counted exactly once.
    assert_eq!(workers.stats("mixed").await.unwrap().runs, accepted + ran);
    assert_eq!(tracker.live(), 0);
}
