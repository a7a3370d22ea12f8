//! Drills 3 and 4: a consumer, then ingest, killed with SIGKILL while work is in hand.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Options;
use crate::env::DrillEnv;
use crate::outages::{ensure_all_running, stop_all};
use crate::sender::{self, Sender, count_answers, send_steady, stripe_events};
use crate::verify::{report, stored_rows, tally, wait_completed};

/// Events queued before the first consumer starts.
const BACKLOG: usize = 1_000;
/// Kills tried until one catches claimed events in hand.
const KILL_TRIES: usize = 5;
/// `PAYHOOK_STALE_AFTER_SECONDS` of the consumer in the ingest drill.
const STALE_AFTER: &str = "10";
/// Maximum wait for every event to complete.
const COMPLETION_LIMIT: Duration = Duration::from_secs(90);

/// Queues a backlog and kills consumers with SIGKILL while they hold unacked deliveries and
/// claimed rows. A last consumer must finish every event, and no payment event may be
/// written twice.
///
/// A consumer processes a first delivery without a claim, so the first kill leaves its
/// deliveries unacked and their rows untouched. The broker redelivers them, and the next
/// consumer claims each redelivered row before its handler runs. That consumer is killed as
/// soon as claimed rows exist, which leaves rows for the lease to release.
pub async fn consumer_killed(options: &Options) -> anyhow::Result<bool> {
    let env = DrillEnv::new("consumer-killed", options).await?;
    let ingest = env.start_ingest(&[]).await?;
    let events = Arc::new(stripe_events("consumer_killed", BACKLOG));
    let order: Vec<usize> = (0..BACKLOG).collect();
    let sender = Sender::new(ingest.webhooks_url());
    let records = send_steady(&sender, &events, &order, Duration::from_millis(1), 16).await;
    let counts = count_answers(&records);
    let acknowledged = sender::acknowledged(&records);

    let consumer_settings = [("PAYHOOK_CONSUMERS", "8"), ("PAYHOOK_AMQP_PREFETCH", "16")];
    // The first consumer works through part of the backlog and is killed with deliveries
    // in hand.
    let target = (BACKLOG / 4) as i64;
    let mut victim = env.start_consumer(&consumer_settings)?;
    let started = Instant::now();
    while count(&env, "status = 'completed'").await? < target {
        victim.ensure_running()?;
        if started.elapsed() > COMPLETION_LIMIT {
            anyhow::bail!("the first consumer never completed {target} events");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill()?;
    let mut kills = 1;

    // Each later consumer starts on redelivered messages. It is killed once claimed rows
    // exist, or after a share of the backlog when none was seen.
    let mut caught = 0;
    for attempt in 1..=KILL_TRIES {
        let target = (BACKLOG * (attempt + 1) / (KILL_TRIES + 3)) as i64;
        let mut victim = env.start_consumer(&consumer_settings)?;
        let started = Instant::now();
        loop {
            victim.ensure_running()?;
            if count(&env, "status = 'processing'").await? > 0
                || count(&env, "status = 'completed'").await? >= target
            {
                break;
            }
            if started.elapsed() > COMPLETION_LIMIT {
                anyhow::bail!(
                    "consumer {attempt} never claimed a row nor completed {target} events"
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        victim.kill()?;
        kills += 1;
        caught = count(&env, "status = 'processing'").await?;
        if caught > 0 {
            break;
        }
    }
    let rescuer = env.start_consumer(&[])?;
    let all_done = wait_completed(&env, &events, &acknowledged, COMPLETION_LIMIT).await?;

    let mut tally = tally(&env, &events, &acknowledged).await?;
    let redelivered = count(
        &env,
        "status = 'completed' AND EXISTS (SELECT 1 FROM webhook_processing_logs l \
         WHERE l.webhook_event_id = webhook_events.id AND l.processing_step = 'handler' \
         AND l.status = 'success' AND l.additional_data LIKE '%, claimed')",
    )
    .await?;
    let retried = count(&env, "attempt_count > 1").await?;
    let notes = vec![
        format!("answers: {counts:?}"),
        format!(
            "SIGKILLs: {kills}; rows left claimed by a killed consumer: {caught}; events finished after a claim: {redelivered}; events that needed a second counted attempt: {retried}"
        ),
    ];
    if redelivered == 0 {
        tally.problem(format!(
            "no event was finished after a redelivery and claim in {kills} kills, so nothing was tested"
        ));
    }
    if caught == 0 {
        tally.problem(format!(
            "none of {kills} kills left a claimed row, so the lease takeover was not tested"
        ));
    }
    if acknowledged.len() != events.len() {
        tally.problem("some deliveries of the backlog were not acknowledged");
    }
    if !all_done {
        tally.problem(format!(
            "events still unfinished after {COMPLETION_LIMIT:?}"
        ));
    }
    let mut rescuers = vec![rescuer];
    let mut ingest = ingest;
    ensure_all_running(&mut tally, &mut ingest, &mut rescuers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, rescuers).await;
    Ok(passed)
}

/// Kills ingest with SIGKILL under load and starts a new one on the same port. Every event
/// answered 2xx must be stored; an event without an answer is either stored whole and
/// processed, or absent. The unanswered ones are then sent again, as a provider retries.
pub async fn ingest_killed(options: &Options) -> anyhow::Result<bool> {
    const EVENTS: usize = 1_200;
    let env = DrillEnv::new("ingest-killed", options).await?;
    let first = env.start_ingest(&[]).await?;
    let public = first.public.unwrap();
    // A row committed just before the kill is stamped published although its message was
    // never sent; only the sweep of messages presumed lost publishes it, after this age.
    let consumer = env.start_consumer(&[("PAYHOOK_STALE_AFTER_SECONDS", STALE_AFTER)])?;
    let events = Arc::new(stripe_events("ingest_killed", EVENTS));
    let order: Vec<usize> = (0..EVENTS).collect();
    let sender = Sender::new(format!("http://{public}/api/webhooks"));

    let fault = async {
        let mut first = first;
        tokio::time::sleep(Duration::from_secs(2)).await;
        first.kill()?;
        println!("  [{}] ingest killed with SIGKILL", env.name);
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.start_ingest_on(public, &[("PAYHOOK_STALE_AFTER_SECONDS", STALE_AFTER)])
            .await
    };
    let (records, second) = tokio::join!(
        send_steady(&sender, &events, &order, Duration::from_millis(4), 32),
        fault
    );
    let second = second?;
    let counts = count_answers(&records);
    let mut acknowledged = sender::acknowledged(&records);

    // Before any redelivery: what the crash left behind.
    let stored = stored_rows(&env).await?;
    let unanswered: Vec<usize> = (0..EVENTS).filter(|i| !acknowledged.contains(i)).collect();
    let stored_unanswered: HashSet<usize> = unanswered
        .iter()
        .copied()
        .filter(|&i| stored.contains_key(&("stripe".to_owned(), events[i].event_id.clone())))
        .collect();
    let mut expected = acknowledged.clone();
    expected.extend(&stored_unanswered);
    let crash_done = wait_completed(&env, &events, &expected, COMPLETION_LIMIT).await?;
    let after_crash = tally(&env, &events, &acknowledged).await?;

    let retries = sender::redeliver_unacknowledged(&sender, &events, &mut acknowledged, 5).await;
    let all_done = wait_completed(&env, &events, &acknowledged, COMPLETION_LIMIT).await?;
    let mut tally = tally(&env, &events, &acknowledged).await?;
    let notes = vec![
        format!("answers during the stream: {counts:?}"),
        format!(
            "unanswered: {} ({} stored, {} absent); after the crash: {after_crash}; redeliveries: {}",
            unanswered.len(),
            stored_unanswered.len(),
            unanswered.len() - stored_unanswered.len(),
            retries.len()
        ),
    ];
    for problem in after_crash.problems {
        tally.problem(format!("after the crash: {problem}"));
    }
    tally.lost += after_crash.lost;
    tally.duplicates += after_crash.duplicates;
    if counts.no_answer + counts.timed_out == 0 {
        tally.problem("every delivery was answered, so the kill caught no request in flight");
    }
    if !crash_done || !all_done {
        tally.problem(format!(
            "events still unfinished after {COMPLETION_LIMIT:?}"
        ));
    }
    if acknowledged.len() != events.len() {
        tally.problem("some events were never acknowledged, even when sent again");
    }
    let mut ingest = second;
    let mut consumers = vec![consumer];
    ensure_all_running(&mut tally, &mut ingest, &mut consumers);
    let passed = report(&env.name, &tally, &notes);
    stop_all(ingest, consumers).await;
    Ok(passed)
}

/// Counts the drill's stored events matching `condition`.
pub async fn count(env: &DrillEnv, condition: &str) -> anyhow::Result<i64> {
    let db = env.db().await?;
    let row = db
        .query_one(
            &format!("SELECT COUNT(*) FROM webhook_events WHERE {condition}"),
            &[],
        )
        .await?;
    Ok(row.get(0))
}
