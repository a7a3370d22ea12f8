//! Builders for test rows and direct reads of columns the `Store` API does not return.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use payhook::model::{NewEvent, NewPaymentEvent, NewProcessingLog, StoredEvent};
use payhook::money::{Currency, Money};
use payhook::storage::{Attempt, ClaimOutcome, Completion, Store};

/// How a case reaches its database besides the store.
#[derive(Clone)]
pub enum Raw {
    Sqlite(PathBuf),
    Postgres(String),
    /// Connection string of the case's own SQL Server database.
    Mssql(String),
}

#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
}

impl Context {
    pub fn new(store: Arc<dyn Store>, raw: Raw) -> Context {
        Context { store, raw }
    }

    /// Returns the `amount` column of the event's payment rows as stored text, by id.
    ///
    /// SQL Server keeps `Amount` as `DECIMAL(19,4)`, so its value is shown with the scale
    /// of the row's `AmountExponent` when that drops only trailing zeros.
    pub async fn stored_amounts(&self, webhook_event_id: i64) -> Vec<Option<String>> {
        if let Raw::Mssql(url) = &self.raw {
            return mssql_amounts(url, webhook_event_id).await;
        }
        self.texts(
            "SELECT amount FROM payment_events WHERE webhook_event_id = ?1 ORDER BY id",
            "SELECT amount::text FROM payment_events WHERE webhook_event_id = $1 ORDER BY id",
            webhook_event_id,
        )
        .await
    }

    /// Returns the number of applied migrations.
    pub async fn migration_count(&self) -> usize {
        if let Raw::Mssql(url) = &self.raw {
            let mut client = crate::backends::mssql_client(url, None)
                .await
                .expect("connect");
            let rows = client
                .simple_query("SELECT version FROM refinery_schema_history")
                .await
                .expect("query")
                .into_first_result()
                .await
                .expect("read rows");
            return rows.len();
        }
        self.texts(
            "SELECT CAST(version AS TEXT) FROM refinery_schema_history WHERE ?1 = ?1",
            "SELECT version::text FROM refinery_schema_history WHERE $1::bigint = $1::bigint",
            0,
        )
        .await
        .len()
    }

    async fn texts(&self, sqlite_sql: &str, postgres_sql: &str, id: i64) -> Vec<Option<String>> {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open SQLite file");
                let mut statement = conn.prepare(sqlite_sql).expect("prepare");
                statement
                    .query_map([id], |row| row.get::<_, Option<String>>(0))
                    .expect("query")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("read rows")
            }
            Raw::Postgres(url) => {
                let client = crate::backends::admin_client(url).await.expect("connect");
                client
                    .query(postgres_sql, &[&id])
                    .await
                    .expect("query")
                    .iter()
                    .map(|row| row.get::<_, Option<String>>(0))
                    .collect()
            }
            Raw::Mssql(_) => unreachable!("SQL Server reads have their own queries"),
        }
    }
}

async fn mssql_amounts(url: &str, webhook_event_id: i64) -> Vec<Option<String>> {
    let mut client = crate::backends::mssql_client(url, None)
        .await
        .expect("connect");
    let id = i32::try_from(webhook_event_id).expect("INT id");
    let rows = client
        .query(
            "SELECT Amount, AmountExponent FROM PaymentEvents WHERE WebhookEventId = @P1 \
             ORDER BY Id",
            &[&id],
        )
        .await
        .expect("query")
        .into_first_result()
        .await
        .expect("read rows");
    rows.iter()
        .map(|row| {
            let amount: Option<rust_decimal::Decimal> = row.get(0);
            let exponent: Option<i32> = row.get(1);
            amount.map(|amount| {
                let scale = u32::try_from(exponent.expect("exponent beside amount"))
                    .expect("non-negative exponent");
                let mut rescaled = amount;
                rescaled.rescale(scale);
                // A rescale that changed the value would hide a wrong stored amount.
                if rescaled == amount {
                    rescaled.to_string()
                } else {
                    amount.to_string()
                }
            })
        })
        .collect()
}

/// A valid new event for `provider` with the given event id.
pub fn new_event(provider: &str, event_id: &str) -> NewEvent {
    NewEvent {
        provider: provider.to_string(),
        event_id: event_id.to_string(),
        event_type: "payment_intent.succeeded".to_string(),
        raw_payload: format!(r#"{{"id":"{event_id}","object":"event"}}"#),
        signature: Some("t=1733300000,v1=5f1c0ffee0ddba11".to_string()),
        headers: r#"{"stripe-signature":"t=1733300000,v1=5f1c0ffee0ddba11"}"#.to_string(),
        source_ip: Some("203.0.113.7".to_string()),
        user_agent: Some("Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_string()),
        signature_verified: true,
        signature_key_id: Some("primary".to_string()),
        provider_created_at: None,
        max_attempts: 5,
        published: false,
    }
}

/// A payment event with an amount of `minor` units.
pub fn payment(payment_id: &str, minor: i64, currency: &str, exponent: u32) -> NewPaymentEvent {
    NewPaymentEvent {
        payment_id: payment_id.to_string(),
        event_type: "payment_intent.succeeded".to_string(),
        status: "succeeded".to_string(),
        status_raw: Some("succeeded".to_string()),
        amount: Some(Money {
            minor,
            currency: Currency::parse(currency).expect("valid currency"),
            exponent,
        }),
        customer_id: Some("cus_contract_1".to_string()),
        order_id: Some("order-1001".to_string()),
        transaction_id: Some("ch_contract_1".to_string()),
        metadata: Some(r#"{"fee":"0.30"}"#.to_string()),
        provider_created_at: None,
    }
}

pub fn log(step: &str, status: &str) -> NewProcessingLog {
    NewProcessingLog {
        step: step.to_string(),
        status: status.to_string(),
        duration_ms: 12,
        error_message: None,
        additional_data: None,
    }
}

pub fn completion(payments: Vec<NewPaymentEvent>) -> Completion {
    Completion {
        attempt: Attempt::Claimed(1),
        payment_events: payments,
        logs: vec![log("handler", "success"), log("persist", "success")],
        processed_payload: Some(r#"{"payments":1}"#.to_string()),
    }
}

pub const LEASE: Duration = Duration::from_secs(60);

/// Inserts an event and returns its id.
pub async fn insert(store: &Arc<dyn Store>, provider: &str, event_id: &str) -> i64 {
    store
        .insert_event(&new_event(provider, event_id))
        .await
        .expect("insert event")
        .id()
}

/// Claims a row that must be claimable.
pub async fn claim(store: &Arc<dyn Store>, id: i64) -> StoredEvent {
    match store.claim(id, LEASE, true).await.expect("claim") {
        ClaimOutcome::Claimed(event) => event,
        other => panic!("expected a claim of {id}, got {other:?}"),
    }
}

/// Returns the time as stored: cut to whole microseconds.
pub fn micros(value: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    value.trunc_subsecs(6)
}
