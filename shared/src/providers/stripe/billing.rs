//! Checkout Sessions, invoices and subscriptions.

use serde_json::Value;

use super::extract::{EventContext, StripeObject};
use crate::model::NewPaymentEvent;
use crate::money::Money;
use crate::providers::ExtractError;
use crate::providers::metadata::Metadata;

/// `checkout.session.*`: keyed by the session's PaymentIntent, else its invoice or
/// subscription, else the session itself.
pub(super) fn checkout_session(
    context: &EventContext<'_>,
) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let session_id = object.own_id()?;
    let payment_status = object.text("payment_status");
    let status = match context.action() {
        "async_payment_succeeded" => "succeeded",
        "async_payment_failed" => "failed",
        "expired" => "expired",
        // A completed session with an asynchronous payment method is still unpaid.
        _ => match payment_status {
            Some("paid") | Some("no_payment_required") => "succeeded",
            _ => "pending",
        },
    };
    let payment_id = object
        .id("payment_intent")
        .or_else(|| object.id("invoice"))
        .or_else(|| object.id("subscription"))
        .unwrap_or_else(|| session_id.clone());

    let mut payment = context.payment(payment_id, status);
    payment.amount = Some(object.money("amount_total")?);
    payment.order_id = payment
        .order_id
        .or_else(|| object.text("client_reference_id").map(str::to_string));

    let mut metadata = Metadata::new();
    metadata
        .text("checkout_session_id", Some(&session_id))
        .text("payment_status", payment_status)
        .text("mode", object.text("mode"))
        .text("subscription_id", object.id("subscription").as_deref())
        .text("invoice_id", object.id("invoice").as_deref());
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// `invoice.paid`, `invoice.payment_succeeded` and `invoice.payment_failed`, keyed by the
/// invoice. A paid invoice of zero (a trial, a fully credited period) yields no row.
pub(super) fn invoice(context: &EventContext<'_>) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let failed = context.event_type == "invoice.payment_failed";
    let (status, amount_key) = if failed {
        ("failed", "amount_due")
    } else {
        ("succeeded", "amount_paid")
    };
    let amount = object.money(amount_key)?;
    if !failed && amount.minor == 0 {
        return Ok(None);
    }

    // Since 2025-03-31 the subscription sits under `parent.subscription_details`; before,
    // invoices carried `subscription` and `subscription_details` at the top level.
    let subscription_id = object
        .get(&["parent", "subscription_details", "subscription"])
        .and_then(super::extract::expandable_id)
        .or_else(|| object.id("subscription"));
    let subscription_order_id = object
        .text_at(&["parent", "subscription_details", "metadata", "order_id"])
        .or_else(|| object.text_at(&["subscription_details", "metadata", "order_id"]));

    let mut payment = context.payment(object.own_id()?, status);
    payment.amount = Some(amount);
    payment.order_id = payment
        .order_id
        .or_else(|| subscription_order_id.map(str::to_string));
    payment.transaction_id = object.id("charge");

    let mut metadata = Metadata::new();
    metadata
        .text("subscription_id", subscription_id.as_deref())
        .text("payment_intent_id", object.id("payment_intent").as_deref())
        .text("billing_reason", object.text("billing_reason"))
        .value("attempt_count", object.get(&["attempt_count"]))
        .value(
            "next_payment_attempt",
            object.get(&["next_payment_attempt"]),
        )
        .value("paid", object.get(&["paid"]));
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// `customer.subscription.*`: the recurring amount per billing interval, keyed by the
/// subscription. This is a price, not a money movement.
pub(super) fn subscription(
    context: &EventContext<'_>,
) -> Result<Option<NewPaymentEvent>, ExtractError> {
    let object = context.object;
    let status = match (context.action(), object.text("status")) {
        ("deleted", _) => "canceled",
        (_, Some("incomplete_expired")) => "expired",
        (_, Some(raw)) => raw,
        (_, None) => "updated",
    };
    let items: &[Value] = object
        .get(&["items", "data"])
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let first_item = items.first().map(StripeObject);

    let mut payment = context.payment(object.own_id()?, status);
    payment.amount = recurring_amount(object, items)?;

    let recurring = |key: &str| {
        first_item.and_then(|item| {
            item.get(&["price", "recurring", key])
                .or_else(|| item.get(&["plan", key]))
        })
    };
    let mut metadata = Metadata::new();
    metadata
        .value("interval", recurring("interval"))
        .value("interval_count", recurring("interval_count"))
        .text(
            "price_id",
            first_item.and_then(|item| item.text_at(&["price", "id"])),
        )
        .value(
            "quantity",
            first_item.and_then(|item| item.get(&["quantity"])),
        )
        .value(
            "current_period_end",
            first_item
                .and_then(|item| item.get(&["current_period_end"]))
                .or_else(|| object.get(&["current_period_end"])),
        )
        .value(
            "cancel_at_period_end",
            object.get(&["cancel_at_period_end"]),
        )
        .value("cancel_at", object.get(&["cancel_at"]))
        .value("trial_end", object.get(&["trial_end"]))
        .text("latest_invoice_id", object.id("latest_invoice").as_deref());
    payment.metadata = metadata.finish();
    Ok(Some(payment))
}

/// Sums `unit_amount × quantity` over the subscription items; `None` when an item has no
/// unit amount (tiered or metered prices) or there are no items.
fn recurring_amount(
    object: StripeObject<'_>,
    items: &[Value],
) -> Result<Option<Money>, ExtractError> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut total: i64 = 0;
    for (index, item) in items.iter().enumerate() {
        let item = StripeObject(item);
        let unit = item
            .get(&["price", "unit_amount"])
            .or_else(|| item.get(&["plan", "amount"]));
        let Some(unit) = unit else {
            return Ok(None);
        };
        let field = format!("data.object.items.data[{index}].price.unit_amount");
        let unit = unit.as_i64().ok_or_else(|| ExtractError::InvalidField {
            field: field.clone(),
            reason: format!("expected an integer number of minor units, got {unit}"),
        })?;
        let quantity = match item.get(&["quantity"]) {
            None => 1,
            Some(value) => value.as_i64().ok_or_else(|| ExtractError::InvalidField {
                field: format!("data.object.items.data[{index}].quantity"),
                reason: format!("expected an integer, got {value}"),
            })?,
        };
        total = unit
            .checked_mul(quantity)
            .and_then(|line| total.checked_add(line))
            .ok_or_else(|| ExtractError::InvalidField {
                field,
                reason: "the recurring amount does not fit in 64 bits".to_string(),
            })?;
    }
    let currency_source = if object.text("currency").is_some() {
        object
    } else {
        items.first().map(StripeObject).map_or(object, |item| {
            StripeObject(item.get(&["price"]).unwrap_or(item.0))
        })
    };
    currency_source.with_currency(total).map(Some)
}
