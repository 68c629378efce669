//! Node a's routes: a controller that stores a batch of jobs, and the worker statistics
//! router, whose `/jobs` and `/nodes` show the whole cluster.

use axum::extract::rejection::JsonRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rustf_workers::prelude::*;
use rustf_workers::JobOptions;
use serde::Deserialize;

/// The body of `POST /signups`.
#[derive(Debug, Deserialize)]
struct Signups {
    /// The new users' addresses: one welcome email each.
    emails: Vec<String>,
    /// How long each email takes to send, in ms (the worker's default when absent).
    #[serde(default)]
    work_ms: Option<u64>,
}

/// The routes.
///
/// | route | what |
/// |---|---|
/// | `POST /signups` | stores one `send-welcome` job per address, in one transaction; `202` with their ids |
/// | `/admin/workers/...` | `rustf_workers::http`: stats, `GET /jobs/{id}` (state, checkpoint), `GET /nodes` (every node of the database), and the dashboard at `/admin/workers/ui/` (read-only) |
pub(crate) fn app() -> Router {
    // Read-only: this example listens on loopback. Put the router behind authentication
    // (see `examples/web-server`) before it listens anywhere else.
    let admin = rustf_workers::http::router();
    Router::new()
        .route("/signups", post(signups))
        .nest("/admin/workers", admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `POST /signups` with `{"emails": [...]}`: every welcome email is stored before this
/// answers, and sent by whichever node claims it first, this one or another.
async fn signups(body: std::result::Result<Json<Signups>, JsonRejection>) -> Response {
    let Json(signups) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    if signups.emails.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`emails` is empty: nothing to send".to_owned(),
        );
    }
    let jobs = signups.emails.iter().map(|email| {
        let mut payload = json!({ "email": email });
        if let Some(ms) = signups.work_ms {
            payload["work_ms"] = json!(ms);
        }
        ("send-welcome", Some(payload), JobOptions::new())
    });
    // One transaction: every email of the batch is stored, or none. Its commit sends one
    // notification (per worker), which wakes every node listening on the database.
    match WORKER::registry().enqueue_many(jobs).await {
        Ok(ids) => (StatusCode::ACCEPTED, Json(json!({ "ids": ids }))).into_response(),
        Err(err) if err.is_validation() => error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": { "message": message } }))).into_response()
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
