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
            Backend::Mssql => configured(MSSQL_VARIABLE)
                .is_none()
                .then(|| format!("{MSSQL_VARIABLE} not set")),
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
                Backend::Mssql => run_mssql(case).await,
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

async fn run_mssql(case: Case) -> Result<(), String> {
    let admin_url = configured(MSSQL_VARIABLE).ok_or("SQL Server URL vanished")?;
    let name = format!("payhook_test_{:016x}", fastrand::u64(..));
    let mut admin = mssql_client(&admin_url, None).await?;
    mssql_batch(&mut admin, &format!("CREATE DATABASE {name}"))
        .await
        .map_err(|error| format!("cannot create database {name}: {error}"))?;
    let result = match with_database(&admin_url, &name) {
        Ok(url) => match migrated(&url).await {
            Ok(store) => run_case(case, Context::new(store, Raw::Mssql(url))).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    // ROLLBACK IMMEDIATE ends connections that are still open in the dropped pool.
    let drop_sql = format!(
        "ALTER DATABASE {name} SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE {name};"
    );
    if let Err(error) = mssql_batch(&mut admin, &drop_sql).await {
        eprintln!("mssql: could not drop {name}: {error}");
    }
    result
}

/// Returns the connection string with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> Result<String, String> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
        let mut url = url::Url::parse(url.trim()).map_err(|error| error.to_string())?;
        url.set_path(&format!("/{name}"));
        return Ok(url.to_string());
    }
    // ADO.NET: drop any database keyword and name the new one.
    let mut pairs: Vec<&str> = url
        .split(';')
        .filter(|pair| {
            let key = pair
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            !pair.trim().is_empty() && key != "database" && key != "initial catalog"
        })
        .collect();
    let database = format!("Database={name}");
    pairs.push(&database);
    Ok(pairs.join(";"))
}

pub type MssqlClient = tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>>;

/// Opens a plain connection for administration and direct reads.
pub async fn mssql_client(url: &str, database: Option<&str>) -> Result<MssqlClient, String> {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut config = payhook::storage::mssql::parse_connection_string(url)
        .map_err(|error| format!("{MSSQL_VARIABLE}: {error}"))?;
    if let Some(database) = database {
        config.database(database);
    }
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .map_err(|error| format!("cannot reach SQL Server: {error}"))?;
    tcp.set_nodelay(true).map_err(|error| error.to_string())?;
    tiberius::Client::connect(config, tcp.compat_write())
        .await
        .map_err(|error| format!("cannot connect to SQL Server: {error}"))
}

pub async fn mssql_batch(client: &mut MssqlClient, sql: &str) -> Result<(), String> {
    client
        .simple_query(sql)
        .await
        .map_err(|error| error.to_string())?
        .into_results()
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}
