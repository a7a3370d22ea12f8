//! Bearer-token checks and method handling of the admin listener.

use payhook::http::admin::routes::{Access, ROUTES};

use crate::support::{ADMIN_TOKEN, HandlerMode, Options, payment_succeeded, spawn_app};

pub async fn api_routes_require_token(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    app.set_handler(HandlerMode::Fail);
    let failed = app
        .post_event("stripe", &payment_succeeded("evt_adm_auth_1", 500, "usd"))
        .await;
    app.wait_for_status(failed, "failed").await;

    let wrong_same_length = "x".repeat(ADMIN_TOKEN.len());
    let attempts = [
        vec![],
        vec![("authorization", "Bearer wrong".to_string())],
        vec![("authorization", format!("Bearer {wrong_same_length}"))],
        vec![("authorization", format!("Basic {ADMIN_TOKEN}"))],
        vec![("authorization", ADMIN_TOKEN.to_string())],
    ];
    let token_routes = ROUTES.iter().filter(|route| route.access == Access::Token);
    for route in token_routes {
        let path = route.path.replace("{id}", &failed.to_string());
        for headers in &attempts {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let response = app.request(route.method, app.admin, &path, &headers).await;
            assert_eq!(response.status, 401, "{} {path} {headers:?}", route.method);
            assert_eq!(response.json()["code"], "unauthorized");
            assert_eq!(response.header("www-authenticate"), "Bearer");
        }
    }
    let unknown = app
        .request("GET", app.admin, "/api/webhooks/secret-route", &[])
        .await;
    assert_eq!(unknown.status, 401, "unknown API paths are hidden too");

    // The rejected retry and replay calls changed nothing.
    let detail = app
        .get_json(&format!("/api/webhooks/events/{failed}"))
        .await;
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["attemptCount"], 1);

    let scheme_case = app
        .request(
            "GET",
            app.admin,
            "/api/webhooks/statistics",
            &[("authorization", &format!("bearer {ADMIN_TOKEN}"))],
        )
        .await;
    assert_eq!(
        scheme_case.status, 200,
        "the scheme name is case-insensitive"
    );
    let unknown_with_token = app.admin("GET", "/api/webhooks/secret-route").await;
    assert_eq!(unknown_with_token.status, 404);
    app.stop().await;
}

pub async fn open_routes_need_no_token(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    for route in ROUTES.iter().filter(|route| route.access == Access::Open) {
        let response = app.request(route.method, app.admin, route.path, &[]).await;
        assert_eq!(response.status, 200, "{} {}", route.method, route.path);
    }
    let ready = app.request("GET", app.admin, "/health/ready", &[]).await;
    assert_eq!(ready.json()["database"], "up");
    app.stop().await;
}

pub async fn wrong_method_gets_allow_header(url: String) {
    let app = spawn_app(&url, Options::default()).await;
    let cases = [
        ("DELETE", "/api/webhooks/events/1", "GET"),
        ("POST", "/api/webhooks/events/1", "GET"),
        ("GET", "/api/webhooks/retry", "POST"),
        ("GET", "/api/webhooks/events/1/replay", "POST"),
        ("PUT", "/api/webhooks/statistics", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/", "GET"),
    ];
    for (method, path, allow) in cases {
        let response = app.admin(method, path).await;
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.header("allow"), allow, "{method} {path}");
        assert_eq!(response.json()["code"], "method_not_allowed");
    }
    app.stop().await;
}
