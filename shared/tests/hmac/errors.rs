use payhook::providers::ConfigError;
use payhook::providers::hmac::{HmacSchemeConfig, HmacVerifier};
use payhook::secret::Secret;

use crate::*;

fn build(scheme: HmacSchemeConfig) -> Result<HmacVerifier, ConfigError> {
    HmacVerifier::new(scheme, vec![Secret::new("s3cret")])
}

fn field_of(result: Result<HmacVerifier, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid setting, got {other:?}"),
    }
}

#[test]
fn every_example_config_builds() {
    for example in [SHOPIFY, PADDLE, RAZORPAY, SQUARE, LEMONSQUEEZY, GITHUB] {
        let provider = config(example);

        assert!(build(provider.scheme).is_ok());
    }
}

#[test]
fn unsigned_timestamp_rejected() {
    let mut scheme = config(PADDLE).scheme;
    scheme.message = "{body}".to_string();

    assert_eq!(field_of(build(scheme)), "message");
}

#[test]
fn timestamp_without_source_rejected() {
    let mut scheme = config(SHOPIFY).scheme;
    scheme.message = "{timestamp}.{body}".to_string();

    assert_eq!(field_of(build(scheme)), "message");
}

#[test]
fn tolerance_without_timestamp_rejected() {
    let mut scheme = config(SHOPIFY).scheme;
    scheme.tolerance_seconds = Some(300);

    assert_eq!(field_of(build(scheme)), "tolerance_seconds");
}

#[test]
fn url_placeholder_needs_url() {
    let mut scheme = config(SQUARE).scheme;
    scheme.url = None;

    assert_eq!(field_of(build(scheme)), "url");
}

#[test]
fn bad_header_and_source_rejected() {
    let mut bad_header = config(SHOPIFY).scheme;
    bad_header.signature_header = "X Shopify".to_string();
    let mut bad_source = config(SHOPIFY).scheme;
    bad_source.event_id = "id".to_string();

    assert_eq!(field_of(build(bad_header)), "signature_header");
    assert_eq!(field_of(build(bad_source)), "event_id");
}

#[test]
fn unknown_toml_keys_rejected() {
    let text = SHOPIFY.replace("encoding = \"base64\"", "encodng = \"base64\"");
    let parsed: Result<payhook::providers::hmac::HmacProviderConfig, _> = toml::from_str(&text);

    assert!(parsed.is_err());
}

#[test]
fn secrets_checked_at_startup() {
    let mut hex = config(SHOPIFY).scheme;
    hex.key_encoding = payhook::providers::hmac::KeyEncoding::Hex;

    let none = HmacVerifier::new(config(SHOPIFY).scheme, Vec::new());
    let empty = HmacVerifier::new(config(SHOPIFY).scheme, vec![Secret::new("")]);
    let not_hex = HmacVerifier::new(hex, vec![Secret::new("xyz")]);

    assert!(matches!(none, Err(ConfigError::NoSecrets)));
    assert!(matches!(
        empty,
        Err(ConfigError::InvalidSecret { index: 0, .. })
    ));
    assert!(matches!(
        not_hex,
        Err(ConfigError::InvalidSecret { index: 0, .. })
    ));
}
