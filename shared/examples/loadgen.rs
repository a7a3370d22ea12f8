//! Load generator for payhook's Stripe endpoint: every request carries its own
//! `Stripe-Signature`, and every event id is distinct unless `--mode storm` is chosen.
//!
//! Modes:
//! - `max`: closed loop, each connection sends its next request when the previous one
//!   received its response; measures the maximum sustained rate.
//! - `rate`: open loop at `--rate` requests per second spread over the connections. Each
//!   latency is measured from the request's scheduled send time, so a stalled server also
//!   delays (and is charged for) the requests queued behind it.
//! - `storm`: `--count` requests of one event id, all connections at once.
//!
//! The summary is printed as `key=value` lines so that scripts can read it.
//!
//! ```sh
//! cargo run --release -p payhook --example loadgen -- --mode max --connections 64 \
//!     --duration 10 --secret whsec_bench
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use payhook::providers::stripe::sign_header;
use payhook::secret::Secret;
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Max,
    Rate,
    Storm,
}

#[derive(Parser, Debug)]
#[command(about = "Sends Stripe-signed webhooks to payhook and reports rates and latencies")]
struct Args {
    /// Load pattern.
    #[arg(long, value_enum, default_value_t = Mode::Max)]
    mode: Mode,
    /// Address of the webhook listener (host:port, plain HTTP).
    #[arg(long, default_value = "127.0.0.1:7002")]
    addr: String,
    /// Request path.
    #[arg(long, default_value = "/api/webhooks/stripe")]
    path: String,
    /// Stripe signing secret configured in payhook.
    #[arg(long)]
    secret: String,
    /// Open HTTP/1.1 keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to send for; ignored when `--count` is set.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Total requests to send; 0 means "until --duration has passed".
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// Requests per second in `rate` mode.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Event id prefix; distinct per run so that runs never collide.
    #[arg(long, default_value = "evt_bench")]
    id_prefix: String,
    /// Approximate body size in bytes.
    #[arg(long, default_value_t = 2048)]
    body_bytes: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Counters and latency samples of one connection.
#[derive(Default)]
struct Tally {
    accepted: u64,
    duplicate: u64,
    errors: u64,
    /// Latency of every request that received a response, in microseconds.
    latencies_us: Vec<u64>,
    /// Example of the last unexpected response.
    last_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.duplicate += other.duplicate;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
    }
}

/// State shared by every connection: the schedule and the body template.
struct Plan {
    args: Args,
    secret: Secret,
    next: AtomicU64,
    started: Instant,
    deadline: Instant,
    padding: String,
}

impl Plan {
    /// Returns the next request number, or `None` once the run is over.
    fn take(&self) -> Option<u64> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if self.args.count > 0 {
            return (index < self.args.count).then_some(index);
        }
        (Instant::now() < self.deadline).then_some(index)
    }

    /// Returns when request `index` is due in `rate` mode.
    fn due(&self, index: u64) -> Instant {
        self.started + Duration::from_secs_f64(index as f64 / self.args.rate)
    }

    fn body(&self, index: u64) -> Vec<u8> {
        let event = match self.args.mode {
            Mode::Storm => format!("{}_storm", self.args.id_prefix),
            _ => format!("{}_{index}", self.args.id_prefix),
        };
        format!(
            concat!(
                r#"{{"id":"{event}","object":"event","api_version":"2026-07-29.dahlia","#,
                r#""created":1764844800,"type":"payment_intent.succeeded","livemode":false,"#,
                r#""data":{{"object":{{"id":"pi_{event}","object":"payment_intent","#,
                r#""amount":2000,"amount_received":2000,"currency":"usd","#,
                r#""customer":"cus_bench","latest_charge":"ch_{event}","#,
                r#""metadata":{{"order_id":"ORD-{index}","note":"{padding}"}},"#,
                r#""status":"succeeded"}}}}}}"#
            ),
            event = event,
            index = index,
            padding = self.padding,
        )
        .into_bytes()
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    if args.mode == Mode::Rate && args.count == 0 {
        // A fixed schedule: the run ends after the last request due before the deadline.
        args.count = (args.rate * args.duration).ceil() as u64;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // About 384 bytes of the body are fixed fields; the padding brings it to the size asked.
    let padding = "x".repeat(args.body_bytes.saturating_sub(384));
    let started = Instant::now();
    let plan = Arc::new(Plan {
        secret: Secret::new(args.secret.clone()),
        next: AtomicU64::new(0),
        started,
        deadline: started + Duration::from_secs_f64(args.duration),
        padding,
        args,
    });
    let body_len = plan.body(0).len();

    let mut tasks = Vec::with_capacity(plan.args.connections);
    for _ in 0..plan.args.connections {
        tasks.push(tokio::spawn(connection(plan.clone())));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    report(&plan.args, &mut total, elapsed, body_len);
    Ok(())
}

async fn connect(plan: &Plan) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(&plan.args.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn connection(plan: Arc<Plan>) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut sender = connect(&plan).await?;
    let host = plan.args.addr.clone();
    while let Some(index) = plan.take() {
        let scheduled = match plan.args.mode {
            Mode::Rate => {
                let due = plan.due(index);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            _ => Instant::now(),
        };
        let body = plan.body(index);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign_header(&plan.secret, timestamp, &body);
        let request = http::Request::post(plan.args.path.as_str())
            .header(http::header::HOST, host.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "payhook-loadgen")
            .header("stripe-signature", signature)
            .body(Full::new(Bytes::from(body)))?;
        if sender.ready().await.is_err() {
            sender = connect(&plan).await?;
        }
        match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                tally
                    .latencies_us
                    .push(scheduled.elapsed().as_micros() as u64);
                classify(&mut tally, status, &body);
            }
            Err(error) => {
                tally.errors += 1;
                tally.last_error = Some(format!("request failed: {error}"));
                sender = connect(&plan).await?;
            }
        }
    }
    Ok(tally)
}

fn classify(tally: &mut Tally, status: http::StatusCode, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    if status.is_success() && text.contains(r#""status":"accepted""#) {
        tally.accepted += 1;
    } else if status.is_success() && text.contains(r#""status":"duplicate""#) {
        tally.duplicate += 1;
    } else {
        tally.errors += 1;
        let excerpt: String = text.chars().take(200).collect();
        tally.last_error = Some(format!("{status} {excerpt}"));
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn report(args: &Args, total: &mut Tally, elapsed: f64, body_len: usize) {
    total.latencies_us.sort_unstable();
    let answered = total.accepted + total.duplicate;
    let lat = &total.latencies_us;
    println!("mode={:?}", args.mode);
    println!("connections={}", args.connections);
    println!("body_bytes={body_len}");
    println!("seconds={elapsed:.3}");
    println!("accepted={}", total.accepted);
    println!("duplicate={}", total.duplicate);
    println!("errors={}", total.errors);
    println!("ok_per_second={:.0}", answered as f64 / elapsed);
    println!("p50_ms={:.2}", percentile(lat, 0.50));
    println!("p90_ms={:.2}", percentile(lat, 0.90));
    println!("p99_ms={:.2}", percentile(lat, 0.99));
    println!("max_ms={:.2}", percentile(lat, 1.0));
    if let Some(error) = &total.last_error {
        println!("last_error={error}");
    }
}
