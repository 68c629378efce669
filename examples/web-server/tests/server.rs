//! The web server as a real process on a free loopback port: driven over HTTP, then
//! stopped with SIGTERM while a worker is running and clients hold half-sent requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token";
const GRACE: Duration = Duration::from_millis(300);
/// How long past the grace period the server may take to exit: its one-second drain
/// margin, and slack for a loaded machine.
const EXIT_BOUND: Duration = Duration::from_secs(3);

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_web-server"))
            .args(["--port", "0"])
            .env("ADMIN_TOKEN", TOKEN)
            .env("SHUTDOWN_GRACE_MS", GRACE.as_millis().to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the web-server binary starts");

        // The log is read as it comes, so the pipe never fills.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });

        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        Self { child, port, log }
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }

    fn request(&self, method: &str, path: &str, body: &str, admin: bool) -> Reply {
        let mut stream = self.connect();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // The admin router also wants its CSRF header on requests that change things.
        let auth = if admin {
            format!("Authorization: Bearer {TOKEN}\r\nx-rustf-workers: 1\r\n")
        } else {
            String::new()
        };
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Reply::parse(&raw)
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, "", false)
    }

    fn admin(&self, method: &str, path: &str, body: &str) -> Reply {
        self.request(method, &format!("/admin/workers{path}"), body, true)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    chunked: bool,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Self {
            status,
            chunked,
            body,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts the status and that the body is a JSON error; returns its message.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        self.json()["error"]["message"].as_str().unwrap().to_owned()
    }

    /// The (event, data) pairs of a Server-Sent Events body.
    fn events(&self) -> Vec<(String, serde_json::Value)> {
        self.body
            .split("\n\n")
            .filter_map(|block| {
                let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
                let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                Some((event.to_owned(), serde_json::from_str(data).unwrap()))
            })
            .collect()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

#[test]
fn the_server_runs_workers_and_stops_cleanly_on_sigterm() {
    let server = Server::start();

    // The admin router is behind the application's own token.
    server.get("/admin/workers").error(401);
    let workers = server.admin("GET", "", "").json();
    let names: Vec<_> = workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["export", "generate-report", "send-email"]);

    // A controller that runs a worker and waits.
    let sent = server.request("POST", "/emails", r#"{"to": "ada@example.com"}"#, false);
    assert_eq!(
        (sent.status, sent.json()["status"].clone()),
        (200, "sent".into())
    );
    let message = server
        .request("POST", "/emails", r#"{"to": "not-an-address"}"#, false)
        .error(422);
    assert!(
        message.contains("`not-an-address` is not an email address"),
        "{message}"
    );
    let message = server
        .request("POST", "/emails", r#"{"subject": "no one"}"#, false)
        .error(422);
    assert!(message.contains("missing field `to`"), "{message}");
    server
        .request("POST", "/emails", "{ nope", false)
        .error(400);

    // A controller that starts a report and streams its progress to the end.
    let live = server.get("/reports/live?steps=3");
    assert_eq!(live.status, 200);
    assert!(live.chunked);
    let events = live.events();
    assert_eq!(events.len(), 4, "{}", live.body);
    for (step, (event, data)) in events[..3].iter().enumerate() {
        assert_eq!(event, "progress");
        assert_eq!(data["step"], step as u64 + 1);
    }
    assert_eq!(events[3].0, "done");
    assert_eq!(events[3].1["status"], "completed");
    let started = server.request("POST", "/reports", r#"{"steps": 2}"#, false);
    assert_eq!(started.status, 202, "{}", started.body);

    // Statistics and metrics from the mounted router.
    let email = server.admin("GET", "/send-email", "").json();
    assert_eq!(email["stats"]["runs"], 2);
    assert_eq!(email["stats"]["errors"], 1);
    let metrics = server.admin("GET", "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == r#"rustf_workers_runs_total{worker="send-email"} 2"#),
        "{}",
        metrics.body
    );

    // Starting and cancelling a run over HTTP.
    let export = server.admin("POST", "/export/runs", "").json();
    let id = export["id"].as_str().unwrap().to_owned();
    assert_eq!(
        server.admin("GET", &format!("/runs/{id}"), "").json()["worker"],
        "export"
    );
    assert_eq!(
        server.admin("DELETE", &format!("/runs/{id}"), "").status,
        202
    );
    // Once ended, the run's address gives its record: state and attempts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.admin("GET", &format!("/runs/{id}"), "").json()["state"] != "cancelled" {
        assert!(Instant::now() < deadline, "the cancelled run is still live");
        thread::yield_now();
    }
    assert_eq!(
        server.admin("GET", "/export", "").json()["stats"]["cancelled"],
        1
    );

    // Every error path of the admin router.
    server.admin("GET", "/ghost", "").error(404);
    server.admin("POST", "/ghost/runs", "{}").error(404);
    server
        .admin("POST", "/send-email/runs", "{ nope")
        .error(400);
    let message = server
        .admin("POST", "/send-email/runs", r#"{"subject": 1}"#)
        .error(422);
    assert!(message.contains("worker 'send-email'"), "{message}");
    server
        .admin("GET", "/runs/00000000-0000-4000-8000-000000000000", "")
        .error(404);
    server
        .admin("DELETE", &format!("/runs/{id}"), "")
        .error(404);
    // Ended, and remembered: its events are its end alone.
    let ended = server.admin("GET", &format!("/runs/{id}/events"), "");
    assert_eq!(ended.status, 200, "{}", ended.body);
    let events = ended.events();
    assert_eq!(events.len(), 1, "{}", ended.body);
    assert_eq!(events[0].0, "end");
    assert_eq!(events[0].1["status"], "cancelled", "{}", ended.body);
    server
        .admin(
            "GET",
            "/runs/00000000-0000-4000-8000-000000000000/events",
            "",
        )
        .error(404);
    server.admin("GET", "/runs/a/b/c", "").error(404);
    server.admin("PUT", "", "").error(405);
    for (method, path, kind) in [
        ("PUT", "", "method_not_allowed"),
        ("GET", "/%FF", "invalid_path"),
        ("GET", "/runs/%FF", "invalid_path"),
        ("GET", "/runs/%FF/events", "invalid_path"),
    ] {
        let reply = server.admin(method, path, "");
        assert_eq!(
            reply.json()["error"]["kind"],
            kind,
            "{path}: {}",
            reply.body
        );
    }
    server.get(&format!("/reports/{id}/progress")).error(404);

    // The application's own errors are JSON too, not empty or plain-text bodies.
    let message = server.get("/nowhere").error(404);
    assert_eq!(message, "no route for GET /nowhere");
    let message = server.request("DELETE", "/emails", "", false).error(405);
    assert_eq!(message, "DELETE is not allowed on /emails");
    let message = server.request("POST", "/", "", false).error(405);
    assert_eq!(message, "POST is not allowed on /");
    let message = server.get("/reports/%FF/progress").error(400);
    assert!(message.contains("Invalid UTF-8"), "{message}");
    let oversized = "x".repeat(2 * 1024 * 1024 + 1);
    let message = server
        .request("POST", "/emails", &oversized, false)
        .error(413);
    assert!(message.contains("length limit exceeded"), "{message}");

    // SIGTERM while a worker runs: it is cancelled when the grace period ends, and the
    // process exits cleanly, even with clients that never finish their requests: one stops
    // inside its headers, one sends 10 of the 100 body bytes it announced.
    let export = server.request("POST", "/exports", "", false).json();
    let running = export["id"].as_str().unwrap().to_owned();
    let mut half_headers = server.connect();
    half_headers
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut half_body = server.connect();
    half_body
        .write_all(
            b"POST /emails HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n\
              {\"to\": \"ad",
        )
        .unwrap();
    // Time for the server to read what they sent: a connection it has read nothing from
    // is idle, and closes at once.
    thread::sleep(Duration::from_millis(200));
    let mut server = server;
    let pid = server.child.id().to_string();
    let sent_at = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent_at.elapsed() < GRACE + EXIT_BOUND,
            "the server did not exit within {:?} of SIGTERM",
            GRACE + EXIT_BOUND
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");
    assert!(sent_at.elapsed() >= GRACE, "it waited for the grace period");
    drop((half_headers, half_body));

    // The log reader finishes once the process has closed its stderr.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log.lock().unwrap().contains("stopped cleanly") {
        assert!(
            Instant::now() < deadline,
            "log: {}",
            server.log.lock().unwrap()
        );
        thread::yield_now();
    }
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("SIGTERM received: shutting down"), "{log}");
    assert!(
        log.contains("closing connections still open 1.3s after SIGTERM"),
        "{log}"
    );
    let cancelled = format!("[Worker:export run:{running}] cancelled after");
    let line = log
        .lines()
        .find(|l| l.contains(&cancelled))
        .unwrap_or_else(|| panic!("no cancellation of {running} in:\n{log}"));
    assert!(
        line.ends_with("Worker 'export' was cancelled by shutdown"),
        "{line}"
    );
}
