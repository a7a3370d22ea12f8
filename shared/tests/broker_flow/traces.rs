//! One trace from the ingest request through RabbitMQ to the consumer's processing span,
//! recorded by an in-memory span exporter installed as this test binary's global
//! subscriber.

use std::sync::OnceLock;

use opentelemetry::trace::{SpanKind, TracerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use payhook::model::EventStatus;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{PROCESSING_TIMEOUT, TestEnv, payment_succeeded, poll_until};

/// The exporter and the provider that feeds it, kept for the life of the test binary.
static RECORDER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();

/// Installs the global subscriber once per test binary and returns its exporter. Only
/// payhook's own spans are recorded, at INFO and above, as the services' default filter
/// does.
fn recorded_spans() -> &'static InMemorySpanExporter {
    let (exporter, _) = RECORDER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("payhook-test"))
            .with_filter(Targets::new().with_target("payhook", Level::INFO));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber)
            .expect("a global subscriber was already installed in this test binary");
        (exporter, provider)
    });
    exporter
}

/// Returns the value of `key` on `span` as a string.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|pair| pair.key.as_str() == key)
        .map(|pair| pair.value.as_str().into_owned())
}

/// Returns the finished span named `name` whose `event_id` attribute is `event_id`.
fn find_span(spans: &[SpanData], name: &str, event_id: &str) -> Option<SpanData> {
    spans
        .iter()
        .find(|span| span.name == name && attribute(span, "event_id").as_deref() == Some(event_id))
        .cloned()
}

fn finished_spans(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .expect("reading the finished spans failed")
}

#[tokio::test]
async fn consumer_span_joins_ingest_trace() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let exporter = recorded_spans();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(None, &[]).await;
    let (event_id, body) = payment_succeeded(1_999);

    let id = ingest.accept(&body).await;
    env.wait_for_status(id, EventStatus::Completed).await;
    // The processing span ends after the row is committed, so it may finish a moment later.
    let processed = poll_until(PROCESSING_TIMEOUT, || async {
        find_span(&finished_spans(exporter), "webhook.process", &event_id).is_some()
    })
    .await;
    let spans = finished_spans(exporter);
    consumer.stop().await;
    ingest.stop().await;

    assert!(processed, "no webhook.process span for {event_id}");
    let receive = find_span(&spans, "webhook.receive", &event_id).expect("webhook.receive span");
    let publish = find_span(&spans, "webhook.publish", &event_id).expect("webhook.publish span");
    let process = find_span(&spans, "webhook.process", &event_id).expect("webhook.process span");
    let trace_id = receive.span_context.trace_id();
    assert_eq!(publish.span_context.trace_id(), trace_id);
    assert_eq!(process.span_context.trace_id(), trace_id);
    assert_eq!(publish.parent_span_id, receive.span_context.span_id());
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    assert!(
        process.parent_span_is_remote,
        "the processing span's parent must come from the message"
    );
    assert_eq!(receive.span_kind, SpanKind::Server);
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(process.span_kind, SpanKind::Consumer);
}

#[tokio::test]
async fn trace_spans_carry_event_fields() {
    let Some(env) = TestEnv::new().await else {
        return;
    };
    let exporter = recorded_spans();
    let ingest = env.spawn_ingest(&[]).await;
    let consumer = env.spawn_consumer(None, &[]).await;
    let (event_id, body) = payment_succeeded(2_500);

    let id = ingest.accept(&body).await;
    env.wait_for_status(id, EventStatus::Completed).await;
    poll_until(PROCESSING_TIMEOUT, || async {
        find_span(&finished_spans(exporter), "webhook.process", &event_id).is_some()
    })
    .await;
    let spans = finished_spans(exporter);
    consumer.stop().await;
    ingest.stop().await;

    let receive = find_span(&spans, "webhook.receive", &event_id).expect("webhook.receive span");
    let process = find_span(&spans, "webhook.process", &event_id).expect("webhook.process span");
    let id_text = id.to_string();
    assert_eq!(attribute(&receive, "provider").as_deref(), Some("stripe"));
    assert_eq!(
        attribute(&receive, "http.route").as_deref(),
        Some("/api/webhooks/{provider}")
    );
    assert_eq!(attribute(&receive, "id").as_deref(), Some(id_text.as_str()));
    assert_eq!(attribute(&receive, "outcome").as_deref(), Some("accepted"));
    assert_eq!(attribute(&process, "id").as_deref(), Some(id_text.as_str()));
    assert_eq!(attribute(&process, "provider").as_deref(), Some("stripe"));
    assert_eq!(
        attribute(&process, "event_type").as_deref(),
        Some("payment_intent.succeeded")
    );
    assert_eq!(attribute(&process, "attempt").as_deref(), Some("1"));
    assert_eq!(attribute(&process, "outcome").as_deref(), Some("completed"));
    // Row ids repeat across the tests' databases, so the trace id picks this test's span.
    let handler = spans
        .iter()
        .find(|span| {
            span.name == "webhook.handler"
                && span.span_context.trace_id() == process.span_context.trace_id()
        })
        .expect("webhook.handler span");
    assert_eq!(attribute(handler, "id").as_deref(), Some(id_text.as_str()));
    assert_eq!(handler.parent_span_id, process.span_context.span_id());
    // The payment intent id appears only in the payload, so no span may carry it.
    let payload_only = format!("pi_{event_id}");
    for span in [&receive, &process, handler] {
        for pair in &span.attributes {
            assert!(
                !pair.value.as_str().contains(&payload_only),
                "{} carries payload content in {}",
                span.name,
                pair.key
            );
        }
    }
}
