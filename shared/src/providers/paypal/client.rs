//! A small HTTPS client for PayPal: one request per connection, no redirects, a size cap on
//! the response body and one deadline for the whole exchange.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

use crate::providers::ConfigError;

/// Default deadline for connecting, the TLS handshake, the request and the response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default cap on a response body; PayPal certificate chains are a few KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Host name resolution strategy.
#[derive(Debug, Clone, Default)]
pub enum Resolver {
    /// The system resolver.
    #[default]
    System,
    /// A fixed address per host name; other names fail. Used to run tests on 127.0.0.1.
    Static(HashMap<String, SocketAddr>),
}

/// Reasons an HTTPS exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    #[error("invalid request URL: {0}")]
    InvalidUrl(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    #[error("response body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// A response status and its whole body.
#[derive(Debug, Clone)]
pub struct HttpsResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

/// The HTTPS client used for certificates, OAuth tokens and postback verification.
#[derive(Clone)]
pub struct HttpsClient {
    connector: TlsConnector,
    resolver: Resolver,
    timeout: Duration,
    max_response_bytes: usize,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("resolver", &self.resolver)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// Builds a client that trusts `roots` for TLS server certificates.
    pub fn new(roots: rustls::RootCertStore) -> Result<Self, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::invalid("tls", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsClient {
            connector: TlsConnector::from(Arc::new(config)),
            resolver: Resolver::System,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Builds a client that trusts the operating system's root certificates.
    pub fn with_native_roots() -> Result<Self, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            return Err(ConfigError::invalid(
                "tls",
                "no system root certificates could be loaded",
            ));
        }
        HttpsClient::new(roots)
    }

    pub fn with_resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = resolver;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Sends one request and reads the whole response within the client's deadline.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<HttpsResponse, FetchError> {
        let exchange = self.exchange(method, url, headers, body);
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, FetchError> {
        match &self.resolver {
            Resolver::Static(map) => map
                .get(host)
                .copied()
                .ok_or_else(|| FetchError::Connect(format!("no address configured for {host}"))),
            Resolver::System => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| FetchError::Connect(format!("cannot resolve {host}: {e}")))?
                .next()
                .ok_or_else(|| FetchError::Connect(format!("{host} has no address"))),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<HttpsResponse, FetchError> {
        if url.scheme() != "https" {
            return Err(FetchError::InvalidUrl(
                "only https is supported".to_string(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::InvalidUrl("URL has no host".to_string()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let address = self.resolve(host, port).await?;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let server_name = ServerName::try_from(host.to_string())
            .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        let tls = self
            .connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| FetchError::Tls(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        // The connection task ends when the response is read and `sender` is dropped.
        tokio::spawn(connection);

        let request = build_request(method, url, headers, body)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status();
        let limited = Limited::new(response.into_body(), self.max_response_bytes);
        let body = limited.collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge(self.max_response_bytes)
            } else {
                FetchError::Http(e.to_string())
            }
        })?;
        Ok(HttpsResponse {
            status,
            body: body.to_bytes(),
        })
    }
}

fn build_request(
    method: Method,
    url: &Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, FetchError> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, host)
        .header(header::CONTENT_LENGTH, body.len());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(body))
        .map_err(|e| FetchError::InvalidUrl(e.to_string()))
}
