//! The application's routes: a controller that enqueues, a job's stored state, and the
//! worker statistics router.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::Path;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rustf_workers::prelude::*;

/// The routes.
///
/// | route | what |
/// |---|---|
/// | `POST /signups` | stores a `send-welcome` job; `202` with its id |
/// | `GET /jobs/{id}` | the job as stored: state, attempts, errors, checkpoint |
/// | `/admin/workers/...` | `rustf_workers::http`: stats, runs, and `/jobs` (listed, retried, cancelled) |
/// | `/admin/workers/ui/` | the dashboard over them |
pub(crate) fn app() -> Router {
    // Starting runs and managing jobs change things: this example listens on loopback
    // only. Put it behind authentication (see `examples/web-server`) before it listens
    // anywhere else.
    let admin = rustf_workers::http::RouterBuilder::new()
        .allow_starting_runs()
        .allow_cancelling_runs()
        .allow_managing_jobs()
        .build();
    Router::new()
        .route("/signups", post(signup))
        .route("/jobs/{id}", get(job))
        .nest("/admin/workers", admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `POST /signups` with `{"email": ...}`: the welcome email is stored before this answers,
/// and sent by whichever process claims it, even if this one dies first.
async fn signup(body: Result<Json<Value>, JsonRejection>) -> Response {
    let Json(payload) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    match WORKER::registry()
        .enqueue("send-welcome", Some(payload))
        .await
    {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "job": format!("/jobs/{id}") })),
        )
            .into_response(),
        // A payload `Welcome` cannot read: refused, and nothing is stored.
        Err(err) if err.is_validation() => error(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// `GET /jobs/{id}`: the stored `JobRecord`, with its last checkpoint and progress.
async fn job(id: Result<Path<String>, PathRejection>) -> Response {
    let Path(id) = match id {
        Ok(id) => id,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let record = match WORKER::registry().job(&id).await {
        Ok(record) => record,
        Err(err) if err.is_job_not_found() => return error(StatusCode::NOT_FOUND, err.to_string()),
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    };
    Json(json!(record)).into_response()
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
