//! The cases, each an async function of a fresh database URL.

mod auth;
mod documents;
mod listing;
mod operations;
mod parameters;
mod statistics;

use std::future::Future;
use std::pin::Pin;

pub type Case = fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($module:ident::$name:ident),* $(,)?) => {
        &[$((stringify!($name), |url| Box::pin($module::$name(url))),)*]
    };
}

pub const ALL: &[(&str, Case)] = cases![
    auth::api_routes_require_token,
    auth::open_routes_need_no_token,
    auth::wrong_method_gets_allow_header,
    parameters::invalid_parameters_named_in_400,
    listing::paging_math_and_size_cap,
    listing::date_bounds_are_inclusive,
    listing::filters_select_matching_events,
    listing::payload_only_on_request,
    statistics::statistics_match_known_events,
    operations::dead_event_retried_completes,
    operations::retry_honours_limit_and_filters,
    operations::replay_keeps_or_appends_payments,
    operations::replay_rejects_missing_and_processing,
    documents::openapi_lists_every_route,
    documents::dashboard_assets_are_served,
    documents::metrics_report_backlog_and_outcomes,
];
