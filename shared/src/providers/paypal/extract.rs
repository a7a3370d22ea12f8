//! Payment extraction from verified PayPal webhook events.
//!
//! Orders v2 and Payments v2 resources carry amounts as `{"currency_code", "value"}`; the v1
//! Payments API (`PAYMENT.SALE.*`) uses `{"total", "currency"}`. Both are decimal strings in
//! major units and are parsed exactly with [`Money::parse_decimal`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::NewPaymentEvent;
use crate::money::{Money, MoneyError};
use crate::providers::metadata::Metadata;
use crate::providers::payload::{at, missing, parse_object, require_object, text};
use crate::providers::{ExtractError, Extraction, Handler};

/// Extracts payment events from PayPal webhook events.
#[derive(Debug, Clone, Copy, Default)]
pub struct PayPalHandler;

/// The kind of resource an event type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Payments v2 capture.
    Capture,
    /// A Payments v2 refund, sent for refunded and reversed captures.
    CaptureRefund,
    /// An Orders v2 order.
    Order,
    /// A v1 sale.
    Sale,
    /// A v1 refund or reversal of a sale.
    SaleRefund,
    /// A billing subscription.
    Subscription,
}

/// Returns the resource kind and the normalized status an event type stands for.
fn classify(event_type: &str) -> Option<(Kind, &'static str)> {
    let found = match event_type {
        "PAYMENT.CAPTURE.COMPLETED" => (Kind::Capture, "succeeded"),
        "PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED" => (Kind::Capture, "failed"),
        "PAYMENT.CAPTURE.PENDING" => (Kind::Capture, "pending"),
        "PAYMENT.CAPTURE.REFUNDED" => (Kind::CaptureRefund, "refunded"),
        "PAYMENT.CAPTURE.REVERSED" => (Kind::CaptureRefund, "reversed"),
        "CHECKOUT.ORDER.APPROVED" => (Kind::Order, "approved"),
        "CHECKOUT.ORDER.COMPLETED" => (Kind::Order, "succeeded"),
        "CHECKOUT.ORDER.SAVED" => (Kind::Order, "saved"),
        "CHECKOUT.ORDER.VOIDED" => (Kind::Order, "canceled"),
        "PAYMENT.SALE.COMPLETED" => (Kind::Sale, "succeeded"),
        "PAYMENT.SALE.DENIED" => (Kind::Sale, "failed"),
        "PAYMENT.SALE.PENDING" => (Kind::Sale, "pending"),
        "PAYMENT.SALE.REFUNDED" => (Kind::SaleRefund, "refunded"),
        "PAYMENT.SALE.REVERSED" => (Kind::SaleRefund, "reversed"),
        "BILLING.SUBSCRIPTION.CREATED" => (Kind::Subscription, "created"),
        "BILLING.SUBSCRIPTION.ACTIVATED" | "BILLING.SUBSCRIPTION.RE-ACTIVATED" => {
            (Kind::Subscription, "active")
        }
        "BILLING.SUBSCRIPTION.UPDATED" => (Kind::Subscription, "updated"),
        "BILLING.SUBSCRIPTION.CANCELLED" => (Kind::Subscription, "canceled"),
        "BILLING.SUBSCRIPTION.SUSPENDED" => (Kind::Subscription, "suspended"),
        "BILLING.SUBSCRIPTION.EXPIRED" => (Kind::Subscription, "expired"),
        "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => (Kind::Subscription, "failed"),
        _ => return None,
    };
    Some(found)
}

impl Handler for PayPalHandler {
    fn computes_only(&self) -> bool {
        true
    }

    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let Some((kind, status)) = classify(event_type) else {
            return Ok(Extraction::Ignored(format!(
                "event type {event_type} carries no payment data"
            )));
        };
        let event = parse_object(payload)?;
        let resource = require_object(&event, &["resource"], "resource")?;
        let mut payment = NewPaymentEvent {
            payment_id: String::new(),
            event_type: event_type.to_string(),
            status: status.to_string(),
            status_raw: None,
            amount: None,
            customer_id: None,
            order_id: None,
            transaction_id: None,
            metadata: None,
            provider_created_at: text(&event, &["create_time"]).and_then(parse_time),
        };
        let mut metadata = Metadata::new();
        match kind {
            Kind::Capture => capture(resource, &mut payment, &mut metadata)?,
            Kind::CaptureRefund => capture_refund(resource, &mut payment, &mut metadata)?,
            Kind::Order => order(resource, &mut payment, &mut metadata)?,
            Kind::Sale | Kind::SaleRefund => sale(resource, kind, &mut payment, &mut metadata)?,
            Kind::Subscription => subscription(resource, &mut payment, &mut metadata)?,
        }
        payment.metadata = metadata.finish();
        Ok(Extraction::Payments(vec![payment]))
    }
}

/// `PAYMENT.CAPTURE.*` other than refunds: keyed by the order the capture belongs to.
///
/// PayPal's own samples disagree between `supplementary_data` and the `up` link, so
/// `supplementary_data.related_ids.order_id` wins and the link is only a fallback. A denied
/// capture has status `DECLINED`; there is no `DENIED` capture status.
fn capture(
    resource: &Value,
    payment: &mut NewPaymentEvent,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    let capture_id = own_id(resource)?;
    payment.payment_id = text(resource, &["supplementary_data", "related_ids", "order_id"])
        .map(str::to_string)
        .or_else(|| link_id(resource, "up", "/v2/checkout/orders/"))
        .unwrap_or_else(|| capture_id.clone());
    payment.transaction_id = Some(capture_id);
    payment.status_raw = owned(text(resource, &["status"]));
    payment.amount = Some(v2_money(resource, &["amount"], "resource.amount")?);
    payment.order_id = merchant_reference(resource);

    metadata.text("invoice_id", text(resource, &["invoice_id"]));
    breakdown_facts(
        resource,
        "seller_receivable_breakdown",
        "resource.seller_receivable_breakdown",
        metadata,
    )?;
    metadata
        .text(
            "status_reason",
            text(resource, &["status_details", "reason"]),
        )
        .value("final_capture", at(resource, &["final_capture"]));
    Ok(())
}

/// `PAYMENT.CAPTURE.REFUNDED` and `.REVERSED`, whose resource is a refund: keyed by the
/// refunded capture from the refund's `up` link.
fn capture_refund(
    resource: &Value,
    payment: &mut NewPaymentEvent,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    payment.payment_id = link_id(resource, "up", "/v2/payments/captures/")
        .ok_or_else(|| missing("resource.links[rel=up]"))?;
    payment.transaction_id = Some(own_id(resource)?);
    payment.status_raw = owned(text(resource, &["status"]));
    payment.amount = Some(v2_money(resource, &["amount"], "resource.amount")?);
    payment.order_id = merchant_reference(resource);

    metadata.text("invoice_id", text(resource, &["invoice_id"]));
    breakdown_facts(
        resource,
        "seller_payable_breakdown",
        "resource.seller_payable_breakdown",
        metadata,
    )?;
    let total_refunded = optional_v2_money(
        resource,
        &["seller_payable_breakdown", "total_refunded_amount"],
        "resource.seller_payable_breakdown.total_refunded_amount",
    )?;
    metadata
        .text(
            "total_refunded_amount",
            total_refunded.map(|m| m.to_decimal_string()).as_deref(),
        )
        .text("note_to_payer", text(resource, &["note_to_payer"]));
    Ok(())
}

/// `CHECKOUT.ORDER.*`: keyed by the order; the amount is the sum of its purchase units.
fn order(
    resource: &Value,
    payment: &mut NewPaymentEvent,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    payment.payment_id = own_id(resource)?;
    payment.status_raw = owned(text(resource, &["status"]));
    payment.customer_id = owned(
        text(resource, &["payer", "payer_id"])
            .or_else(|| text(resource, &["payment_source", "paypal", "account_id"])),
    );

    let units = at(resource, &["purchase_units"])
        .and_then(Value::as_array)
        .filter(|units| !units.is_empty())
        .ok_or_else(|| missing("resource.purchase_units"))?;
    let mut total: Option<Money> = None;
    for (index, unit) in units.iter().enumerate() {
        let field = format!("resource.purchase_units[{index}].amount");
        let amount = v2_money(unit, &["amount"], &field)?;
        total = Some(match total {
            None => amount,
            Some(sum) => add(sum, amount, &field)?,
        });
    }
    payment.amount = total;

    let first_unit = &units[0];
    payment.order_id = merchant_reference(first_unit).or_else(|| {
        text(first_unit, &["reference_id"])
            .filter(|reference| *reference != "default")
            .map(str::to_string)
    });

    let first_capture = at(first_unit, &["payments", "captures"])
        .and_then(Value::as_array)
        .and_then(|captures| captures.first());
    if let Some(capture) = first_capture {
        payment.transaction_id = owned(text(capture, &["id"]));
        let capture_status = text(capture, &["status"]);
        if payment.status == "succeeded" {
            payment.status = match capture_status {
                Some("PENDING") => "pending",
                Some("DECLINED") | Some("FAILED") => "failed",
                _ => "succeeded",
            }
            .to_string();
        }
        metadata.text("capture_status", capture_status);
    }

    metadata
        .text("invoice_id", text(first_unit, &["invoice_id"]))
        .text("intent", text(resource, &["intent"]));
    if let Some(capture) = first_capture {
        let prefix = "resource.purchase_units[0].payments.captures[0].seller_receivable_breakdown";
        breakdown_facts(capture, "seller_receivable_breakdown", prefix, metadata)?;
    }
    Ok(())
}

/// v1 `PAYMENT.SALE.*`: keyed by the parent payment (`PAY-...`). Refunds and reversals carry
/// a refund resource whose `sale_id` names the sale.
fn sale(
    resource: &Value,
    kind: Kind,
    payment: &mut NewPaymentEvent,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    let resource_id = own_id(resource)?;
    payment.payment_id = text(resource, &["parent_payment"])
        .or_else(|| text(resource, &["billing_agreement_id"]))
        .or_else(|| text(resource, &["sale_id"]))
        .map_or_else(|| resource_id.clone(), str::to_string);
    payment.transaction_id = Some(resource_id);
    payment.status_raw = owned(text(resource, &["state"]));
    payment.amount = Some(v1_money(resource, &["amount"], "total", "resource.amount")?);
    payment.order_id =
        owned(text(resource, &["custom"]).or_else(|| text(resource, &["invoice_number"])));

    if kind == Kind::SaleRefund {
        metadata.text("sale_id", text(resource, &["sale_id"]));
    }
    let fee = match at(resource, &["transaction_fee"]) {
        Some(_) => Some(v1_money(
            resource,
            &["transaction_fee"],
            "value",
            "resource.transaction_fee",
        )?),
        None => None,
    };
    metadata
        .text("paypal_fee", fee.map(|m| m.to_decimal_string()).as_deref())
        .text(
            "billing_agreement_id",
            text(resource, &["billing_agreement_id"]),
        )
        .text("reason_code", text(resource, &["reason_code"]));
    Ok(())
}

/// `BILLING.SUBSCRIPTION.*`: keyed by the subscription (`I-...`); the amount is the last
/// payment, or the last failed one for `PAYMENT.FAILED`.
fn subscription(
    resource: &Value,
    payment: &mut NewPaymentEvent,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    payment.payment_id = own_id(resource)?;
    let raw_status = text(resource, &["status"]);
    payment.status_raw = owned(raw_status);
    if payment.status == "updated" {
        payment.status = match raw_status {
            Some("ACTIVE") => "active",
            Some("CANCELLED") => "canceled",
            Some("SUSPENDED") => "suspended",
            Some("EXPIRED") => "expired",
            Some("APPROVED") => "approved",
            Some("APPROVAL_PENDING") => "pending",
            _ => "updated",
        }
        .to_string();
    }
    payment.customer_id = owned(text(resource, &["subscriber", "payer_id"]));
    payment.order_id = owned(text(resource, &["custom_id"]));

    let last_failed = ["billing_info", "last_failed_payment", "amount"];
    let last_paid = ["billing_info", "last_payment", "amount"];
    payment.amount = if payment.status == "failed" && at(resource, &last_failed).is_some() {
        optional_v2_money(
            resource,
            &last_failed,
            "resource.billing_info.last_failed_payment.amount",
        )?
    } else {
        optional_v2_money(
            resource,
            &last_paid,
            "resource.billing_info.last_payment.amount",
        )?
    };

    metadata
        .text("plan_id", text(resource, &["plan_id"]))
        .text(
            "failure_reason",
            text(
                resource,
                &["billing_info", "last_failed_payment", "reason_code"],
            ),
        )
        .value(
            "failed_payments_count",
            at(resource, &["billing_info", "failed_payments_count"]),
        )
        .text(
            "next_billing_time",
            text(resource, &["billing_info", "next_billing_time"]),
        );
    Ok(())
}

/// Adds the fee and net amount of a capture's or refund's breakdown, validated as money.
fn breakdown_facts(
    resource: &Value,
    breakdown: &str,
    prefix: &str,
    metadata: &mut Metadata,
) -> Result<(), ExtractError> {
    let fee = optional_v2_money(
        resource,
        &[breakdown, "paypal_fee"],
        &format!("{prefix}.paypal_fee"),
    )?;
    let net = optional_v2_money(
        resource,
        &[breakdown, "net_amount"],
        &format!("{prefix}.net_amount"),
    )?;
    metadata
        .text("paypal_fee", fee.map(|m| m.to_decimal_string()).as_deref())
        .text("net_amount", net.map(|m| m.to_decimal_string()).as_deref());
    Ok(())
}

/// Returns the merchant's reference: `custom_id`, else `invoice_id`.
fn merchant_reference(value: &Value) -> Option<String> {
    owned(text(value, &["custom_id"]).or_else(|| text(value, &["invoice_id"])))
}

fn own_id(resource: &Value) -> Result<String, ExtractError> {
    owned(text(resource, &["id"])).ok_or_else(|| missing("resource.id"))
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_string)
}

/// Returns the id that follows `path_prefix` in the `href` of the first link with `rel`.
fn link_id(resource: &Value, rel: &str, path_prefix: &str) -> Option<String> {
    let links = at(resource, &["links"])?.as_array()?;
    let href = links
        .iter()
        .find(|link| text(link, &["rel"]) == Some(rel))
        .and_then(|link| text(link, &["href"]))?;
    let url = url::Url::parse(href).ok()?;
    let id = url.path().strip_prefix(path_prefix)?.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// Parses a v2 amount object, `{"currency_code": "USD", "value": "19.99"}`, at `path`.
fn v2_money(value: &Value, path: &[&str], field: &str) -> Result<Money, ExtractError> {
    let amount = require_object(value, path, field)?;
    decimal_money(amount, "value", "currency_code", field)
}

fn optional_v2_money(
    value: &Value,
    path: &[&str],
    field: &str,
) -> Result<Option<Money>, ExtractError> {
    match at(value, path) {
        None => Ok(None),
        Some(_) => v2_money(value, path, field).map(Some),
    }
}

/// Parses a v1 amount object whose decimal string is under `value_key` (`total` for sale
/// amounts, `value` for fees) beside `currency`.
fn v1_money(
    value: &Value,
    path: &[&str],
    value_key: &str,
    field: &str,
) -> Result<Money, ExtractError> {
    let amount = require_object(value, path, field)?;
    decimal_money(amount, value_key, "currency", field)
}

fn decimal_money(
    amount: &Value,
    value_key: &str,
    currency_key: &str,
    field: &str,
) -> Result<Money, ExtractError> {
    let value_field = format!("{field}.{value_key}");
    let currency_field = format!("{field}.{currency_key}");
    let value = text(amount, &[value_key]).ok_or_else(|| missing(&value_field))?;
    let currency = text(amount, &[currency_key]).ok_or_else(|| missing(&currency_field))?;
    Money::parse_decimal(value, currency).map_err(|source| {
        let field = match source {
            MoneyError::InvalidCurrency(_) | MoneyError::UnknownCurrency(_) => currency_field,
            _ => value_field,
        };
        ExtractError::Money { field, source }
    })
}

/// Adds two amounts of one currency; a second currency or an overflow is an error.
fn add(sum: Money, amount: Money, field: &str) -> Result<Money, ExtractError> {
    if sum.currency != amount.currency || sum.exponent != amount.exponent {
        return Err(ExtractError::InvalidField {
            field: field.to_string(),
            reason: format!(
                "purchase units mix {} and {}; payhook does not add different currencies",
                sum.currency, amount.currency
            ),
        });
    }
    let minor = sum
        .minor
        .checked_add(amount.minor)
        .ok_or_else(|| ExtractError::InvalidField {
            field: field.to_string(),
            reason: "the order total does not fit in 64 bits".to_string(),
        })?;
    Ok(Money { minor, ..sum })
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
