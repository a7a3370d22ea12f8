use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::money::MoneyError;

const CREATED: i64 = 1_767_300_000;

fn event(event_type: &str, object: Value) -> String {
    json!({
        "id": "evt_payhook_test_0001",
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": CREATED,
        "data": { "object": object },
        "type": event_type,
    })
    .to_string()
}

fn extract(event_type: &str, object: Value) -> Result<Extraction, ExtractError> {
    StripeHandler.extract(event_type, &event(event_type, object))
}

fn extract_one(event_type: &str, object: Value) -> NewPaymentEvent {
    match extract(event_type, object) {
        Ok(Extraction::Payments(mut rows)) if rows.len() == 1 => rows.remove(0),
        other => panic!("{event_type}: expected one payment, got {other:?}"),
    }
}

fn metadata(row: &NewPaymentEvent) -> Value {
    let text = row.metadata.as_deref().unwrap_or("{}");
    assert!(text.len() <= 4000, "metadata too long: {}", text.len());
    serde_json::from_str(text).expect("metadata is JSON")
}

/// Expected columns of one extracted payment.
struct Expected {
    payment_id: &'static str,
    transaction_id: Option<&'static str>,
    amount: &'static str,
    minor: i64,
    currency: &'static str,
    status: &'static str,
    status_raw: &'static str,
    customer_id: Option<&'static str>,
    order_id: Option<&'static str>,
}

fn payment_intent(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": 2500,
        "amount_capturable": 0,
        "amount_received": 2500,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "created": CREATED - 5,
        "currency": "usd",
        "customer": "cus_PayhookOwn01",
        "last_payment_error": null,
        "latest_charge": "ch_PayhookOwnCharge01",
        "metadata": { "order_id": "PH-2001" },
        "status": status,
    })
}

fn charge(id: &str) -> Value {
    json!({
        "id": id,
        "object": "charge",
        "amount": 8000,
        "amount_captured": 8000,
        "amount_refunded": 0,
        "captured": true,
        "currency": "gbp",
        "customer": "cus_PayhookOwn02",
        "disputed": false,
        "failure_code": null,
        "metadata": { "order_id": "PH-2002" },
        "outcome": { "reason": null, "type": "authorized" },
        "paid": true,
        "payment_intent": "pi_PayhookOwnIntent02",
        "refunded": false,
        "status": "succeeded",
    })
}

fn invoice_basil() -> Value {
    json!({
        "id": "in_PayhookOwnInvoice01",
        "object": "invoice",
        "amount_due": 2900,
        "amount_paid": 2900,
        "amount_remaining": 0,
        "attempt_count": 1,
        "billing_reason": "subscription_cycle",
        "currency": "eur",
        "customer": "cus_PayhookOwn03",
        "metadata": {},
        "parent": {
            "subscription_details": {
                "metadata": { "order_id": "PH-SUB-9" },
                "subscription": "sub_PayhookOwnSub01"
            },
            "type": "subscription_details"
        },
        "status": "paid",
    })
}

fn invoice_legacy() -> Value {
    json!({
        "id": "in_PayhookOwnInvoice02",
        "object": "invoice",
        "amount_due": 2900,
        "amount_paid": 0,
        "amount_remaining": 2900,
        "attempt_count": 2,
        "charge": "ch_PayhookOwnCharge09",
        "currency": "eur",
        "customer": "cus_PayhookOwn03",
        "metadata": {},
        "next_payment_attempt": 1_767_900_000,
        "paid": false,
        "payment_intent": "pi_PayhookOwnIntent09",
        "status": "open",
        "subscription": "sub_PayhookOwnSub01",
        "subscription_details": { "metadata": { "order_id": "PH-SUB-9" } },
    })
}

fn subscription() -> Value {
    json!({
        "id": "sub_PayhookOwnSub01",
        "object": "subscription",
        "cancel_at_period_end": false,
        "currency": "eur",
        "customer": "cus_PayhookOwn03",
        "items": {
            "object": "list",
            "data": [{
                "id": "si_PayhookOwnItem01",
                "object": "subscription_item",
                "current_period_end": 1_769_900_000,
                "price": {
                    "id": "price_PayhookOwn01",
                    "currency": "eur",
                    "recurring": { "interval": "month", "interval_count": 1 },
                    "unit_amount": 1450
                },
                "quantity": 2
            }]
        },
        "latest_invoice": "in_PayhookOwnInvoice01",
        "metadata": { "order_id": "PH-SUB-9" },
        "status": "active",
    })
}

fn extraction_cases() -> Vec<(&'static str, &'static str, Value, Expected)> {
    let mut failed_intent = payment_intent("pi_PayhookOwnIntent03", "requires_payment_method");
    failed_intent["amount_received"] = json!(0);
    failed_intent["last_payment_error"] = json!({
        "charge": "ch_PayhookOwnCharge03",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "type": "card_error"
    });
    failed_intent["latest_charge"] = json!("ch_PayhookOwnCharge03");

    let mut canceled_intent = payment_intent("pi_PayhookOwnIntent04", "canceled");
    canceled_intent["amount_received"] = json!(0);
    canceled_intent["latest_charge"] = Value::Null;
    canceled_intent["cancellation_reason"] = json!("abandoned");
    canceled_intent["currency"] = json!("eur");

    // Before 2022-11-15 a PaymentIntent embedded its charges instead of `latest_charge`.
    let mut legacy_intent = payment_intent("pi_PayhookOwnIntent05", "succeeded");
    legacy_intent
        .as_object_mut()
        .unwrap()
        .remove("latest_charge");
    legacy_intent["charges"] = json!({
        "object": "list",
        "data": [{ "id": "ch_PayhookOwnCharge05b", "object": "charge" },
                 { "id": "ch_PayhookOwnCharge05a", "object": "charge" }]
    });

    let mut kwd_intent = payment_intent("pi_PayhookOwnIntent06", "succeeded");
    kwd_intent["amount"] = json!(5120);
    kwd_intent["amount_received"] = json!(5120);
    kwd_intent["currency"] = json!("kwd");

    let mut jpy_intent = payment_intent("pi_PayhookOwnIntent07", "succeeded");
    jpy_intent["amount"] = json!(4800);
    jpy_intent["amount_received"] = json!(4800);
    jpy_intent["currency"] = json!("jpy");

    let mut refunded_charge = charge("ch_PayhookOwnCharge10");
    refunded_charge["amount_refunded"] = json!(8000);
    refunded_charge["refunded"] = json!(true);

    let mut partial_refund = charge("ch_PayhookOwnCharge11");
    partial_refund["amount_refunded"] = json!(3000);

    let mut charge_without_intent = charge("ch_PayhookOwnCharge12");
    charge_without_intent["payment_intent"] = Value::Null;
    charge_without_intent["customer"] =
        json!({ "id": "cus_PayhookExpanded", "object": "customer" });

    let dispute = json!({
        "id": "dp_PayhookOwnDispute01",
        "object": "dispute",
        "amount": 8000,
        "charge": "ch_PayhookOwnCharge10",
        "currency": "gbp",
        "evidence_details": { "due_by": 1_768_000_000 },
        "metadata": {},
        "payment_intent": "pi_PayhookOwnIntent02",
        "reason": "fraudulent",
        "status": "needs_response",
    });
    let mut lost_dispute = dispute.clone();
    lost_dispute["status"] = json!("lost");

    let session = json!({
        "id": "cs_test_PayhookOwnSession01",
        "object": "checkout.session",
        "amount_subtotal": 3300,
        "amount_total": 3300,
        "client_reference_id": "PH-3001",
        "currency": "eur",
        "customer": "cus_PayhookOwn04",
        "metadata": {},
        "mode": "payment",
        "payment_intent": "pi_PayhookOwnIntent08",
        "payment_status": "paid",
        "status": "complete",
    });
    let mut unpaid_session = session.clone();
    unpaid_session["payment_status"] = json!("unpaid");

    let refund = json!({
        "id": "re_PayhookOwnRefund01",
        "object": "refund",
        "amount": 1200,
        "charge": "ch_PayhookOwnCharge01",
        "currency": "usd",
        "metadata": { "order_id": "PH-2001" },
        "payment_intent": "pi_PayhookOwnIntent01",
        "reason": "requested_by_customer",
        "status": "succeeded",
    });
    let mut failed_refund = refund.clone();
    failed_refund["status"] = json!("failed");
    failed_refund["failure_reason"] = json!("expired_or_canceled_card");

    let mut deleted_subscription = subscription();
    deleted_subscription["status"] = json!("canceled");

    let expected =
        |payment_id, transaction_id, amount, minor, currency, status, status_raw| Expected {
            payment_id,
            transaction_id,
            amount,
            minor,
            currency,
            status,
            status_raw,
            customer_id: None,
            order_id: None,
        };
    let with = |mut e: Expected, customer: Option<&'static str>, order: Option<&'static str>| {
        e.customer_id = customer;
        e.order_id = order;
        e
    };

    vec![
        (
            "intent succeeded, current shape",
            "payment_intent.succeeded",
            payment_intent("pi_PayhookOwnIntent01", "succeeded"),
            with(
                expected(
                    "pi_PayhookOwnIntent01",
                    Some("ch_PayhookOwnCharge01"),
                    "25.00",
                    2500,
                    "USD",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "intent payment failed",
            "payment_intent.payment_failed",
            failed_intent,
            with(
                expected(
                    "pi_PayhookOwnIntent03",
                    Some("ch_PayhookOwnCharge03"),
                    "25.00",
                    2500,
                    "USD",
                    "failed",
                    "requires_payment_method",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "intent canceled without charge",
            "payment_intent.canceled",
            canceled_intent,
            with(
                expected(
                    "pi_PayhookOwnIntent04",
                    None,
                    "25.00",
                    2500,
                    "EUR",
                    "canceled",
                    "canceled",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "intent succeeded, charges list shape",
            "payment_intent.succeeded",
            legacy_intent,
            with(
                expected(
                    "pi_PayhookOwnIntent05",
                    Some("ch_PayhookOwnCharge05b"),
                    "25.00",
                    2500,
                    "USD",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "intent in three-decimal KWD",
            "payment_intent.succeeded",
            kwd_intent,
            with(
                expected(
                    "pi_PayhookOwnIntent06",
                    Some("ch_PayhookOwnCharge01"),
                    "5.120",
                    5120,
                    "KWD",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "intent in zero-decimal JPY",
            "payment_intent.succeeded",
            jpy_intent,
            with(
                expected(
                    "pi_PayhookOwnIntent07",
                    Some("ch_PayhookOwnCharge01"),
                    "4800",
                    4800,
                    "JPY",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn01"),
                Some("PH-2001"),
            ),
        ),
        (
            "charge succeeded",
            "charge.succeeded",
            charge("ch_PayhookOwnCharge02"),
            with(
                expected(
                    "pi_PayhookOwnIntent02",
                    Some("ch_PayhookOwnCharge02"),
                    "80.00",
                    8000,
                    "GBP",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn02"),
                Some("PH-2002"),
            ),
        ),
        (
            "charge fully refunded",
            "charge.refunded",
            refunded_charge,
            with(
                expected(
                    "pi_PayhookOwnIntent02",
                    Some("ch_PayhookOwnCharge10"),
                    "80.00",
                    8000,
                    "GBP",
                    "refunded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn02"),
                Some("PH-2002"),
            ),
        ),
        (
            "charge partially refunded",
            "charge.refunded",
            partial_refund,
            with(
                expected(
                    "pi_PayhookOwnIntent02",
                    Some("ch_PayhookOwnCharge11"),
                    "30.00",
                    3000,
                    "GBP",
                    "partially_refunded",
                    "succeeded",
                ),
                Some("cus_PayhookOwn02"),
                Some("PH-2002"),
            ),
        ),
        (
            "charge without PaymentIntent",
            "charge.succeeded",
            charge_without_intent,
            with(
                expected(
                    "ch_PayhookOwnCharge12",
                    Some("ch_PayhookOwnCharge12"),
                    "80.00",
                    8000,
                    "GBP",
                    "succeeded",
                    "succeeded",
                ),
                Some("cus_PayhookExpanded"),
                Some("PH-2002"),
            ),
        ),
        (
            "dispute created",
            "charge.dispute.created",
            dispute,
            expected(
                "pi_PayhookOwnIntent02",
                Some("dp_PayhookOwnDispute01"),
                "80.00",
                8000,
                "GBP",
                "disputed",
                "needs_response",
            ),
        ),
        (
            "dispute closed as lost",
            "charge.dispute.closed",
            lost_dispute,
            expected(
                "pi_PayhookOwnIntent02",
                Some("dp_PayhookOwnDispute01"),
                "80.00",
                8000,
                "GBP",
                "dispute_lost",
                "lost",
            ),
        ),
        (
            "checkout session paid",
            "checkout.session.completed",
            session,
            with(
                expected(
                    "pi_PayhookOwnIntent08",
                    None,
                    "33.00",
                    3300,
                    "EUR",
                    "succeeded",
                    "complete",
                ),
                Some("cus_PayhookOwn04"),
                Some("PH-3001"),
            ),
        ),
        (
            "checkout session awaiting payment",
            "checkout.session.completed",
            unpaid_session,
            with(
                expected(
                    "pi_PayhookOwnIntent08",
                    None,
                    "33.00",
                    3300,
                    "EUR",
                    "pending",
                    "complete",
                ),
                Some("cus_PayhookOwn04"),
                Some("PH-3001"),
            ),
        ),
        (
            "invoice paid, current shape",
            "invoice.paid",
            invoice_basil(),
            with(
                expected(
                    "in_PayhookOwnInvoice01",
                    None,
                    "29.00",
                    2900,
                    "EUR",
                    "succeeded",
                    "paid",
                ),
                Some("cus_PayhookOwn03"),
                Some("PH-SUB-9"),
            ),
        ),
        (
            "invoice payment failed, legacy shape",
            "invoice.payment_failed",
            invoice_legacy(),
            with(
                expected(
                    "in_PayhookOwnInvoice02",
                    Some("ch_PayhookOwnCharge09"),
                    "29.00",
                    2900,
                    "EUR",
                    "failed",
                    "open",
                ),
                Some("cus_PayhookOwn03"),
                Some("PH-SUB-9"),
            ),
        ),
        (
            "refund created",
            "refund.created",
            refund,
            with(
                expected(
                    "pi_PayhookOwnIntent01",
                    Some("re_PayhookOwnRefund01"),
                    "12.00",
                    1200,
                    "USD",
                    "refunded",
                    "succeeded",
                ),
                None,
                Some("PH-2001"),
            ),
        ),
        (
            "refund failed",
            "refund.failed",
            failed_refund,
            with(
                expected(
                    "pi_PayhookOwnIntent01",
                    Some("re_PayhookOwnRefund01"),
                    "12.00",
                    1200,
                    "USD",
                    "refund_failed",
                    "failed",
                ),
                None,
                Some("PH-2001"),
            ),
        ),
        (
            "subscription created",
            "customer.subscription.created",
            subscription(),
            with(
                expected(
                    "sub_PayhookOwnSub01",
                    None,
                    "29.00",
                    2900,
                    "EUR",
                    "active",
                    "active",
                ),
                Some("cus_PayhookOwn03"),
                Some("PH-SUB-9"),
            ),
        ),
        (
            "subscription deleted",
            "customer.subscription.deleted",
            deleted_subscription,
            with(
                expected(
                    "sub_PayhookOwnSub01",
                    None,
                    "29.00",
                    2900,
                    "EUR",
                    "canceled",
                    "canceled",
                ),
                Some("cus_PayhookOwn03"),
                Some("PH-SUB-9"),
            ),
        ),
    ]
}

#[test]
fn extraction_matches_expected_table() {
    let created = Utc.timestamp_opt(CREATED, 0).single();
    for (name, event_type, object, expected) in extraction_cases() {
        let row = extract_one(event_type, object);

        let amount = row.amount.expect(name);
        assert_eq!(row.payment_id, expected.payment_id, "{name}: payment_id");
        assert_eq!(
            row.transaction_id.as_deref(),
            expected.transaction_id,
            "{name}: transaction_id"
        );
        assert_eq!(
            amount.to_decimal_string(),
            expected.amount,
            "{name}: amount"
        );
        assert_eq!(amount.minor, expected.minor, "{name}: minor units");
        assert_eq!(
            amount.currency.as_str(),
            expected.currency,
            "{name}: currency"
        );
        assert_eq!(row.status, expected.status, "{name}: status");
        assert_eq!(
            row.status_raw.as_deref(),
            Some(expected.status_raw),
            "{name}: status_raw"
        );
        assert_eq!(
            row.customer_id.as_deref(),
            expected.customer_id,
            "{name}: customer_id"
        );
        assert_eq!(
            row.order_id.as_deref(),
            expected.order_id,
            "{name}: order_id"
        );
        assert_eq!(row.event_type, event_type, "{name}: event_type");
        assert_eq!(
            row.provider_created_at, created,
            "{name}: provider_created_at"
        );
        metadata(&row);
    }
}

#[test]
fn failed_intent_metadata_has_codes() {
    let mut object = payment_intent("pi_PayhookOwnIntent03", "requires_payment_method");
    object["last_payment_error"] =
        json!({ "code": "card_declined", "decline_code": "stolen_card" });

    let row = extract_one("payment_intent.payment_failed", object);

    let facts = metadata(&row);
    assert_eq!(facts["failure_code"], "card_declined");
    assert_eq!(facts["decline_code"], "stolen_card");
}

#[test]
fn refunded_charge_metadata_keeps_charge_amount() {
    let mut object = charge("ch_PayhookOwnCharge11");
    object["amount_refunded"] = json!(3000);

    let row = extract_one("charge.refunded", object);

    assert_eq!(metadata(&row)["charge_amount"], "80.00");
}

#[test]
fn invoice_metadata_has_subscription_both_shapes() {
    let current = extract_one("invoice.paid", invoice_basil());
    let legacy = extract_one("invoice.payment_failed", invoice_legacy());

    assert_eq!(metadata(&current)["subscription_id"], "sub_PayhookOwnSub01");
    assert_eq!(metadata(&legacy)["subscription_id"], "sub_PayhookOwnSub01");
    assert_eq!(
        metadata(&legacy)["payment_intent_id"],
        "pi_PayhookOwnIntent09"
    );
    assert_eq!(metadata(&legacy)["attempt_count"], 2);
}

#[test]
fn subscription_metadata_has_interval() {
    let row = extract_one("customer.subscription.created", subscription());

    let facts = metadata(&row);
    assert_eq!(facts["interval"], "month");
    assert_eq!(facts["interval_count"], 1);
    assert_eq!(facts["quantity"], 2);
    assert_eq!(facts["price_id"], "price_PayhookOwn01");
}

#[test]
fn dispute_metadata_names_charge_and_reason() {
    let object = json!({
        "id": "dp_PayhookOwnDispute02",
        "amount": 100,
        "charge": "ch_PayhookOwnCharge20",
        "currency": "usd",
        "reason": "product_not_received",
        "status": "needs_response",
    });

    let row = extract_one("charge.dispute.created", object);

    assert_eq!(row.payment_id, "ch_PayhookOwnCharge20");
    let facts = metadata(&row);
    assert_eq!(facts["charge_id"], "ch_PayhookOwnCharge20");
    assert_eq!(facts["reason"], "product_not_received");
}

#[test]
fn zero_paid_invoice_yields_no_rows() {
    let mut object = invoice_basil();
    object["amount_due"] = json!(0);
    object["amount_paid"] = json!(0);

    let result = extract("invoice.paid", object);

    assert_eq!(result, Ok(Extraction::Payments(Vec::new())));
}

#[test]
fn unknown_event_type_is_ignored() {
    for event_type in [
        "customer.created",
        "payment_intent.unknown_action",
        "invoice.finalized",
    ] {
        let result = extract(event_type, json!({ "id": "x" }));

        assert_eq!(
            result,
            Ok(Extraction::Ignored(format!(
                "event type {event_type} carries no payment data"
            ))),
            "{event_type}"
        );
    }
}

#[test]
fn malformed_amount_names_field() {
    let mut as_string = payment_intent("pi_PayhookOwnIntent01", "succeeded");
    as_string["amount_received"] = json!("2500");
    let mut as_float = charge("ch_PayhookOwnCharge02");
    as_float["amount"] = json!(80.5);
    let mut missing_amount =
        json!({ "id": "re_PayhookOwnRefund02", "currency": "usd", "status": "succeeded" });
    missing_amount["amount"] = Value::Null;

    let string_error = extract("payment_intent.succeeded", as_string).unwrap_err();
    let float_error = extract("charge.succeeded", as_float).unwrap_err();
    let missing_error = extract("refund.created", missing_amount).unwrap_err();

    assert!(
        matches!(&string_error, ExtractError::InvalidField { field, .. } if field == "data.object.amount_received"),
        "{string_error:?}"
    );
    assert!(
        matches!(&float_error, ExtractError::InvalidField { field, .. } if field == "data.object.amount"),
        "{float_error:?}"
    );
    assert_eq!(
        missing_error,
        ExtractError::MissingField {
            field: "data.object.amount".into()
        }
    );
}

#[test]
fn unknown_currency_names_field() {
    let mut object = payment_intent("pi_PayhookOwnIntent01", "succeeded");
    object["currency"] = json!("xxz");

    let error = extract("payment_intent.succeeded", object).unwrap_err();

    assert_eq!(
        error,
        ExtractError::Money {
            field: "data.object.currency".into(),
            source: MoneyError::UnknownCurrency("XXZ".into()),
        }
    );
}

#[test]
fn invalid_payload_is_an_error() {
    let not_json = StripeHandler.extract("charge.succeeded", "{ not json");
    let no_object = StripeHandler.extract(
        "charge.succeeded",
        r#"{"id":"evt_payhook_test_0002","type":"charge.succeeded","data":{}}"#,
    );
    let no_id = extract(
        "charge.succeeded",
        json!({ "amount": 1, "currency": "usd" }),
    );

    assert!(
        matches!(not_json, Err(ExtractError::InvalidJson(_))),
        "{not_json:?}"
    );
    assert_eq!(
        no_object,
        Err(ExtractError::MissingField {
            field: "data.object".into()
        })
    );
    assert_eq!(
        no_id,
        Err(ExtractError::MissingField {
            field: "data.object.id".into()
        })
    );
}

#[test]
fn metadata_column_stays_under_limit() {
    let mut object = payment_intent("pi_PayhookOwnIntent03", "requires_payment_method");
    let long = "x".repeat(20_000);
    object["last_payment_error"] = json!({ "code": long, "decline_code": long, "type": long });
    object["cancellation_reason"] = json!(long);
    object["capture_method"] = json!(long);

    let row = extract_one("payment_intent.payment_failed", object);

    let text = row.metadata.expect("metadata present");
    assert!(text.chars().count() <= 4000, "{}", text.len());
}
