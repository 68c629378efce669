//! The demo as a real pair of processes on a fresh PostgreSQL database: it exits 0, both
//! nodes sent welcome emails, their counts agree with what each node says it sent and
//! with the log the worker appends to, and the database holds every job completed, each
//! run once, its checkpoint naming the node that ran it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustf_workers::queue::{JobFilter, JobState, PostgresQueue, QueueOptions};
use rustf_workers::WorkerRegistry;
use rustf_workers_tests::postgres::{on_own_runtime, TestDatabase};

/// How long the demo may take: a few seconds, with room for a loaded machine.
const WITHIN: Duration = Duration::from_secs(60);

/// The demo's process group: node a and the node b it starts. Every process in it is
/// killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Demo {
    child: Child,
    output: mpsc::Receiver<String>,
}

impl Demo {
    fn start(url: &str, log: &std::path::Path) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cluster"))
            .arg(url)
            .env_remove("DATABASE_URL")
            .env("CLUSTER_LOG", log)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A group of its own, which node b joins: one signal reaches both.
            .process_group(0)
            .spawn()
            .expect("the cluster binary starts");
        // Read as it comes, so the pipe never fills; closed once both nodes are gone.
        let stdout = child.stdout.take().unwrap();
        let (lines, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        Demo { child, output }
    }

    /// Every line both nodes printed, once they have closed their output, and node a's
    /// exit status.
    fn finish(&mut self) -> (Vec<String>, ExitStatus) {
        let deadline = Instant::now() + WITHIN;
        let mut printed = Vec::new();
        loop {
            match self
                .output
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => printed.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "the demo still running after {WITHIN:?}:\n{}",
                        printed.join("\n")
                    )
                }
            }
        }
        let status = self.child.wait().unwrap();
        (printed, status)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The number in `line` after `prefix`, up to the next space.
fn number_after(line: &str, prefix: &str) -> Option<usize> {
    line.trim()
        .strip_prefix(prefix)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn two_nodes_share_the_signups_and_stop_cleanly() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");

    let started = Instant::now();
    let mut demo = Demo::start(db.url(), &log);
    let (printed, status) = demo.finish();
    let text = printed.join("\n");
    eprintln!("{text}\n(the demo took {:?})", started.elapsed());
    assert!(status.success(), "exit status {status}:\n{text}");

    // "node a sent 12 of 24 welcome emails": from the jobs' checkpoints, as node a read
    // them. "node b: sent 12 welcome email(s), stopped cleanly": each node's own count.
    let mut tallied: BTreeMap<&str, usize> = BTreeMap::new();
    let mut own: BTreeMap<&str, usize> = BTreeMap::new();
    for node in ["a", "b"] {
        for line in &printed {
            if let Some(n) = number_after(line, &format!("node {node} sent ")) {
                tallied.insert(node, n);
            }
            if let Some(n) = number_after(line, &format!("node {node}: sent ")) {
                own.insert(node, n);
            }
        }
    }
    assert!(
        tallied.len() == 2 && tallied.values().all(|&n| n > 0),
        "both nodes sent emails: {tallied:?}\n{text}"
    );
    assert_eq!(own, tallied, "each node's own count\n{text}");
    let total: usize = tallied.values().sum();
    assert!(
        text.contains(&format!("{total} of {total} completed")),
        "{text}"
    );
    for node in ["a", "b"] {
        assert!(
            text.contains(&format!("node {node}: offline in the database")),
            "node {node} marked itself stopped\n{text}"
        );
    }

    // The worker's log: `<job> <node> <attempt>`, one line per email sent.
    let log = std::fs::read_to_string(&log).unwrap();
    let mut runs: HashMap<String, Vec<(String, u32)>> = HashMap::new();
    for line in log.lines() {
        let mut words = line.split(' ');
        let (Some(id), Some(node), Some(attempt)) = (words.next(), words.next(), words.next())
        else {
            panic!("a log line of three words: {line:?}");
        };
        runs.entry(id.to_owned())
            .or_default()
            .push((node.to_owned(), attempt.parse().unwrap()));
    }
    assert_eq!(runs.len(), total, "one email per job\n{log}");
    for (id, sent) in &runs {
        assert_eq!(sent.len(), 1, "job {id} sent once: {sent:?}");
    }

    // The database: every job completed at its first attempt, its checkpoint naming the
    // node the log says sent it.
    let url = db.url().to_owned();
    let jobs = on_own_runtime(async move {
        let reader = WorkerRegistry::new();
        let queue = PostgresQueue::connect(&url).await.unwrap();
        reader
            .use_queue_with(queue, QueueOptions::new().runs_jobs(false))
            .unwrap();
        let page = reader
            .jobs(JobFilter {
                worker: Some("send-welcome".to_owned()),
                limit: JobFilter::MAX_LIMIT,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        reader.shutdown().await.unwrap();
        page.jobs
    });
    assert_eq!(jobs.len(), total, "every job stored");
    for job in &jobs {
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!((job.attempt, job.errors.len()), (1, 0), "{job:?}");
        let sent_by = job.checkpoint.as_ref().and_then(|c| c["sent_by"].as_str());
        assert_eq!(
            sent_by,
            Some(runs[&job.id][0].0.as_str()),
            "the checkpoint names the node that sent it: {job:?}"
        );
    }
}
