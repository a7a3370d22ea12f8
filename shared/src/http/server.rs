//! The HTTP server loop shared by the public and admin listeners: connection limit, header
//! read timeout, keep-alive timeout, panic guard and graceful shutdown.
//!
//! Connection limit: at most `max_connections` connections are served at once. Further
//! clients are not accepted and wait in the kernel's accept queue until a slot frees, so a
//! genuine sender gets through once idle or slow connections are closed by the timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::connection::Activity;
use super::error::{ApiError, Body};
use crate::config::Settings;

/// Connection-level limits of one listener.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Maximum open connections; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time a client has to send the complete request head.
    pub header_read_timeout: Duration,
    /// Maximum size of the request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Maximum number of request headers.
    pub max_headers: usize,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive_timeout: Duration,
    /// Time allowed for draining in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Maximum size of an HTTP/2 header list, in bytes.
    pub h2_max_header_list_bytes: u32,
    /// Maximum concurrent streams per HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
}

impl ServerLimits {
    /// Returns the public listener's limits from the settings.
    pub fn from_settings(settings: &Settings) -> Self {
        ServerLimits {
            max_connections: settings.max_connections.max(1),
            header_read_timeout: Duration::from_secs(settings.header_read_timeout_seconds.max(1)),
            max_header_bytes: settings.max_header_bytes,
            max_headers: settings.max_headers,
            keep_alive_timeout: Duration::from_secs(settings.keep_alive_timeout_seconds.max(1)),
            h2_max_header_list_bytes: settings.h2_max_header_list_bytes,
            h2_max_concurrent_streams: settings.h2_max_concurrent_streams.max(1),
            ..ServerLimits::default()
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            keep_alive_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(25),
            h2_max_header_list_bytes: 16 * 1024,
            h2_max_concurrent_streams: 64,
        }
    }
}

/// A boxed future returning a response.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Request handler of a listener: the request and the peer address.
pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> ResponseFuture + Send + Sync>;

/// Serves `handler` on `listener` until `shutdown` is cancelled, then stops accepting and
/// waits up to `limits.shutdown_grace` for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    handler: Handler,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let name = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let builder = build_protocol(&limits);

    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, listener = %name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let activity = Arc::new(Activity::new());
        let service = {
            let activity = activity.clone();
            service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                let in_flight = activity.begin();
                async move {
                    let response = guarded(handler, request, peer).await;
                    drop(in_flight);
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        let idle_limits = (limits.header_read_timeout, limits.keep_alive_timeout);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, error = %error, "connection closed with an error");
                    }
                }
                () = activity.idle_expired(idle_limits.0, idle_limits.1) => {
                    tracing::debug!(%peer, "closed an idle connection");
                }
            }
            drop(permit);
        });
    }

    tracing::info!(listener = %name, "listener stopped accepting; draining connections");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = %name, "shutdown grace period ended with connections open");
    }
}

fn build_protocol(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.h2_max_header_list_bytes)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .keep_alive_interval(Some(limits.keep_alive_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Runs the handler, turning a panic into a logged 500 so one bad request cannot take the
/// connection task (or the process) down.
async fn guarded(handler: Handler, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = request.uri().path().to_string();
    match AssertUnwindSafe(handler(request, peer))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_string());
            tracing::error!(%peer, %path, panic = %message, "request handler panicked");
            ApiError::internal().into_response()
        }
    }
}
