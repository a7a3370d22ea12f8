//! Drills 1 and 2: the broker, then the database, stopped for 20 s under a steady stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Options;
use crate::crashes::count;
use crate::env::{DrillEnv, Service};
use crate::sender::{self, Sender, count_answers, send_steady, stripe_events};
use crate::verify::{report, tally, wait_completed};

/// Pause between two deliveries of the steady stream: 40 per second.
const STREAM_INTERVAL: Duration = Duration::from_millis(25);
/// Deliveries in flight at most.
const CONCURRENCY: usize = 16;
/// Time from the start of the stream to the start of the outage.
const OUTAGE_START: Duration = Duration::from_secs(8);
/// Length of the outage.
const OUTAGE: Duration = Duration::from_secs(20);
/// Events in the stream: 36 s at 40 per second, so it runs 8 s past the outage.
const EVENTS: usize = 1_440;
/// Maximum wait for every event to complete after the stream.
const COMPLETION_LIMIT: Duration = Duration::from_secs(90);
/// Time after the dependency is back within which ingest must answer 2xx again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

/// Stops the drill RabbitMQ node's application for 20 s mid-stream. Ingest must keep
/// answering 2xx, the sweeper must publish what failed to publish, and the consumers must
/// reconnect by themselves.
pub async fn broker_outage(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("broker-outage", options).await?;
    let mut ingest = env.start_ingest(&[]).await?;
    let mut consumers = vec![env.start_consumer(&[])?, env.start_consumer(&[])?];
    let events = Arc::new(stripe_events("broker_outage", EVENTS));
    let order: Vec<usize> = (0..EVENTS).collect();
    let sender = Sender::new(ingest.webhooks_url());

    let fault = async {
        tokio::time::sleep(OUTAGE_START).await;
        env.control("broker-stop")?;
        tokio::time::sleep(OUTAGE).await;
        // Rows whose publish failed during the outage; only a sweeper can publish them.
        let unpublished = count(&env, "status = 'pending' AND published_at IS NULL").await?;
        env.control("broker-start")?;
        Ok::<i64, anyhow::Error>(unpublished)
    };
    let (records, fault) = tokio::join!(
        send_steady(&sender, &events, &order, STREAM_INTERVAL, CONCURRENCY),
        fault
    );
    let unpublished = fault?;
    let counts = count_answers(&records);
    let acknowledged = sender::acknowledged(&records);
    let all_done = wait_completed(&env, &events, &acknowledged, COMPLETION_LIMIT).await?;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let mut notes = vec![format!("answers: {counts:?}")];
    if counts.acknowledged != records.len() {
        tally.problem(format!(
            "{} of {} deliveries were not answered 2xx; ingest must store and accept while the broker is down",
            records.len() - counts.acknowledged,
            records.len()
        ));
    }
    if !all_done {
        tally.problem(format!(
            "events still unfinished after {COMPLETION_LIMIT:?}"
        ));
    }
    let failed_publishes = scrape_counter(&ingest, "payhook_publish_failures_total").await?;
    let republished = scrape_counter(&ingest, "payhook_sweeper_republished_total").await?;
    notes.push(format!(
        "ingest publishes failed: {failed_publishes}; unpublished rows when the broker returned: {unpublished}; republished by the ingest sweeper: {republished}"
    ));
    if failed_publishes == 0 || unpublished == 0 {
        tally.problem("no publish failed, so the outage did not reach ingest");
    }
    ensure_all_running(&mut tally, &mut ingest, &mut consumers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, consumers).await;
    Ok(passed)
}

/// Stops the drill PostgreSQL for 20 s mid-stream. Ingest must answer 503 quickly while it
/// is down and 2xx again once it is back, without a restart; every event answered 2xx must
/// complete and no consumer may crash. Deliveries answered otherwise are sent again
/// afterwards, as a provider retries.
pub async fn database_outage(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("database-outage", options).await?;
    let mut ingest = env.start_ingest(&[]).await?;
    let mut consumers = vec![env.start_consumer(&[])?, env.start_consumer(&[])?];
    let events = Arc::new(stripe_events("database_outage", EVENTS));
    let order: Vec<usize> = (0..EVENTS).collect();
    let sender = Sender::new(ingest.webhooks_url());

    let stream_started = Instant::now();
    let fault = async {
        tokio::time::sleep(OUTAGE_START).await;
        env.control("db-stop")?;
        tokio::time::sleep(OUTAGE).await;
        env.control("db-start")?;
        Ok::<Duration, anyhow::Error>(stream_started.elapsed())
    };
    let (records, fault) = tokio::join!(
        send_steady(&sender, &events, &order, STREAM_INTERVAL, CONCURRENCY),
        fault
    );
    let back_at = fault?;
    let counts = count_answers(&records);
    let mut acknowledged = sender::acknowledged(&records);
    let first_acknowledged = acknowledged.clone();
    let late_failures = records
        .iter()
        .filter(|record| record.sent_at > back_at + RECOVERY_LIMIT && !record.acknowledged())
        .count();
    let retries = sender::redeliver_unacknowledged(&sender, &events, &mut acknowledged, 5).await;
    let all_done = wait_completed(&env, &events, &acknowledged, COMPLETION_LIMIT).await?;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let notes = vec![
        format!("answers during the stream: {counts:?}"),
        format!(
            "acknowledged during the stream: {}, after redelivery: {} ({} redeliveries)",
            first_acknowledged.len(),
            acknowledged.len(),
            retries.len()
        ),
    ];
    if counts.timed_out > 0 || counts.no_answer > 0 {
        tally.problem(format!(
            "{} deliveries hung past {:?} and {} got no answer; ingest must answer 503 quickly",
            counts.timed_out,
            sender::REQUEST_TIMEOUT,
            counts.no_answer
        ));
    }
    if counts.unavailable == 0 {
        tally.problem("no delivery was answered 503, so the outage did not reach ingest");
    }
    if counts.other_status > 0 {
        tally.problem(format!(
            "{} deliveries got a status other than 2xx or 503",
            counts.other_status
        ));
    }
    if late_failures > 0 {
        tally.problem(format!(
            "{late_failures} deliveries sent more than {RECOVERY_LIMIT:?} after the database returned were not answered 2xx"
        ));
    }
    if acknowledged.len() != events.len() {
        tally.problem(format!(
            "{} events were never acknowledged, even when sent again",
            events.len() - acknowledged.len()
        ));
    }
    if !all_done {
        tally.problem(format!(
            "events still unfinished after {COMPLETION_LIMIT:?}"
        ));
    }
    ensure_all_running(&mut tally, &mut ingest, &mut consumers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, consumers).await;
    Ok(passed)
}

/// Records a problem for every process that exited during the drill.
pub fn ensure_all_running(
    tally: &mut crate::verify::Tally,
    ingest: &mut Service,
    consumers: &mut [Service],
) {
    for service in std::iter::once(ingest).chain(consumers.iter_mut()) {
        if let Err(error) = service.ensure_running() {
            tally.problem(format!("{error:#}"));
        }
    }
}

/// Stops the processes with SIGTERM; failures are printed, because the drill result is
/// already decided.
pub async fn stop_all(ingest: Service, consumers: Vec<Service>) {
    for service in consumers.into_iter().chain(std::iter::once(ingest)) {
        if let Err(error) = service.stop().await {
            println!("  warning: {error:#}");
        }
    }
}

/// Returns the sum of every series of the counter `name` on the ingest admin listener.
pub async fn scrape_counter(ingest: &Service, name: &str) -> anyhow::Result<u64> {
    let admin = ingest.admin.expect("not an ingest process");
    let mut stream = tokio::net::TcpStream::connect(admin).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let total = response
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    Ok(total)
}
