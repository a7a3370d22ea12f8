//! SQLite backend: rusqlite connections pooled by deadpool-sqlite.
//!
//! Every connection runs in WAL mode with `synchronous=FULL`, so a commit is fsynced to the
//! WAL before `insert_event` returns and survives both a process crash and a power loss.
//! `NORMAL` would also survive a process crash, but a power loss could roll back the last
//! commits, and those are webhooks whose delivery was already acknowledged to the provider.
//! The cost is one fsync per commit.
//!
//! SQLite allows one writer at a time. Transactions that write start with `BEGIN IMMEDIATE`,
//! so they take the write lock before they read and never fail half-way on a lock upgrade. Lock waits are covered by `busy_timeout`, and an operation that still sees
//! `SQLITE_BUSY` is retried a bounded number of times before it reports `Unavailable`.

mod queries;
mod rows;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_sqlite::{Config, Hook, HookError, Pool, Runtime};
use rusqlite::{Connection, ErrorCode};

use crate::model::{EventDetail, InsertOutcome, NewEvent, StoredEvent};
use crate::storage::group_commit::{Batch, BatchInsert, GroupCommit, InsertBatch};
use crate::storage::{
    ClaimOutcome, Completion, EventFilter, EventPage, Failure, RepublishCandidate, Statistics,
    Store, StoreError, StoreOptions,
};

mod embedded {
    refinery::embed_migrations!("../migrations/sqlite");
}

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times an operation is retried after `SQLITE_BUSY` outlasted `BUSY_TIMEOUT`.
const BUSY_RETRIES: u32 = 5;

/// Location of the database: a file path or a private in-memory database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    File(PathBuf),
    /// A private in-memory database on one shared connection; it is lost when the store
    /// is dropped.
    Memory,
}

impl SqliteLocation {
    /// Parses `sqlite://relative.db`, `sqlite:///absolute.db`, `sqlite:relative.db` or
    /// `sqlite::memory:`.
    pub fn parse(url: &str) -> Result<SqliteLocation, StoreError> {
        let rest = url
            .trim()
            .strip_prefix("sqlite:")
            .ok_or_else(|| StoreError::Invalid("SQLite URL must start with sqlite:".into()))?;
        if rest == ":memory:" || rest == "//:memory:" {
            return Ok(SqliteLocation::Memory);
        }
        if rest.contains('?') {
            return Err(StoreError::Invalid(
                "SQLite URL must not have query parameters; use sqlite://PATH".into(),
            ));
        }
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::Invalid(
                "SQLite URL has no file path; use sqlite://payhook.db or sqlite:///abs/path.db"
                    .into(),
            ));
        }
        Ok(SqliteLocation::File(PathBuf::from(path)))
    }
}

/// Events per group-committed insert transaction.
const MAX_INSERT_BATCH: usize = 128;

/// Completions per group-committed transaction.
const MAX_COMPLETION_BATCH: usize = 64;

/// A [`Store`] on one SQLite database file.
pub struct SqliteStore {
    pool: Pool,
    inserts: GroupCommit<InsertBatch<EventInserter>>,
    completions: GroupCommit<Completions>,
}

/// Completions of claimed rows, batched: several completions share one transaction.
struct Completions {
    pool: Pool,
}

#[async_trait]
impl Batch for Completions {
    type Item = (i64, Completion);
    type Output = ();

    async fn run(&self, items: Vec<(i64, Completion)>) -> Vec<Result<(), StoreError>> {
        if let [(id, completion)] = items.as_slice() {
            let (id, completion) = (*id, completion.clone());
            return vec![
                run_on(&self.pool, move |conn| {
                    queries::complete(conn, id, &completion)
                })
                .await,
            ];
        }
        let count = items.len();
        let items = std::sync::Arc::new(items);
        let batch = std::sync::Arc::clone(&items);
        match run_on(&self.pool, move |conn| queries::complete_many(conn, &batch)).await {
            Ok(results) if results.len() == count => results,
            // The transaction failed as a whole: every event is tried on its own.
            _ => {
                let mut results = Vec::with_capacity(count);
                for (id, completion) in items.iter() {
                    let (id, completion) = (*id, completion.clone());
                    results.push(
                        run_on(&self.pool, move |conn| {
                            queries::complete(conn, id, &completion)
                        })
                        .await,
                    );
                }
                results
            }
        }
    }
}

/// Inserts of webhook events, batched by [`GroupCommit`].
struct EventInserter {
    pool: Pool,
}

#[async_trait]
impl BatchInsert for EventInserter {
    async fn insert_batch(&self, events: &[NewEvent]) -> Result<Vec<InsertOutcome>, StoreError> {
        let events = events.to_vec();
        run_on(&self.pool, move |conn| {
            queries::insert_events(conn, &events)
        })
        .await
    }

    async fn insert_one(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        let event = event.clone();
        run_on(&self.pool, move |conn| queries::insert_event(conn, &event)).await
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by a `sqlite:` URL.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let location = SqliteLocation::parse(url)?;
        let (path, pool_size) = match &location {
            SqliteLocation::File(path) => {
                enable_wal(path.clone()).await?;
                (path.clone(), options.pool_size.max(1))
            }
            SqliteLocation::Memory => (PathBuf::from(":memory:"), 1),
        };
        let pool = Config::new(path)
            .builder(Runtime::Tokio1)
            .map_err(|error| StoreError::Backend(error.to_string()))?
            .max_size(pool_size)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .post_create(Hook::async_fn(|conn, _| {
                Box::pin(async move {
                    conn.interact(configure_connection)
                        .await
                        .map_err(|error| HookError::message(error.to_string()))?
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|error| StoreError::Backend(error.to_string()))?;
        // SQLite has one writer at a time, so one batch runs at a time and the inserts that
        // arrive meanwhile share the next transaction and its fsync.
        let inserter = InsertBatch(EventInserter { pool: pool.clone() });
        let inserts = GroupCommit::new(inserter, 1, MAX_INSERT_BATCH);
        let completions =
            GroupCommit::new(Completions { pool: pool.clone() }, 1, MAX_COMPLETION_BATCH);
        Ok(SqliteStore {
            pool,
            inserts,
            completions,
        })
    }

    /// Runs `operation` on a pooled connection, retrying it while SQLite reports busy.
    async fn run<R, F>(&self, operation: F) -> Result<R, StoreError>
    where
        F: Fn(&mut Connection) -> Result<R, SqlError> + Send + 'static,
        R: Send + 'static,
    {
        run_on(&self.pool, operation).await
    }
}

/// Runs `operation` on a connection of `pool`, retrying it while SQLite reports busy.
async fn run_on<R, F>(pool: &Pool, operation: F) -> Result<R, StoreError>
where
    F: Fn(&mut Connection) -> Result<R, SqlError> + Send + 'static,
    R: Send + 'static,
{
    let conn = pool.get().await.map_err(|error| {
        StoreError::Unavailable(format!("no SQLite connection available: {error}"))
    })?;
    conn.interact(move |conn| {
        let mut attempt = 0;
        loop {
            match operation(conn) {
                Err(SqlError::Sqlite(error)) if is_busy(&error) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    let pause = 20 * u64::from(attempt) + fastrand::u64(0..20);
                    std::thread::sleep(Duration::from_millis(pause));
                }
                other => return other.map_err(StoreError::from),
            }
        }
    })
    .await
    .map_err(|error| StoreError::Backend(format!("SQLite worker thread failed: {error}")))?
}

/// Switches the file to WAL mode once; the mode is stored in the file.
async fn enable_wal(path: PathBuf) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let conn = Connection::open(&path).map_err(|error| {
            StoreError::Unavailable(format!(
                "cannot open SQLite database {}: {error}",
                path.display()
            ))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)))
            .map(|_: String| ())
            .map_err(|error| StoreError::from(SqlError::Sqlite(error)))
    })
    .await
    .map_err(|error| StoreError::Backend(format!("SQLite open task failed: {error}")))?
}

/// Applies the per-connection settings described in the module documentation.
fn configure_connection(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Error inside a connection closure: SQLite's own, kept apart so busy errors can be retried.
#[derive(Debug)]
pub(crate) enum SqlError {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for SqlError {
    fn from(error: rusqlite::Error) -> Self {
        SqlError::Sqlite(error)
    }
}

impl From<StoreError> for SqlError {
    fn from(error: StoreError) -> Self {
        SqlError::Store(error)
    }
}

impl From<SqlError> for StoreError {
    fn from(error: SqlError) -> Self {
        let error = match error {
            SqlError::Store(error) => return error,
            SqlError::Sqlite(error) => error,
        };
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(format!("SQLite database stayed locked: {error}"))
            }
            Some(ErrorCode::CannotOpen | ErrorCode::DiskFull | ErrorCode::ReadOnly) => {
                StoreError::Unavailable(error.to_string())
            }
            Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(error.to_string()),
            _ => StoreError::Backend(error.to_string()),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            embedded::migrations::runner()
                .run(conn)
                .map(|_| ())
                .map_err(|error| {
                    SqlError::Store(StoreError::Backend(format!("migration failed: {error}")))
                })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    async fn insert_event(&self, event: &NewEvent) -> Result<InsertOutcome, StoreError> {
        crate::storage::limits::check_event(event)?;
        self.inserts.submit(event.clone()).await
    }

    async fn mark_published(&self, id: i64) -> Result<(), StoreError> {
        self.run(move |conn| queries::mark_published(conn, id))
            .await
    }

    async fn mark_unpublished(&self, id: i64) -> Result<(), StoreError> {
        self.run(move |conn| queries::mark_unpublished(conn, id))
            .await
    }

    async fn claim_for_republish(
        &self,
        unpublished_grace: Duration,
        stale_after: Duration,
        limit: i64,
    ) -> Result<Vec<RepublishCandidate>, StoreError> {
        self.run(move |conn| {
            queries::claim_for_republish(conn, unpublished_grace, stale_after, limit)
        })
        .await
    }

    async fn unpublished(
        &self,
        older_than: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.run(move |conn| queries::unpublished(conn, older_than, limit))
            .await
    }

    async fn claim(
        &self,
        id: i64,
        lease: Duration,
        respect_retry_time: bool,
    ) -> Result<ClaimOutcome, StoreError> {
        self.run(move |conn| queries::claim(conn, id, lease, respect_retry_time))
            .await
    }

    async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<StoredEvent>, StoreError> {
        self.run(move |conn| queries::claim_due(conn, limit, lease))
            .await
    }

    async fn load(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.run(move |conn| queries::load(conn, id)).await
    }

    async fn complete(&self, id: i64, completion: &Completion) -> Result<(), StoreError> {
        self.completions.submit((id, completion.clone())).await
    }

    async fn fail(&self, id: i64, failure: &Failure) -> Result<(), StoreError> {
        let failure = failure.clone();
        self.run(move |conn| queries::fail(conn, id, &failure))
            .await
    }

    async fn requeue(&self, filter: &EventFilter, limit: i64) -> Result<Vec<i64>, StoreError> {
        let filter = filter.clone();
        self.run(move |conn| queries::requeue(conn, &filter, limit))
            .await
    }

    async fn replay(&self, id: i64) -> Result<(), StoreError> {
        self.run(move |conn| queries::replay(conn, id)).await
    }

    async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        self.run(move |conn| queries::event_detail(conn, id)).await
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        page: i64,
        page_size: i64,
    ) -> Result<EventPage, StoreError> {
        let offset = crate::storage::rules::check_page(page, page_size)?;
        let filter = filter.clone();
        self.run(move |conn| queries::list_events(conn, &filter, offset, page_size))
            .await
    }

    async fn statistics(&self, filter: &EventFilter) -> Result<Statistics, StoreError> {
        let filter = filter.clone();
        self.run(move |conn| queries::statistics(conn, &filter))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::NewEvent;

    #[test]
    fn url_forms_parse_to_locations() {
        let parse = |url: &str| SqliteLocation::parse(url).ok();
        let file = |path: &str| Some(SqliteLocation::File(PathBuf::from(path)));
        assert_eq!(parse("sqlite://payhook.db"), file("payhook.db"));
        assert_eq!(parse("sqlite:///var/lib/p.db"), file("/var/lib/p.db"));
        assert_eq!(parse("sqlite:data/p.db"), file("data/p.db"));
        assert_eq!(parse("sqlite::memory:"), Some(SqliteLocation::Memory));
        assert_eq!(parse("sqlite://"), None);
        assert_eq!(parse("sqlite://p.db?mode=ro"), None);
    }

    #[tokio::test]
    async fn memory_database_keeps_rows() {
        let store = SqliteStore::open("sqlite::memory:", &StoreOptions::default())
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let event = NewEvent {
            provider: "stripe".into(),
            event_id: "evt_memory_1".into(),
            event_type: "charge.succeeded".into(),
            raw_payload: "{}".into(),
            signature: None,
            headers: "{}".into(),
            source_ip: None,
            user_agent: None,
            signature_verified: true,
            signature_key_id: None,
            provider_created_at: None,
            max_attempts: 3,
            published: false,
        };
        let id = store.insert_event(&event).await.expect("insert").id();
        let detail = store.event_detail(id).await.expect("detail");
        assert_eq!(detail.expect("row").event.event_id, "evt_memory_1");
    }
}
