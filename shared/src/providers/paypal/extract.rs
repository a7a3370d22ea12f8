//! PayPal extraction.
