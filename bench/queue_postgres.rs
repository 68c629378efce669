//! The PostgreSQL queue against graphile_worker 0.14, side by side in one process.
//!
//! `cargo bench -p rustf-workers-bench --features peers --bench queue_postgres` prints one
//! line per measurement and graphile_worker configuration,
//! `<measurement>: ours <x> <unit>, graphile_worker <y> <unit>, ratio <r>`, where a ratio
//! above 1 always means ours is better (ours/peer for throughput, peer/ours for
//! latency), then where one of our jobs' time goes. `docs/performance.md` records a run.
//! `BENCH_QUICK=1` runs fewer jobs (a smoke run, as CI does); `BENCH_ONLY=<text>` runs
//! only the measurements whose label contains it, and `BENCH_SIDE=ours`, `graphile`,
//! `graphile-default` or `graphile-fast` one side of them (profiling); `BENCH_BATCH=<n>`
//! inserts `n` jobs a batch instead of 1,000.
//!
//! Both sides use one PostgreSQL server, the tests' (`rustf-workers-tests-postgres`:
//! `DATABASE_URL`'s, or a throwaway cluster on loopback with `fsync` off), and a fresh
//! database per measurement and side. graphile_worker runs in two configurations
//! ([`Config`]): its defaults, and the throughput-oriented one its guide documents (a
//! local queue of 100 jobs, completions batched every 5 ms, a poll every 500 ms). Both
//! sides run 16 jobs at once per node and the same no-op handler (which sleeps 2 ms in
//! the drains of jobs that take a while, against the fast configuration only, where one
//! node's slots rather than the machine bound a node); a node is one queue instance with
//! a pool of its own (ours: a `WorkerRegistry` on a `PostgresQueue`; graphile_worker: a
//! `Worker` with its own pool), and the three-node drains run three of them in this
//! process, on one runtime.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, Worker, WorkerContext,
    WorkerOptions, WorkerUtils,
};
use rustf_workers::prelude::json;
use rustf_workers::queue::{JobState, JobStore, PostgresQueue, QueueOptions};
use rustf_workers::{JobOptions, WorkerRegistry};
use rustf_workers_tests_postgres::TestDatabase;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};

use common::{
    batches, job_started, latency, percentile, quick, rates, selected, started, stored, throughput,
    LAST_START, STARTED,
};

/// Jobs run at once per node, on both sides.
const CONCURRENCY: usize = 16;

/// Nodes in the multi-node drain.
const NODES: usize = 3;

/// The worker's name on our side, graphile_worker's task identifier.
const NOOP: &str = "noop";

/// The peer, as the lines name it.
const PEER: &str = "graphile_worker";

/// How long each job's handler works, in µs, on both sides: 0 (a no-op) but in the
/// drains of jobs that take a while ([`WORK`]).
static WORK_US: AtomicU64 = AtomicU64::new(0);

/// The work of a job in the drains where nodes have something to add: long enough that
/// one node's 16 slots, not the machine, bound its drain (16 / 2 ms = 8,000 jobs/s).
const WORK: Duration = Duration::from_millis(2);

/// What each handler does, on both sides: marks its start, then works for [`WORK_US`].
async fn handle() {
    job_started();
    // Relaxed: set before the drain's nodes start, read by their handlers.
    let work = WORK_US.load(Ordering::Relaxed);
    if work > 0 {
        tokio::time::sleep(Duration::from_micros(work)).await;
    }
}

/// graphile_worker's schema, its default.
const SCHEMA: &str = "graphile_worker";

/// How many jobs each measurement uses, and how long a drain may take.
struct Sizes {
    one_by_one: usize,
    batched: usize,
    batch: usize,
    drain: usize,
    latency: usize,
    /// A drain still under way after this long is stopped and its rate taken from the
    /// jobs stored by then: graphile_worker's default configuration drains 16 jobs a
    /// poll, ~16 jobs/s, and would take 20 minutes over 20,000.
    drain_cap: Duration,
}

impl Sizes {
    fn new() -> Self {
        let mut sizes = Self::of_mode();
        // `BENCH_BATCH=<n>`: another batch size for the batched inserts.
        if let Ok(batch) = std::env::var("BENCH_BATCH") {
            sizes.batch = batch.parse().unwrap();
        }
        sizes
    }

    fn of_mode() -> Self {
        if quick() {
            Sizes {
                one_by_one: 200,
                batched: 2_000,
                batch: 500,
                drain: 1_000,
                latency: 30,
                drain_cap: Duration::from_secs(3),
            }
        } else {
            Sizes {
                one_by_one: 2_000,
                batched: 20_000,
                batch: 1_000,
                drain: 20_000,
                latency: 200,
                drain_cap: Duration::from_secs(30),
            }
        }
    }
}

/// Whether `side` runs: all of them, unless `BENCH_SIDE` names one (`graphile` names
/// both of graphile_worker's configurations).
fn runs(side: &str) -> bool {
    std::env::var("BENCH_SIDE").map_or(true, |only| {
        side.starts_with(&only) || only.starts_with(side)
    })
}

/// graphile_worker's configurations.
#[derive(Clone, Copy)]
enum Config {
    /// Its defaults, at our concurrency: each of the 16 slots fetches one job per
    /// notification or poll (every second), and completes it in a statement of its own.
    Default,
    /// Its guide's "throughput-oriented worker" (Worker Options, and the Local Queue
    /// guide): a local queue of 100 jobs (`LocalQueueConfig::with_size(100)`, a TTL of
    /// 60 s) that one fetch fills and the slots drain without a round trip each,
    /// completions and permanent failures batched every 5 ms
    /// (`complete_job_batch_delay`, `fail_job_batch_delay`), a poll every 500 ms.
    Fast,
}

impl Config {
    const ALL: [Config; 2] = [Config::Default, Config::Fast];

    fn side(self) -> &'static str {
        match self {
            Config::Default => "graphile-default",
            Config::Fast => "graphile-fast",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Config::Default => "graphile_worker default",
            Config::Fast => "graphile_worker local queue + batched completion",
        }
    }

    /// A worker on the database at `url`, with a pool of its own (graphile_worker's
    /// default size, 20).
    fn options(self, url: &str) -> WorkerOptions {
        let options = WorkerOptions::default()
            .database_url(url)
            .schema(SCHEMA)
            .concurrency(CONCURRENCY)
            // So that Ctrl-C stops the benchmark; no bearing on speed.
            .listen_os_shutdown_signals(false)
            .define_job::<Noop>();
        match self {
            Config::Default => options,
            Config::Fast => options
                .poll_interval(Duration::from_millis(500))
                .complete_job_batch_delay(Duration::from_millis(5))
                .fail_job_batch_delay(Duration::from_millis(5))
                .local_queue(
                    LocalQueueConfig::default()
                        .with_size(100)
                        .with_ttl(Duration::from_secs(60)),
                ),
        }
    }
}

/// graphile_worker's handler: the same no-op, with the same payload (`1`).
#[derive(Clone, Serialize, Deserialize)]
struct Noop(u32);

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = NOOP;

    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        handle().await;
        Ok::<(), String>(())
    }
}

/// A fresh database on the benchmark's server (the first one starts the server).
async fn database() -> TestDatabase {
    tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
}

/// Our queue on `db`: a pool of its own (16 connections, the default), migrated.
async fn ours_queue(db: &TestDatabase) -> PostgresQueue {
    PostgresQueue::connect(db.url()).await.unwrap()
}

/// A registry with our no-op worker on `queue`, running its jobs (or not).
async fn ours_node(queue: PostgresQueue, runs_jobs: bool) -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register(NOOP, |_ctx| async {
            handle().await;
            Ok(())
        })
        .await
        .unwrap();
    // The defaults (16 at once, a poll every second), said out loud.
    let options = QueueOptions::new()
        .concurrency(CONCURRENCY)
        .runs_jobs(runs_jobs);
    workers.use_queue_with(queue, options).unwrap();
    workers
}

/// How many of our jobs have a stored outcome.
async fn ours_finished(queue: &PostgresQueue) -> u64 {
    let counts = queue.counts().await.unwrap();
    counts
        .iter()
        .filter(|(_, state, _)| *state == JobState::Completed)
        .map(|(_, _, count)| count)
        .sum()
}

/// A pool on `db` for graphile_worker's utilities and the benchmark's own queries, with
/// graphile_worker's schema migrated.
async fn peer_pool(db: &TestDatabase) -> (PgPool, WorkerUtils) {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(db.url())
        .await
        .unwrap();
    let utils = WorkerUtils::new(pool.clone(), SCHEMA);
    utils.migrate().await.unwrap();
    (pool, utils)
}

/// How many of `n` stored jobs graphile_worker has completed: it deletes a job once it
/// completed.
async fn peer_finished(pool: &PgPool, n: usize) -> u64 {
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM graphile_worker._private_jobs")
        .fetch_one(pool)
        .await
        .unwrap();
    (n as u64).saturating_sub(left as u64)
}

/// `n` of graphile_worker's jobs, batched as `add_jobs` takes them.
fn peer_jobs(spec: &JobSpec, n: usize) -> Vec<(Noop, &JobSpec)> {
    (0..n).map(|_| (Noop(1), spec)).collect()
}

/// Starts graphile_worker's `run` on `worker`.
fn peer_run(worker: &Arc<Worker>) -> tokio::task::JoinHandle<()> {
    let worker = Arc::clone(worker);
    tokio::spawn(async move { worker.run().await.unwrap() })
}

/// Stops the workers and waits for their `run` to end.
async fn peer_stop(workers: Vec<Arc<Worker>>, runs: Vec<tokio::task::JoinHandle<()>>) {
    for worker in &workers {
        worker.request_shutdown();
    }
    for run in runs {
        run.await.unwrap();
    }
    for worker in workers {
        worker.pg_pool().close().await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // On the runtime, as an application's code runs, not on the thread in `block_on`.
    rt.block_on(async { tokio::spawn(bench()).await.unwrap() });
}

async fn bench() {
    let sizes = Sizes::new();

    let label = "insert throughput one by one";
    if selected(label) {
        let n = sizes.one_by_one;
        let ours = if runs("ours") {
            Some(ours_insert(n, 1).await)
        } else {
            None
        };
        let peer = if runs("graphile") {
            Some(peer_insert(n, 1).await)
        } else {
            None
        };
        throughput(label, PEER, n, ours, peer);
    }

    let label = "insert throughput batched";
    if selected(label) {
        let (n, batch) = (sizes.batched, sizes.batch);
        let ours = if runs("ours") {
            Some(ours_insert(n, batch).await)
        } else {
            None
        };
        let peer = if runs("graphile") {
            Some(peer_insert(n, batch).await)
        } else {
            None
        };
        throughput(&format!("{label} ({batch} a batch)"), PEER, n, ours, peer);
    }

    for (nodes, name) in [(1, "one node"), (NODES, "three nodes")] {
        let label = format!(
            "drain throughput of {} no-op jobs at concurrency {CONCURRENCY}, {name}",
            sizes.drain
        );
        if !selected(&label) {
            continue;
        }
        let (n, cap) = (sizes.drain, sizes.drain_cap);
        let ours = if runs("ours") {
            Some(ours_drain(n, nodes, cap).await)
        } else {
            None
        };
        for config in Config::ALL {
            let peer = if runs(config.side()) {
                Some(peer_drain(config, n, nodes, cap).await)
            } else {
                None
            };
            let rate = |drained: Option<Drained>| drained.map(|d| d.rate());
            rates(
                &format!("{label}, against {}", config.label()),
                PEER,
                rate(ours),
                rate(peer),
            );
            for (side, drained) in [("ours", ours), (config.label(), peer)] {
                if let Some(drained) = drained.filter(|d| d.done < n as u64) {
                    println!(
                        "  ({side}: stopped at the {} s cap, {} of {n} jobs done)",
                        cap.as_secs(),
                        drained.done
                    );
                }
            }
        }
    }

    // Jobs that take a while: one node's slots bound its drain, so more nodes have
    // something to add (on this machine, no-op drains are bound by its two cores).
    let work_ms = WORK.as_millis();
    for (nodes, name) in [(1, "one node"), (NODES, "three nodes")] {
        let label = format!(
            "drain throughput of {} jobs of {work_ms} ms at concurrency {CONCURRENCY}, {name}",
            sizes.drain
        );
        if !selected(&label) {
            continue;
        }
        let (n, cap) = (sizes.drain, sizes.drain_cap);
        WORK_US.store(u64::try_from(WORK.as_micros()).unwrap(), Ordering::Relaxed);
        let ours = if runs("ours") {
            Some(ours_drain(n, nodes, cap).await)
        } else {
            None
        };
        // Against the fast configuration only: the default takes 16 jobs a poll, capped.
        let config = Config::Fast;
        let peer = if runs(config.side()) {
            Some(peer_drain(config, n, nodes, cap).await)
        } else {
            None
        };
        WORK_US.store(0, Ordering::Relaxed);
        rates(
            &format!("{label}, against {}", config.label()),
            PEER,
            ours.map(|d| d.rate()),
            peer.map(|d| d.rate()),
        );
    }

    let label = "enqueue-to-start latency";
    if selected(label) {
        let n = sizes.latency;
        let ours = if runs("ours") {
            Some(ours_latency(n).await)
        } else {
            None
        };
        for config in Config::ALL {
            let peer = if runs(config.side()) {
                Some(peer_latency(config, n).await)
            } else {
                None
            };
            for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
                let at = |samples: &Option<Vec<f64>>| samples.as_ref().map(|s| percentile(s, p));
                latency(
                    &format!(
                        "{label} on an idle queue, {name} of {n}, against {}",
                        config.label()
                    ),
                    PEER,
                    at(&ours),
                    at(&peer),
                );
            }
        }
    }

    if selected("breakdown") && runs("ours") {
        breakdown(&sizes).await;
    }
}

/// Enqueues `n` jobs, `batch` per call (one by one for 1), through a registry whose
/// queue runs nothing.
async fn ours_insert(n: usize, batch: usize) -> Duration {
    let db = database().await;
    let workers = ours_node(ours_queue(&db).await, false).await;
    let took = common::timed_enqueues(&workers, NOOP, n, batch).await;
    workers.shutdown().await.unwrap();
    took
}

/// Adds `n` jobs, `batch` per call (`add_job` for 1, else `add_jobs`, one statement),
/// with no worker running.
async fn peer_insert(n: usize, batch: usize) -> Duration {
    let db = database().await;
    let (pool, utils) = peer_pool(&db).await;
    let spec = JobSpec::default();
    let start = Instant::now();
    if batch == 1 {
        for _ in 0..n {
            utils.add_job(Noop(1), spec.clone()).await.unwrap();
        }
    } else {
        for _ in 0..n / batch {
            utils.add_jobs(&peer_jobs(&spec, batch)).await.unwrap();
        }
    }
    let took = start.elapsed();
    pool.close().await;
    took
}

/// What a drain did: how many jobs it saw stored, in how long.
#[derive(Clone, Copy)]
struct Drained {
    done: u64,
    took: Duration,
}

impl Drained {
    fn rate(self) -> f64 {
        self.done as f64 / self.took.as_secs_f64()
    }

    /// Waits until `n` jobs have started and `finished` says they are stored, or `cap`
    /// after `start`.
    async fn wait<F, Fut>(n: usize, start: Instant, cap: Duration, finished: F) -> Drained
    where
        F: Fn() -> Fut,
        Fut: Future<Output = u64>,
    {
        let n = n as u64;
        let all = async {
            started(n).await;
            stored(n, &finished).await;
        };
        let _ = tokio::time::timeout_at((start + cap).into(), all).await;
        let took = start.elapsed();
        Drained {
            done: finished().await.min(n),
            took,
        }
    }
}

/// Stores `n` jobs with nothing running, then times `nodes` registries, each on a queue
/// of its own, from their start until every outcome is stored.
async fn ours_drain(n: usize, nodes: usize, cap: Duration) -> Drained {
    let db = database().await;
    {
        let workers = ours_node(ours_queue(&db).await, false).await;
        for batch in batches(n) {
            let jobs = (0..batch).map(|_| (NOOP, Some(json!(1)), JobOptions::new()));
            workers.enqueue_many(jobs).await.unwrap();
        }
        workers.shutdown().await.unwrap();
    }
    let mut queues = Vec::new();
    for _ in 0..nodes {
        queues.push(ours_queue(&db).await);
    }
    STARTED.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let mut running = Vec::new();
    for queue in &queues {
        running.push(ours_node(queue.clone(), true).await);
    }
    let drained = Drained::wait(n, start, cap, || ours_finished(&queues[0])).await;
    for workers in running {
        workers.shutdown().await.unwrap();
    }
    drained
}

/// As [`ours_drain`], for graphile_worker in `config`: `nodes` workers, each with a pool
/// of its own, initialised (connected, schema checked) before the clock starts.
async fn peer_drain(config: Config, n: usize, nodes: usize, cap: Duration) -> Drained {
    let db = database().await;
    let (pool, utils) = peer_pool(&db).await;
    let spec = JobSpec::default();
    for batch in batches(n) {
        utils.add_jobs(&peer_jobs(&spec, batch)).await.unwrap();
    }
    let mut workers = Vec::new();
    for _ in 0..nodes {
        workers.push(Arc::new(config.options(db.url()).init().await.unwrap()));
    }
    STARTED.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let runs: Vec<_> = workers.iter().map(peer_run).collect();
    let drained = Drained::wait(n, start, cap, || peer_finished(&pool, n)).await;
    peer_stop(workers, runs).await;
    pool.close().await;
    drained
}

/// Enqueues one job at a time on an idle queue and measures, in ms, from the call to
/// `enqueue` until the handler starts; sorted.
async fn ours_latency(n: usize) -> Vec<f64> {
    let db = database().await;
    let workers = ours_node(ours_queue(&db).await, true).await;
    let samples = common::enqueue_to_start(&workers, NOOP, n).await;
    workers.shutdown().await.unwrap();
    samples
}

/// As [`ours_latency`], for graphile_worker in `config`, adding each job with the
/// worker's own utilities (`add_job`, whose insert notifies the worker).
async fn peer_latency(config: Config, n: usize) -> Vec<f64> {
    let db = database().await;
    let worker = Arc::new(config.options(db.url()).init().await.unwrap());
    let run = peer_run(&worker);
    // Its start (LISTEN, the first fetch) is not an enqueue's wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let utils = worker.create_utils();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let target = STARTED.load(Ordering::Relaxed) + 1;
        let start = Instant::now();
        utils.add_job(Noop(1), JobSpec::default()).await.unwrap();
        started(target).await;
        let began = LAST_START.lock().unwrap().unwrap();
        samples.push(began.duration_since(start).as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peer_stop(vec![worker], vec![run]).await;
    samples.sort_by(f64::total_cmp);
    samples
}

/// Where one of our jobs' time goes: each step of its life timed alone on the store, per
/// job, as the runner makes them when it keeps 16 jobs running.
async fn breakdown(sizes: &Sizes) {
    let db = database().await;
    let queue = ours_queue(&db).await;
    let now = queue.clock_ms().await.unwrap().unwrap();
    let counts = (sizes.one_by_one, sizes.batched, sizes.batch);
    let drain = sizes.drain.min(sizes.one_by_one + sizes.batched);
    common::store_breakdown(
        &queue,
        || now,
        NOOP,
        CONCURRENCY,
        counts,
        drain,
        "statement",
    )
    .await;
}
