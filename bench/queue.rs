//! The durable queue against apalis-sqlite 1.0, side by side in one process.
//!
//! `cargo bench -p rustf-workers-bench --features peers --bench queue` prints one line per measurement,
//! `<measurement>: ours <x> <unit>, apalis-sqlite <y> <unit>, ratio <r>`, where a ratio
//! above 1 always means ours is better (ours/peer for throughput, peer/ours for
//! latency), then where a durable job's time goes against an in-process `call`.
//! `docs/performance.md` records a run. `BENCH_QUICK=1` runs fewer jobs on both sides (a
//! smoke run, as CI does); `BENCH_ONLY=<text>` runs only the measurements whose label
//! contains it, and `BENCH_SIDE=ours` or `apalis` one side of them (profiling).
//!
//! Both sides get the same file database: a fresh file in a temporary directory per
//! measurement and side, in WAL mode with `synchronous = NORMAL` (ours by default;
//! apalis-sqlite's pool is opened so, see [`peer`]), the same concurrency (16), the same
//! poll interval ([`poll_interval`]) and the same in-process wake-up on enqueue (ours: a local
//! enqueue wakes the poller; apalis: SQLite's update hook, as its own
//! `connect_with_callback` does), and the same no-op handler.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod common;

use apalis::prelude::{
    BackendExt, BoxDynError, Strategy, TaskSink, WorkerBuilder, WorkerBuilderExt,
};
use apalis_sqlite::{Config, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use futures::channel::mpsc::{unbounded, UnboundedReceiver};
use futures::{Stream, StreamExt};
use rustf_workers::prelude::json;
use rustf_workers::queue::{JobState, JobStore, QueueOptions, SqliteQueue};
use rustf_workers::{JobOptions, WorkerRegistry};
use sqlx::sqlite::{SqliteJournalMode, SqliteOperation, SqliteSynchronous};

use common::{
    batches, breakdown_line, job_started, latency, per_job, percentile, quick, selected, started,
    stored, throughput, LAST_START, STARTED,
};

/// Jobs run at once, on both sides.
const CONCURRENCY: usize = 16;

/// Both sides' poll interval: how often each asks the store for due jobs when nothing
/// woke it, 100 ms unless `BENCH_POLL_MS` says otherwise. Ours defaults to 1 s,
/// apalis-sqlite has none until one is set (its examples use 0.2-1 s); both are woken at
/// once by an enqueue in the process.
fn poll_interval() -> Duration {
    let ms = std::env::var("BENCH_POLL_MS").map_or(100, |ms| ms.parse().unwrap());
    Duration::from_millis(ms)
}

/// The peer, as the lines name it.
const PEER: &str = "apalis-sqlite";

/// The worker's name on our side, and the queue's on apalis'.
const NOOP: &str = "noop";

/// How many jobs each measurement uses.
struct Sizes {
    one_by_one: usize,
    batched: usize,
    batch: usize,
    drain: usize,
    latency: usize,
}

impl Sizes {
    fn new() -> Self {
        if quick() {
            Sizes {
                one_by_one: 200,
                batched: 2_000,
                batch: 500,
                drain: 1_000,
                latency: 50,
            }
        } else {
            Sizes {
                one_by_one: 2_000,
                batched: 20_000,
                batch: 1_000,
                drain: 20_000,
                latency: 200,
            }
        }
    }
}

/// Whether `side` (`ours` or `apalis`) runs: both, unless `BENCH_SIDE` names one.
fn runs(side: &str) -> bool {
    std::env::var("BENCH_SIDE").map_or(true, |only| only == side)
}

/// apalis' handler: the same no-op.
async fn apalis_noop(_job: u32) -> Result<(), BoxDynError> {
    job_started();
    Ok(())
}

/// A registry with our no-op worker, on a queue in the file at `path`.
async fn ours(path: &Path, runs_jobs: bool) -> (WorkerRegistry, SqliteQueue) {
    let workers = WorkerRegistry::new();
    workers
        .register(NOOP, |_ctx| async {
            job_started();
            Ok(())
        })
        .await
        .unwrap();
    let queue = SqliteQueue::open(path).unwrap();
    let options = QueueOptions::new()
        .concurrency(CONCURRENCY)
        .poll_interval(poll_interval())
        .runs_jobs(runs_jobs);
    workers.use_queue_with(queue.clone(), options).unwrap();
    (workers, queue)
}

/// How many of our jobs have a stored outcome.
async fn ours_finished(queue: &SqliteQueue) -> u64 {
    let counts = queue.counts().await.unwrap();
    counts
        .iter()
        .filter(|(_, state, _)| *state == JobState::Completed)
        .map(|(_, _, count)| count)
        .sum()
}

/// apalis-sqlite on the file at `path`: its pool, a storage handle to push with, and the
/// update hook's stream of inserts to wake its worker with.
///
/// The schema comes from apalis' own `SqliteStorage::setup`, which switches the file to
/// WAL; its `synchronous = OFF` reaches only the pooled connection that happens to run
/// it (its other connections keep sqlx's default, `FULL`), so it runs on a pool of its
/// own, closed before the measured pool opens with `synchronous = NORMAL` on every
/// connection: the same durability as ours.
async fn peer(path: &Path) -> (SqlitePool, SqliteStorage<u32>, Inserts) {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let setup = SqlitePool::connect_with(options.clone()).await.unwrap();
    SqliteStorage::setup(&setup).await.unwrap();
    setup.close().await;

    let (inserted, inserts) = unbounded();
    let pool = SqlitePoolOptions::new()
        .after_connect(move |conn, _| {
            let inserted = inserted.clone();
            Box::pin(async move {
                // As apalis-sqlite's `connect_with_callback`: an insert into its table
                // wakes the worker.
                let mut handle = conn.lock_handle().await?;
                handle.set_update_hook(move |event| {
                    if event.operation == SqliteOperation::Insert && event.table == "Jobs" {
                        let _ = inserted.unbounded_send(());
                    }
                });
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .unwrap();
    let storage = SqliteStorage::new(&pool).with_config(peer_config());
    (pool, storage, Inserts(Arc::new(Mutex::new(inserts))))
}

/// apalis-sqlite's defaults, but one queue name on both handles, and a fetch of as many
/// jobs as run at once (its default is 10; ours claims as many as it has room for).
fn peer_config() -> Config {
    Config::default().queue(NOOP).batch_size(CONCURRENCY)
}

/// Starts apalis' worker on `storage`, at our concurrency and poll interval.
fn peer_worker(storage: &SqliteStorage<u32>, inserts: Inserts) -> tokio::task::JoinHandle<()> {
    let strategy = Strategy::new()
        .stream(inserts.ready_chunks(CONCURRENCY))
        .interval(poll_interval());
    let worker = WorkerBuilder::new("bench")
        .backend(storage.clone().poll_with_strategy(strategy))
        .concurrency(CONCURRENCY)
        .build(apalis_noop);
    tokio::spawn(async move {
        worker.run().await.unwrap();
    })
}

/// How many of apalis' jobs have a stored outcome.
async fn peer_finished(pool: &SqlitePool) -> u64 {
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM Jobs WHERE done_at IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    done as u64
}

/// The update hook's inserts, shared as apalis-sqlite's `HookCallbackListener` shares
/// them (its poll strategies want `Sync`).
#[derive(Clone)]
struct Inserts(Arc<Mutex<UnboundedReceiver<()>>>);

impl Stream for Inserts {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.0.lock().unwrap().poll_next_unpin(cx)
    }
}

/// A fresh file for one side of one measurement.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rustf-queue-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.db"))
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // On the runtime, as an application's code runs, not on the thread in `block_on`
    // (each wake-up would cross threads).
    rt.block_on(async { tokio::spawn(bench()).await.unwrap() });
}

async fn bench() {
    let sizes = Sizes::new();
    let files = Files::new();

    let label = "insert throughput one by one";
    if selected(label) {
        let n = sizes.one_by_one;
        let ours = if runs("ours") {
            Some(ours_insert(&files.file("ours-one"), n, 1).await)
        } else {
            None
        };
        let peer = if runs("apalis") {
            Some(peer_insert(&files.file("apalis-one"), n, 1).await)
        } else {
            None
        };
        throughput(label, PEER, n, ours, peer);
    }

    let label = "insert throughput batched";
    if selected(label) {
        let (n, batch) = (sizes.batched, sizes.batch);
        let ours = if runs("ours") {
            Some(ours_insert(&files.file("ours-batched"), n, batch).await)
        } else {
            None
        };
        let peer = if runs("apalis") {
            Some(peer_insert(&files.file("apalis-batched"), n, batch).await)
        } else {
            None
        };
        throughput(&format!("{label} ({batch} a batch)"), PEER, n, ours, peer);
    }

    let label = "drain throughput";
    if selected(label) {
        let n = sizes.drain;
        let ours = if runs("ours") {
            Some(ours_drain(&files.file("ours-drain"), n).await)
        } else {
            None
        };
        let peer = if runs("apalis") {
            Some(peer_drain(&files.file("apalis-drain"), n).await)
        } else {
            None
        };
        throughput(
            &format!("{label} of {n} no-op jobs at concurrency {CONCURRENCY}"),
            PEER,
            n,
            ours,
            peer,
        );
    }

    let label = "enqueue-to-start latency";
    if selected(label) {
        let n = sizes.latency;
        let ours = if runs("ours") {
            Some(ours_latency(&files.file("ours-latency"), n).await)
        } else {
            None
        };
        let peer = if runs("apalis") {
            Some(peer_latency(&files.file("apalis-latency"), n).await)
        } else {
            None
        };
        for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
            let at = |samples: &Option<Vec<f64>>| samples.as_ref().map(|s| percentile(s, p));
            latency(
                &format!("{label} on an idle queue, {name} of {n}"),
                PEER,
                at(&ours),
                at(&peer),
            );
        }
    }

    if selected("breakdown") && runs("ours") {
        breakdown(&files, &sizes).await;
    }
}

/// Enqueues `n` jobs, `batch` per call (one by one for 1), on a queue that runs nothing.
async fn ours_insert(path: &Path, n: usize, batch: usize) -> Duration {
    let (workers, _queue) = ours(path, false).await;
    let took = common::timed_enqueues(&workers, NOOP, n, batch).await;
    workers.shutdown().await.unwrap();
    took
}

/// Pushes `n` jobs, `batch` per call (`push` for 1, else `push_bulk`, one transaction),
/// with no worker running.
async fn peer_insert(path: &Path, n: usize, batch: usize) -> Duration {
    let (pool, mut storage, _inserts) = peer(path).await;
    let start = Instant::now();
    if batch == 1 {
        for _ in 0..n {
            storage.push(1).await.unwrap();
        }
    } else {
        for _ in 0..n / batch {
            storage.push_bulk(vec![1; batch]).await.unwrap();
        }
    }
    let took = start.elapsed();
    pool.close().await;
    took
}

/// Stores `n` jobs with nothing running, then times a queue that runs them from its
/// start until every outcome is stored.
async fn ours_drain(path: &Path, n: usize) -> Duration {
    {
        let (workers, _queue) = ours(path, false).await;
        for batch in batches(n) {
            let jobs = (0..batch).map(|_| (NOOP, Some(json!(1)), JobOptions::new()));
            workers.enqueue_many(jobs).await.unwrap();
        }
        workers.shutdown().await.unwrap();
    }
    STARTED.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let (workers, queue) = ours(path, true).await;
    started(n as u64).await;
    stored(n as u64, || ours_finished(&queue)).await;
    let took = start.elapsed();
    workers.shutdown().await.unwrap();
    took
}

/// As [`ours_drain`], for apalis-sqlite.
async fn peer_drain(path: &Path, n: usize) -> Duration {
    let (pool, mut storage, inserts) = peer(path).await;
    for batch in batches(n) {
        storage.push_bulk(vec![1; batch]).await.unwrap();
    }
    STARTED.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let worker = peer_worker(&storage, inserts);
    started(n as u64).await;
    stored(n as u64, || peer_finished(&pool)).await;
    let took = start.elapsed();
    worker.abort();
    let _ = worker.await;
    pool.close().await;
    took
}

/// Enqueues one job at a time on an idle queue and measures, in ms, from the call to
/// `enqueue` until the handler starts; sorted.
async fn ours_latency(path: &Path, n: usize) -> Vec<f64> {
    let (workers, _queue) = ours(path, true).await;
    let samples = common::enqueue_to_start(&workers, NOOP, n).await;
    workers.shutdown().await.unwrap();
    samples
}

/// As [`ours_latency`], for apalis-sqlite.
async fn peer_latency(path: &Path, n: usize) -> Vec<f64> {
    let (pool, mut storage, inserts) = peer(path).await;
    let worker = peer_worker(&storage, inserts);
    // Its first poll registers the worker in the store: not an enqueue's wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let target = STARTED.load(Ordering::Relaxed) + 1;
        let start = Instant::now();
        storage.push(1).await.unwrap();
        started(target).await;
        let began = LAST_START.lock().unwrap().unwrap();
        samples.push(began.duration_since(start).as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.abort();
    let _ = worker.await;
    pool.close().await;
    samples.sort_by(f64::total_cmp);
    samples
}

/// Where a durable job's time goes, against an in-process `call` of the same no-op
/// worker: each step of a job's life timed alone, per job, on our store directly.
async fn breakdown(files: &Files, sizes: &Sizes) {
    let n = sizes.drain;
    let (workers, queue) = ours(&files.file("ours-breakdown"), false).await;
    let start = Instant::now();
    for _ in 0..n {
        let handle = workers.call(NOOP, None, None).await.unwrap();
        handle.await_result().await.unwrap();
    }
    breakdown_line(
        "in-process `call` + `await_result` (no store)",
        per_job(start.elapsed(), n),
    );
    let ones = sizes.one_by_one;
    let start = Instant::now();
    for _ in 0..ones {
        workers.enqueue(NOOP, Some(json!(1))).await.unwrap();
    }
    breakdown_line(
        "registry: `enqueue`, one job a transaction",
        per_job(start.elapsed(), ones),
    );
    let clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let counts = (ones, sizes.batched, sizes.batch);
    common::store_breakdown(&queue, clock, NOOP, CONCURRENCY, counts, n, "transaction").await;
    workers.shutdown().await.unwrap();
}
