//! Oversized, malformed and ambiguous requests get the documented status and store nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{signature_for, spawn};
use crate::raw::{connect, read_status, read_until_closed};

#[tokio::test]
async fn declared_oversize_gets_413_unread() {
    let service = spawn(&[]).await;
    let mut client = connect(service.public).await;
    client
        .write_all(
            b"POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n",
        )
        .await
        .unwrap();

    let status = read_status(&mut client, Duration::from_secs(2)).await;

    assert_eq!(status, 413);
    service.assert_genuine_served("evt_hi_cl_413").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn chunked_fifty_mebibytes_get_413_early() {
    let service = spawn(&[]).await;
    let client = connect(service.public).await;
    let (mut reader, mut writer) = client.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let total = 50 * 1024 * 1024;
    let streamer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let head = b"POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\n\
                         Transfer-Encoding: chunked\r\n\r\n";
            if writer.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let frame_head = format!("{:x}\r\n", chunk.len());
            while sent.load(Ordering::SeqCst) < total {
                let ok = writer.write_all(frame_head.as_bytes()).await.is_ok()
                    && writer.write_all(&chunk).await.is_ok()
                    && writer.write_all(b"\r\n").await.is_ok();
                if !ok {
                    return;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
            let _ = writer.write_all(b"0\r\n\r\n").await;
        })
    };

    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer))
            .await
            .expect("no response while streaming")
            .expect("read");
        assert!(read > 0, "closed without a response");
        received.extend_from_slice(&buffer[..read]);
    }
    let sent_at_answer = sent.load(Ordering::SeqCst);

    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // The response arrives after the first MiB, long before the 50 MiB are sent. Socket
    // buffers on both sides account for the few MiB written beyond the limit.
    assert!(
        sent_at_answer < 16 * 1024 * 1024,
        "server read {sent_at_answer} bytes before answering"
    );
    streamer.abort();
    service.assert_genuine_served("evt_hi_chunked").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn oversized_head_gets_431() {
    let service = spawn(&[]).await;
    let long_value = format!(
        "POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many_headers = format!(
        "POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|n| format!("X-H{n}: v\r\n"))
            .collect::<String>()
    );

    for (name, request) in [("long value", long_value), ("200 headers", many_headers)] {
        let mut client = connect(service.public).await;
        let _ = client.write_all(request.as_bytes()).await;
        let ending = read_until_closed(&mut client, Duration::from_secs(3)).await;
        assert_eq!(ending.status(), Some(431), "{name}: {ending:?}");
    }

    service.assert_genuine_served("evt_hi_431").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn signed_malformed_bodies_get_400() {
    let service = spawn(&[]).await;
    let deep = format!(
        "{{\"id\":\"evt_hi_deep\",\"type\":\"x\",\"a\":{}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "invalid UTF-8",
            b"{\"id\":\"evt_hi_\xff\",\"type\":\"x\"}".to_vec(),
            "invalid_encoding",
        ),
        (
            "not JSON",
            b"id=evt_hi_form&type=x".to_vec(),
            "invalid_json",
        ),
        (
            "truncated JSON",
            br#"{"id":"evt_hi_trunc","type":"pay"#.to_vec(),
            "invalid_json",
        ),
        (
            "missing id",
            br#"{"type":"payment_intent.succeeded"}"#.to_vec(),
            "missing_field",
        ),
        (
            "missing type",
            br#"{"id":"evt_hi_no_type"}"#.to_vec(),
            "missing_field",
        ),
        (
            "duplicate id",
            br#"{"id":"evt_hi_dup_a","type":"x","id":"evt_hi_dup_b"}"#.to_vec(),
            "duplicate_key",
        ),
        (
            "duplicate type",
            br#"{"type":"a","id":"evt_hi_dup_t","type":"b"}"#.to_vec(),
            "duplicate_key",
        ),
        ("10,000-deep nesting", deep.into_bytes(), "payload_too_deep"),
    ];

    for (name, body, code) in cases {
        let answer = service.post_signed(&body).await;
        assert_eq!(answer.status, 400, "{name}: {}", answer.body);
        assert_eq!(answer.code(), code, "{name}");
    }

    service.assert_genuine_served("evt_hi_malformed").await;
    service.assert_only_genuine_rows().await;
}

#[tokio::test]
async fn unsigned_deep_nesting_is_rejected_cheaply() {
    let service = spawn(&[]).await;
    let body = "[".repeat(100_000);

    let answer = service
        .post(
            "/api/webhooks/stripe",
            &[("stripe-signature", &signature_for(b"other"))],
            body.as_bytes(),
        )
        .await;

    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "payload_too_deep");
    service.assert_genuine_served("evt_hi_deep_unsigned").await;
    service.assert_only_genuine_rows().await;
}
