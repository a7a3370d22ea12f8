//! Config-defined HMAC providers: the signature scheme (header, layout, algorithm, encoding,
//! key encoding, signed-message template, timestamp window) and an optional payment mapping
//! are read from configuration, so a new HMAC provider needs no code.

mod config;
mod mapping;
mod source;
mod template;
mod verifier;

pub use config::{
    Algorithm, Encoding, HmacProviderConfig, HmacSchemeConfig, KeyEncoding, SignatureFormat,
};
pub use mapping::{AmountFormat, ConfigHandler, HmacPaymentMapping};
pub use verifier::HmacVerifier;
