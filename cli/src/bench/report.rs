//! How a benchmark prints a figure: aligned text for a person, or with
//! `--json` one JSON line per figure (`{"bench": …, "p50_ms": …}`), so a
//! script can compare runs without scraping columns.

use std::time::Duration;

use serde_json::json;

pub struct Report {
    pub json: bool,
}

impl Report {
    /// A line that groups the figures below it (text output only).
    pub fn heading(&self, text: &str) {
        if !self.json {
            outln!("{text}");
        }
    }

    /// p50 and p99 of `lat` (sorted here).
    pub fn latency(&self, name: &str, lat: &mut [Duration]) {
        lat.sort();
        let p = |q: f64| percentile(lat, q).as_secs_f64() * 1e3;
        if self.json {
            outln!(
                "{}",
                json!({ "bench": name.trim(), "p50_ms": p(0.5), "p99_ms": p(0.99), "n": lat.len() })
            );
        } else {
            outln!(
                "{name:<44} p50 {:>8.3} ms  p99 {:>8.3} ms  (n={})",
                p(0.5),
                p(0.99),
                lat.len()
            );
        }
    }

    /// One figure with its unit; `text` is the human sentence for it.
    pub fn figure(&self, name: &str, value: f64, unit: &str, text: &str) {
        if self.json {
            outln!(
                "{}",
                json!({ "bench": name.trim(), "value": value, "unit": unit })
            );
        } else {
            outln!("{text}");
        }
    }
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}
