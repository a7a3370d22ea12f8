//! SQL Server backend: tiberius connections over rustls, pooled by a small deadpool
//! manager.
//!
//! The tables keep the names of the previous .NET service (`WebhookEvents`,
//! `WebhookProcessingLogs`, `PaymentEvents`); the migration adds payhook's columns to an
//! existing database without touching its rows. Every connection runs with `XACT_ABORT ON`,
//! so an error inside a transaction rolls all of it back, and with a lock timeout, so a
//! blocked statement fails instead of waiting for ever. An operation that ends as a deadlock
//! victim or on a lock timeout is run again a bounded number of times before it reports
//! `Unavailable`. Times come from this process's clock, like the other backends.

mod config;
mod errors;
mod queries;
mod rows;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool::managed::{Metrics, Object, Pool, PoolError, RecycleError, RecycleResult};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::model::{EventDetail, InsertOutcome, NewEvent, StoredEvent};
use crate::storage::{
    ClaimOutcome, Completion, EventFilter, EventPage, Failure, RepublishCandidate, Statistics,
    Store, StoreError, StoreOptions,
};
use errors::{DbError, ErrorClass};

pub use config::parse as parse_connection_string;

mod embedded {
    refinery::embed_migrations!("../migrations/mssql");
}

/// A connection to SQL Server.
pub(crate) type Client = tiberius::Client<Compat<TcpStream>>;

/// How many times an operation runs again after a deadlock or a lock timeout.
const LOCK_RETRIES: u32 = 5;

/// Settings applied to every new connection. `XACT_ABORT` rolls back the whole transaction
/// on any error; the ANSI settings are the ones filtered and unique indexes require.
const SESSION_SETTINGS: &str = "SET XACT_ABORT ON; SET LOCK_TIMEOUT 10000; \
    SET ANSI_NULLS ON; SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; SET ARITHABORT ON; \
    SET CONCAT_NULL_YIELDS_NULL ON; SET QUOTED_IDENTIFIER ON; SET NUMERIC_ROUNDABORT OFF;";

/// Name of the application lock that keeps two processes from migrating at once.
const MIGRATION_LOCK: &str = "payhook_migrations";

/// Opens tiberius connections for the pool.
struct Manager {
    config: tiberius::Config,
    connect_timeout: Duration,
}

impl Manager {
    async fn connect(&self, config: tiberius::Config) -> Result<Client, tiberius::error::Error> {
        let address = config.get_addr();
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "timed out connecting to SQL Server",
                )
            })??;
        tcp.set_nodelay(true)?;
        tiberius::Client::connect(config, tcp.compat_write()).await
    }
}

impl deadpool::managed::Manager for Manager {
    type Type = Client;
    type Error = tiberius::error::Error;

    async fn create(&self) -> Result<Client, Self::Error> {
        let mut client = match self.connect(self.config.clone()).await {
            // Azure SQL and failover groups can redirect the login to another host.
            Err(tiberius::error::Error::Routing { host, port }) => {
                let mut config = self.config.clone();
                config.host(host);
                config.port(port);
                self.connect(config).await?
            }
            other => other?,
        };
        client
            .simple_query(SESSION_SETTINGS)
            .await?
            .into_results()
            .await?;
        Ok(client)
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<Self::Error> {
        let row = client
            .simple_query("SELECT @@TRANCOUNT")
            .await?
            .into_row()
            .await?;
        // An operation cancelled half-way can leave a transaction open; such a connection
        // is closed, which makes the server roll the transaction back.
        match row.and_then(|row| row.get::<i32, _>(0)) {
            Some(0) => Ok(()),
            _ => Err(RecycleError::message(
                "connection was returned inside a transaction",
            )),
        }
    }
}

/// A [`Store`] on one SQL Server database.
pub struct MssqlStore {
    pool: Pool<Manager>,
}

/// Runs `$body` with `$client` bound to a pooled connection, and runs it again on a new
/// connection while it fails with a deadlock or lock timeout.
macro_rules! with_retry {
    ($store:expr, $client:ident => $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let mut object = $store.client().await?;
            let $client: &mut Client = &mut object;
            let result: Result<_, DbError> = $body.await;
            match result {
                Err(error) if error.class() == ErrorClass::Retry && attempt < LOCK_RETRIES => {
                    attempt += 1;
                    drop(object);
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                other => break other.map_err(StoreError::from),
            }
        }
    }};
}

/// Pause before the given retry: growing with the attempt, with jitter so that two
/// deadlocked callers do not collide again.
fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(20 * u64::from(attempt) + fastrand::u64(0..30))
}

impl MssqlStore {
    /// Creates the pool for a `mssql://`/`sqlserver://` URL or an ADO.NET connection string.
    /// Connections are opened on first use, so an unreachable server surfaces as
    /// `Unavailable` from the first call.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<MssqlStore, StoreError> {
        let mut config = config::parse(url)?;
        config.handshake_timeout(Some(options.connect_timeout));
        // rustls is built with both ring and aws-lc-rs in this workspace, so it cannot pick
        // a provider by itself. Install ring unless the program already chose one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // An error only means another thread installed a provider first.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let manager = Manager {
            config,
            connect_timeout: options.connect_timeout,
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|error| {
                StoreError::Backend(format!("cannot build SQL Server pool: {error}"))
            })?;
        Ok(MssqlStore { pool })
    }

    async fn client(&self) -> Result<Object<Manager>, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

fn pool_error(error: PoolError<tiberius::error::Error>) -> StoreError {
    match error {
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("SQL Server connection timed out ({kind:?})"))
        }
        PoolError::Backend(error) => StoreError::Unavailable(format!(
            "cannot connect to SQL Server: {}",
            errors::describe(&error)
        )),
        PoolError::Closed => StoreError::Unavailable("SQL Server pool is closed".into()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Backend("SQL Server pool has no runtime".into())
        }
        PoolError::PostCreateHook(error) => {
            StoreError::Unavailable(format!("SQL Server connection setup failed: {error}"))
        }
    }
}

/// Takes the migration lock, runs refinery, and releases the lock.
async fn migrate_locked(client: &mut Client) -> Result<(), DbError> {
    let row = client
        .simple_query(format!(
            "DECLARE @result INT; \
             EXEC @result = sp_getapplock @Resource = N'{MIGRATION_LOCK}', \
                 @LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 60000; \
             SELECT @result;"
        ))
        .await?
        .into_row()
        .await?;
    let granted = row.and_then(|row| row.get::<i32, _>(0)).unwrap_or(-999);
    if granted < 0 {
        return Err(StoreError::Unavailable(format!(
            "another process holds the SQL Server migration lock (sp_getapplock returned \
             {granted})"
        ))
        .into());
    }
    let result = embedded::migrations::runner()
        .run_async(client)
        .await
        .map(|_| ())
        .map_err(|error| DbError::Store(StoreError::Backend(format!("migration failed: {error}"))));
    let release = client
        .simple_query(format!(
            "EXEC sp_releaseapplock @Resource = N'{MIGRATION_LOCK}', @LockOwner = 'Session';"
        ))
        .await;
    let release = match release {
        Ok(stream) => stream.into_results().await.map(|_| ()),
        Err(error) => Err(error),
    };
    result.and(release.map_err(DbError::from))
}

#[async_trait]
impl Store for MssqlStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut object = self.client().await?;
        migrate_locked(&mut object).await.map_err(StoreError::from)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        with_retry!(self, client => async {
            client.simple_query("SELECT 1").await?.into_results().await?;
            Ok(())
        })
    }

    async fn insert_event(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        crate::storage::limits::check_event(event)?;
        with_retry!(self, client => queries::insert_event(client, event))
    }

    async fn mark_published(&self, id: i64) -> Result<(), StoreError> {
        with_retry!(self, client => queries::mark_published(client, id))
    }

    async fn mark_unpublished(&self, id: i64) -> Result<(), StoreError> {
        with_retry!(self, client => queries::mark_unpublished(client, id))
    }

    async fn claim_for_republish(
        &self,
        unpublished_grace: Duration,
        stale_after: Duration,
        limit: i64,
    ) -> Result<Vec<RepublishCandidate>, StoreError> {
        with_retry!(self, client => queries::claim_for_republish(
            client,
            unpublished_grace,
            stale_after,
            limit
        ))
    }

    async fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        with_retry!(self, client => queries::unpublished(client, older_than, limit))
    }

    async fn claim(
        &self,
        id: i64,
        lease: Duration,
        respect_retry_time: bool,
    ) -> Result<ClaimOutcome, StoreError> {
        with_retry!(self, client => queries::claim(client, id, lease, respect_retry_time))
    }

    async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>, StoreError> {
        with_retry!(self, client => queries::claim_due(client, limit, lease))
    }

    async fn load(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        with_retry!(self, client => queries::load(client, id))
    }

    async fn complete(&self, id: i64, completion: &Completion) -> Result<(), StoreError> {
        with_retry!(self, client => queries::complete(client, id, completion))
    }

    async fn fail(&self, id: i64, failure: &Failure) -> Result<(), StoreError> {
        with_retry!(self, client => queries::fail(client, id, failure))
    }

    async fn requeue(&self, filter: &EventFilter, limit: i64) -> Result<Vec<i64>, StoreError> {
        with_retry!(self, client => queries::requeue(client, filter, limit))
    }

    async fn replay(&self, id: i64) -> Result<(), StoreError> {
        with_retry!(self, client => queries::replay(client, id))
    }

    async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        with_retry!(self, client => queries::event_detail(client, id))
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: i64,
        page_size: i64,
    ) -> Result<EventPage, StoreError> {
        let offset = crate::storage::rules::check_page(page, page_size)?;
        with_retry!(self, client => queries::list_events(client, filter, offset, page_size))
    }

    async fn statistics(&self, filter: &EventFilter) -> Result<Statistics, StoreError> {
        with_retry!(self, client => queries::statistics(client, filter))
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{StoreError, StoreOptions, connect};

    #[tokio::test]
    async fn refused_connection_is_unavailable() {
        let options = StoreOptions {
            pool_size: 1,
            connect_timeout: std::time::Duration::from_secs(2),
        };
        // Port 9 (discard) has no SQL Server on 127.0.0.1.
        for url in [
            "mssql://sa:Secr3tPw@127.0.0.1:9/payhook?trust_server_certificate=true",
            "Server=tcp:127.0.0.1,9;Database=payhook;User Id=sa;Password=Secr3tPw;\
             TrustServerCertificate=true",
        ] {
            let store = connect(url, &options)
                .await
                .expect("the pool connects lazily");
            let result = store.ping().await;
            let Err(StoreError::Unavailable(message)) = result else {
                panic!("{url}: {result:?}");
            };
            assert!(!message.contains("Secr3tPw"), "{message}");
        }
    }
}
