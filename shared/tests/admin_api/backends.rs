//! Creates a fresh database per case on each backend and runs the case against it.

use crate::cases::Case;

const POSTGRES_VARIABLE: &str = "PAYHOOK_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Returns why the backend's cases cannot run here, or `None` when they can.
    pub fn skip_reason(self) -> Option<String> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => configured(POSTGRES_VARIABLE)
                .is_none()
                .then(|| format!("{POSTGRES_VARIABLE} not set")),
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
            }
        })
    }
}

fn configured(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Runs the case as its own task so a panic is reported instead of ending the runner.
async fn run_case(case: Case, database_url: String) -> Result<(), String> {
    match tokio::spawn(case(database_url)).await {
        Ok(()) => Ok(()),
        Err(error) if error.is_panic() => Err("panicked (message above)".to_string()),
        Err(error) => Err(format!("task failed: {error}")),
    }
}

async fn run_sqlite(case: Case) -> Result<(), String> {
    let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
    let url = format!("sqlite://{}", directory.path().join("payhook.db").display());
    run_case(case, url).await
}

async fn run_postgres(case: Case) -> Result<(), String> {
    let admin_url = configured(POSTGRES_VARIABLE).ok_or("PostgreSQL URL vanished")?;
    let name = format!("payhook_admin_{:016x}", fastrand::u64(..));
    let admin = admin_client(&admin_url).await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|error| format!("cannot create database {name}: {error}"))?;
    let mut url = url::Url::parse(&admin_url).map_err(|error| error.to_string())?;
    url.set_path(&format!("/{name}"));
    let result = run_case(case, url.to_string()).await;
    // FORCE ends the service's pooled connections if any are still open.
    if let Err(error) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
    {
        eprintln!("postgres: could not drop {name}: {error}");
    }
    result
}

async fn admin_client(url: &str) -> Result<tokio_postgres::Client, String> {
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
