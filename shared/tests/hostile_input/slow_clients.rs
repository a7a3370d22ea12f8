//! Clients that are idle, slow or stalled must lose their connection on time without
//! delaying a genuine delivery.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;

use crate::helpers::{
    HEADER_TIMEOUT, KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT, signature_for, spawn, stripe_event,
};
use crate::raw::{connect, read_status, read_until_closed, write_lossy};

/// Slack for scheduling on a loaded machine when checking that a timeout fired.
const SLACK: Duration = Duration::from_secs(2);

#[tokio::test]
async fn silent_socket_is_closed_after_header_timeout() {
    let service = spawn(&[]).await;
    let mut silent = connect(service.public).await;

    service.assert_genuine_served("evt_hi_silent").await;
    let ending = read_until_closed(&mut silent, HEADER_TIMEOUT + SLACK).await;

    assert!(
        ending.after >= HEADER_TIMEOUT - Duration::from_millis(1500),
        "closed too early: {:?}",
        ending.after
    );
    assert!(matches!(ending.status(), None | Some(408)), "{ending:?}");
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    let service = spawn(&[]).await;
    let mut slow = connect(service.public).await;
    slow.write_all(b"POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });

    service.assert_genuine_served("evt_hi_slowloris").await;
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let closed = loop {
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(HEADER_TIMEOUT + SLACK, reader.read(&mut buffer)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => continue,
        }
    };

    assert!(closed, "slowloris connection still open");
    assert!(started.elapsed() < HEADER_TIMEOUT + SLACK);
    trickle.abort();
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn stalled_body_gets_408() {
    let service = spawn(&[]).await;
    let body = stripe_event("evt_hi_stalled");
    let signature = signature_for(body.as_bytes());
    let mut stalled = connect(service.public).await;
    let head = format!(
        "POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
         Stripe-Signature: {signature}\r\n\r\n",
        body.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&body.as_bytes()[..10]).await.unwrap();

    service.assert_genuine_served("evt_hi_during_stall").await;
    let ending = read_until_closed(&mut stalled, REQUEST_TIMEOUT + SLACK).await;

    assert_eq!(ending.status(), Some(408), "{ending:?}");
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let service = spawn(&[]).await;
    let mut client = connect(service.public).await;
    client
        .write_all(b"GET /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_status(&mut client, SLACK).await, 405);

    service.assert_genuine_served("evt_hi_keep_alive").await;
    let ending = read_until_closed(&mut client, KEEP_ALIVE_TIMEOUT + SLACK).await;

    assert!(
        ending.after >= KEEP_ALIVE_TIMEOUT - Duration::from_millis(1500),
        "closed too early: {:?}",
        ending.after
    );
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn five_hundred_idle_sockets_leave_room() {
    let service = spawn(&[]).await;
    let mut idle = Vec::new();
    for n in 0..500 {
        let mut stream = connect(service.public).await;
        if n % 2 == 0 {
            write_lossy(&mut stream, b"POST /api/webhooks/stripe HTTP/1.1\r\n").await;
        }
        idle.push(stream);
    }

    service.assert_genuine_served("evt_hi_500_idle").await;

    // Every 25th socket: both silent ones and ones that sent a partial request line.
    for stream in idle.iter_mut().step_by(25) {
        read_until_closed(stream, HEADER_TIMEOUT + SLACK).await;
    }
    service.assert_genuine_served("evt_hi_500_after").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn full_connection_slots_queue_then_serve() {
    let service = spawn(&["--max-connections", "4"]).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(service.public).await);
    }
    // Give the server time to accept all four before the genuine sender connects.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let elapsed = tokio::time::timeout(
        HEADER_TIMEOUT + SLACK,
        service.send_genuine("evt_hi_queued"),
    )
    .await
    .expect("the queued genuine sender was never served");

    // The genuine sender waits in the accept queue until the idle connections time out.
    assert!(
        elapsed >= HEADER_TIMEOUT - Duration::from_millis(800),
        "the connection limit did not apply: {elapsed:?}"
    );
    assert!(elapsed < HEADER_TIMEOUT + SLACK, "{elapsed:?}");
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn idle_http2_connection_is_closed() {
    let service = spawn(&[]).await;
    let mut client = connect(service.public).await;
    client
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();

    service.assert_genuine_served("evt_hi_h2_idle").await;
    let ending = read_until_closed(&mut client, HEADER_TIMEOUT + SLACK).await;

    assert!(
        ending.after >= HEADER_TIMEOUT - Duration::from_millis(1500),
        "{:?}",
        ending.after
    );
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn http2_enforces_header_list_limit() {
    let service = spawn(&[]).await;
    let stream = connect(service.public).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(connection);
    let body = stripe_event("evt_hi_h2");
    let signature = signature_for(body.as_bytes());
    let genuine = http::Request::post(format!("http://{}/api/webhooks/stripe", service.public))
        .header("stripe-signature", &signature)
        .body(Full::new(Bytes::from(body)))
        .unwrap();

    let response = sender.send_request(genuine).await.expect("h2 genuine");

    assert_eq!(response.status(), 200);
    service.record_genuine("evt_hi_h2");
    let _ = response.into_body().collect().await;
    let oversized = http::Request::post(format!("http://{}/api/webhooks/stripe", service.public))
        .header("x-padding", "a".repeat(32 * 1024))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    // The server either resets the stream or responds 431, but never runs the handler.
    if let Ok(response) = sender.send_request(oversized).await {
        assert_eq!(response.status(), 431);
    }
    service.assert_only_genuine_rows().await;
}
