use payhook::providers::hmac::ConfigHandler;
use payhook::providers::{ConfigError, ExtractError, Extraction, Handler, Verifier};

use crate::*;

fn handler(example: &str, name: &str) -> ConfigHandler {
    ConfigHandler::new(name, config(example).payment).unwrap()
}

fn single_payment(extraction: Extraction) -> payhook::model::NewPaymentEvent {
    match extraction {
        Extraction::Payments(mut payments) if payments.len() == 1 => payments.remove(0),
        other => panic!("expected one payment, got {other:?}"),
    }
}

const RAZORPAY_CAPTURED: &str = r#"{"event":"payment.captured","created_at":1717200000,"payload":{"payment":{"entity":{"id":"pay_PH0000000001","amount":249900,"currency":"INR","status":"captured","order_id":"order_PH0000000001","customer_id":"cust_PH01","created_at":1717199990}}}}"#;

#[test]
fn razorpay_payment_extracted_exactly() {
    let payment = single_payment(
        handler(RAZORPAY, "razorpay")
            .extract("payment.captured", RAZORPAY_CAPTURED)
            .unwrap(),
    );
    let amount = payment.amount.unwrap();

    assert_eq!(payment.payment_id, "pay_PH0000000001");
    assert_eq!(payment.status, "succeeded");
    assert_eq!(payment.status_raw.as_deref(), Some("captured"));
    assert_eq!(amount.minor, 249900);
    assert_eq!(amount.to_decimal_string(), "2499.00");
    assert_eq!(amount.currency.as_str(), "INR");
    assert_eq!(payment.order_id.as_deref(), Some("order_PH0000000001"));
    assert_eq!(payment.customer_id.as_deref(), Some("cust_PH01"));
    assert_eq!(
        payment.provider_created_at,
        Some(at("2024-05-31T23:59:50Z"))
    );
}

#[test]
fn shopify_decimal_and_status_values() {
    let body = r##"{"id":5550001,"name":"#1042","total_price":"1500","currency":"JPY","financial_status":"refunded","customer":{"id":7770001},"updated_at":"2024-06-01T09:00:00+09:00"}"##;

    let payment = single_payment(
        handler(SHOPIFY, "shopify")
            .extract("orders/paid", body)
            .unwrap(),
    );
    let amount = payment.amount.unwrap();

    assert_eq!(payment.payment_id, "5550001");
    assert_eq!(payment.status, "refunded");
    assert_eq!(amount.minor, 1500);
    assert_eq!(amount.exponent, 0);
    assert_eq!(payment.customer_id.as_deref(), Some("7770001"));
    assert_eq!(payment.order_id.as_deref(), Some("#1042"));
    assert_eq!(
        payment.provider_created_at,
        Some(at("2024-06-01T00:00:00Z"))
    );
}

#[test]
fn paddle_string_minor_units() {
    let body = r#"{"event_id":"evt_ph01","event_type":"transaction.completed","occurred_at":"2024-06-01T10:00:00Z","data":{"id":"txn_ph01","status":"completed","currency_code":"KWD","customer_id":"ctm_ph01","invoice_number":"INV-9","details":{"totals":{"grand_total":"5120"}}}}"#;

    let payment = single_payment(
        handler(PADDLE, "paddle")
            .extract("transaction.completed", body)
            .unwrap(),
    );

    assert_eq!(payment.amount.unwrap().to_decimal_string(), "5.120");
    assert_eq!(payment.status, "succeeded");
}

#[test]
fn square_status_value_wins() {
    let body = r#"{"type":"payment.updated","event_id":"e-1","data":{"object":{"payment":{"id":"sq_pay_1","status":"FAILED","amount_money":{"amount":1999,"currency":"USD"}}}}}"#;

    let payment = single_payment(
        handler(SQUARE, "square")
            .extract("payment.updated", body)
            .unwrap(),
    );

    assert_eq!(payment.status, "failed");
    assert_eq!(payment.amount.unwrap().to_decimal_string(), "19.99");
}

#[test]
fn unmapped_event_type_ignored() {
    let result = handler(RAZORPAY, "razorpay").extract("refund.created", RAZORPAY_CAPTURED);

    assert!(matches!(result, Ok(Extraction::Ignored(reason)) if reason.contains("refund.created")));
}

#[test]
fn missing_mapping_ignores_everything() {
    let handler = ConfigHandler::new("github", config(GITHUB).payment).unwrap();

    let result = handler.extract("push", "{}").unwrap();

    assert_eq!(
        result,
        Extraction::Ignored("no payment mapping configured for provider github".to_string())
    );
}

#[test]
fn bad_amounts_fail_the_event() {
    let float_amount = RAZORPAY_CAPTURED.replace("249900", "2499.5");
    let unknown_currency = RAZORPAY_CAPTURED.replace("INR", "XYZ");
    let no_id = RAZORPAY_CAPTURED.replace("\"id\":\"pay_PH0000000001\",", "");
    let handler = handler(RAZORPAY, "razorpay");

    let float_result = handler.extract("payment.captured", &float_amount);
    let currency_result = handler.extract("payment.captured", &unknown_currency);
    let id_result = handler.extract("payment.captured", &no_id);

    assert!(
        matches!(float_result, Err(ExtractError::MissingField { .. })),
        "{float_result:?}"
    );
    assert!(
        matches!(currency_result, Err(ExtractError::Money { .. })),
        "{currency_result:?}"
    );
    assert!(
        matches!(id_result, Err(ExtractError::MissingField { .. })),
        "{id_result:?}"
    );
}

#[test]
fn mapping_validated_at_startup() {
    let mut mapping = config(RAZORPAY).payment.unwrap();
    mapping.currency = None;
    let mut relative = config(RAZORPAY).payment.unwrap();
    relative.payment_id = "payload.payment.id".to_string();

    let unpaired = ConfigHandler::new("razorpay", Some(mapping));
    let not_pointer = ConfigHandler::new("razorpay", Some(relative));

    assert!(matches!(unpaired, Err(ConfigError::Invalid { .. })));
    assert!(matches!(not_pointer, Err(ConfigError::Invalid { .. })));
}

#[test]
fn identity_from_headers_and_pointers() {
    let razorpay = verifier(RAZORPAY, "key_secret");
    let lemon = verifier(LEMONSQUEEZY, "local_test_secret");
    let map = headers(&[("X-Razorpay-Event-Id", "evt_rzp_ph_0001")]);
    let lemon_body = r#"{"meta":{"event_name":"order_created"},"data":{"id":"1","attributes":{"updated_at":"2024-06-01T00:00:00.000000Z"}}}"#;

    let rzp = razorpay
        .identity(&map, RAZORPAY_CAPTURED.as_bytes())
        .unwrap();
    let ls = lemon
        .identity(&headers(&[]), lemon_body.as_bytes())
        .unwrap();
    let missing = razorpay.identity(&headers(&[]), RAZORPAY_CAPTURED.as_bytes());

    assert_eq!(rzp.event_id, "evt_rzp_ph_0001");
    assert_eq!(rzp.event_type, "payment.captured");
    assert_eq!(rzp.created_at, Some(at("2024-06-01T00:00:00Z")));
    assert_eq!(ls.event_id.len(), 64);
    assert_eq!(ls.event_type, "order_created");
    assert!(missing.is_err());
}
