//! A process that runs the durable queue on a SQLite file, for the crash tests: it is
//! killed with SIGKILL mid-job and started again.
//!
//! `queue-node <db> <log> [enqueue]`: runs jobs of `crash-job` from `<db>`, appending
//! `start <id> <attempt>` and `done <id>` lines to `<log>`; with `enqueue`, first stores
//! one job due now and one due in 500 ms, prints their ids, and takes a minute over
//! each job (to be killed meanwhile); without it, each job takes 50 ms.

use std::io::Write;
use std::time::Duration;

use rustf_workers::prelude::*;
use rustf_workers::queue::{QueueOptions, SqliteQueue};
use rustf_workers::{JobOptions, WorkerRegistry};

fn append(log: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    // One write of the whole line: appends from two runs at once never interleave.
    file.write_all(format!("{line}\n").as_bytes())
        .expect("log written");
    file.sync_data().expect("log synced");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (db, log) = (args[1].clone(), args[2].clone());
    let enqueue = args.get(3).map(String::as_str) == Some("enqueue");
    let slow = enqueue;
    let workers = WorkerRegistry::new();
    let job_log = log.clone();
    workers
        .register("crash-job", move |ctx| {
            let log = job_log.clone();
            async move {
                append(&log, &format!("start {} {}", ctx.run_id(), ctx.attempt()));
                // In the process that enqueues (the one to be killed), a job takes long
                // enough to be killed in the middle.
                let work = if slow { 60_000 } else { 50 };
                ctx.sleep(Duration::from_millis(work)).await;
                append(&log, &format!("done {}", ctx.run_id()));
                Ok(())
            }
        })
        .await?;
    let options = QueueOptions::new()
        .lease(Duration::from_millis(900))
        .poll_interval(Duration::from_millis(20));
    workers.use_queue_with(SqliteQueue::open(&db)?, options)?;
    if enqueue {
        let now = workers.enqueue("crash-job", None).await?;
        let later = workers
            .enqueue_with(
                "crash-job",
                None,
                JobOptions::new().delay(Duration::from_millis(500)),
            )
            .await?;
        println!("{now} {later}");
    }
    tokio::signal::ctrl_c().await?;
    workers.shutdown().await
}
