//! The engine's own metrics of `GET /metrics`, read from the serving engine (this
//! engine's, since it started — not the store's, unlike the rest):
//!
//! `george_engine_queue_depth`, `george_engine_queue_delayed`,
//! `george_step_duration_seconds`, `george_store_commit_seconds` and
//! `george_git_lag_commits`, documented in the table of [`crate::metrics`].
//!
//! The engine records durations in fixed buckets of atomics as attempts end and writes
//! commit ([`george_core::engine::metrics`]); a scrape copies them, reading no job.

use george_core::engine::{Engine, HistogramSnapshot, metrics::STEP_MODES};
use george_core::git::CommitId;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Histograms the engine already counted, encoded as they are (one per label set; an
/// empty label set: a single unlabeled histogram).
#[derive(Debug)]
struct Counted(Vec<(Labels, HistogramSnapshot)>);

fn encode_one(h: &HistogramSnapshot, encoder: &mut MetricEncoder<'_>) -> std::fmt::Result {
    let buckets: Vec<(f64, u64)> = h.bounds.iter().copied().zip(h.counts).collect();
    encoder.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &buckets, None)
}

impl EncodeMetric for Counted {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        for (labels, h) in &self.0 {
            if labels.is_empty() {
                encode_one(h, &mut encoder)?;
            } else {
                encode_one(h, &mut encoder.encode_family(labels)?)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Registers the engine's metrics in `registry`; `lag` is the source's lag behind
/// (see [`Engine::commits_behind`]), read once per scrape with the head.
pub(crate) async fn register(registry: &mut Registry, engine: &Engine, head: Option<&CommitId>) {
    let stats = engine.stats();
    let gauge = |v: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    registry.register(
        "engine_queue_depth",
        "Keys in this engine's work queue ready to be reconciled",
        gauge(stats.queue_depth as u64),
    );
    registry.register(
        "engine_queue_delayed",
        "Keys in this engine's work queue waiting for a later time",
        gauge(stats.queue_delayed as u64),
    );
    let m = engine.metrics();
    let by_mode = STEP_MODES
        .iter()
        .zip(m.step_duration)
        .map(|(mode, h)| (vec![("mode", (*mode).to_string())], h))
        .collect();
    registry.register(
        "step_duration_seconds",
        "Duration of step attempts that ended with an outcome, by mode (this engine's)",
        Counted(by_mode),
    );
    registry.register(
        "store_commit_seconds",
        "Latency of this engine's job writes to the store",
        Counted(vec![(Vec::new(), m.store_commit)]),
    );
    let lag = match head {
        Some(h) => engine.commits_behind(h).await.unwrap_or_else(|err| {
            tracing::debug!(error = %err, "counting the commits behind the source failed");
            None
        }),
        None => None,
    };
    if let Some(lag) = lag {
        registry.register(
            "git_lag_commits",
            "Commits the source's head has that the reconciled commit has not",
            gauge(lag),
        );
    }
}
