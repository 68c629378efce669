//! `GET /metrics`: the registry's counters in Prometheus (OpenMetrics) text, encoded by
//! `prometheus-client` at scrape time from the same atomics `stats()` reads.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::queue::JobCount;
use crate::run::stats::DURATION_BUCKETS_MS;
use crate::{WorkerRegistry, WorkerStats};

/// The content type of the exposition.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition text for `registry`, with its durable queue's `jobs` counts (empty
/// without a queue).
pub(super) fn render(registry: &WorkerRegistry, jobs: Vec<JobCount>) -> Result<String, fmt::Error> {
    let mut metrics = Registry::default();
    metrics.register_collector(Box::new(Collector {
        registry: registry.clone(),
        jobs,
    }));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &metrics)?;
    Ok(text)
}

#[derive(Debug)]
struct Collector {
    registry: WorkerRegistry,
    jobs: Vec<JobCount>,
}

type Counter = (&'static str, &'static str, fn(&WorkerStats) -> u64);

const COUNTERS: [Counter; 6] = [
    (
        "rustf_workers_runs",
        "Finished runs, whatever their outcome.",
        |s| s.runs,
    ),
    (
        "rustf_workers_errors",
        "Finished runs that did not complete successfully.",
        |s| s.errors,
    ),
    (
        "rustf_workers_failed",
        "Runs whose handler returned an error.",
        |s| s.failed,
    ),
    (
        "rustf_workers_timed_out",
        "Runs stopped by their timeout.",
        |s| s.timed_out,
    ),
    (
        "rustf_workers_cancelled",
        "Runs cancelled by request or by shutdown.",
        |s| s.cancelled,
    ),
    (
        "rustf_workers_panicked",
        "Runs whose handler panicked.",
        |s| s.panicked,
    ),
];

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let definitions: Vec<_> = self
            .registry
            .definition_list()
            .into_iter()
            .map(|d| {
                (
                    d.name.to_string(),
                    d.counters.snapshot(),
                    d.counters.duration_buckets(),
                )
            })
            .collect();

        for (name, help, value) in COUNTERS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (worker, stats, _) in &definitions {
                let labels = [("worker", worker.as_str())];
                ConstCounter::new(value(stats)).encode(metric.encode_family(&labels)?)?;
            }
        }

        let mut running = encoder.encode_descriptor(
            "rustf_workers_running",
            "Runs in flight.",
            None,
            MetricType::Gauge,
        )?;
        for (worker, stats, _) in &definitions {
            let labels = [("worker", worker.as_str())];
            ConstGauge::new(stats.running as i64).encode(running.encode_family(&labels)?)?;
        }

        let mut durations = encoder.encode_descriptor(
            "rustf_workers_run_duration",
            "Duration of finished attempts, from their start to their end.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (worker, stats, buckets) in &definitions {
            let labels = [("worker", worker.as_str())];
            let mut bounded: Vec<(f64, u64)> = DURATION_BUCKETS_MS
                .iter()
                .zip(buckets)
                .map(|(&ms, &count)| (ms as f64 / 1000.0, count))
                .collect();
            let within: u64 = buckets.iter().sum();
            bounded.push((f64::INFINITY, stats.runs.saturating_sub(within)));
            // The count is the buckets' total, so the two agree even while runs finish
            // between the reads.
            let count = bounded.iter().map(|(_, n)| n).sum();
            durations
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    stats.total_runtime_ms as f64 / 1000.0,
                    count,
                    &bounded,
                    None,
                )?;
        }

        if !self.jobs.is_empty() {
            let mut jobs = encoder.encode_descriptor(
                "rustf_workers_jobs",
                "Stored jobs of the durable queue, by worker and state.",
                None,
                MetricType::Gauge,
            )?;
            for count in &self.jobs {
                let labels = [
                    ("worker", count.worker.as_str()),
                    ("state", count.state.as_str()),
                ];
                let value = i64::try_from(count.count).unwrap_or(i64::MAX);
                ConstGauge::new(value).encode(jobs.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
