//! Drill 6: events whose handler fails because of a configuration mistake reach the
//! dead-letter queue after their attempts while healthy events keep flowing; once the
//! configuration is corrected, `replay-dead-letters` completes them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Options;
use crate::crashes::count;
use crate::env::{DRILLPAY_SECRET, DrillEnv};
use crate::outages::{ensure_all_running, stop_all};
use crate::sender::{self, Sender, count_answers, drillpay_events, send_steady, stripe_events};
use crate::verify::{report, tally, wait_completed};

const HEALTHY: usize = 400;
const POISON: usize = 40;
const MAX_ATTEMPTS: &str = "3";
const LIMIT: Duration = Duration::from_secs(60);

/// Writes the `drillpay` provider with its currency read from `currency_pointer`.
fn write_config(path: &Path, currency_pointer: &str) -> anyhow::Result<()> {
    let config = format!(
        r#"[[hmac]]
name = "drillpay"
secrets = ["{DRILLPAY_SECRET}"]

[hmac.scheme]
signature_header = "X-Drill-Signature"
algorithm = "hmac-sha256"
encoding = "hex"
message = "{{body}}"
event_id = "/id"
event_type = "/type"

[hmac.payment]
payment_id = "/data/payment"
amount = "/data/amount_minor"
currency = "{currency_pointer}"
event_statuses = {{ "payment.succeeded" = "succeeded" }}
"#
    );
    std::fs::write(path, config)?;
    Ok(())
}

/// Runs the poison-event drill.
pub async fn poison_events(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("poison-events", options).await?;
    let config_path = env.log_dir.join("providers.toml");
    // The mistake: the currency pointer names the region field, which is no ISO 4217 code.
    write_config(&config_path, "/data/region")?;
    let config = config_path.to_string_lossy().into_owned();
    let settings = [
        ("PAYHOOK_CONFIG", config.as_str()),
        ("PAYHOOK_MAX_ATTEMPTS", MAX_ATTEMPTS),
    ];
    let mut ingest = env.start_ingest(&settings).await?;
    let first_consumer = env.start_consumer(&settings)?;

    let mut all = stripe_events("poison_healthy", HEALTHY);
    all.extend(drillpay_events("poison", POISON));
    let events = Arc::new(all);
    let healthy: HashSet<usize> = (0..HEALTHY).collect();
    let poison: HashSet<usize> = (HEALTHY..HEALTHY + POISON).collect();
    let mut order: Vec<usize> = (0..events.len()).collect();
    fastrand::shuffle(&mut order);
    let sender = Sender::new(ingest.webhooks_url());

    let records = send_steady(&sender, &events, &order, Duration::from_millis(10), 8).await;
    let counts = count_answers(&records);
    let acknowledged = sender::acknowledged(&records);
    let sent_done = Instant::now();
    let healthy_done = wait_completed(&env, &events, &healthy, LIMIT).await?;
    let healthy_lag = sent_done.elapsed();

    let dead_queue = env.names().dead_queue;
    let mut dead_letters = 0;
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        dead_letters = env.depth(&dead_queue).await?;
        if dead_letters as usize >= POISON {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dead_rows = count(
        &env,
        &format!("provider = 'drillpay' AND status = 'dead' AND attempt_count = {MAX_ATTEMPTS}"),
    )
    .await?;

    // The fix: correct the pointer and restart the consumer with the corrected file.
    write_config(&config_path, "/data/currency")?;
    first_consumer.stop().await?;
    let second_consumer = env.start_consumer(&settings)?;
    let replay = env.run_operator(
        &[
            "replay-dead-letters",
            "--provider",
            "drillpay",
            "--limit",
            "1000",
        ],
        &settings,
    )?;
    let replayed = replay
        .lines()
        .filter(|line| line.starts_with("replayed event "))
        .count();
    let all_done = wait_completed(&env, &events, &acknowledged, LIMIT).await?;
    let dead_after = env.depth(&dead_queue).await?;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let notes = vec![
        format!("answers: {counts:?}"),
        format!(
            "healthy events completed {:.1}s after the last delivery; dead letters {dead_letters}, dead rows after {MAX_ATTEMPTS} attempts {dead_rows}; replayed {replayed}; dead letters after replay {dead_after}",
            healthy_lag.as_secs_f64()
        ),
    ];
    if !healthy_done {
        tally.problem("healthy events did not all complete while the poison events failed");
    }
    if dead_letters as usize != POISON {
        tally.problem(format!(
            "{dead_letters} of {POISON} poison events reached the dead-letter queue"
        ));
    }
    if dead_rows as usize != POISON {
        tally.problem(format!(
            "{dead_rows} of {POISON} poison rows were dead after exactly {MAX_ATTEMPTS} attempts"
        ));
    }
    if replayed != POISON {
        tally.problem(format!(
            "replay-dead-letters listed {replayed} of {POISON} events"
        ));
    }
    if dead_after != 0 {
        tally.problem(format!(
            "{dead_after} messages left in the dead-letter queue"
        ));
    }
    if acknowledged.len() != events.len() || !poison.iter().all(|i| acknowledged.contains(i)) {
        tally.problem("some deliveries were not acknowledged");
    }
    if !all_done {
        tally.problem(format!("events still unfinished after {LIMIT:?}"));
    }
    let mut consumers = vec![second_consumer];
    ensure_all_running(&mut tally, &mut ingest, &mut consumers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, consumers).await;
    Ok(passed)
}
