//! JSON access shared by the payment extractors.

use serde_json::Value;

use super::ExtractError;

/// Parses a stored payload that must be a JSON object.
pub(crate) fn parse_object(payload: &str) -> Result<Value, ExtractError> {
    let value: Value =
        serde_json::from_str(payload).map_err(|e| ExtractError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ExtractError::InvalidJson(
            "the top-level value is not an object".to_string(),
        ));
    }
    Ok(value)
}

/// Follows object keys from `value`; `None` when a key is missing or a value is `null`.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.get(key)?;
    }
    (!current.is_null()).then_some(current)
}

/// Returns the non-empty string at `path`.
pub(crate) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str().filter(|text| !text.is_empty())
}

/// Returns the object at `path`, or `MissingField` naming `field`.
pub(crate) fn require_object<'a>(
    value: &'a Value,
    path: &[&str],
    field: &str,
) -> Result<&'a Value, ExtractError> {
    at(value, path)
        .filter(|found| found.is_object())
        .ok_or_else(|| missing(field))
}

pub(crate) fn missing(field: &str) -> ExtractError {
    ExtractError::MissingField {
        field: field.to_string(),
    }
}
