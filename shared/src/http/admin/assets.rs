//! Static files of the admin listener, compiled into the binary: the OpenAPI description
//! and the dashboard (HTML, script and style sheet, no build step).

use http::{Response, StatusCode, header};

use super::static_header;
use crate::http::error::Body;

/// The OpenAPI 3.1 description of both listeners, as checked in under `docs/`.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// Allows only the dashboard's own script, style sheet and API calls.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    static_header(&mut response, header::CONTENT_TYPE, content_type);
    static_header(&mut response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    static_header(&mut response, header::CACHE_CONTROL, "no-cache");
    response
}

pub fn openapi() -> Response<Body> {
    asset(OPENAPI_JSON, "application/json")
}

pub fn dashboard_page() -> Response<Body> {
    let mut response = asset(DASHBOARD_HTML, "text/html; charset=utf-8");
    static_header(
        &mut response,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    static_header(&mut response, header::X_FRAME_OPTIONS, "DENY");
    static_header(&mut response, header::REFERRER_POLICY, "no-referrer");
    response
}

pub fn dashboard_script() -> Response<Body> {
    asset(DASHBOARD_JS, "text/javascript; charset=utf-8")
}

pub fn dashboard_style() -> Response<Body> {
    asset(DASHBOARD_CSS, "text/css; charset=utf-8")
}
