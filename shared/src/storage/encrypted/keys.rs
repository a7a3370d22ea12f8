//! AES-256-GCM keys for raw payloads and the `enc:v1:` text format.
//!
//! A sealed payload reads `enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`, with a
//! random 96-bit nonce per payload. The associated data binds the ciphertext to its key id,
//! provider and event id, so a sealed payload copied into another row fails to open.

use std::collections::HashMap;
use std::path::Path;

use crate::secret::Secret;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use crate::config::read_secret_lines;

/// Prefix of every sealed payload.
pub const SEALED_PREFIX: &str = "enc:v1:";

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;

/// Failures of key parsing, sealing and opening. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadKeyError {
    #[error("invalid payload key entry {entry}: {reason}")]
    InvalidKey { entry: usize, reason: String },
    #[error("payload key id {0:?} is listed twice")]
    DuplicateId(String),
    #[error("cannot read payload keys: {0}")]
    File(String),
    #[error(
        "raw payload is encrypted with unknown key id {0:?}; add that key to PAYHOOK_PAYLOAD_KEYS"
    )]
    UnknownKey(String),
    #[error("raw payload is not a valid enc:v1 value: {0}")]
    Malformed(String),
    #[error("raw payload failed authentication with key {0:?}: it was altered or moved")]
    Tampered(String),
    #[error("encryption failed")]
    Seal,
}

/// The configured keys: the first encrypts, every one decrypts.
pub struct PayloadKeys {
    current: String,
    keys: HashMap<String, LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for PayloadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("PayloadKeys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

impl PayloadKeys {
    /// Parses `id:base64key` entries. Returns `None` when there are none. Ids are 1 to 32
    /// characters of letters, digits, `-` and `_`; keys are 32 bytes in standard base64.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Option<Self>, PayloadKeyError> {
        let mut current = None;
        let mut keys = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let invalid = |reason: &str| PayloadKeyError::InvalidKey {
                entry: index + 1,
                reason: reason.to_string(),
            };
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| invalid("expected id:base64key"))?;
            let id = id.trim();
            let id_is_valid = (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_is_valid {
                return Err(invalid(
                    "the id must be 1 to 32 letters, digits, '-' or '_'",
                ));
            }
            let material = STANDARD
                .decode(encoded.trim())
                .map_err(|_| invalid("the key is not valid standard base64"))?;
            if material.len() != KEY_LEN {
                return Err(invalid("the key must decode to exactly 32 bytes"));
            }
            let key = UnboundKey::new(&AES_256_GCM, &material).map_err(|_| invalid("bad key"))?;
            if keys.insert(id.to_string(), LessSafeKey::new(key)).is_some() {
                return Err(PayloadKeyError::DuplicateId(id.to_string()));
            }
            current.get_or_insert_with(|| id.to_string());
        }
        Ok(current.map(|current| PayloadKeys {
            current,
            keys,
            random: SystemRandom::new(),
        }))
    }

    /// Parses the keys from the setting's entries followed by the lines of `file`.
    pub fn load(entries: &[Secret], file: Option<&Path>) -> Result<Option<Self>, PayloadKeyError> {
        let mut all: Vec<String> = entries.iter().map(|e| e.expose().to_string()).collect();
        if let Some(path) = file {
            let lines =
                read_secret_lines(path).map_err(|e| PayloadKeyError::File(e.to_string()))?;
            all.extend(lines.iter().map(|line| line.expose().to_string()));
        }
        Self::parse(&all)
    }

    /// Returns the id of the key that encrypts.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `plaintext` with the current key, bound to `context` (provider and event id).
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, PayloadKeyError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| PayloadKeyError::Seal)?;
        let mut sealed = plaintext.as_bytes().to_vec();
        let aad = associated_data(&self.current, context);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed,
        )
        .map_err(|_| PayloadKeyError::Seal)?;
        let mut framed = nonce.to_vec();
        framed.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.current,
            STANDARD.encode(framed)
        ))
    }

    /// Decrypts a sealed payload, or returns `stored` unchanged when it is plaintext written
    /// before encryption was enabled.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, PayloadKeyError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, encoded) = rest
            .split_once(':')
            .ok_or_else(|| PayloadKeyError::Malformed("missing key id".to_string()))?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| PayloadKeyError::UnknownKey(id.to_string()))?;
        let framed = STANDARD
            .decode(encoded)
            .map_err(|_| PayloadKeyError::Malformed("invalid base64".to_string()))?;
        if framed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(PayloadKeyError::Malformed("too short".to_string()));
        }
        let (nonce, ciphertext) = framed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| PayloadKeyError::Malformed("invalid nonce".to_string()))?;
        let mut buffer = ciphertext.to_vec();
        let aad = associated_data(id, context);
        let plaintext = key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| PayloadKeyError::Tampered(id.to_string()))?;
        String::from_utf8(plaintext.to_vec())
            .map_err(|_| PayloadKeyError::Malformed("plaintext is not UTF-8".to_string()))
    }
}

fn associated_data(key_id: &str, context: &str) -> Vec<u8> {
    format!("{SEALED_PREFIX}{key_id}\n{context}").into_bytes()
}
