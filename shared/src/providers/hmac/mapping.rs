//! Payment extraction for config-defined providers: JSON pointers into the event.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::source::{json_text, parse_time};
use crate::model::NewPaymentEvent;
use crate::money::{Money, MoneyError};
use crate::providers::{ConfigError, ExtractError, Extraction, Handler};

/// JSON pointers that locate a payment's facts in a provider's events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacPaymentMapping {
    pub payment_id: String,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub amount_format: AmountFormat,
    #[serde(default)]
    pub currency: Option<String>,
    /// The provider's own status value, stored beside the normalized one.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// Normalized status per event type, e.g. `"order.paid" = "succeeded"`. Event types not
    /// listed carry no payment facts and are ignored.
    pub event_statuses: BTreeMap<String, String>,
    /// Normalized status per raw status value (read through `status`), for providers whose
    /// one event type covers several outcomes. It takes precedence over `event_statuses`.
    #[serde(default)]
    pub status_values: BTreeMap<String, String>,
}

/// Representation of the amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountFormat {
    /// An integer (JSON number or digit string) in the currency's ISO minor unit.
    #[default]
    MinorUnits,
    /// A decimal string in major units, e.g. `"19.99"`.
    Decimal,
}

/// [`Handler`] for a config-defined provider.
#[derive(Debug, Clone)]
pub struct ConfigHandler {
    provider: String,
    mapping: Option<HmacPaymentMapping>,
}

impl ConfigHandler {
    /// Validates the mapping's pointers; without a mapping every event is ignored.
    pub fn new(provider: &str, mapping: Option<HmacPaymentMapping>) -> Result<Self, ConfigError> {
        if let Some(mapping) = &mapping {
            validate(mapping)?;
        }
        Ok(ConfigHandler {
            provider: provider.to_string(),
            mapping,
        })
    }
}

fn validate(mapping: &HmacPaymentMapping) -> Result<(), ConfigError> {
    let pointers = [
        ("payment.payment_id", Some(&mapping.payment_id)),
        ("payment.amount", mapping.amount.as_ref()),
        ("payment.currency", mapping.currency.as_ref()),
        ("payment.status", mapping.status.as_ref()),
        ("payment.customer_id", mapping.customer_id.as_ref()),
        ("payment.order_id", mapping.order_id.as_ref()),
        ("payment.transaction_id", mapping.transaction_id.as_ref()),
        ("payment.created_at", mapping.created_at.as_ref()),
    ];
    for (field, pointer) in pointers {
        if let Some(pointer) = pointer.filter(|pointer| !pointer.starts_with('/')) {
            return Err(ConfigError::invalid(
                field,
                format!("{pointer:?} is not a JSON pointer such as /data/id"),
            ));
        }
    }
    if mapping.amount.is_some() != mapping.currency.is_some() {
        return Err(ConfigError::invalid(
            "payment.amount",
            "amount and currency must be set together",
        ));
    }
    if !mapping.status_values.is_empty() && mapping.status.is_none() {
        return Err(ConfigError::invalid(
            "payment.status_values",
            "status_values needs the status pointer",
        ));
    }
    if mapping.event_statuses.is_empty() {
        return Err(ConfigError::invalid(
            "payment.event_statuses",
            "map at least one event type to a status",
        ));
    }
    Ok(())
}

fn optional_text(json: &Value, pointer: Option<&String>) -> Option<String> {
    json_text(json.pointer(pointer?)?).filter(|text| !text.is_empty())
}

fn required_text(json: &Value, pointer: &str) -> Result<String, ExtractError> {
    optional_text(json, Some(&pointer.to_string())).ok_or_else(|| ExtractError::MissingField {
        field: pointer.to_string(),
    })
}

fn read_amount(json: &Value, mapping: &HmacPaymentMapping) -> Result<Option<Money>, ExtractError> {
    let (Some(amount), Some(currency)) = (&mapping.amount, &mapping.currency) else {
        return Ok(None);
    };
    let code = required_text(json, currency)?;
    let money_error = |source: MoneyError| ExtractError::Money {
        field: amount.clone(),
        source,
    };
    let money = match mapping.amount_format {
        AmountFormat::MinorUnits => {
            let text = required_text(json, amount)?;
            let minor: i64 = text.parse().map_err(|_| ExtractError::InvalidField {
                field: amount.clone(),
                reason: format!("{text:?} is not an integer amount in minor units"),
            })?;
            Money::from_iso_minor(minor, &code).map_err(money_error)?
        }
        AmountFormat::Decimal => {
            let text = json
                .pointer(amount)
                .and_then(Value::as_str)
                .ok_or_else(|| ExtractError::MissingField {
                    field: amount.clone(),
                })?;
            Money::parse_decimal(text, &code).map_err(money_error)?
        }
    };
    Ok(Some(money))
}

impl Handler for ConfigHandler {
    fn computes_only(&self) -> bool {
        true
    }

    fn extract(&self, event_type: &str, payload: &str) -> Result<Extraction, ExtractError> {
        let Some(mapping) = &self.mapping else {
            return Ok(Extraction::Ignored(format!(
                "no payment mapping configured for provider {}",
                self.provider
            )));
        };
        let Some(event_status) = mapping.event_statuses.get(event_type) else {
            return Ok(Extraction::Ignored(format!(
                "event type {event_type} is not in the payment mapping of provider {}",
                self.provider
            )));
        };
        let json: Value =
            serde_json::from_str(payload).map_err(|e| ExtractError::InvalidJson(e.to_string()))?;
        let status_raw = optional_text(&json, mapping.status.as_ref());
        let status = status_raw
            .as_ref()
            .and_then(|raw| mapping.status_values.get(raw))
            .unwrap_or(event_status);
        let payment = NewPaymentEvent {
            payment_id: required_text(&json, &mapping.payment_id)?,
            event_type: event_type.to_string(),
            status: status.clone(),
            status_raw,
            amount: read_amount(&json, mapping)?,
            customer_id: optional_text(&json, mapping.customer_id.as_ref()),
            order_id: optional_text(&json, mapping.order_id.as_ref()),
            transaction_id: optional_text(&json, mapping.transaction_id.as_ref()),
            metadata: None,
            provider_created_at: optional_text(&json, mapping.created_at.as_ref())
                .and_then(|text| parse_time(&text)),
        };
        Ok(Extraction::Payments(vec![payment]))
    }
}
