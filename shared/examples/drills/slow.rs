//! Drill 7: a handler slower than the broker's consumer timeout. The consumer's handler
//! timeout must end the attempt and retry it, the channel must stay open, and other
//! events must keep flowing. The slow handler lives only in this drill program.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::providers::{self, ExtractError, Extraction, Handler};
use payhook::telemetry;
use tokio_util::sync::CancellationToken;

use crate::Options;
use crate::env::DrillEnv;
use crate::outages::{ensure_all_running, stop_all};
use crate::sender::{self, Sender, count_answers, send_steady, stripe_event, stripe_events};
use crate::verify::{report, stored_rows, tally, wait_completed};

/// Marker in the event ids whose first handler call is slow.
const SLOW_MARKER: &str = "_stalls_";
/// Length of a slow handler call: longer than the drill broker's 10 s consumer timeout.
const SLOW_CALL: Duration = Duration::from_secs(15);
const HEALTHY: usize = 300;
const SLOW: usize = 6;
const LIMIT: Duration = Duration::from_secs(60);
/// Text RabbitMQ logs when it closes a channel for an unacked delivery held too long.
const CONSUMER_TIMEOUT_LOG: &str = "delivery acknowledgement";

/// Settings of the slow consumer: those of `payhook-consumer run`.
#[derive(clap::Args)]
pub struct SlowConsumerArgs {
    #[command(flatten)]
    settings: Settings,
}

/// A handler whose first call for an event id containing [`SLOW_MARKER`] sleeps for
/// [`SLOW_CALL`] before running the real handler.
struct SlowFirstCall {
    inner: Arc<dyn Handler>,
    slowed: Mutex<HashSet<String>>,
}

impl Handler for SlowFirstCall {
    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let event_id = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|value| value["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let first_call =
            event_id.contains(SLOW_MARKER) && self.slowed.lock().unwrap().insert(event_id.clone());
        if first_call {
            std::thread::sleep(SLOW_CALL);
        }
        self.inner.extract(event_type, payload)
    }
}

/// Runs a consumer whose handlers are wrapped in [`SlowFirstCall`], until SIGTERM.
pub async fn run_slow_consumer(mut args: SlowConsumerArgs) -> anyhow::Result<()> {
    args.settings
        .apply_aliases(|name| std::env::var(name).ok())?;
    telemetry::init_logging(args.settings.log_format);
    let config = AppConfig::load(args.settings)?;
    let providers = providers::build(&config)?;
    let handlers: HashMap<String, Arc<dyn Handler>> = app::provider_handlers(&providers)
        .into_iter()
        .map(|(name, inner)| {
            let slow: Arc<dyn Handler> = Arc::new(SlowFirstCall {
                inner,
                slowed: Mutex::new(HashSet::new()),
            });
            (name, slow)
        })
        .collect();
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            app::shutdown_signal().await;
            shutdown.cancel();
        }
    });
    app::run_consumer_with_handlers(config, handlers, shutdown).await
}

/// Runs the slow-handler drill.
pub async fn slow_handler(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("slow-handler", options).await?;
    let log_before = consumer_timeouts(&options.broker_log);
    let mut ingest = env.start_ingest(&[]).await?;
    let consumer = env.start_slow_consumer(&[("PAYHOOK_CONSUMERS", "8")])?;

    let mut all = stripe_events("timeout_healthy", HEALTHY);
    let run = fastrand::u32(..);
    all.extend((0..SLOW).map(|n| stripe_event(&format!("evt{SLOW_MARKER}{run:08x}_{n}"), n)));
    let events = Arc::new(all);
    let healthy: HashSet<usize> = (0..HEALTHY).collect();
    // The slow events go first, so every later event queues behind them.
    let order: Vec<usize> = (HEALTHY..HEALTHY + SLOW).chain(0..HEALTHY).collect();
    let sender = Sender::new(ingest.webhooks_url());

    let records = send_steady(&sender, &events, &order, Duration::from_millis(10), 8).await;
    let counts = count_answers(&records);
    let acknowledged = sender::acknowledged(&records);
    let sent_done = Instant::now();
    // Healthy events must finish before the first slow call would have ended.
    let healthy_done = wait_completed(&env, &events, &healthy, SLOW_CALL / 2).await?;
    let healthy_lag = sent_done.elapsed();
    let all_done = wait_completed(&env, &events, &acknowledged, LIMIT).await?;
    // A late consumer timeout still shows in the broker log once the slow calls end.
    tokio::time::sleep(SLOW_CALL.saturating_sub(sent_done.elapsed()) + Duration::from_secs(2))
        .await;
    let timeouts = consumer_timeouts(&options.broker_log) - log_before;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let stored = stored_rows(&env).await?;
    let retried_slow = (HEALTHY..HEALTHY + SLOW)
        .filter(|&i| {
            stored
                .get(&("stripe".to_owned(), events[i].event_id.clone()))
                .and_then(|rows| rows.first())
                .is_some_and(|row| row.attempt_count >= 2)
        })
        .count();
    let notes = vec![
        format!("answers: {counts:?}"),
        format!(
            "healthy events completed {:.1}s after the last delivery; slow events retried after a timeout: {retried_slow}; broker consumer timeouts: {timeouts}",
            healthy_lag.as_secs_f64()
        ),
    ];
    if !healthy_done {
        tally.problem(format!(
            "healthy events were still unfinished {:?} after the last delivery, behind the slow ones",
            SLOW_CALL / 2
        ));
    }
    if retried_slow != SLOW {
        tally.problem(format!(
            "{retried_slow} of {SLOW} slow events were ended by the handler timeout and retried"
        ));
    }
    if timeouts > 0 {
        tally.problem(format!(
            "the broker closed a channel {timeouts} time(s) for a delivery held past its consumer timeout"
        ));
    }
    if !all_done {
        tally.problem(format!("events still unfinished after {LIMIT:?}"));
    }
    let mut consumers = vec![consumer];
    ensure_all_running(&mut tally, &mut ingest, &mut consumers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, consumers).await;
    Ok(passed)
}

/// Counts the consumer-timeout lines in the broker log.
fn consumer_timeouts(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .map(|text| text.matches(CONSUMER_TIMEOUT_LOG).count())
        .unwrap_or(0)
}
