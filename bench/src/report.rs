//! The one output line: `key=value` pairs in a fixed order.

use std::fmt::Write;
use std::time::Duration;

/// Builds the output line.
pub(crate) struct Report {
    line: String,
}

impl Report {
    /// A line that starts with the keys every scenario prints.
    pub(crate) fn new(scenario: &str, backend: &str, jobs: u64) -> Self {
        Report {
            line: format!("scenario={scenario} backend={backend} jobs={jobs}"),
        }
    }

    /// Adds `key=value`.
    pub(crate) fn with(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.line, " {key}={value}");
        self
    }

    /// Adds `jobs_per_s=` and `secs=` for `jobs` done in `elapsed`.
    pub(crate) fn rate(self, jobs: u64, elapsed: Duration) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let per_s = jobs as f64 / elapsed.as_secs_f64().max(1e-9);
        self.with("jobs_per_s", format!("{per_s:.0}"))
            .with("secs", format!("{:.3}", elapsed.as_secs_f64()))
    }

    pub(crate) fn finish(self) -> String {
        self.line
    }
}
