//! Errors in a provider's configuration, reported at startup rather than per request.

use thiserror::Error;

/// Reasons a verifier or handler cannot be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("no signing secret is configured; set at least one")]
    NoSecrets,
    #[error("signing secret #{index} is invalid: {reason}")]
    InvalidSecret { index: usize, reason: String },
    #[error("setting {field} is invalid: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for one named setting.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
