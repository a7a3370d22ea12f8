//! The contract cases, each an async function of a fresh [`Context`].

mod claim;
mod insert;
mod processing;
mod queries;
mod replay;
mod republish;
mod unclaimed;
mod values;

use std::future::Future;
use std::pin::Pin;

use crate::support::Context;

pub type Case = fn(Context) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($module:ident::$name:ident),* $(,)?) => {
        &[$((stringify!($name), |context| Box::pin($module::$name(context))),)*]
    };
}

pub const ALL: &[(&str, Case)] = cases![
    insert::migrate_twice_is_noop,
    insert::insert_then_duplicate,
    insert::concurrent_inserts_one_winner,
    insert::concurrent_distinct_inserts_keep_ids,
    insert::identity_fields_too_long_rejected,
    insert::diagnostic_fields_truncated,
    claim::claim_outcomes_by_state,
    claim::expired_lease_is_reclaimed,
    claim::concurrent_claim_due_no_overlap,
    claim::claim_due_skips_not_due_rows,
    processing::complete_writes_payments_and_logs,
    processing::complete_failure_writes_nothing,
    processing::fail_schedules_retry_then_dead,
    processing::requeue_resets_failed_and_dead,
    processing::replay_resets_one_event,
    queries::list_filters_and_pages,
    queries::statistics_count_and_durations,
    queries::unpublished_until_marked,
    replay::replay_keeps_identical_payment_rows,
    replay::replay_appends_changed_payment_rows,
    republish::stale_claim_cannot_complete,
    republish::republish_picks_unpublished_and_stale,
    republish::republish_skips_leased_and_future_retries,
    unclaimed::load_reads_without_changing,
    unclaimed::unclaimed_completion_writes_once,
    unclaimed::unclaimed_write_rejected_after_claim,
    unclaimed::unclaimed_failure_counts_the_attempt,
    unclaimed::concurrent_completions_keep_their_own_outcomes,
    values::large_unicode_body_round_trips,
    values::amounts_stay_exact,
    values::timestamps_round_trip_microseconds,
];
