//! Two nodes on one PostgreSQL database: a controller enqueues on one, and both share the
//! work.
//!
//! `cargo run -p cluster -- postgres://user@localhost/db` (or with `DATABASE_URL` set)
//! starts node **a**, this process: an axum app whose controller (`POST /signups`) stores
//! a batch of welcome emails, with the stats router under `/admin/workers`. Node a starts
//! node **b**, a second process of this binary (`--node b`), which only runs jobs. Both
//! run the workers: each claims due jobs with `FOR UPDATE SKIP LOCKED`, and each hears of
//! new ones through `LISTEN/NOTIFY` rather than waiting for its next poll.
//!
//! With no other argument it plays a short demo against itself and exits: it waits for b
//! to join, posts three batches of signups, follows the jobs to `completed`, prints how
//! many emails each node sent (each job's checkpoint names its node) and the node list,
//! then stops both at once: b with SIGTERM, itself with `WORKER::shutdown()`. `--serve`
//! serves until Ctrl-C or SIGTERM instead, then stops both the same way.
//!
//! | argument | env | default |
//! |---|---|---|
//! | `<postgres-url>` | `DATABASE_URL` | none: the example starts no server of its own |
//! | `--addr <host:port>` | | `127.0.0.1:3000` with `--serve`, a free port for the demo |
//! | `--serve` | | run the demo, then exit |
//! | `--node <name>` | | node a; with it, a node that only runs jobs (what a starts as `--node b`) |
//! | | `CLUSTER_CONCURRENCY` | 4: stored jobs each node runs at once |
//! | | `SHUTDOWN_GRACE_MS` | 1000: how long running jobs get before they are handed back |
//! | | `CLUSTER_LOG` | unset: a file `send-welcome` appends `<job> <node> <attempt>` to |
//!
//! Node a passes the URL to b in `DATABASE_URL`, not on b's command line, where the
//! process list would show a password. A node started by hand with `--node c` on any
//! machine that reaches the database joins the cluster the same way.

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::queue::{PostgresQueue, QueueOptions};

mod demo;
mod peer;
mod routes;

rustf_workers::auto_workers!();

/// How long open connections get past the workers' grace period at shutdown.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// The environment variable in which node a tells b its pid: b stops when that process
/// is gone (killed before it could stop b).
const PARENT_ENV: &str = "CLUSTER_PARENT";

/// This process's node name: `a`, or the one given with `--node`.
static NODE: OnceLock<String> = OnceLock::new();

/// This process's node name, as the workers record it.
fn node_name() -> &'static str {
    NODE.get().map_or("a", String::as_str)
}

#[tokio::main]
async fn main() -> ExitCode {
    // tokio_postgres logs the server's notices at info: "relation ... already exists,
    // skipping" from every node's migration check.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,tokio_postgres=warn"),
    )
    .init();
    let config = match Config::from_args_and_env() {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("cluster: {problem}");
            return ExitCode::from(2);
        }
    };
    let _ = NODE.set(config.node.clone().unwrap_or_else(|| "a".to_owned()));
    let ran = match config.node {
        Some(_) => run_worker_node(&config).await,
        None => run_node_a(&config).await,
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cluster: node {}: {err}", node_name());
            ExitCode::FAILURE
        }
    }
}

/// Connects to the database and starts running its jobs here.
async fn join(config: &Config) -> Result<PostgresQueue> {
    workers::installer().install().await?;
    WORKER::set_shutdown_grace(config.grace);
    // Connecting migrates the schema: node a does it before it starts b.
    let queue = PostgresQueue::connect(&config.url).await?;
    let options = QueueOptions::new().concurrency(config.concurrency);
    WORKER::registry().use_queue_with(queue.clone(), options)?;
    Ok(queue)
}

/// Node a: the web application, node b's parent, and a node that runs jobs too.
async fn run_node_a(config: &Config) -> Result<()> {
    let queue = join(config).await?;
    println!("database: {}", queue.target());
    println!(
        "node a: node {}, pid {}, runs up to {} jobs at once",
        WORKER::registry().node_id().unwrap_or_default(),
        std::process::id(),
        config.concurrency
    );

    let listener = tokio::net::TcpListener::bind(&config.addr).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr} (the dashboard: http://{addr}/admin/workers/ui/)");
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, routes::app())
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });

    let mut b = peer::Peer::spawn("b", &config.url)?;
    println!("node a: started node b, pid {}", b.pid());

    // Whether b is still there to stop (it may die first), and the demo's failure,
    // returned once both nodes have stopped.
    let mut b_running = true;
    let mut demo_failed = None;
    if config.serve {
        tokio::select! {
            signal = shutdown_signal() => println!("\n{signal} received"),
            status = b.exited() => {
                println!("node b exited unexpectedly ({}): node a serves alone", status?);
                b_running = false;
                let signal = shutdown_signal().await;
                println!("\n{signal} received");
            }
        }
    } else {
        tokio::select! {
            done = demo::run(addr, b.pid()) => demo_failed = done.err(),
            signal = shutdown_signal() => println!("\n{signal} received: the demo stops early"),
            status = b.exited() => {
                b_running = false;
                demo_failed = Some(Error::internal(format!(
                    "node b exited during the demo ({})",
                    status?
                )));
            }
        }
    }

    // Both at once, as a deploy stops them: stopping b first would hand its running jobs
    // to a, only for a's own shutdown to hand them back again.
    println!(
        "shutting down: SIGTERM to node b, WORKER::shutdown() here; running jobs get {:?} \
         to finish, then are handed back",
        config.grace
    );
    let _ = stop_server.send(());
    let b_pid = b.pid();
    let stop_b = async {
        if b_running {
            Some(b.stop(config.grace + peer::STOP_MARGIN).await)
        } else {
            None
        }
    };
    let drain = config.grace + DRAIN_MARGIN;
    let (b_stopped, stopped, drained) = tokio::join!(
        stop_b,
        WORKER::shutdown(),
        tokio::time::timeout(drain, server)
    );
    stopped?;
    match drained {
        Ok(served) => served.map_err(|err| Error::internal(err.to_string()))??,
        Err(_) => log::warn!("closing connections still open {drain:?} after shutdown began"),
    }
    println!(
        "node a: sent {} welcome email(s), stopped cleanly",
        workers::welcome::sent()
    );
    if let Some(status) = b_stopped.transpose()? {
        if !status.success() {
            return Err(Error::internal(format!("node b exited with {status}")));
        }
        println!("node b: exited with {status}");
    }
    if let Some(err) = demo_failed {
        return Err(err);
    }
    // The store outlives the queue's shutdown: both nodes marked themselves stopped.
    let nodes = WORKER::registry().nodes().await?;
    let own = WORKER::registry().node_id();
    let a = nodes
        .iter()
        .find(|node| Some(&node.node.id) == own.as_ref());
    let b = demo::find_pid(&nodes, b_pid);
    for (name, node) in [("a", a), ("b", b)] {
        if let Some(node) = node {
            println!("node {name}: {} in the database", node.status.as_str());
        }
    }
    Ok(())
}

/// Node b (or any `--node <name>`): runs jobs until Ctrl-C or SIGTERM, or until the node a
/// that started it is gone.
async fn run_worker_node(config: &Config) -> Result<()> {
    let name = node_name();
    join(config).await?;
    println!(
        "node {name}: node {}, pid {}, runs up to {} jobs at once",
        WORKER::registry().node_id().unwrap_or_default(),
        std::process::id(),
        config.concurrency
    );
    let why = tokio::select! {
        signal = shutdown_signal() => signal,
        () = peer::parent_gone(PARENT_ENV) => "node a is gone",
    };
    println!("node {name}: {why}, shutting down");
    WORKER::shutdown().await?;
    println!(
        "node {name}: sent {} welcome email(s), stopped cleanly",
        workers::welcome::sent()
    );
    Ok(())
}

/// Where the database is and how this node runs.
struct Config {
    url: String,
    node: Option<String>,
    addr: String,
    serve: bool,
    concurrency: usize,
    grace: Duration,
}

impl Config {
    fn from_args_and_env() -> std::result::Result<Self, String> {
        let mut url = None;
        let mut node = None;
        let mut addr = None;
        let mut serve = false;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--serve" => serve = true,
                "--addr" => {
                    addr = Some(args.next().ok_or_else(|| usage("--addr needs host:port"))?)
                }
                "--node" => {
                    let name = args.next().ok_or_else(|| usage("--node needs a name"))?;
                    if name == "a" {
                        return Err(usage("node a is the one started without `--node`"));
                    }
                    node = Some(name);
                }
                other if other.starts_with('-') => {
                    return Err(usage(&format!("unknown argument `{other}`")))
                }
                _ if url.is_some() => return Err(usage("one database URL at most")),
                _ => url = Some(arg),
            }
        }
        let url = url
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(no_database)?;
        let default_addr = if serve {
            "127.0.0.1:3000"
        } else {
            "127.0.0.1:0"
        };
        Ok(Self {
            url,
            node,
            addr: addr.unwrap_or_else(|| default_addr.to_owned()),
            serve,
            concurrency: env_number("CLUSTER_CONCURRENCY").unwrap_or(4).max(1),
            grace: Duration::from_millis(env_number("SHUTDOWN_GRACE_MS").unwrap_or(1_000)),
        })
    }
}

fn usage(problem: &str) -> String {
    format!(
        "{problem}\nusage: cluster [--serve] [--addr <host:port>] [--node <name>] [<postgres-url>]"
    )
}

fn no_database() -> String {
    "no PostgreSQL database to run on: give its URL as the argument or in DATABASE_URL\n\
     \n    cargo run -p cluster -- postgres://user@localhost/db\n    \
     DATABASE_URL=postgres://user@localhost/db cargo run -p cluster\n\
     \nBoth nodes share that database; its role must be able to create tables there (the\n\
     first start creates the queue's). This example starts no PostgreSQL server: use one\n\
     you have, or `createdb` a database on a local one."
        .to_owned()
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
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
