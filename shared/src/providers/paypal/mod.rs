//! PayPal: webhook event extraction.

pub mod extract;
