//! Measures RabbitMQ's rate of persistent, confirmed, `mandatory` publishes through the
//! project's own [`RabbitPublisher`], with many publishes in flight at once, as ingest
//! sends them. With `--delete` it only deletes the topology of `--prefix`.
//!
//! ```sh
//! cargo run --release -p payhook --example publish_rate -- \
//!     --url 'amqp://guest:guest@127.0.0.1:5672/%2f' --prefix bench_x --count 50000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use payhook::queue::rabbitmq::{RabbitConfig, RabbitPublisher};
use payhook::queue::{Envelope, Publisher};
use payhook::secret::Secret;

#[derive(Parser, Debug)]
#[command(about = "Publishes envelopes with confirms and reports the rate")]
struct Args {
    /// Broker URL.
    #[arg(long)]
    url: String,
    /// Prefix of the exchange and queues; use one of the benchmark's own.
    #[arg(long)]
    prefix: String,
    /// Envelopes to publish.
    #[arg(long, default_value_t = 50_000)]
    count: u64,
    /// Publishes in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Delete the prefix's queues and exchange, then exit.
    #[arg(long)]
    delete: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let mut config = RabbitConfig::new(Secret::new(args.url.clone()));
    config.prefix = args.prefix.clone();
    config.connection_name = format!("{}-publish-rate", args.prefix);
    let publisher = RabbitPublisher::connect(config).await?;
    if args.delete {
        publisher.delete_topology().await?;
        publisher.close().await;
        return Ok(());
    }

    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let publisher = publisher.clone();
        let next = next.clone();
        let failures = failures.clone();
        let count = args.count;
        tasks.push(tokio::spawn(async move {
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= count {
                    break;
                }
                let envelope = Envelope::V1 {
                    id: id as i64 + 1,
                    provider: "stripe".to_owned(),
                    event_type: "payment_intent.succeeded".to_owned(),
                    attempt: 0,
                    traceparent: None,
                };
                if publisher.publish(&envelope).await.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let failed = failures.load(Ordering::Relaxed);
    println!("published={}", args.count - failed);
    println!("failed={failed}");
    println!("seconds={seconds:.3}");
    println!("per_second={:.0}", (args.count - failed) as f64 / seconds);
    publisher.close().await;
    Ok(())
}
