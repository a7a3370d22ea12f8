//! Every invalid query parameter gets 400 `invalid_parameter` naming the parameter.

use crate::support::{Options, spawn_app};

pub async fn invalid_parameters_named_in_400(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let cases = [
        ("GET", "/api/webhooks/events?status=finished", "status"),
        (
            "GET",
            "/api/webhooks/events?status=failed,unknown",
            "status",
        ),
        (
            "GET",
            "/api/webhooks/events?fromDate=2024-02-30",
            "fromDate",
        ),
        (
            "GET",
            "/api/webhooks/events?fromDate=31.01.2024",
            "fromDate",
        ),
        ("GET", "/api/webhooks/events?toDate=tomorrow", "toDate"),
        (
            "GET",
            "/api/webhooks/events?toDate=2024-01-31T25:00:00Z",
            "toDate",
        ),
        (
            "GET",
            "/api/webhooks/events?fromDate=2024-02-01&toDate=2024-01-31",
            "toDate",
        ),
        ("GET", "/api/webhooks/events?page=0", "page"),
        ("GET", "/api/webhooks/events?page=-3", "page"),
        ("GET", "/api/webhooks/events?page=two", "page"),
        ("GET", "/api/webhooks/events?page=1.5", "page"),
        (
            "GET",
            "/api/webhooks/events?page=9223372036854775807&pageSize=200",
            "page",
        ),
        (
            "GET",
            "/api/webhooks/events?page=99999999999999999999",
            "page",
        ),
        ("GET", "/api/webhooks/events?pageSize=0", "pageSize"),
        ("GET", "/api/webhooks/events?pageSize=ten", "pageSize"),
        ("GET", "/api/webhooks/events?page=1&page=2", "page"),
        ("GET", "/api/webhooks/events?sort=newest", "sort"),
        ("GET", "/api/webhooks/statistics?status=failed", "status"),
        (
            "GET",
            "/api/webhooks/statistics?fromDate=2024-1-1x",
            "fromDate",
        ),
        ("GET", "/api/webhooks/statistics?page=1", "page"),
        ("GET", "/api/webhooks/events/abc", "id"),
        ("GET", "/api/webhooks/events/0", "id"),
        ("GET", "/api/webhooks/events/1?include=logs", "include"),
        ("GET", "/api/webhooks/events/1?expand=payload", "expand"),
        ("POST", "/api/webhooks/events/abc/replay", "id"),
        ("POST", "/api/webhooks/events/1/replay?force=true", "force"),
        ("POST", "/api/webhooks/retry?maxRetries=-1", "maxRetries"),
        ("POST", "/api/webhooks/retry?maxRetries=ten", "maxRetries"),
        ("POST", "/api/webhooks/retry?status=dead", "status"),
        ("POST", "/api/webhooks/retry?toDate=x", "toDate"),
    ];
    for (method, path, parameter) in cases {
        let response = app.admin(method, path).await;
        assert_eq!(response.status, 400, "{method} {path}: {}", response.body);
        let body = response.json();
        assert_eq!(body["code"], "invalid_parameter", "{method} {path}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{parameter}:")),
            "{method} {path}: detail {detail:?} does not name {parameter}"
        );
    }
    app.stop().await;
}
