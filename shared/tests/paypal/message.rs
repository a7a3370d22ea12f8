use payhook::providers::paypal::signed_message;

use crate::*;

/// Bitwise CRC-32 (IEEE, reflected, polynomial 0xEDB88320), independent of crc32fast.
fn reference_crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[test]
fn signed_string_uses_configured_webhook_id() {
    let crc = reference_crc32(BODY.as_bytes());

    let message = signed_message(
        TRANSMISSION_ID,
        TRANSMISSION_TIME,
        WEBHOOK_ID,
        BODY.as_bytes(),
    );

    assert_eq!(crc, crc32fast::hash(BODY.as_bytes()));
    assert_eq!(
        message,
        format!("{TRANSMISSION_ID}|{TRANSMISSION_TIME}|{WEBHOOK_ID}|{crc}")
    );
    assert!(
        !message.contains("WH-PH"),
        "the event id must not be signed"
    );
}

#[test]
fn high_crc_written_unsigned() {
    let body = (0..64)
        .map(|nonce| BODY.replace("cust-PH-7", &format!("cust-PH-{nonce}")))
        .find(|body| reference_crc32(body.as_bytes()) >= 1 << 31)
        .expect("one of 64 bodies has the top CRC bit set");
    let crc = reference_crc32(body.as_bytes());

    let message = signed_message("t", "2024-05-28T08:30:00Z", "W", body.as_bytes());

    assert!(crc >= 1 << 31);
    assert_eq!(message, format!("t|2024-05-28T08:30:00Z|W|{crc}"));
    assert!(!message.ends_with(&format!("|{}", crc as i32)));
    assert!(!message.ends_with(&format!("{crc:x}")));
}

#[test]
fn reference_crc_matches_check_value() {
    assert_eq!(reference_crc32(b"123456789"), 0xCBF4_3926);
}
