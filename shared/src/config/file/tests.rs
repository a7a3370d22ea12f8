use std::path::Path;

use super::*;

#[test]
fn unknown_key_is_rejected() {
    let error = FileConfig::parse("[stripe]\nsecretz = [\"x\"]\n").unwrap_err();

    assert!(error.contains("secretz"), "{error}");
}

#[test]
fn stripe_section_is_parsed() {
    let config =
        FileConfig::parse("[stripe]\nsecrets = [\"whsec_a\"]\ntolerance_seconds = 60\n").unwrap();

    let stripe = config.stripe.unwrap();
    assert_eq!(stripe.secrets, vec![Secret::new("whsec_a")]);
    assert_eq!(stripe.tolerance_seconds, Some(60));
}

const ALL_SECTIONS: &str = r#"
[stripe]
secrets = ["whsec_default_inline"]

[[stripe.endpoints]]
name = "eu"
secrets_env = "EU_STRIPE"

[[paypal]]
mode = "live"
webhook_id = "WH0001"
trust_store_file = "roots.pem"

[[paypal]]
name = "eu"
mode = "sandbox"
webhook_id = "WH0002"
verification = "postback"
client_id = "client-1"
client_secret = "paypal_client_secret_inline"

[[standard_webhooks]]
name = "resend"
secrets_file = "/run/secrets/resend"

[[hmac]]
name = "shopify"
config_file = "shopify.toml"
secrets = ["shopify_secret_inline"]
"#;

#[test]
fn every_section_is_parsed() {
    let config = FileConfig::parse(ALL_SECTIONS).unwrap();

    let stripe = config.stripe.as_ref().unwrap();
    assert_eq!(stripe.endpoints.len(), 1);
    assert_eq!(
        stripe.endpoints[0].secrets_env.as_deref(),
        Some("EU_STRIPE")
    );
    assert_eq!(config.paypal.len(), 2);
    assert_eq!(config.paypal[0].mode, PayPalMode::Live);
    assert_eq!(
        config.paypal[0].verification,
        PayPalVerification::Certificate
    );
    assert_eq!(config.paypal[1].verification, PayPalVerification::Postback);
    assert_eq!(config.paypal[1].name.as_deref(), Some("eu"));
    assert_eq!(config.standard_webhooks[0].name, "resend");
    assert_eq!(config.hmac[0].name, "shopify");
    assert!(config.hmac[0].scheme.is_none());
}

#[test]
fn debug_output_hides_inline_secrets() {
    let config = FileConfig::parse(ALL_SECTIONS).unwrap();

    let debug = format!("{config:?}");

    for secret in [
        "whsec_default_inline",
        "paypal_client_secret_inline",
        "shopify_secret_inline",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
}

#[test]
fn relative_paths_follow_config_directory() {
    let mut config = FileConfig::parse(ALL_SECTIONS).unwrap();

    config.resolve_paths(Path::new("/etc/payhook"));

    assert_eq!(
        config.paypal[0].trust_store_file.as_deref(),
        Some(Path::new("/etc/payhook/roots.pem"))
    );
    assert_eq!(
        config.hmac[0].config_file.as_deref(),
        Some(Path::new("/etc/payhook/shopify.toml"))
    );
    assert_eq!(
        config.standard_webhooks[0].secrets_file.as_deref(),
        Some(Path::new("/run/secrets/resend"))
    );
}

#[test]
fn unknown_keys_rejected_in_every_section() {
    let cases = [
        "[[stripe.endpoints]]\nname = \"eu\"\nsecret = \"x\"\n",
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"W\"\nwebhookid = \"W\"\n",
        "[[standard_webhooks]]\nname = \"s\"\nsecret = \"x\"\n",
        "[[hmac]]\nname = \"h\"\nsecret = \"x\"\n",
        "[[hmac]]\nname = \"h\"\n[hmac.scheme]\nsignature_headr = \"X\"\n",
        "[paypals]\n",
    ];
    for text in cases {
        assert!(FileConfig::parse(text).is_err(), "{text}");
    }
}

#[test]
fn invalid_paypal_values_rejected() {
    let bad_mode = FileConfig::parse("[[paypal]]\nmode = \"prod\"\nwebhook_id = \"W\"\n");
    let bad_verification = FileConfig::parse(
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"W\"\nverification = \"local\"\n",
    );

    assert!(bad_mode.unwrap_err().contains("prod"));
    assert!(bad_verification.unwrap_err().contains("local"));
}

#[test]
fn secret_sources_combine_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    std::fs::write(&file, "# rotated in June\nfrom_file_1\n\nfrom_file_2\n").unwrap();
    let inline = [Secret::new(" inline "), Secret::new("")];
    let sources = SecretSources {
        inline: &inline,
        file: Some(&file),
        env: Some("ROTATION"),
    };
    let lookup = |name: &str| (name == "ROTATION").then(|| "env_1, ,env_2".to_string());

    let secrets = sources.collect(&lookup).unwrap();

    let exposed: Vec<&str> = secrets.iter().map(Secret::expose).collect();
    assert_eq!(
        exposed,
        ["inline", "from_file_1", "from_file_2", "env_1", "env_2"]
    );
}

#[test]
fn unset_secrets_env_is_an_error() {
    let sources = SecretSources {
        inline: &[],
        file: None,
        env: Some("PAYHOOK_TEST_UNSET_VARIABLE"),
    };

    let error = sources.collect(&|_| None).unwrap_err();

    assert!(
        error.to_string().contains("PAYHOOK_TEST_UNSET_VARIABLE"),
        "{error}"
    );
}

/// Returns the body of every ```toml block of a Markdown text.
fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn documented_examples_parse() {
    let guide = include_str!("../../../../docs/PROVIDERS.md");

    let blocks = toml_blocks(guide);

    assert_eq!(blocks.len(), 4);
    for block in &blocks {
        if let Err(error) = FileConfig::parse(block) {
            panic!("{error}\n{block}");
        }
    }
    let full = FileConfig::parse(blocks.last().unwrap()).unwrap();
    assert_eq!(full.stripe.unwrap().endpoints.len(), 1);
    assert_eq!(full.paypal.len(), 2);
    assert_eq!(full.standard_webhooks.len(), 1);
    assert_eq!(full.hmac.len(), 2);
}
