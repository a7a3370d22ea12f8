//! `payhook-ingest`: the webhook gateway. With `PAYHOOK_AMQP_URL` it publishes each stored
//! event to RabbitMQ for `payhook-consumer`; without a broker it also runs the workers.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::secret::Secret;
use payhook::telemetry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "payhook-ingest",
    version,
    about = "Receives, verifies and stores payment webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Run,
    /// Apply database migrations and exit.
    Migrate,
    /// Sign a JSON file as a Stripe event with the first configured secret and post it.
    SendTest {
        /// JSON file with a Stripe event (needs "id" and "type").
        file: PathBuf,
        /// Webhook URL to post to [default: the Stripe route of PAYHOOK_LISTEN on this host].
        #[arg(long)]
        url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cli = Cli::parse();
    cli.settings
        .apply_aliases(|name| std::env::var(name).ok())?;
    // Dropped when main returns, which flushes the spans still buffered for export.
    let _telemetry = telemetry::init_telemetry(cli.settings.log_format, "payhook-ingest")?;

    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.settings).await,
        Command::Migrate => {
            let mut settings = cli.settings;
            settings.migrate_on_start = true;
            app::open_store(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::SendTest { file, url } => {
            let url = url.unwrap_or_else(|| {
                let listen = cli.settings.listen;
                let host = if listen.ip().is_unspecified() {
                    std::net::IpAddr::from([127, 0, 0, 1])
                } else {
                    listen.ip()
                };
                let address = std::net::SocketAddr::new(host, listen.port());
                format!("http://{address}/api/webhooks/stripe")
            });
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let secret: Secret = cli
                .settings
                .stripe_secrets()?
                .into_iter()
                .next()
                .context("no Stripe secret configured; set PAYHOOK_STRIPE_SECRETS")?;
            let (status, body) = payhook::send::send_stripe_event(&url, &secret, body).await?;
            println!("{status} {body}");
            anyhow::ensure!(
                (200..300).contains(&status),
                "the service answered {status}"
            );
            Ok(())
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let public = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot bind the public listener to {}", settings.listen))?;
    let admin = TcpListener::bind(settings.admin_listen)
        .await
        .with_context(|| {
            format!(
                "cannot bind the admin listener to {}",
                settings.admin_listen
            )
        })?;
    let config = AppConfig::load(settings)?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            app::shutdown_signal().await;
            shutdown.cancel();
        }
    });
    if config.settings.amqp_url.is_some() {
        app::run_ingest_with_broker(config, public, admin, shutdown).await
    } else {
        app::run_embedded(config, public, admin, shutdown).await
    }
}
