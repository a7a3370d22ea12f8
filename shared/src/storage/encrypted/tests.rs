use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::model::NewEvent;
use crate::storage::{EventFilter, StoreOptions, connect};

const PAYLOAD: &str = r#"{"id":"evt_enc_1","type":"charge.succeeded","card":"4242-secret-marker"}"#;

fn key_entry(id: &str, byte: u8) -> String {
    format!("{id}:{}", STANDARD.encode([byte; KEY_LEN]))
}

fn keys(entries: &[String]) -> PayloadKeys {
    PayloadKeys::parse(entries).unwrap().unwrap()
}

fn event(event_id: &str, payload: &str) -> NewEvent {
    NewEvent {
        provider: "stripe".to_string(),
        event_id: event_id.to_string(),
        event_type: "charge.succeeded".to_string(),
        raw_payload: payload.to_string(),
        signature: Some("t=1,v1=00".to_string()),
        headers: "{}".to_string(),
        source_ip: Some("127.0.0.1".to_string()),
        user_agent: None,
        signature_verified: true,
        signature_key_id: Some("stripe#1".to_string()),
        provider_created_at: None,
        max_attempts: 3,
        published: false,
    }
}

struct Database {
    dir: tempfile::TempDir,
    url: String,
}

async fn database() -> (Database, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("enc.db").display());
    let store = connect(&url, &StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    (Database { dir, url }, store)
}

async fn raw_column(inner: &Arc<dyn Store>, id: i64) -> String {
    inner
        .event_detail(id)
        .await
        .unwrap()
        .unwrap()
        .event
        .raw_payload
}

#[tokio::test]
async fn payload_round_trips_through_store() {
    let (_db, inner) = database().await;
    let store = EncryptedStore::new(inner.clone(), keys(&[key_entry("k1", 7)]));

    let id = store
        .insert_event(&event("evt_enc_1", PAYLOAD))
        .await
        .unwrap()
        .id();

    let stored = raw_column(&inner, id).await;
    assert!(stored.starts_with("enc:v1:k1:"), "{stored}");
    assert!(!stored.contains("4242-secret-marker"));
    let detail = store.event_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.event.raw_payload, PAYLOAD);
    let page = store
        .list_events(&EventFilter::default(), 1, 10)
        .await
        .unwrap();
    assert_eq!(page.events[0].raw_payload, PAYLOAD);
    let claimed = store.claim_due(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].raw_payload, PAYLOAD);
}

#[tokio::test]
async fn claim_returns_decrypted_payload() {
    let (_db, inner) = database().await;
    let store = EncryptedStore::new(inner, keys(&[key_entry("k1", 7)]));
    let id = store
        .insert_event(&event("evt_enc_claim", PAYLOAD))
        .await
        .unwrap()
        .id();

    let outcome = store
        .claim(id, Duration::from_secs(30), true)
        .await
        .unwrap();

    let ClaimOutcome::Claimed(claimed) = outcome else {
        panic!("row was not claimed: {outcome:?}");
    };
    assert_eq!(claimed.raw_payload, PAYLOAD);
}

#[tokio::test]
async fn rotated_keys_still_decrypt_old_rows() {
    let (_db, inner) = database().await;
    let old = EncryptedStore::new(inner.clone(), keys(&[key_entry("k1", 7)]));
    let old_id = old
        .insert_event(&event("evt_enc_old", PAYLOAD))
        .await
        .unwrap()
        .id();
    let rotated = EncryptedStore::new(
        inner.clone(),
        keys(&[key_entry("k2", 9), key_entry("k1", 7)]),
    );

    let new_id = rotated
        .insert_event(&event("evt_enc_new", PAYLOAD))
        .await
        .unwrap()
        .id();

    assert!(raw_column(&inner, new_id).await.starts_with("enc:v1:k2:"));
    let old_detail = rotated.event_detail(old_id).await.unwrap().unwrap();
    assert_eq!(old_detail.event.raw_payload, PAYLOAD);
    let new_detail = rotated.event_detail(new_id).await.unwrap().unwrap();
    assert_eq!(new_detail.event.raw_payload, PAYLOAD);
}

#[tokio::test]
async fn unknown_key_id_is_a_clear_error() {
    let (_db, inner) = database().await;
    let writer = EncryptedStore::new(inner.clone(), keys(&[key_entry("gone", 7)]));
    let id = writer
        .insert_event(&event("evt_enc_gone", PAYLOAD))
        .await
        .unwrap()
        .id();
    let reader = EncryptedStore::new(inner, keys(&[key_entry("k2", 9)]));

    let error = reader.event_detail(id).await.unwrap_err();

    let message = error.to_string();
    assert!(message.contains("unknown key id \"gone\""), "{message}");
    assert!(message.contains("PAYHOOK_PAYLOAD_KEYS"), "{message}");
}

#[test]
fn tampered_ciphertext_fails_authentication() {
    let keys = keys(&[key_entry("k1", 7)]);
    let sealed = keys.seal(PAYLOAD, "stripe\nevt_1").unwrap();
    let (head, encoded) = sealed.rsplit_once(':').unwrap();
    let mut bytes = STANDARD.decode(encoded).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = format!("{head}:{}", STANDARD.encode(bytes));

    let error = keys.open(&tampered, "stripe\nevt_1").unwrap_err();

    assert_eq!(error, PayloadKeyError::Tampered("k1".to_string()));
}

#[test]
fn sealed_payload_cannot_move_rows() {
    let keys = keys(&[key_entry("k1", 7)]);
    let sealed = keys.seal(PAYLOAD, "stripe\nevt_1").unwrap();

    let error = keys.open(&sealed, "stripe\nevt_2").unwrap_err();

    assert_eq!(error, PayloadKeyError::Tampered("k1".to_string()));
}

#[test]
fn each_seal_uses_fresh_nonce() {
    let keys = keys(&[key_entry("k1", 7)]);

    let first = keys.seal(PAYLOAD, "c").unwrap();
    let second = keys.seal(PAYLOAD, "c").unwrap();

    assert_ne!(first, second);
}

#[tokio::test]
async fn plaintext_rows_remain_readable() {
    let (_db, inner) = database().await;
    let id = inner
        .insert_event(&event("evt_plain", PAYLOAD))
        .await
        .unwrap()
        .id();
    let store = EncryptedStore::new(inner, keys(&[key_entry("k1", 7)]));

    let detail = store.event_detail(id).await.unwrap().unwrap();

    assert_eq!(detail.event.raw_payload, PAYLOAD);
}

#[tokio::test]
async fn database_file_lacks_plaintext() {
    let (db, inner) = database().await;
    let store = EncryptedStore::new(inner, keys(&[key_entry("k1", 7)]));
    for n in 0..20 {
        store
            .insert_event(&event(&format!("evt_file_{n}"), PAYLOAD))
            .await
            .unwrap();
    }
    // A second connection sees all rows, so they are committed to the files read below.
    let reopened = connect(&db.url, &StoreOptions::default()).await.unwrap();
    assert_eq!(
        reopened
            .list_events(&EventFilter::default(), 1, 50)
            .await
            .unwrap()
            .total_count,
        20
    );

    let mut contents = Vec::new();
    for entry in std::fs::read_dir(db.dir.path()).unwrap() {
        contents.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }

    let marker = b"4242-secret-marker";
    assert!(contents.len() > 4096, "database files are missing");
    assert!(
        contents
            .windows(b"enc:v1:k1:".len())
            .any(|w| w == b"enc:v1:k1:")
    );
    assert!(!contents.windows(marker.len()).any(|w| w == marker));
}

#[test]
fn key_parsing_rejects_bad_entries() {
    let short = format!("k1:{}", STANDARD.encode([1u8; 16]));
    let cases = [
        "no-colon".to_string(),
        "k1:not base64!".to_string(),
        short,
        format!(":{}", STANDARD.encode([1u8; 32])),
        format!("bad id:{}", STANDARD.encode([1u8; 32])),
    ];
    for entry in cases {
        let result = PayloadKeys::parse(std::slice::from_ref(&entry));
        assert!(
            matches!(result, Err(PayloadKeyError::InvalidKey { .. })),
            "{entry}"
        );
    }
    let twice = [key_entry("k1", 1), key_entry("k1", 2)];
    assert_eq!(
        PayloadKeys::parse(&twice).unwrap_err(),
        PayloadKeyError::DuplicateId("k1".to_string())
    );
    assert!(PayloadKeys::parse::<String>(&[]).unwrap().is_none());
}

#[test]
fn key_errors_never_show_key_material() {
    let secret = STANDARD.encode([0x5a; 31]);
    let error = PayloadKeys::parse(&[format!("k1:{secret}")]).unwrap_err();

    assert!(!error.to_string().contains(&secret), "{error}");
}

#[test]
fn keys_file_adds_to_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("# rotation\n{}\n", key_entry("k2", 3))).unwrap();

    let keys = PayloadKeys::load(
        &[crate::secret::Secret::new(key_entry("k1", 1))],
        Some(&path),
    )
    .unwrap()
    .unwrap();

    assert_eq!(keys.current_id(), "k1");
    let sealed_by_file_key = PayloadKeys::parse(&[key_entry("k2", 3)])
        .unwrap()
        .unwrap()
        .seal(PAYLOAD, "c")
        .unwrap();
    assert_eq!(keys.open(&sealed_by_file_key, "c").unwrap(), PAYLOAD);
}
