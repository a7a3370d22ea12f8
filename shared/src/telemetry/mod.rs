//! Logging and trace export setup, metrics and rate-limited logging shared by both
//! binaries.

pub mod log_limiter;
pub mod metrics;
pub mod otel;
pub mod spans;
pub mod trace_context;

pub use otel::{OtlpSettings, TelemetryError, TelemetryGuard};

use tracing_subscriber::EnvFilter;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, readable text otherwise.
    Auto,
    Json,
    Text,
}

/// Installs the global tracing subscriber. `RUST_LOG` overrides the default `info` level.
/// It exports no traces, so services call [`init_telemetry`] instead.
pub fn init_logging(format: LogFormat) {
    install_subscriber(format, None);
}

/// Installs the global tracing subscriber and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
/// exports spans over OTLP/gRPC with `service.name` = `service_name` (`OTEL_SERVICE_NAME`
/// overrides it). Also sets the W3C trace context propagator as the global propagator.
/// Must run inside a Tokio runtime. Keep the returned guard until exit: dropping it
/// flushes the spans still buffered.
pub fn init_telemetry(
    format: LogFormat,
    service_name: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let settings = OtlpSettings::from_env(service_name);
    let provider = match &settings.endpoint {
        Some(endpoint) => Some(otel::otlp_provider(endpoint, &settings.service_name)?),
        None => None,
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    install_subscriber(format, provider.as_ref());
    if let Some(endpoint) = &settings.endpoint {
        tracing::info!(%endpoint, service_name = %settings.service_name, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard::new(provider))
}

fn install_subscriber(
    format: LogFormat,
    provider: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) {
    use std::io::IsTerminal;

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    // The filter applies to spans too, so at the default level the exporter receives no
    // debug spans of the HTTP, AMQP and gRPC libraries.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    let text_layer = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let otel_layer = provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(otel::payhook_tracer(provider))
            .with_filter(otel::exporter_transport_filter())
    });
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(json_layer)
        .with(text_layer)
        .with(otel_layer)
        .try_init();
    // A second initialisation (tests, embedded use) keeps the first subscriber.
    drop(result);
}
