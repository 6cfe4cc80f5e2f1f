//! Latency percentiles, error counts and cost over a scenario's timed requests.

use crate::api::Timed;
use crate::cost::Cost;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a batch of timed requests came to.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub succeeded: usize,
    /// Every answer but the expected one, by `status code` (or transport failure), with one example body each.
    pub errors: BTreeMap<String, (usize, String)>,
    /// Latencies of all requests, successful or not, sorted.
    latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// What each successful request cost the machine, when the caller measured it.
    pub cost: Cost,
}

impl Summary {
    /// Summarises `requests`, which took `elapsed` of wall-clock time in all.
    pub fn of(requests: &[Timed], elapsed: Duration) -> Self {
        let mut summary = Summary { elapsed, ..Self::default() };
        for request in requests {
            summary.latencies.push(request.latency);
            if request.ok() {
                summary.succeeded += 1;
            } else {
                let example = request.reply.failure.clone().unwrap_or_else(|| request.reply.body.to_string());
                summary.errors.entry(request.reply.describe()).or_insert((0, example)).0 += 1;
            }
        }
        summary.latencies.sort_unstable();
        summary
    }

    pub fn requests(&self) -> usize {
        self.latencies.len()
    }

    pub fn error_count(&self) -> usize {
        self.errors.values().map(|(n, _)| n).sum()
    }

    /// Successful requests per second of wall-clock time.
    pub fn per_second(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (nearest rank), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        ms(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().copied().map_or(0.0, ms)
    }

    /// `none`, or `409 sold_out ×3, 500 ×1`.
    pub fn errors_line(&self) -> String {
        if self.errors.is_empty() {
            return "none".into();
        }
        self.errors.iter().map(|(kind, (n, _))| format!("{kind} ×{n}")).collect::<Vec<_>>().join(", ")
    }

    /// One example answer per kind of error, for the report.
    pub fn error_examples(&self) -> impl Iterator<Item = (&str, &str)> {
        self.errors.iter().map(|(kind, (_, example))| (kind.as_str(), example.as_str()))
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
