//! Trace export over OTLP/gRPC to a collector stand-in on 127.0.0.1: spans reach it with
//! the configured `service.name`, and shutting down the guard flushes them.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use payhook::telemetry::TelemetryGuard;
use payhook::telemetry::otel::otlp_provider;
use tokio::net::TcpListener;
use tonic::codegen::Service;

/// Collector stand-in that keeps every export request it receives.
#[derive(Default, Clone)]
struct Collector {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests
            .lock()
            .expect("collector lock")
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves `collector` over HTTP/2 on a loopback port and returns its address.
async fn serve(collector: Collector) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let server = TraceServiceServer::new(collector);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let mut server = server.clone();
                        async move {
                            Ok::<_, Infallible>(
                                server
                                    .call(request)
                                    .await
                                    .unwrap_or_else(|never| match never {}),
                            )
                        }
                    });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// Returns `(service.name, span names)` of every exported resource.
fn exported(collector: &Collector) -> Vec<(String, Vec<String>)> {
    let requests = collector.requests.lock().expect("collector lock");
    let mut resources = Vec::new();
    for request in requests.iter() {
        for resource_spans in &request.resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.clone())
                .map(|value| match value {
                    Value::StringValue(name) => name,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            let names = resource_spans
                .scope_spans
                .iter()
                .flat_map(|scope| &scope.spans)
                .map(|span| span.name.clone())
                .collect();
            resources.push((service_name, names));
        }
    }
    resources
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_shutdown_flushes_spans() {
    let collector = Collector::default();
    let address = serve(collector.clone()).await;
    let provider =
        otlp_provider(&format!("http://{address}"), "payhook-ingest").expect("OTLP provider");
    provider
        .tracer("payhook")
        .in_span("webhook.receive", |_| {});
    let guard = TelemetryGuard::new(Some(provider));

    // The batch processor exports every 5 s by default, so only the shutdown sends this span.
    assert!(
        exported(&collector).is_empty(),
        "the span was exported before shutdown, so the flush is not tested"
    );
    guard.shutdown();

    let resources = exported(&collector);
    assert_eq!(resources.len(), 1, "{resources:?}");
    assert_eq!(resources[0].0, "payhook-ingest");
    assert_eq!(resources[0].1, vec!["webhook.receive".to_string()]);
}
