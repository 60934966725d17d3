//! This engine's own measurements, since it started: step attempt durations by mode and
//! store commit latency, kept in fixed-bucket histograms of atomics (no lock, no
//! allocation per observation) and read by [`Engine::metrics`](super::Engine::metrics).
//!
//! George-core depends on no metrics crate: an HTTP layer converts a
//! [`HistogramSnapshot`] to its own types (`george-http` does, for `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the step duration buckets, then `f64::MAX` (`+Inf`).
pub const STEP_DURATION_BOUNDS: [f64; 13] = [
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    f64::MAX,
];

/// Upper bounds (seconds) of the store commit buckets, then `f64::MAX` (`+Inf`).
pub const STORE_COMMIT_BOUNDS: [f64; 13] = [
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.5,
    1.0,
    f64::MAX,
];

/// The step modes a duration is recorded under, in [`EngineMetrics::step_duration`]'s order.
pub const STEP_MODES: [&str; 3] = ["agent", "command", "approved"];

/// A histogram of durations with the fixed bounds `bounds` (seconds, the last `f64::MAX`).
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    bounds: &'static [f64; 13],
    counts: [AtomicU64; 13],
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) const fn new(bounds: &'static [f64; 13]) -> Self {
        AtomicHistogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; 13],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation: two relaxed atomic adds.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len() - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut counts = [0; 13];
        for (c, a) in counts.iter_mut().zip(&self.counts) {
            *c = a.load(Ordering::Relaxed);
        }
        HistogramSnapshot {
            bounds: self.bounds,
            counts,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets in seconds, ascending; the last is `f64::MAX` (`+Inf`).
    pub bounds: &'static [f64; 13],
    /// Observations per bucket (not cumulative): `counts[i]` fell in
    /// `(bounds[i - 1], bounds[i]]`.
    pub counts: [u64; 13],
    /// The sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// This engine's measurements since it started (not the store's: another engine sharing
/// the store keeps its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineMetrics {
    /// Durations of step attempts that ended with an outcome (from the start of the
    /// attempt to its report), by mode, in the order of [`STEP_MODES`].
    pub step_duration: [HistogramSnapshot; 3],
    /// Latency of the engine's job writes to the store (each `StateStore::commit`,
    /// conflicts included).
    pub store_commit: HistogramSnapshot,
}

/// The engine's histograms.
#[derive(Debug)]
pub(crate) struct Recorder {
    step: [AtomicHistogram; 3],
    pub(crate) store_commit: AtomicHistogram,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            step: [const { AtomicHistogram::new(&STEP_DURATION_BOUNDS) }; 3],
            store_commit: AtomicHistogram::new(&STORE_COMMIT_BOUNDS),
        }
    }
}

impl Recorder {
    /// Records an attempt of a step of `mode` (one of [`STEP_MODES`]; others are
    /// counted as `agent`) that took `d`.
    pub(crate) fn step_finished(&self, mode: &str, d: Duration) {
        let i = STEP_MODES.iter().position(|m| *m == mode).unwrap_or(0);
        self.step[i].observe(d);
    }

    pub(crate) fn snapshot(&self) -> EngineMetrics {
        EngineMetrics {
            step_duration: [
                self.step[0].snapshot(),
                self.step[1].snapshot(),
                self.step[2].snapshot(),
            ],
            store_commit: self.store_commit.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_their_bucket_and_sum() {
        let r = Recorder::default();
        r.step_finished("command", Duration::from_millis(7));
        r.step_finished("command", Duration::from_secs(2));
        r.step_finished("approved", Duration::from_secs(100_000));
        let s = r.snapshot();
        let cmd = s.step_duration[1];
        assert_eq!(cmd.count(), 2);
        assert_eq!(cmd.counts[0], 1, "7 ms ≤ 10 ms");
        assert_eq!(cmd.counts[5], 1, "2 s ≤ 5 s");
        assert!((cmd.sum_seconds - 2.007).abs() < 1e-9);
        assert_eq!(s.step_duration[2].counts[12], 1, "+Inf");
        assert_eq!(s.step_duration[0].count(), 0);
        assert_eq!(s.store_commit.count(), 0);
    }
}
