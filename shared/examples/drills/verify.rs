//! The database check at the end of a drill: every acknowledged event stored once with its
//! exact body, `completed`, with one payment event and one successful handler run.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use crate::env::DrillEnv;
use crate::sender::Event;

/// Problems listed in full before the rest are only counted.
const LISTED_PROBLEMS: usize = 10;

/// One stored event as the check sees it.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub id: i64,
    pub status: String,
    pub raw_payload: String,
    pub attempt_count: i32,
    pub payment_events: i64,
    pub handler_successes: i64,
}

/// The result of a drill's check: the counts of the summary line and every problem found.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: usize,
    pub acknowledged: usize,
    pub completed: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub problems: Vec<String>,
}

impl Tally {
    /// Adds a problem that fails the drill.
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    /// Returns whether the drill passed.
    pub fn passed(&self) -> bool {
        self.duplicates == 0 && self.lost == 0 && self.problems.is_empty()
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {}, completed {}, duplicates {}, lost {}",
            self.sent, self.acknowledged, self.completed, self.duplicates, self.lost
        )
    }
}

/// Reads every stored event of the drill database by (provider, event id).
pub async fn stored_rows(
    env: &DrillEnv,
) -> anyhow::Result<HashMap<(String, String), Vec<StoredRow>>> {
    let db = env.db().await?;
    let rows = db
        .query(
            "SELECT w.id, w.provider, w.event_id, w.status, w.raw_payload, w.attempt_count, \
               (SELECT COUNT(*) FROM payment_events p WHERE p.webhook_event_id = w.id), \
               (SELECT COUNT(*) FROM webhook_processing_logs l \
                 WHERE l.webhook_event_id = w.id AND l.processing_step = 'handler' \
                   AND l.status = 'success') \
             FROM webhook_events w",
            &[],
        )
        .await?;
    let mut stored: HashMap<(String, String), Vec<StoredRow>> = HashMap::new();
    for row in rows {
        let key = (row.get::<_, String>(1), row.get::<_, String>(2));
        stored.entry(key).or_default().push(StoredRow {
            id: row.get(0),
            status: row.get(3),
            raw_payload: row.get(4),
            attempt_count: row.get(5),
            payment_events: row.get(6),
            handler_successes: row.get(7),
        });
    }
    Ok(stored)
}

/// Waits until every event in `expected` is `completed`, or `limit` has passed.
pub async fn wait_completed(
    env: &DrillEnv,
    events: &[Event],
    expected: &HashSet<usize>,
    limit: Duration,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    loop {
        // The database may be coming back from an outage, so a failed read is retried.
        if let Ok(stored) = stored_rows(env).await {
            let done = expected.iter().all(|&index| {
                let event = &events[index];
                stored
                    .get(&(event.route().to_owned(), event.event_id.clone()))
                    .is_some_and(|rows| rows.iter().all(|row| row.status == "completed"))
            });
            if done {
                return Ok(true);
            }
        }
        if started.elapsed() >= limit {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks the database against the events sent (`events`) and those acknowledged
/// (`acknowledged`, indexes into `events`). An event that was sent but not acknowledged
/// may be absent; when it is stored, it is held to the same rules.
pub async fn tally(
    env: &DrillEnv,
    events: &[Event],
    acknowledged: &HashSet<usize>,
) -> anyhow::Result<Tally> {
    let stored = stored_rows(env).await?;
    let mut tally = Tally {
        sent: events.len(),
        acknowledged: acknowledged.len(),
        ..Tally::default()
    };
    let mut known = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        let key = (event.route().to_owned(), event.event_id.clone());
        known.insert(key.clone());
        let acked = acknowledged.contains(&index);
        let Some(rows) = stored.get(&key) else {
            if acked {
                tally.lost += 1;
                tally.problem(format!("{}: acknowledged but not stored", event.event_id));
            }
            continue;
        };
        if rows.len() > 1 {
            tally.duplicates += rows.len() - 1;
            tally.problem(format!("{}: stored {} times", event.event_id, rows.len()));
        }
        for row in rows {
            check_row(&mut tally, event, row, acked);
        }
    }
    for (key, rows) in &stored {
        if !known.contains(key) {
            tally.problem(format!(
                "{} {}: {} stored row(s) the drill never sent",
                key.0,
                key.1,
                rows.len()
            ));
        }
    }
    Ok(tally)
}

fn check_row(tally: &mut Tally, event: &Event, row: &StoredRow, acked: bool) {
    let id = &event.event_id;
    if row.raw_payload != event.body {
        tally.problem(format!(
            "{id} (row {}): stored body differs from the body sent ({} bytes stored, {} sent)",
            row.id,
            row.raw_payload.len(),
            event.body.len()
        ));
    }
    if row.payment_events > 1 {
        tally.duplicates += (row.payment_events - 1) as usize;
        tally.problem(format!(
            "{id} (row {}): {} payment events",
            row.id, row.payment_events
        ));
    }
    if row.handler_successes > 1 {
        tally.duplicates += (row.handler_successes - 1) as usize;
        tally.problem(format!(
            "{id} (row {}): handler succeeded {} times",
            row.id, row.handler_successes
        ));
    }
    let complete = row.status == "completed" && row.payment_events == 1;
    if complete {
        tally.completed += 1;
    } else {
        // A row that is stored must be processed too, acknowledged or not.
        if acked {
            tally.lost += 1;
        }
        tally.problem(format!(
            "{id} (row {}): status {}, {} payment events, attempt {}",
            row.id, row.status, row.payment_events, row.attempt_count
        ));
    }
}

/// Prints the summary line and the problems; returns whether the drill passed.
pub fn report(name: &str, tally: &Tally, notes: &[String]) -> bool {
    println!("drill {name}: {tally}");
    for note in notes {
        println!("  {note}");
    }
    for problem in tally.problems.iter().take(LISTED_PROBLEMS) {
        println!("  FAIL {problem}");
    }
    if tally.problems.len() > LISTED_PROBLEMS {
        println!(
            "  ... and {} more problems",
            tally.problems.len() - LISTED_PROBLEMS
        );
    }
    tally.passed()
}
