//! PostgreSQL's `log_line_prefix` compiled into a reader for the start of stderr log lines.
//!
//! Owns: the escape table (`%m %t %n %p %l %u %d %a %h %r %c %s %v %x %e %q %Q %b %i %P %L %%`,
//! with PostgreSQL's `%-10u` padding), the `%q` rule (non-session processes print nothing after
//! it), timestamp reading for `%m`/`%t`/`%n`/`%s` and the zone abbreviations PostgreSQL prints, and
//! the list of common prefixes tried by [`detect`]. Takes a prefix string and lines; gives the
//! fields the prefix carries (`pid`, `user`, `db`, `app`, `client`, `line_num`, `session_id`,
//! `sqlstate`, `query_id`, …) and where the severity (`LOG:`, `ERROR:`, `DETAIL:` …) starts.
//! Empty fields (`user=,db=`) and `[unknown]` read as absent.
//!
//! Must not: group lines into entries or read the message body (that is `postgres.rs`).

use jiff::civil::DateTime;
use jiff::tz::Offset;
use regex::Regex;
use serde_json::{Map, Value};

use crate::event::Timestamp;

/// A `log_line_prefix` that cannot be compiled.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PgPrefixError {
    /// `%` followed by a character PostgreSQL does not know.
    #[error("unknown escape `%{escape}` in log_line_prefix at column {column}")]
    UnknownEscape { escape: char, column: usize },
    /// A `%` (or `%-10`) at the very end of the prefix.
    #[error("log_line_prefix ends with an incomplete escape at column {column}")]
    Incomplete { column: usize },
    /// The prefix compiled into a regex the regex crate refused (too large).
    #[error("log_line_prefix `{prefix}` cannot be compiled: {reason}")]
    Regex { prefix: String, reason: String },
}

/// Severities that start a new entry.
/// PostgreSQL prints every debug level as `DEBUG`; the numbered forms are accepted too.
pub const SEVERITIES: [&str; 13] = [
    "LOG", "ERROR", "WARNING", "FATAL", "PANIC", "NOTICE", "INFO", "DEBUG", "DEBUG1", "DEBUG2",
    "DEBUG3", "DEBUG4", "DEBUG5",
];

/// Keywords of the lines that continue the entry above (same prefix, no severity of their own).
pub const CONTINUATIONS: [&str; 6] = [
    "DETAIL",
    "HINT",
    "STATEMENT",
    "CONTEXT",
    "QUERY",
    "LOCATION",
];

/// Whether `word` is a severity or continuation keyword (`LOG`, `DETAIL`, …).
pub fn is_keyword(word: &str) -> bool {
    SEVERITIES.contains(&word) || CONTINUATIONS.contains(&word)
}

/// The prefixes [`detect`] tries, most specific first (ties keep the earlier one).
pub const COMMON_PREFIXES: [&str; 17] = [
    "%m [%p] [queryid=%Q] %u@%d ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] user=%u,db=%d,host=%h,app=%a ",
    "%t [%p]: [%l-1] [%x] usr=%u,db=%d,appli=%a ",
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d ",
    "[%p]: [%l-1] db=%d,user=%u ",
    "%t:%r:%u@%d:[%p]:",
    "%m:%r:%u@%d:[%p]:",
    "%m [%p] %q%u@%d ",
    "%t [%p] %q%u@%d ",
    "%m [%p] ",
    "%t [%p] ",
    "%m ",
    "%t ",
    "",
];

/// What one escape of the prefix reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    TimeMillis,
    TimeSecs,
    Epoch,
    Pid,
    LineNum,
    User,
    Db,
    App,
    Host,
    HostPort,
    SessionId,
    SessionStart,
    Vxid,
    Xid,
    SqlState,
    QueryId,
    BackendType,
    CommandTag,
    LeaderPid,
    LocalAddr,
}

impl Escape {
    fn from_char(c: char) -> Option<Escape> {
        Some(match c {
            'm' => Escape::TimeMillis,
            't' => Escape::TimeSecs,
            'n' => Escape::Epoch,
            'p' => Escape::Pid,
            'l' => Escape::LineNum,
            'u' => Escape::User,
            'd' => Escape::Db,
            'a' => Escape::App,
            'h' => Escape::Host,
            'r' => Escape::HostPort,
            'c' => Escape::SessionId,
            's' => Escape::SessionStart,
            'v' => Escape::Vxid,
            'x' => Escape::Xid,
            'e' => Escape::SqlState,
            'Q' => Escape::QueryId,
            'b' => Escape::BackendType,
            'i' => Escape::CommandTag,
            'P' => Escape::LeaderPid,
            'L' => Escape::LocalAddr,
            _ => return None,
        })
    }

    fn pattern(self) -> &'static str {
        match self {
            Escape::TimeMillis => {
                r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}(?: (?:[A-Za-z]{1,6}|[+-]\d{2}(?::?\d{2})?))?"
            }
            Escape::TimeSecs | Escape::SessionStart => {
                r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?: (?:[A-Za-z]{1,6}|[+-]\d{2}(?::?\d{2})?))?"
            }
            Escape::Epoch => r"\d+\.\d+",
            Escape::Pid | Escape::LineNum | Escape::Xid => r"\d+",
            Escape::LeaderPid => r"\d*",
            Escape::User | Escape::Db | Escape::Host => r"[^\s,]*?",
            Escape::LocalAddr => r"\S*?",
            Escape::HostPort => r"\[local\]|[^\s()]*\(\d+\)|\S*?",
            Escape::App | Escape::BackendType | Escape::CommandTag => r".*?",
            Escape::SessionId => r"[0-9a-f]+\.[0-9a-f]+",
            Escape::Vxid => r"(?:-?\d+/-?\d+)?",
            Escape::SqlState => r"[0-9A-Z]{5}",
            Escape::QueryId => r"-?\d+",
        }
    }
}

/// The head of one line read by a [`PgPrefix`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineHead<'a> {
    /// The severity or continuation keyword (`LOG`, `ERROR`, `DETAIL`, …).
    pub severity: &'a str,
    /// The line from the severity on (`ERROR:  relation … does not exist`).
    pub body: &'a str,
    /// The time the prefix carries (`%m`, `%t`, `%n`), if any.
    pub ts: Option<Timestamp>,
    /// The other fields the prefix carries, empty ones left out.
    pub fields: Map<String, Value>,
}

impl LineHead<'_> {
    /// True when the keyword continues the entry above (`DETAIL`, `HINT`, `STATEMENT`, …).
    pub fn is_continuation(&self) -> bool {
        CONTINUATIONS.contains(&self.severity)
    }
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct PgPrefix {
    source: String,
    /// `^prefix(?P<sev>SEVERITY|CONTINUATION):` with one group per escape.
    head: Regex,
    /// `^prefix(?:CONTINUATION):`, for the cheap continuation test.
    cont: Regex,
    /// The escape read by capture group `i + 1`.
    escapes: Vec<Escape>,
}

impl PgPrefix {
    /// Compile `prefix` (the value of `log_line_prefix`, without quotes).
    pub fn compile(prefix: &str) -> Result<PgPrefix, PgPrefixError> {
        let (pattern, escapes) = translate(prefix)?;
        let sev = SEVERITIES.join("|");
        let cont = CONTINUATIONS.join("|");
        let build = |re: String| {
            Regex::new(&re).map_err(|e| PgPrefixError::Regex {
                prefix: prefix.to_string(),
                reason: e.to_string(),
            })
        };
        Ok(PgPrefix {
            source: prefix.to_string(),
            head: build(format!("^(?:{pattern})(?P<sev>{sev}|{cont}):  ?"))?,
            cont: build(format!("^(?:{pattern})(?:{cont}):  ?"))?,
            escapes,
        })
    }

    /// The prefix as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when `line` starts with the prefix and a continuation keyword (`DETAIL:` …).
    pub fn is_continuation(&self, line: &str) -> bool {
        self.cont.is_match(line)
    }

    /// True when `line` starts with the prefix and any severity or continuation keyword.
    pub fn matches(&self, line: &str) -> bool {
        self.head.is_match(line)
    }

    /// Read the prefix and severity at the start of `line`; `None` when the line does not start so.
    pub fn read<'a>(&self, line: &'a str) -> Option<LineHead<'a>> {
        let caps = self.head.captures(line)?;
        let sev = caps.name("sev")?;
        let mut head = LineHead {
            severity: sev.as_str(),
            body: &line[sev.start()..],
            ts: None,
            fields: Map::new(),
        };
        for (i, escape) in self.escapes.iter().enumerate() {
            let Some(m) = caps.get(i + 1) else { continue };
            store(*escape, m.as_str().trim(), &mut head);
        }
        Some(head)
    }
}

/// The prefix → a regex fragment (one capture group per escape) and the escapes in group order.
fn translate(prefix: &str) -> Result<(String, Vec<Escape>), PgPrefixError> {
    let mut out = String::new();
    let mut escapes = Vec::new();
    let mut literal = String::new();
    let mut optional_open = false;
    let mut chars = prefix.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let column = prefix[..chars.peek().map_or(prefix.len(), |(i, _)| *i)]
            .chars()
            .count();
        // Padding: `%-10u`, `%10u`.
        let mut padded = false;
        while let Some(&(_, p)) = chars.peek() {
            if p == '-' || p.is_ascii_digit() {
                padded = true;
                chars.next();
            } else {
                break;
            }
        }
        let Some((_, e)) = chars.next() else {
            return Err(PgPrefixError::Incomplete { column });
        };
        if e == '%' {
            literal.push('%');
            continue;
        }
        out.push_str(&regex::escape(&literal));
        literal.clear();
        if e == 'q' {
            if !optional_open {
                out.push_str("(?:");
                optional_open = true;
            }
            continue;
        }
        let escape = Escape::from_char(e).ok_or(PgPrefixError::UnknownEscape {
            escape: e,
            column: column + 1,
        })?;
        escapes.push(escape);
        if padded {
            out.push_str(&format!(" *({}) *", escape.pattern()));
        } else {
            out.push_str(&format!("({})", escape.pattern()));
        }
    }
    out.push_str(&regex::escape(&literal));
    if optional_open {
        out.push_str(")?");
    }
    Ok((out, escapes))
}

/// Put one escape's text into the line head, leaving out empty values.
fn store(escape: Escape, text: &str, head: &mut LineHead<'_>) {
    if text.is_empty() || text == "[unknown]" {
        return;
    }
    let fields = &mut head.fields;
    let number = |t: &str| t.parse::<i64>().ok().map(Value::from);
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            fields.insert(key.to_string(), v);
        }
    };
    match escape {
        Escape::TimeMillis | Escape::TimeSecs => head.ts = parse_time(text),
        Escape::Epoch => head.ts = parse_epoch(text),
        Escape::Pid => put("pid", number(text)),
        Escape::LineNum => put("line_num", number(text)),
        Escape::LeaderPid => put("leader_pid", number(text)),
        Escape::Xid => put("xid", number(text).filter(|v| v.as_i64() != Some(0))),
        Escape::QueryId => put("query_id", number(text).filter(|v| v.as_i64() != Some(0))),
        Escape::User => put("user", Some(text.into())),
        Escape::Db => put("db", Some(text.into())),
        Escape::App => put("app", Some(text.into())),
        Escape::Host => put("client", Some(text.into())),
        Escape::HostPort => match text.strip_suffix(')').and_then(|t| t.rsplit_once('(')) {
            Some((host, port)) => {
                put("client", Some(host.into()));
                put("client_port", number(port));
            }
            None => put("client", Some(text.into())),
        },
        Escape::LocalAddr => put("local_addr", Some(text.into())),
        Escape::SessionId => put("session_id", Some(text.into())),
        Escape::SessionStart => put("session_start", Some(text.into())),
        Escape::Vxid => put("vxid", Some(text.into())),
        Escape::SqlState => put("sqlstate", Some(text.into())),
        Escape::BackendType => put("backend_type", Some(text.into())),
        Escape::CommandTag => put("command_tag", Some(text.into())),
    }
}

/// The UTC offset, in seconds, of a zone as PostgreSQL prints it: an abbreviation (`UTC`, `CEST`,
/// `PDT`, …) or a numeric offset (`+03`, `-0330`, `+05:30`).
pub fn zone_offset(zone: &str) -> Option<i32> {
    let hours = |h: i32| Some(h * 3600);
    match zone.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "Z" | "UT" | "WET" => return hours(0),
        "CET" | "BST" | "WEST" | "MET" => return hours(1),
        "CEST" | "EET" | "MEST" | "SAST" => return hours(2),
        "EEST" | "MSK" => return hours(3),
        "IST" => return Some(5 * 3600 + 1800),
        "JST" | "KST" => return hours(9),
        "AEST" => return hours(10),
        "AEDT" => return hours(11),
        "NZST" => return hours(12),
        "NZDT" => return hours(13),
        "AST" | "EDT" => return hours(-4),
        "EST" | "CDT" => return hours(-5),
        "CST" | "MDT" => return hours(-6),
        "MST" | "PDT" => return hours(-7),
        "PST" | "AKDT" => return hours(-8),
        "AKST" => return hours(-9),
        "HST" => return hours(-10),
        _ => {}
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

/// Read `2026-11-28 14:00:01.123 UTC` (`%m`), `2014-04-01 11:13:21 CEST` (`%t`) or the same
/// without a zone (read as UTC). `None` when the text is not such a time or the zone is unknown.
/// The fixed layout is read by hand: this runs once per entry.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i32> {
        b[from..to].iter().try_fold(0i32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i32::from(d - b'0'))
        })
    };
    // Digits first: they also make byte 19 a char boundary for the slicing below.
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut end = 19;
    let mut nanos = 0i32;
    if b.get(19) == Some(&b'.') {
        end = 20;
        let mut scale = 100_000_000;
        while let Some(d) = b.get(end).filter(|d| d.is_ascii_digit()) {
            nanos += i32::from(d - b'0') * scale;
            scale /= 10;
            end += 1;
        }
    }
    let zone = text[end..].trim_start();
    let offset = if zone.is_empty() {
        0
    } else {
        zone_offset(zone)?
    };
    let dt = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let ts = Offset::from_seconds(offset).ok()?.to_timestamp(dt).ok()?;
    Some(Timestamp::from_jiff(ts))
}

/// Read `%n`: seconds since the epoch with a fraction (`1732802401.123`).
pub fn parse_epoch(text: &str) -> Option<Timestamp> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut micros = 0i64;
    for (i, b) in frac.bytes().take(6).enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    Some(Timestamp(
        secs.checked_mul(Timestamp::MICROS_PER_SEC)?
            .checked_add(micros)?,
    ))
}

/// The `log_line_prefix` among [`COMMON_PREFIXES`] that reads the most lines of the sample (lines
/// that start with it and a severity); `None` when none reads any line.
pub fn detect(lines: &[&str]) -> Option<String> {
    let mut best: Option<(&str, usize)> = None;
    for candidate in COMMON_PREFIXES {
        let Ok(prefix) = PgPrefix::compile(candidate) else {
            continue;
        };
        let score = lines
            .iter()
            .filter(|l| prefix.matches(l.trim_end_matches('\r')))
            .count();
        if score > 0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(p, _)| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse::<jiff::Timestamp>().unwrap())
    }

    #[test]
    fn q_stops_the_prefix_for_non_session_processes() {
        let p = PgPrefix::compile("%m [%p] %q%u@%d ").unwrap();
        let h = p
            .read("2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time")
            .unwrap();
        assert_eq!(h.severity, "LOG");
        assert_eq!(h.body, "LOG:  checkpoint starting: time");
        assert_eq!(h.ts, Some(ts("2026-11-28T14:00:02.001Z")));
        assert_eq!(h.fields.get("pid"), Some(&Value::from(57)));
        assert!(h.fields.get("user").is_none() && h.fields.get("db").is_none());

        let h = p
            .read("2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT 1")
            .unwrap();
        assert_eq!(h.fields.get("user"), Some(&Value::from("newsletter")));
        assert_eq!(h.fields.get("db"), Some(&Value::from("newsletter")));
        assert_eq!(h.fields.get("pid"), Some(&Value::from(4242)));
    }

    #[test]
    fn empty_fields_read_as_absent() {
        let p = PgPrefix::compile("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ").unwrap();
        let h = p
            .read("2017-09-06 08:40:10 UTC [20]: [1-1] user=,db=,app=,client= LOG:  database system was shut down")
            .unwrap();
        assert_eq!(h.fields.len(), 2, "{:?}", h.fields); // pid, line_num
        assert_eq!(h.fields.get("line_num"), Some(&Value::from(1)));
        let h = p
            .read("2017-09-06 08:41:41 UTC [36]: [121-1] user=postgres,db=postgres,app=pgbench,client=172.23.0.1 LOG:  duration: 2.280 ms  statement: END;")
            .unwrap();
        assert_eq!(h.fields.get("app"), Some(&Value::from("pgbench")));
        assert_eq!(h.fields.get("client"), Some(&Value::from("172.23.0.1")));
    }

    #[test]
    fn remote_host_and_port_are_split() {
        let p = PgPrefix::compile("%t:%r:%u@%d:[%p]:").unwrap();
        let h = p
            .read("2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry")
            .unwrap();
        assert_eq!(h.severity, "FATAL");
        assert_eq!(h.fields.get("client"), Some(&Value::from("192.168.1.201")));
        assert_eq!(h.fields.get("client_port"), Some(&Value::from(50906)));
        assert_eq!(h.fields.get("user"), Some(&Value::from("gilles")));
        assert_eq!(h.ts, Some(ts("2020-03-11T19:40:50Z")));
        let h = p
            .read("2020-03-11 20:40:43 CET::@:[12760]:LOG:  starting PostgreSQL 12.2")
            .unwrap();
        assert_eq!(h.fields.len(), 1);
    }

    #[test]
    fn zones_and_epochs_read_to_utc() {
        assert_eq!(
            parse_time("2014-04-01 11:13:21 CEST"),
            Some(ts("2014-04-01T09:13:21Z"))
        );
        assert_eq!(
            parse_time("2014-01-01 11:13:21 PST"),
            Some(ts("2014-01-01T19:13:21Z"))
        );
        assert_eq!(
            parse_time("2014-07-01 11:13:21 EDT"),
            Some(ts("2014-07-01T15:13:21Z"))
        );
        assert_eq!(
            parse_time("2014-07-01 11:13:21.5 -03"),
            Some(ts("2014-07-01T14:13:21.5Z"))
        );
        assert_eq!(
            parse_time("2014-07-01 11:13:21 +05:30"),
            Some(ts("2014-07-01T05:43:21Z"))
        );
        assert_eq!(
            parse_time("2014-07-01 11:13:21 GMT"),
            Some(ts("2014-07-01T11:13:21Z"))
        );
        assert_eq!(parse_time("2014-07-01 11:13:21 XYZT"), None);
        assert_eq!(parse_time("2014-13-01 11:13:21 UTC"), None);
        assert_eq!(parse_time("2014-07-01 11:13"), None);
        assert_eq!(parse_time("2014-07-01 11:13:2é UTC"), None);
        assert_eq!(
            parse_time("2014-07-01 11:13:21"),
            Some(ts("2014-07-01T11:13:21Z"))
        );
        assert_eq!(
            parse_time("2014-07-01 11:13:21.123456 UTC"),
            Some(ts("2014-07-01T11:13:21.123456Z"))
        );
        assert_eq!(
            parse_epoch("1796220001.123"),
            Some(Timestamp(1_796_220_001_123_000))
        );
        let p = PgPrefix::compile("%n [%p] ").unwrap();
        let h = p.read("1796220001.123 [9] LOG:  x").unwrap();
        assert_eq!(h.ts, Some(Timestamp(1_796_220_001_123_000)));
    }

    proptest::proptest! {
        #[test]
        fn any_text_reads_without_panicking(line in "\\PC{0,80}", tail in "[0-9:. +A-Z-]{0,12}") {
            let _ = parse_epoch(&format!("9223372036854.{tail}"));
            proptest::prop_assert_eq!(parse_epoch("9223372036854.999999"), None);
            let p = PgPrefix::compile("%m [%p] %q%u@%d ").unwrap();
            let _ = p.read(&line);
            let _ = parse_time(&format!("2026-11-28 14:00:0{tail}"));
            let _ = parse_time(&line);
            let _ = parse_epoch(&line);
        }
    }

    #[test]
    fn bad_escapes_name_their_column() {
        let err = PgPrefix::compile("%m [%p] %z").unwrap_err();
        assert_eq!(
            err,
            PgPrefixError::UnknownEscape {
                escape: 'z',
                column: 10
            }
        );
        assert!(err.to_string().contains("`%z`") && err.to_string().contains("column 10"));
        assert_eq!(
            PgPrefix::compile("%m %").unwrap_err(),
            PgPrefixError::Incomplete { column: 4 }
        );
    }

    #[test]
    fn padding_percent_and_other_escapes_read() {
        let p = PgPrefix::compile("%m [%-6p] %%%e %c %v %x %Q (%b) ").unwrap();
        let h = p
            .read("2026-11-28 14:00:01.123 UTC [42    ] %53300 6747f0a1.1092 3/17 884 -77 (client backend) FATAL:  sorry, too many clients already")
            .unwrap();
        assert_eq!(h.fields.get("pid"), Some(&Value::from(42)));
        assert_eq!(h.fields.get("sqlstate"), Some(&Value::from("53300")));
        assert_eq!(
            h.fields.get("session_id"),
            Some(&Value::from("6747f0a1.1092"))
        );
        assert_eq!(h.fields.get("vxid"), Some(&Value::from("3/17")));
        assert_eq!(h.fields.get("xid"), Some(&Value::from(884)));
        assert_eq!(h.fields.get("query_id"), Some(&Value::from(-77)));
        assert_eq!(
            h.fields.get("backend_type"),
            Some(&Value::from("client backend"))
        );
    }

    #[test]
    fn continuation_lines_are_told_apart_from_severities() {
        let p = PgPrefix::compile("%m [%p] %q%u@%d ").unwrap();
        assert!(p.is_continuation(
            "2025-01-21 18:38:06.453 CET [78798] gilles@gilles DETAIL:  This value"
        ));
        assert!(!p.is_continuation(
            "2025-01-21 18:38:06.453 CET [78798] gilles@gilles ERROR:  conflicting"
        ));
        assert!(!p.is_continuation("pg_ctl: could not start server"));
    }

    #[test]
    fn detection_picks_the_prefix_that_reads_the_sample() {
        let ours = [
            "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT 1",
            "2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time",
        ];
        assert_eq!(detect(&ours).as_deref(), Some("%m [%p] %q%u@%d "));
        let plain = ["2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time"];
        assert_eq!(detect(&plain).as_deref(), Some("%m [%p] %q%u@%d "));
        assert_eq!(detect(&["hello world"]), None);
        let bare = [
            "LOG:  database system is ready to accept connections",
            "hello",
        ];
        assert_eq!(detect(&bare).as_deref(), Some(""));
        // A shorter candidate would read these lines too (with a wrong db): the longer one wins.
        let light = [
            "2017-09-06 08:41:41 UTC [36]: [121-1] user=postgres,db=postgres,app=pgbench,client=172.23.0.1 LOG:  duration: 2.280 ms  statement: END;",
        ];
        assert_eq!(
            detect(&light).as_deref(),
            Some("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ")
        );
        let short = PgPrefix::compile("%t [%p]: [%l-1] user=%u,db=%d ").unwrap();
        assert!(!short.matches(light[0]));
    }
}
