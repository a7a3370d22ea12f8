//! Stripe: `Stripe-Signature` verification and event extraction.

mod billing;
mod extract;
mod identity;
mod payments;
mod signature;

pub use extract::StripeHandler;
pub use signature::{
    DEFAULT_TOLERANCE, SIGNATURE_HEADER, StripeConfigError, StripeVerifier, sign_header,
};
