//! The scripted demo: a client against the application's own server, over HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustf_workers::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any one step may take before the demo gives up.
const STEP: Duration = Duration::from_secs(10);

/// Signs up two users through the controller and follows their jobs, waits for a cron
/// tick of `digest` and for the daemon `counter` (job `counter`) to save checkpoints.
/// `started_ms` is when this process started, on the queue's clock.
pub(crate) async fn run(addr: SocketAddr, counter: &str, started_ms: i64) -> Result<()> {
    let client = Client(addr);

    println!("\n1. A controller enqueues: the job is stored before the request is answered");
    let signup = json!({ "email": "ada@example.com" });
    let (status, reply) = client.post("/signups", &signup).await?;
    println!("   POST /signups {signup} -> {status} {reply}");
    let id = reply["id"].as_str().unwrap_or_default().to_owned();
    let (_, job) = client.get(&format!("/jobs/{id}")).await?;
    println!("   GET /jobs/{{id}} -> {}", text(&job["state"]));
    let job = client.finished(&id).await?;
    println!(
        "   GET /jobs/{{id}} -> {} after {} attempt(s)",
        text(&job["state"]),
        job["attempt"]
    );

    println!("\n2. A job that fails validation in its worker is discarded, not retried");
    let signup = json!({ "email": "not-an-address" });
    let (status, reply) = client.post("/signups", &signup).await?;
    println!("   POST /signups {signup} -> {status}");
    let job = client
        .finished(reply["id"].as_str().unwrap_or_default())
        .await?;
    println!(
        "   GET /jobs/{{id}} -> {}: {}",
        text(&job["state"]),
        text(&job["errors"][0]["error"])
    );
    let signup = json!({ "name": "no email" });
    let (status, reply) = client.post("/signups", &signup).await?;
    println!(
        "   POST /signups {signup} -> {status}, nothing stored: {}",
        text(&reply["error"]["message"])
    );

    println!("\n3. A cron worker: each tick of `*/3 * * * * *` is enqueued once per database");
    let ticks = client
        .until("two ticks of `digest`", |client| async move {
            let (_, page) = client
                .get("/admin/workers/jobs?worker=digest&state=completed")
                .await?;
            let mut ticks: Vec<Value> = page["jobs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|job| job["created_at_ms"].as_i64() >= Some(started_ms))
                .cloned()
                .collect();
            ticks.reverse(); // oldest first
            Ok((ticks.len() >= 2).then_some(Value::from(ticks)))
        })
        .await?;
    for tick in ticks.as_array().into_iter().flatten().take(2) {
        let second = tick["run_at_ms"].as_i64().unwrap_or(0) / 1000 % 60;
        println!(
            "   GET /admin/workers/jobs?worker=digest -> job {} due at :{second:02}, {}",
            text(&tick["id"]),
            text(&tick["state"])
        );
    }

    println!("\n4. A daemon job saves checkpoints as it goes");
    let path = format!("/jobs/{counter}");
    let (_, job) = client.get(&path).await?;
    let count = |job: &Value| job["checkpoint"]["count"].as_u64().unwrap_or(0);
    let from = count(&job);
    println!(
        "   GET /jobs/{{counter}} -> {}, checkpoint {}",
        text(&job["state"]),
        job["checkpoint"]
    );
    let job = client
        .until("three more checkpoints of `counter`", |client| {
            let path = path.clone();
            async move {
                let (_, job) = client.get(&path).await?;
                Ok((count(&job) >= from + 3).then_some(job))
            }
        })
        .await?;
    println!(
        "   GET /jobs/{{counter}} -> {}, checkpoint {}",
        text(&job["state"]),
        job["checkpoint"]
    );
    println!();
    Ok(())
}

/// A JSON string without its quotes.
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
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

    /// Job `id` once it is finished.
    async fn finished(&self, id: &str) -> Result<Value> {
        self.until("the job to finish", |client| async move {
            let (_, job) = client.get(&format!("/jobs/{id}")).await?;
            let finished = ["completed", "discarded", "cancelled"]
                .iter()
                .any(|state| job["state"] == *state);
            Ok(finished.then_some(job))
        })
        .await
    }

    /// Asks `check` every 50 ms until it answers, for at most [`STEP`].
    async fn until<F, Fut>(&self, what: &str, check: F) -> Result<Value>
    where
        F: Fn(Self) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>>>,
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
