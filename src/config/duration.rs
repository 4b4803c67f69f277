//! Durations as administrators write them: `200ms`, `30s`, `15m`, `8h`, `7d`, or a bare
//! number of seconds. `0` means "none" where a directive allows it.
use std::time::Duration;

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Upper bound that keeps every derived unix time far from overflow.
const MAX_MILLIS: u64 = 100 * 365 * 86_400_000;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "'{text}' is not a duration (expected e.g. 200ms, 30s, 15m, 8h, 7d)"
        ));
    }
    let amount: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is too large"))?;
    let scale = if unit.is_empty() {
        1_000
    } else {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|(_, scale)| *scale)
            .ok_or_else(|| format!("'{text}' has an unknown unit (use ms, s, m, h or d)"))?
    };
    let millis = amount
        .checked_mul(scale)
        .filter(|millis| *millis <= MAX_MILLIS)
        .ok_or_else(|| format!("'{text}' is too large"))?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("7D"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        // A hundred years is the longest duration; a day more is refused.
        assert_eq!(
            parse_duration("36500d"),
            Ok(Duration::from_secs(36_500 * 86_400))
        );
        assert!(parse_duration("36501d").is_err());
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "ms",
            "-1",
            "1.5s",
            "soon",
            "10 parsecs",
            "1w",
            "99999999999999999999",
            "9999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
