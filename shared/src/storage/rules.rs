//! Backend-independent rules: the claim decision, the clock and the duration percentile.

use chrono::{DateTime, SubsecRound, Utc};

use crate::model::{EventStatus, NewPaymentEvent};
use crate::money::{Currency, Money};
use crate::storage::{Attempt, ClaimOutcome, StoreError};

/// Returns the current time cut to whole microseconds, the precision every backend stores.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Returns `now + lease`, or `Invalid` when the lease does not fit a timestamp.
pub fn lease_end(
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> Result<DateTime<Utc>, StoreError> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .map(|end| end.trunc_subsecs(6))
        .ok_or_else(|| StoreError::Invalid(format!("lease of {lease:?} is too long")))
}

/// Returns `now - span`, truncated to microseconds like every stored time.
pub fn before(now: DateTime<Utc>, span: std::time::Duration) -> Result<DateTime<Utc>, StoreError> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .map(|start| start.trunc_subsecs(6))
        .ok_or_else(|| StoreError::Invalid(format!("interval of {span:?} is too long")))
}

/// Decides whether a row in this state may be claimed at `now`.
///
/// Returns `None` when the claim may proceed, otherwise the outcome to report.
pub fn claim_refusal(
    status: EventStatus,
    locked_until: Option<DateTime<Utc>>,
    next_retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    respect_retry_time: bool,
) -> Option<ClaimOutcome> {
    match status {
        EventStatus::Pending => None,
        EventStatus::Completed => Some(ClaimOutcome::AlreadyCompleted),
        EventStatus::Dead => Some(ClaimOutcome::Dead),
        EventStatus::Processing => match locked_until {
            Some(until) if until > now => Some(ClaimOutcome::Locked),
            _ => None,
        },
        EventStatus::Failed => match next_retry_at {
            Some(at) if respect_retry_time && at > now => Some(ClaimOutcome::NotDue(at)),
            _ => None,
        },
    }
}

/// Checks that a row is still in the state a processing result was made for, as
/// [`Attempt`] describes. Returns `Conflict` naming what was expected otherwise.
pub fn check_attempt(
    id: i64,
    status: EventStatus,
    attempt_count: i32,
    attempt: Attempt,
) -> Result<(), StoreError> {
    let (expected_status, expected_count) = match attempt {
        Attempt::Claimed(count) => (EventStatus::Processing, count),
        Attempt::Unclaimed(count) => (EventStatus::Pending, count),
    };
    if status != expected_status {
        return Err(StoreError::Conflict {
            id,
            status,
            expected: match attempt {
                Attempt::Claimed(_) => "processing",
                Attempt::Unclaimed(_) => "pending",
            },
        });
    }
    if attempt_count != expected_count {
        return Err(StoreError::Conflict {
            id,
            status,
            expected: match attempt {
                Attempt::Claimed(_) => {
                    "processing under the same claim (the lease expired and it was claimed again)"
                }
                Attempt::Unclaimed(_) => {
                    "pending at the same attempt (another worker processed it meanwhile)"
                }
            },
        });
    }
    Ok(())
}

/// Returns the `fraction` percentile of sorted values, interpolating linearly between the
/// two nearest ranks like PostgreSQL's `percentile_cont`.
pub fn percentile(sorted: &[f64], fraction: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = fraction * last as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let weight = position - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * weight)
}

/// Returns the mean of the values, or `None` when there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Statuses a requeue may reset: the filter's statuses limited to `failed` and `dead`.
pub fn requeue_statuses(filter: &[EventStatus]) -> Vec<EventStatus> {
    [EventStatus::Failed, EventStatus::Dead]
        .into_iter()
        .filter(|status| filter.is_empty() || filter.contains(status))
        .collect()
}

/// Rejects a page number below 1 or a page size outside 1..=1000.
pub fn check_page(page: i64, page_size: i64) -> Result<i64, StoreError> {
    if page < 1 {
        return Err(StoreError::Invalid(format!(
            "page is {page}; pages start at 1"
        )));
    }
    if !(1..=1000).contains(&page_size) {
        return Err(StoreError::Invalid(format!(
            "page size is {page_size}; it must be between 1 and 1000"
        )));
    }
    (page - 1)
        .checked_mul(page_size)
        .ok_or_else(|| StoreError::Invalid(format!("page {page} is out of range")))
}

/// Rebuilds an amount from its stored minor units, currency and exponent columns.
pub fn money_from_parts(
    minor: Option<i64>,
    currency: Option<String>,
    exponent: Option<i64>,
) -> Result<Option<Money>, String> {
    match (minor, currency, exponent) {
        (None, None, None) => Ok(None),
        (Some(minor), Some(currency), Some(exponent)) => {
            let currency = Currency::parse(&currency).map_err(|error| error.to_string())?;
            let exponent = u32::try_from(exponent)
                .map_err(|_| format!("stored amount exponent {exponent} is negative"))?;
            Ok(Some(Money {
                minor,
                currency,
                exponent,
            }))
        }
        _ => Err(
            "stored amount is incomplete: minor units, currency and exponent \
                  must all be set or all be null"
                .to_string(),
        ),
    }
}

/// Selects the payment events of a completion that are not stored for the event yet.
///
/// A new payment event identical in every stored field to one in `stored` is skipped, so a
/// replay whose handler output is unchanged writes no rows, while changed output is
/// appended beside the old rows. Each stored row matches at most one new row: a handler
/// that emits the same row twice gets two rows on the first run and none on a replay.
pub fn payments_to_insert(
    mut stored: Vec<NewPaymentEvent>,
    new: &[NewPaymentEvent],
) -> Vec<&NewPaymentEvent> {
    let mut inserted = Vec::with_capacity(new.len());
    for payment in new {
        let candidate = NewPaymentEvent {
            provider_created_at: payment.provider_created_at.map(|at| at.trunc_subsecs(6)),
            ..payment.clone()
        };
        match stored.iter().position(|row| *row == candidate) {
            Some(index) => {
                stored.swap_remove(index);
            }
            None => inserted.push(payment),
        }
    }
    inserted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_fence_accepts_only_the_state_it_names() {
        use EventStatus::*;
        assert!(check_attempt(1, Processing, 2, Attempt::Claimed(2)).is_ok());
        assert!(check_attempt(1, Pending, 0, Attempt::Unclaimed(0)).is_ok());
        for (status, count, attempt) in [
            (Processing, 3, Attempt::Claimed(2)),
            (Pending, 2, Attempt::Claimed(2)),
            (Completed, 2, Attempt::Claimed(2)),
            (Pending, 1, Attempt::Unclaimed(0)),
            (Processing, 0, Attempt::Unclaimed(0)),
            (Completed, 1, Attempt::Unclaimed(0)),
            (Failed, 0, Attempt::Unclaimed(0)),
        ] {
            let result = check_attempt(7, status, count, attempt);
            assert!(
                matches!(result, Err(StoreError::Conflict { id: 7, .. })),
                "{status:?} at {count} accepted {attempt:?}: {result:?}"
            );
        }
        assert_eq!(Attempt::Claimed(2).number(), 2);
        assert_eq!(Attempt::Unclaimed(0).number(), 1);
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let values = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&values, 0.95), Some(48.0));
        assert_eq!(percentile(&values, 0.5), Some(30.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.95), None);
    }

    fn sample_payment(payment_id: &str) -> NewPaymentEvent {
        NewPaymentEvent {
            payment_id: payment_id.to_string(),
            event_type: "charge.refunded".to_string(),
            status: "refunded".to_string(),
            status_raw: None,
            amount: None,
            customer_id: None,
            order_id: None,
            transaction_id: None,
            metadata: None,
            provider_created_at: None,
        }
    }

    #[test]
    fn stored_payments_excuse_one_row_each() {
        let first = sample_payment("pi_rules_1");
        let second = sample_payment("pi_rules_2");
        let new = [first.clone(), first.clone(), second.clone()];

        let on_first_run = payments_to_insert(Vec::new(), &new);
        let on_replay =
            payments_to_insert(vec![first.clone(), first.clone(), second.clone()], &new);
        let after_one_stored = payments_to_insert(vec![first.clone()], &new);

        assert_eq!(on_first_run.len(), 3);
        assert!(on_replay.is_empty());
        assert_eq!(after_one_stored, [&first, &second]);
    }

    #[test]
    fn changed_field_makes_payment_new() {
        let stored = sample_payment("pi_rules_3");
        let mut changed = stored.clone();
        changed.status_raw = Some("refunded".to_string());

        let inserted = payments_to_insert(vec![stored], std::slice::from_ref(&changed));

        assert_eq!(inserted, [&changed]);
    }

    #[test]
    fn failed_row_before_retry_time_is_not_due() {
        let now = now();
        let later = now + chrono::Duration::seconds(5);
        let outcome = claim_refusal(EventStatus::Failed, None, Some(later), now, true);
        assert!(matches!(outcome, Some(ClaimOutcome::NotDue(at)) if at == later));
        let forced = claim_refusal(EventStatus::Failed, None, Some(later), now, false);
        assert!(forced.is_none());
    }
}
