//! The durable queue's routes: stored jobs, listed, counted and read; (when the
//! application turns it on) retried, cancelled, deleted and pruned; and enqueued.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use serde::Serialize;

use super::extract::{Body, Path, Query};
use super::handlers::{acted, disabled, error, forged, invalid_json, payload, respond};
use super::RouterBuilder;
use crate::queue::{JobFilter, JobState};
use crate::JobOptions;

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
    let filter = match filter_of(query) {
        Ok(filter) => filter,
        Err(refused) => return *refused,
    };
    match http.registry.jobs(filter).await {
        Ok(page) => Json(page).into_response(),
        Err(err) => error(&err),
    }
}

/// The filter a job query names, or the answer to a state no job has.
fn filter_of(query: JobQuery) -> Result<JobFilter, Box<Response>> {
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
                return Err(Box::new(respond(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!(
                        "unknown job state `{name}`; the states are {}",
                        JobState::ALL.map(JobState::as_str).join(", ")
                    ),
                )))
            }
        }
    }
    Ok(JobFilter {
        states,
        worker: query.worker,
        search: query.search,
        limit: query.limit.unwrap_or(0),
        before_id: query.before,
    })
}

/// `POST /jobs/retry`, `/jobs/cancel`, `/jobs/delete`: the action on every job the
/// query (`state`, `worker`, `search`, as `GET /jobs`) matches; answers
/// [`JobsChanged`](crate::queue::JobsChanged).
pub(super) async fn retry_all(
    State(http): Shared,
    headers: HeaderMap,
    Query(query): Query<JobQuery>,
) -> Response {
    bulk(&http, Bulk::Retry, &headers, query).await
}

pub(super) async fn cancel_all(
    State(http): Shared,
    headers: HeaderMap,
    Query(query): Query<JobQuery>,
) -> Response {
    bulk(&http, Bulk::Cancel, &headers, query).await
}

pub(super) async fn delete_all(
    State(http): Shared,
    headers: HeaderMap,
    Query(query): Query<JobQuery>,
) -> Response {
    bulk(&http, Bulk::Delete, &headers, query).await
}

enum Bulk {
    Retry,
    Cancel,
    Delete,
}

async fn bulk(
    http: &RouterBuilder,
    action: Bulk,
    headers: &HeaderMap,
    query: JobQuery,
) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    if let Some(refused) = forged(headers) {
        return refused;
    }
    let filter = match filter_of(query) {
        Ok(filter) => filter,
        Err(refused) => return *refused,
    };
    let registry = &http.registry;
    let changed = match action {
        Bulk::Retry => registry.retry_jobs(filter).await,
        Bulk::Cancel => registry.cancel_jobs(filter).await,
        Bulk::Delete => registry.delete_jobs(filter).await,
    };
    match changed {
        Ok(changed) => Json(changed).into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn job(State(http): Shared, Path(id): Path<String>) -> Response {
    match http.registry.job(&id).await {
        Ok(job) => Json(job).into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn retry(
    State(http): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    match http.registry.retry_job(&id).await {
        Ok(()) => acted(StatusCode::ACCEPTED, &id, "available"),
        Err(err) => error(&err),
    }
}

pub(super) async fn cancel(
    State(http): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    match http.registry.cancel(&id).await {
        Ok(()) => acted(StatusCode::ACCEPTED, &id, "cancelling"),
        Err(err) => error(&err),
    }
}

pub(super) async fn delete(
    State(http): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    match http.registry.delete_job(&id).await {
        Ok(()) => acted(StatusCode::OK, &id, "deleted"),
        Err(err) => error(&err),
    }
}

pub(super) async fn counts(State(http): Shared) -> Response {
    match http.registry.job_counts().await {
        Ok(counts) => Json(counts).into_response(),
        Err(err) => error(&err),
    }
}

/// `POST /jobs/prune`'s query: `older_than_ms`, required.
#[derive(Debug, Deserialize)]
pub(super) struct PruneQuery {
    older_than_ms: u64,
}

/// What `POST /jobs/prune` did.
#[derive(Debug, Serialize)]
struct Pruned {
    pruned: u64,
}

pub(super) async fn prune(
    State(http): Shared,
    headers: HeaderMap,
    Query(query): Query<PruneQuery>,
) -> Response {
    if !http.allow_jobs {
        return disabled("managing jobs", "allow_managing_jobs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    let older_than = Duration::from_millis(query.older_than_ms);
    match http.registry.prune_jobs(older_than).await {
        Ok(pruned) => Json(Pruned { pruned }).into_response(),
        Err(err) => error(&err),
    }
}

/// `POST /{name}/jobs`'s query: when and how the job runs, each optional.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EnqueueQuery {
    delay_ms: Option<u64>,
    priority: Option<i32>,
    retries: Option<u32>,
    timeout_ms: Option<u64>,
    unique_key: Option<String>,
    idempotency_key: Option<String>,
    queue: Option<String>,
}

/// What `POST /{name}/jobs` stored.
#[derive(Debug, Serialize)]
struct EnqueuedJob {
    id: String,
    worker: String,
}

pub(super) async fn enqueue(
    State(http): Shared,
    Path(name): Path<String>,
    Query(query): Query<EnqueueQuery>,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    if !http.allow_start {
        return disabled("starting runs", "allow_starting_runs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    let payload = match payload(&body) {
        Ok(payload) => payload,
        Err(err) => return invalid_json(&err),
    };
    let mut options = JobOptions::new();
    if let Some(ms) = query.delay_ms {
        options = options.delay(Duration::from_millis(ms));
    }
    if let Some(priority) = query.priority {
        options = options.priority(priority);
    }
    if let Some(retries) = query.retries {
        options = options.retries(retries);
    }
    if let Some(ms) = query.timeout_ms {
        options = options.timeout(Duration::from_millis(ms));
    }
    if let Some(key) = query.unique_key {
        options = options.unique_key(key);
    }
    if let Some(key) = query.idempotency_key {
        options = options.idempotency_key(key);
    }
    if let Some(queue) = query.queue {
        options = options.queue(queue);
    }
    match http.registry.enqueue_with(&name, payload, options).await {
        // Stored: it runs when due, in whichever process claims it.
        Ok(id) => (StatusCode::ACCEPTED, Json(EnqueuedJob { id, worker: name })).into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn nodes(State(http): Shared) -> Response {
    match http.registry.nodes().await {
        Ok(nodes) => Json(nodes).into_response(),
        Err(err) => error(&err),
    }
}
