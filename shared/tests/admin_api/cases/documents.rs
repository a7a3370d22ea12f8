//! The OpenAPI document, the dashboard files and the metrics page.

use payhook::http::admin::routes::ROUTES;
use serde_json::Value;

use crate::support::{HandlerMode, Options, customer_created, payment_succeeded, spawn_app};

pub async fn openapi_lists_every_route(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let response = app.request("GET", app.admin, "/openapi.json", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), "application/json");
    let document: Value = response.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths object");

    for route in ROUTES {
        let operation = &paths
            .get(route.path)
            .unwrap_or_else(|| panic!("{} is not documented", route.path))
            [route.method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{} {} is not documented",
            route.method,
            route.path
        );
    }
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    for (path, item) in paths {
        let listener = item["x-payhook-listener"].as_str().unwrap_or_default();
        assert!(
            listener == "admin" || listener == "public",
            "{path} names no listener"
        );
        for method in methods.iter().filter(|m| item.get(**m).is_some()) {
            if listener == "admin" {
                assert!(
                    ROUTES.iter().any(
                        |route| route.path == path && route.method.eq_ignore_ascii_case(method)
                    ),
                    "{method} {path} is documented but not served"
                );
            }
            assert!(
                item[*method]["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    assert!(paths["/api/webhooks/{provider}"]["post"].is_object());
    app.stop().await;
}

pub async fn dashboard_assets_are_served(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let page = app.request("GET", app.admin, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert!(
        page.body
            .contains(r#"<script src="/dashboard.js" defer></script>"#)
    );
    let policy = page.header("content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");

    let script = app.request("GET", app.admin, "/dashboard.js", &[]).await;
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(script.body.contains("sessionStorage"));
    assert!(
        !script.body.contains("innerHTML"),
        "values are set as text only"
    );
    let style = app.request("GET", app.admin, "/dashboard.css", &[]).await;
    assert_eq!(style.status, 200);
    assert!(style.header("content-type").starts_with("text/css"));
    app.stop().await;
}

/// Returns the value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("numeric sample"))
}

pub async fn metrics_report_backlog_and_outcomes(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let done = app
        .post_event("stripe", &customer_created("evt_adm_metrics_1"))
        .await;
    app.wait_for_status(done, "completed").await;
    app.set_handler(HandlerMode::Fail);
    let failed = app
        .post_event(
            "stripe",
            &payment_succeeded("evt_adm_metrics_2", 100, "usd"),
        )
        .await;
    app.wait_for_status(failed, "failed").await;

    let metrics = app.request("GET", app.admin, "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").starts_with("text/plain"));
    let text = &metrics.body;
    let expectations = [
        ("payhook_backlog_events{status=\"completed\"}", 1.0),
        ("payhook_backlog_events{status=\"failed\"}", 1.0),
        ("payhook_backlog_events{status=\"pending\"}", 0.0),
        ("payhook_backlog_events{status=\"dead\"}", 0.0),
        ("payhook_backlog_events{status=\"processing\"}", 0.0),
        ("payhook_dependency_up{dependency=\"database\"}", 1.0),
        (
            "payhook_webhook_requests_total{provider=\"stripe\",outcome=\"accepted\"}",
            2.0,
        ),
        ("payhook_retries_total{provider=\"stripe\"}", 1.0),
        (
            "payhook_processed_total{provider=\"stripe\",result=\"failed\"}",
            1.0,
        ),
        (
            "payhook_processing_seconds_count{provider=\"stripe\",event_type=\"customer.created\"}",
            1.0,
        ),
        ("payhook_ingest_seconds_count{provider=\"stripe\"}", 2.0),
        (
            "payhook_verification_seconds_count{provider=\"stripe\"}",
            2.0,
        ),
    ];
    for (series, expected) in expectations {
        assert_eq!(sample(text, series), Some(expected), "{series}\n{text}");
    }
    for family in [
        "payhook_publish_failures_total",
        "payhook_dead_lettered_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} counter")),
            "{family}"
        );
    }

    // A scrape within the cache period reuses the last backlog counts.
    app.set_handler(HandlerMode::Normal);
    let newer = app
        .post_event("stripe", &customer_created("evt_adm_metrics_3"))
        .await;
    app.wait_for_status(newer, "completed").await;
    let cached = app.request("GET", app.admin, "/metrics", &[]).await.body;
    assert_eq!(
        sample(&cached, "payhook_backlog_events{status=\"completed\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &cached,
            "payhook_webhook_requests_total{provider=\"stripe\",outcome=\"accepted\"}"
        ),
        Some(3.0),
        "counters are not cached"
    );
    app.stop().await;
}
