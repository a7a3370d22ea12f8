//! Exact money amounts: integer minor units plus the currency's exponent, never a float.
//!
//! Two exponent tables exist because providers disagree with ISO 4217. Stripe sends integer
//! minor units in its own table (ISK, HUF and TWD have two decimals in Stripe's API even
//! though ISK's ISO exponent is 0). PayPal sends decimal strings in major units whose scale
//! follows ISO 4217, except that HUF, JPY and TWD are sent without decimals.

mod currencies;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;
use thiserror::Error;

use currencies::{PAYPAL_NO_DECIMALS, STRIPE_THREE_DECIMAL, STRIPE_ZERO_DECIMAL};

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

    /// Builds an amount from Stripe's integer minor units, using [`stripe_exponent`].
    ///
    /// `code` may be in any case (Stripe sends `usd`). ISK `500` is 5.00 ISK because Stripe
    /// keeps two decimals for ISK, and KWD `5120` is 5.120 KWD.
    pub fn from_stripe_minor(minor: i64, code: &str) -> Result<Money, MoneyError> {
        let currency = Currency::parse(code)?;
        let exponent = stripe_exponent(currency)?;
        Ok(Money {
            minor,
            currency,
            exponent,
        })
    }

    /// Builds an amount from integer minor units in the currency's ISO 4217 exponent, for
    /// providers that send minor units without Stripe's exceptions.
    pub fn from_iso_minor(minor: i64, code: &str) -> Result<Money, MoneyError> {
        let currency = Currency::parse(code)?;
        let exponent = iso_exponent(currency)?;
        Ok(Money {
            minor,
            currency,
            exponent,
        })
    }

    /// Parses a decimal string in major units, as PayPal sends it (`"19.99"`, `"-0.99"`).
    ///
    /// Accepts only `-?[0-9]+(\.[0-9]+)?`: no exponent, sign `+`, spaces, grouping or
    /// missing digits on either side of the point. The result keeps the currency's ISO
    /// exponent, so `"57"` USD becomes 5700 minor units with exponent 2.
    ///
    /// The scale may not exceed the ISO exponent. HUF, JPY and TWD follow PayPal's stricter
    /// rule that amounts carry no decimals: a non-zero fraction such as `"1000.50"` HUF is
    /// rejected with [`MoneyError::ScaleTooLarge`] (exponent 0). A zero fraction within the
    /// ISO exponent, such as `"1000.00"` HUF, is the same amount exactly and is accepted.
    pub fn parse_decimal(value: &str, code: &str) -> Result<Money, MoneyError> {
        let currency = Currency::parse(code)?;
        let exponent = iso_exponent(currency)?;
        let (negative, integer_digits, fraction_digits) =
            split_decimal(value).ok_or_else(|| MoneyError::MalformedAmount(value.to_string()))?;

        let scale = u32::try_from(fraction_digits.len()).unwrap_or(u32::MAX);
        let scale_error = |allowed: u32| MoneyError::ScaleTooLarge {
            amount: value.to_string(),
            currency: currency.to_string(),
            scale,
            exponent: allowed,
        };
        if scale > exponent {
            return Err(scale_error(exponent));
        }
        let no_decimals = PAYPAL_NO_DECIMALS.contains(&currency.as_str());
        if no_decimals && fraction_digits.bytes().any(|digit| digit != b'0') {
            return Err(scale_error(0));
        }

        let out_of_range = || MoneyError::OutOfRange(value.to_string());
        let mut minor: i64 = 0;
        let padding = std::iter::repeat_n(b'0', (exponent - scale) as usize);
        let digits = integer_digits
            .bytes()
            .chain(fraction_digits.bytes())
            .chain(padding);
        for digit in digits {
            minor = minor
                .checked_mul(10)
                .and_then(|shifted| shifted.checked_add(i64::from(digit - b'0')))
                .ok_or_else(out_of_range)?;
        }
        if negative {
            minor = -minor;
        }
        Ok(Money {
            minor,
            currency,
            exponent,
        })
    }
}

/// Splits `-?[0-9]+(\.[0-9]+)?` into its sign, integer digits and fraction digits.
fn split_decimal(value: &str) -> Option<(bool, &str, &str)> {
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (integer_digits, fraction_digits) = match unsigned.split_once('.') {
        Some((_, "")) => return None,
        Some((integer, fraction)) => (integer, fraction),
        None => (unsigned, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if integer_digits.is_empty() || !all_digits(integer_digits) || !all_digits(fraction_digits) {
        return None;
    }
    Some((negative, integer_digits, fraction_digits))
}

/// Returns the ISO 4217 minor-unit exponent (USD 2, JPY 0, ISK 0, KWD 3).
pub fn iso_exponent(currency: Currency) -> Result<u32, MoneyError> {
    currencies::iso_lookup(currency.as_str())
        .ok_or_else(|| MoneyError::UnknownCurrency(currency.to_string()))
}

/// Returns the exponent of Stripe's integer amounts for a known ISO currency.
///
/// Stripe's table differs from ISO 4217: its zero-decimal list (JPY, KRW, MGA, ...) is 0, its
/// three-decimal list (BHD, JOD, KWD, OMR, TND) is 3, and every other known code is 2,
/// including ISK (ISO 0), HUF and TWD.
pub fn stripe_exponent(currency: Currency) -> Result<u32, MoneyError> {
    iso_exponent(currency)?;
    let code = currency.as_str();
    if STRIPE_ZERO_DECIMAL.contains(&code) {
        Ok(0)
    } else if STRIPE_THREE_DECIMAL.contains(&code) {
        Ok(3)
    } else {
        Ok(2)
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
