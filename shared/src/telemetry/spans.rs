//! Span names and fields of one webhook's trace: `webhook.receive` (ingest request) →
//! `webhook.store` and `webhook.publish` → `webhook.process` (worker) → `webhook.handler`.
//! Spans never carry payloads, signatures or headers.

use tracing::Span;
use tracing::field::Empty;

use crate::model::StoredEvent;
use crate::queue::Envelope;

/// Route template of the webhook listener, recorded instead of the raw path.
const PROVIDER_ROUTE: &str = "/api/webhooks/{provider}";
/// Route template of a provider endpoint such as `paypal/eu`.
const ENDPOINT_ROUTE: &str = "/api/webhooks/{provider}/{endpoint}";

/// Creates the span of one webhook request. The handler records `provider`, `http.route`,
/// `event_id`, `id` and `outcome` as they become known.
pub fn receive_span() -> Span {
    tracing::info_span!(
        "webhook.receive",
        otel.kind = "server",
        provider = Empty,
        http.route = Empty,
        event_id = Empty,
        id = Empty,
        outcome = Empty,
    )
}

/// Returns the route template that matched the provider route `name` (`stripe` or
/// `paypal/eu`).
pub fn route_template(name: &str) -> &'static str {
    if name.contains('/') {
        ENDPOINT_ROUTE
    } else {
        PROVIDER_ROUTE
    }
}

/// Creates the span of the durable insert of one event.
pub fn store_span(provider: &str, event_id: &str) -> Span {
    tracing::info_span!("webhook.store", provider, event_id)
}

/// Creates the span of one publish. Its context is the `traceparent` that the envelope
/// carries, so consumers' processing spans become its children.
pub fn publish_span(id: i64, provider: &str, event_id: &str) -> Span {
    tracing::info_span!(
        "webhook.publish",
        otel.kind = "producer",
        id,
        provider,
        event_id
    )
}

/// Creates the span of one processing attempt of a queued event, a child of the trace
/// context that the envelope carries. The worker records `event_id`, `attempt` and
/// `outcome` once it has claimed the row.
pub fn process_span(envelope: &Envelope) -> Span {
    let Envelope::V1 {
        id,
        provider,
        event_type,
        ..
    } = envelope;
    let span = tracing::info_span!(
        "webhook.process",
        otel.kind = "consumer",
        id,
        provider = %provider,
        event_type = %event_type,
        event_id = Empty,
        attempt = Empty,
        outcome = Empty,
    );
    super::trace_context::follow_envelope(&span, envelope);
    span
}

/// Creates the span of one processing attempt of an event claimed from the database,
/// which has no trace context, so the span starts a new trace.
pub fn claimed_process_span(event: &StoredEvent) -> Span {
    tracing::info_span!(
        "webhook.process",
        otel.kind = "consumer",
        id = event.id,
        provider = %event.provider,
        event_type = %event.event_type,
        event_id = %event.event_id,
        attempt = event.attempt_count,
        outcome = Empty,
    )
}

/// Creates the span of one provider handler run.
pub fn handler_span(event: &StoredEvent) -> Span {
    tracing::info_span!(
        "webhook.handler",
        id = event.id,
        provider = %event.provider,
        event_type = %event.event_type,
    )
}

/// Records `outcome` on the current span, which is the processing span while a worker
/// runs an attempt.
pub fn record_outcome(outcome: &str) {
    Span::current().record("outcome", outcome);
}
