//! PostgreSQL backend: tokio-postgres connections pooled by deadpool-postgres.
//!
//! TLS is used when the URL sets `sslmode=require`, with the platform's root
//! certificates; other modes connect without TLS. Times come from this process's clock, so
//! leases held by workers on several hosts assume their clocks are synchronized.

mod batched;
mod queries;
mod rows;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;

use crate::model::{EventDetail, InsertOutcome, NewEvent, StoredEvent};
use crate::storage::group_commit::{BatchInsert, GroupCommit, InsertBatch};
use crate::storage::{
    ClaimOutcome, Completion, EventFilter, EventPage, Failure, RepublishCandidate, Statistics,
    Store, StoreError, StoreOptions,
};

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

/// Key of the advisory lock that keeps two processes from migrating at once.
const MIGRATION_LOCK: i64 = 0x7061_7968_6f6f_6b31;

/// Events per group-committed insert statement.
const MAX_INSERT_BATCH: usize = 64;

/// Settings of every pooled session. Statements are prepared once per connection, and
/// PostgreSQL may keep a generic plan for one after five runs. A plan made while a table
/// was new and nearly empty scans the whole table. It is kept as the table grows until the
/// next `ANALYZE`, so batched reads by `id = ANY(...)` then scan every row. Planning each
/// run with its parameters costs little next to such a scan.
const SESSION_SETTINGS: &str = "SET plan_cache_mode = force_custom_plan";

/// Idle time before the first TCP keepalive probe on a database connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between keepalive probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes after which the connection is closed.
const KEEPALIVE_RETRIES: u32 = 3;

/// Batches of one kind that run at once. With one, calls that arrive while a batch runs
/// queue and share the next batch, so under load a round trip and a commit serve many
/// events. On 2 cores, two or more in flight made smaller batches and lower rates.
const BATCHES_IN_FLIGHT: usize = 1;

/// Rows per batched read or claim statement, and completions per batched transaction.
const MAX_PROCESSING_BATCH: usize = 64;

/// A [`Store`] on one PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    inserts: GroupCommit<InsertBatch<EventInserter>>,
    loads: GroupCommit<batched::LoadBatch>,
    claims: GroupCommit<batched::ClaimBatch>,
    completions: GroupCommit<batched::CompletionBatch>,
}

/// Inserts of webhook events, batched by [`GroupCommit`].
struct EventInserter {
    pool: Pool,
}

#[async_trait]
impl BatchInsert for EventInserter {
    async fn insert_batch(&self, events: &[NewEvent]) -> Result<Vec<InsertOutcome>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        queries::insert_events(&client, events).await
    }

    async fn insert_one(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        queries::insert_event(&client, event).await
    }
}

impl PostgresStore {
    /// Creates the pool for a `postgres://` or `postgresql://` URL. Connections are opened
    /// on first use, so an unreachable server surfaces as `Unavailable` from the first call.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error| StoreError::Invalid(format!("invalid PostgreSQL URL: {error}")))?;
        config.connect_timeout(options.connect_timeout);
        // A batch of each kind runs at a time, so a connection that went silent (a dropped
        // network path without a reset) would hold up every caller behind it. TCP keepalive
        // probes close such a connection after about a minute instead of the system's two
        // hours, and the batch fails as unavailable.
        config.keepalives(true);
        config.keepalives_idle(KEEPALIVE_IDLE);
        config.keepalives_interval(KEEPALIVE_INTERVAL);
        config.keepalives_retries(KEEPALIVE_RETRIES);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.get_ssl_mode() {
            SslMode::Require => Manager::from_config(config, tls_connector()?, manager_config),
            _ => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .runtime(Runtime::Tokio1)
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION_SETTINGS)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|error| {
                StoreError::Backend(format!("cannot build PostgreSQL pool: {error}"))
            })?;
        let inserts = GroupCommit::new(
            InsertBatch(EventInserter { pool: pool.clone() }),
            BATCHES_IN_FLIGHT,
            MAX_INSERT_BATCH,
        );
        let loads = GroupCommit::new(
            batched::LoadBatch { pool: pool.clone() },
            BATCHES_IN_FLIGHT,
            MAX_PROCESSING_BATCH,
        );
        let claims = GroupCommit::new(
            batched::ClaimBatch { pool: pool.clone() },
            BATCHES_IN_FLIGHT,
            MAX_PROCESSING_BATCH,
        );
        let completions = GroupCommit::new(
            batched::CompletionBatch { pool: pool.clone() },
            BATCHES_IN_FLIGHT,
            MAX_PROCESSING_BATCH,
        );
        Ok(PostgresStore {
            pool,
            inserts,
            loads,
            claims,
            completions,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// Builds a rustls connector trusting the platform's root certificates.
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    // rustls is built with both ring and aws-lc-rs in this workspace, so it cannot pick a
    // provider by itself. Install ring unless the program already chose one.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error only means another thread installed a provider first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    tokio_postgres_rustls::MakeRustlsConnect::with_native_certs()
        .map(|(connector, _partial_errors)| connector)
        .map_err(|errors| {
            StoreError::Invalid(format!(
                "sslmode=require but no root certificates could be loaded: {errors:?}"
            ))
        })
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("PostgreSQL connection timed out ({kind:?})"))
        }
        PoolError::Backend(error) => {
            // tokio-postgres prints only "db error"; the server's message names the problem,
            // such as a database that does not exist.
            let detail = match error.as_db_error() {
                Some(db) => format!("{error}: {}", db.message()),
                None => match std::error::Error::source(&error) {
                    Some(source) => format!("{error}: {source}"),
                    None => error.to_string(),
                },
            };
            StoreError::Unavailable(format!("cannot connect to PostgreSQL: {detail}"))
        }
        PoolError::Closed => StoreError::Unavailable("PostgreSQL pool is closed".into()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Maps a driver error by what the caller should do: fix the value, retry later, or neither.
pub(crate) fn pg_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let class = &code.code()[..2];
        if *code == SqlState::STRING_DATA_RIGHT_TRUNCATION
            || *code == SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            || *code == SqlState::CHECK_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
            || *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *code == SqlState::UNTRANSLATABLE_CHARACTER
        {
            return StoreError::Invalid(db.message().to_string());
        }
        if class == "08"
            || class == "53"
            || class == "57"
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return StoreError::Unavailable(db.message().to_string());
        }
        return StoreError::Backend(format!("{}: {}", code.code(), db.message()));
    }
    let io_failure = std::error::Error::source(&error)
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
    if error.is_closed() || io_failure {
        return StoreError::Unavailable(error.to_string());
    }
    StoreError::Backend(error.to_string())
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        let result = embedded::migrations::runner()
            .run_async(&mut **client)
            .await
            .map(|_| ())
            .map_err(|error| StoreError::Backend(format!("migration failed: {error}")));
        let unlock = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error);
        result.and(unlock.map(|_| ()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(pg_error)?;
        Ok(())
    }

    async fn insert_event(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        crate::storage::limits::check_event(event)?;
        self.inserts.submit(event.clone()).await
    }

    async fn mark_published(&self, id: i64) -> Result<(), StoreError> {
        queries::mark_published(&self.client().await?, id).await
    }

    async fn mark_unpublished(&self, id: i64) -> Result<(), StoreError> {
        queries::mark_unpublished(&self.client().await?, id).await
    }

    async fn claim_for_republish(
        &self,
        unpublished_grace: Duration,
        stale_after: Duration,
        limit: i64,
    ) -> Result<Vec<RepublishCandidate>, StoreError> {
        queries::claim_for_republish(&self.client().await?, unpublished_grace, stale_after, limit)
            .await
    }

    async fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        queries::unpublished(&self.client().await?, older_than, limit).await
    }

    async fn claim(
        &self,
        id: i64,
        lease: Duration,
        respect_retry_time: bool,
    ) -> Result<ClaimOutcome, StoreError> {
        let request = batched::ClaimRequest {
            id,
            lease,
            respect_retry_time,
        };
        self.claims.submit(request).await
    }

    async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>, StoreError> {
        queries::claim_due(&self.client().await?, limit, lease).await
    }

    async fn load(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.loads.submit(id).await
    }

    async fn complete(&self, id: i64, completion: &Completion) -> Result<(), StoreError> {
        self.completions.submit((id, completion.clone())).await
    }

    async fn fail(&self, id: i64, failure: &Failure) -> Result<(), StoreError> {
        queries::fail(&mut self.client().await?, id, failure).await
    }

    async fn requeue(&self, filter: &EventFilter, limit: i64) -> Result<Vec<i64>, StoreError> {
        queries::requeue(&mut self.client().await?, filter, limit).await
    }

    async fn replay(&self, id: i64) -> Result<(), StoreError> {
        queries::replay(&mut self.client().await?, id).await
    }

    async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        queries::event_detail(&mut self.client().await?, id).await
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: i64,
        page_size: i64,
    ) -> Result<EventPage, StoreError> {
        let offset = crate::storage::rules::check_page(page, page_size)?;
        queries::list_events(&mut self.client().await?, filter, offset, page_size).await
    }

    async fn statistics(&self, filter: &EventFilter) -> Result<Statistics, StoreError> {
        queries::statistics(&mut self.client().await?, filter).await
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
        // Port 9 (discard) has no PostgreSQL server on 127.0.0.1.
        let store = connect("postgres://postgres@127.0.0.1:9/postgres", &options)
            .await
            .expect("the pool connects lazily");
        let result = store.ping().await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }
}
