//! A process that runs the durable queue on a SQLite file or a PostgreSQL database, for
//! the stress tests of `tests/tests/queue_stress.rs` and `queue_postgres_*.rs`: several
//! of them share one store, and the tests kill them (SIGKILL), stop them (SIGSTOP),
//! restart the database under them and start new ones while they run jobs.
//!
//! `queue-stress-node <db> <log> <node> <lease_ms>` (`<db>` a file path, or a
//! `postgres://` URL) runs the jobs of five workers until SIGINT (once it has created
//! `<log>.<node>.ready`), then shuts down (handing back what still runs after the grace
//! period, or `QUEUE_NODE_GRACE_MS` if set):
//!
//! - `chaos` (backoff 20 ms to 200 ms): its payload `{"kind", "ms", "bad_until",
//!   "tail_ms"}` says what an attempt does. Attempts up to `bad_until` misbehave as
//!   `kind` says: `fail` returns an error after `ms`, `panic` panics after `ms`, `timeout`
//!   sleeps past any job timeout; later attempts, and every attempt of kind `ok`, sleep
//!   `ms`, log `done` (the side effect), and return success `tail_ms` later. Kind
//!   `cancel` sleeps until it is cancelled.
//! - `capped` (concurrency 1) and `slow`: attempt `n` sleeps `ms[n - 1]` (the last entry
//!   for later attempts) and succeeds.
//! - `fails-once-cancelled` (backoff 20 ms): its first attempt waits until a cancel of
//!   its job is stored (it reads the store), then fails at once, before the heartbeat
//!   that would stop it; later attempts succeed.
//! - `cron`: as `slow`, scheduled on the cron expression `QUEUE_NODE_CRON` if it is
//!   set. A node without it enqueues no ticks, and runs the jobs of those the others
//!   enqueued.
//!
//! Each attempt appends to `<log>` a line `start <id> <attempt> <node> <µs>` as it
//! begins, `done <id> <attempt> <node> <µs>` just before it returns success, and
//! `end <id> <attempt> <node> <µs>` when its future is dropped, however it ended
//! (returned, failed, panicked, timed out, cancelled). Each line is one `write` to a
//! file opened with `O_APPEND`, so lines from several processes never interleave, and a
//! line written before a SIGKILL is kept (it is in the page cache, not the process).

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustf_workers::prelude::*;
use rustf_workers::queue::{JobStore, PostgresQueue, QueueOptions, SqliteQueue};
use rustf_workers::CheckpointStore;
use rustf_workers::{WorkerOptions, WorkerRegistry};
use tokio::signal::unix::{signal, SignalKind};

/// The side-effect log, shared by this process's runs.
#[derive(Clone)]
struct Log {
    file: Arc<File>,
    node: Arc<str>,
}

impl Log {
    fn line(&self, what: &str, id: &str, attempt: u32) {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let line = format!("{what} {id} {attempt} {} {micros}\n", self.node);
        // One write of the whole line, to a file opened for appending.
        (&*self.file)
            .write_all(line.as_bytes())
            .expect("log written");
    }

    /// Logs `start` now and `end` when the returned guard is dropped.
    fn attempt(&self, ctx: &WorkerContext) -> Attempt {
        let (id, attempt) = (ctx.run_id().to_owned(), ctx.attempt());
        self.line("start", &id, attempt);
        Attempt {
            log: self.clone(),
            id,
            attempt,
        }
    }
}

/// One attempt under way: logs `end` when the handler's future is dropped, whether it
/// returned, panicked, or was dropped by a timeout or a cancel.
struct Attempt {
    log: Log,
    id: String,
    attempt: u32,
}

impl Attempt {
    fn done(&self) {
        self.log.line("done", &self.id, self.attempt);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.log.line("end", &self.id, self.attempt);
    }
}

/// Long enough to outlive any test: ends only by a timeout, a cancel or a kill.
const FOREVER: Duration = Duration::from_secs(600);

async fn chaos(ctx: WorkerContext, log: Log) -> Result<()> {
    let run = log.attempt(&ctx);
    let p = ctx.payload().cloned().unwrap_or_default();
    let ms = Duration::from_millis(p["ms"].as_u64().unwrap_or(0));
    let bad = u64::from(run.attempt) <= p["bad_until"].as_u64().unwrap_or(0);
    match (p["kind"].as_str().unwrap_or("ok"), bad) {
        ("cancel", _) => {
            ctx.sleep(FOREVER).await;
            Err(Error::internal("a cancel job was never cancelled"))
        }
        ("fail", true) => {
            ctx.sleep(ms).await;
            Err(Error::internal("failed on purpose"))
        }
        ("panic", true) => {
            ctx.sleep(ms).await;
            panic!("panicked on purpose");
        }
        ("timeout", true) => {
            ctx.sleep(FOREVER).await;
            Err(Error::internal("outlived its timeout"))
        }
        _ => {
            ctx.sleep(ms).await;
            run.done();
            // A kill in the tail leaves the job done but its outcome unstored, as a kill
            // between the handler's return and the stored outcome does, in a wider window.
            ctx.sleep(Duration::from_millis(p["tail_ms"].as_u64().unwrap_or(0)))
                .await;
            Ok(())
        }
    }
}

async fn sleepy(ctx: WorkerContext, log: Log) -> Result<()> {
    let run = log.attempt(&ctx);
    let durations: Vec<u64> = ctx
        .payload()
        .and_then(|p| p["ms"].as_array())
        .map(|ms| ms.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let index = usize::try_from(run.attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    let ms = durations
        .get(index)
        .or(durations.last())
        .copied()
        .unwrap_or(0);
    ctx.sleep(Duration::from_millis(ms)).await;
    run.done();
    Ok(())
}

async fn fails_once_cancelled<S: JobStore>(ctx: WorkerContext, log: Log, store: S) -> Result<()> {
    let run = log.attempt(&ctx);
    if run.attempt == 1 {
        loop {
            let job = store.get(ctx.run_id()).await?;
            if job.is_some_and(|job| job.cancel_requested) {
                return Err(Error::internal("failed on purpose, its cancel requested"));
            }
            ctx.sleep(Duration::from_millis(5)).await;
        }
    }
    run.done();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, log_path, node, lease_ms] = &args[..] else {
        panic!("usage: queue-stress-node <db> <log> <node> <lease_ms>");
    };
    // From here on SIGINT shuts down; `<log>.<node>.ready` tells the test so.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let lease = Duration::from_millis(lease_ms.parse().expect("lease_ms is a number"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let log = Log {
        file: Arc::new(file),
        node: node.as_str().into(),
    };
    // The panics are the test's own: keep the node's stderr for what is not.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("on purpose") {
            default_hook(info);
        }
    }));

    let workers = WorkerRegistry::new();
    if let Ok(grace) = std::env::var("QUEUE_NODE_GRACE_MS") {
        let grace = grace.parse().expect("QUEUE_NODE_GRACE_MS is a number");
        workers.set_shutdown_grace(Duration::from_millis(grace));
    }
    let chaos_log = log.clone();
    workers
        .register_with(
            "chaos",
            WorkerOptions::new().backoff(Duration::from_millis(20), Duration::from_millis(200)),
            move |ctx| chaos(ctx, chaos_log.clone()),
        )
        .await?;
    let capped_log = log.clone();
    workers
        .register_with("capped", WorkerOptions::new().concurrency(1), move |ctx| {
            sleepy(ctx, capped_log.clone())
        })
        .await?;
    let slow_log = log.clone();
    workers
        .register("slow", move |ctx| sleepy(ctx, slow_log.clone()))
        .await?;
    let cron_log = log.clone();
    let cron = match std::env::var("QUEUE_NODE_CRON") {
        // Leaked once: a schedule is `&'static`, as `#[worker(cron = "...")]` gives it.
        Ok(expr) => WorkerOptions::new().cron(expr.leak()),
        Err(_) => WorkerOptions::new(),
    };
    workers
        .register_with("cron", cron, move |ctx| sleepy(ctx, cron_log.clone()))
        .await?;
    let options = QueueOptions::new()
        .concurrency(8)
        .lease(lease)
        .poll_interval(Duration::from_millis(20));
    // `<db>` is a SQLite file, or a PostgreSQL URL.
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let store = PostgresQueue::connect(db).await?;
        start(&workers, store, log, options).await?;
    } else {
        start(&workers, SqliteQueue::open(db)?, log, options).await?;
    }
    File::create(format!("{log_path}.{node}.ready"))?;
    interrupt.recv().await;
    workers.shutdown().await
}

/// Registers the worker that reads `store`, and opens the queue on it.
async fn start<S>(workers: &WorkerRegistry, store: S, log: Log, options: QueueOptions) -> Result<()>
where
    S: JobStore + CheckpointStore + Clone,
{
    let reader = store.clone();
    workers
        .register_with(
            "fails-once-cancelled",
            WorkerOptions::new().backoff(Duration::from_millis(20), Duration::from_millis(20)),
            move |ctx| fails_once_cancelled(ctx, log.clone(), reader.clone()),
        )
        .await?;
    workers.use_queue_with(store, options)
}
