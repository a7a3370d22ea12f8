//! Payment extraction from verified Stripe events.
//!
//! The event's `data.object` is rendered in the endpoint's API version, so every field is
//! read with a fallback for older shapes (PaymentIntent `charges` before 2022-11-15, invoices
//! with top-level `charge` and `subscription` before 2025-03-31).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::billing;
use super::identity::unix_seconds;
use super::payments;
use crate::model::NewPaymentEvent;
use crate::money::Money;
use crate::providers::payload::{at, missing, parse_object, require_object, text};
use crate::providers::{ExtractError, Extraction, Handler};

/// Extracts payment events from Stripe events.
#[derive(Debug, Clone, Copy, Default)]
pub struct StripeHandler;

/// The kind of object an event type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PaymentIntent,
    Charge,
    Dispute,
    Refund,
    CheckoutSession,
    Invoice,
    Subscription,
}

fn classify(event_type: &str) -> Option<Kind> {
    let kind = match event_type {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled"
        | "payment_intent.processing"
        | "payment_intent.requires_action"
        | "payment_intent.created"
        | "payment_intent.amount_capturable_updated"
        | "payment_intent.partially_funded" => Kind::PaymentIntent,
        "charge.succeeded" | "charge.failed" | "charge.refunded" | "charge.captured"
        | "charge.pending" | "charge.updated" | "charge.expired" => Kind::Charge,
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => Kind::Dispute,
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            Kind::Refund
        }
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => Kind::CheckoutSession,
        "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => Kind::Invoice,
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed"
        | "customer.subscription.trial_will_end" => Kind::Subscription,
        _ => return None,
    };
    Some(kind)
}

impl Handler for StripeHandler {
    fn computes_only(&self) -> bool {
        true
    }

    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let Some(kind) = classify(event_type) else {
            return Ok(Extraction::Ignored(format!(
                "event type {event_type} carries no payment data"
            )));
        };
        let event = parse_object(payload)?;
        let object = require_object(&event, &["data", "object"], "data.object")?;
        let context = EventContext {
            event_type,
            object: StripeObject(object),
            created_at: event.get("created").and_then(unix_seconds),
        };
        let payment = match kind {
            Kind::PaymentIntent => payments::payment_intent(&context)?,
            Kind::Charge => payments::charge(&context)?,
            Kind::Dispute => payments::dispute(&context)?,
            Kind::Refund => payments::refund(&context)?,
            Kind::CheckoutSession => billing::checkout_session(&context)?,
            Kind::Invoice => billing::invoice(&context)?,
            Kind::Subscription => billing::subscription(&context)?,
        };
        Ok(Extraction::Payments(payment.into_iter().collect()))
    }
}

/// What every object extractor needs from the event around the object.
pub(super) struct EventContext<'a> {
    pub(super) event_type: &'a str,
    pub(super) object: StripeObject<'a>,
    pub(super) created_at: Option<DateTime<Utc>>,
}

impl EventContext<'_> {
    /// Returns the part of the event type after its object prefix, e.g. `payment_failed`.
    pub(super) fn action(&self) -> &str {
        self.event_type
            .rsplit_once('.')
            .map_or(self.event_type, |(_, action)| action)
    }

    /// Builds a payment event with the fields every object shares.
    pub(super) fn payment(&self, payment_id: String, status: &str) -> NewPaymentEvent {
        NewPaymentEvent {
            payment_id,
            event_type: self.event_type.to_string(),
            status: status.to_string(),
            status_raw: self.object.text("status").map(str::to_string),
            amount: None,
            customer_id: self.object.id("customer"),
            order_id: self.object.metadata_order_id(),
            transaction_id: None,
            metadata: None,
            provider_created_at: self.created_at,
        }
    }
}

/// A Stripe API object (`data.object` or one nested in it).
#[derive(Debug, Clone, Copy)]
pub(super) struct StripeObject<'a>(pub(super) &'a Value);

impl<'a> StripeObject<'a> {
    pub(super) fn get(&self, path: &[&str]) -> Option<&'a Value> {
        at(self.0, path)
    }

    pub(super) fn text(&self, key: &str) -> Option<&'a str> {
        text(self.0, &[key])
    }

    pub(super) fn text_at(&self, path: &[&str]) -> Option<&'a str> {
        text(self.0, path)
    }

    /// Returns the id at `key`, whether Stripe sent it as a string or as an expanded object.
    pub(super) fn id(&self, key: &str) -> Option<String> {
        expandable_id(self.get(&[key])?)
    }

    /// Returns the object's own `id`, or `MissingField` when it has none.
    pub(super) fn own_id(&self) -> Result<String, ExtractError> {
        self.text("id")
            .map(str::to_string)
            .ok_or_else(|| missing("data.object.id"))
    }

    pub(super) fn metadata_order_id(&self) -> Option<String> {
        text(self.0, &["metadata", "order_id"]).map(str::to_string)
    }

    /// Reads an integer amount in minor units at `key` with the object's `currency`.
    pub(super) fn money(&self, key: &str) -> Result<Money, ExtractError> {
        let minor = self.minor_units(key)?;
        self.with_currency(minor)
    }

    /// Reads an integer amount at `key` without its currency.
    pub(super) fn minor_units(&self, key: &str) -> Result<i64, ExtractError> {
        let field = format!("data.object.{key}");
        let value = self.get(&[key]).ok_or_else(|| missing(&field))?;
        value.as_i64().ok_or_else(|| ExtractError::InvalidField {
            field,
            reason: format!("expected an integer number of minor units, got {value}"),
        })
    }

    /// Attaches the object's `currency` to an amount in Stripe minor units.
    pub(super) fn with_currency(&self, minor: i64) -> Result<Money, ExtractError> {
        let code = self
            .text("currency")
            .ok_or_else(|| missing("data.object.currency"))?;
        Money::from_stripe_minor(minor, code).map_err(|source| ExtractError::Money {
            field: "data.object.currency".to_string(),
            source,
        })
    }
}

/// Returns the id of an expandable field: a string id or an object with an `id`.
pub(super) fn expandable_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Object(_) => text(value, &["id"]).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
