//! `--since` / `--until` values → [`Timestamp`].
//!
//! Accepted: a duration back from `now` (`90s`, `30m`, `2h`, `1d`, `1w`, also `2h30m`), RFC 3339
//! (`2026-11-28T14:00:00Z`, `…+01:00`), and a civil date-time read as UTC (`2026-11-28 14:00`,
//! `2026-11-28T14:00:05.250`, `2026-11-28`): the stack logs in UTC, and so does the index.
//! Durations alone (`--window 5m`, `--histogram 1m`) are read by [`parse_duration`].
//! Owns parsing only; the caller decides inclusive/exclusive bounds.

use std::str::FromStr;

use crate::event::Timestamp;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error(
    "cannot read time `{input}`: expected a duration such as 2h, 30m, 1d, or RFC 3339, or `2026-11-28 14:00` (UTC)"
)]
pub struct TimeError {
    pub input: String,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error(
    "cannot read duration `{input}`: expected a positive duration such as 30s, 5m, 2h, 1d or 1h30m"
)]
pub struct DurationError {
    pub input: String,
}

/// A positive duration (`30s`, `5m`, `1h30m`) → seconds.
pub fn parse_duration(input: &str) -> Result<i64, DurationError> {
    match relative_secs(input.trim()) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(DurationError {
            input: input.to_string(),
        }),
    }
}

/// Read `input` relative to `now`.
pub fn parse(input: &str, now: Timestamp) -> Result<Timestamp, TimeError> {
    let trimmed = input.trim();
    let error = || TimeError {
        input: input.to_string(),
    };
    if trimmed.is_empty() {
        return Err(error());
    }
    if let Some(secs) = relative_secs(trimmed) {
        return Ok(now.plus_secs(-secs));
    }
    if let Ok(ts) = jiff::Timestamp::from_str(trimmed) {
        return Ok(Timestamp::from_jiff(ts));
    }
    if let Ok(civil) = jiff::civil::DateTime::from_str(trimmed) {
        let ts = jiff::tz::TimeZone::UTC
            .to_timestamp(civil)
            .map_err(|_| error())?;
        return Ok(Timestamp::from_jiff(ts));
    }
    if let Ok(date) = jiff::civil::Date::from_str(trimmed) {
        let ts = jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|_| error())?;
        return Ok(Timestamp::from_jiff(ts));
    }
    Err(error())
}

/// `2h`, `30m`, `1d`, `2h30m` → seconds; `None` when `s` is not such a duration.
fn relative_secs(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: i64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
        saw_unit = true;
    }
    (saw_unit && digits.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().unwrap())
    }

    #[test]
    fn relative_durations_count_back_from_now() {
        let now = at("2026-11-28T16:00:00Z");
        assert_eq!(parse("2h", now).unwrap(), at("2026-11-28T14:00:00Z"));
        assert_eq!(parse("30m", now).unwrap(), at("2026-11-28T15:30:00Z"));
        assert_eq!(parse("1d", now).unwrap(), at("2026-11-27T16:00:00Z"));
        assert_eq!(parse("1h30m", now).unwrap(), at("2026-11-28T14:30:00Z"));
        assert_eq!(parse("90s", now).unwrap(), at("2026-11-28T15:58:30Z"));
    }

    #[test]
    fn absolute_times_are_rfc3339_or_civil_utc() {
        let now = Timestamp(0);
        assert_eq!(
            parse("2026-11-28T14:00:00+01:00", now).unwrap(),
            at("2026-11-28T13:00:00Z")
        );
        assert_eq!(
            parse("2026-11-28 14:00", now).unwrap(),
            at("2026-11-28T14:00:00Z")
        );
        assert_eq!(
            parse("2026-11-28T14:00:05.250", now).unwrap(),
            at("2026-11-28T14:00:05.250Z")
        );
        assert_eq!(
            parse("2026-11-28T14:00", now).unwrap(),
            at("2026-11-28T14:00:00Z")
        );
        assert_eq!(
            parse("2026-11-28", now).unwrap(),
            at("2026-11-28T00:00:00Z")
        );
    }

    #[test]
    fn durations_are_positive_and_compound() {
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration(" 1d "), Ok(86_400));
        for bad in ["", "0m", "5", "m", "5x", "-5m", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["", "2x", "h", "yesterday", "2026-13-01", "12"] {
            assert!(parse(bad, Timestamp(0)).is_err(), "{bad}");
        }
    }
}
