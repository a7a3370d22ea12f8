//! OpenTelemetry trace export over OTLP/gRPC, switched on by `OTEL_EXPORTER_OTLP_ENDPOINT`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use thiserror::Error;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Variable with the OTLP collector address, for example `http://collector:4317`.
pub const ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Variable that overrides the service name of exported spans.
pub const SERVICE_NAME_VARIABLE: &str = "OTEL_SERVICE_NAME";

/// Target prefixes of the crates that the OTLP/gRPC client runs on. A prefix also matches
/// longer names, so `opentelemetry` covers `opentelemetry_sdk`.
const EXPORT_TRANSPORT_TARGETS: [&str; 5] = ["h2", "hyper", "tonic", "tower", "opentelemetry"];

/// Failure to set up trace export.
#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error("cannot create the OTLP span exporter for {endpoint}: {detail}")]
    Exporter { endpoint: String, detail: String },
}

/// Trace export settings read from the standard OpenTelemetry variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// Collector address. `None` turns export off.
    pub endpoint: Option<String>,
    /// `service.name` resource attribute of every exported span.
    pub service_name: String,
}

impl OtlpSettings {
    /// Reads the settings through `lookup`. Empty values count as unset, and
    /// `OTEL_SERVICE_NAME` wins over `default_service_name`.
    pub fn from_lookup(
        default_service_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        OtlpSettings {
            endpoint: set(ENDPOINT_VARIABLE),
            service_name: set(SERVICE_NAME_VARIABLE)
                .unwrap_or_else(|| default_service_name.to_string()),
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env(default_service_name: &str) -> Self {
        OtlpSettings::from_lookup(default_service_name, |name| std::env::var(name).ok())
    }
}

/// Builds a tracer provider that batches spans to the OTLP/gRPC endpoint. Must run inside
/// a Tokio runtime, because the gRPC client spawns its connection tasks on it.
pub fn otlp_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| TelemetryError::Exporter {
            endpoint: endpoint.to_string(),
            detail: error.to_string(),
        })?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Returns a filter that keeps the spans of the gRPC transport out of the trace layer.
/// Otherwise, at `RUST_LOG=debug`, every export would record spans that the next export
/// sends.
pub(crate) fn exporter_transport_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(EXPORT_TRANSPORT_TARGETS.map(|target| (target, LevelFilter::OFF)))
}

/// Returns the tracer that the tracing layer records payhook spans with.
pub(crate) fn payhook_tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("payhook")
}

/// Flushes and stops trace export when dropped or shut down. Without export it does nothing.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Creates a guard that shuts `provider` down. With `None` the guard does nothing.
    pub fn new(provider: Option<SdkTracerProvider>) -> Self {
        TelemetryGuard { provider }
    }

    /// Returns whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(mut self) {
        self.shutdown_provider();
    }

    fn shutdown_provider(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // The batch processor exports on its own thread, but the gRPC client runs on the
        // Tokio runtime. On a multi-thread runtime the other workers drive the client while
        // this one blocks.
        let shutdown = || provider.shutdown();
        let in_multi_thread_runtime = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        let result = if in_multi_thread_runtime {
            tokio::task::block_in_place(shutdown)
        } else {
            shutdown()
        };
        if let Err(error) = result {
            tracing::warn!(%error, "flushing trace export at shutdown failed; the buffered spans are lost");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_provider();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(variables: &[(&str, &str)]) -> OtlpSettings {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        OtlpSettings::from_lookup("payhook-ingest", |name| variables.get(name).cloned())
    }

    #[test]
    fn export_off_without_endpoint() {
        let settings = settings(&[(ENDPOINT_VARIABLE, "  ")]);

        assert_eq!(settings.endpoint, None);
        assert_eq!(settings.service_name, "payhook-ingest");
    }

    #[test]
    fn service_name_variable_wins() {
        let settings = settings(&[
            (ENDPOINT_VARIABLE, "http://127.0.0.1:4317"),
            (SERVICE_NAME_VARIABLE, "payhook-ingest-eu"),
        ]);

        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(settings.service_name, "payhook-ingest-eu");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guard_shutdown_with_unreachable_collector() {
        // Port 9 (discard) on loopback has no collector, so the flush fails fast and the
        // shutdown must still return.
        use opentelemetry::trace::Tracer;

        let provider = otlp_provider("http://127.0.0.1:9", "payhook-test").expect("provider");
        payhook_tracer(&provider).in_span("unexported", |_| {});
        let guard = TelemetryGuard::new(Some(provider));

        assert!(guard.exporting());
        guard.shutdown();
    }

    #[test]
    fn transport_spans_are_filtered_out() {
        let filter = exporter_transport_filter();

        assert!(filter.would_enable("payhook::worker::consumer", &tracing::Level::INFO));
        assert!(filter.would_enable("lapin::channel", &tracing::Level::DEBUG));
        assert!(!filter.would_enable("h2::proto::streams", &tracing::Level::INFO));
        assert!(!filter.would_enable("hyper_util::client", &tracing::Level::INFO));
        assert!(!filter.would_enable("tonic::transport", &tracing::Level::ERROR));
        assert!(!filter.would_enable("opentelemetry_sdk", &tracing::Level::INFO));
    }

    #[test]
    fn invalid_endpoint_is_rejected() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = runtime.block_on(async { otlp_provider("not a uri", "payhook-test") });

        assert!(matches!(result, Err(TelemetryError::Exporter { .. })));
    }
}
