//! PayPal: webhook verification with PayPal's signing certificate or through PayPal's
//! verification API, and payment extraction.

pub mod cache;
pub mod certs;
pub mod client;
pub mod extract;
mod identity;
pub mod message;
pub mod policy;
pub mod postback;
pub mod signature;

pub use certs::{CertError, TrustStore};
pub use client::{FetchError, HttpsClient, Resolver};
pub use message::signed_message;
pub use policy::{CertUrlPolicy, PayPalMode};
pub use postback::{PayPalPostbackSettings, PayPalPostbackVerifier};
pub use signature::{PayPalSettings, PayPalVerifier};
