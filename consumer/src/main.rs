//! `payhook-consumer`: RabbitMQ workers and operator commands.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use payhook::app::{self, AppConfig};
use payhook::config::Settings;
use payhook::config::durations::parse_duration;
use payhook::telemetry;
use payhook::worker::operator::{OperatorError, OperatorFilter, OperatorReport};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "payhook-consumer",
    version,
    about = "Processes stored payment webhooks from RabbitMQ"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the work queue and process events until SIGTERM or Ctrl-C.
    Run,
    /// Apply database migrations and exit.
    Migrate,
    /// Move dead letters back to the work queue and reset their rows' attempt counts.
    ReplayDeadLetters(Selection),
    /// Reset failed and dead events to pending with attempt count 0 and publish them.
    RetryFailed(Selection),
}

/// Which events an operator command moves.
#[derive(clap::Args)]
struct Selection {
    /// Only events of this provider route, e.g. stripe or paypal/eu.
    #[arg(long)]
    provider: Option<String>,
    /// Only events of this type, e.g. payment_intent.succeeded.
    #[arg(long)]
    event_type: Option<String>,
    /// Only events at least this old, e.g. 1h (units ms, s, m, h). Dead letters are aged
    /// from when they were dead-lettered, failed events from when they were stored.
    #[arg(long, value_parser = parse_duration)]
    older_than: Option<Duration>,
    /// Only events at most this old, e.g. 10m (units ms, s, m, h).
    #[arg(long, value_parser = parse_duration)]
    newer_than: Option<Duration>,
    /// Maximum number of events to move.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// List the events that would move, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

impl Selection {
    fn filter(&self) -> OperatorFilter {
        OperatorFilter {
            provider: self.provider.clone(),
            event_type: self.event_type.clone(),
            older_than: self.older_than,
            newer_than: self.newer_than,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cli = Cli::parse();
    cli.settings
        .apply_aliases(|name| std::env::var(name).ok())?;
    // Dropped when main returns, which flushes the spans still buffered for export.
    let _telemetry = telemetry::init_telemetry(cli.settings.log_format, "payhook-consumer")?;

    match cli.command {
        Command::Run => {
            let admin = TcpListener::bind(cli.settings.admin_listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot bind the admin listener to {}",
                        cli.settings.admin_listen
                    )
                })?;
            let config = AppConfig::load(cli.settings)?;
            let shutdown = CancellationToken::new();
            tokio::spawn({
                let shutdown = shutdown.clone();
                async move {
                    app::shutdown_signal().await;
                    shutdown.cancel();
                }
            });
            app::run_consumer(config, admin, shutdown).await
        }
        Command::Migrate => {
            let mut settings = cli.settings;
            settings.migrate_on_start = true;
            app::open_store(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::ReplayDeadLetters(selection) => {
            let config = AppConfig::load(cli.settings)?;
            let result = app::replay_dead_letter_events(
                &config,
                &selection.filter(),
                selection.limit,
                selection.dry_run,
            )
            .await;
            print_result(result)
        }
        Command::RetryFailed(selection) => {
            let config = AppConfig::load(cli.settings)?;
            let result = app::retry_failed_events(
                &config,
                &selection.filter(),
                selection.limit,
                selection.dry_run,
            )
            .await;
            print_result(result)
        }
    }
}

/// Prints one line per event and the summary, including the events handled before an
/// error, and turns the error into a non-zero exit status.
fn print_result(result: Result<OperatorReport, OperatorError>) -> anyhow::Result<()> {
    match result {
        Ok(report) => {
            print_report(&report);
            Ok(())
        }
        Err(error) => {
            if let OperatorError::Publish { report, .. } = &error {
                print_report(report);
            }
            Err(error.into())
        }
    }
}

fn print_report(report: &OperatorReport) {
    for line in &report.lines {
        println!("{line}");
    }
    println!("{}", report.summary);
}
