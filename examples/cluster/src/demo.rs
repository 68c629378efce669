//! The scripted demo: a client against node a's own server, over HTTP, watching the work
//! spread over both nodes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustf_workers::prelude::*;
use rustf_workers::queue::{JobRecord, JobState, NodeRecord, NodeStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any one step may take before the demo gives up.
const STEP: Duration = Duration::from_secs(15);
/// Batches of signups posted, and emails in each.
const BATCHES: usize = 3;
const PER_BATCH: usize = 8;

/// Waits for node b (process `b_pid`) to join, posts the signups, follows their jobs to
/// `completed`, and prints who sent what and the node list.
///
/// # Errors
///
/// A step that failed or took longer than [`STEP`]; a job that did not complete.
pub(crate) async fn run(addr: SocketAddr, b_pid: u32) -> Result<()> {
    let client = Client(addr);

    println!("\n1. Node b joins: it registers as a node of the database when its queue starts");
    let nodes = client
        .until("node b in GET /admin/workers/nodes", |client| async move {
            let nodes = client.nodes().await?;
            let joined = find_pid(&nodes, b_pid).is_some_and(|b| b.status != NodeStatus::Offline);
            Ok(joined.then_some(nodes))
        })
        .await?;
    print_nodes(&nodes, b_pid, &HashMap::new());

    println!("\n2. The controller on node a stores welcome emails, a batch per request");
    let mut ids = Vec::new();
    for batch in 0..BATCHES {
        let emails: Vec<String> = (1..=PER_BATCH)
            .map(|n| format!("user{}@example.com", batch * PER_BATCH + n))
            .collect();
        let (status, reply) = client
            .post("/signups", &json!({ "emails": emails }))
            .await?;
        let stored: Vec<String> = serde_json::from_value(reply["ids"].clone()).unwrap_or_default();
        if status != 202 || stored.len() != PER_BATCH {
            return Err(Error::internal(format!(
                "POST /signups answered {status} {reply}"
            )));
        }
        println!(
            "   POST /signups {{\"emails\": [{} addresses]}} -> {status}, {} job ids",
            emails.len(),
            stored.len()
        );
        ids.extend(stored);
    }

    println!("\n3. Both nodes claim them (FOR UPDATE SKIP LOCKED), woken by NOTIFY");
    let started = Instant::now();
    let jobs = client.finished(&ids).await?;
    let completed = jobs
        .iter()
        .filter(|job| job.state == JobState::Completed)
        .count();
    println!(
        "   GET /admin/workers/jobs/{{id}} -> {completed} of {} completed in {} ms",
        jobs.len(),
        started.elapsed().as_millis()
    );
    if let Some(job) = jobs.iter().find(|job| job.state != JobState::Completed) {
        return Err(Error::internal(format!(
            "job {} is {}: {:?}",
            job.id,
            job.state.as_str(),
            job.errors
        )));
    }

    println!("\n4. Who sent what: each job's checkpoint names the node that sent its email");
    // Both named even when one sent nothing; a node started by hand counts under its name.
    let mut sent: BTreeMap<String, usize> = ["a", "b"].map(|n| (n.to_owned(), 0)).into();
    let mut names = HashMap::new();
    for job in &jobs {
        let checkpoint = job.checkpoint.as_ref().unwrap_or(&Value::Null);
        let node = checkpoint["sent_by"].as_str().unwrap_or("?").to_owned();
        if let Some(id) = checkpoint["node_id"].as_str() {
            names.insert(id.to_owned(), node.clone());
        }
        *sent.entry(node).or_default() += 1;
    }
    for (node, count) in &sent {
        println!(
            "   node {node} sent {count} of {} welcome emails",
            jobs.len()
        );
    }

    println!("\n5. The nodes, as GET /admin/workers/nodes lists them");
    print_nodes(&client.nodes().await?, b_pid, &names);
    println!();
    Ok(())
}

/// The newest node with process id `pid` on this node's machine: node b.
pub(crate) fn find_pid(nodes: &[NodeRecord], pid: u32) -> Option<&NodeRecord> {
    let own = WORKER::registry().node_id();
    let host = nodes
        .iter()
        .find(|node| Some(&node.node.id) == own.as_ref())
        .map(|node| node.node.host.as_str());
    nodes.iter().find(|node| {
        node.node.pid == pid
            && Some(&node.node.id) != own.as_ref()
            && host.is_none_or(|host| node.node.host == host)
    })
}

/// Prints the nodes that are not offline, named `a` (this one), `b`, or as `names` (a
/// node id to the name its jobs' checkpoints give); then how many are offline (stopped,
/// or gone silent: earlier runs on the same database).
fn print_nodes(nodes: &[NodeRecord], b_pid: u32, names: &HashMap<String, String>) {
    let own = WORKER::registry().node_id();
    let b = find_pid(nodes, b_pid).map(|node| node.node.id.clone());
    let name = |node: &NodeRecord| -> String {
        if Some(&node.node.id) == own.as_ref() {
            "a".to_owned()
        } else if Some(&node.node.id) == b.as_ref() {
            "b".to_owned()
        } else {
            names
                .get(&node.node.id)
                .cloned()
                .unwrap_or_else(|| "?".to_owned())
        }
    };
    let live: Vec<&NodeRecord> = nodes
        .iter()
        .filter(|node| node.status != NodeStatus::Offline)
        .collect();
    for node in &live {
        println!(
            "   node {}: {} on {}, pid {}, {}, {}/{} jobs running at its last beat",
            name(node),
            node.node.id,
            node.node.host,
            node.node.pid,
            node.status.as_str(),
            node.running,
            node.node.concurrency
        );
    }
    let offline = nodes.len() - live.len();
    if offline > 0 {
        println!("   ({offline} offline: stopped or silent, from earlier runs)");
    }
}

/// An HTTP/1.1 client for JSON, one connection per request.
#[derive(Clone, Copy)]
struct Client(SocketAddr);

impl Client {
    async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.request("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.request("POST", path, Some(body)).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = tokio::net::TcpStream::connect(self.0).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.0,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| Error::internal(format!("not an HTTP response: {text:?}")))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| Error::internal(format!("no status in {head:?}")))?;
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// `GET /admin/workers/nodes`: every node of the database, newest first.
    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let (status, nodes) = self.get("/admin/workers/nodes").await?;
        serde_json::from_value(nodes.clone())
            .map_err(|err| Error::internal(format!("GET /nodes answered {status} {nodes}: {err}")))
    }

    /// `GET /admin/workers/jobs/{id}`: the job as stored.
    async fn job(&self, id: &str) -> Result<JobRecord> {
        let (status, job) = self.get(&format!("/admin/workers/jobs/{id}")).await?;
        serde_json::from_value(job.clone()).map_err(|err| {
            Error::internal(format!("GET /jobs/{id} answered {status} {job}: {err}"))
        })
    }

    /// Jobs `ids`, in order, once every one of them is finished.
    async fn finished(&self, ids: &[String]) -> Result<Vec<JobRecord>> {
        let mut done: HashMap<&str, JobRecord> = HashMap::new();
        let deadline = Instant::now() + STEP;
        loop {
            for id in ids {
                if !done.contains_key(id.as_str()) {
                    let job = self.job(id).await?;
                    if job.state.is_finished() {
                        done.insert(id, job);
                    }
                }
            }
            if done.len() == ids.len() {
                return Ok(ids
                    .iter()
                    .filter_map(|id| done.remove(id.as_str()))
                    .collect());
            }
            if Instant::now() > deadline {
                return Err(Error::timeout(format!(
                    "waited {STEP:?} for {} of {} jobs to finish",
                    ids.len() - done.len(),
                    ids.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks `check` every 50 ms until it answers, for at most [`STEP`].
    async fn until<T, F, Fut>(&self, what: &str, check: F) -> Result<T>
    where
        F: Fn(Self) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(found) = check(*self).await? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(Error::timeout(format!("waited {STEP:?} for {what}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
