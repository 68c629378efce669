//! A web application that runs workers from its controllers.
//!
//! `cargo run -p web-server -- --port 3000` (or `PORT=3000`; port 0 picks a free one),
//! then open <http://127.0.0.1:3000/>. It prints `listening on http://127.0.0.1:PORT` once
//! it accepts connections, and stops gracefully on Ctrl-C or SIGTERM.
//!
//! | route | controller |
//! |---|---|
//! | `GET /` | a page that starts a report and shows its progress live |
//! | `POST /emails` | `WORKER::run("send-email", ..)`: waits for the email to be sent |
//! | `POST /reports` | `WORKER::call("generate-report", ..)`: answers with the run id at once |
//! | `GET /reports/{id}/progress` | Server-Sent Events of that live report's progress |
//! | `GET /reports/live?steps=N` | starts a report and streams its progress in one request |
//! | `POST /exports` | starts the hour-long `export` |
//! | `/admin/workers/...` | `rustf_workers::http`, behind a bearer token when `ADMIN_TOKEN` is set |
//!
//! `SHUTDOWN_GRACE_MS` sets how long running workers and open connections get to finish at
//! shutdown; connections are closed a second after it, whatever their clients do.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Display;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, Request};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rustf_workers::prelude::*;
use rustf_workers::RunEvent;

rustf_workers::auto_workers!();

/// How long open connections get past the workers' grace period: time for a progress
/// stream to send the `done` of a run that shutdown cancelled.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    workers::installer().install().await?;
    if let Some(ms) = env_number("SHUTDOWN_GRACE_MS") {
        WORKER::set_shutdown_grace(Duration::from_millis(ms));
    }

    let admin = rustf_workers::http::RouterBuilder::new()
        .allow_starting_runs()
        .allow_cancelling_runs()
        .build()
        .route_layer(middleware::from_fn(require_admin_token));
    let app = Router::new()
        .route("/", get(page))
        .route("/emails", post(send_email))
        .route("/reports", post(start_report))
        .route("/reports/live", get(live_report))
        .route("/reports/{id}/progress", get(report_progress))
        .route("/exports", post(start_export))
        .nest("/admin/workers", admin)
        // Without these, an unknown path or a wrong method is an empty 404 or 405.
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);

    let port = port_from_args_or_env();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });

    let signal = shutdown_signal().await;
    log::info!("{signal} received: shutting down");
    // Stop accepting requests, and stop the workers at the same time: open progress
    // streams end when their runs do, which lets the server finish draining. Draining
    // waits for every request to end, and a client that never finishes sending one (its
    // headers, or the body its `Content-Length` announced) would hold the process up
    // forever: connections get the grace period too, and are closed after it.
    let _ = stop_server.send(());
    let drain = WORKER::registry().shutdown_grace() + DRAIN_MARGIN;
    let (stopped, drained) = tokio::join!(WORKER::shutdown(), tokio::time::timeout(drain, server));
    stopped?;
    match drained {
        Ok(served) => served.map_err(|err| Error::internal(err.to_string()))??,
        // Returning from `main` drops the connections that are left.
        Err(_) => log::warn!("closing connections still open {drain:?} after {signal}"),
    }
    log::info!("stopped cleanly");
    Ok(())
}

/// `POST /emails`: runs `send-email` and waits for it.
async fn send_email(body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let payload = match serde_json::from_slice::<Value>(&body) {
        Ok(payload) => payload,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {err}")),
    };
    match WORKER::run("send-email", Some(payload)).await {
        Ok(()) => Json(json!({ "status": "sent" })).into_response(),
        Err(err) if err.is_validation() => error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// `POST /reports`: starts `generate-report` and answers with where to watch it.
async fn start_report(body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let payload = serde_json::from_slice::<Value>(&body).ok();
    match WORKER::call("generate-report", None, payload).await {
        Ok(handle) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "id": handle.id(),
                "progress": format!("/reports/{}/progress", handle.id()),
            })),
        )
            .into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// `GET /reports/{id}/progress`: a live report's progress as Server-Sent Events, then its
/// outcome. A report that has already finished is a 404.
async fn report_progress(id: Result<Path<String>, PathRejection>) -> Response {
    let Path(id) = match id {
        Ok(id) => id,
        Err(rejection) => return rejected(rejection),
    };
    match WORKER::registry().subscribe(&id) {
        Ok(subscription) => progress_events(subscription),
        Err(err) => error(StatusCode::NOT_FOUND, err.to_string()),
    }
}

/// `GET /reports/live?steps=N`: starts a report and streams its progress. Subscribing
/// through the handle, before the worker has run, misses nothing.
async fn live_report(Query(query): Query<HashMap<String, String>>) -> Response {
    let steps = query
        .get("steps")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(5);
    match WORKER::call("generate-report", None, Some(json!({ "steps": steps }))).await {
        Ok(handle) => progress_events(handle.subscribe()),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

fn progress_events(subscription: rustf_workers::Subscription) -> Response {
    let events = futures::stream::unfold(subscription, |mut subscription| async move {
        let event = match subscription.recv().await? {
            RunEvent::Message(progress) => Event::default()
                .event("progress")
                .data(progress.to_string()),
            RunEvent::Finished(outcome) => Event::default().event("done").data(
                json!({ "status": outcome.status.as_str(), "error": outcome.error }).to_string(),
            ),
            _ => Event::default().comment("skipped"),
        };
        Some((Ok::<_, Infallible>(event), subscription))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `POST /exports`: starts the long `export`.
async fn start_export() -> Response {
    match WORKER::call("export", None, None).await {
        Ok(handle) => (StatusCode::ACCEPTED, Json(json!({ "id": handle.id() }))).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// `GET /`: a page that starts a report and follows its progress with `EventSource`.
async fn page() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<title>rustf-workers</title>
<button id="start">Generate a report</button>
<progress id="bar" max="100" value="0"></progress>
<pre id="log"></pre>
<script>
document.getElementById("start").onclick = () => {
  const events = new EventSource("/reports/live?steps=20");
  events.addEventListener("progress", (e) => {
    document.getElementById("bar").value = JSON.parse(e.data).percent;
  });
  events.addEventListener("done", (e) => {
    document.getElementById("log").textContent += e.data + "\n";
    events.close();
  });
};
</script>"#,
    )
}

/// Lets admin requests through when `ADMIN_TOKEN` is unset or matches the bearer token.
async fn require_admin_token(request: Request, next: Next) -> Response {
    let Ok(expected) = std::env::var("ADMIN_TOKEN") else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given == Some(expected.as_str()) {
        next.run(request).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "a valid `Authorization: Bearer` token is required".into(),
        )
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
}

/// An extractor's rejection (a body over axum's 2 MiB limit, a path that is not UTF-8)
/// as this application's JSON error: axum's own answer is plain text.
fn rejected(rejection: impl IntoResponse + Display) -> Response {
    let message = rejection.to_string();
    error(rejection.into_response().status(), message)
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn port_from_args_or_env() -> u16 {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            if let Some(port) = args.next().and_then(|p| p.parse().ok()) {
                return port;
            }
        }
    }
    env_number("PORT")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(3000)
}

fn env_number(name: &str) -> Option<u64> {
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
