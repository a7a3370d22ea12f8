use std::collections::HashMap;
use std::sync::Arc;

use clap::Parser;

use super::{BuildOptions, build_with, endpoint_route};
use crate::app::AppConfig;
use crate::config::Settings;
use crate::config::file::FileConfig;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

/// A valid Standard Webhooks secret: `whsec_` and the base64 of 24 bytes.
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn app_config(args: &[&str], toml_text: &str) -> AppConfig {
    let mut all = vec!["payhook"];
    all.extend_from_slice(args);
    AppConfig {
        settings: Cli::parse_from(all).settings,
        file: FileConfig::parse(toml_text).unwrap(),
    }
}

fn options(env: &[(&str, &str)]) -> BuildOptions {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    BuildOptions {
        env: Some(Arc::new(move |name: &str| env.get(name).cloned())),
        ..BuildOptions::default()
    }
}

fn build_error(args: &[&str], toml_text: &str) -> String {
    let error = build_with(&app_config(args, toml_text), &options(&[])).unwrap_err();
    format!("{error:#}")
}

fn route_names(args: &[&str], toml_text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let providers = build_with(&app_config(args, toml_text), &options(env)).unwrap();
    let mut names: Vec<String> = providers.into_iter().map(|p| p.name).collect();
    names.sort();
    names
}

#[test]
fn endpoint_names_become_routes() {
    assert_eq!(endpoint_route("paypal", None), "paypal");
    assert_eq!(endpoint_route("paypal", Some("paypal")), "paypal");
    assert_eq!(endpoint_route("paypal", Some("eu")), "paypal/eu");
}

#[test]
fn every_configured_route_is_built() {
    let toml_text = format!(
        r#"
[stripe]
[[stripe.endpoints]]
name = "eu"
secrets_env = "STRIPE_EU"

[[standard_webhooks]]
name = "resend"
secrets = ["{STANDARD_SECRET}"]

[[hmac]]
name = "github/app"
secrets = ["gh"]
[hmac.scheme]
signature_header = "X-Hub-Signature-256"
prefix = "sha256="
algorithm = "hmac-sha256"
encoding = "hex"
message = "{{body}}"
event_id = "header:X-GitHub-Delivery"
event_type = "header:X-GitHub-Event"
"#
    );
    let args = [
        "--stripe-secrets",
        "whsec_default",
        "--paypal-webhook-id",
        "WH7PH0001",
        "--standard-webhooks-secrets",
        STANDARD_SECRET,
    ];

    let names = route_names(&args, &toml_text, &[("STRIPE_EU", "whsec_eu")]);

    assert_eq!(
        names,
        [
            "github/app",
            "paypal",
            "resend",
            "standard",
            "stripe",
            "stripe/eu"
        ]
    );
}

#[test]
fn nothing_configured_builds_no_route() {
    assert!(route_names(&[], "", &[]).is_empty());
}

#[test]
fn duplicate_route_names_both_sources() {
    let toml_text =
        format!("[[standard_webhooks]]\nname = \"standard\"\nsecrets = [\"{STANDARD_SECRET}\"]\n");

    let error = build_error(
        &["--standard-webhooks-secrets", STANDARD_SECRET],
        &toml_text,
    );

    assert!(error.contains("[[standard_webhooks]] #1"), "{error}");
    assert!(
        error.contains("PAYHOOK_STANDARD_WEBHOOKS_SECRETS"),
        "{error}"
    );
    assert!(error.contains("already defined"), "{error}");
}

#[test]
fn duplicate_paypal_default_route_rejected() {
    let toml_text = "[[paypal]]\nmode = \"live\"\nwebhook_id = \"WH1\"\n\
                     [[paypal]]\nname = \"paypal\"\nmode = \"sandbox\"\nwebhook_id = \"WH2\"\n";

    let error = build_error(&[], toml_text);

    assert!(error.contains("[[paypal]] #2"), "{error}");
    assert!(error.contains("\"paypal\""), "{error}");
}

#[test]
fn invalid_route_names_rejected() {
    for name in ["Shop", "a/b/c", "", "shop/", "../admin", "shop hook"] {
        let toml_text =
            format!("[[standard_webhooks]]\nname = {name:?}\nsecrets = [\"{STANDARD_SECRET}\"]\n");

        let error = build_error(&[], &toml_text);

        assert!(
            error.contains("[[standard_webhooks]] #1"),
            "{name}: {error}"
        );
        assert!(error.contains("is invalid"), "{name}: {error}");
    }
}

#[test]
fn invalid_paypal_endpoint_name_rejected() {
    let error = build_error(
        &[],
        "[[paypal]]\nname = \"EU\"\nmode = \"live\"\nwebhook_id = \"WH1\"\n",
    );

    assert!(error.contains("paypal/EU"), "{error}");
}

#[test]
fn bad_base64_secret_names_section() {
    let toml_text = "[[standard_webhooks]]\nname = \"resend\"\nsecrets = [\"whsec_not*base64\"]\n";

    let error = build_error(&[], toml_text);

    assert!(
        error.contains("[[standard_webhooks]] #1 (name \"resend\")"),
        "{error}"
    );
    assert!(error.contains("not base64"), "{error}");
    assert!(!error.contains("not*base64"), "secret leaked: {error}");
}

#[test]
fn section_without_secret_rejected() {
    let error = build_error(&[], "[[standard_webhooks]]\nname = \"resend\"\n");

    assert!(error.contains("no signing secret"), "{error}");
}

#[test]
fn hmac_needs_exactly_one_scheme_source() {
    let missing = build_error(&[], "[[hmac]]\nname = \"h\"\nsecrets = [\"s\"]\n");
    let both = build_error(
        &[],
        "[[hmac]]\nname = \"h\"\nsecrets = [\"s\"]\nconfig_file = \"x.toml\"\n\
         [hmac.scheme]\nsignature_header = \"X\"\nalgorithm = \"hmac-sha256\"\n\
         encoding = \"hex\"\nmessage = \"{body}\"\nevent_id = \"/id\"\nevent_type = \"/t\"\n",
    );

    assert!(missing.contains("missing [hmac.scheme]"), "{missing}");
    assert!(both.contains("not both"), "{both}");
}

#[test]
fn paypal_keys_of_other_mode_rejected() {
    let certificate = build_error(
        &[],
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"WH1\"\nclient_id = \"c\"\n",
    );
    let postback = build_error(
        &[],
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"WH1\"\nverification = \"postback\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\ntolerance_seconds = 60\n",
    );
    let no_secret = build_error(
        &[],
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"WH1\"\nverification = \"postback\"\n\
         client_id = \"c\"\n",
    );

    assert!(
        certificate.contains("client_id is only used"),
        "{certificate}"
    );
    assert!(
        postback.contains("tolerance_seconds is only used"),
        "{postback}"
    );
    assert!(
        no_secret.contains("exactly one client secret"),
        "{no_secret}"
    );
}

#[test]
fn invalid_paypal_webhook_id_rejected() {
    let error = build_error(&["--paypal-webhook-id", "not-an-id!"], "");

    assert!(error.contains("PAYHOOK_PAYPAL_WEBHOOK_ID"), "{error}");
    assert!(error.contains("webhook_id"), "{error}");
}

#[test]
fn missing_secrets_env_names_variable() {
    let error = build_error(
        &[],
        "[[hmac]]\nname = \"h\"\nsecrets_env = \"PAYHOOK_TEST_HMAC\"\n[hmac.scheme]\n\
         signature_header = \"X\"\nalgorithm = \"hmac-sha256\"\nencoding = \"hex\"\n\
         message = \"{body}\"\nevent_id = \"/id\"\nevent_type = \"/t\"\n",
    );

    assert!(error.contains("[[hmac]] #1"), "{error}");
    assert!(error.contains("PAYHOOK_TEST_HMAC"), "{error}");
}
