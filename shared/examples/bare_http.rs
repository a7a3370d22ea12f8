//! A bare hyper HTTP/1.1 server that reads each request body and responds with
//! `200 {"status":"accepted","id":N}`, with no verification and no storage. The benchmark
//! measures it with the same load generator to find what HTTP alone costs on the machine.
//!
//! ```sh
//! cargo run --release -p payhook --example bare_http -- 127.0.0.1:7102
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn answer(
    request: http::Request<Incoming>,
    counter: Arc<AtomicI64>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let read = request.into_body().collect().await;
    let response = match read {
        Ok(_) => {
            let id = counter.fetch_add(1, Ordering::Relaxed) + 1;
            http::Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(format!(
                    r#"{{"status":"accepted","id":{id}}}"#
                ))))
        }
        Err(_) => http::Response::builder()
            .status(400)
            .body(Full::new(Bytes::new())),
    };
    Ok(response.expect("static response parts are valid"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7102".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let counter = Arc::new(AtomicI64::new(0));
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let counter = counter.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, counter.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
