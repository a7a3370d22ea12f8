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
use crate::http::server::{self, Handler, ServerLimits};
use crate::http::webhook::WebhookIngest;
use crate::providers::{self, Provider};
use crate::queue::Publisher;
use crate::storage::encrypted::{EncryptedStore, PayloadKeys};
use crate::storage::{self, Store, StoreOptions};
use crate::telemetry::metrics::Metrics;
use crate::worker::embedded::{EmbeddedQueue, EmbeddedWorkerConfig};
use crate::worker::process::Processor;
use crate::worker::retry::RetryPolicy;

/// Settings plus the parsed configuration file.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub settings: Settings,
    pub file: FileConfig,
}

impl AppConfig {
    /// Loads the configuration file named by the settings, if any.
    pub fn load(settings: Settings) -> anyhow::Result<AppConfig> {
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
    let settings = &config.settings;
    let store = open_store(settings).await?;
    let providers = providers::build(&config)?;
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
    let settings = &config.settings;
    let mut ingest = WebhookIngest::new(store.clone(), providers, publisher, metrics.clone());
    ingest.apply_settings(settings)?;
    let ingest = Arc::new(ingest);
    let admin_api = Arc::new(AdminApi {
        store,
        metrics,
        token: settings.admin_token()?,
    });

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
