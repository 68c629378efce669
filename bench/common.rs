//! What the two queue benchmarks share: the environment they read, the no-op handlers'
//! record of starts, and the lines they print.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether `BENCH_QUICK` asks for a smoke run.
pub(crate) fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// Whether the measurement `label` runs: all of them, unless `BENCH_ONLY` names a part
/// of some labels.
pub(crate) fn selected(label: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| label.contains(&only))
}

// What every side's handler does: note that a job started, and when.
pub(crate) static STARTED: AtomicU64 = AtomicU64::new(0);
pub(crate) static LAST_START: Mutex<Option<Instant>> = Mutex::new(None);
static STARTS: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// What each no-op handler does, on every side.
pub(crate) fn job_started() {
    *LAST_START.lock().unwrap() = Some(Instant::now());
    // Relaxed: the count is only compared with a target; `STARTS` orders the wake-up.
    STARTED.fetch_add(1, Ordering::Relaxed);
    STARTS.notify_one();
}

/// Waits until `count` jobs have started since the last reset.
pub(crate) async fn started(count: u64) {
    loop {
        let notified = STARTS.notified();
        if STARTED.load(Ordering::Relaxed) >= count {
            return;
        }
        notified.await;
    }
}

/// Waits until `finished` says `count`, looking every 2 ms.
pub(crate) async fn stored<F, Fut>(count: u64, finished: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    while finished().await < count {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The sizes of the batches that store `n` jobs before a drain: 1,000 at most.
pub(crate) fn batches(n: usize) -> impl Iterator<Item = usize> {
    (0..n).step_by(1_000).map(move |from| (n - from).min(1_000))
}

/// Prints a throughput line: jobs/s, ours/peer.
pub(crate) fn throughput(
    label: &str,
    peer_name: &str,
    jobs: usize,
    ours: Option<Duration>,
    peer: Option<Duration>,
) {
    let rate = |took: Option<Duration>| took.map(|took| jobs as f64 / took.as_secs_f64());
    rates(label, peer_name, rate(ours), rate(peer));
}

/// Prints a throughput line from rates in jobs/s, ours/peer.
pub(crate) fn rates(label: &str, peer_name: &str, ours: Option<f64>, peer: Option<f64>) {
    let show = |rate: Option<f64>| rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
    let ratio = match (ours, peer) {
        (Some(ours), Some(peer)) => format!("{:.2}", ours / peer),
        _ => "-".to_owned(),
    };
    println!(
        "{label}: ours {} jobs/s, {peer_name} {} jobs/s, ratio {ratio}",
        show(ours),
        show(peer)
    );
}

/// Prints a latency line: ms, peer/ours.
pub(crate) fn latency(label: &str, peer_name: &str, ours: Option<f64>, peer: Option<f64>) {
    let show = |ms: Option<f64>| ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"));
    let ratio = match (ours, peer) {
        (Some(ours), Some(peer)) => format!("{:.2}", peer / ours),
        _ => "-".to_owned(),
    };
    println!(
        "{label}: ours {} ms, {peer_name} {} ms, ratio {ratio}",
        show(ours),
        show(peer)
    );
}

/// The value at rank `p` (0 to 1) of `sorted`.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A job id no other job of the process has.
pub(crate) fn uuid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // Relaxed: only uniqueness matters.
    format!(
        "bench-{:016x}",
        NEXT.fetch_add(1, Ordering::Relaxed) ^ 0x9e37_79b9_7f4a_7c15
    )
}

/// Times enqueueing `n` jobs of `worker` (payload `1`) through `workers`, `batch` per
/// call: `enqueue` one by one for 1, else `enqueue_many`, one transaction each.
pub(crate) async fn timed_enqueues(
    workers: &rustf_workers::WorkerRegistry,
    worker: &str,
    n: usize,
    batch: usize,
) -> Duration {
    use rustf_workers::prelude::json;
    use rustf_workers::JobOptions;

    let start = Instant::now();
    if batch == 1 {
        for _ in 0..n {
            workers.enqueue(worker, Some(json!(1))).await.unwrap();
        }
    } else {
        for _ in 0..n / batch {
            let jobs = (0..batch).map(|_| (worker, Some(json!(1)), JobOptions::new()));
            workers.enqueue_many(jobs).await.unwrap();
        }
    }
    start.elapsed()
}

/// Enqueues `n` jobs of `worker` one at a time through `workers`, 20 ms apart, and
/// measures, in ms, from each call to `enqueue` until its handler starts; sorted.
pub(crate) async fn enqueue_to_start(
    workers: &rustf_workers::WorkerRegistry,
    worker: &str,
    n: usize,
) -> Vec<f64> {
    use rustf_workers::prelude::json;

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let target = STARTED.load(Ordering::Relaxed) + 1;
        let start = Instant::now();
        workers.enqueue(worker, Some(json!(1))).await.unwrap();
        started(target).await;
        let began = LAST_START.lock().unwrap().unwrap();
        samples.push(began.duration_since(start).as_secs_f64() * 1e3);
        // Idle between: the outcome is stored, and nothing else is under way.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples.sort_by(f64::total_cmp);
    samples
}

/// A store's share of a job's life, each step timed alone on `queue` directly, per job:
/// `ones` enqueues one at a time, `batched` in transactions of `batch`, then claims and
/// outcomes of `concurrency` jobs at a time (as the runner makes them when it keeps that
/// many running) until `drain` jobs are done, and the poller's `next_due` read. Times
/// are `clock`'s. `unit` names what one claim or outcome is ("transaction", "statement").
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_breakdown(
    queue: &impl rustf_workers::queue::JobStore,
    clock: impl Fn() -> i64,
    worker: &str,
    concurrency: usize,
    (ones, batched, batch): (usize, usize, usize),
    drain: usize,
    unit: &str,
) {
    use rustf_workers::prelude::json;
    use rustf_workers::queue::{ClaimRequest, Finish, FinishOutcome, NewJob};

    let job = || {
        let mut job = NewJob::new(uuid(), worker);
        job.payload = Some(json!(1));
        job
    };
    let start = Instant::now();
    for _ in 0..ones {
        queue.enqueue(clock(), vec![job()]).await.unwrap();
    }
    breakdown_line(
        "store: enqueue, one job a transaction",
        per_job(start.elapsed(), ones),
    );
    let start = Instant::now();
    for _ in 0..batched / batch {
        queue
            .enqueue(clock(), (0..batch).map(|_| job()).collect())
            .await
            .unwrap();
    }
    breakdown_line(
        &format!("store: enqueue, {batch} jobs a transaction"),
        per_job(start.elapsed(), batched),
    );

    let request = || ClaimRequest {
        owner: "bench".into(),
        workers: vec![(worker.into(), concurrency)],
        limit: concurrency,
        lease_ms: 30_000,
    };
    let (mut claim, mut finish, mut jobs) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let start = Instant::now();
        let claimed = queue.claim(clock(), request()).await.unwrap();
        claim += start.elapsed();
        if claimed.is_empty() || jobs >= drain {
            break;
        }
        jobs += claimed.len();
        let finishes = claimed
            .into_iter()
            .map(|job| Finish {
                id: job.id,
                epoch: job.epoch,
                outcome: FinishOutcome::Completed,
            })
            .collect();
        let start = Instant::now();
        queue.finish(clock(), finishes).await.unwrap();
        finish += start.elapsed();
    }
    breakdown_line(
        &format!("store: claim, {concurrency} jobs a {unit}"),
        per_job(claim, jobs),
    );
    breakdown_line(
        &format!("store: outcome, {concurrency} jobs a {unit}"),
        per_job(finish, jobs),
    );
    let start = Instant::now();
    for _ in 0..ones {
        std::hint::black_box(queue.next_due(clock()).await.unwrap());
    }
    breakdown_line(
        "store: the poller's `next_due` read",
        per_job(start.elapsed(), ones),
    );
}

/// Microseconds per job of `took` for `jobs` jobs.
pub(crate) fn per_job(took: Duration, jobs: usize) -> f64 {
    took.as_secs_f64() * 1e6 / jobs.max(1) as f64
}

/// A line of a breakdown.
pub(crate) fn breakdown_line(step: &str, us: f64) {
    println!("breakdown: {step}: {us:.1} µs per job");
}
