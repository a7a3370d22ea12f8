//! Every provider kind configured from a generated TOML file and served by the real service
//! on port 0 with a temporary SQLite database: genuine deliveries become exact payment rows,
//! forged ones get 400 and are stored nowhere. PayPal's certificate host and API are
//! stand-in HTTPS servers on 127.0.0.1.

mod examples;
mod hmac_flow;
mod paypal_flow;
mod pki;
mod signing;
mod standard_flow;
mod startup;
mod stripe_endpoints;
mod support;
