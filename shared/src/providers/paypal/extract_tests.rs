use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;

const API: &str = "https://api-m.sandbox.paypal.com";

fn event(event_type: &str, resource: Value) -> String {
    json!({
        "id": "WH-PAYHOOKTEST0001-0000000000000001",
        "create_time": "2026-02-03T04:05:06.789Z",
        "event_type": event_type,
        "event_version": "1.0",
        "resource_version": "2.0",
        "resource": resource,
    })
    .to_string()
}

fn extract(event_type: &str, resource: Value) -> Result<Extraction, ExtractError> {
    PayPalHandler.extract(event_type, &event(event_type, resource))
}

fn extract_one(event_type: &str, resource: Value) -> NewPaymentEvent {
    match extract(event_type, resource) {
        Ok(Extraction::Payments(mut rows)) if rows.len() == 1 => rows.remove(0),
        other => panic!("{event_type}: expected one payment, got {other:?}"),
    }
}

fn facts(row: &NewPaymentEvent) -> Value {
    serde_json::from_str(row.metadata.as_deref().unwrap_or("{}")).expect("metadata is JSON")
}

fn amount(currency: &str, value: &str) -> Value {
    json!({ "currency_code": currency, "value": value })
}

fn link(rel: &str, path: &str) -> Value {
    json!({ "href": format!("{API}{path}"), "rel": rel, "method": "GET" })
}

fn capture(status: &str) -> Value {
    json!({
        "id": "9PAYHOOKCAPTURE01",
        "amount": amount("USD", "64.00"),
        "final_capture": true,
        "seller_receivable_breakdown": {
            "gross_amount": amount("USD", "64.00"),
            "paypal_fee": amount("USD", "2.73"),
            "net_amount": amount("USD", "61.27")
        },
        "invoice_id": "PH-INV-7001",
        "custom_id": "PH-7001",
        "status": status,
        "supplementary_data": { "related_ids": { "order_id": "7PAYHOOKORDER0001" } },
        "links": [
            link("self", "/v2/payments/captures/9PAYHOOKCAPTURE01"),
            link("up", "/v2/checkout/orders/7PAYHOOKORDER0009")
        ]
    })
}

fn refund(note: Option<&str>) -> Value {
    let mut refund = json!({
        "id": "3PAYHOOKREFUND001",
        "amount": amount("USD", "5.50"),
        "seller_payable_breakdown": {
            "gross_amount": amount("USD", "5.50"),
            "paypal_fee": amount("USD", "0.10"),
            "net_amount": amount("USD", "5.40"),
            "total_refunded_amount": amount("USD", "11.00")
        },
        "status": "COMPLETED",
        "links": [
            link("self", "/v2/payments/refunds/3PAYHOOKREFUND001"),
            link("up", "/v2/payments/captures/9PAYHOOKCAPTURE01")
        ]
    });
    if let Some(note) = note {
        refund["note_to_payer"] = json!(note);
    }
    refund
}

fn order(status: &str, reference: &str) -> Value {
    json!({
        "id": "7PAYHOOKORDER0002",
        "intent": "CAPTURE",
        "status": status,
        "payer": { "payer_id": "PAYHOOKPAYER01", "email_address": "buyer@example.com" },
        "purchase_units": [{
            "reference_id": reference,
            "amount": amount("EUR", "30.00")
        }]
    })
}

fn completed_order(capture_status: &str) -> Value {
    let mut order = order("COMPLETED", "default");
    order["purchase_units"][0]["custom_id"] = json!("PH-8001");
    order["purchase_units"][0]["invoice_id"] = json!("PH-INV-8001");
    order["purchase_units"][0]["payments"] = json!({
        "captures": [{
            "id": "4PAYHOOKCAPTURE02",
            "status": capture_status,
            "amount": amount("EUR", "30.00"),
            "seller_receivable_breakdown": {
                "gross_amount": amount("EUR", "30.00"),
                "paypal_fee": amount("EUR", "1.40"),
                "net_amount": amount("EUR", "28.60")
            }
        }]
    });
    order
}

fn sale() -> Value {
    json!({
        "id": "5PAYHOOKSALE00001",
        "amount": { "total": "12.34", "currency": "USD" },
        "state": "completed",
        "parent_payment": "PAY-PAYHOOK0000000000000001",
        "transaction_fee": { "value": "0.66", "currency": "USD" },
        "custom": "PH-9001",
        "links": []
    })
}

fn sale_refund() -> Value {
    json!({
        "id": "6PAYHOOKREFUND002",
        "amount": { "total": "-2.00", "currency": "USD" },
        "state": "completed",
        "sale_id": "5PAYHOOKSALE00001",
        "parent_payment": "PAY-PAYHOOK0000000000000001"
    })
}

fn subscription(status: &str) -> Value {
    json!({
        "id": "I-PAYHOOKSUB0001",
        "plan_id": "P-PAYHOOKPLAN00000000000001",
        "status": status,
        "custom_id": "PH-SUB-1",
        "subscriber": { "payer_id": "PAYHOOKPAYER02" },
        "billing_info": {
            "outstanding_balance": amount("JPY", "0"),
            "last_payment": { "amount": amount("JPY", "1500"), "time": "2026-01-01T00:00:00Z" },
            "next_billing_time": "2026-02-01T10:00:00Z",
            "failed_payments_count": 0
        }
    })
}

/// Expected columns of one extracted payment.
struct Expected {
    payment_id: &'static str,
    transaction_id: Option<&'static str>,
    amount: Option<(&'static str, &'static str)>,
    status: &'static str,
    status_raw: &'static str,
    customer_id: Option<&'static str>,
    order_id: Option<&'static str>,
}

fn cases() -> Vec<(&'static str, &'static str, Value, Expected)> {
    let mut capture_without_related = capture("COMPLETED");
    capture_without_related
        .as_object_mut()
        .unwrap()
        .remove("supplementary_data");
    let mut capture_with_invoice_only = capture("PENDING");
    capture_with_invoice_only
        .as_object_mut()
        .unwrap()
        .remove("custom_id");

    let mut failed_subscription = subscription("ACTIVE");
    failed_subscription["billing_info"]["last_failed_payment"] = json!({
        "amount": amount("JPY", "1500"),
        "reason_code": "PAYMENT_DENIED"
    });
    let new_subscription = {
        let mut sub = subscription("APPROVAL_PENDING");
        sub.as_object_mut().unwrap().remove("billing_info");
        sub
    };

    vec![
        (
            "capture completed",
            "PAYMENT.CAPTURE.COMPLETED",
            capture("COMPLETED"),
            Expected {
                payment_id: "7PAYHOOKORDER0001",
                transaction_id: Some("9PAYHOOKCAPTURE01"),
                amount: Some(("64.00", "USD")),
                status: "succeeded",
                status_raw: "COMPLETED",
                customer_id: None,
                order_id: Some("PH-7001"),
            },
        ),
        (
            "capture order from up link",
            "PAYMENT.CAPTURE.COMPLETED",
            capture_without_related,
            Expected {
                payment_id: "7PAYHOOKORDER0009",
                transaction_id: Some("9PAYHOOKCAPTURE01"),
                amount: Some(("64.00", "USD")),
                status: "succeeded",
                status_raw: "COMPLETED",
                customer_id: None,
                order_id: Some("PH-7001"),
            },
        ),
        (
            "capture denied has DECLINED status",
            "PAYMENT.CAPTURE.DENIED",
            capture("DECLINED"),
            Expected {
                payment_id: "7PAYHOOKORDER0001",
                transaction_id: Some("9PAYHOOKCAPTURE01"),
                amount: Some(("64.00", "USD")),
                status: "failed",
                status_raw: "DECLINED",
                customer_id: None,
                order_id: Some("PH-7001"),
            },
        ),
        (
            "capture pending, invoice reference",
            "PAYMENT.CAPTURE.PENDING",
            capture_with_invoice_only,
            Expected {
                payment_id: "7PAYHOOKORDER0001",
                transaction_id: Some("9PAYHOOKCAPTURE01"),
                amount: Some(("64.00", "USD")),
                status: "pending",
                status_raw: "PENDING",
                customer_id: None,
                order_id: Some("PH-INV-7001"),
            },
        ),
        (
            "capture refunded is a refund",
            "PAYMENT.CAPTURE.REFUNDED",
            refund(None),
            Expected {
                payment_id: "9PAYHOOKCAPTURE01",
                transaction_id: Some("3PAYHOOKREFUND001"),
                amount: Some(("5.50", "USD")),
                status: "refunded",
                status_raw: "COMPLETED",
                customer_id: None,
                order_id: None,
            },
        ),
        (
            "capture reversed is a refund",
            "PAYMENT.CAPTURE.REVERSED",
            refund(Some("Payment reversed")),
            Expected {
                payment_id: "9PAYHOOKCAPTURE01",
                transaction_id: Some("3PAYHOOKREFUND001"),
                amount: Some(("5.50", "USD")),
                status: "reversed",
                status_raw: "COMPLETED",
                customer_id: None,
                order_id: None,
            },
        ),
        (
            "order approved",
            "CHECKOUT.ORDER.APPROVED",
            order("APPROVED", "PH-REF-1"),
            Expected {
                payment_id: "7PAYHOOKORDER0002",
                transaction_id: None,
                amount: Some(("30.00", "EUR")),
                status: "approved",
                status_raw: "APPROVED",
                customer_id: Some("PAYHOOKPAYER01"),
                order_id: Some("PH-REF-1"),
            },
        ),
        (
            "order approved, default reference",
            "CHECKOUT.ORDER.APPROVED",
            order("APPROVED", "default"),
            Expected {
                payment_id: "7PAYHOOKORDER0002",
                transaction_id: None,
                amount: Some(("30.00", "EUR")),
                status: "approved",
                status_raw: "APPROVED",
                customer_id: Some("PAYHOOKPAYER01"),
                order_id: None,
            },
        ),
        (
            "order completed",
            "CHECKOUT.ORDER.COMPLETED",
            completed_order("COMPLETED"),
            Expected {
                payment_id: "7PAYHOOKORDER0002",
                transaction_id: Some("4PAYHOOKCAPTURE02"),
                amount: Some(("30.00", "EUR")),
                status: "succeeded",
                status_raw: "COMPLETED",
                customer_id: Some("PAYHOOKPAYER01"),
                order_id: Some("PH-8001"),
            },
        ),
        (
            "order completed, capture pending",
            "CHECKOUT.ORDER.COMPLETED",
            completed_order("PENDING"),
            Expected {
                payment_id: "7PAYHOOKORDER0002",
                transaction_id: Some("4PAYHOOKCAPTURE02"),
                amount: Some(("30.00", "EUR")),
                status: "pending",
                status_raw: "COMPLETED",
                customer_id: Some("PAYHOOKPAYER01"),
                order_id: Some("PH-8001"),
            },
        ),
        (
            "v1 sale completed",
            "PAYMENT.SALE.COMPLETED",
            sale(),
            Expected {
                payment_id: "PAY-PAYHOOK0000000000000001",
                transaction_id: Some("5PAYHOOKSALE00001"),
                amount: Some(("12.34", "USD")),
                status: "succeeded",
                status_raw: "completed",
                customer_id: None,
                order_id: Some("PH-9001"),
            },
        ),
        (
            "v1 sale refunded",
            "PAYMENT.SALE.REFUNDED",
            sale_refund(),
            Expected {
                payment_id: "PAY-PAYHOOK0000000000000001",
                transaction_id: Some("6PAYHOOKREFUND002"),
                amount: Some(("-2.00", "USD")),
                status: "refunded",
                status_raw: "completed",
                customer_id: None,
                order_id: None,
            },
        ),
        (
            "subscription activated in JPY",
            "BILLING.SUBSCRIPTION.ACTIVATED",
            subscription("ACTIVE"),
            Expected {
                payment_id: "I-PAYHOOKSUB0001",
                transaction_id: None,
                amount: Some(("1500", "JPY")),
                status: "active",
                status_raw: "ACTIVE",
                customer_id: Some("PAYHOOKPAYER02"),
                order_id: Some("PH-SUB-1"),
            },
        ),
        (
            "subscription payment failed",
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            failed_subscription,
            Expected {
                payment_id: "I-PAYHOOKSUB0001",
                transaction_id: None,
                amount: Some(("1500", "JPY")),
                status: "failed",
                status_raw: "ACTIVE",
                customer_id: Some("PAYHOOKPAYER02"),
                order_id: Some("PH-SUB-1"),
            },
        ),
        (
            "subscription created without payment",
            "BILLING.SUBSCRIPTION.CREATED",
            new_subscription,
            Expected {
                payment_id: "I-PAYHOOKSUB0001",
                transaction_id: None,
                amount: None,
                status: "created",
                status_raw: "APPROVAL_PENDING",
                customer_id: Some("PAYHOOKPAYER02"),
                order_id: Some("PH-SUB-1"),
            },
        ),
        (
            "subscription updated to suspended",
            "BILLING.SUBSCRIPTION.UPDATED",
            subscription("SUSPENDED"),
            Expected {
                payment_id: "I-PAYHOOKSUB0001",
                transaction_id: None,
                amount: Some(("1500", "JPY")),
                status: "suspended",
                status_raw: "SUSPENDED",
                customer_id: Some("PAYHOOKPAYER02"),
                order_id: Some("PH-SUB-1"),
            },
        ),
    ]
}

#[test]
fn extraction_matches_expected_table() {
    let created = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).single().unwrap()
        + chrono::Duration::milliseconds(789);
    for (name, event_type, resource, expected) in cases() {
        let row = extract_one(event_type, resource);

        let amount = row
            .amount
            .map(|m| (m.to_decimal_string(), m.currency.to_string()));
        let expected_amount = expected
            .amount
            .map(|(value, currency)| (value.to_string(), currency.to_string()));
        assert_eq!(row.payment_id, expected.payment_id, "{name}: payment_id");
        assert_eq!(
            row.transaction_id.as_deref(),
            expected.transaction_id,
            "{name}: transaction_id"
        );
        assert_eq!(amount, expected_amount, "{name}: amount");
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
        assert_eq!(row.provider_created_at, Some(created), "{name}: created");
    }
}

#[test]
fn capture_metadata_has_fee_and_net() {
    let row = extract_one("PAYMENT.CAPTURE.COMPLETED", capture("COMPLETED"));

    let facts = facts(&row);
    assert_eq!(facts["paypal_fee"], "2.73");
    assert_eq!(facts["net_amount"], "61.27");
    assert_eq!(facts["invoice_id"], "PH-INV-7001");
}

#[test]
fn refund_metadata_has_total_refunded() {
    let row = extract_one("PAYMENT.CAPTURE.REFUNDED", refund(None));

    assert_eq!(facts(&row)["total_refunded_amount"], "11.00");
}

#[test]
fn order_metadata_has_capture_fee() {
    let row = extract_one("CHECKOUT.ORDER.COMPLETED", completed_order("COMPLETED"));

    let facts = facts(&row);
    assert_eq!(facts["paypal_fee"], "1.40");
    assert_eq!(facts["net_amount"], "28.60");
    assert_eq!(facts["invoice_id"], "PH-INV-8001");
}

#[test]
fn sale_metadata_has_fee() {
    let row = extract_one("PAYMENT.SALE.COMPLETED", sale());

    assert_eq!(facts(&row)["paypal_fee"], "0.66");
}

#[test]
fn order_sums_purchase_units() {
    let mut resource = order("APPROVED", "PH-REF-2");
    resource["purchase_units"] = json!([
        { "reference_id": "PH-REF-2", "amount": amount("EUR", "30.00") },
        { "reference_id": "PH-REF-3", "amount": amount("EUR", "0.45") }
    ]);

    let row = extract_one("CHECKOUT.ORDER.APPROVED", resource);

    assert_eq!(
        row.amount.map(|m| m.to_decimal_string()),
        Some("30.45".into())
    );
}

#[test]
fn order_rejects_mixed_currencies() {
    let mut resource = order("APPROVED", "PH-REF-2");
    resource["purchase_units"] = json!([
        { "amount": amount("EUR", "30.00") },
        { "amount": amount("USD", "1.00") }
    ]);

    let error = extract("CHECKOUT.ORDER.APPROVED", resource).unwrap_err();

    assert!(
        matches!(&error, ExtractError::InvalidField { field, .. } if field == "resource.purchase_units[1].amount"),
        "{error:?}"
    );
}

#[test]
fn malformed_amount_names_field() {
    let mut exponent = capture("COMPLETED");
    exponent["amount"] = amount("USD", "6.4e1");
    let mut huf_decimals = capture("COMPLETED");
    huf_decimals["amount"] = amount("HUF", "1000.50");
    let mut unknown = capture("COMPLETED");
    unknown["amount"] = amount("XXZ", "1.00");
    let mut bad_fee = capture("COMPLETED");
    bad_fee["seller_receivable_breakdown"]["paypal_fee"] = amount("USD", " 2.73");

    let cases = [
        (exponent, "resource.amount.value"),
        (huf_decimals, "resource.amount.value"),
        (unknown, "resource.amount.currency_code"),
        (
            bad_fee,
            "resource.seller_receivable_breakdown.paypal_fee.value",
        ),
    ];
    for (resource, expected_field) in cases {
        let error = extract("PAYMENT.CAPTURE.COMPLETED", resource).unwrap_err();

        assert!(
            matches!(&error, ExtractError::Money { field, .. } if field == expected_field),
            "{expected_field}: {error:?}"
        );
    }
}

#[test]
fn missing_fields_are_errors() {
    let mut no_amount = capture("COMPLETED");
    no_amount.as_object_mut().unwrap().remove("amount");
    let mut no_up_link = refund(None);
    no_up_link["links"] = json!([link("self", "/v2/payments/refunds/3PAYHOOKREFUND001")]);

    assert_eq!(
        extract("PAYMENT.CAPTURE.COMPLETED", no_amount),
        Err(ExtractError::MissingField {
            field: "resource.amount".into()
        })
    );
    assert_eq!(
        extract("PAYMENT.CAPTURE.REFUNDED", no_up_link),
        Err(ExtractError::MissingField {
            field: "resource.links[rel=up]".into()
        })
    );
    assert_eq!(
        PayPalHandler.extract("PAYMENT.CAPTURE.COMPLETED", r#"{"id":"WH-1"}"#),
        Err(ExtractError::MissingField {
            field: "resource".into()
        })
    );
    assert!(matches!(
        PayPalHandler.extract("PAYMENT.CAPTURE.COMPLETED", "not json"),
        Err(ExtractError::InvalidJson(_))
    ));
}

#[test]
fn unknown_event_type_is_ignored() {
    for event_type in [
        "CUSTOMER.DISPUTE.CREATED",
        "BILLING.PLAN.CREATED",
        "PAYMENT.CAPTURE.UNKNOWN",
    ] {
        let result = extract(event_type, json!({ "id": "X" }));

        assert_eq!(
            result,
            Ok(Extraction::Ignored(format!(
                "event type {event_type} carries no payment data"
            ))),
            "{event_type}"
        );
    }
}
