use super::currencies::{STRIPE_THREE_DECIMAL, STRIPE_ZERO_DECIMAL, iso_codes};
use super::{Currency, Money, MoneyError, iso_exponent, stripe_exponent};

fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("test currency code is three letters")
}

#[test]
fn iso_table_sorted_and_unique() {
    let codes: Vec<&str> = iso_codes().collect();

    for pair in codes.windows(2) {
        assert!(
            pair[0] < pair[1],
            "{} must sort before {}",
            pair[0],
            pair[1]
        );
    }
    for code in &codes {
        assert_eq!(code.len(), 3, "{code}");
        assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
    }
}

#[test]
fn stripe_lists_are_known_iso_codes() {
    for code in STRIPE_ZERO_DECIMAL.iter().chain(STRIPE_THREE_DECIMAL) {
        assert!(
            iso_exponent(currency(code)).is_ok(),
            "{code} missing from ISO table"
        );
    }
}

#[test]
fn iso_exponents_match_standard() {
    let cases = [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("MXN", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("VND", 0),
        ("UGX", 0),
        ("ISK", 0),
        ("HUF", 2),
        ("TWD", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
    ];
    for (code, expected) in cases {
        assert_eq!(iso_exponent(currency(code)), Ok(expected), "{code}");
    }
}

#[test]
fn stripe_exponents_follow_stripe_table() {
    let cases = [
        ("USD", 2),
        ("EUR", 2),
        ("ISK", 2),
        ("HUF", 2),
        ("TWD", 2),
        ("MGA", 0),
        ("JPY", 0),
        ("KRW", 0),
        ("XOF", 0),
        ("UGX", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
        ("IQD", 2),
        ("CLF", 2),
    ];
    for (code, expected) in cases {
        assert_eq!(stripe_exponent(currency(code)), Ok(expected), "{code}");
    }
    for code in STRIPE_ZERO_DECIMAL {
        assert_eq!(stripe_exponent(currency(code)), Ok(0), "{code}");
    }
    for code in STRIPE_THREE_DECIMAL {
        assert_eq!(stripe_exponent(currency(code)), Ok(3), "{code}");
    }
}

#[test]
fn unknown_currency_fails_loudly() {
    let unknown = currency("XXZ");

    assert_eq!(
        iso_exponent(unknown),
        Err(MoneyError::UnknownCurrency("XXZ".into()))
    );
    assert_eq!(
        stripe_exponent(unknown),
        Err(MoneyError::UnknownCurrency("XXZ".into()))
    );
    assert_eq!(
        Money::from_stripe_minor(100, "xxz"),
        Err(MoneyError::UnknownCurrency("XXZ".into()))
    );
    assert_eq!(
        Money::parse_decimal("1.00", "XAU"),
        Err(MoneyError::UnknownCurrency("XAU".into()))
    );
}

#[test]
fn stripe_minor_units_convert_exactly() {
    // (minor, code, expected decimal string, expected exponent)
    let cases = [
        (2000, "usd", "20.00", 2),
        (4999, "USD", "49.99", 2),
        (1, "eur", "0.01", 2),
        (0, "gbp", "0.00", 2),
        (-1050, "usd", "-10.50", 2),
        (5120, "kwd", "5.120", 3),
        (1000, "bhd", "1.000", 3),
        (500, "isk", "5.00", 2),
        (123456, "huf", "1234.56", 2),
        (9900, "twd", "99.00", 2),
        (5000, "jpy", "5000", 0),
        (12000, "krw", "12000", 0),
        (777, "mga", "777", 0),
        (i64::MAX, "usd", "92233720368547758.07", 2),
    ];
    for (minor, code, expected, exponent) in cases {
        let money = Money::from_stripe_minor(minor, code).expect(code);

        assert_eq!(money.minor, minor, "{code}");
        assert_eq!(money.exponent, exponent, "{code}");
        assert_eq!(money.currency.as_str(), code.to_ascii_uppercase(), "{code}");
        assert_eq!(money.to_decimal_string(), expected, "{minor} {code}");
    }
}

#[test]
fn stripe_minor_rejects_invalid_code() {
    for code in ["US", "USDX", "", "U$D", "12A"] {
        assert_eq!(
            Money::from_stripe_minor(100, code),
            Err(MoneyError::InvalidCurrency(code.into())),
            "{code:?}"
        );
    }
}

#[test]
fn decimal_strings_parse_exactly() {
    // (value, code, expected minor, expected exponent, expected decimal string)
    let cases = [
        ("57", "USD", 5700, 2, "57.00"),
        ("57.00", "USD", 5700, 2, "57.00"),
        ("19.99", "usd", 1999, 2, "19.99"),
        ("0.99", "USD", 99, 2, "0.99"),
        ("0.5", "EUR", 50, 2, "0.50"),
        ("-0.99", "USD", -99, 2, "-0.99"),
        ("-2.51", "USD", -251, 2, "-2.51"),
        ("600.99", "MXN", 60099, 2, "600.99"),
        ("007.10", "USD", 710, 2, "7.10"),
        ("5.12", "KWD", 5120, 3, "5.120"),
        ("5.124", "KWD", 5124, 3, "5.124"),
        ("100", "JPY", 100, 0, "100"),
        ("1000", "HUF", 100000, 2, "1000.00"),
        ("1000.00", "HUF", 100000, 2, "1000.00"),
        ("250", "TWD", 25000, 2, "250.00"),
        ("5", "ISK", 5, 0, "5"),
        ("0", "USD", 0, 2, "0.00"),
        (
            "92233720368547758.07",
            "USD",
            i64::MAX,
            2,
            "92233720368547758.07",
        ),
    ];
    for (value, code, minor, exponent, decimal) in cases {
        let money = Money::parse_decimal(value, code).unwrap_or_else(|e| panic!("{value}: {e}"));

        assert_eq!(money.minor, minor, "{value} {code}");
        assert_eq!(money.exponent, exponent, "{value} {code}");
        assert_eq!(money.currency.as_str(), code.to_ascii_uppercase());
        assert_eq!(money.to_decimal_string(), decimal, "{value} {code}");
    }
}

#[test]
fn malformed_decimal_strings_rejected() {
    let inputs = [
        "", "1e3", "1E3", " 19.99", "19.99 ", "+1", ".5", "1.", "-", "-.5", "NaN", "nan", "inf",
        "1,00", "1_000", "1.2.3", "--1", "0x10", "١٢", "19.99\n",
    ];
    for value in inputs {
        assert_eq!(
            Money::parse_decimal(value, "USD"),
            Err(MoneyError::MalformedAmount(value.into())),
            "{value:?}"
        );
    }
}

#[test]
fn decimal_scale_above_exponent_rejected() {
    // (value, code, scale, allowed exponent reported)
    let cases = [
        ("19.999", "USD", 3, 2),
        ("0.001", "EUR", 3, 2),
        ("5.1234", "KWD", 4, 3),
        ("100.5", "JPY", 1, 0),
        ("100.0", "JPY", 1, 0),
        ("5.0", "ISK", 1, 0),
        ("1000.50", "HUF", 2, 0),
        ("99.9", "TWD", 1, 0),
        ("1000.000", "HUF", 3, 2),
    ];
    for (value, code, scale, exponent) in cases {
        assert_eq!(
            Money::parse_decimal(value, code),
            Err(MoneyError::ScaleTooLarge {
                amount: value.into(),
                currency: code.into(),
                scale,
                exponent,
            }),
            "{value} {code}"
        );
    }
}

#[test]
fn decimal_overflow_is_out_of_range() {
    for value in [
        "92233720368547758.08",
        "92233720368547759",
        "-92233720368547759",
        "99999999999999999999999999999999",
    ] {
        assert_eq!(
            Money::parse_decimal(value, "USD"),
            Err(MoneyError::OutOfRange(value.into())),
            "{value}"
        );
    }
}

#[test]
fn decimal_rejects_bad_currency() {
    assert_eq!(
        Money::parse_decimal("1.00", "US"),
        Err(MoneyError::InvalidCurrency("US".into()))
    );
    assert_eq!(
        Money::parse_decimal("1.00", "XXZ"),
        Err(MoneyError::UnknownCurrency("XXZ".into()))
    );
}
