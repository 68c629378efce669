//! An axum router with worker statistics, live runs, Server-Sent Events of a run's
//! messages, and Prometheus metrics. Feature `http`.
//!
//! ```no_run
//! use axum::Router;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let app: Router = Router::new().nest("/admin/workers", rustf_workers::http::router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! | route | what |
//! |---|---|
//! | `GET /` | every definition with its statistics, live and queued runs, p50 and p95 durations |
//! | `GET /events` | Server-Sent Events: an `overview` (definitions, live runs, job counts) every second |
//! | `GET /{name}` | one definition: statistics, options, live run ids |
//! | `GET /runs`, `GET /runs/{id}` | live runs: worker, start time, elapsed, last message; an ended run's record (state, attempts) while the registry remembers it |
//! | `GET /runs/{id}/events` | Server-Sent Events: `message`, `lagged`, then `end` with the outcome (a remembered ended run: its `end` alone) |
//! | `GET /runs/{id}/detail` | all that is known of a run by that id: live info and payload, its record once ended, its stored job |
//! | `GET /cron` | cron schedules: expression, last and next tick, newest stored job |
//! | `GET /metrics` | Prometheus (OpenMetrics) text |
//! | `POST /{name}/runs` | start a run with the JSON body as payload; off unless [`RouterBuilder::allow_starting_runs`] |
//! | `DELETE /runs/{id}` | cancel a run; off unless [`RouterBuilder::allow_cancelling_runs`] |
//! | `GET /jobs?state=&worker=&search=&limit=&before=` | stored jobs of the durable queue, newest first, paged |
//! | `GET /jobs/{id}` | one stored job: state, attempts, errors, progress, checkpoint |
//! | `GET /jobs/counts` | how many stored jobs each worker has in each state |
//! | `GET /nodes` | the processes that run the queue's jobs: host, capacity, load, status |
//! | `POST /jobs/{id}/retry`, `POST /jobs/{id}/cancel`, `DELETE /jobs/{id}`, `POST /jobs/prune?older_than_ms=` | manage stored jobs; off unless [`RouterBuilder::allow_managing_jobs`] |
//! | `POST /{name}/jobs?delay_ms=&priority=&unique_key=...` | enqueue a job with the JSON body as payload; off unless [`RouterBuilder::allow_starting_runs`] |
//! | `GET /ui/` | the dashboard: a web page over the routes above (feature `dashboard`) |
//!
//! Every route that changes things (`POST`, `DELETE`) requires the header
//! [`CSRF_HEADER`] (`x-rustf-workers: 1`) and answers `403` `csrf` without it: pages of
//! other sites cannot set it, so they cannot make an operator's browser act.
//!
//! Every error is JSON ([`ErrorBody`]) with a status and a `kind` naming the problem,
//! including the ones axum's extractors would answer in plain text: a path parameter that
//! is not UTF-8 (`400` `invalid_path`), a body over [`RouterBuilder::body_limit`] (`413`
//! `body_too_large`), an unknown route (`404` `not_found`), a method a route does not
//! take (`405` `method_not_allowed`). The guide is `docs/http.md`; put the router behind
//! your application's own authentication.

#[cfg(feature = "dashboard")]
mod dashboard;
mod extract;
mod handlers;
mod jobs;
mod json;
mod metrics;
mod overview;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::WorkerRegistry;

pub use json::{
    DefinitionDetail, DefinitionOptions, DefinitionSummary, ErrorBody, ErrorDetail, StartedRun,
};

/// The largest request body the router reads unless [`RouterBuilder::body_limit`] says
/// otherwise: 2 MiB, axum's own default.
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The header every request that changes things must carry, with any non-empty value
/// (`x-rustf-workers: 1`); without it the router answers `403` with `"kind": "csrf"`.
///
/// A page of another site can make the operator's browser send a form or a plain `fetch`
/// to the router, cookies included, but not with a custom header: that takes a CORS
/// preflight, which the router does not answer. Scripts and `curl` add it:
///
/// ```text
/// curl -X DELETE -H 'x-rustf-workers: 1' localhost:3000/admin/workers/runs/<id>
/// ```
pub const CSRF_HEADER: &str = "x-rustf-workers";

/// The read-only router over the global registry: statistics, live runs, events, metrics.
/// Starting and cancelling runs stay off; see [`RouterBuilder`].
pub fn router() -> Router {
    RouterBuilder::new().build()
}

/// Builds the router: which registry, whether runs may be started or cancelled over HTTP,
/// and how large a request body it reads.
///
/// ```
/// let admin = rustf_workers::http::RouterBuilder::new()
///     .allow_starting_runs()
///     .allow_cancelling_runs()
///     .build();
/// # let _: axum::Router = admin;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RouterBuilder {
    registry: WorkerRegistry,
    allow_start: bool,
    allow_cancel: bool,
    allow_jobs: bool,
    body_limit: usize,
}

impl RouterBuilder {
    /// Over the global registry, read-only.
    pub fn new() -> Self {
        Self::for_registry(WorkerRegistry::global().clone())
    }

    /// Over `registry`, read-only.
    pub fn for_registry(registry: WorkerRegistry) -> Self {
        Self {
            registry,
            allow_start: false,
            allow_cancel: false,
            allow_jobs: false,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Turns on `POST /{name}/runs`, and `POST /{name}/jobs` for the durable queue.
    /// Anyone who can reach the router can then start or enqueue any worker with any
    /// payload: mount it behind your own authentication.
    pub fn allow_starting_runs(mut self) -> Self {
        self.allow_start = true;
        self
    }

    /// Turns on `DELETE /runs/{id}`. Mount it behind your own authentication.
    pub fn allow_cancelling_runs(mut self) -> Self {
        self.allow_cancel = true;
        self
    }

    /// Turns on `POST /jobs/{id}/retry`, `POST /jobs/{id}/cancel`, `DELETE /jobs/{id}` and
    /// `POST /jobs/prune` for the registry's durable queue. Anyone who can reach the router
    /// can then retry, cancel, delete or prune any stored job: mount it behind the
    /// application's authentication.
    pub fn allow_managing_jobs(mut self) -> Self {
        self.allow_jobs = true;
        self
    }

    /// Sets the largest request body the router reads, in bytes; a larger one is answered
    /// `413` with `"kind": "body_too_large"` before any worker sees it. Only
    /// `POST /{name}/runs` and `POST /{name}/jobs` read a body: the payload. Default: [`DEFAULT_BODY_LIMIT`].
    ///
    /// The router sets this limit itself, so a `DefaultBodyLimit` layer around it does not
    /// change it.
    ///
    /// ```
    /// let admin = rustf_workers::http::RouterBuilder::new()
    ///     .allow_starting_runs()
    ///     .body_limit(64 * 1024)
    ///     .build();
    /// # let _: axum::Router = admin;
    /// ```
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The router. Also turns on
    /// [`keep_last_messages`](WorkerRegistry::keep_last_messages), so run listings show
    /// each run's last message.
    pub fn build(self) -> Router {
        self.registry.keep_last_messages(true);
        let body_limit = DefaultBodyLimit::max(self.body_limit);
        let state = Arc::new(self);
        let router = Router::new()
            .route("/", get(handlers::definitions))
            .route("/events", get(overview::events))
            .route("/cron", get(overview::cron))
            .route("/runs/{id}/detail", get(overview::detail))
            .route("/metrics", get(handlers::metrics))
            .route("/runs", get(handlers::runs))
            .route("/runs/{id}", get(handlers::run).delete(handlers::cancel))
            .route("/runs/{id}/events", get(handlers::events))
            .route("/jobs", get(jobs::jobs))
            .route("/jobs/counts", get(jobs::counts))
            .route("/nodes", get(jobs::nodes))
            .route("/jobs/prune", axum::routing::post(jobs::prune))
            .route("/jobs/retry", axum::routing::post(jobs::retry_all))
            .route("/jobs/cancel", axum::routing::post(jobs::cancel_all))
            .route("/jobs/delete", axum::routing::post(jobs::delete_all))
            .route("/jobs/{id}", get(jobs::job).delete(jobs::delete))
            .route("/jobs/{id}/retry", axum::routing::post(jobs::retry))
            .route("/jobs/{id}/cancel", axum::routing::post(jobs::cancel))
            .route("/{name}", get(handlers::definition))
            .route("/{name}/runs", axum::routing::post(handlers::start))
            .route("/{name}/jobs", axum::routing::post(jobs::enqueue));
        #[cfg(feature = "dashboard")]
        let router = dashboard::routes(router);
        router
            .fallback(handlers::not_found)
            .method_not_allowed_fallback(handlers::method_not_allowed)
            .layer(body_limit)
            .with_state(state)
    }
}

impl Default for RouterBuilder {
    fn default() -> Self {
        Self::new()
    }
}
