//! Failure drills for the RabbitMQ mode: real `payhook-ingest` and `payhook-consumer`
//! processes, a PostgreSQL cluster and a RabbitMQ node of the drills' own, and faults
//! injected under load. Each drill prints
//! `drill <name>: sent N, acknowledged N, completed N, duplicates 0, lost 0` and fails on
//! any loss or duplication. `scripts/drills` starts the servers and runs this program;
//! docs/RELIABILITY.md describes every drill.

mod crashes;
mod deliveries;
mod env;
mod outages;
mod poison;
mod sender;
mod slow;
mod verify;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// Where the drills find the binaries, the servers and the fault controls.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The `payhook-ingest` binary.
    #[arg(long, env = "DRILL_INGEST_BIN")]
    pub ingest_bin: PathBuf,
    /// The `payhook-consumer` binary.
    #[arg(long, env = "DRILL_CONSUMER_BIN")]
    pub consumer_bin: PathBuf,
    /// Administrative URL of the drill PostgreSQL; each drill creates its own database.
    #[arg(long, env = "DRILL_POSTGRES_URL")]
    pub postgres_url: String,
    /// URL of the drill RabbitMQ node; each drill uses its own queue prefix.
    #[arg(long, env = "DRILL_AMQP_URL")]
    pub amqp_url: String,
    /// Script taking `broker-stop`, `broker-start`, `db-stop` or `db-start`.
    #[arg(long, env = "DRILL_CONTROL")]
    pub control: PathBuf,
    /// Log file of the drill RabbitMQ node, searched for consumer timeouts.
    #[arg(long, env = "DRILL_BROKER_LOG")]
    pub broker_log: PathBuf,
    /// Directory for the logs of the processes each drill starts.
    #[arg(long, env = "DRILL_WORK_DIR")]
    pub work_dir: PathBuf,
}

#[derive(Parser)]
#[command(name = "drills", about = "Failure drills for payhook's RabbitMQ mode")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the named drills, or all of them, in order.
    Run {
        #[command(flatten)]
        options: Options,
        /// Drill names; none runs every drill.
        names: Vec<String>,
    },
    /// Run a consumer whose handler first sleeps for chosen events (used by the
    /// slow-handler drill; settings as for `payhook-consumer run`).
    SlowConsumer(Box<slow::SlowConsumerArgs>),
}

/// Every drill, in the order `run` takes them.
const DRILLS: &[&str] = &[
    "broker-outage",
    "database-outage",
    "consumer-killed",
    "ingest-killed",
    "duplicate-deliveries",
    "poison-events",
    "slow-handler",
];

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::SlowConsumer(args) => runtime.block_on(slow::run_slow_consumer(*args)),
        Command::Run { options, names } => {
            let names: Vec<String> = if names.is_empty() {
                DRILLS.iter().map(|name| name.to_string()).collect()
            } else {
                names
            };
            let passed = runtime.block_on(run_drills(&options, &names))?;
            if !passed {
                anyhow::bail!("at least one drill failed");
            }
            Ok(())
        }
    }
}

async fn run_drills(options: &Options, names: &[String]) -> anyhow::Result<bool> {
    let mut all_passed = true;
    for name in names {
        let started = Instant::now();
        println!("== drill {name}");
        let result = match name.as_str() {
            "broker-outage" => outages::broker_outage(options).await,
            "database-outage" => outages::database_outage(options).await,
            "consumer-killed" => crashes::consumer_killed(options).await,
            "ingest-killed" => crashes::ingest_killed(options).await,
            "duplicate-deliveries" => deliveries::duplicate_deliveries(options).await,
            "poison-events" => poison::poison_events(options).await,
            "slow-handler" => slow::slow_handler(options).await,
            other => Err(anyhow::anyhow!(
                "unknown drill {other:?}; the drills are {}",
                DRILLS.join(", ")
            )),
        };
        let passed = match result {
            Ok(passed) => passed,
            Err(error) => {
                println!("drill {name}: ERROR {error:#}");
                false
            }
        };
        println!(
            "   {name} {} in {:.0}s",
            if passed { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        all_passed &= passed;
    }
    Ok(all_passed)
}
