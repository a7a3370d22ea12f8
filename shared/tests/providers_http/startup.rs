//! A misconfigured provider stops the service before it listens, with a message that names
//! the configuration section.

use payhook::app::{self, AppConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::{settings, write_config};

/// Starts the real service with `toml_text` and returns its startup error.
async fn startup_error(toml_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(dir.path(), toml_text);
    let config = match AppConfig::load(settings(dir.path(), &config_path, &[])) {
        Ok(config) => config,
        Err(error) => return format!("{error:#}"),
    };
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let run = app::run_embedded(config, public, admin, shutdown.clone());
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .expect("startup finished");
    shutdown.cancel();
    format!("{:#}", result.expect_err("startup must fail"))
}

#[tokio::test]
async fn bad_base64_secret_stops_startup() {
    let error =
        startup_error("[[standard_webhooks]]\nname = \"resend\"\nsecrets = [\"whsec_%%%\"]\n")
            .await;

    assert!(
        error.contains("[[standard_webhooks]] #1 (name \"resend\")"),
        "{error}"
    );
    assert!(error.contains("not base64"), "{error}");
}

#[tokio::test]
async fn bad_hmac_key_encoding_stops_startup() {
    let error = startup_error(
        "[[hmac]]\nname = \"acme\"\nsecrets = [\"not base64!\"]\n[hmac.scheme]\n\
         signature_header = \"X-Sig\"\nalgorithm = \"hmac-sha256\"\nencoding = \"hex\"\n\
         key_encoding = \"base64\"\nmessage = \"{body}\"\nevent_id = \"/id\"\n\
         event_type = \"/type\"\n",
    )
    .await;

    assert!(error.contains("[[hmac]] #1 (name \"acme\")"), "{error}");
    assert!(error.contains("secret #0 is invalid"), "{error}");
}

#[tokio::test]
async fn duplicate_route_stops_startup() {
    let secret = "whsec_cGF5aG9vayBkdXBsaWNhdGUgdGVzdA==";
    let error = startup_error(&format!(
        "[[standard_webhooks]]\nname = \"hooks\"\nsecrets = [\"{secret}\"]\n\
         [[standard_webhooks]]\nname = \"hooks\"\nsecrets = [\"{secret}\"]\n"
    ))
    .await;

    assert!(error.contains("[[standard_webhooks]] #2"), "{error}");
    assert!(
        error.contains("already defined by [[standard_webhooks]] #1"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_toml_key_stops_startup() {
    let error = startup_error(
        "[[paypal]]\nmode = \"live\"\nwebhook_id = \"WH1\"\ncert_host = \"evil.example\"\n",
    )
    .await;

    assert!(error.contains("payhook.toml"), "{error}");
    assert!(error.contains("cert_host"), "{error}");
}
