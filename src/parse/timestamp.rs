//! Every timestamp layout the formats meet → one [`Timestamp`] (µs since the epoch, UTC).
//!
//! Layouts read at the start of a text: ISO 8601 / RFC 3339 (`2026-11-28T14:00:01.123Z`,
//! `2026-11-28 14:00:01.123 UTC`, `2015-07-29 17:41:44,747`), Apache's `[Sun Dec 04 04:47:44 2005]`,
//! BSD syslog's `Jun 14 15:16:01` (no year) and Redis's `28 Nov 2026 14:00:03.123`. JSON values:
//! epoch numbers (seconds, milliseconds or microseconds, told apart by magnitude) and ISO strings.
//!
//! Timezone policy: an explicit offset (`Z`, `+02:00`, `-0500`) or a known zone name (`UTC`, `GMT`,
//! `CET`, `CEST`, `EST`, `PDT`, … as fixed offsets) is honoured; a time without one is taken as UTC.
//! A layout without a year takes it from a reference `now`: the current year, or the previous one
//! when the date would lie more than a day after `now`. The reference is a parameter so that replays
//! and tests are deterministic. This module must not know any format beyond the layouts themselves.

use jiff::civil::DateTime;
use jiff::tz::Offset;

use crate::event::Timestamp;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Zone abbreviations read as fixed offsets (seconds east of UTC).
const ZONES: [(&str, i32); 26] = [
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("WET", 0),
    ("WEST", 3600),
    ("BST", 3600),
    ("CET", 3600),
    ("CEST", 7200),
    ("MET", 3600),
    ("MEST", 7200),
    ("EET", 7200),
    ("EEST", 10800),
    ("MSK", 10800),
    ("IST", 19800),
    ("SGT", 28800),
    ("JST", 32400),
    ("KST", 32400),
    ("AEST", 36000),
    ("AEDT", 39600),
    ("EST", -18000),
    ("EDT", -14400),
    ("CST", -21600),
    ("CDT", -18000),
    ("MST", -25200),
    ("MDT", -21600),
    ("PST", -28800),
];
const ZONES_EXTRA: [(&str, i32); 3] = [("PDT", -25200), ("AKST", -32400), ("HST", -36000)];

/// The fixed offset (seconds east of UTC) of a zone name or abbreviation.
pub fn zone_offset(name: &str) -> Option<i32> {
    ZONES
        .iter()
        .chain(ZONES_EXTRA.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, o)| *o)
}

/// Month number (1-12) of an English three-letter abbreviation.
pub fn month_number(s: &str) -> Option<i8> {
    MONTHS
        .iter()
        .position(|m| *m == s)
        .and_then(|i| i8::try_from(i + 1).ok())
}

/// A civil date and time with an offset → instant. `None` for impossible dates.
pub fn civil_to_timestamp(
    year: i16,
    month: i8,
    day: i8,
    hms: (i8, i8, i8),
    nanos: i32,
    offset_secs: i32,
) -> Option<Timestamp> {
    let dt = DateTime::new(year, month, day, hms.0, hms.1, hms.2, nanos).ok()?;
    let offset = Offset::from_seconds(offset_secs).ok()?;
    offset.to_timestamp(dt).ok().map(Timestamp::from_jiff)
}

/// The year of `now` (UTC).
pub fn year_of(now: Timestamp) -> i16 {
    Offset::UTC.to_datetime(now.to_jiff()).year()
}

/// A date without a year: the year of `now`, or the previous one if that would put the date more
/// than a day after `now`.
pub fn without_year(
    month: i8,
    day: i8,
    hms: (i8, i8, i8),
    nanos: i32,
    now: Timestamp,
) -> Option<Timestamp> {
    let year = year_of(now);
    let this_year = civil_to_timestamp(year, month, day, hms, nanos, 0);
    match this_year {
        Some(ts) if ts <= now.plus_secs(86_400) => Some(ts),
        _ => civil_to_timestamp(year - 1, month, day, hms, nanos, 0),
    }
}

/// A little cursor over ASCII bytes.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            b: s.as_bytes(),
            pos: 0,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<i32> {
        let s = self.b.get(self.pos..self.pos + n)?;
        let mut v = 0i32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i32::from(c - b'0');
        }
        self.pos += n;
        Some(v)
    }
    /// One or two digits (a day of month written `4` or `04`).
    fn digits_1_2(&mut self) -> Option<i32> {
        let first = self.digits(1)?;
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                Some(first * 10 + i32::from(c - b'0'))
            }
            _ => Some(first),
        }
    }
    fn word(&mut self, n: usize) -> Option<&'a str> {
        let s = self.b.get(self.pos..self.pos + n)?;
        let w = std::str::from_utf8(s).ok()?;
        self.pos += n;
        Some(w)
    }
    /// `HH:MM:SS` then an optional `.fff`/`,fff` fraction: (h, m, s), nanoseconds.
    fn time(&mut self) -> Option<((i8, i8, i8), i32)> {
        let h = self.digits(2)?;
        if !self.eat(b':') {
            return None;
        }
        let m = self.digits(2)?;
        if !self.eat(b':') {
            return None;
        }
        let s = self.digits(2)?;
        let mut nanos = 0i32;
        let save = self.pos;
        if self.eat(b'.') || self.eat(b',') {
            let mut n = 0;
            let mut scale = 100_000_000;
            while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
                if n < 9 {
                    nanos += i32::from(c - b'0') * scale;
                    scale /= 10;
                }
                n += 1;
                self.pos += 1;
            }
            if n == 0 {
                self.pos = save;
            }
        }
        let hms = (
            i8::try_from(h).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(s.min(59)).ok()?,
        );
        Some((hms, nanos))
    }
    /// An optional zone: `Z`, `±hh:mm`, `±hhmm`, `±hh`, or (after at most one space) a known name.
    /// Returns the offset in seconds (0 when absent).
    fn zone(&mut self) -> i32 {
        let save = self.pos;
        if self.eat(b'Z') {
            return 0;
        }
        if let Some(sign) = self.peek().filter(|c| *c == b'+' || *c == b'-') {
            self.pos += 1;
            if let Some(h) = self.digits(2) {
                let colon = self.eat(b':');
                let m = match self.digits(2) {
                    Some(m) => m,
                    None if colon => {
                        self.pos = save;
                        return 0;
                    }
                    None => 0,
                };
                let secs = h * 3600 + m * 60;
                return if sign == b'-' { -secs } else { secs };
            }
            self.pos = save;
            return 0;
        }
        // ` UTC`, ` CEST`: a run of uppercase letters that names a zone we know.
        let start = if self.peek() == Some(b' ') {
            self.pos + 1
        } else {
            self.pos
        };
        let mut end = start;
        while end < self.b.len() && self.b[end].is_ascii_uppercase() && end - start < 5 {
            end += 1;
        }
        let boundary = self.b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        if end > start
            && boundary
            && let Some(off) = std::str::from_utf8(&self.b[start..end])
                .ok()
                .and_then(zone_offset)
        {
            self.pos = end;
            return off;
        }
        self.pos = save;
        0
    }
}

/// ISO 8601 at the start of `s`: `YYYY-MM-DD[T ]HH:MM:SS[.frac][zone]`. Returns the instant and the
/// number of bytes read.
pub fn parse_iso(s: &str) -> Option<(Timestamp, usize)> {
    let mut c = Cursor::new(s);
    let y = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.digits(2)?;
    if !(c.eat(b'T') || c.eat(b' ') || c.eat(b't')) {
        return None;
    }
    let (hms, nanos) = c.time()?;
    let off = c.zone();
    let ts = civil_to_timestamp(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
        hms,
        nanos,
        off,
    )?;
    Some((ts, c.pos))
}

/// BSD syslog `Mon dd hh:mm:ss` (day may be space-padded), year from `now`.
pub fn parse_bsd(s: &str, now: Timestamp) -> Option<(Timestamp, usize)> {
    let mut c = Cursor::new(s);
    let month = month_number(c.word(3)?)?;
    if !c.eat(b' ') {
        return None;
    }
    c.eat(b' ');
    let day = c.digits_1_2()?;
    if !c.eat(b' ') {
        return None;
    }
    let (hms, nanos) = c.time()?;
    let ts = without_year(month, i8::try_from(day).ok()?, hms, nanos, now)?;
    Some((ts, c.pos))
}

/// Apache's `[Sun Dec 04 04:47:44 2005]` (also without brackets, and ctime's `Sun Dec  4 …`).
pub fn parse_ctime(s: &str) -> Option<(Timestamp, usize)> {
    let mut c = Cursor::new(s);
    let bracket = c.eat(b'[');
    let wd = c.word(3)?;
    if !WEEKDAYS.contains(&wd) || !c.eat(b' ') {
        return None;
    }
    let month = month_number(c.word(3)?)?;
    if !c.eat(b' ') {
        return None;
    }
    c.eat(b' ');
    let day = c.digits_1_2()?;
    if !c.eat(b' ') {
        return None;
    }
    let (hms, nanos) = c.time()?;
    if !c.eat(b' ') {
        return None;
    }
    let year = c.digits(4)?;
    if bracket && !c.eat(b']') {
        return None;
    }
    let ts = civil_to_timestamp(
        i16::try_from(year).ok()?,
        month,
        i8::try_from(day).ok()?,
        hms,
        nanos,
        0,
    )?;
    Some((ts, c.pos))
}

/// Redis's `28 Nov 2026 14:00:03.123` (Redis < 6 omits the year: taken from `now`).
pub fn parse_day_month(s: &str, now: Timestamp) -> Option<(Timestamp, usize)> {
    let mut c = Cursor::new(s);
    let day = i8::try_from(c.digits_1_2()?).ok()?;
    if !c.eat(b' ') {
        return None;
    }
    let month = month_number(c.word(3)?)?;
    if !c.eat(b' ') {
        return None;
    }
    let save = c.pos;
    let year = match c.digits(4) {
        Some(y) if c.eat(b' ') => Some(y),
        _ => {
            c.pos = save;
            None
        }
    };
    let (hms, nanos) = c.time()?;
    let ts = match year {
        Some(y) => civil_to_timestamp(i16::try_from(y).ok()?, month, day, hms, nanos, 0)?,
        None => without_year(month, day, hms, nanos, now)?,
    };
    Some((ts, c.pos))
}

/// Any layout above at the start of `s`.
pub fn parse_leading(s: &str, now: Timestamp) -> Option<(Timestamp, usize)> {
    let first = *s.as_bytes().first()?;
    if first.is_ascii_digit() {
        parse_iso(s).or_else(|| parse_day_month(s, now))
    } else if first == b'[' || WEEKDAYS.iter().any(|w| s.starts_with(w)) {
        parse_ctime(s).or_else(|| {
            // `[2026-11-28 14:00:01]`
            let (ts, n) = parse_iso(s.get(1..)?)?;
            (s.as_bytes().get(n + 1) == Some(&b']')).then_some((ts, n + 2))
        })
    } else if first.is_ascii_uppercase() {
        parse_bsd(s, now)
    } else {
        None
    }
}

/// An epoch number as JSON loggers write it: seconds (possibly fractional), milliseconds or
/// microseconds, told apart by magnitude.
pub fn from_epoch(n: f64) -> Option<Timestamp> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let micros = if n >= 1e14 {
        n
    } else if n >= 1e11 {
        n * 1e3
    } else {
        n * 1e6
    };
    // Float to int: bounded above by the checks, saturating by definition of `as`.
    #[allow(clippy::cast_possible_truncation)]
    Some(Timestamp(micros.round() as i64))
}

/// A JSON time value: a number (epoch) or a string (ISO 8601, or digits).
pub fn from_json(v: &serde_json::Value) -> Option<Timestamp> {
    match v {
        serde_json::Value::Number(n) => from_epoch(n.as_f64()?),
        serde_json::Value::String(s) => parse_iso(s.trim())
            .map(|(ts, _)| ts)
            .or_else(|| s.trim().parse::<f64>().ok().and_then(from_epoch)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse::<jiff::Timestamp>().unwrap())
    }

    #[test]
    fn iso_layouts_with_and_without_zones() {
        let (ts, n) = parse_iso("2026-11-28T14:00:01.123Z rest").unwrap();
        assert_eq!(ts, at("2026-11-28T14:00:01.123Z"));
        assert_eq!(n, 24);
        let (ts, n) = parse_iso("2026-11-28 14:00:01.123 UTC [4242]").unwrap();
        assert_eq!(ts, at("2026-11-28T14:00:01.123Z"));
        assert_eq!(&"2026-11-28 14:00:01.123 UTC [4242]"[n..], " [4242]");
        let (ts, _) = parse_iso("2014-04-01 11:13:21 CEST [28414]").unwrap();
        assert_eq!(ts, at("2014-04-01T09:13:21Z"));
        let (ts, _) = parse_iso("2019-03-14T00:22:56+00:00 app").unwrap();
        assert_eq!(ts, at("2019-03-14T00:22:56Z"));
        let (ts, _) = parse_iso("2019-03-14T00:22:56-0500").unwrap();
        assert_eq!(ts, at("2019-03-14T05:22:56Z"));
        let (ts, n) = parse_iso("2015-07-29 17:41:44,747 - INFO").unwrap();
        assert_eq!(ts, at("2015-07-29T17:41:44.747Z"));
        assert_eq!(n, 23);
        // An unknown word after the time is not a zone: UTC, not consumed.
        let (ts, n) = parse_iso("2020-03-11 20:40:43 LOG:").unwrap();
        assert_eq!(ts, at("2020-03-11T20:40:43Z"));
        assert_eq!(n, 19);
        assert!(parse_iso("2026-13-45 99:00:00").is_none());
        assert!(parse_iso("hello").is_none());
    }

    #[test]
    fn bsd_dates_take_the_year_from_the_reference() {
        let now = at("2026-11-28T17:00:00Z");
        let (ts, n) = parse_bsd("Nov 28 14:00:04 host kernel:", now).unwrap();
        assert_eq!(ts, at("2026-11-28T14:00:04Z"));
        assert_eq!(n, 15);
        // December 10 would be in the future: last year.
        let (ts, _) = parse_bsd("Dec 10 06:55:46 LabSZ", now).unwrap();
        assert_eq!(ts, at("2025-12-10T06:55:46Z"));
        // Less than a day ahead (clock skew) stays this year.
        let (ts, _) = parse_bsd("Nov 29 01:00:00 x", now).unwrap();
        assert_eq!(ts, at("2026-11-29T01:00:00Z"));
        let (ts, _) = parse_bsd("Jun  4 15:16:01 combo", now).unwrap();
        assert_eq!(ts, at("2026-06-04T15:16:01Z"));
    }

    #[test]
    fn apache_redis_and_epoch_layouts() {
        let now = at("2026-11-28T17:00:00Z");
        let (ts, n) = parse_leading("[Sun Dec 04 04:47:44 2005] [error] x", now).unwrap();
        assert_eq!(ts, at("2005-12-04T04:47:44Z"));
        assert_eq!(n, 26);
        let (ts, _) = parse_day_month("28 Nov 2026 14:00:03.123 * x", now).unwrap();
        assert_eq!(ts, at("2026-11-28T14:00:03.123Z"));
        let (ts, _) = parse_day_month("28 Nov 14:00:03.123 * x", now).unwrap();
        assert_eq!(ts, at("2026-11-28T14:00:03.123Z"));
        assert_eq!(
            from_json(&serde_json::json!(1796220000123i64)),
            Some(Timestamp::from_millis(1796220000123))
        );
        assert_eq!(
            from_json(&serde_json::json!(1669575482.5)),
            Some(Timestamp(1669575482500000))
        );
        assert_eq!(
            from_json(&serde_json::json!("2026-11-28T14:00:01.123Z")),
            Some(at("2026-11-28T14:00:01.123Z"))
        );
        assert_eq!(
            parse_leading("Jun 14 15:16:01 combo", now).map(|(t, _)| t),
            Some(at("2026-06-14T15:16:01Z"))
        );
    }
}
