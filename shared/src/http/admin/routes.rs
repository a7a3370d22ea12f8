//! The admin listener's routes in one table. The router, the `Allow` header of 405
//! responses and the OpenAPI test all read this table, so they cannot drift apart.

/// The operation a route runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    HealthLive,
    HealthReady,
    Metrics,
    OpenApi,
    Dashboard,
    DashboardScript,
    DashboardStyle,
    Statistics,
    ListEvents,
    EventDetail,
    ReplayEvent,
    RetryFailed,
}

/// Whether a route needs the bearer token (when one is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes, metrics and static files that carry no event data.
    Open,
    Token,
}

/// One method and path template served by the admin listener.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Path in OpenAPI template form: `{id}` matches one segment of digits.
    pub path: &'static str,
    pub endpoint: Endpoint,
    pub access: Access,
}

const fn route(
    method: &'static str,
    path: &'static str,
    endpoint: Endpoint,
    access: Access,
) -> Route {
    Route {
        method,
        path,
        endpoint,
        access,
    }
}

/// Every route of the admin listener.
pub const ROUTES: &[Route] = &[
    route("GET", "/health/live", Endpoint::HealthLive, Access::Open),
    route("GET", "/health/ready", Endpoint::HealthReady, Access::Open),
    route("GET", "/metrics", Endpoint::Metrics, Access::Open),
    route("GET", "/openapi.json", Endpoint::OpenApi, Access::Open),
    route("GET", "/", Endpoint::Dashboard, Access::Open),
    route(
        "GET",
        "/dashboard.js",
        Endpoint::DashboardScript,
        Access::Open,
    ),
    route(
        "GET",
        "/dashboard.css",
        Endpoint::DashboardStyle,
        Access::Open,
    ),
    route(
        "GET",
        "/api/webhooks/statistics",
        Endpoint::Statistics,
        Access::Token,
    ),
    route(
        "GET",
        "/api/webhooks/events",
        Endpoint::ListEvents,
        Access::Token,
    ),
    route(
        "GET",
        "/api/webhooks/events/{id}",
        Endpoint::EventDetail,
        Access::Token,
    ),
    route(
        "POST",
        "/api/webhooks/events/{id}/replay",
        Endpoint::ReplayEvent,
        Access::Token,
    ),
    route(
        "POST",
        "/api/webhooks/retry",
        Endpoint::RetryFailed,
        Access::Token,
    ),
];

/// Result of matching a request against [`ROUTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// The route and the `{id}` path value, when its template has one.
    Found {
        endpoint: Endpoint,
        access: Access,
        id: Option<String>,
    },
    /// The path exists but not with this method; the value lists the allowed methods.
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Finds the route for a method and path.
pub fn find(method: &str, path: &str) -> RouteMatch {
    let mut allowed: Vec<&str> = Vec::new();
    for route in ROUTES {
        let Some(id) = match_template(route.path, path) else {
            continue;
        };
        if route.method == method {
            return RouteMatch::Found {
                endpoint: route.endpoint,
                access: route.access,
                id,
            };
        }
        if !allowed.contains(&route.method) {
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        RouteMatch::NotFound
    } else {
        RouteMatch::MethodNotAllowed {
            allow: allowed.join(", "),
        }
    }
}

/// Matches `path` against a template. Returns `None` when it does not match, otherwise the
/// value of the template's `{id}` segment, if it has one. `{id}` matches any non-empty
/// segment so that `/events/abc` reaches the handler and gets a 400 naming `id`.
fn match_template(template: &str, path: &str) -> Option<Option<String>> {
    let mut id = None;
    let mut template_segments = template.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) if !segment.is_empty() => {
                id = Some(segment.to_string());
            }
            (Some(expected), Some(segment)) if expected == segment => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_captures_id_segment() {
        let found = find("POST", "/api/webhooks/events/42/replay");
        assert_eq!(
            found,
            RouteMatch::Found {
                endpoint: Endpoint::ReplayEvent,
                access: Access::Token,
                id: Some("42".to_string()),
            }
        );
    }

    #[test]
    fn wrong_method_lists_allowed_methods() {
        assert_eq!(
            find("DELETE", "/api/webhooks/events/7"),
            RouteMatch::MethodNotAllowed {
                allow: "GET".to_string()
            }
        );
        assert_eq!(
            find("GET", "/api/webhooks/retry"),
            RouteMatch::MethodNotAllowed {
                allow: "POST".to_string()
            }
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/api/webhooks/events/7/other",
            "/api/webhooks/events/",
            "/api/webhooks",
            "/health",
            "/metrics/",
        ] {
            assert_eq!(find("GET", path), RouteMatch::NotFound, "{path}");
        }
    }

    #[test]
    fn every_route_matches_its_own_template() {
        for route in ROUTES {
            let concrete = route.path.replace("{id}", "1");
            match find(route.method, &concrete) {
                RouteMatch::Found { endpoint, .. } => assert_eq!(endpoint, route.endpoint),
                other => panic!("{} {} matched {other:?}", route.method, route.path),
            }
        }
    }
}
