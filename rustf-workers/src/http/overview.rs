//! What a dashboard reads besides the per-route JSON: the definitions' summaries with
//! duration percentiles, a stream of overview snapshots, cron schedules, and all that is
//! known of one run.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::extract::Path;
use super::handlers::error;
use super::json::DefinitionSummary;
use super::RouterBuilder;
use crate::queue::JobCount;
use crate::run::stats::DURATION_BUCKETS_MS;
use crate::{Error, RunInfo, RunState, WorkerRegistry};

type Shared = State<Arc<RouterBuilder>>;

/// How often `GET /events` sends an `overview`.
const OVERVIEW_EVERY: Duration = Duration::from_secs(1);

/// Every definition's summary, in name order, with its queued runs counted from `runs`.
pub(super) fn summaries(registry: &WorkerRegistry, runs: &[RunInfo]) -> Vec<DefinitionSummary> {
    registry
        .definition_list()
        .iter()
        .map(|definition| {
            let stats = definition.counters.snapshot();
            let buckets = definition.counters.duration_buckets();
            let queued = runs
                .iter()
                .filter(|run| run.state == RunState::Queued && run.worker == *definition.name)
                .count() as u64;
            DefinitionSummary {
                name: definition.name.to_string(),
                live: stats.running,
                queued,
                p50_ms: quantile(&buckets, stats.runs, stats.max_run_ms, 0.50),
                p95_ms: quantile(&buckets, stats.runs, stats.max_run_ms, 0.95),
                stats,
            }
        })
        .collect()
}

/// The `q` quantile of `runs` finished attempts whose durations `buckets` counts (one
/// count per bound of `DURATION_BUCKETS_MS`; the runs over the last bound are the rest),
/// interpolated linearly inside its bucket as Prometheus' `histogram_quantile` does, and
/// never over the longest run seen.
fn quantile(buckets: &[u64], runs: u64, max_ms: u64, q: f64) -> Option<u64> {
    let total = runs.max(buckets.iter().sum());
    if total == 0 {
        return None;
    }
    // The rank of the wanted attempt, from 1.
    let rank = (q * total as f64).ceil().max(1.0);
    let mut below = 0u64;
    let mut lower = 0u64;
    for (&bound, &count) in DURATION_BUCKETS_MS.iter().zip(buckets) {
        if count > 0 && (below + count) as f64 >= rank {
            let within = (rank - below as f64) / count as f64;
            let estimate = lower as f64 + (bound - lower) as f64 * within;
            return Some((estimate.round() as u64).min(max_ms.max(1)));
        }
        below += count;
        lower = bound;
    }
    // Over the last bound: the histogram says no more than that.
    Some(max_ms)
}

/// One snapshot of `GET /events`.
#[derive(Debug, Serialize)]
struct Overview {
    at_ms: u64,
    workers: Vec<DefinitionSummary>,
    runs: Vec<RunInfo>,
    /// `None` without a durable queue, or while its store cannot be read.
    jobs: Option<Vec<JobCount>>,
}

async fn overview(registry: &WorkerRegistry) -> Overview {
    let runs = registry.live_runs();
    let jobs = match registry.job_counts().await {
        Ok(counts) => Some(counts),
        Err(Error::NoQueue) => None,
        Err(err) => {
            log::warn!(target: "rustf_workers::http", "/events without job counts: {err}");
            None
        }
    };
    Overview {
        at_ms: now_ms(),
        workers: summaries(registry, &runs),
        runs,
        jobs,
    }
}

/// `GET /events`: an `overview` event at once, then one a second, for as long as the
/// client stays.
pub(super) async fn events(State(http): Shared) -> Response {
    let mut ticks = tokio::time::interval(OVERVIEW_EVERY);
    // A client that reads slowly gets the newest snapshot, not a backlog.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = futures::stream::unfold((http, ticks), |(http, mut ticks)| async move {
        ticks.tick().await;
        let snapshot = overview(&http.registry).await;
        let event = Event::default()
            .event("overview")
            .data(serde_json::to_string(&snapshot).unwrap_or_default());
        Some((Ok::<_, Infallible>(event), (http, ticks)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One cron schedule in `GET /cron`.
#[derive(Debug, Serialize)]
struct CronEntry {
    worker: String,
    expr: &'static str,
    /// The schedule's last tick at or before now, in ms since the Unix epoch.
    last_tick_ms: Option<i64>,
    /// Its next tick after now.
    next_tick_ms: Option<i64>,
    /// The newest stored job of the worker, with a durable queue.
    last_job: Option<LastJob>,
}

#[derive(Debug, Serialize)]
struct LastJob {
    id: String,
    state: &'static str,
    run_at_ms: i64,
}

/// `GET /cron`: the registry's cron schedules, by worker name.
pub(super) async fn cron(State(http): Shared) -> Response {
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let mut entries = Vec::new();
    for definition in http.registry.definition_list() {
        let Some(expr) = definition.options.cron_expr() else {
            continue;
        };
        let (last_tick_ms, next_tick_ms) = ticks(expr, now);
        let filter = crate::queue::JobFilter {
            worker: Some(definition.name.to_string()),
            limit: 1,
            ..crate::queue::JobFilter::default()
        };
        let last_job = match http.registry.jobs(filter).await {
            Ok(page) => page.jobs.into_iter().next().map(|job| LastJob {
                id: job.id,
                state: job.state.as_str(),
                run_at_ms: job.run_at_ms,
            }),
            Err(Error::NoQueue) => None,
            Err(err) => return error(&err),
        };
        entries.push(CronEntry {
            worker: definition.name.to_string(),
            expr,
            last_tick_ms,
            next_tick_ms,
            last_job,
        });
    }
    Json(entries).into_response()
}

#[cfg(feature = "cron")]
fn ticks(expr: &str, now: i64) -> (Option<i64>, Option<i64>) {
    match crate::queue::CronSchedule::parse(expr) {
        Ok(schedule) => (schedule.last_at_or_before(now), schedule.next_after(now)),
        Err(_) => (None, None),
    }
}

// Without the `cron` feature, registration refuses any schedule: never called.
#[cfg(not(feature = "cron"))]
fn ticks(_expr: &str, _now: i64) -> (Option<i64>, Option<i64>) {
    (None, None)
}

/// `GET /runs/{id}/detail`: everything known of a run or stored job by that id, in one
/// answer: the live run (`RunInfo`) and its payload, or the ended run's `RunRecord`, and
/// the stored job (`JobRecord`) when it is one. `404` `run_not_found` when none is known.
pub(super) async fn detail(State(http): Shared, Path(id): Path<String>) -> Response {
    let live = http.registry.live_run(&id).ok();
    let run = http.registry.run_info(&id).ok();
    let record = match run {
        Some(_) => None,
        None => http.registry.run_record(&id).ok(),
    };
    let job = match http.registry.job(&id).await {
        Ok(job) => Some(job),
        Err(Error::JobNotFound { .. } | Error::NoQueue) => None,
        Err(err) => return error(&err),
    };
    if run.is_none() && record.is_none() && job.is_none() {
        return error(&Error::RunNotFound { run_id: id });
    }
    let payload: Option<Value> = match (&live, &job) {
        (Some(live), _) => live.payload.clone(),
        (None, Some(job)) => job.payload.clone(),
        (None, None) => None,
    };
    Json(serde_json::json!({
        "id": id,
        "run": run,
        "record": record,
        "job": job,
        "payload": payload,
    }))
    .into_response()
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        // 10 runs: 5 within 5 ms, 5 within (5, 10] ms.
        let mut buckets = [0u64; 12];
        buckets[0] = 5;
        buckets[1] = 5;
        assert_eq!(quantile(&buckets, 10, 9, 0.5), Some(5));
        // The 10th of 10: the top of (5, 10], capped by the longest run.
        assert_eq!(quantile(&buckets, 10, 9, 0.95), Some(9));
        assert_eq!(quantile(&buckets, 10, 100, 0.95), Some(10));
        assert_eq!(quantile(&[0; 12], 0, 0, 0.5), None);
        // Every run over the last bound.
        assert_eq!(quantile(&[0; 12], 3, 90_000, 0.5), Some(90_000));
    }
}
