//! Composition of the running service from settings: store, providers, listeners, workers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::config::file::FileConfig;
use crate::http::admin::AdminApi;
use crate::http::health::{BrokerHealth, ConsumingHealth, HealthCheck};
use crate::http::server::{self, Handler, ServerLimits};
use crate::http::webhook::WebhookIngest;
use crate::providers::{self, Handler as EventHandler, Provider};
use crate::queue::Publisher;
use crate::queue::rabbitmq::{RabbitConfig, RabbitConsumer, RabbitPublisher};
use crate::secret::Secret;
use crate::storage::encrypted::{EncryptedStore, PayloadKeys};
use crate::storage::{self, Store, StoreOptions};
use crate::telemetry::metrics::Metrics;
use crate::worker::consumer::{ConsumerConfig, EventConsumer};
use crate::worker::embedded::{EmbeddedQueue, EmbeddedWorkerConfig};
use crate::worker::operator::{self, OperatorError, OperatorFilter, OperatorReport};
use crate::worker::process::Processor;
use crate::worker::retry::RetryPolicy;
use crate::worker::sweeper::{Sweeper, SweeperConfig};

/// Settings plus the parsed configuration file.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub settings: Settings,
    pub file: FileConfig,
}

impl AppConfig {
    /// Loads the configuration file named by the settings, if any.
    pub fn load(settings: Settings) -> anyhow::Result<AppConfig> {
        settings.validate()?;
        let file = match &settings.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(AppConfig { settings, file })
    }
}

/// Connects to the configured database and applies migrations when enabled.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let options = StoreOptions {
        pool_size: settings.db_pool_size,
        ..StoreOptions::default()
    };
    let store = storage::connect(settings.database_url(), &options)
        .await
        .context("failed to open the database")?;
    if settings.migrate_on_start {
        store
            .migrate()
            .await
            .context("failed to apply database migrations")?;
    }
    let keys = PayloadKeys::load(
        &settings.payload_keys,
        settings.payload_keys_file.as_deref(),
    )
    .context("invalid PAYHOOK_PAYLOAD_KEYS")?;
    if let Some(keys) = keys {
        tracing::info!(
            key_id = keys.current_id(),
            "raw payloads are encrypted at rest"
        );
        return Ok(Arc::new(EncryptedStore::new(store, keys)));
    }
    Ok(store)
}

/// Logs the mode, the database kind and the enabled provider routes; never credentials.
pub fn log_startup(mode: &str, settings: &Settings, providers: &[Provider]) {
    let url = settings.database_url();
    let database = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| !scheme.contains(['=', ';', ' ']))
        .unwrap_or("mssql (connection string)");
    let routes: Vec<String> = providers
        .iter()
        .map(|p| format!("/api/webhooks/{}", p.name))
        .collect();
    tracing::info!(mode, database, routes = ?routes, "payhook starting");
}

/// Addresses the listeners are bound to.
#[derive(Debug, Clone, Copy)]
pub struct BoundAddresses {
    pub public: SocketAddr,
    pub admin: SocketAddr,
}

/// Runs ingest with embedded workers on pre-bound listeners until `shutdown` is cancelled:
/// stops accepting, finishes in-flight requests, then lets workers finish their events.
pub async fn run_embedded(
    config: AppConfig,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let providers = ingest_providers(&config)?;
    run_embedded_with_providers(config, providers, public, admin, shutdown).await
}

/// Builds the providers of an ingest process, which is useless without at least one.
fn ingest_providers(config: &AppConfig) -> anyhow::Result<Vec<Provider>> {
    let providers = providers::build(config)?;
    anyhow::ensure!(
        !providers.is_empty(),
        "no webhook provider is configured, so every webhook would be answered 404; set \
         PAYHOOK_STRIPE_SECRETS, PAYHOOK_PAYPAL_WEBHOOK_ID or \
         PAYHOOK_STANDARD_WEBHOOKS_SECRETS, or add providers to the PAYHOOK_CONFIG file"
    );
    let stripe_routes = providers
        .iter()
        .filter(|provider| provider.name == "stripe" || provider.name.starts_with("stripe/"));
    if stripe_routes.count() == 0 {
        tracing::warn!("no Stripe signing secret configured; /api/webhooks/stripe returns 404");
    }
    Ok(providers)
}

/// Runs like [`run_embedded`] with `providers` in place of the configured ones, e.g. built
/// with [`providers::registry::build_with`], or with verifiers and handlers of the caller's.
pub async fn run_embedded_with_providers(
    config: AppConfig,
    providers: Vec<Provider>,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &config.settings;
    let store = open_store(settings).await?;
    log_startup("embedded", settings, &providers);
    let metrics = Arc::new(Metrics::new());
    let queue = EmbeddedQueue::default();

    let processor = Arc::new(Processor {
        store: store.clone(),
        handlers: providers
            .iter()
            .map(|p| (p.name.clone(), p.handler.clone()))
            .collect::<HashMap<_, _>>(),
        retry: RetryPolicy {
            base_delay: settings.retry_base_delay(),
            max_delay: Duration::from_secs(settings.retry_max_seconds),
            tiers: Vec::new(),
        },
        metrics: metrics.clone(),
    });
    let worker_config = EmbeddedWorkerConfig {
        workers: settings.workers,
        poll_interval: settings.poll_interval(),
        ..EmbeddedWorkerConfig::default()
    };
    let workers_stop = CancellationToken::new();
    let workers = {
        let queue = queue.clone();
        let stop = workers_stop.clone();
        tokio::spawn(async move { queue.run_workers(processor, worker_config, stop).await })
    };

    let publisher: Arc<dyn Publisher> = Arc::new(queue);
    let listeners = serve_listeners(
        &config, store, providers, publisher, metrics, public, admin, shutdown,
    )?;
    listeners.await;

    tracing::info!("listeners stopped; waiting for workers to finish their events");
    workers_stop.cancel();
    if let Err(error) = workers.await {
        tracing::error!(%error, "embedded workers ended abnormally");
    }
    tracing::info!("payhook stopped");
    Ok(())
}

/// Builds the RabbitMQ settings of a process; `role` (`ingest`, `consumer`, `operator`)
/// names its connections, which show up as `<prefix>-<role>-publisher` and
/// `<prefix>-<role>-consumer` in the broker.
pub fn rabbit_config(settings: &Settings, role: &str) -> anyhow::Result<RabbitConfig> {
    let url = settings
        .amqp_url
        .as_ref()
        .map(|url| url.expose().trim())
        .filter(|url| !url.is_empty())
        .context("PAYHOOK_AMQP_URL is not set; RabbitMQ mode needs a broker URL")?;
    let mut config = RabbitConfig::new(Secret::new(url));
    config.prefix = settings.amqp_prefix.clone();
    config.delay_tiers = settings.amqp_delay_tiers.delays().to_vec();
    config.prefetch = settings.amqp_prefetch;
    config.connection_name = format!("{}-{role}", settings.amqp_prefix);
    Ok(config)
}

fn sweeper_config(settings: &Settings) -> SweeperConfig {
    SweeperConfig {
        interval: settings.sweep_interval(),
        unpublished_grace: Duration::from_secs(settings.unpublished_grace_seconds),
        stale_after: Duration::from_secs(settings.stale_after_seconds),
        ..SweeperConfig::default()
    }
}

/// Returns each provider's handler by provider name.
pub fn provider_handlers(providers: &[Provider]) -> HashMap<String, Arc<dyn EventHandler>> {
    providers
        .iter()
        .map(|p| (p.name.clone(), p.handler.clone()))
        .collect()
}

/// Runs ingest against RabbitMQ on pre-bound listeners until `shutdown` is cancelled: each
/// stored event is published with a publisher confirm, and the sweeper publishes the rows
/// whose publish failed. No workers run in this process.
pub async fn run_ingest_with_broker(
    config: AppConfig,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &config.settings;
    let providers = ingest_providers(&config)?;
    let store = open_store(settings).await?;
    let metrics = Arc::new(Metrics::new());
    let rabbit = rabbit_config(settings, "ingest")?;
    let host = rabbit.host();
    let publisher = RabbitPublisher::new(rabbit);
    // Declares the topology now. A broker that is down does not stop ingest: events are
    // stored, answered with 200, and published by the sweeper once the broker is back.
    match publisher.confirm_channel().await {
        Ok(_) => tracing::info!(%host, "connected to RabbitMQ and declared the topology"),
        Err(error) => {
            tracing::warn!(%host, %error, "RabbitMQ is unreachable; events are stored and published once it is back")
        }
    }

    let sweeper_stop = CancellationToken::new();
    let sweeper = spawn_sweeper(
        store.clone(),
        Arc::new(publisher.clone()),
        metrics.clone(),
        settings,
        sweeper_stop.clone(),
    );
    let extras = ListenerExtras {
        checks: vec![Arc::new(BrokerHealth(publisher.clone()))],
        publishes_to_broker: true,
    };
    let listeners = serve_listeners_with(
        &config,
        store,
        providers,
        Arc::new(publisher.clone()),
        metrics,
        public,
        admin,
        shutdown,
        extras,
    )?;
    listeners.await;

    sweeper_stop.cancel();
    if let Err(error) = sweeper.await {
        tracing::error!(%error, "sweeper ended abnormally");
    }
    publisher.close().await;
    tracing::info!("payhook ingest stopped");
    Ok(())
}

/// Runs a RabbitMQ consumer process with the configured providers' handlers until
/// `shutdown` is cancelled.
///
/// `admin` serves health probes, metrics and the admin API for this process.
pub async fn run_consumer(
    config: AppConfig,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let providers = providers::build(&config)?;
    let handlers = provider_handlers(&providers);
    run_consumer_process(config, handlers, Some(admin), shutdown).await
}

/// Runs a RabbitMQ consumer process with the given handlers, by provider name: consumes the
/// work queue with `PAYHOOK_CONSUMERS` attempts at once and runs the sweeper. On shutdown
/// it stops consuming, finishes and acks the deliveries in hand, and returns.
pub async fn run_consumer_with_handlers(
    config: AppConfig,
    handlers: HashMap<String, Arc<dyn EventHandler>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_consumer_process(config, handlers, None, shutdown).await
}

async fn run_consumer_process(
    config: AppConfig,
    handlers: HashMap<String, Arc<dyn EventHandler>>,
    admin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let settings = &config.settings;
    let store = open_store(settings).await?;
    let metrics = Arc::new(Metrics::new());
    let rabbit = rabbit_config(settings, "consumer")?;
    let publisher = RabbitPublisher::new(rabbit.clone());
    let processor = Arc::new(Processor {
        store: store.clone(),
        handlers,
        retry: RetryPolicy {
            tiers: rabbit.delay_tiers.clone(),
            ..RetryPolicy::default()
        },
        metrics: metrics.clone(),
    });
    let consumer_config = ConsumerConfig {
        lease: settings.lease(),
        handler_timeout: settings.handler_timeout(),
        concurrency: usize::try_from(settings.consumers).unwrap_or(usize::MAX),
    };
    let sweeper = spawn_sweeper(
        store.clone(),
        Arc::new(publisher.clone()),
        metrics.clone(),
        settings,
        shutdown.clone(),
    );
    let consumer = RabbitConsumer::new(rabbit, publisher.clone());
    let admin_task = match admin {
        Some(listener) => {
            let mut admin_api =
                AdminApi::new(store.clone(), metrics.clone(), settings.admin_token()?);
            admin_api.checks = vec![
                Arc::new(BrokerHealth(publisher.clone())),
                Arc::new(ConsumingHealth(consumer.consuming_flag())),
            ];
            let admin_api = Arc::new(admin_api);
            let handler: Handler = Arc::new(move |request, peer| {
                let admin_api = admin_api.clone();
                Box::pin(admin_api.handle(request, peer))
            });
            tracing::info!(admin = %listener.local_addr()?, "admin listener ready");
            let stop = shutdown.clone();
            Some(tokio::spawn(server::serve(
                listener,
                handler,
                ServerLimits::default(),
                stop,
            )))
        }
        None => None,
    };
    let event_consumer = Arc::new(EventConsumer::new(processor, consumer_config));
    event_consumer.run(&consumer, shutdown).await;
    if let Some(task) = admin_task
        && let Err(error) = task.await
    {
        tracing::error!(%error, "admin listener ended abnormally");
    }

    if let Err(error) = sweeper.await {
        tracing::error!(%error, "sweeper ended abnormally");
    }
    publisher.close().await;
    tracing::info!("payhook consumer stopped");
    Ok(())
}

fn spawn_sweeper(
    store: Arc<dyn Store>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
    settings: &Settings,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let sweeper = Sweeper {
        store,
        publisher,
        metrics,
        config: sweeper_config(settings),
    };
    tokio::spawn(async move { sweeper.run(stop).await })
}

/// Runs `replay-dead-letters`: see [`operator::replay_dead`].
pub async fn replay_dead_letter_events(
    config: &AppConfig,
    filter: &OperatorFilter,
    limit: usize,
    dry_run: bool,
) -> Result<OperatorReport, OperatorError> {
    let (store, publisher) = operator_clients(config).await?;
    let result = operator::replay_dead(&store, &publisher, filter, limit, dry_run).await;
    publisher.close().await;
    result
}

/// Runs `retry-failed`: see [`operator::retry_failed`].
pub async fn retry_failed_events(
    config: &AppConfig,
    filter: &OperatorFilter,
    limit: usize,
    dry_run: bool,
) -> Result<OperatorReport, OperatorError> {
    let (store, publisher) = operator_clients(config).await?;
    let result = operator::retry_failed(&store, &publisher, filter, limit, dry_run).await;
    publisher.close().await;
    result
}

async fn operator_clients(
    config: &AppConfig,
) -> Result<(Arc<dyn Store>, RabbitPublisher), OperatorError> {
    let settings = &config.settings;
    let rabbit = rabbit_config(settings, "operator")
        .map_err(|error| OperatorError::Config(format!("{error:#}")))?;
    let store = open_store(settings)
        .await
        .map_err(|error| OperatorError::Config(format!("{error:#}")))?;
    Ok((store, RabbitPublisher::new(rabbit)))
}

/// Starts the public and admin listeners; the returned future ends when both have drained.
#[allow(clippy::too_many_arguments)]
pub fn serve_listeners(
    config: &AppConfig,
    store: Arc<dyn Store>,
    providers: Vec<Provider>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    serve_listeners_with(
        config,
        store,
        providers,
        publisher,
        metrics,
        public,
        admin,
        shutdown,
        ListenerExtras::default(),
    )
}

/// Settings of the listeners that differ between the embedded and the broker mode.
#[derive(Default)]
pub struct ListenerExtras {
    /// Readiness checks besides the database.
    pub checks: Vec<Arc<dyn HealthCheck>>,
    /// Whether the publisher is a broker, see [`WebhookIngest::publishes_to_broker`].
    pub publishes_to_broker: bool,
}

/// Starts the listeners like [`serve_listeners`], with mode-specific `extras`.
#[allow(clippy::too_many_arguments)]
pub fn serve_listeners_with(
    config: &AppConfig,
    store: Arc<dyn Store>,
    providers: Vec<Provider>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
    public: TcpListener,
    admin: TcpListener,
    shutdown: CancellationToken,
    extras: ListenerExtras,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let ListenerExtras {
        checks,
        publishes_to_broker,
    } = extras;
    let settings = &config.settings;
    let mut admin_api = AdminApi::new(store.clone(), metrics.clone(), settings.admin_token()?);
    admin_api.queue = Some(publisher.clone());
    let mut ingest = WebhookIngest::new(store.clone(), providers, publisher, metrics.clone());
    ingest.publishes_to_broker = publishes_to_broker;
    ingest.apply_settings(settings)?;
    let ingest = Arc::new(ingest);
    admin_api.checks = checks;
    let admin_api = Arc::new(admin_api);

    let public_limits = ServerLimits::from_settings(settings);
    let public_handler: Handler = Arc::new(move |request, peer| {
        let ingest = ingest.clone();
        Box::pin(ingest.handle(request, peer))
    });
    let admin_handler: Handler = Arc::new(move |request, peer| {
        let admin_api = admin_api.clone();
        Box::pin(admin_api.handle(request, peer))
    });

    tracing::info!(
        public = %public.local_addr()?,
        admin = %admin.local_addr()?,
        "listening"
    );
    let public_task = server::serve(public, public_handler, public_limits, shutdown.clone());
    let admin_task = server::serve(admin, admin_handler, ServerLimits::default(), shutdown);
    Ok(async move {
        tokio::join!(public_task, admin_task);
    })
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        _ = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
