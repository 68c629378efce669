//! The route handlers.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::extract::{Body, Path};
use super::json::{
    DefinitionDetail, DefinitionOptions, DefinitionSummary, ErrorBody, ErrorDetail, StartedRun,
};
use super::{metrics as exposition, overview, RouterBuilder, CSRF_HEADER};
use crate::{Error, RunEvent};

type Shared = State<Arc<RouterBuilder>>;

pub(super) async fn definitions(State(http): Shared) -> Json<Value> {
    let runs = http.registry.live_runs();
    let workers: Vec<DefinitionSummary> = overview::summaries(&http.registry, &runs);
    Json(json!({ "workers": workers }))
}

pub(super) async fn definition(State(http): Shared, Path(name): Path<String>) -> Response {
    match http.registry.definition(&name) {
        Ok(definition) => Json(DefinitionDetail {
            name: name.clone(),
            stats: definition.counters.snapshot(),
            options: DefinitionOptions {
                timeout_ms: definition
                    .options
                    .default_timeout()
                    .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            },
            live_runs: http.registry.live_ids(|run| run.worker_name() == name),
        })
        .into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn runs(State(http): Shared) -> Json<Value> {
    Json(json!({ "runs": http.registry.live_runs() }))
}

pub(super) async fn run(State(http): Shared, Path(id): Path<String>) -> Response {
    match http.registry.run_info(&id) {
        Ok(info) => Json(info).into_response(),
        // Ended: what the registry remembers of it, while it does.
        Err(err) => match http.registry.run_record(&id) {
            Ok(record) => Json(record).into_response(),
            Err(_) => error(&err),
        },
    }
}

pub(super) async fn events(State(http): Shared, Path(id): Path<String>) -> Response {
    match http.registry.subscribe(&id) {
        Ok(subscription) => {
            let stream = futures::stream::unfold(subscription, |mut subscription| async move {
                let event = subscription.recv().await?;
                Some((Ok::<_, Infallible>(sse_event(event)), subscription))
            });
            Sse::new(stream)
                .keep_alive(KeepAlive::default())
                .into_response()
        }
        // Ended, maybe before the client could ask (a run started by `POST` that finished
        // at once): its `end` event, while the registry remembers it.
        Err(err) => match http.registry.ended_outcome(&id) {
            Some(outcome) => {
                let end = sse_event(RunEvent::Finished(outcome));
                Sse::new(futures::stream::iter([Ok::<_, Infallible>(end)])).into_response()
            }
            None => error(&err),
        },
    }
}

fn sse_event(event: RunEvent) -> Event {
    match event {
        RunEvent::Message(message) => Event::default().event("message").data(message.to_string()),
        RunEvent::Lagged(missed) => Event::default()
            .event("lagged")
            .data(json!({ "missed": missed }).to_string()),
        RunEvent::Finished(outcome) => Event::default()
            .event("end")
            .data(serde_json::to_string(&outcome).unwrap_or_default()),
    }
}

/// A request body as a worker's payload: none when empty, else JSON.
pub(super) fn payload(body: &[u8]) -> Result<Option<Value>, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<Value>(body).map(Some)
}

/// The answer to a body [`payload`] cannot read.
pub(super) fn invalid_json(err: &serde_json::Error) -> Response {
    respond(
        StatusCode::BAD_REQUEST,
        "invalid_json",
        format!("the request body is not valid JSON: {err}"),
    )
}

pub(super) async fn start(
    State(http): Shared,
    Path(name): Path<String>,
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
    match http.registry.call(&name, None, payload).await {
        // The run goes on without its handle; watch it through its events.
        Ok(handle) => (
            StatusCode::ACCEPTED,
            Json(StartedRun {
                id: handle.id().to_owned(),
                worker: name,
            }),
        )
            .into_response(),
        Err(err) => error(&err),
    }
}

pub(super) async fn cancel(
    State(http): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !http.allow_cancel {
        return disabled("cancelling runs", "allow_cancelling_runs");
    }
    if let Some(refused) = forged(&headers) {
        return refused;
    }
    match http.registry.cancel(&id).await {
        Ok(()) => acted(StatusCode::ACCEPTED, &id, "cancelling"),
        Err(err) => error(&err),
    }
}

pub(super) async fn metrics(State(http): Shared) -> Response {
    let jobs = match http.registry.job_counts().await {
        Ok(counts) => counts,
        Err(Error::NoQueue) => Vec::new(),
        // The in-process metrics matter most when the store is down: served without it.
        Err(err) => {
            log::warn!(target: "rustf_workers::http", "/metrics without job counts: {err}");
            Vec::new()
        }
    };
    match exposition::render(&http.registry, jobs) {
        Ok(text) => ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], text).into_response(),
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the metrics could not be encoded".into(),
        ),
    }
}

pub(super) async fn not_found(method: Method, uri: Uri) -> Response {
    respond(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

pub(super) fn disabled(what: &str, switch: &str) -> Response {
    respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "disabled",
        format!(
            "{what} over HTTP is turned off; turn it on with `RouterBuilder::{switch}()`, \
             behind your own authentication"
        ),
    )
}

/// `403` `csrf` for a request that changes things without the [`CSRF_HEADER`]: a page
/// of another site can make a browser send a form or a simple request with the
/// operator's cookies, never a custom header (that needs a CORS preflight the router
/// does not answer).
pub(super) fn forged(headers: &HeaderMap) -> Option<Response> {
    let present = headers
        .get(CSRF_HEADER)
        .is_some_and(|value| !value.as_bytes().is_empty());
    (!present).then(|| {
        respond(
            StatusCode::FORBIDDEN,
            "csrf",
            format!(
                "a request that changes things must carry the header `{CSRF_HEADER}` \
                 (any value, e.g. `{CSRF_HEADER}: 1`), which cross-site pages cannot set"
            ),
        )
    })
}

/// The status and kind for each error a handler can meet.
pub(super) fn error(err: &Error) -> Response {
    let (status, kind) = match err {
        Error::NotRegistered { .. } => (StatusCode::NOT_FOUND, "not_registered"),
        Error::RunNotFound { .. } => (StatusCode::NOT_FOUND, "run_not_found"),
        Error::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        Error::AlreadyRegistered { .. } => (StatusCode::CONFLICT, "already_registered"),
        Error::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        Error::JobNotFound { .. } => (StatusCode::NOT_FOUND, "job_not_found"),
        Error::NoQueue => (StatusCode::NOT_FOUND, "no_queue"),
        Error::Store { .. } => (StatusCode::SERVICE_UNAVAILABLE, "store"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    respond(status, kind, err.to_string())
}

/// What a route that changes things answers: `{"id": .., "status": ..}`.
pub(super) fn acted(status: StatusCode, id: &str, now: &str) -> Response {
    (status, Json(json!({ "id": id, "status": now }))).into_response()
}

pub(super) fn respond(status: StatusCode, kind: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            kind: kind.to_owned(),
            message,
        },
    };
    (status, Json(body)).into_response()
}
