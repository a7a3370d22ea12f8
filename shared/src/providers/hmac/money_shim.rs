//! ISO 4217 amounts for config-defined providers.
//!
//! NOTE: local stand-in for `money::iso_exponent` and `Money::parse_decimal`, with the same
//! signatures. When `money.rs` provides them, delete this file and import those instead.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::money::{Currency, Money, MoneyError};

const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const TWO_DECIMAL: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EGP", "EUR",
    "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "KES", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD",
    "PEN", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY",
    "TWD", "UAH", "USD", "ZAR",
];

/// Returns the ISO 4217 minor-unit exponent of a currency.
pub(crate) fn iso_exponent(currency: Currency) -> Result<u32, MoneyError> {
    let code = currency.as_str();
    if ZERO_DECIMAL.contains(&code) {
        Ok(0)
    } else if THREE_DECIMAL.contains(&code) {
        Ok(3)
    } else if TWO_DECIMAL.contains(&code) {
        Ok(2)
    } else {
        Err(MoneyError::UnknownCurrency(code.to_string()))
    }
}

/// Builds an amount from integer minor units in the currency's ISO exponent.
pub(crate) fn from_iso_minor(minor: i64, code: &str) -> Result<Money, MoneyError> {
    let currency = Currency::parse(code)?;
    let exponent = iso_exponent(currency)?;
    Ok(Money {
        minor,
        currency,
        exponent,
    })
}

/// Parses a plain decimal string in major units (`19.99`, `-5`, `0.500`). Exponents, signs
/// other than a leading `-`, spaces and more decimals than the currency has are rejected.
pub(crate) fn parse_decimal(value: &str, code: &str) -> Result<Money, MoneyError> {
    let currency = Currency::parse(code)?;
    let exponent = iso_exponent(currency)?;
    let malformed = || MoneyError::MalformedAmount(value.to_string());
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
        return Err(malformed());
    }
    if unsigned.contains('.') && fraction.is_empty() {
        return Err(malformed());
    }
    let scale = fraction.len() as u32;
    if scale > exponent {
        return Err(MoneyError::ScaleTooLarge {
            amount: value.to_string(),
            currency: currency.to_string(),
            scale,
            exponent,
        });
    }
    let mut decimal = Decimal::from_str(value).map_err(|_| malformed())?;
    decimal.rescale(exponent);
    let minor =
        i64::try_from(decimal.mantissa()).map_err(|_| MoneyError::OutOfRange(value.to_string()))?;
    Ok(Money {
        minor,
        currency,
        exponent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_convert_exactly() {
        assert_eq!(parse_decimal("19.99", "usd").unwrap().minor, 1999);
        assert_eq!(parse_decimal("5", "USD").unwrap().minor, 500);
        assert_eq!(parse_decimal("5.12", "KWD").unwrap().minor, 5120);
        assert_eq!(parse_decimal("1200", "JPY").unwrap().minor, 1200);
        assert_eq!(parse_decimal("-0.50", "EUR").unwrap().minor, -50);
    }

    #[test]
    fn bad_decimal_strings_rejected() {
        for bad in ["1e3", " 19.99", "19.", ".5", "+1", "1,00", ""] {
            assert!(
                matches!(
                    parse_decimal(bad, "USD"),
                    Err(MoneyError::MalformedAmount(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_decimal("1.5", "JPY"),
            Err(MoneyError::ScaleTooLarge { .. })
        ));
        assert!(matches!(
            parse_decimal("1.00", "XYZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn minor_units_use_iso_exponent() {
        let yen = from_iso_minor(500, "JPY").unwrap();
        let dinar = from_iso_minor(5120, "kwd").unwrap();

        assert_eq!(yen.to_decimal_string(), "500");
        assert_eq!(dinar.to_decimal_string(), "5.120");
    }
}
