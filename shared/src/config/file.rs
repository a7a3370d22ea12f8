//! The optional TOML configuration file (`PAYHOOK_CONFIG`). Unknown keys are rejected so
//! that a typo fails at start-up instead of silently disabling a provider.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// Contents of the TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub stripe: Option<StripeSection>,
}

/// `[stripe]`: secrets in addition to `PAYHOOK_STRIPE_SECRETS`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSection {
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub secrets_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
}

impl FileConfig {
    /// Reads and parses the file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        FileConfig::parse(&text).map_err(|reason| ConfigError::File {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    #[test]
    fn unknown_key_is_rejected() {
        let error = FileConfig::parse("[stripe]\nsecretz = [\"x\"]\n").unwrap_err();

        assert!(error.contains("secretz"), "{error}");
    }

    #[test]
    fn stripe_section_is_parsed() {
        let config =
            FileConfig::parse("[stripe]\nsecrets = [\"whsec_a\"]\ntolerance_seconds = 60\n")
                .unwrap();

        let stripe = config.stripe.unwrap();
        assert_eq!(stripe.secrets, vec!["whsec_a".to_string()]);
        assert_eq!(stripe.tolerance_seconds, Some(60));
    }
}
