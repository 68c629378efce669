//! The durable queue's routes: stored jobs, listed and read, and (when the application
//! turns it on) retried, cancelled and deleted.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{Path, Query};
use super::handlers::{acted, disabled, error, respond};
use super::RouterBuilder;
use crate::queue::{JobFilter, JobState};

type Shared = State<Arc<RouterBuilder>>;

/// `GET /jobs`'s query: `state` (comma-separated), `worker`, `search` (payload text),
/// `limit`, `before` (the `next` of the previous page).
#[derive(Debug, Default, Deserialize)]
pub(super) struct JobQuery {
    state: Option<String>,
    worker: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
    before: Option<String>,
}

pub(super) async fn jobs(State(http): Shared, Query(query): Query<JobQuery>) -> Response {
    let mut states = Vec::new();
    for name in query
        .state
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        match JobState::from_name(name) {
            Some(state) => states.push(state),
            None => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!(
                        "unknown job state `{name}`; the states are {}",
                        JobState::ALL.map(JobState::as_str).join(", ")
                    ),
                )
            }
        }
    }
    let filter = JobFilter {
        states,
        worker: query.worker,
        search: query.search,
        limit: query.limit.unwrap_or(0),
        before_id: query.before,
    };
    match http.registry.jobs(filter).await {
        Ok(page) => Json(page).into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn job(State(http): Shared, Path(id): Path<String>) -> Response {
    match http.registry.job(&id).await {
        Ok(job) => Json(job).into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn retry(State(http): Shared, Path(id): Path<String>) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    match http.registry.retry_job(&id).await {
        Ok(()) => acted(StatusCode::ACCEPTED, &id, "available"),
        Err(err) => error(&err),
    }
}

pub(super) async fn cancel(State(http): Shared, Path(id): Path<String>) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    match http.registry.cancel(&id).await {
        Ok(()) => acted(StatusCode::ACCEPTED, &id, "cancelling"),
        Err(err) => error(&err),
    }
}

pub(super) async fn delete(State(http): Shared, Path(id): Path<String>) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    match http.registry.delete_job(&id).await {
        Ok(()) => acted(StatusCode::OK, &id, "deleted"),
        Err(err) => error(&err),
    }
}
