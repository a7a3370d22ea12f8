//! Strict parsing of short durations such as `500ms`, `5s`, `2m` and `1h`, and of the
//! comma-separated delay tier list built from them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Delays of the RabbitMQ retry tiers, shortest first, as set by `PAYHOOK_AMQP_DELAY_TIERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayTiers(pub Vec<Duration>);

impl DelayTiers {
    /// Returns the delays, shortest first.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

impl fmt::Display for DelayTiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self.0.iter().map(|d| format_duration(*d)).collect();
        f.write_str(&labels.join(","))
    }
}

impl FromStr for DelayTiers {
    type Err = String;

    /// Parses `5s,30s,2m,10m,1h`: at least one tier, each a positive duration, strictly
    /// increasing, because every tier needs a queue name of its own and retries should
    /// wait longer each time.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut delays = Vec::new();
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(format!(
                    "{value:?} contains an empty tier; expected a list such as 5s,30s,2m,10m,1h"
                ));
            }
            let delay = parse_duration(item)?;
            if delay.is_zero() {
                return Err(format!("tier {item:?} is zero; each tier must be positive"));
            }
            if let Some(previous) = delays.last()
                && delay <= *previous
            {
                return Err(format!(
                    "tier {item:?} is not longer than the tier before it; list tiers shortest first"
                ));
            }
            delays.push(delay);
        }
        Ok(DelayTiers(delays))
    }
}

/// Parses one duration: an unsigned integer followed by `ms`, `s`, `m` or `h`, without
/// spaces, signs or fractions.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {value:?}: expected a whole number followed by ms, s, m or h"
        ));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {value:?}: the number is too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(format!(
                "invalid duration {value:?}: the unit is missing; use ms, s, m or h"
            ));
        }
        other => {
            return Err(format!(
                "invalid duration {value:?}: unknown unit {other:?}; use ms, s, m or h"
            ));
        }
    };
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("invalid duration {value:?}: the value is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// Formats a duration in the largest unit that divides it: `500ms`, `5s`, `2m`, `1h`.
pub fn format_duration(delay: Duration) -> String {
    let millis = delay.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let seconds = delay.as_secs();
    if seconds != 0 && seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds != 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_every_unit() {
        let tiers: DelayTiers = "500ms, 5s,2m,10m,1h".parse().unwrap();

        assert_eq!(
            tiers.delays(),
            [
                Duration::from_millis(500),
                Duration::from_secs(5),
                Duration::from_secs(120),
                Duration::from_secs(600),
                Duration::from_secs(3600),
            ]
        );
        assert_eq!(tiers.to_string(), "500ms,5s,2m,10m,1h");
    }

    #[test]
    fn malformed_tiers_are_rejected() {
        let cases = [
            ("", "empty tier"),
            ("5s,,30s", "empty tier"),
            ("5", "unit is missing"),
            ("5 s", "unknown unit"),
            ("1.5s", "unknown unit"),
            ("-5s", "whole number"),
            ("5d", "unknown unit"),
            ("0s", "zero"),
            ("30s,5s", "shortest first"),
            ("5s,5s", "shortest first"),
            ("99999999999999999999s", "too large"),
            ("18446744073709551h", "too large"),
        ];
        for (input, expected) in cases {
            let error = input.parse::<DelayTiers>().unwrap_err();
            assert!(
                error.contains(expected),
                "{input:?} gave {error:?}, expected it to mention {expected:?}"
            );
        }
    }
}
