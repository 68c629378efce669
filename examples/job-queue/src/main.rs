//! The durable queue behind a web application: jobs stored in an embedded SQLite file
//! before they run, so that they survive a restart, a deploy or a crash.
//!
//! `cargo run -p job-queue` runs a short scripted demo against its own server and exits;
//! `cargo run -p job-queue -- --serve` serves until Ctrl-C or SIGTERM.
//!
//! | flag | env | default |
//! |---|---|---|
//! | `--db <path>` | `JOBS_DB` | `jobs.db` in a new temporary directory, printed |
//! | `--addr <host:port>` | | `127.0.0.1:3000` with `--serve`, a free port for the demo |
//! | | `JOBS_LEASE_MS` | 30000: how soon a killed process's jobs run again |
//! | | `SHUTDOWN_GRACE_MS` | 1000: how long running jobs get before they are handed back |
//! | | `JOBS_LOG` | unset: a file `send-welcome` appends `start`/`done` lines to |
//!
//! It prints `database: <path>` and then `listening on http://<addr>` once it accepts
//! connections.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustf_workers::prelude::*;
use rustf_workers::queue::{QueueOptions, SqliteQueue};
use rustf_workers::JobOptions;

mod demo;
mod routes;

rustf_workers::auto_workers!();

/// How long open connections get past the workers' grace period at shutdown.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = Config::from_args_and_env()?;
    let started_ms = wall_clock_ms();

    // Registered before the queue starts: its cron task reads the schedules once.
    workers::installer().install().await?;
    WORKER::set_shutdown_grace(config.grace);
    let queue = SqliteQueue::open(&config.db)?;
    WORKER::registry().use_queue_with(queue, QueueOptions::new().lease(config.lease))?;
    println!("database: {}", config.db.display());

    // One counter per database, whichever process starts first: later enqueues, here or
    // after a restart, get the same job back.
    let counter = WORKER::registry()
        .enqueue_with(
            "counter",
            None,
            JobOptions::new().unique_key(workers::counter::UNIQUE_KEY),
        )
        .await?;

    let listener = tokio::net::TcpListener::bind(&config.addr).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    println!(
        "daemon: `counter` is job {counter} (unique key `{}`: one per database)",
        workers::counter::UNIQUE_KEY
    );
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = routes::app();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });

    if config.serve {
        let signal = shutdown_signal().await;
        println!("\n{signal} received");
    } else {
        tokio::select! {
            done = demo::run(addr, &counter, started_ms) => done?,
            signal = shutdown_signal() => println!("\n{signal} received: the demo stops early"),
        }
    }

    // The runs of stored jobs in this process: what shutdown is to hand back.
    let mut jobs = Vec::new();
    for id in WORKER::running().await? {
        if let Ok(job) = WORKER::registry().job(&id).await {
            jobs.push((job.worker, id));
        }
    }
    println!(
        "shutting down: {} running job(s) get {:?} to finish",
        jobs.len(),
        config.grace
    );
    let _ = stop_server.send(());
    let drain = config.grace + DRAIN_MARGIN;
    let (stopped, drained) = tokio::join!(WORKER::shutdown(), tokio::time::timeout(drain, server));
    stopped?;
    match drained {
        Ok(served) => served.map_err(|err| Error::internal(err.to_string()))??,
        Err(_) => log::warn!("closing connections still open {drain:?} after shutdown began"),
    }
    for (worker, id) in jobs {
        let job = WORKER::registry().job(&id).await?;
        println!("  handed back: {worker} job {id} is {}", job.state.as_str());
    }
    println!("stopped cleanly");
    if !config.serve {
        println!(
            "the jobs and checkpoints stay in the file: `cargo run -p job-queue -- --db {}` \
             picks them up",
            config.db.display()
        );
    }
    Ok(())
}

/// Where the queue lives and how the application runs.
struct Config {
    db: PathBuf,
    addr: String,
    serve: bool,
    lease: Duration,
    grace: Duration,
}

impl Config {
    fn from_args_and_env() -> Result<Self> {
        let mut db = std::env::var_os("JOBS_DB").map(PathBuf::from);
        let mut addr = None;
        let mut serve = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--serve" => serve = true,
                "--db" => {
                    db = Some(
                        args.next()
                            .ok_or_else(|| usage("--db needs a path"))?
                            .into(),
                    )
                }
                "--addr" => {
                    addr = Some(args.next().ok_or_else(|| usage("--addr needs host:port"))?)
                }
                other => return Err(usage(&format!("unknown argument `{other}`"))),
            }
        }
        let db = match db {
            Some(db) => db,
            None => {
                let dir = std::env::temp_dir().join(format!("job-queue-{}", std::process::id()));
                std::fs::create_dir_all(&dir)?;
                dir.join("jobs.db")
            }
        };
        let default_addr = if serve {
            "127.0.0.1:3000"
        } else {
            "127.0.0.1:0"
        };
        Ok(Self {
            db,
            addr: addr.unwrap_or_else(|| default_addr.to_owned()),
            serve,
            lease: env_ms("JOBS_LEASE_MS").unwrap_or(Duration::from_secs(30)),
            grace: env_ms("SHUTDOWN_GRACE_MS").unwrap_or(Duration::from_secs(1)),
        })
    }
}

fn usage(problem: &str) -> Error {
    Error::validation(format!(
        "{problem}; usage: job-queue [--serve] [--db <path>] [--addr <host:port>]"
    ))
}

fn env_ms(name: &str) -> Option<Duration> {
    let ms = std::env::var(name).ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// Milliseconds since the Unix epoch, the clock the queue stores times in.
fn wall_clock_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one; names the signal.
async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        "SIGTERM"
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<&'static str>();
    tokio::select! {
        name = ctrl_c => name,
        name = terminate => name,
    }
}
