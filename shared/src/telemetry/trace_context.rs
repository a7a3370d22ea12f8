//! W3C trace context carried in [`Envelope::V1::traceparent`], so the processing span of a
//! consumer joins the trace of the ingest request that stored the event.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::queue::Envelope;

/// Name of the W3C header and of the carrier key that contains the trace context.
const TRACEPARENT: &str = "traceparent";

/// Returns the W3C `traceparent` of `span`, or `None` when no OpenTelemetry layer records
/// spans (tracing export is off) or the span is disabled.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Returns the trace context that `envelope` carries, when it has a valid `traceparent`.
pub fn envelope_context(envelope: &Envelope) -> Option<opentelemetry::Context> {
    let Envelope::V1 { traceparent, .. } = envelope;
    context_from_traceparent(traceparent.as_deref()?)
}

/// Parses a W3C `traceparent` value. Returns `None` for a malformed value, so a bad header
/// starts a new trace instead of failing the delivery.
pub fn context_from_traceparent(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` a child of the trace context in `envelope`. Without a valid context, or
/// when no OpenTelemetry layer is installed, `span` stays a root span.
pub fn follow_envelope(span: &tracing::Span, envelope: &Envelope) {
    if let Some(parent) = envelope_context(envelope) {
        // Fails only when no OpenTelemetry layer is installed, and then nothing is exported.
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn envelope(traceparent: Option<String>) -> Envelope {
        Envelope::V1 {
            id: 7,
            provider: "stripe".to_string(),
            event_type: "charge.succeeded".to_string(),
            attempt: 0,
            traceparent,
        }
    }

    #[test]
    fn envelope_round_trips_trace_id() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));

        let (sent, sender_trace_id) = tracing::subscriber::with_default(subscriber, || {
            let sender = tracing::info_span!("sender");
            let sent = envelope(traceparent_of(&sender));
            // The envelope travels as JSON, so the context must survive serialization.
            let body = serde_json::to_vec(&sent).expect("envelope serializes");
            let decoded: Envelope = serde_json::from_slice(&body).expect("envelope parses");
            let receiver = tracing::info_span!("receiver");
            follow_envelope(&receiver, &decoded);
            let trace_id = sender.context().span().span_context().trace_id();
            drop(receiver);
            drop(sender);
            (decoded, trace_id)
        });
        let received = envelope_context(&sent).expect("envelope without a trace context");
        let spans = exporter.get_finished_spans().expect("finished spans");
        let sender = spans
            .iter()
            .find(|span| span.name == "sender")
            .expect("sender span");
        let receiver = spans
            .iter()
            .find(|span| span.name == "receiver")
            .expect("receiver span");

        assert_eq!(received.span().span_context().trace_id(), sender_trace_id);
        assert_eq!(sender.span_context.trace_id(), sender_trace_id);
        assert_eq!(receiver.span_context.trace_id(), sender_trace_id);
        assert_eq!(receiver.parent_span_id, sender.span_context.span_id());
    }

    #[test]
    fn traceparent_absent_without_otel_layer() {
        let subscriber = tracing_subscriber::registry();

        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("untraced");
            assert_eq!(traceparent_of(&span), None);
        });
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        for value in [
            "",
            "00-xyz",
            "00-00000000000000000000000000000000-0000000000000000-01",
        ] {
            assert!(context_from_traceparent(value).is_none(), "{value:?}");
        }
        assert!(envelope_context(&envelope(None)).is_none());
    }

    #[test]
    fn valid_traceparent_keeps_trace_id() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        let context = context_from_traceparent(value).expect("valid traceparent rejected");

        assert_eq!(
            context.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.span().span_context().is_remote());
    }
}
