//! Claim-ahead: a process claims short jobs beyond its free slots, so that a run's end
//! starts the next one without a round trip to the store; never more than `concurrency`
//! run at once, the jobs held ahead keep their leases, a cancel takes one out unrun,
//! shutdown hands them back uncounted, and long jobs are not held ahead at all.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustf_workers::queue::{JobFilter, JobRecord, JobState, QueueOptions, SqliteQueue};
use rustf_workers::{JobOptions, WorkerRegistry};
use rustf_workers_tests as _;

/// Slots per process in these tests.
const CONCURRENCY: usize = 2;

/// What the gated worker saw: each run's id, how many ran at once at most.
#[derive(Default)]
struct Seen {
    ids: Mutex<Vec<String>>,
    now: AtomicUsize,
    most: AtomicUsize,
}

/// A registry on `path` whose worker `gate` runs until `release` gives it a permit, whose
/// `quick` ends at once and whose `slow` takes 200 ms (a short job and a long one, for
/// the mean run time that claim-ahead follows).
async fn node(
    path: &std::path::Path,
    options: QueueOptions,
) -> (WorkerRegistry, Arc<Seen>, Arc<tokio::sync::Semaphore>) {
    let workers = WorkerRegistry::new();
    workers.set_shutdown_grace(Duration::from_millis(50));
    let seen = Arc::new(Seen::default());
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (log, gate) = (Arc::clone(&seen), Arc::clone(&release));
    workers
        .register("gate", move |ctx| {
            let (log, gate) = (Arc::clone(&log), Arc::clone(&gate));
            async move {
                log.ids.lock().unwrap().push(ctx.run_id().to_owned());
                let now = log.now.fetch_add(1, Ordering::SeqCst) + 1;
                log.most.fetch_max(now, Ordering::SeqCst);
                // Deaf to stop requests: shutdown stops it after the grace.
                gate.acquire().await.unwrap().forget();
                log.now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .unwrap();
    workers
        .register("quick", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    workers
        .register("slow", |ctx| async move {
            ctx.sleep(Duration::from_millis(200)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers
        .use_queue_with(SqliteQueue::open(path).unwrap(), options)
        .unwrap();
    (workers, seen, release)
}

fn options() -> QueueOptions {
    QueueOptions::new()
        .concurrency(CONCURRENCY)
        .claim_ahead(4)
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_secs(3))
}

/// The jobs the store shows running (claimed: running here or held ahead).
async fn claimed(workers: &WorkerRegistry) -> Vec<JobRecord> {
    let filter = JobFilter {
        states: vec![JobState::Running],
        ..JobFilter::default()
    };
    workers.jobs(filter).await.unwrap().jobs
}

/// Waits until `done` holds of the jobs the store shows running.
async fn until_claimed(workers: &WorkerRegistry, done: impl Fn(&[JobRecord]) -> bool) {
    for _ in 0..2_000 {
        if done(&claimed(workers).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never: {:?}", claimed(workers).await);
}

/// Waits until `n` runs execute here (a claim is stored before its runs start).
async fn until_running(workers: &WorkerRegistry, n: usize) {
    for _ in 0..2_000 {
        if workers.running().await.unwrap().len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never {n} running: {:?}", workers.running().await.unwrap());
}

/// Runs one job of `worker` to its end: the mean run time that claim-ahead follows.
async fn run_one(workers: &WorkerRegistry, worker: &str) {
    let id = workers.enqueue(worker, None).await.unwrap();
    let job = workers.await_job(&id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
}

async fn enqueue_gated(workers: &WorkerRegistry, n: usize) -> Vec<String> {
    let jobs = (0..n).map(|_| ("gate", None, JobOptions::new()));
    workers.enqueue_many(jobs).await.unwrap()
}

#[tokio::test]
async fn short_jobs_are_claimed_ahead_yet_no_more_than_concurrency_run_and_shutdown_hands_them_back(
) {
    let dir = tempfile::tempdir().unwrap();
    let (workers, seen, _release) = node(&dir.path().join("jobs.db"), options()).await;
    run_one(&workers, "quick").await;
    let ids = enqueue_gated(&workers, 10).await;
    // Two run, four more are claimed ahead: six claimed in all.
    until_claimed(&workers, |jobs| jobs.len() == CONCURRENCY + 4).await;
    until_running(&workers, CONCURRENCY).await;
    // Give the poller time to claim more, were it to.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(claimed(&workers).await.len(), CONCURRENCY + 4);
    assert_eq!(seen.most.load(Ordering::SeqCst), CONCURRENCY);

    workers.shutdown().await.unwrap();
    for id in &ids {
        let job = workers.job(id).await.unwrap();
        assert_eq!(job.state, JobState::Available, "{job:?}");
        assert_eq!(job.attempt, 0, "handed back uncounted: {job:?}");
        assert_eq!(job.owner, None);
    }
}

#[tokio::test]
async fn a_job_held_ahead_runs_as_a_slot_frees_and_a_cancel_takes_one_out_unrun() {
    let dir = tempfile::tempdir().unwrap();
    let (workers, seen, release) = node(&dir.path().join("jobs.db"), options()).await;
    run_one(&workers, "quick").await;
    let ids = enqueue_gated(&workers, 6).await;
    until_claimed(&workers, |jobs| jobs.len() == 6).await;
    until_running(&workers, CONCURRENCY).await;
    let running: HashSet<String> = workers.running().await.unwrap().into_iter().collect();
    let ahead: Vec<&String> = ids.iter().filter(|id| !running.contains(*id)).collect();
    assert_eq!(ahead.len(), 4, "{running:?}");

    // Cancelled while held ahead: stored at once as a waiting job's cancel (its attempt
    // not counted), and it never runs.
    let cancelled = ahead[0].clone();
    workers.cancel(&cancelled).await.unwrap();
    let job = workers.await_job(&cancelled).await.unwrap();
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Cancelled, 0),
        "{job:?}"
    );
    assert!(job.errors.is_empty(), "{job:?}");

    // One slot freed: the next held ahead starts without waiting for a claim.
    release.add_permits(1);
    let started = || seen.ids.lock().unwrap().len();
    for _ in 0..2_000 {
        if started() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(started(), 3);

    release.add_permits(ids.len());
    for id in &ids {
        let job = workers.await_job(id).await.unwrap();
        let expected = if *id == cancelled {
            JobState::Cancelled
        } else {
            JobState::Completed
        };
        assert_eq!(job.state, expected, "{job:?}");
    }
    let ran = seen.ids.lock().unwrap().clone();
    assert_eq!(ran.len(), ids.len() - 1);
    assert!(!ran.contains(&cancelled));
    assert!(seen.most.load(Ordering::SeqCst) <= CONCURRENCY);
    workers.shutdown().await.unwrap();
}

/// Held ahead for longer than a lease, a job keeps its lease (the heartbeat extends it
/// as it does a running job's), so it is not rescued: each job runs once, first attempt.
#[tokio::test]
async fn jobs_held_ahead_longer_than_a_lease_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = options()
        .lease(Duration::from_millis(600))
        .heartbeat(Duration::from_millis(50));
    let (workers, seen, release) = node(&dir.path().join("jobs.db"), options).await;
    run_one(&workers, "quick").await;
    let ids = enqueue_gated(&workers, 6).await;
    until_claimed(&workers, |jobs| jobs.len() == 6).await;
    // Three leases long, with the heartbeat and the rescue running.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    release.add_permits(ids.len());
    for id in &ids {
        // A job run twice (rescued, claimed again) would wait for a permit for ever.
        let job = tokio::time::timeout(Duration::from_secs(10), workers.await_job(id))
            .await
            .expect("each job runs once")
            .unwrap();
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(job.attempt, 1, "{job:?}");
        assert!(job.errors.is_empty(), "{job:?}");
    }
    assert_eq!(seen.ids.lock().unwrap().len(), ids.len());
    workers.shutdown().await.unwrap();
}

/// After one job of `first`, six gated jobs: only the free slots' two are claimed, and
/// no more however long the poller looks; then all six complete.
async fn claims_only_free_slots(options: QueueOptions, first: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (workers, _seen, release) = node(&dir.path().join("jobs.db"), options).await;
    run_one(&workers, first).await;
    let ids = enqueue_gated(&workers, 6).await;
    until_claimed(&workers, |jobs| jobs.len() == CONCURRENCY).await;
    // Give the poller time to claim more, were it to.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(claimed(&workers).await.len(), CONCURRENCY);
    release.add_permits(ids.len());
    for id in &ids {
        assert_eq!(
            workers.await_job(id).await.unwrap().state,
            JobState::Completed
        );
    }
    workers.shutdown().await.unwrap();
}

/// Jobs that take longer than claim-ahead's horizon are claimed only for a free slot,
/// so a process never sits on work another could start: here nothing is held ahead.
#[tokio::test]
async fn long_jobs_are_not_claimed_ahead() {
    claims_only_free_slots(options(), "slow").await;
}

/// Off, nothing is claimed beyond the free slots, however short the jobs.
#[tokio::test]
async fn claim_ahead_zero_claims_only_for_free_slots() {
    claims_only_free_slots(options().claim_ahead(0), "quick").await;
}
