//! Stripe event extraction.
pub struct StripeHandler;
