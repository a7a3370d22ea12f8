//! Helpers shared by the HMAC verifiers: key identifiers, timestamp windows and
//! signature decoding.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use ring::digest;

use super::Rejection;

/// Standard base64 that accepts input with or without `=` padding and ignores set bits
/// after the last whole byte, as the Python and JavaScript decoders do.
pub(crate) const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Returns the identifier stored with an event for the key that matched: its position in
/// the configured list and the first 8 hex digits of the SHA-256 of the key bytes.
pub(crate) fn key_id(index: usize, key: &[u8]) -> String {
    let digest = digest::digest(&digest::SHA256, key);
    format!("secret#{index}:{}", encode_hex(&digest.as_ref()[..4]))
}

/// Checks that `timestamp` (Unix seconds) lies within `tolerance_seconds` of `now`, in both
/// directions. A difference equal to the tolerance is accepted.
pub(crate) fn check_window(
    timestamp: i64,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), Rejection> {
    let age = now.timestamp().saturating_sub(timestamp);
    if age > tolerance_seconds {
        return Err(Rejection::TimestampTooOld {
            age_seconds: age,
            tolerance_seconds,
        });
    }
    if -age > tolerance_seconds {
        return Err(Rejection::TimestampTooNew {
            ahead_seconds: -age,
            tolerance_seconds,
        });
    }
    Ok(())
}

/// Parses a Unix timestamp made of ASCII digits only (no sign, no spaces).
pub(crate) fn parse_unix_seconds(value: &str) -> Option<i64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Encodes bytes as lower-case hex.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex in either case; `None` for odd lengths or non-hex characters.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}

/// Decodes standard base64, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    BASE64_LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_exact_tolerance() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();

        assert!(check_window(700, now, 300).is_ok());
        assert!(check_window(1_300, now, 300).is_ok());
        assert!(matches!(
            check_window(699, now, 300),
            Err(Rejection::TimestampTooOld {
                age_seconds: 301,
                ..
            })
        ));
        assert!(matches!(
            check_window(1_301, now, 300),
            Err(Rejection::TimestampTooNew {
                ahead_seconds: 301,
                ..
            })
        ));
    }

    #[test]
    fn hex_round_trips_both_cases() {
        assert_eq!(decode_hex("00aBff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(encode_hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn unix_seconds_rejects_signs_and_text() {
        assert_eq!(parse_unix_seconds("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_unix_seconds("-5"), None);
        assert_eq!(parse_unix_seconds("+5"), None);
        assert_eq!(parse_unix_seconds("hello"), None);
        assert_eq!(parse_unix_seconds(""), None);
    }
}
