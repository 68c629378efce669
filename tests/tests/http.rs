//! The HTTP router, driven in process through tower's `oneshot`.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use rustf_workers::http::{RouterBuilder, DEFAULT_BODY_LIMIT};
use rustf_workers::prelude::*;
use rustf_workers::WorkerRegistry;
use tower::ServiceExt;

// Links this crate's `#[worker]` fixtures (tests/src/workers): nothing else here names the
// library, and an unreferenced library's registrations are not linked (inventory#7).
use rustf_workers_tests as _;

struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts an error reply of `status` and `kind`; returns its message.
    fn error(&self, status: StatusCode, kind: &str) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        let json = self.json();
        assert_eq!(json["error"]["kind"], kind, "{}", self.body);
        json["error"]["message"].as_str().unwrap().to_owned()
    }
}

async fn send(router: &Router, method: Method, uri: &str, body: &str) -> Reply {
    send_body(router, method, uri, Body::from(body.to_owned())).await
}

/// A request as the dashboard or a script sends it: with the CSRF header.
async fn send_body(router: &Router, method: Method, uri: &str, body: Body) -> Reply {
    send_request(router, method, uri, body, true).await
}

async fn send_request(
    router: &Router,
    method: Method,
    uri: &str,
    body: Body,
    csrf_header: bool,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if csrf_header {
        request = request.header(rustf_workers::http::CSRF_HEADER, "1");
    }
    let request = request.body(body).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Method::GET, uri, "").await
}

async fn registry() -> WorkerRegistry {
    let workers = WorkerRegistry::new();
    workers
        .register_with(
            "report",
            rustf_workers::WorkerOptions::new().timeout(Duration::from_secs(30)),
            |ctx| async move {
                let steps = ctx.payload().and_then(|p| p["steps"].as_u64()).unwrap_or(3);
                for step in 1..=steps {
                    ctx.sleep(Duration::from_millis(5)).await;
                    ctx.emit(json!({ "step": step }))?;
                }
                Ok(())
            },
        )
        .await
        .unwrap();
    workers
        .register("forever", |ctx| async move {
            ctx.emit(json!("started"))?;
            ctx.sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .await
        .unwrap();
    workers
}

/// Parses an SSE body into (event, data) pairs.
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                }
                if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_owned());
                }
            }
            Some((event?, data?))
        })
        .collect()
}

#[tokio::test]
async fn definitions_and_their_details() {
    let workers = registry().await;
    workers.run("report", None).await.unwrap();
    let router = RouterBuilder::for_registry(workers.clone()).build();

    let reply = get(&router, "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "application/json");
    let list = reply.json();
    assert_eq!(list["workers"][0]["name"], "forever");
    assert_eq!(list["workers"][1]["name"], "report");
    assert_eq!(list["workers"][1]["stats"]["runs"], 1);
    assert_eq!(list["workers"][1]["live"], 0);

    let running = workers.call("forever", None, None).await.unwrap();
    let detail = get(&router, "/forever").await.json();
    assert_eq!(detail["live_runs"], json!([running.id()]));
    assert_eq!(detail["options"]["timeout_ms"], Value::Null);
    assert_eq!(
        get(&router, "/report").await.json()["options"]["timeout_ms"],
        30_000
    );

    let message = get(&router, "/ghost")
        .await
        .error(StatusCode::NOT_FOUND, "not_registered");
    assert_eq!(message, "Worker 'ghost' not registered");
    running.cancel().await.unwrap();
}

#[tokio::test]
async fn live_runs_and_their_last_message() {
    let workers = registry().await;
    let router = RouterBuilder::for_registry(workers.clone()).build();
    let mut handle = workers.call("forever", None, None).await.unwrap();
    assert_eq!(handle.recv().await, Some(json!("started")));

    let runs = get(&router, "/runs").await.json();
    assert_eq!(runs["runs"][0]["id"], handle.id());
    assert_eq!(runs["runs"][0]["worker"], "forever");
    assert_eq!(runs["runs"][0]["last_message"], "started");
    assert!(runs["runs"][0]["started_at_ms"].as_u64().unwrap() > 0);

    let one = get(&router, &format!("/runs/{}", handle.id())).await.json();
    assert_eq!(one["id"], handle.id());
    get(&router, "/runs/not-a-run")
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");

    // Once ended, the same address gives the remembered record...
    let id = handle.id().to_owned();
    handle.cancel().await.unwrap();
    assert!(handle.await_result().await.unwrap_err().is_cancelled());
    let ended = get(&router, &format!("/runs/{id}")).await.json();
    assert_eq!(ended["id"], id);
    assert_eq!(ended["worker"], "forever");
    assert_eq!(ended["state"], "cancelled");
    assert_eq!(ended["attempts"][0]["state"], "cancelled");
    // ...until the registry forgets it.
    workers.keep_finished_runs(None);
    get(&router, &format!("/runs/{id}"))
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");
}

#[tokio::test]
async fn events_stream_every_message_then_the_outcome_to_several_clients() {
    let workers = registry().await;
    let router = RouterBuilder::for_registry(workers.clone()).build();
    let mut handle = workers
        .call("report", None, Some(json!({ "steps": 4 })))
        .await
        .unwrap();
    let uri = format!("/runs/{}/events", handle.id());
    let (a, b) = tokio::join!(get(&router, &uri), get(&router, &uri));
    // The caller's own handle still sees every message.
    let mut own = Vec::new();
    while let Some(message) = handle.recv().await {
        own.push(message);
    }
    assert_eq!(own.len(), 4);

    for reply in [a, b] {
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.content_type, "text/event-stream");
        let events = sse_events(&reply.body);
        assert_eq!(events.len(), 5, "{}", reply.body);
        for (step, (event, data)) in events[..4].iter().enumerate() {
            assert_eq!(event, "message");
            assert_eq!(
                serde_json::from_str::<Value>(data).unwrap(),
                json!({ "step": step + 1 })
            );
        }
        let (event, data) = &events[4];
        assert_eq!(event, "end");
        let outcome: Value = serde_json::from_str(data).unwrap();
        assert_eq!(outcome["status"], "completed");
        assert_eq!(outcome["error"], Value::Null);
    }
    get(&router, "/runs/00000000-0000-4000-8000-000000000000/events")
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");
}

#[tokio::test(start_paused = true)]
async fn events_of_a_run_that_already_ended_are_its_end_event_while_it_is_remembered() {
    let workers = registry().await;
    workers
        .register("refuses", |_| async { Err(Error::validation("no data")) })
        .await
        .unwrap();
    let router = RouterBuilder::for_registry(workers.clone()).build();

    // Ended before the client asked, as a run started by `POST` may be.
    let done = workers
        .call("report", None, Some(json!({ "steps": 2 })))
        .await
        .unwrap();
    let done_id = done.id().to_owned();
    done.await_result().await.unwrap();
    let failed = workers.call("refuses", None, None).await.unwrap();
    let failed_id = failed.id().to_owned();
    let err = failed.await_result().await.unwrap_err();

    let reply = get(&router, &format!("/runs/{done_id}/events")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "text/event-stream");
    let events = sse_events(&reply.body);
    assert_eq!(events.len(), 1, "{}", reply.body);
    assert_eq!(events[0].0, "end");
    assert_eq!(
        serde_json::from_str::<Value>(&events[0].1).unwrap(),
        json!({ "status": "completed", "error": null, "duration_ms": 10 })
    );

    let events = sse_events(
        &get(&router, &format!("/runs/{failed_id}/events"))
            .await
            .body,
    );
    assert_eq!(events.len(), 1);
    let outcome: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["error"], err.to_string());

    // Forgotten: not found, like a run that never was.
    workers.keep_finished_runs(None);
    get(&router, &format!("/runs/{done_id}/events"))
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");
}

#[tokio::test]
async fn starting_and_cancelling_are_off_unless_turned_on() {
    let workers = registry().await;
    let read_only = RouterBuilder::for_registry(workers.clone()).build();
    let message = send(&read_only, Method::POST, "/report/runs", "{}")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
    assert!(message.contains("allow_starting_runs"), "{message}");
    let handle = workers.call("forever", None, None).await.unwrap();
    send(
        &read_only,
        Method::DELETE,
        &format!("/runs/{}", handle.id()),
        "",
    )
    .await
    .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
    assert!(!handle.is_finished());
    assert_eq!(workers.stats("report").await.unwrap().runs, 0);
    handle.cancel().await.unwrap();
}

#[tokio::test]
async fn starting_and_cancelling_runs_when_turned_on() {
    let workers = registry().await;
    let admin = RouterBuilder::for_registry(workers.clone())
        .allow_starting_runs()
        .allow_cancelling_runs()
        .build();

    let reply = send(&admin, Method::POST, "/forever/runs", "").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(reply.json()["worker"], "forever");
    assert_eq!(workers.running().await.unwrap(), [id.as_str()]);

    let events = tokio::spawn({
        let admin = admin.clone();
        let uri = format!("/runs/{id}/events");
        async move { get(&admin, &uri).await }
    });
    while workers.run_info(&id).unwrap().last_message.is_none() {
        tokio::task::yield_now().await;
    }
    let reply = send(&admin, Method::DELETE, &format!("/runs/{id}"), "").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let events = sse_events(&events.await.unwrap().body);
    let (event, data) = events.last().unwrap();
    assert_eq!(event, "end");
    assert_eq!(
        serde_json::from_str::<Value>(data).unwrap()["status"],
        "cancelled"
    );
    send(&admin, Method::DELETE, &format!("/runs/{id}"), "")
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");

    let reply = send(&admin, Method::POST, "/report/runs", r#"{ "steps": 1 }"#).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
}

#[tokio::test]
async fn bad_requests_are_json_4xx_never_500() {
    let admin = RouterBuilder::new().allow_starting_runs().build();

    let message = send(&admin, Method::POST, "/fixture-echo/runs", "{ not json")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message.starts_with("the request body is not valid JSON"),
        "{message}"
    );

    send(&admin, Method::POST, "/ghost/runs", "{}")
        .await
        .error(StatusCode::NOT_FOUND, "not_registered");

    // A typed `#[worker]` (tests/src/workers/echo.rs) rejects the payload at call time.
    let message = send(
        &admin,
        Method::POST,
        "/fixture-echo/runs",
        r#"{ "txt": 1 }"#,
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(
        message.contains("worker 'fixture-echo'") && message.contains("missing field `text`"),
        "{message}"
    );

    send(&admin, Method::POST, "/fixture-duplicate/runs", "{}")
        .await
        .error(StatusCode::CONFLICT, "already_registered");
    send(&admin, Method::PUT, "/", "")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    send(&admin, Method::GET, "/runs/a/b/c", "")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn every_rejection_is_json_with_a_kind() {
    let workers = registry().await;
    let admin = RouterBuilder::for_registry(workers.clone())
        .allow_starting_runs()
        .allow_cancelling_runs()
        .build();

    // Path parameters that are not UTF-8, on every route that reads one.
    for (method, uri, parameter) in [
        (Method::GET, "/%FF", "name"),
        (Method::GET, "/runs/%FF", "id"),
        (Method::GET, "/runs/%FF/events", "id"),
        (Method::DELETE, "/runs/%FF", "id"),
        (Method::POST, "/%FF/runs", "name"),
    ] {
        let reply = send(&admin, method, uri, "").await;
        assert_eq!(reply.content_type, "application/json", "{}", reply.body);
        let message = reply.error(StatusCode::BAD_REQUEST, "invalid_path");
        assert_eq!(
            message,
            format!("the path `{uri}` is not valid: Invalid UTF-8 in `{parameter}`")
        );
    }

    // A body over the limit, 2 MiB by default, never reaches the worker.
    let oversized = format!("\"{}\"", "x".repeat(DEFAULT_BODY_LIMIT));
    let message = send(&admin, Method::POST, "/report/runs", &oversized)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert_eq!(
        message,
        "the request body is over the limit of 2097152 bytes; \
         `RouterBuilder::body_limit` sets it"
    );
    // A body that breaks off half way.
    let broken = futures::stream::iter([
        Ok(axum::body::Bytes::from_static(b"{ \"steps\"")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let message = send_body(
        &admin,
        Method::POST,
        "/report/runs",
        Body::from_stream(broken),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("connection reset"), "{message}");
    send(&admin, Method::POST, "/report/runs", "{ nope")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(workers.stats("report").await.unwrap().running, 0);

    // A method a route does not take, on every route.
    for (method, uri) in [
        (Method::PUT, "/"),
        (Method::POST, "/metrics"),
        (Method::POST, "/runs"),
        (Method::PATCH, "/runs/some-id"),
        (Method::POST, "/runs/some-id/events"),
        (Method::DELETE, "/report"),
        (Method::GET, "/report/runs"),
    ] {
        let reply = send(&admin, method.clone(), uri, "").await;
        assert_eq!(reply.content_type, "application/json", "{}", reply.body);
        let message = reply.error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(message, format!("{method} is not allowed on {uri}"));
    }
    let message = get(&admin, "/runs/a/b/c")
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "no route for GET /runs/a/b/c");

    // No route reads a query string, so a malformed one cannot be rejected: it is ignored.
    for uri in ["/?%FF=%ZZ", "/runs?&&=%", "/report?timeout=-1"] {
        let reply = get(&admin, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        reply.json();
    }
}

#[tokio::test]
async fn the_body_limit_is_the_builders_whatever_the_application_sets() {
    let workers = registry().await;
    let admin = RouterBuilder::for_registry(workers.clone())
        .allow_starting_runs()
        .body_limit(16)
        .build();
    // The application's own, smaller, limit stays outside the router.
    let app = Router::new()
        .nest("/admin", admin)
        .layer(DefaultBodyLimit::max(4));

    let reply = send(&app, Method::POST, "/admin/report/runs", r#"{"steps": 1}"#).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let message = send(
        &app,
        Method::POST,
        "/admin/report/runs",
        r#"{"steps": 1, "more": true}"#,
    )
    .await
    .error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert!(message.contains("limit of 16 bytes"), "{message}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let workers = registry().await;
    workers
        .run("report", Some(json!({ "steps": 1 })))
        .await
        .unwrap();
    workers
        .run("report", Some(json!({ "steps": 2 })))
        .await
        .unwrap();
    let forever = workers
        .call("forever", Some(Duration::from_millis(1)), None)
        .await
        .unwrap();
    assert!(forever.await_result().await.unwrap_err().is_timeout());
    let running = workers.call("forever", None, None).await.unwrap();
    let router = RouterBuilder::for_registry(workers.clone()).build();

    let reply = get(&router, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        reply.content_type
    );
    let text = reply.body;
    for line in [
        "# TYPE rustf_workers_runs counter",
        r#"rustf_workers_runs_total{worker="report"} 2"#,
        r#"rustf_workers_errors_total{worker="forever"} 1"#,
        r#"rustf_workers_timed_out_total{worker="forever"} 1"#,
        r#"rustf_workers_cancelled_total{worker="forever"} 0"#,
        r#"rustf_workers_running{worker="forever"} 1"#,
        r#"rustf_workers_running{worker="report"} 0"#,
        "# TYPE rustf_workers_run_duration_seconds histogram",
        r#"rustf_workers_run_duration_seconds_count{worker="report"} 2"#,
        r#"rustf_workers_run_duration_seconds_bucket{le="+Inf",worker="report"} 2"#,
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    let fastest_bucket = text
        .lines()
        .find(|l| {
            l.starts_with(
                r#"rustf_workers_run_duration_seconds_bucket{le="0.005",worker="report"}"#,
            )
        })
        .unwrap();
    assert!(
        fastest_bucket.ends_with(" 0"),
        "each report run sleeps at least 5 ms: {fastest_bucket}"
    );
    running.cancel().await.unwrap();
}

/// The durable queue's routes: stored jobs listed by state, worker and payload text, read
/// one by one, and managed only when the application turns it on.
#[tokio::test]
async fn stored_jobs_are_listed_filtered_and_managed_when_turned_on() {
    use rustf_workers::queue::{QueueOptions, SqliteQueue};
    use rustf_workers::JobOptions;

    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("fails", |_ctx| async { Err(Error::internal("no luck")) })
        .await
        .unwrap();
    workers
        .register("later", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    // No queue yet: the routes say so.
    let router = RouterBuilder::for_registry(workers.clone()).build();
    get(&router, "/jobs")
        .await
        .error(StatusCode::NOT_FOUND, "no_queue");
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            QueueOptions::new().poll_interval(Duration::from_millis(10)),
        )
        .unwrap();
    let failed = workers
        .enqueue("fails", Some(json!({ "order": "A-17" })))
        .await
        .unwrap();
    let waiting = workers
        .enqueue_with(
            "later",
            Some(json!({ "order": "B-2" })),
            JobOptions::new().delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    workers.await_job(&failed).await.unwrap();

    let all = get(&router, "/jobs").await.json();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2, "{all}");
    let discarded = get(&router, "/jobs?state=discarded").await.json();
    assert_eq!(discarded["jobs"][0]["id"], failed.as_str(), "{discarded}");
    assert_eq!(discarded["jobs"].as_array().unwrap().len(), 1);
    let found = get(&router, "/jobs?search=B-2&worker=later").await.json();
    assert_eq!(found["jobs"][0]["id"], waiting.as_str(), "{found}");
    let none = get(&router, "/jobs?state=scheduled&worker=fails")
        .await
        .json();
    assert!(none["jobs"].as_array().unwrap().is_empty(), "{none}");
    get(&router, "/jobs?state=lost")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query");
    get(&router, "/jobs?limit=many")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query");
    let one = get(&router, &format!("/jobs/{failed}")).await.json();
    assert_eq!(one["state"], "discarded");
    assert!(one["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no luck"));
    get(&router, "/jobs/nope")
        .await
        .error(StatusCode::NOT_FOUND, "job_not_found");

    // Read-only unless turned on.
    for (method, uri) in [
        (Method::POST, format!("/jobs/{failed}/retry")),
        (Method::POST, format!("/jobs/{waiting}/cancel")),
        (Method::DELETE, format!("/jobs/{waiting}")),
    ] {
        let message = send(&router, method, &uri, "")
            .await
            .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
        assert!(message.contains("allow_managing_jobs"), "{message}");
    }
    assert_eq!(
        workers.job(&waiting).await.unwrap().state.as_str(),
        "scheduled"
    );

    let managing = RouterBuilder::for_registry(workers.clone())
        .allow_managing_jobs()
        .build();
    let cancelled = send(
        &managing,
        Method::POST,
        &format!("/jobs/{waiting}/cancel"),
        "",
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::ACCEPTED, "{}", cancelled.body);
    assert_eq!(
        workers.job(&waiting).await.unwrap().state.as_str(),
        "cancelled"
    );
    let retried = send(
        &managing,
        Method::POST,
        &format!("/jobs/{failed}/retry"),
        "",
    )
    .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    // Its second attempt runs (and fails again, as this worker does).
    let again = workers.await_job(&failed).await.unwrap();
    assert_eq!((again.state.as_str(), again.attempt), ("discarded", 2));
    let deleted = send(&managing, Method::DELETE, &format!("/jobs/{waiting}"), "").await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    get(&managing, &format!("/jobs/{waiting}"))
        .await
        .error(StatusCode::NOT_FOUND, "job_not_found");
    workers.shutdown().await.unwrap();
}

/// Every job a filter matches retried, cancelled or deleted in one request, only when
/// the application turns managing jobs on; a job the action does not apply to is
/// matched, not changed.
#[tokio::test]
async fn bulk_routes_act_on_every_job_a_filter_matches() {
    use rustf_workers::queue::{JobFilter, JobState, QueueOptions, SqliteQueue};
    use rustf_workers::JobOptions;

    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    for name in ["fails", "later"] {
        workers
            .register(name, |_ctx| async { Err(Error::internal("no luck")) })
            .await
            .unwrap();
    }
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    // 1,200 failures (more than one page of the store's), and two jobs for later.
    let batch = (0..1_200).map(|n| ("fails", Some(json!({ "n": n })), JobOptions::new()));
    workers.enqueue_many(batch).await.unwrap();
    assert_eq!(workers.drain_jobs().await.unwrap(), 1_200);
    let later = JobOptions::new().delay(Duration::from_secs(3600));
    let kept = workers
        .enqueue_with("later", Some(json!({ "keep": true })), later.clone())
        .await
        .unwrap();
    let doomed = workers
        .enqueue_with("later", Some(json!({ "drop": true })), later)
        .await
        .unwrap();
    let count = |state: JobState| {
        let workers = workers.clone();
        async move {
            let filter = JobFilter {
                states: vec![state],
                limit: JobFilter::MAX_LIMIT,
                ..JobFilter::default()
            };
            let mut n = 0;
            let mut filter = filter;
            loop {
                let page = workers.jobs(filter.clone()).await.unwrap();
                n += page.jobs.len();
                match page.next {
                    Some(next) => filter.before_id = Some(next),
                    None => return n,
                }
            }
        }
    };
    assert_eq!(count(JobState::Discarded).await, 1_200);

    let read_only = RouterBuilder::for_registry(workers.clone()).build();
    send(&read_only, Method::POST, "/jobs/retry?state=discarded", "")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
    let admin = RouterBuilder::for_registry(workers.clone())
        .allow_managing_jobs()
        .build();
    send(&admin, Method::POST, "/jobs/retry?state=lost", "")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query");

    // Every discarded job of the worker, across pages: available again.
    let retried = send(
        &admin,
        Method::POST,
        "/jobs/retry?state=discarded&worker=fails",
        "",
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(
        retried.json(),
        json!({ "matched": 1_200, "changed": 1_200 })
    );
    assert_eq!(count(JobState::Available).await, 1_200);
    assert_eq!(count(JobState::Discarded).await, 0);

    // Cancel by payload text: one of the two scheduled jobs.
    let cancelled = send(&admin, Method::POST, "/jobs/cancel?search=drop", "").await;
    assert_eq!(cancelled.json(), json!({ "matched": 1, "changed": 1 }));
    assert_eq!(
        workers.job(&doomed).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(workers.job(&kept).await.unwrap().state, JobState::Scheduled);

    // Retry matches the scheduled one too, but does not apply to it.
    let retried = send(&admin, Method::POST, "/jobs/retry?worker=later", "").await;
    assert_eq!(retried.json(), json!({ "matched": 2, "changed": 1 }));

    // Delete every job of a worker.
    let deleted = send(&admin, Method::POST, "/jobs/delete?worker=fails", "").await;
    assert_eq!(
        deleted.json(),
        json!({ "matched": 1_200, "changed": 1_200 })
    );
    assert_eq!(
        count(JobState::Available).await,
        1,
        "only `later`'s retried one"
    );
    workers.shutdown().await.unwrap();
}

/// Jobs counted by worker and state (in JSON and in the metrics), enqueued over HTTP only
/// when starting runs is turned on, and pruned only when managing jobs is.
#[tokio::test]
async fn stored_jobs_are_counted_enqueued_and_pruned_over_http() {
    use rustf_workers::queue::{JobState, QueueOptions, SqliteQueue};

    let dir = tempfile::tempdir().unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("report", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    // Runs nothing by itself: what is enqueued stays where the test can see it.
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    let read_only = RouterBuilder::for_registry(workers.clone()).build();
    let message = send(&read_only, Method::POST, "/report/jobs", "{}")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
    assert!(message.contains("allow_starting_runs"), "{message}");
    assert!(workers.enqueued("report").await.unwrap().is_empty());

    let router = RouterBuilder::for_registry(workers.clone())
        .allow_starting_runs()
        .allow_managing_jobs()
        .build();
    let stored = send(
        &router,
        Method::POST,
        "/report/jobs?delay_ms=3600000&priority=5&unique_key=monthly",
        r#"{"month": "2026-11"}"#,
    )
    .await;
    assert_eq!(stored.status, StatusCode::ACCEPTED, "{}", stored.body);
    let id = stored.json()["id"].as_str().unwrap().to_owned();
    let job = workers.job(&id).await.unwrap();
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(
        (job.priority, job.unique_key.as_deref()),
        (5, Some("monthly"))
    );
    assert_eq!(job.payload, Some(json!({ "month": "2026-11" })));
    // The same unique key: the same job.
    let again = send(&router, Method::POST, "/report/jobs?unique_key=monthly", "").await;
    assert_eq!(again.json()["id"], id.as_str(), "{}", again.body);
    send(&router, Method::POST, "/nobody/jobs", "")
        .await
        .error(StatusCode::NOT_FOUND, "not_registered");
    send(&router, Method::POST, "/report/jobs", "{not json")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_json");
    send(&router, Method::POST, "/report/jobs?delay_ms=soon", "")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query");

    let now = send(&router, Method::POST, "/report/jobs", "").await.json();
    assert_eq!(workers.drain_jobs().await.unwrap(), 1);
    let counts = get(&router, "/jobs/counts").await.json();
    assert_eq!(
        counts,
        json!([
            { "worker": "report", "state": "scheduled", "count": 1 },
            { "worker": "report", "state": "completed", "count": 1 },
        ])
    );
    let metrics = get(&router, "/metrics").await.body;
    assert!(
        metrics.contains(r#"rustf_workers_jobs{worker="report",state="completed"} 1"#),
        "{metrics}"
    );

    // Prune: off unless managing jobs; the completed job goes, the scheduled one stays.
    send(&read_only, Method::POST, "/jobs/prune?older_than_ms=0", "")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "disabled");
    send(&router, Method::POST, "/jobs/prune", "")
        .await
        .error(StatusCode::BAD_REQUEST, "invalid_query");
    let pruned = send(&router, Method::POST, "/jobs/prune?older_than_ms=0", "").await;
    assert_eq!(pruned.json(), json!({ "pruned": 1 }), "{}", pruned.body);
    get(&router, &format!("/jobs/{}", now["id"].as_str().unwrap()))
        .await
        .error(StatusCode::NOT_FOUND, "job_not_found");
    assert_eq!(workers.job(&id).await.unwrap().state, JobState::Scheduled);
    workers.shutdown().await.unwrap();
}

#[tokio::test]
async fn routes_that_change_things_refuse_a_request_without_the_csrf_header() {
    use rustf_workers::queue::{QueueOptions, SqliteQueue};

    let dir = tempfile::tempdir().unwrap();
    let workers = registry().await;
    // Stores jobs, runs none: the one below stays available.
    workers
        .use_queue_with(
            SqliteQueue::open(dir.path().join("jobs.db")).unwrap(),
            QueueOptions::new().runs_jobs(false),
        )
        .unwrap();
    let admin = RouterBuilder::for_registry(workers.clone())
        .allow_starting_runs()
        .allow_cancelling_runs()
        .allow_managing_jobs()
        .build();
    let id = workers.enqueue("report", None).await.unwrap();
    for (method, uri) in [
        (Method::POST, "/report/runs".to_owned()),
        (Method::POST, "/report/jobs".to_owned()),
        (Method::DELETE, "/runs/some-id".to_owned()),
        (Method::POST, format!("/jobs/{id}/retry")),
        (Method::POST, format!("/jobs/{id}/cancel")),
        (Method::DELETE, format!("/jobs/{id}")),
        (Method::POST, "/jobs/prune?older_than_ms=0".to_owned()),
        (Method::POST, "/jobs/retry".to_owned()),
        (Method::POST, "/jobs/cancel".to_owned()),
        (Method::POST, "/jobs/delete".to_owned()),
    ] {
        let reply = send_request(&admin, method.clone(), &uri, Body::from("{}"), false).await;
        let message = reply.error(StatusCode::FORBIDDEN, "csrf");
        assert!(
            message.contains("x-rustf-workers"),
            "{method} {uri}: {message}"
        );
    }
    // Nothing was started, enqueued, cancelled or deleted.
    assert!(workers.live_runs().is_empty());
    assert_eq!(workers.job(&id).await.unwrap().state.as_str(), "available");
    assert_eq!(
        workers.jobs(Default::default()).await.unwrap().jobs.len(),
        1
    );
    // Reading needs no header.
    let reply = send_request(&admin, Method::GET, "/", Body::empty(), false).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn summaries_have_percentiles_and_the_overview_streams_every_second() {
    let workers = registry().await;
    let router = RouterBuilder::for_registry(workers.clone()).build();
    let before = get(&router, "/").await.json();
    let report = |list: &Value| {
        list["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "report")
            .cloned()
            .unwrap()
    };
    assert_eq!(report(&before)["p50_ms"], Value::Null, "{before}");
    for _ in 0..4 {
        workers
            .run("report", Some(json!({ "steps": 1 })))
            .await
            .unwrap();
    }
    let after = report(&get(&router, "/").await.json());
    // Each run sleeps 5 ms: within the (5, 10] ms bucket, or the next if the machine is slow.
    let p50 = after["p50_ms"].as_u64().unwrap();
    let p95 = after["p95_ms"].as_u64().unwrap();
    assert!((5..=250).contains(&p50) && p50 <= p95, "{after}");
    assert!(
        p95 <= after["stats"]["max_run_ms"].as_u64().unwrap(),
        "{after}"
    );
    assert_eq!(after["queued"], 0);

    let running = workers.call("forever", None, None).await.unwrap();
    let request = Request::get("/events").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    // Two snapshots, a second apart.
    let started = std::time::Instant::now();
    while text.matches("event: overview").count() < 2 {
        let chunk = futures::StreamExt::next(&mut body).await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "{text}");
    let (_, first) = sse_events(&text)
        .into_iter()
        .find(|(event, _)| event == "overview")
        .unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["runs"][0]["id"], running.id(), "{first}");
    assert_eq!(first["jobs"], Value::Null, "no queue: {first}");
    assert!(first["workers"].as_array().unwrap().len() >= 2, "{first}");
    workers.cancel(running.id()).await.unwrap();
}

#[tokio::test]
async fn a_runs_detail_is_its_info_and_payload_then_its_record() {
    let workers = registry().await;
    let router = RouterBuilder::for_registry(workers.clone()).build();
    let running = workers
        .call("forever", None, Some(json!({ "secret": "A-17" })))
        .await
        .unwrap();
    let id = running.id().to_owned();
    let live = get(&router, &format!("/runs/{id}/detail")).await.json();
    assert_eq!(live["run"]["worker"], "forever", "{live}");
    assert_eq!(live["payload"]["secret"], "A-17", "{live}");
    assert_eq!(live["record"], Value::Null);
    assert_eq!(live["job"], Value::Null);
    workers.cancel(&id).await.unwrap();
    let _ = running.await_result().await;
    let ended = get(&router, &format!("/runs/{id}/detail")).await.json();
    assert_eq!(ended["run"], Value::Null, "{ended}");
    assert_eq!(ended["record"]["state"], "cancelled", "{ended}");
    get(&router, "/runs/ghost/detail")
        .await
        .error(StatusCode::NOT_FOUND, "run_not_found");
}

#[tokio::test]
async fn cron_lists_each_schedule_with_its_last_and_next_tick() {
    let workers = registry().await;
    workers
        .register_with(
            "nightly",
            rustf_workers::WorkerOptions::new().cron("0 3 * * *"),
            |_ctx| async { Ok(()) },
        )
        .await
        .unwrap();
    let router = RouterBuilder::for_registry(workers).build();
    let cron = get(&router, "/cron").await.json();
    let entries = cron.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{cron}");
    assert_eq!(entries[0]["worker"], "nightly");
    assert_eq!(entries[0]["expr"], "0 3 * * *");
    let last = entries[0]["last_tick_ms"].as_i64().unwrap();
    let next = entries[0]["next_tick_ms"].as_i64().unwrap();
    assert_eq!(next - last, 24 * 3600 * 1000, "{cron}");
    assert_eq!(
        last % (24 * 3600 * 1000),
        3 * 3600 * 1000,
        "03:00 UTC: {cron}"
    );
}

#[tokio::test]
async fn the_dashboard_is_static_files_with_a_strict_policy() {
    let router = RouterBuilder::for_registry(registry().await)
        .allow_cancelling_runs()
        .build();
    let request = Request::get("/ui").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    // Relative: it works under whatever prefix the application nests the router at.
    assert_eq!(response.headers()[header::LOCATION], "ui/");

    for (path, content_type) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        let etag = headers[header::ETAG].clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(!body.is_empty(), "{path}");
        // Every URL relative, nothing from elsewhere (SVG's namespace is a name, not a URL
        // anything fetches).
        let text = String::from_utf8(body.to_vec())
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}"
        );
        let again = Request::get(path)
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(again).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let html = get(&router, "/ui/").await.body;
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );

    let config = get(&router, "/ui/config").await.json();
    assert_eq!(config["allow_cancelling_runs"], true, "{config}");
    assert_eq!(config["allow_starting_runs"], false, "{config}");
    assert_eq!(config["queue"], false, "{config}");
    assert_eq!(config["csrf_header"], "x-rustf-workers");
}
