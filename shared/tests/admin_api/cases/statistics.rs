//! Statistics numbers against a known set of events in every status but `pending`.

use chrono::{DateTime, Utc};
use payhook::model::NewProcessingLog;
use payhook::storage::{Attempt, Failure};
use serde_json::{Value, json};

use crate::support::{
    HandlerMode, Options, SECOND_PROVIDER, customer_created, encode, payment_succeeded, spawn_app,
};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339 time")
}

/// Returns processing durations in milliseconds, sorted, computed from the API's times.
fn durations(events: &[Value]) -> Vec<f64> {
    let mut durations: Vec<f64> = events
        .iter()
        .map(|event| {
            let span = time(&event["processedAt"]) - time(&event["createdAt"]);
            span.num_microseconds().expect("span") as f64 / 1000.0
        })
        .collect();
    durations.sort_by(f64::total_cmp);
    durations
}

fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number"));
    assert!(
        (actual - expected).abs() <= 0.011,
        "{what}: {actual} != {expected}"
    );
}

pub async fn statistics_match_known_events(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let mut completed = Vec::new();
    for (provider, body) in [
        ("stripe", payment_succeeded("evt_adm_stats_p1", 1000, "usd")),
        ("stripe", payment_succeeded("evt_adm_stats_p2", 2500, "usd")),
        ("stripe", customer_created("evt_adm_stats_c1")),
        (
            SECOND_PROVIDER,
            payment_succeeded("evt_adm_stats_e1", 300, "eur"),
        ),
    ] {
        let id = app.post_event(provider, &body).await;
        app.wait_for_status(id, "completed").await;
        completed.push(id);
    }
    app.set_handler(HandlerMode::Fail);
    let mut faulty = Vec::new();
    for n in 1..=3 {
        let body = payment_succeeded(&format!("evt_adm_stats_f{n}"), 100, "usd");
        let id = app.post_event("stripe", &body).await;
        app.wait_for_status(id, "failed").await;
        faulty.push(id);
    }
    // One failed event becomes dead as if its last attempt failed; another stays claimed.
    let dead = app.hold_processing(faulty[1]).await;
    app.store
        .fail(
            dead.id,
            &Failure {
                attempt: Attempt::Claimed(dead.attempt_count),
                error_message: "test fault switched on".to_string(),
                logs: vec![NewProcessingLog {
                    step: "handler".to_string(),
                    status: "failed".to_string(),
                    duration_ms: 1,
                    error_message: None,
                    additional_data: None,
                }],
                next_retry_at: None,
            },
        )
        .await
        .expect("mark dead");
    app.hold_processing(faulty[2]).await;

    let statistics = app.get_json("/api/webhooks/statistics").await;
    assert_eq!(statistics["totalEvents"], 7, "{statistics}");
    assert_eq!(statistics["successfulEvents"], 4);
    assert_eq!(statistics["failedEvents"], 1);
    assert_eq!(statistics["deadEvents"], 1);
    assert_eq!(statistics["processingEvents"], 1);
    assert_eq!(statistics["pendingEvents"], 0);
    assert_eq!(statistics["successRate"], json!(57.14));
    assert_eq!(
        statistics["eventsByProvider"],
        json!({"stripe": 6, SECOND_PROVIDER: 1})
    );
    assert_eq!(
        statistics["eventsByType"],
        json!({"payment_intent.succeeded": 6, "customer.created": 1})
    );

    let listed = app.get_json("/api/webhooks/events?status=completed").await;
    let durations = durations(listed["events"].as_array().expect("events"));
    assert_eq!(durations.len(), 4);
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    assert_close(
        &statistics["averageProcessingTimeMs"],
        mean,
        "averageProcessingTimeMs",
    );
    // 95th percentile of four values, interpolated between the third and fourth.
    let p95 = durations[2] + (durations[3] - durations[2]) * 0.85;
    assert_close(
        &statistics["p95ProcessingTimeMs"],
        p95,
        "p95ProcessingTimeMs",
    );

    let second = app
        .get_json(&format!(
            "/api/webhooks/statistics?provider={}",
            encode(SECOND_PROVIDER)
        ))
        .await;
    assert_eq!(second["totalEvents"], 1);
    assert_eq!(second["successfulEvents"], 1);
    assert_eq!(second["successRate"], json!(100.0));
    assert_eq!(second["eventsByProvider"], json!({SECOND_PROVIDER: 1}));

    let by_type = app
        .get_json("/api/webhooks/statistics?eventType=customer.created")
        .await;
    assert_eq!(by_type["totalEvents"], 1);

    let none = app
        .get_json("/api/webhooks/statistics?provider=nobody")
        .await;
    assert_eq!(none["totalEvents"], 0);
    assert_eq!(none["successRate"], Value::Null);
    assert_eq!(none["averageProcessingTimeMs"], Value::Null);
    assert_eq!(none["eventsByProvider"], json!({}));
    app.stop().await;
}
