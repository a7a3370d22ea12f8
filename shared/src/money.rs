//! Exact money amounts: integer minor units plus the currency's exponent, never a float.
//!
//! Two exponent tables exist because providers disagree with ISO 4217. Stripe sends integer
//! minor units in its own table (ISK, HUF and TWD have two decimals in Stripe's API even
//! though ISK's ISO exponent is 0). PayPal sends decimal strings in major units whose scale
//! follows ISO 4217, except that HUF, JPY and TWD are sent without decimals.

use rust_decimal::Decimal;
use thiserror::Error;

/// An exact amount in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in minor units (cents for USD, fils for KWD, yen for JPY).
    pub minor: i64,
    /// Upper-case ISO 4217 code.
    pub currency: Currency,
    /// Number of decimal digits of the minor unit in the source's table.
    pub exponent: u32,
}

impl Money {
    /// Returns the amount in major units with exactly `exponent` decimal digits.
    pub fn decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.exponent)
    }

    /// Formats the amount with exactly `exponent` decimals, e.g. `20.00` or `5.120`.
    pub fn to_decimal_string(&self) -> String {
        self.decimal().to_string()
    }
}

/// A three-letter upper-case currency code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a currency code in any case; rejects anything that is not three ASCII letters.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::InvalidCurrency(code.to_string()));
        }
        Ok(Currency([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// Returns the upper-case code.
    pub fn as_str(&self) -> &str {
        // The constructor accepts ASCII letters only, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reasons an amount or currency is rejected instead of being rounded or guessed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("invalid currency code {0:?}: expected three ASCII letters")]
    InvalidCurrency(String),
    #[error("unknown currency {0}: no minor-unit exponent is configured for it")]
    UnknownCurrency(String),
    #[error("malformed amount {0:?}: expected a plain decimal number such as 19.99")]
    MalformedAmount(String),
    #[error("amount {amount:?} has {scale} decimals but {currency} allows at most {exponent}")]
    ScaleTooLarge {
        amount: String,
        currency: String,
        scale: u32,
        exponent: u32,
    },
    #[error("amount {0:?} is out of range")]
    OutOfRange(String),
}
