//! The `metadata` column of a payment event: a small JSON object of extra facts.

use serde_json::{Map, Value};

/// Maximum length of the serialized object, as the `PaymentEvents.Metadata` column allows.
pub(crate) const MAX_METADATA_CHARS: usize = 4000;

/// Maximum length of one string value, so a single long provider message cannot crowd out
/// the other facts.
const MAX_VALUE_CHARS: usize = 500;

/// Collects facts in priority order; entries added first survive truncation.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    entries: Vec<(&'static str, Value)>,
}

impl Metadata {
    pub(crate) fn new() -> Self {
        Metadata::default()
    }

    /// Adds a string fact; `None` and empty strings are skipped, long strings are cut.
    pub(crate) fn text(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            let cut: String = value.chars().take(MAX_VALUE_CHARS).collect();
            self.entries.push((key, Value::String(cut)));
        }
        self
    }

    /// Adds a JSON scalar fact; `None` and `null` are skipped.
    pub(crate) fn value(&mut self, key: &'static str, value: Option<&Value>) -> &mut Self {
        match value {
            Some(Value::String(text)) => self.text(key, Some(text)),
            Some(value @ (Value::Bool(_) | Value::Number(_))) => {
                self.entries.push((key, value.clone()));
                self
            }
            _ => self,
        }
    }

    /// Serializes the facts; `None` when there are none. Entries are dropped from the end
    /// until the object fits in [`MAX_METADATA_CHARS`].
    pub(crate) fn finish(mut self) -> Option<String> {
        loop {
            if self.entries.is_empty() {
                return None;
            }
            let object: Map<String, Value> = self
                .entries
                .iter()
                .map(|(key, value)| ((*key).to_string(), value.clone()))
                .collect();
            let text = Value::Object(object).to_string();
            if text.chars().count() <= MAX_METADATA_CHARS {
                return Some(text);
            }
            self.entries.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_skips_empty_values() {
        let mut metadata = Metadata::new();
        metadata
            .text("absent", None)
            .text("empty", Some(""))
            .value("null", Some(&Value::Null))
            .value("object", Some(&serde_json::json!({"a": 1})));

        assert_eq!(metadata.finish(), None);
    }

    #[test]
    fn metadata_serializes_scalars() {
        let mut metadata = Metadata::new();
        metadata
            .text("failure_code", Some("card_declined"))
            .value("attempt_count", Some(&serde_json::json!(2)))
            .value("paid", Some(&Value::Bool(false)));

        let text = metadata.finish().expect("three facts");

        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["failure_code"], "card_declined");
        assert_eq!(parsed["attempt_count"], 2);
        assert_eq!(parsed["paid"], false);
    }

    #[test]
    fn metadata_stays_under_limit() {
        let long = "x".repeat(10_000);
        let keys = [
            "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11",
        ];
        let mut metadata = Metadata::new();
        for key in keys {
            metadata.text(key, Some(&long));
        }

        let text = metadata.finish().expect("some facts fit");

        assert!(text.chars().count() <= MAX_METADATA_CHARS, "{}", text.len());
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["k00"].as_str().map(str::len), Some(MAX_VALUE_CHARS));
        assert!(
            parsed.get("k11").is_none(),
            "last entries are dropped first"
        );
    }
}
