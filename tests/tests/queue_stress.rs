//! The durable queue's guarantees under real process deaths: `queue-stress-node`
//! processes share one SQLite file while the test kills them (SIGKILL), stops them past
//! their lease (SIGSTOP, SIGCONT) and starts new ones. Every check reads the store and
//! the side-effect log the runs append to, never the nodes' memory.
//!
//! `random_kills_under_load` is seeded: set `RUSTF_STRESS_SEED` to replay a failure's
//! plan (its jobs, kills and cancels; the timing of the processes is the machine's).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustf_workers::prelude::*;
use rustf_workers::queue::{
    JobError, JobFilter, JobRecord, JobState, JobStore, QueueOptions, SqliteQueue,
    LOST_ATTEMPTS_ALLOWED,
};
use rustf_workers::{JobOptions, WorkerRegistry};
use rustf_workers_tests::Rng;

/// The tests of this file run one at a time: each starts processes of its own, and a
/// test whose lease is 600 ms must not share two cores with another's nodes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now_us() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A running `queue-stress-node`, killed (SIGKILL) when dropped, so a failing test leaves
/// no process behind (a stopped one included: SIGKILL ends it too).
struct Node {
    name: String,
    dir: PathBuf,
    child: Child,
    /// When the test killed it (after it was reaped), in µs since the epoch.
    killed_at_us: Option<u64>,
}

impl Node {
    fn start(dir: &Path, name: &str, lease_ms: u64) -> Node {
        Self::start_with(dir, name, lease_ms, None)
    }

    /// With a shutdown grace period of `grace_ms` instead of the default.
    fn start_with(dir: &Path, name: &str, lease_ms: u64, grace_ms: Option<u64>) -> Node {
        let stderr = File::create(dir.join(format!("{name}.stderr"))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_queue-stress-node"));
        if let Some(grace) = grace_ms {
            command.env("QUEUE_NODE_GRACE_MS", grace.to_string());
        }
        let child = command
            .arg(dir.join("jobs.db"))
            .arg(dir.join("log.txt"))
            .arg(name)
            .arg(lease_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("queue-stress-node starts");
        Node {
            name: name.to_owned(),
            dir: dir.to_owned(),
            child,
            killed_at_us: None,
        }
    }

    /// SIGKILL, and reaped: it runs nothing from the returned moment on.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed_at_us.get_or_insert_with(now_us);
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// SIGINT: the node shuts down (hands back what runs, stores every outcome) and
    /// exits; waits up to `within` for it.
    async fn shut_down(&mut self, within: Duration) {
        self.interrupt().await;
        self.exited(within).await;
    }

    /// SIGINT, once the node is ready for it: it starts shutting down.
    async fn interrupt(&self) {
        let ready = Deadline::new(
            Duration::from_secs(10),
            format!("node {} to be ready", self.name),
        );
        while !self
            .dir
            .join(format!("log.txt.{}.ready", self.name))
            .exists()
        {
            ready.tick().await;
        }
        self.signal("INT");
    }

    /// Waits up to `within` for the node to exit, successfully.
    async fn exited(&mut self, within: Duration) {
        let deadline = Deadline::new(within, format!("node {} to shut down", self.name));
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "node {} exited with {status}", self.name);
                return;
            }
            deadline.tick().await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polling with a deadline: `tick` fails the test once it has passed.
struct Deadline {
    at: Instant,
    what: String,
}

impl Deadline {
    fn new(within: Duration, what: impl Into<String>) -> Self {
        Self {
            at: Instant::now() + within,
            what: what.into(),
        }
    }

    fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    async fn tick(&self) {
        assert!(
            Instant::now() < self.at,
            "timed out waiting for {}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One line of the side-effect log: `<what> <id> <attempt> <node> <µs>`.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    what: String,
    id: String,
    attempt: u32,
    node: String,
    at_us: u64,
}

fn read_log(dir: &Path) -> Vec<Line> {
    std::fs::read_to_string(dir.join("log.txt"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 5, "a torn log line: {line:?}");
            Line {
                what: f[0].to_owned(),
                id: f[1].to_owned(),
                attempt: f[2].parse().unwrap(),
                node: f[3].to_owned(),
                at_us: f[4].parse().unwrap(),
            }
        })
        .collect()
}

fn lines_of<'a>(log: &'a [Line], id: &str) -> Vec<&'a Line> {
    log.iter().filter(|line| line.id == id).collect()
}

/// The `(what, attempt, node)` of each line: what a scenario's log should say, in order.
fn summary(lines: &[&Line]) -> Vec<(String, u32, String)> {
    lines
        .iter()
        .map(|l| (l.what.clone(), l.attempt, l.node.clone()))
        .collect()
}

fn entry(what: &str, attempt: u32, node: &str) -> (String, u32, String) {
    (what.to_owned(), attempt, node.to_owned())
}

/// The test's own side of the file: it enqueues, cancels and reads, and runs nothing.
async fn client(dir: &Path) -> (WorkerRegistry, SqliteQueue) {
    let workers = WorkerRegistry::new();
    for name in ["chaos", "capped", "slow", "fails-once-cancelled"] {
        // The nodes run them; here they only need to exist for `enqueue`.
        workers
            .register(name, |_ctx| async { Ok(()) })
            .await
            .unwrap();
    }
    let store = SqliteQueue::open(dir.join("jobs.db")).unwrap();
    workers
        .use_queue_with(store.clone(), QueueOptions::new().runs_jobs(false))
        .unwrap();
    (workers, store)
}

/// Every job of `worker` in the store.
async fn all_jobs(store: &SqliteQueue, worker: &str) -> Vec<JobRecord> {
    let mut jobs = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list(JobFilter {
                worker: Some(worker.to_owned()),
                limit: JobFilter::MAX_LIMIT,
                before_id,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        jobs.extend(page.jobs);
        match page.next {
            Some(next) => before_id = Some(next),
            None => return jobs,
        }
    }
}

/// How many jobs of `worker` are finished, and how many there are.
async fn finished(store: &SqliteQueue, worker: &str) -> (u64, u64) {
    let counts = store.counts().await.unwrap();
    let of = counts.iter().filter(|(w, _, _)| w == worker);
    let done = of.clone().filter(|(_, s, _)| s.is_finished()).map(|c| c.2);
    (done.sum(), of.map(|c| c.2).sum())
}

fn is_lost(error: &JobError) -> bool {
    error.error.starts_with("lease expired")
}

// ---- 1. random kills under load ------------------------------------------------------

const JOBS: usize = 600;
/// How long nodes are killed and started again.
const CHAOS: Duration = Duration::from_secs(12);
/// Long enough that no healthy node loses a lease on two busy cores (heartbeats come
/// every second), short enough that a killed node's jobs come back within the test.
const CHAOS_LEASE_MS: u64 = 3000;
/// Each attempt's timeout for jobs of kind `timeout`.
const JOB_TIMEOUT: Duration = Duration::from_millis(500);
const RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Fail,
    Panic,
    Timeout,
    Cancel,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Panic => "panic",
            Kind::Timeout => "timeout",
            Kind::Cancel => "cancel",
        }
    }
}

/// What the test asked of one job.
#[derive(Debug, Clone)]
struct Plan {
    kind: Kind,
    /// Attempts up to this one misbehave as `kind` says.
    bad_until: u32,
    /// When the test cancels it, after the chaos began (kind `cancel` only).
    cancel_at: Option<Duration>,
    /// Whether the test's cancel was taken (`Ok`) or found it finished already.
    cancelled: Option<bool>,
}

fn plan(rng: &mut Rng) -> (Plan, Value, JobOptions) {
    let kind = match rng.below(100) {
        0..40 => Kind::Ok,
        40..57 => Kind::Fail,
        57..72 => Kind::Panic,
        72..87 => Kind::Timeout,
        87..92 => Kind::Cancel,
        _ => Kind::Ok,
    };
    let bad_until = match kind {
        Kind::Fail => 1 + rng.below(5) as u32,
        Kind::Panic | Kind::Timeout => 1 + rng.below(2) as u32,
        Kind::Ok | Kind::Cancel => 0,
    };
    let ms = match kind {
        Kind::Timeout => 10,
        _ => 20 + rng.below(280),
    };
    let mut options = JobOptions::new().retries(RETRIES);
    if kind == Kind::Timeout {
        options = options.timeout(JOB_TIMEOUT);
    }
    if rng.below(100) < 15 {
        options = options.delay(Duration::from_millis(200 + rng.below(5800)));
    }
    let cancel_at = (kind == Kind::Cancel).then(|| Duration::from_millis(rng.below(8000)));
    let tail_ms = if rng.below(100) < 30 {
        20 + rng.below(80)
    } else {
        0
    };
    let payload = json!({
        "kind": kind.name(), "ms": ms, "bad_until": bad_until, "tail_ms": tail_ms,
    });
    let plan = Plan {
        kind,
        bad_until,
        cancel_at,
        cancelled: None,
    };
    (plan, payload, options)
}

/// What one job's record and log lines tell, checked against its plan.
#[derive(Default)]
struct Verdict {
    problems: Vec<String>,
    lost: usize,
    /// Attempts that did their side effect (a `done` line) but whose process was killed
    /// before the outcome was stored, the one case a job may be done twice: after the
    /// handler returned (an `end` line), or in its tail.
    ran_twice: (usize, usize),
}

/// Checks one job: its final state is the one its kind and its lost attempts call for,
/// each attempt is counted and started once, a `done` line stands for the stored
/// completion or for an attempt whose process was killed before its outcome was stored,
/// and no two processes ran it at the same time.
fn check_job(
    record: &JobRecord,
    plan: &Plan,
    lines: &[&Line],
    killed: &HashMap<String, u64>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);
    let n_max = record.attempt;

    let mut errors: BTreeMap<u32, &JobError> = BTreeMap::new();
    for error in &record.errors {
        if errors.insert(error.attempt, error).is_some() || error.attempt > n_max {
            problem(format!("error {error:?} is not one per counted attempt"));
        }
    }
    let mut starts: BTreeMap<u32, &Line> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.what == "start") {
        if starts.insert(line.attempt, line).is_some() {
            problem(format!("attempt {} started twice", line.attempt));
        }
        if line.attempt == 0 || line.attempt > n_max {
            problem(format!("attempt {} started, not counted", line.attempt));
        }
    }
    let was_killed = |node: &str| killed.contains_key(node);
    let lost = |n: u32| errors.get(&n).is_some_and(|e| is_lost(e));

    // Replays the attempts as the docs describe them; `end` is where the job stops.
    let mut end = None;
    for n in 1..=n_max {
        if let Some(state) = end {
            problem(format!("attempt {n} after the job was {state:?}"));
            break;
        }
        if lost(n) {
            verdict.lost += 1;
            let error = &errors[&n].error;
            if let Some(start) = starts.get(&n) {
                if !was_killed(&start.node) {
                    problem(format!(
                        "attempt {n} lost its lease in node {}, which was never killed",
                        start.node
                    ));
                }
            }
            if error.contains("cancel was requested") {
                end = Some(JobState::Cancelled);
            } else if n >= record.max_attempts + LOST_ATTEMPTS_ALLOWED {
                end = Some(JobState::Discarded);
            }
            continue;
        }
        if !starts.contains_key(&n) {
            problem(format!("attempt {n} counted, never started, not lost"));
        }
        let error = errors.get(&n).map(|e| e.error.as_str());
        let misbehaves = n <= plan.bad_until;
        match (plan.kind, misbehaves) {
            (Kind::Cancel, _) => match error {
                Some(e) if e.contains("was cancelled") => end = Some(JobState::Cancelled),
                other => problem(format!("attempt {n} of a cancel job ended with {other:?}")),
            },
            (Kind::Fail | Kind::Panic | Kind::Timeout, true) => {
                let expected = match plan.kind {
                    Kind::Fail => "failed on purpose",
                    Kind::Panic => "panicked on purpose",
                    _ => "timed out after",
                };
                match error {
                    Some(e) if e.contains(expected) => {
                        if n >= record.max_attempts {
                            end = Some(JobState::Discarded);
                        }
                    }
                    other => problem(format!("attempt {n} should fail ({expected}): {other:?}")),
                }
            }
            _ => {
                if let Some(e) = error {
                    problem(format!("attempt {n} should succeed, failed: {e}"));
                }
                end = Some(JobState::Completed);
            }
        }
    }
    let expected = match (end, plan.kind, plan.cancelled) {
        (Some(state), _, _) => state,
        // Cancelled while it waited (for its due time, or to be run again).
        (None, Kind::Cancel, Some(true)) => JobState::Cancelled,
        (None, _, _) => {
            problem("the job should still be waiting, yet it finished".to_owned());
            record.state
        }
    };
    if record.state != expected {
        problem(format!("ended {:?}, expected {expected:?}", record.state));
    }
    match plan.cancelled {
        Some(true) if expected != JobState::Cancelled => {
            problem("the test's cancel was taken, yet it was not cancelled".to_owned());
        }
        // The cancel came after the job had been discarded, for lost attempts.
        Some(false) if expected != JobState::Discarded => {
            problem(format!(
                "the test's cancel was refused, yet it ended {expected:?}"
            ));
        }
        _ => {}
    }
    // Cancelled while held ahead of a free slot (claimed, never started): that claim is
    // not an attempt, as for a job cancelled while it waited.
    let cancelled_unstarted = end.is_none()
        && record.state == JobState::Cancelled
        && record.epoch == u64::from(record.attempt) + 1;
    if u64::from(record.attempt) != record.epoch && !cancelled_unstarted {
        problem(format!(
            "{} attempts counted for {} claims",
            record.attempt, record.epoch
        ));
    }

    // At most once, but for a kill between the handler's end and the stored outcome.
    let mut dones: BTreeMap<u32, &Line> = BTreeMap::new();
    for done in lines.iter().filter(|l| l.what == "done") {
        if dones.insert(done.attempt, done).is_some() {
            problem(format!("attempt {} done twice", done.attempt));
        }
        let stored_completion = record.state == JobState::Completed && done.attempt == n_max;
        if lost(done.attempt) && was_killed(&done.node) {
            let returned = lines
                .iter()
                .any(|l| l.what == "end" && l.attempt == done.attempt && l.node == done.node);
            if returned {
                verdict.ran_twice.0 += 1;
            } else {
                verdict.ran_twice.1 += 1;
            }
        } else if !stored_completion {
            problem(format!(
                "attempt {} was done in node {}, yet its outcome is not the stored one",
                done.attempt, done.node
            ));
        }
    }
    if record.state == JobState::Completed && !dones.contains_key(&n_max) {
        problem(format!("completed, but attempt {n_max} was never done"));
    }

    // Never in two processes at once: each run lasts from its start to its end line, or
    // to its process's death.
    let runs: Vec<(&Line, u64)> = starts
        .values()
        .map(|start| {
            let end = lines
                .iter()
                .find(|l| l.what == "end" && l.attempt == start.attempt && l.node == start.node)
                .map(|l| l.at_us)
                .or_else(|| killed.get(&start.node).copied());
            if end.is_none() {
                problem(format!(
                    "attempt {} in node {} never ended",
                    start.attempt, start.node
                ));
            }
            (*start, end.unwrap_or(u64::MAX))
        })
        .collect();
    for (i, (a, a_end)) in runs.iter().enumerate() {
        for (b, b_end) in &runs[i + 1..] {
            if a.node != b.node && a.at_us < *b_end && b.at_us < *a_end {
                problem(format!(
                    "attempts {} (node {}) and {} (node {}) ran at the same time",
                    a.attempt, a.node, b.attempt, b.node
                ));
            }
        }
    }
    verdict.problems = problems;
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_under_load_lose_nothing_and_run_each_job_as_the_docs_say() {
    let _serial = SERIAL.lock().await;
    let seed = std::env::var("RUSTF_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_us() | 1);
    println!("random_kills_under_load: seed {seed} (replay with RUSTF_STRESS_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;

    let planned: Vec<(Plan, Value, JobOptions)> = (0..JOBS).map(|_| plan(&mut rng)).collect();
    let ids = workers
        .enqueue_many(
            planned
                .iter()
                .map(|(_, payload, options)| ("chaos", Some(payload.clone()), options.clone())),
        )
        .await
        .unwrap();
    let mut plans: HashMap<String, Plan> = ids
        .iter()
        .cloned()
        .zip(planned.into_iter().map(|(plan, _, _)| plan))
        .collect();
    let mut cancels: Vec<(Duration, String)> = plans
        .iter()
        .filter_map(|(id, plan)| plan.cancel_at.map(|at| (at, id.clone())))
        .collect();
    cancels.sort();
    cancels.reverse(); // popped from the end, earliest first

    let mut started = 0;
    let mut next_node = || {
        started += 1;
        format!("n{started}")
    };
    let mut nodes = [
        Node::start(dir.path(), &next_node(), CHAOS_LEASE_MS),
        Node::start(dir.path(), &next_node(), CHAOS_LEASE_MS),
    ];
    let mut dead: Vec<Node> = Vec::new();
    let begun = Instant::now();
    let mut next_kill = Duration::from_millis(300 + rng.below(1200));
    while begun.elapsed() < CHAOS {
        while cancels.last().is_some_and(|(at, _)| *at <= begun.elapsed()) {
            let (_, id) = cancels.pop().unwrap();
            let taken = workers.cancel(&id).await.is_ok();
            plans.get_mut(&id).unwrap().cancelled = Some(taken);
        }
        if next_kill <= begun.elapsed() {
            let slot = rng.below(2) as usize;
            let fresh = Node::start(dir.path(), &next_node(), CHAOS_LEASE_MS);
            let mut victim = std::mem::replace(&mut nodes[slot], fresh);
            victim.kill();
            dead.push(victim);
            next_kill = begun.elapsed() + Duration::from_millis(300 + rng.below(1200));
        }
        let next_cancel = cancels.last().map_or(CHAOS, |(at, _)| *at);
        let wake = next_kill.min(next_cancel).min(CHAOS);
        // Pacing the plan, not waiting for an outcome.
        tokio::time::sleep(wake.saturating_sub(begun.elapsed())).await;
    }
    for (_, id) in cancels.drain(..) {
        let taken = workers.cancel(&id).await.is_ok();
        plans.get_mut(&id).unwrap().cancelled = Some(taken);
    }

    // The survivors finish everything, then shut down: their log is then complete.
    let deadline = Deadline::new(
        Duration::from_secs(30),
        format!("every job to finish (seed {seed})"),
    );
    while finished(&store, "chaos").await != (JOBS as u64, JOBS as u64) {
        if deadline.passed() {
            let waiting: Vec<JobRecord> = all_jobs(&store, "chaos")
                .await
                .into_iter()
                .filter(|job| !job.state.is_finished())
                .collect();
            panic!(
                "seed {seed}: {} jobs never finished, the first: {:?}\ncounts: {:?}",
                waiting.len(),
                &waiting[..waiting.len().min(3)],
                store.counts().await.unwrap()
            );
        }
        deadline.tick().await;
    }
    let chaos_took = begun.elapsed();
    for node in &mut nodes {
        node.shut_down(Duration::from_secs(10)).await;
    }

    let killed: HashMap<String, u64> = dead
        .iter()
        .map(|node| (node.name.clone(), node.killed_at_us.unwrap()))
        .collect();
    let log = read_log(dir.path());
    let jobs = all_jobs(&store, "chaos").await;
    assert_eq!(jobs.len(), JOBS, "seed {seed}: jobs lost from the store");
    let mut problems = Vec::new();
    let (mut lost, mut returned, mut in_tail) = (0, 0, 0);
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        let lines = lines_of(&log, &job.id);
        let verdict = check_job(job, &plans[&job.id], &lines, &killed);
        lost += verdict.lost;
        returned += verdict.ran_twice.0;
        in_tail += verdict.ran_twice.1;
        *by_state.entry(format!("{:?}", job.state)).or_default() += 1;
        for text in verdict.problems {
            problems.push(format!(
                "job {} ({:?}): {text}\n    record: {job:?}\n    log: {:?}",
                job.id,
                plans[&job.id],
                summary(&lines)
            ));
        }
    }
    let orphans = log.iter().filter(|l| !plans.contains_key(&l.id)).count();
    assert_eq!(
        orphans, 0,
        "seed {seed}: log lines of jobs not in the store"
    );
    println!(
        "{JOBS} jobs, {} runs, {} nodes killed, {lost} attempts lost; done, then killed \
         before the outcome was stored: {returned} after the handler returned, {in_tail} \
         in its tail; {by_state:?}; {chaos_took:?}",
        log.iter().filter(|l| l.what == "start").count(),
        killed.len(),
    );
    assert!(
        problems.is_empty(),
        "seed {seed} (replay with RUSTF_STRESS_SEED={seed}): {} problems, the first:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    assert!(
        killed.len() >= 5,
        "seed {seed}: only {} kills",
        killed.len()
    );
    assert!(lost > 0, "seed {seed}: no kill caught a job running");
}

// ---- 2. queued behind a concurrency cap when the process died ------------------------

/// The lease of a node the test kills or stops: short, so that its jobs come back soon.
const VICTIM_LEASE_MS: u64 = 600;
/// The lease of the node that takes over: long enough that it never loses one on two
/// busy cores (a heartbeat every 500 ms), short enough that it rescues often (it looks
/// for expired leases once a lease).
const SURVIVOR_LEASE_MS: u64 = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_waiting_behind_a_concurrency_cap_when_the_process_died_run_once_after_the_restart() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;
    // The first is claimed first (same due time, enqueued first) and takes a minute on
    // its first attempt, to be killed meanwhile; the others wait behind the cap of 1.
    let mut jobs = vec![(
        "capped",
        Some(json!({ "ms": [60_000, 100] })),
        JobOptions::new(),
    )];
    jobs.extend((0..4).map(|_| ("capped", Some(json!({ "ms": [100] })), JobOptions::new())));
    let ids = workers.enqueue_many(jobs).await.unwrap();
    let (first, rest) = (&ids[0], &ids[1..]);

    let mut a = Node::start(dir.path(), "a", VICTIM_LEASE_MS);
    let deadline = Deadline::new(Duration::from_secs(10), "the first job to start");
    while !read_log(dir.path())
        .iter()
        .any(|l| l.what == "start" && &l.id == first)
    {
        deadline.tick().await;
    }
    for id in rest {
        let job = store.get(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.attempt),
            (JobState::Available, 0),
            "behind the cap: {job:?}"
        );
    }
    a.kill();
    let running = store.get(first).await.unwrap().unwrap();
    assert_eq!((running.state, running.attempt), (JobState::Running, 1));

    let mut b = Node::start(dir.path(), "b", SURVIVOR_LEASE_MS);
    let deadline = Deadline::new(Duration::from_secs(20), "every job to complete");
    while finished(&store, "capped").await != (5, 5) {
        deadline.tick().await;
    }
    b.shut_down(Duration::from_secs(10)).await;

    let log = read_log(dir.path());
    assert_eq!(
        summary(&lines_of(&log, first)),
        [
            entry("start", 1, "a"),
            entry("start", 2, "b"),
            entry("done", 2, "b"),
            entry("end", 2, "b"),
        ],
        "{log:?}"
    );
    let job = store.get(first).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Completed, 2),
        "{job:?}"
    );
    assert!(job.errors.len() == 1 && is_lost(&job.errors[0]), "{job:?}");
    for id in rest {
        assert_eq!(
            summary(&lines_of(&log, id)),
            [
                entry("start", 1, "b"),
                entry("done", 1, "b"),
                entry("end", 1, "b")
            ],
            "{log:?}"
        );
        let job = store.get(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.attempt),
            (JobState::Completed, 1),
            "{job:?}"
        );
        assert!(job.errors.is_empty(), "{job:?}");
    }
    // The cap held in the new process too: one run at a time (a run's `done` comes before
    // its slot is given back; its `end` may come after the next run's `start`).
    let mut open = 0;
    for line in log.iter().filter(|l| l.node == "b") {
        match line.what.as_str() {
            "start" => open += 1,
            "done" => open -= 1,
            _ => {}
        }
        assert!(open <= 1, "two capped runs at once: {log:?}");
    }
}

// ---- 3. a node stopped past its lease ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_past_its_lease_is_refused_its_late_outcome_and_its_run_is_cancelled() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;
    let mut a = Node::start(dir.path(), "a", VICTIM_LEASE_MS);
    // Ten seconds in A, so that A is still in it when it wakes; quick in B.
    let id = workers
        .enqueue("slow", Some(json!({ "ms": [10_000, 200] })))
        .await
        .unwrap();
    let deadline = Deadline::new(Duration::from_secs(10), "A to start the job");
    while !read_log(dir.path()).iter().any(|l| l.what == "start") {
        deadline.tick().await;
    }
    a.signal("STOP");

    let mut b = Node::start(dir.path(), "b", SURVIVOR_LEASE_MS);
    let deadline = Deadline::new(Duration::from_secs(15), "B to rescue and complete it");
    while store.get(&id).await.unwrap().unwrap().state != JobState::Completed
        || !read_log(dir.path())
            .iter()
            .any(|l| l.what == "end" && l.node == "b")
    {
        deadline.tick().await;
    }
    let by_b = store.get(&id).await.unwrap().unwrap();
    assert_eq!((by_b.attempt, by_b.epoch), (2, 2), "{by_b:?}");
    assert!(
        by_b.errors.len() == 1 && is_lost(&by_b.errors[0]) && by_b.errors[0].attempt == 1,
        "{by_b:?}"
    );
    assert_eq!(
        summary(&lines_of(&read_log(dir.path()), &id)),
        [
            entry("start", 1, "a"),
            entry("start", 2, "b"),
            entry("done", 2, "b"),
            entry("end", 2, "b"),
        ]
    );

    // A wakes to a lease it lost: its next heartbeat stops its run, whose outcome the
    // store refuses. Shutting A down waits until every outcome of A is stored (or refused).
    a.signal("CONT");
    let deadline = Deadline::new(Duration::from_secs(15), "A's run to end");
    while !read_log(dir.path())
        .iter()
        .any(|l| l.what == "end" && l.node == "a")
    {
        deadline.tick().await;
    }
    a.shut_down(Duration::from_secs(10)).await;
    b.shut_down(Duration::from_secs(10)).await;
    assert_eq!(
        summary(&lines_of(&read_log(dir.path()), &id)),
        [
            entry("start", 1, "a"),
            entry("start", 2, "b"),
            entry("done", 2, "b"),
            entry("end", 2, "b"),
            entry("end", 1, "a"),
        ],
        "A's run was cancelled, not done"
    );
    let after = store.get(&id).await.unwrap().unwrap();
    assert_eq!(after, by_b, "the stored record is still B's completion");
}

// ---- 4. a cancel asked while a job runs ----------------------------------------------

/// `cancel(id)` of a running job is stored for its owner to act on at its next
/// heartbeat. An attempt that fails before that heartbeat must not make the job run again
/// as if nobody had asked: the cancel was answered `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_while_a_job_runs_is_not_forgotten_when_the_attempt_then_fails() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;
    // Heartbeats every second: the attempt fails well before the next one.
    let mut a = Node::start(dir.path(), "a", 3000);
    let id = workers
        .enqueue_with("fails-once-cancelled", None, JobOptions::new().retries(3))
        .await
        .unwrap();
    let deadline = Deadline::new(Duration::from_secs(10), "the job to start");
    while !read_log(dir.path()).iter().any(|l| l.what == "start") {
        deadline.tick().await;
    }
    workers
        .cancel(&id)
        .await
        .expect("a running job's cancel is taken");

    let deadline = Deadline::new(Duration::from_secs(10), "the job to finish");
    while !store.get(&id).await.unwrap().unwrap().state.is_finished() {
        deadline.tick().await;
    }
    a.shut_down(Duration::from_secs(10)).await;
    let job = store.get(&id).await.unwrap().unwrap();
    let log = summary(&lines_of(&read_log(dir.path()), &id));
    assert_eq!(
        (job.state, job.attempt),
        (JobState::Cancelled, 1),
        "cancelled, yet run again: {log:?}\n{job:?}"
    );
    assert_eq!(log, [entry("start", 1, "a"), entry("end", 1, "a")]);
}

/// The same cancel, when the owner shuts down before its next heartbeat and its grace
/// period ends before the job does: the job must not be handed back to run again
/// elsewhere (it is not: shutdown's last heartbeat acts on the cancel first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_while_a_job_runs_is_not_forgotten_when_shutdown_hands_the_job_back() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;
    // A heartbeat every 10 s, a grace period of 50 ms: shutdown hands the job back long
    // before A's heartbeat could see the cancel.
    let mut a = Node::start_with(dir.path(), "a", 30_000, Some(50));
    let id = workers
        .enqueue("slow", Some(json!({ "ms": [60_000, 100] })))
        .await
        .unwrap();
    let deadline = Deadline::new(Duration::from_secs(10), "the job to start");
    while !read_log(dir.path()).iter().any(|l| l.what == "start") {
        deadline.tick().await;
    }
    workers
        .cancel(&id)
        .await
        .expect("a running job's cancel is taken");
    a.shut_down(Duration::from_secs(10)).await;
    let handed_back = store.get(&id).await.unwrap().unwrap();

    // A job handed back would start again in B (as its attempt 1, a minute long).
    let mut b = Node::start_with(dir.path(), "b", SURVIVOR_LEASE_MS, Some(50));
    let deadline = Deadline::new(Duration::from_secs(10), "the job to finish");
    while !store.get(&id).await.unwrap().unwrap().state.is_finished()
        && !read_log(dir.path()).iter().any(|l| l.node == "b")
    {
        deadline.tick().await;
    }
    b.shut_down(Duration::from_secs(10)).await;
    let job = store.get(&id).await.unwrap().unwrap();
    let log = summary(&lines_of(&read_log(dir.path()), &id));
    assert_eq!(
        job.state,
        JobState::Cancelled,
        "cancelled, yet run again: {log:?}\nafter A's shutdown: {handed_back:?}\nat the end: {job:?}"
    );
    assert_eq!(log, [entry("start", 1, "a"), entry("end", 1, "a")]);
}

/// The same cancel, asked while the owner is shutting down, after the heartbeat that
/// shutdown starts with and before its grace period ends: the job is handed back to the
/// store, and the next process must not run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_during_the_owners_shutdown_grace_is_not_forgotten_when_it_hands_the_job_back(
) {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (workers, store) = client(dir.path()).await;
    // A heartbeat every 10 s, a grace period of 1 s: no heartbeat comes between the
    // cancel and the hand-back.
    let mut a = Node::start_with(dir.path(), "a", 30_000, Some(1000));
    let id = workers
        .enqueue("slow", Some(json!({ "ms": [60_000, 100] })))
        .await
        .unwrap();
    let deadline = Deadline::new(Duration::from_secs(10), "the job to start");
    while !read_log(dir.path()).iter().any(|l| l.what == "start") {
        deadline.tick().await;
    }
    a.interrupt().await;
    // Pacing, into the grace period: past shutdown's first heartbeat, well before its end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    workers
        .cancel(&id)
        .await
        .expect("a running job's cancel is taken");
    let asked = store.get(&id).await.unwrap().unwrap();
    assert_eq!(asked.state, JobState::Running, "{asked:?}");
    a.exited(Duration::from_secs(10)).await;
    let handed_back = store.get(&id).await.unwrap().unwrap();

    // A job handed back would start again in B (as its attempt 1, a minute long).
    let mut b = Node::start_with(dir.path(), "b", SURVIVOR_LEASE_MS, Some(50));
    let deadline = Deadline::new(Duration::from_secs(10), "the job to finish");
    while !store.get(&id).await.unwrap().unwrap().state.is_finished()
        && !read_log(dir.path()).iter().any(|l| l.node == "b")
    {
        deadline.tick().await;
    }
    b.shut_down(Duration::from_secs(10)).await;
    let job = store.get(&id).await.unwrap().unwrap();
    let log = summary(&lines_of(&read_log(dir.path()), &id));
    assert_eq!(
        job.state,
        JobState::Cancelled,
        "cancelled, yet run again: {log:?}\nafter A's shutdown: {handed_back:?}\nat the end: {job:?}"
    );
    assert_eq!(log, [entry("start", 1, "a"), entry("end", 1, "a")]);
}
