//! `payhook-consumer`: queue workers and operator commands.

use clap::{Parser, Subcommand};
use payhook::app;
use payhook::config::Settings;
use payhook::telemetry;

#[derive(Parser)]
#[command(
    name = "payhook-consumer",
    version,
    about = "Processes stored payment webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cli = Cli::parse();
    cli.settings
        .apply_aliases(|name| std::env::var(name).ok())?;
    telemetry::init_logging(cli.settings.log_format);

    match cli.command {
        Command::Migrate => {
            let mut settings = cli.settings;
            settings.migrate_on_start = true;
            app::open_store(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
