//! The TOML/serde shape of a config-defined HMAC provider.

use serde::Deserialize;

use super::mapping::HmacPaymentMapping;

/// One config-defined provider: how its signature is checked and, optionally, how payments
/// are read from its events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacProviderConfig {
    pub scheme: HmacSchemeConfig,
    #[serde(default)]
    pub payment: Option<HmacPaymentMapping>,
}

/// A provider's HMAC signature scheme.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSchemeConfig {
    /// Name of the header that carries the signature, e.g. `X-Shopify-Hmac-Sha256`.
    pub signature_header: String,
    #[serde(default)]
    pub signature_format: SignatureFormat,
    /// Text in front of each signature value that is removed before decoding, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    pub algorithm: Algorithm,
    /// Encoding of the signature value.
    pub encoding: Encoding,
    /// Conversion of the configured secret text into HMAC key bytes.
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    /// Signed message template: `{body}`, `{timestamp}`, `{url}` and `{header:NAME}` parts
    /// joined by literal text, e.g. `{timestamp}:{body}`.
    pub message: String,
    /// Header that carries the timestamp, when it is not an item of the signature header.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Maximum distance between the signed timestamp and now, in seconds, both directions.
    #[serde(default)]
    pub tolerance_seconds: Option<u64>,
    /// The exact public URL the provider posts to, for schemes that sign it.
    #[serde(default)]
    pub url: Option<String>,
    /// Source of the event id: a JSON pointer (`/id`), `header:NAME`, or `body:sha256`.
    pub event_id: String,
    /// Source of the event type: a JSON pointer or `header:NAME`.
    pub event_type: String,
    /// Source of the provider's event time (RFC 3339 text or Unix seconds).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// Layout of the signature header value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureFormat {
    /// The whole value (after `prefix`) is one signature. A repeated header gives several.
    #[default]
    Single,
    /// A list of `key=value` items such as `ts=1698796800;h1=ab12…`.
    KvList {
        /// Separator between items, e.g. `,` or `;`.
        item_separator: String,
        /// Key of the signature items, e.g. `h1` or `v1`; it may repeat.
        signature_key: String,
        /// Key of the timestamp item, e.g. `ts` or `t`.
        #[serde(default)]
        timestamp_key: Option<String>,
    },
}

/// HMAC digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha1")]
    HmacSha1,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

/// Text encoding of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64, padded or not.
    Base64,
}

/// Conversion of a configured secret into key bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyEncoding {
    /// The secret's UTF-8 bytes, as typed.
    #[default]
    Utf8,
    /// Standard base64.
    Base64,
    /// Hexadecimal.
    Hex,
}
