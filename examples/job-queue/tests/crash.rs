//! The application as a real process on a SQLite file, killed with SIGKILL while it sends
//! a welcome email and started again on the same file: the email is sent exactly once,
//! by the second process, once the first one's lease has expired; an email sent before
//! the kill is never sent again; the daemon resumes from its checkpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The lease the processes take on their jobs: how soon the second one reruns the job
/// the first one was killed in.
const LEASE: Duration = Duration::from_millis(600);
/// How long the slow welcome email takes: long enough to be killed in the middle.
const SLOW_MS: u64 = 2_000;

/// A running `job-queue --serve`, killed (SIGKILL) when dropped, so a failing test leaves
/// no process behind.
struct App {
    child: Child,
    addr: String,
    /// The id of the daemon `counter`'s job, as the process printed it.
    counter: String,
}

impl App {
    fn start(db: &Path, log: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_job-queue"))
            .args(["--serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("JOBS_LOG", log)
            .env("JOBS_LEASE_MS", LEASE.as_millis().to_string())
            .env("SHUTDOWN_GRACE_MS", "200")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the job-queue binary starts");

        // Read as it comes, so the pipe never fills.
        let stdout = child.stdout.take().unwrap();
        let (lines, printed) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut app = Self {
            child,
            addr: String::new(),
            counter: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while app.addr.is_empty() || app.counter.is_empty() {
            let line = printed
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the address and the daemon's job printed within 20 s");
            if let Some(addr) = line.strip_prefix("listening on http://") {
                app.addr = addr.to_owned();
            } else if let Some(rest) = line.strip_prefix("daemon: `counter` is job ") {
                app.counter = rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        app
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").expect("a full HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, body)
    }

    /// `POST /signups`: the stored job's id.
    fn signup(&self, payload: Value) -> String {
        let (status, reply) = self.request("POST", "/signups", &payload.to_string());
        assert_eq!(status, 202, "{reply}");
        reply["id"].as_str().unwrap().to_owned()
    }

    /// `GET /jobs/{id}`: the job as stored.
    fn job(&self, id: &str) -> Value {
        let (status, job) = self.request("GET", &format!("/jobs/{id}"), "");
        assert_eq!(status, 200, "{job}");
        job
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The lines of the log `send-welcome` appends to.
fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls `check` until it answers, failing with `what` after `within`.
fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_job_killed_mid_run_is_finished_exactly_once_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("jobs.db"), dir.path().join("log.txt"));
    let within = Duration::from_secs(20);

    let mut first = App::start(&db, &log);
    // A job that completes before the kill.
    let sent = first.signup(json!({ "email": "ada@example.com" }));
    wait_for(within, "the first email", || {
        (first.job(&sent)["state"] == "completed").then_some(())
    });
    // The daemon's progress before the kill.
    let counted = wait_for(within, "two checkpoints of the counter", || {
        let count = first.job(&first.counter)["checkpoint"]["count"].as_u64()?;
        (count >= 2).then_some(count)
    });
    // A job killed in the middle.
    let slow = first.signup(json!({ "email": "bob@example.com", "work_ms": SLOW_MS }));
    wait_for(within, "the slow email to start", || {
        let started = lines(&log).contains(&format!("start {slow} 1"));
        (started && first.job(&slow)["state"] == "running").then_some(())
    });
    first.kill();
    assert!(
        !lines(&log).contains(&format!("done {slow}")),
        "the slow email was sent before the kill: make SLOW_MS longer"
    );

    let mut second = App::start(&db, &log);
    assert_eq!(second.counter, first.counter, "one counter per database");
    let job = wait_for(within, "the slow email to be sent again", || {
        let job = second.job(&slow);
        (job["state"] == "completed").then_some(job)
    });
    assert_eq!(job["attempt"], 2, "the killed attempt is counted: {job}");
    // Rescued with it, the job sent before the kill would have been claimed with the slow
    // one, and sent in its first 100 ms: no job of `send-welcome` is left to run.
    let (_, waiting) = second.request(
        "GET",
        "/admin/workers/jobs?worker=send-welcome&state=scheduled,available,running,retrying",
        "",
    );
    assert_eq!(waiting["jobs"], json!([]), "{waiting}");
    // The counter carries on from where the first process left it.
    let resumed = wait_for(within, "a checkpoint of the resumed counter", || {
        let job = second.job(&second.counter);
        job["checkpoint"]["resumed_from"].as_u64()
    });
    assert!(
        resumed >= counted,
        "resumed from {resumed}, had counted {counted}"
    );

    // SIGTERM: a graceful stop, the counter handed back.
    let pid = second.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_for(within, "the second process to exit", || {
        second.child.try_wait().unwrap()
    });
    assert!(status.success(), "exit status {status}");

    let log = lines(&log);
    let of = |id: &str| -> Vec<&String> { log.iter().filter(|l| l.contains(id)).collect() };
    assert_eq!(
        of(&slow),
        [
            &format!("start {slow} 1"),
            &format!("start {slow} 2"),
            &format!("done {slow}")
        ],
        "{log:?}"
    );
    assert_eq!(
        of(&sent),
        [&format!("start {sent} 1"), &format!("done {sent}")],
        "{log:?}"
    );
}
