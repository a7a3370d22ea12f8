#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use payhook::providers::Handler;
use payhook::providers::hmac::{ConfigHandler, HmacPaymentMapping};

const MAPPING: &str = r#"
payment_id = "/data/id"
amount = "/data/totals/grand_total"
amount_format = "minor_units"
currency = "/data/currency_code"
status = "/data/status"
customer_id = "/data/customer_id"
order_id = "/data/invoice_number"
created_at = "/occurred_at"

[event_statuses]
"transaction.completed" = "succeeded"
"transaction.payment_failed" = "failed"
"#;

const DECIMAL_MAPPING: &str = r#"
payment_id = "/id"
amount = "/total_price"
amount_format = "decimal"
currency = "/currency"
created_at = "/updated_at"

[event_statuses]
"orders/paid" = "succeeded"
"#;

static HANDLERS: LazyLock<Vec<ConfigHandler>> = LazyLock::new(|| {
    [MAPPING, DECIMAL_MAPPING]
        .into_iter()
        .map(|text| {
            let mapping: HmacPaymentMapping = toml::from_str(text).expect("valid mapping");
            ConfigHandler::new("fuzz", Some(mapping)).expect("valid handler")
        })
        .collect()
});

fuzz_target!(|input: (&str, &str)| {
    let (event_type, payload) = input;
    for handler in HANDLERS.iter() {
        let _ = handler.extract(event_type, payload);
    }
});
