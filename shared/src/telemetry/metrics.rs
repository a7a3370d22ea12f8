//! A small Prometheus registry: labelled counters, gauges and histograms rendered in the text
//! exposition format. Label sets are few (provider × outcome), so a mutex-guarded map per
//! family is cheap next to a database write.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds, in seconds, of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type Labels = Vec<(&'static str, String)>;

/// A family of counters keyed by label values.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, u64>>,
}

impl CounterVec {
    /// Creates an empty family.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        CounterVec {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `by` to the counter with these labels.
    pub fn add(&self, labels: &[(&'static str, &str)], by: u64) {
        let key = owned(labels);
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *values.entry(key).or_insert(0) += by;
    }

    /// Adds one to the counter with these labels.
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        self.add(labels, 1);
    }

    /// Returns the current value for these labels.
    pub fn get(&self, labels: &[(&'static str, &str)]) -> u64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.get(&owned(labels)).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter",
            self.name, self.help, self.name
        );
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, value) in values.iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                render_labels(labels, None),
                value
            );
        }
    }
}

/// A family of gauges keyed by label values, set from snapshots.
#[derive(Debug)]
pub struct GaugeVec {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, f64>>,
}

impl GaugeVec {
    /// Creates an empty family.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        GaugeVec {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets the gauge with these labels.
    pub fn set(&self, labels: &[(&'static str, &str)], value: f64) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.insert(owned(labels), value);
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} gauge",
            self.name, self.help, self.name
        );
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, value) in values.iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                render_labels(labels, None),
                value
            );
        }
    }
}

#[derive(Debug, Default, Clone)]
struct HistogramState {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A family of latency histograms keyed by label values.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, HistogramState>>,
}

impl HistogramVec {
    /// Creates an empty family.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        HistogramVec {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one observation, in seconds.
    pub fn observe(&self, labels: &[(&'static str, &str)], seconds: f64) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let state = values.entry(owned(labels)).or_default();
        for (bucket, bound) in state.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        state.count += 1;
        state.sum += seconds;
    }

    /// Returns the number of observations for these labels.
    pub fn count(&self, labels: &[(&'static str, &str)]) -> u64 {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.get(&owned(labels)).map_or(0, |state| state.count)
    }

    fn render(&self, out: &mut String) {
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", self.help);
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, state) in values.iter() {
            for (count, bound) in state.buckets.iter().zip(LATENCY_BUCKETS) {
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {count}",
                    render_labels(labels, Some(&le))
                );
            }
            let all = render_labels(labels, Some("+Inf"));
            let _ = writeln!(out, "{name}_bucket{all} {}", state.count);
            let plain = render_labels(labels, None);
            let _ = writeln!(out, "{name}_sum{plain} {}", state.sum);
            let _ = writeln!(out, "{name}_count{plain} {}", state.count);
        }
    }
}

/// Every metric payhook exports.
#[derive(Debug)]
pub struct Metrics {
    pub webhook_requests: CounterVec,
    pub verification_seconds: HistogramVec,
    pub ingest_seconds: HistogramVec,
    pub publish_failures: CounterVec,
    pub sweeper_republished: CounterVec,
    pub processing_seconds: HistogramVec,
    pub processed: CounterVec,
    pub retries: CounterVec,
    pub dead_lettered: CounterVec,
    pub backlog: GaugeVec,
    pub dependency_up: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates a registry with every family empty.
    pub const fn new() -> Self {
        Metrics {
            webhook_requests: CounterVec::new(
                "payhook_webhook_requests_total",
                "Webhook requests by provider and outcome.",
            ),
            verification_seconds: HistogramVec::new(
                "payhook_verification_seconds",
                "Time spent verifying signatures.",
            ),
            ingest_seconds: HistogramVec::new(
                "payhook_ingest_seconds",
                "Time from request start to response for webhook requests.",
            ),
            publish_failures: CounterVec::new(
                "payhook_publish_failures_total",
                "Publishes that were not confirmed; the sweeper republishes those rows.",
            ),
            sweeper_republished: CounterVec::new(
                "payhook_sweeper_republished_total",
                "Rows republished or requeued by the sweeper.",
            ),
            processing_seconds: HistogramVec::new(
                "payhook_processing_seconds",
                "Time spent processing one event, by provider and event type.",
            ),
            processed: CounterVec::new(
                "payhook_processed_total",
                "Processing attempts by provider and result.",
            ),
            retries: CounterVec::new(
                "payhook_retries_total",
                "Retries scheduled after a failed processing attempt, by provider.",
            ),
            dead_lettered: CounterVec::new(
                "payhook_dead_lettered_total",
                "Events that used every attempt and became dead.",
            ),
            backlog: GaugeVec::new(
                "payhook_backlog_events",
                "Stored events by status, read from the database at scrape time.",
            ),
            dependency_up: GaugeVec::new(
                "payhook_dependency_up",
                "1 when the database or broker answered the last health check, else 0.",
            ),
        }
    }

    /// Renders every family in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.webhook_requests.render(&mut out);
        self.verification_seconds.render(&mut out);
        self.ingest_seconds.render(&mut out);
        self.publish_failures.render(&mut out);
        self.sweeper_republished.render(&mut out);
        self.processing_seconds.render(&mut out);
        self.processed.render(&mut out);
        self.retries.render(&mut out);
        self.dead_lettered.render(&mut out);
        self.backlog.render(&mut out);
        self.dependency_up.render(&mut out);
        out
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn render_includes_labels_and_counts() {
        let metrics = Metrics::new();
        metrics
            .webhook_requests
            .inc(&[("provider", "stripe"), ("outcome", "accepted")]);
        metrics
            .ingest_seconds
            .observe(&[("provider", "stripe")], 0.003);

        let text = metrics.render();

        assert!(
            text.contains(
                "payhook_webhook_requests_total{provider=\"stripe\",outcome=\"accepted\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("payhook_ingest_seconds_bucket{provider=\"stripe\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("payhook_ingest_seconds_bucket{provider=\"stripe\",le=\"0.0025\"} 0"),
            "{text}"
        );
    }
}
