//! Creates a fresh, migrated store per case on each backend and runs the case on it.

use std::path::PathBuf;
use std::sync::Arc;

use payhook::storage::{Store, StoreOptions, connect};

use crate::cases::Case;
use crate::support::{Context, Raw};

const POSTGRES_VARIABLE: &str = "PAYHOOK_TEST_POSTGRES_URL";
const MSSQL_VARIABLE: &str = "PAYHOOK_TEST_MSSQL_URL";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mssql,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mssql];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mssql => "mssql",
        }
    }

    /// Returns why the backend's cases cannot run here, or `None` when they can.
    pub fn skip_reason(self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => configured(POSTGRES_VARIABLE)
                .is_none()
                .then(|| format!("{POSTGRES_VARIABLE} not set")),
            Backend::Mssql => Some(match configured(MSSQL_VARIABLE) {
                None => format!("{MSSQL_VARIABLE} not set"),
                // TODO: create a database per case here once the SQL Server backend exists.
                Some(_) => "the SQL Server backend is not built yet".to_string(),
            }),
        }
    }

    /// Runs one case on a new database; a panic in the case becomes `Err`.
    pub fn run(self, case: Case) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start runtime: {error}"))?;
        runtime.block_on(async move {
            match self {
                Backend::Sqlite => run_sqlite(case).await,
                Backend::Postgres => run_postgres(case).await,
                Backend::Mssql => Err("the SQL Server backend is not built yet".to_string()),
            }
        })
    }
}

fn configured(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn options() -> StoreOptions {
    StoreOptions {
        pool_size: 8,
        ..StoreOptions::default()
    }
}

/// Runs the case as its own task so a panic is reported instead of ending the runner.
async fn run_case(case: Case, context: Context) -> Result<(), String> {
    match tokio::spawn(case(context)).await {
        Ok(()) => Ok(()),
        Err(error) if error.is_panic() => Err("panicked (message above)".to_string()),
        Err(error) => Err(format!("task failed: {error}")),
    }
}

async fn migrated(url: &str) -> Result<Arc<dyn Store>, String> {
    let store = connect(url, &options())
        .await
        .map_err(|error| format!("connect failed: {error}"))?;
    store
        .migrate()
        .await
        .map_err(|error| format!("migrate failed: {error}"))?;
    Ok(store)
}

async fn run_sqlite(case: Case) -> Result<(), String> {
    let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
    let path: PathBuf = directory.path().join("payhook.db");
    let store = migrated(&format!("sqlite://{}", path.display())).await?;
    run_case(case, Context::new(store, Raw::Sqlite(path))).await
}

async fn run_postgres(case: Case) -> Result<(), String> {
    let admin_url = configured(POSTGRES_VARIABLE).ok_or("PostgreSQL URL vanished")?;
    let name = format!("payhook_test_{:016x}", fastrand::u64(..));
    let admin = admin_client(&admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|error| format!("cannot create database {name}: {error}"))?;
    let mut url = url::Url::parse(&admin_url).map_err(|error| error.to_string())?;
    url.set_path(&format!("/{name}"));
    let result = match migrated(url.as_str()).await {
        Ok(store) => {
            let context = Context::new(store, Raw::Postgres(url.to_string()));
            run_case(case, context).await
        }
        Err(error) => Err(error),
    };
    // FORCE ends the pool's connections, which are still open until the store drops.
    if let Err(error) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
    {
        eprintln!("postgres: could not drop {name}: {error}");
    }
    result
}

pub async fn admin_client(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|error| format!("cannot connect to {POSTGRES_VARIABLE}: {error}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("postgres admin connection closed: {error}");
        }
    });
    Ok(client)
}
