//! Posting a signed test event to a running payhook, for trying the service by hand.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::providers::stripe::sign_header;
use crate::secret::Secret;

/// Signs `body` with a Stripe secret at the current time and posts it to `url`. Returns the
/// response status and body text.
pub async fn send_stripe_event(
    url: &str,
    secret: &Secret,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("invalid URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// URLs are supported by this tool, got {url:?}");
    }
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign_header(secret, timestamp, &body);
    let request = http::Request::post(uri)
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .header("user-agent", "payhook-send-test")
        .body(Full::new(Bytes::from(body)))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .context("request timed out after 30 s")?
        .with_context(|| {
            format!(
                "request to {url} failed; check that payhook-ingest is running there, or set \
                 PAYHOOK_LISTEN (or --url) to the address it listens on"
            )
        })?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
