//! The dashboard in a real headless browser: Debian's `chromium`, driven over WebDriver
//! by `chromedriver`, against the example's own server (`job-queue --serve`) on a SQLite
//! file. One browser session walks through what an operator does: watches a worker's
//! counts change, starts a run from the form and watches its messages and progress
//! arrive, cancels it, filters the stored jobs and retries a failed one, in light and dark
//! mode, and the browser reports no console error (a violation of the page's
//! Content-Security-Policy is one).
//!
//! Screenshots go to `$CARGO_TARGET_TMPDIR/dashboard/`; with `UPDATE_SCREENSHOTS=1`, also to
//! `docs/dashboard/`, the ones `docs/dashboard.md` shows.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`, which `.ci/chromium` does), or `CHROMIUM` and `CHROMEDRIVER` naming
//! them; nothing is downloaded.

// Debian's chromium, and process groups to stop it with.
#![cfg(unix)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long any one step may take: a few seconds each, on a busy 2-core machine.
const STEP: Duration = Duration::from_secs(20);

/// A process this test started, killed when dropped, so a failing test leaves none.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chromedriver` in a process group of its own, with the chromium it starts: a test that
/// fails before closing its session would otherwise leave the browser running when the
/// driver is killed. Dropped, it kills the whole group.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // The group's id is the driver's pid (`process_group(0)`).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// The program `env` names, else `default`; a clear failure when it is not there.
fn tool(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "the dashboard test drives a headless chromium and needs `{}`, which is missing: \
         install Debian's browser and its driver with \
         `apt-get install chromium chromium-driver` (or run `.ci/chromium`), or set {env} \
         to where it is",
        path.display()
    );
    path
}

/// `job-queue --serve` on a new file, on a free loopback port; its address.
fn start_app(db: &Path) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_job-queue"))
        .args(["--serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("SHUTDOWN_GRACE_MS", "200")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the job-queue binary starts");
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let (lines, printed) = mpsc::channel();
    // Read as it comes, so the pipe never fills.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + STEP;
    loop {
        let line = printed
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server's address printed in time");
        if let Some(addr) = line.strip_prefix("listening on http://") {
            return (process, addr.to_owned());
        }
    }
}

/// `chromedriver` on a free loopback port, once it accepts connections; its port.
fn start_driver(driver: &Path) -> (Driver, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let process = Driver(child);
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver listens in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, port)
}

/// A signup for `email` whose welcome takes 10 ms, through the application's route;
/// fails the test unless it is accepted.
fn sign_up(addr: &str, email: &str) {
    let body = json!({ "email": email, "work_ms": 10 }).to_string();
    let (status, reply) = request(addr, "POST", "/signups", &body);
    assert_eq!(status, 202, "{reply}");
}

/// One HTTP/1.1 request, as a script would send it; the status and the JSON body.
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nx-rustf-workers: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read by its length: chromedriver keeps the connection open whatever it is asked.
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Waits until `check` gives a value, polling; fails naming `what` after [`STEP`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The page's value of a JavaScript expression.
async fn eval(browser: &Client, expr: &str) -> Value {
    browser
        .execute(&format!("return ({expr});"), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("`{expr}`: {e}"))
}

/// The text of the first element `css` selects, if any.
async fn text(browser: &Client, css: &str) -> Option<String> {
    let css = serde_json::to_string(css).unwrap();
    let value = eval(
        browser,
        &format!("document.querySelector({css})?.textContent ?? null"),
    )
    .await;
    value.as_str().map(str::to_owned)
}

/// Clicks what `css` selects, once it is there. Found again if the page replaced it
/// between the finding and the click (a live update).
async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let element = browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` on the page: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") && Instant::now() < deadline => {}
            Err(e) => panic!("click `{css}`: {e}"),
        }
    }
}

/// Accepts the page's confirmation dialog, once it is open; the question it asked.
async fn confirm(browser: &Client) -> String {
    until("the confirmation dialog", || async {
        eval(browser, "document.getElementById('confirm').open")
            .await
            .as_bool()
            .filter(|open| *open)
    })
    .await;
    let question = text(browser, "#confirm-text").await.unwrap_or_default();
    click(browser, "#confirm-ok").await;
    question
}

/// Where screenshots go: always the target directory, and `docs/dashboard` on request.
fn screenshot_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard")];
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard"));
    }
    dirs
}

async fn screenshot(browser: &Client, name: &str) {
    // Let the live updates and any transition settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    for dir in screenshot_dirs() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_cancels_filters_and_retries_in_the_dashboard() {
    let chromium = tool("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_app, addr) = start_app(&dir.path().join("jobs.db"));
    let (_driver, port) = start_driver(&chromedriver);

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,900", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--disable-background-networking",
                // Its handler processes leave the group and would outlive a killed browser.
                "--disable-crash-reporter", "--disable-breakpad",
                "--user-data-dir=".to_owned() + dir.path().join("profile").to_str().unwrap(),
            ],
        }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session through chromedriver");
    let session = browser.session_id().await.unwrap().unwrap();

    // Without the trailing slash: the router redirects to `ui/`, relative to its prefix.
    browser
        .goto(&format!("http://{addr}/admin/workers/ui"))
        .await
        .unwrap();
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/admin/workers/ui/");

    // The system's dark preference is followed until the toggle chooses (Chrome DevTools'
    // media emulation, through chromedriver).
    let driver_addr = format!("127.0.0.1:{port}");
    let scheme = |value: &str| {
        let body = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": value }] },
        });
        let (status, reply) = request(
            &driver_addr,
            "POST",
            &format!("/session/{session}/goog/cdp/execute"),
            &body.to_string(),
        );
        assert_eq!(status, 200, "{reply}");
    };
    let background = "getComputedStyle(document.body).backgroundColor";
    for (value, colour, offers) in [
        ("dark", "rgb(15, 18, 22)", "Light"),
        ("light", "rgb(247, 248, 250)", "Dark"),
    ] {
        scheme(value);
        assert_eq!(eval(&browser, background).await, colour, "{value}");
        // The label follows at the media query's `change` event, a moment later.
        until("the toggle to offer the other theme", || async {
            (text(&browser, "#theme").await? == offers).then_some(())
        })
        .await;
    }

    // 1. A worker's counts change after runs, pushed over Server-Sent Events.
    let runs = r#"#workers [data-worker="send-welcome"] [data-col="runs"]"#;
    let before: u64 = until("the workers table", || async {
        text(&browser, runs).await.and_then(|t| t.parse().ok())
    })
    .await;
    for email in ["ada@example.com", "grace@example.com"] {
        sign_up(&addr, email);
    }
    until("send-welcome's runs to go up by two", || async {
        let now: u64 = text(&browser, runs).await?.parse().ok()?;
        (now >= before + 2).then_some(())
    })
    .await;
    assert_eq!(text(&browser, "#live").await.as_deref(), Some("live"));
    let p50 = r#"#workers [data-worker="send-welcome"] [data-col="p50"]"#;
    assert!(
        text(&browser, p50).await.unwrap().ends_with(" ms"),
        "a median duration"
    );
    screenshot(&browser, "overview-light").await;

    // 2. A run started from the form: its messages arrive live and its progress moves.
    browser
        .find(Locator::Css("#start-worker"))
        .await
        .unwrap()
        .select_by_value("import-contacts")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#start-payload"))
        .await
        .unwrap()
        .send_keys(r#"{"contacts": 60, "step_ms": 150}"#)
        .await
        .unwrap();
    click(&browser, r#"#start button[value="start"]"#).await;
    let run_id = until("the run's page", || async {
        let url = browser.current_url().await.ok()?;
        let id = url.fragment()?.strip_prefix("/runs/")?.to_owned();
        Some(id)
    })
    .await;
    until("two messages in the log", || async {
        let n = eval(&browser, "document.querySelectorAll('#log li').length").await;
        (n.as_u64()? >= 2).then_some(())
    })
    .await;
    let progress = "document.getElementById('run-progress').value";
    let first = eval(&browser, progress).await.as_f64().unwrap();
    until("the progress bar to move", || async {
        (eval(&browser, progress).await.as_f64()? > first).then_some(())
    })
    .await;
    // The worker's own messages, beside the progress reports that are messages too.
    let log = eval(&browser, "document.getElementById('log').textContent").await;
    assert!(
        log.as_str().unwrap().contains(r#"{"imported":1,"of":60}"#),
        "{log}"
    );
    click(&browser, "#payload-title + button").await;
    assert_eq!(
        eval(&browser, "document.getElementById('run-payload').hidden").await,
        false
    );
    screenshot(&browser, "run-light").await;
    // The toggle, both ways: the run's page in dark while it is live, then light again.
    click(&browser, "#theme").await;
    assert_eq!(
        eval(&browser, "document.documentElement.dataset.theme").await,
        "dark"
    );
    screenshot(&browser, "run-dark").await;
    click(&browser, "#theme").await;
    assert_eq!(
        eval(&browser, "document.documentElement.dataset.theme").await,
        "light"
    );

    // Paused, the tail holds what arrives and counts it; resumed, it shows it.
    let lines = "document.querySelectorAll('#log li').length";
    click(&browser, "#log-pause").await;
    let shown = eval(&browser, lines).await.as_u64().unwrap();
    until("messages held while paused", || async {
        let note = eval(&browser, "document.getElementById('log-held').textContent").await;
        note.as_str()?.ends_with("new while paused").then_some(())
    })
    .await;
    assert_eq!(eval(&browser, lines).await.as_u64().unwrap(), shown);
    click(&browser, "#log-pause").await;
    assert!(eval(&browser, lines).await.as_u64().unwrap() > shown);

    // 3. Cancelled from its page, after a confirmation.
    click(&browser, "#cancel-run").await;
    let question = confirm(&browser).await;
    assert_eq!(question, format!("Cancel run {run_id}?"));
    until("the run to show cancelled", || async {
        let state = text(&browser, r#"[data-fact="state"] .badge"#).await?;
        (state == "cancelled").then_some(())
    })
    .await;
    let (_, record) = request(&addr, "GET", &format!("/admin/workers/runs/{run_id}"), "");
    assert_eq!(record["state"], "cancelled", "{record}");
    until("the log to show the end", || async {
        let line = text(&browser, "#log li:last-child").await?;
        line.contains("ended: cancelled").then_some(())
    })
    .await;

    // 4. The queue: filter the failed jobs by payload text, retry the one found.
    let (_, bad) = request(&addr, "POST", "/signups", r#"{"email": "not-an-address"}"#);
    let bad = bad["id"].as_str().unwrap().to_owned();
    let (_, other) = request(&addr, "POST", "/signups", r#"{"email": "nobody"}"#);
    let other = other["id"].as_str().unwrap().to_owned();
    for id in [&bad, &other] {
        until("the invalid signups to be discarded", || async {
            let (_, job) = request(&addr, "GET", &format!("/jobs/{id}"), "");
            (job["state"] == "discarded").then_some(())
        })
        .await;
    }
    click(&browser, r#"[data-nav="queue"]"#).await;
    click(&browser, r#"#state-tabs [data-state="discarded"]"#).await;
    let rows = "[...document.querySelectorAll('#jobs tr[data-job]')].map(r => r.dataset.job)";
    until("both discarded jobs listed", || async {
        let ids = eval(&browser, rows).await;
        let ids = ids.as_array()?;
        (ids.contains(&json!(bad)) && ids.contains(&json!(other))).then_some(())
    })
    .await;
    let search = browser.find(Locator::Css("#filter-search")).await.unwrap();
    search.send_keys("not-an-address").await.unwrap();
    click(&browser, "#filter button[type=submit]").await;
    until(
        "the filter in the URL and only the matching job",
        || async {
            let url = browser.current_url().await.ok()?;
            let fragment = url.fragment()?.to_owned();
            let ids = eval(&browser, rows).await;
            (fragment.contains("search=not-an-address")
                && fragment.contains("state=discarded")
                && ids == json!([bad]))
            .then_some(())
        },
    )
    .await;
    click(
        &browser,
        &format!(r#"tr[data-job="{bad}"] button[data-action="retry"]"#),
    )
    .await;
    confirm(&browser).await;
    let attempt = format!(r#"tr[data-job="{bad}"] [data-col="attempt"]"#);
    until(
        "the retried job's second attempt, discarded again",
        || async {
            let (_, job) = request(&addr, "GET", &format!("/jobs/{bad}"), "");
            let shown = text(&browser, &attempt).await?;
            (job["attempt"] == 2 && job["state"] == "discarded" && shown.starts_with("2/"))
                .then_some(())
        },
    )
    .await;
    screenshot(&browser, "queue-light").await;

    // A shared view opens as it was left: here the other failed job, retried with every
    // job its filter matches.
    browser
        .goto(&format!(
            "http://{addr}/admin/workers/ui/#/queue?state=discarded&search=nobody"
        ))
        .await
        .unwrap();
    until("the shared view's one job", || async {
        (eval(&browser, rows).await == json!([other])).then_some(())
    })
    .await;
    assert_eq!(
        eval(&browser, "document.getElementById('filter-search').value").await,
        "nobody"
    );
    click(&browser, "#bulk button").await;
    let question = confirm(&browser).await;
    assert!(
        question.starts_with("Retry 1 job(s) matching"),
        "{question}"
    );
    until("every matching job retried", || async {
        let (_, job) = request(&addr, "GET", &format!("/jobs/{other}"), "");
        (job["attempt"] == 2).then_some(())
    })
    .await;

    // A job enqueued from the form: its page follows the stored job to its end.
    click(&browser, r#"[data-nav="overview"]"#).await;
    browser
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(
            r#"#start-worker option[value="send-welcome"]"#,
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("#start-payload"))
        .await
        .unwrap()
        .send_keys(r#"{"email": "eve@example.com"}"#)
        .await
        .unwrap();
    click(&browser, r#"#start button[value="enqueue"]"#).await;
    until("the stored job's page, completed", || async {
        let job = text(&browser, r#"[data-fact="job"] dd"#).await?;
        job.starts_with("completed, attempt 1").then_some(())
    })
    .await;

    // 5. Cron schedules with their ticks, and this process as the queue's node.
    click(&browser, r#"[data-nav="schedules"]"#).await;
    until("digest's schedule and the node", || async {
        let schedule = text(&browser, r#"#cron tr[data-worker="digest"]"#).await?;
        let node = text(&browser, "#nodes tbody tr").await?;
        (schedule.contains("*/3 * * * * *")
            && schedule.contains(" ago)")
            && schedule.contains("(in ")
            // `idle` until a heartbeat records the daemon job it runs, `busy` after.
            && (node.contains("idle") || node.contains("busy")))
        .then_some(())
    })
    .await;
    screenshot(&browser, "schedules-light").await;

    // 6. Readable on a phone: nothing wider than the screen but the tables, which scroll.
    browser.set_window_size(390, 844).await.unwrap();
    click(&browser, r#"[data-nav="queue"]"#).await;
    until("the queue on a narrow screen", || async {
        let fits = eval(
            &browser,
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth",
        )
        .await;
        (fits == true && text(&browser, "#jobs tbody tr").await.is_some()).then_some(())
    })
    .await;
    browser.set_window_size(1100, 900).await.unwrap();

    // 7. Dark mode, by the toggle; the same three pages.
    click(&browser, "#theme").await;
    assert_eq!(
        eval(&browser, "document.documentElement.dataset.theme").await,
        "dark"
    );
    screenshot(&browser, "queue-dark").await;
    browser
        .goto(&format!("http://{addr}/admin/workers/ui/#/runs/{run_id}"))
        .await
        .unwrap();
    until("the cancelled run's page after a reload", || async {
        text(&browser, r#"[data-fact="state"] .badge"#)
            .await
            .filter(|state| state == "cancelled")
    })
    .await;
    assert_eq!(
        eval(&browser, "document.documentElement.dataset.theme").await,
        "dark",
        "the choice is kept"
    );
    click(&browser, r#"[data-nav="overview"]"#).await;
    until("the overview", || async { text(&browser, runs).await }).await;
    screenshot(&browser, "overview-dark").await;

    // 8. A hidden tab stops listening (the browser says so with `visibilitychange`, made
    // here by hand, as headless chromium is never hidden); shown again, it listens again
    // and catches up with what happened meanwhile.
    let seen: u64 = text(&browser, runs).await.unwrap().parse().unwrap();
    eval(
        &browser,
        "Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }), \
         document.dispatchEvent(new Event('visibilitychange')), true",
    )
    .await;
    until("the page paused while hidden", || async {
        (eval(&browser, "document.getElementById('live').dataset.state").await == "paused")
            .then_some(())
    })
    .await;
    sign_up(&addr, "hidden@example.com");
    eval(
        &browser,
        "delete document.hidden, document.dispatchEvent(new Event('visibilitychange')), true",
    )
    .await;
    until("live again, with the run made while hidden", || async {
        let now: u64 = text(&browser, runs).await?.parse().ok()?;
        let live = eval(&browser, "document.getElementById('live').dataset.state").await;
        (live == "live" && now > seen).then_some(())
    })
    .await;

    // 9. From the keyboard: `g q` goes to the queue, `/` puts the cursor in its search,
    // Tab reaches the buttons.
    eval(&browser, "document.activeElement.blur(), true").await;
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("gq")
        .await
        .unwrap();
    until("the queue, by `g q`", || async {
        (eval(&browser, "location.hash")
            .await
            .as_str()?
            .starts_with("#/queue"))
        .then_some(())
    })
    .await;
    until("the queue's search box", || async {
        text(&browser, "#jobs").await
    })
    .await;
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    until("the search focused by `/`", || async {
        (eval(&browser, "document.activeElement.getAttribute('type')").await == "search"
            || eval(&browser, "document.activeElement.tagName").await == "INPUT")
            .then_some(())
    })
    .await;
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{e004}")
        .await
        .unwrap();
    let focused = eval(&browser, "document.activeElement.tagName").await;
    assert!(
        ["BUTTON", "A", "INPUT", "SELECT"].contains(&focused.as_str().unwrap_or("")),
        "Tab moves to a control: {focused}"
    );
    click(&browser, r#"[data-nav="overview"]"#).await;
    until("the overview again", || async {
        text(&browser, runs).await
    })
    .await;

    // 10. Without the stream (`?poll`, as when a proxy buffers it), the page polls, and
    // still sees new runs.
    browser
        .goto(&format!("http://{addr}/admin/workers/ui/?poll#/"))
        .await
        .unwrap();
    let seen: u64 = until("the overview, polled", || async {
        let live = eval(
            &browser,
            "document.getElementById('live')?.dataset.state ?? null",
        )
        .await;
        let runs: u64 = text(&browser, runs).await?.parse().ok()?;
        (live == "polling").then_some(runs)
    })
    .await;
    sign_up(&addr, "polled@example.com");
    until("the run seen by polling", || async {
        let now: u64 = text(&browser, runs).await?.parse().ok()?;
        (now > seen).then_some(())
    })
    .await;

    // 11. Nothing went wrong in the browser: no script error, no refused resource.
    let (status, log) = request(
        &format!("127.0.0.1:{port}"),
        "POST",
        &format!("/session/{session}/se/log"),
        r#"{"type": "browser"}"#,
    );
    assert_eq!(status, 200, "{log}");
    let errors: Vec<&Value> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    browser.close().await.unwrap();
    eprintln!("the dashboard walk-through took {:?}", started.elapsed());
}
