//! A raw TCP client for requests no well-behaved HTTP client would send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server did with a connection: closed it, possibly after sending a response.
#[derive(Debug)]
pub struct Ending {
    /// Time from the start of [`read_until_closed`] to the end of the connection.
    pub after: Duration,
    /// Everything the server sent.
    pub received: Vec<u8>,
}

impl Ending {
    /// Returns the status code of the first response, if the server sent one.
    pub fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.received);
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// Opens a connection to `address`.
pub async fn connect(address: SocketAddr) -> TcpStream {
    TcpStream::connect(address).await.expect("connect")
}

/// Reads until the server closes the connection or resets it. Fails the test when the
/// connection is still open after `limit`.
pub async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Ending {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let remaining = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
            Err(_) => panic!(
                "connection still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    Ending {
        after: started.elapsed(),
        received,
    }
}

/// Reads until one complete response head has arrived, and returns its status code.
pub async fn read_status(stream: &mut TcpStream, limit: Duration) -> u16 {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let remaining = limit.saturating_sub(started.elapsed());
        let read = tokio::time::timeout(remaining, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no response head within {limit:?}"))
            .expect("read");
        assert!(read > 0, "closed before a response: {received:?}");
        received.extend_from_slice(&buffer[..read]);
    }
    let ending = Ending {
        after: started.elapsed(),
        received,
    };
    ending.status().expect("status line")
}

/// Writes `bytes`, ignoring a reset: the server may close before reading everything.
pub async fn write_lossy(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}
