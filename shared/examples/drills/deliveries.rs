//! Drill 5: every event delivered three times, shuffled, from eight concurrent senders.

use std::sync::Arc;
use std::time::Duration;

use crate::Options;
use crate::env::DrillEnv;
use crate::outages::{ensure_all_running, stop_all};
use crate::sender::{self, Sender, count_answers, send_steady, stripe_events};
use crate::verify::{report, tally, wait_completed};

/// Distinct events; each is delivered [`COPIES`] times.
const EVENTS: usize = 400;
const COPIES: usize = 3;
const SENDERS: usize = 8;
const COMPLETION_LIMIT: Duration = Duration::from_secs(60);

/// Every delivery must be answered 2xx, and each event must end as one row with one payment
/// event and one successful handler run.
pub async fn duplicate_deliveries(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("duplicate-deliveries", options).await?;
    let mut ingest = env.start_ingest(&[]).await?;
    let mut consumers = vec![env.start_consumer(&[])?, env.start_consumer(&[])?];
    let events = Arc::new(stripe_events("duplicate_deliveries", EVENTS));
    let mut order: Vec<usize> = (0..EVENTS).flat_map(|i| [i; COPIES]).collect();
    fastrand::shuffle(&mut order);
    let sender = Sender::new(ingest.webhooks_url());

    let records = send_steady(
        &sender,
        &events,
        &order,
        Duration::from_micros(500),
        SENDERS,
    )
    .await;
    let counts = count_answers(&records);
    let acknowledged = sender::acknowledged(&records);
    let all_done = wait_completed(&env, &events, &acknowledged, COMPLETION_LIMIT).await?;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let notes = vec![format!("{} deliveries; answers: {counts:?}", records.len())];
    if counts.acknowledged != records.len() {
        tally.problem(format!(
            "{} deliveries were not answered 2xx; a duplicate must be answered 200",
            records.len() - counts.acknowledged
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
