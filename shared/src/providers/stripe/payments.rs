//! PaymentIntents, charges, disputes and refunds.

use super::extract::{EventContext, StripeObject, expandable_id};
use crate::model::NewPaymentEvent;
use crate::providers::ExtractError;
use crate::providers::metadata::Metadata;

/// `payment_intent.*`: the payment itself, keyed by its `pi_` id.
pub(super) fn payment_intent(
    context: &EventContext<'_>,
) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let (status, amount_key) = match context.action() {
        "succeeded" => ("succeeded", "amount_received"),
        "payment_failed" => ("failed", "amount"),
        "canceled" => ("canceled", "amount"),
        "processing" => ("pending", "amount"),
        "requires_action" => ("requires_action", "amount"),
        "amount_capturable_updated" => ("authorized", "amount_capturable"),
        "partially_funded" => ("partially_funded", "amount"),
        _ => ("created", "amount"),
    };
    // Payloads older than `amount_received` carry only the requested amount.
    let amount_key = if object.get(&[amount_key]).is_some() {
        amount_key
    } else {
        "amount"
    };

    let mut payment = context.payment(object.own_id()?, status);
    payment.amount = Some(object.money(amount_key)?);
    payment.transaction_id = latest_charge(object);

    let mut metadata = Metadata::new();
    metadata
        .text(
            "failure_code",
            object.text_at(&["last_payment_error", "code"]),
        )
        .text(
            "decline_code",
            object.text_at(&["last_payment_error", "decline_code"]),
        )
        .text(
            "failure_type",
            object.text_at(&["last_payment_error", "type"]),
        )
        .text("cancellation_reason", object.text("cancellation_reason"))
        .text("capture_method", object.text("capture_method"));
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// Returns the charge of a PaymentIntent: `latest_charge` since 2022-11-15, the newest entry
/// of the embedded `charges` list before, else the charge of the last error.
fn latest_charge(object: StripeObject<'_>) -> Option<String> {
    if let Some(id) = object.id("latest_charge") {
        return Some(id);
    }
    let newest = object
        .get(&["charges", "data"])
        .and_then(|list| list.as_array())
        .and_then(|charges| charges.first())
        .and_then(expandable_id);
    newest.or_else(|| {
        object
            .get(&["last_payment_error", "charge"])
            .and_then(expandable_id)
    })
}

/// `charge.*` (without disputes): keyed by the charge's PaymentIntent, or by the charge
/// itself when it was created without one.
pub(super) fn charge(context: &EventContext<'_>) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let charge_id = object.own_id()?;
    let captured = object.get(&["captured"]).and_then(|v| v.as_bool());
    let raw_status = object.text("status");

    let (status, amount_key) = match context.action() {
        "succeeded" if captured == Some(false) => ("authorized", "amount"),
        "succeeded" | "captured" => ("succeeded", "amount"),
        "failed" => ("failed", "amount"),
        "pending" => ("pending", "amount"),
        "expired" => ("expired", "amount"),
        // A charge keeps `status: succeeded` after refunds, so `refunded` tells a full
        // refund from a partial one.
        "refunded" => match object.get(&["refunded"]).and_then(|v| v.as_bool()) {
            Some(false) => ("partially_refunded", "amount_refunded"),
            _ => ("refunded", "amount_refunded"),
        },
        _ => match raw_status {
            Some("failed") => ("failed", "amount"),
            Some("pending") => ("pending", "amount"),
            _ => ("succeeded", "amount"),
        },
    };
    let amount_key = if context.action() == "captured" && object.get(&["amount_captured"]).is_some()
    {
        "amount_captured"
    } else {
        amount_key
    };

    let payment_id = object
        .id("payment_intent")
        .unwrap_or_else(|| charge_id.clone());
    let mut payment = context.payment(payment_id, status);
    payment.amount = Some(object.money(amount_key)?);
    payment.transaction_id = Some(charge_id);

    let mut metadata = Metadata::new();
    if amount_key != "amount" {
        let charged = object.money("amount")?;
        metadata.text("charge_amount", Some(&charged.to_decimal_string()));
    }
    metadata
        .text("failure_code", object.text("failure_code"))
        .text("outcome_reason", object.text_at(&["outcome", "reason"]))
        .text("outcome_type", object.text_at(&["outcome", "type"]))
        .value("refunded", object.get(&["refunded"]))
        .value("disputed", object.get(&["disputed"]));
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// `charge.dispute.*`: the disputed amount, keyed by the disputed payment.
pub(super) fn dispute(context: &EventContext<'_>) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let dispute_id = object.own_id()?;
    let status = match context.action() {
        "closed" => match object.text("status") {
            Some("won") => "dispute_won",
            Some("lost") => "dispute_lost",
            _ => "dispute_closed",
        },
        "funds_reinstated" => "funds_reinstated",
        _ => "disputed",
    };
    let charge_id = object.id("charge");
    let payment_id = object
        .id("payment_intent")
        .or_else(|| charge_id.clone())
        .unwrap_or_else(|| dispute_id.clone());

    let mut payment = context.payment(payment_id, status);
    payment.amount = Some(object.money("amount")?);
    payment.transaction_id = Some(dispute_id);

    let mut metadata = Metadata::new();
    metadata
        .text("charge_id", charge_id.as_deref())
        .text("reason", object.text("reason"))
        .value(
            "evidence_due_by",
            object.get(&["evidence_details", "due_by"]),
        );
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// `refund.*` and `charge.refund.updated`: the refunded amount, keyed by the refunded
/// payment.
pub(super) fn refund(context: &EventContext<'_>) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let refund_id = object.own_id()?;
    let status = if context.event_type == "refund.failed" {
        "refund_failed"
    } else {
        match object.text("status") {
            Some("succeeded") => "refunded",
            Some("failed") => "refund_failed",
            Some("canceled") => "refund_canceled",
            _ => "refund_pending",
        }
    };
    let charge_id = object.id("charge");
    let payment_id = object
        .id("payment_intent")
        .or_else(|| charge_id.clone())
        .unwrap_or_else(|| refund_id.clone());

    let mut payment = context.payment(payment_id, status);
    payment.amount = Some(object.money("amount")?);
    payment.transaction_id = Some(refund_id);

    let mut metadata = Metadata::new();
    metadata
        .text("charge_id", charge_id.as_deref())
        .text("reason", object.text("reason"))
        .text("failure_reason", object.text("failure_reason"));
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}
