//! Stripe: `Stripe-Signature` verification and event extraction.
