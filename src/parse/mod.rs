//! Bytes → events: framing, multi-line joining, format parsing, timestamps and redaction.
//!
//! Takes [`Chunk`]s of one file in order and gives [`Events`]. A [`Parser`] is per file (per
//! fingerprint) because it carries state across chunks: the partial last line, a multi-line entry
//! still open (a stack trace, a PostgreSQL STATEMENT), the detected format and PostgreSQL prefix, and
//! the previous event's time. It must never drop bytes: every line read lands in exactly one event
//! ([`Stats`] proves it), and whatever does not parse is kept as a flagged plain event. Secrets are
//! redacted here, before any event leaves the stage.

pub mod compose;
pub mod frame;
pub mod json;
pub mod multiline;
pub mod plain;
pub mod redact;
pub mod sniff;
pub mod syslog;
pub mod timestamp;

mod parser;

use std::fmt;
use std::str::FromStr;

use crate::event::{Level, Timestamp};

pub use parser::{ParseError, Parser, parse_all};

/// The formats logwarden reads. Names are part of the CLI (`--source SERVICE:FORMAT=PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Format {
    /// pino/winston JSON lines.
    Pino,
    /// PostgreSQL stderr log; `prefix` is the `log_line_prefix`, detected when `None`.
    Postgres { prefix: Option<String> },
    /// PostgreSQL csvlog.
    PostgresCsv,
    /// PostgreSQL jsonlog (15+).
    PostgresJson,
    /// BSD/RFC 3164 or RFC 5424 syslog, kernel lines included.
    Syslog,
    /// Redis's own log format (`pid:role dd Mon yyyy hh:mm:ss.mmm * msg`).
    Redis,
    /// `docker-compose logs` output: `service  | inner line`, the inner format detected per service.
    Compose,
    /// Anything else: level and timestamp heuristics.
    Plain,
    /// Detect per file from its first lines.
    #[default]
    Auto,
}

impl Format {
    pub const NAMES: [&'static str; 9] = [
        "pino",
        "postgres",
        "postgres-csv",
        "postgres-json",
        "syslog",
        "redis",
        "compose",
        "plain",
        "auto",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Format::Pino => "pino",
            Format::Postgres { .. } => "postgres",
            Format::PostgresCsv => "postgres-csv",
            Format::PostgresJson => "postgres-json",
            Format::Syslog => "syslog",
            Format::Redis => "redis",
            Format::Compose => "compose",
            Format::Plain => "plain",
            Format::Auto => "auto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pino" | "json" | "winston" => Format::Pino,
            "postgres" | "postgresql" | "postgres-stderr" => Format::Postgres { prefix: None },
            "postgres-csv" | "csvlog" => Format::PostgresCsv,
            "postgres-json" | "jsonlog" => Format::PostgresJson,
            "syslog" | "kernel" => Format::Syslog,
            "redis" => Format::Redis,
            "compose" | "docker-compose" => Format::Compose,
            "plain" | "text" => Format::Plain,
            "auto" => Format::Auto,
            other => {
                return Err(format!(
                    "unknown format `{other}` (expected one of {})",
                    Format::NAMES.join(", ")
                ));
            }
        })
    }
}

/// At most this many keys and array items (counted at every depth) of an entry become its
/// fields; the rest stay in its raw text, and the event is flagged `fields_capped`.
pub const MAX_FIELDS: usize = 1000;

/// Keep the first `max` keys and array items of `fields` (depth first, in key order), drop the
/// rest; true when anything was dropped. A value needs at least two bytes of its line (`1,`),
/// so a line shorter than `2 * max` is never capped and the caller can skip the walk.
pub fn cap_fields(fields: &mut serde_json::Map<String, serde_json::Value>, max: usize) -> bool {
    fn walk(value: &mut serde_json::Value, left: &mut usize) -> bool {
        match value {
            serde_json::Value::Object(map) => walk_map(map, left),
            serde_json::Value::Array(items) => {
                let keep = items.len().min(*left);
                let capped = keep < items.len();
                items.truncate(keep);
                *left -= keep;
                items.iter_mut().fold(capped, |c, v| walk(v, left) | c)
            }
            _ => false,
        }
    }
    fn walk_map(map: &mut serde_json::Map<String, serde_json::Value>, left: &mut usize) -> bool {
        let mut capped = false;
        map.retain(|_, v| {
            if *left == 0 {
                capped = true;
                return false;
            }
            *left -= 1;
            capped |= walk(v, left);
            true
        });
        capped
    }
    let mut left = max;
    walk_map(fields, &mut left)
}

/// Counters of the parse stage. Invariant: `lines == lines_in_events` once a file is finished;
/// `events` counts every event, `flagged` those with any flag set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    pub flagged: u64,
    pub malformed: u64,
    pub invalid_utf8: u64,
    pub split: u64,
    pub partial: u64,
    pub redacted: u64,
}

impl std::ops::AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, o: &Stats) {
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.events += o.events;
        self.flagged += o.flagged;
        self.malformed += o.malformed;
        self.invalid_utf8 += o.invalid_utf8;
        self.split += o.split;
        self.partial += o.partial;
        self.redacted += o.redacted;
    }
}

/// What a format reads from one entry (all of its physical lines).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub ts: Option<Timestamp>,
    pub level: Option<Level>,
    /// The human message (continuation lines joined with `\n`).
    pub message: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// A service named by the entry itself (a compose prefix), overriding the source's.
    pub service: Option<String>,
}

/// One log format's reading of entries. The `Parser` drives framing, multi-line grouping, the
/// timestamp fallback, flags and redaction around it; a format only says where entries end and
/// what one entry holds.
pub trait EntryFormat: Send + Sync + CloneFormat {
    /// True when `line` continues the entry whose lines so far are `entry` (joined with `\n`):
    /// a Node `    at …` frame, a PostgreSQL DETAIL/HINT/STATEMENT/CONTEXT or tab-indented line, a
    /// CSV record whose quotes are still open.
    fn continues(&self, entry: &str, line: &str) -> bool;
    /// Read one whole entry; `Err(reason)` when it does not follow the format (the entry is then
    /// kept as a plain event flagged malformed).
    fn parse(&self, entry: &str) -> Result<Parsed, String>;
    /// A cheap upper bound of the level of the entry `first_line` opens, without parsing it:
    /// `Some(b)` promises that, when the entry's text holds none of the format's
    /// [`LEVEL_PROBE_LITERALS`], [`EntryFormat::parse`] (or the plain fallback for a malformed
    /// entry) gives level `b`, a lower one, or none. `None`: no promise, the entry must be parsed.
    /// The scan's skim uses it to pass over entries no rule can match.
    fn level_bound(&self, _first_line: &str) -> Option<Level> {
        None
    }
}

/// A line of a block holding a literal the scan looks for (found by `detect::lines`), given to a
/// skimming [`Parser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineHit {
    /// File offset of the line's first byte.
    pub offset: u64,
    /// Some rule's text pattern matches the line (its literal and its regex, if any), or a level
    /// probe literal is on it. A weak hit (a literal whose rule's regex fails on the line) only
    /// matters when the line is part of a multi-line entry, where the regex may match across lines.
    pub strong: bool,
}

/// A boxed format's copy (for a parser's fork, which reads a later block of the same file); every
/// `Clone` format has it.
pub trait CloneFormat {
    fn clone_format(&self) -> Box<dyn EntryFormat>;
}

impl<T: EntryFormat + Clone + 'static> CloneFormat for T {
    fn clone_format(&self) -> Box<dyn EntryFormat> {
        Box::new(self.clone())
    }
}

/// Literals whose presence voids a [`EntryFormat::level_bound`] promise: another `level` key
/// source (a Google Cloud `textPayload`, a CloudNativePG `record`), and the words by which the plain
/// fallback of a malformed entry reads a level (`guess_level`). The scan searches them together
/// with the rules' literals, so an entry holding one is always parsed.
pub const LEVEL_PROBE_LITERALS: [&str; 8] = [
    "PANIC",
    "FATAL",
    "CRITICAL",
    "ERROR",
    "WARN",
    "Exception",
    "\"textPayload\"",
    "\"record\"",
];

pub mod pg_prefix;
pub mod postgres;
