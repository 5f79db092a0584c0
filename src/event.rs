//! The one shape every stage passes on: [`Event`] and its batch [`Events`].
//!
//! An event is one log entry (one JSON object, one PostgreSQL entry with its DETAIL/HINT/STATEMENT
//! lines, one Node stack trace) after parsing and redaction. Its [`EventId`] is the fingerprint of the
//! file it came from plus the byte offset where it starts, so the same bytes always give the same id:
//! that is what makes ingestion exactly-once and replays deterministic.
//!
//! This module owns the vocabulary only; it must not know any format, rule or storage detail.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identity of an event: the source file's fingerprint and the byte offset where the event starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId {
    pub fingerprint: u64,
    pub offset: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}:{}", self.fingerprint, self.offset)
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (fp, off) = s
            .split_once(':')
            .ok_or_else(|| format!("event id `{s}` is not FINGERPRINT:OFFSET"))?;
        let fingerprint =
            u64::from_str_radix(fp, 16).map_err(|e| format!("event id `{s}`: fingerprint: {e}"))?;
        let offset = off
            .parse()
            .map_err(|e| format!("event id `{s}`: offset: {e}"))?;
        Ok(EventId {
            fingerprint,
            offset,
        })
    }
}

/// An instant in microseconds since the Unix epoch, UTC. Event time for every window and incident.
///
/// Serialised as RFC 3339 text with full precision (`2026-11-28T14:02:03.123456Z`), the interface's
/// time format; deserialised from that text or from an integer of microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.to_jiff())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or microseconds since the epoch")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                v.parse::<jiff::Timestamp>()
                    .map(Timestamp::from_jiff)
                    .map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map(Timestamp).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Timestamp {
    pub const MICROS_PER_SEC: i64 = 1_000_000;
    /// The earliest event time every store holds: 1970-01-01 (ClickHouse's `DateTime` starts
    /// there).
    pub const EARLIEST: Timestamp = Timestamp(0);
    /// The latest: the end of 2105 (ClickHouse's `DateTime` ends early in 2106, tantivy's
    /// nanoseconds in 2262). A time read from a line outside these is not trusted: the event
    /// takes the previous one's time and is flagged `no_timestamp`.
    pub const LATEST: Timestamp = Timestamp(4_291_747_199_999_999);

    /// Whether every store can hold this time.
    pub fn storable(self) -> bool {
        (Self::EARLIEST..=Self::LATEST).contains(&self)
    }
    /// The nearest time every store can hold (query bounds far out, a `--since` of year 30000).
    pub fn clamp_storable(self) -> Self {
        self.clamp(Self::EARLIEST, Self::LATEST)
    }

    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms.saturating_mul(1000))
    }
    pub fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(Self::MICROS_PER_SEC))
    }
    pub fn as_micros(self) -> i64 {
        self.0
    }
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_SEC)
    }
    /// `self + seconds` (saturating).
    pub fn plus_secs(self, secs: i64) -> Self {
        Timestamp(
            self.0
                .saturating_add(secs.saturating_mul(Self::MICROS_PER_SEC)),
        )
    }
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_microsecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
    pub fn from_jiff(t: jiff::Timestamp) -> Self {
        Timestamp(t.as_microsecond())
    }
    pub fn now() -> Self {
        Self::from_jiff(jiff::Timestamp::now())
    }
    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-28T14:02:03.123Z`.
    pub fn rfc3339(self) -> String {
        format!("{:.3}", self.to_jiff())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Severity of a log entry, normalised over every format (pino numbers, syslog, PostgreSQL).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    #[default]
    Info,
    Notice,
    Warn,
    Error,
    Fatal,
    Panic,
    /// No level could be read from the entry.
    Unknown,
}

impl Level {
    pub const ALL: [Level; 9] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warn,
        Level::Error,
        Level::Fatal,
        Level::Panic,
        Level::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Panic => "panic",
            Level::Unknown => "unknown",
        }
    }

    /// Read a level name as the formats spell it (case-insensitive): `ERROR`, `err`, `warning`,
    /// `LOG`, `FATAL`, `crit`, … Returns `None` for words that are not levels.
    pub fn parse_name(s: &str) -> Option<Level> {
        let lower = s.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" | "verbose" | "silly" => Level::Trace,
            "debug" | "debug1" | "debug2" | "debug3" | "debug4" | "debug5" => Level::Debug,
            "info" | "information" | "log" | "statement" => Level::Info,
            "notice" => Level::Notice,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "crit" | "critical" | "alert" | "emerg" | "emergency" => Level::Fatal,
            "panic" => Level::Panic,
            _ => return None,
        })
    }

    /// pino's numeric levels (10 trace … 60 fatal).
    pub fn from_pino(n: i64) -> Level {
        match n {
            i64::MIN..=10 => Level::Trace,
            11..=20 => Level::Debug,
            21..=30 => Level::Info,
            31..=40 => Level::Warn,
            41..=50 => Level::Error,
            _ => Level::Fatal,
        }
    }

    /// True for error, fatal and panic.
    pub fn is_error(self) -> bool {
        matches!(self, Level::Error | Level::Fatal | Level::Panic)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("unknown") {
            return Ok(Level::Unknown);
        }
        Level::parse_name(s).ok_or_else(|| {
            format!("unknown level `{s}` (expected one of trace, debug, info, notice, warn, error, fatal, panic)")
        })
    }
}

/// What went wrong (or was unusual) while reading an event. An event is never dropped: it is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Flags(pub u8);

impl Flags {
    /// The last line of the input had no newline when it was read (truncated file or end of input).
    pub const PARTIAL: Flags = Flags(1);
    /// The line, or a multi-line entry, was longer than the cap (1 MiB) and was split into
    /// several events.
    pub const SPLIT: Flags = Flags(1 << 1);
    /// The bytes were not valid UTF-8 and were decoded lossily.
    pub const INVALID_UTF8: Flags = Flags(1 << 2);
    /// The entry did not follow its format (broken JSON, unknown prefix); kept as plain text.
    pub const MALFORMED: Flags = Flags(1 << 3);
    /// No timestamp could be read, or it was outside 1970–2105 ([`Timestamp::LATEST`]); the
    /// previous event's time was used.
    pub const NO_TIMESTAMP: Flags = Flags(1 << 4);
    /// Secrets were redacted from the entry.
    pub const REDACTED: Flags = Flags(1 << 5);
    /// The entry had more than [`crate::parse::MAX_FIELDS`] keys and values: the rest are not
    /// fields (the raw text still holds them all).
    pub const FIELDS_CAPPED: Flags = Flags(1 << 6);

    const NAMES: [(Flags, &'static str); 7] = [
        (Flags::PARTIAL, "partial"),
        (Flags::SPLIT, "split"),
        (Flags::INVALID_UTF8, "invalid_utf8"),
        (Flags::MALFORMED, "malformed"),
        (Flags::NO_TIMESTAMP, "no_timestamp"),
        (Flags::REDACTED, "redacted"),
        (Flags::FIELDS_CAPPED, "fields_capped"),
    ];

    /// Every flag's name, in bit order.
    pub fn all_names() -> Vec<&'static str> {
        Self::NAMES.iter().map(|(_, n)| *n).collect()
    }

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The names of the flags that are set, e.g. `["partial", "invalid_utf8"]`.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }
    pub fn from_name(name: &str) -> Option<Flags> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(f, _)| *f)
    }
}

/// One parsed, redacted log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    /// Event time (from the entry, else the previous event's time with [`Flags::NO_TIMESTAMP`]).
    pub ts: Timestamp,
    /// The service the entry belongs to (`app`, `worker`, `postgres`, `redis`, `kernel`, …).
    pub service: String,
    pub level: Level,
    /// The human message: pino `msg` (plus `err.message`), PostgreSQL's message after `LOG:`/`ERROR:`,
    /// the text after a syslog header. Continuation lines are joined with `\n`.
    pub message: String,
    /// The entry's text as it stood in the file, every physical line of it joined with `\n`, without
    /// line terminators, after redaction. `grep` over the file and `loggrep` over `raw` agree.
    pub raw: String,
    /// Structured attributes: JSON fields of pino lines (nested objects kept), and what the text
    /// parsers read (`pid`, `user`, `db`, `sqlstate`, `duration_ms`, `host`, `program`, …).
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub flags: Flags,
    /// Number of bytes the entry took in the source, terminators included. `id.offset + len` is the
    /// offset of the next entry.
    pub len: u32,
    /// Number of physical lines the entry took in the source.
    pub lines: u32,
}

impl Event {
    /// A field by dotted path (`res.statusCode`, `err.message`), looking through nested objects.
    pub fn field(&self, path: &str) -> Option<&serde_json::Value> {
        if let Some(v) = self.fields.get(path) {
            return Some(v);
        }
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut cur = self.fields.get(first)?;
        for part in parts {
            cur = cur.get(part)?;
        }
        Some(cur)
    }

    /// Offset just past this entry in its source.
    pub fn end_offset(&self) -> u64 {
        self.id.offset + u64::from(self.len)
    }
}

/// A batch of events from one chunk of one source, in source order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    pub events: Vec<Event>,
}

impl Events {
    pub fn new(events: Vec<Event>) -> Self {
        Events { events }
    }
    pub fn len(&self) -> usize {
        self.events.len()
    }
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.events.iter()
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_round_trips_through_its_text_form() {
        let id = EventId {
            fingerprint: 0xdead_beef_0012_3456,
            offset: 987_654,
        };
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        assert!("nonsense".parse::<EventId>().is_err());
    }

    #[test]
    fn timestamps_serialise_as_rfc3339_and_round_trip_exactly() {
        let t = Timestamp(1_796_220_123_456_789);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, "\"2026-12-02T14:02:03.456789Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), t);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1796220123456789").unwrap(),
            t
        );
    }

    #[test]
    fn levels_read_every_spelling_the_formats_use() {
        assert_eq!(Level::parse_name("ERROR"), Some(Level::Error));
        assert_eq!(Level::parse_name("warning"), Some(Level::Warn));
        assert_eq!(Level::parse_name("LOG"), Some(Level::Info));
        assert_eq!(Level::parse_name("crit"), Some(Level::Fatal));
        assert_eq!(Level::parse_name("hello"), None);
        assert_eq!(Level::from_pino(50), Level::Error);
        assert_eq!(Level::from_pino(60), Level::Fatal);
        assert_eq!(Level::from_pino(30), Level::Info);
    }

    #[test]
    fn nested_fields_are_found_by_dotted_path() {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "res".into(),
            serde_json::json!({"statusCode": 503, "headers": {"x": 1}}),
        );
        fields.insert("a.b".into(), serde_json::json!(7));
        let ev = Event {
            id: EventId {
                fingerprint: 1,
                offset: 0,
            },
            ts: Timestamp(0),
            service: "app".into(),
            level: Level::Info,
            message: String::new(),
            raw: String::new(),
            fields,
            flags: Flags::default(),
            len: 0,
            lines: 1,
        };
        assert_eq!(ev.field("res.statusCode"), Some(&serde_json::json!(503)));
        assert_eq!(ev.field("a.b"), Some(&serde_json::json!(7)));
        assert_eq!(ev.field("res.nope"), None);
    }

    #[test]
    fn flags_name_what_is_set() {
        let mut f = Flags::default();
        f.insert(Flags::PARTIAL);
        f.insert(Flags::INVALID_UTF8);
        assert_eq!(f.names(), vec!["partial", "invalid_utf8"]);
        assert_eq!(Flags::from_name("split"), Some(Flags::SPLIT));
    }
}
