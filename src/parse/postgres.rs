//! PostgreSQL's three log formats read into [`Parsed`] entries: stderr (with a `log_line_prefix`),
//! csvlog and jsonlog.
//!
//! Owns: where a PostgreSQL entry ends ([`EntryFormat::continues`]) and what it holds — level from
//! the severity, the message, and the fields `pid`, `user`, `db`, `app`, `client`, `sqlstate`,
//! `line_num`, `session_id`, `query_id`, `duration_ms` (a number, so rules compare it instead of
//! matching `duration:` text), `statement`, `detail`, `hint`, `context`. Takes whole entries (lines
//! joined with `\n`, a trailing `\r` tolerated); gives [`Parsed`]. The prefix itself is read by
//! [`super::pg_prefix`].
//!
//! Stderr grouping: a line that starts with the prefix and a severity (`LOG:`, `ERROR:`, …) starts
//! an entry; the prefix with `DETAIL:`/`HINT:`/`STATEMENT:`/`CONTEXT:`/`QUERY:`/`LOCATION:`, an
//! empty line, or a line starting with a tab or space continues it. Any other line (`pg_ctl: could
//! not start server`) is an entry of its own: when it does not look like PostgreSQL at all it
//! parses as `Ok` with level [`Level::Unknown`] and its text as message (a legitimate line of
//! another program, not a malformed one); when it looks like a PostgreSQL line under another prefix
//! (a date or a `LOG:  ` marker) it is `Err`, so that a wrong prefix shows up as malformed events.
//! A PostgreSQL line glued after another program's text (`waiting for server to start....<prefix>
//! LOG:  …`, the docker image's init) is read as PostgreSQL, the text before it kept as `preamble`.
//!
//! Must not: frame bytes, fall back on previous timestamps, redact or pick the service (the
//! `Parser` does that around every format).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::pg_prefix::{self, CONTINUATIONS, LineHead, PgPrefix, SEVERITIES};
use super::{EntryFormat, Parsed};
use crate::event::Level;

pub use super::pg_prefix::PgPrefixError;

/// A line that looks like PostgreSQL under a prefix we do not read: a date or a severity marker.
static LOOKS_PG: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\S*\d{4}-\d{2}-\d{2}|\b(?:LOG|ERROR|FATAL|PANIC|WARNING|STATEMENT|DETAIL):  ")
        .ok()
});

/// PostgreSQL stderr log lines read with a `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct PgStderr {
    prefix: PgPrefix,
}

impl PgStderr {
    /// A reader for `log_line_prefix` (e.g. `%m [%p] %q%u@%d `).
    pub fn new(log_line_prefix: &str) -> Result<PgStderr, PgPrefixError> {
        Ok(PgStderr {
            prefix: PgPrefix::compile(log_line_prefix)?,
        })
    }

    /// The `log_line_prefix` this reader was built with.
    pub fn prefix(&self) -> &str {
        self.prefix.source()
    }

    /// True when `line` starts a new PostgreSQL entry (the prefix and a severity).
    pub fn starts_entry(&self, line: &str) -> bool {
        let line = line.trim_end_matches('\r');
        self.prefix
            .keyword(line)
            .is_some_and(|k| !pg_prefix::is_continuation_keyword(k))
    }
}

impl EntryFormat for PgStderr {
    fn continues(&self, _entry: &str, line: &str) -> bool {
        let line = line.trim_end_matches('\r');
        line.is_empty() || line.starts_with([' ', '\t']) || self.prefix.is_continuation(line)
    }

    /// A line that opens with the prefix and a severity is read as PostgreSQL, its level that
    /// severity's: above notice only for WARNING, ERROR, FATAL and PANIC, which are probe literals.
    fn level_bound(&self, first_line: &str) -> Option<Level> {
        self.prefix.matches(first_line).then_some(Level::Notice)
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let mut lines = entry.split('\n').map(|l| l.trim_end_matches('\r'));
        let first = lines.next().unwrap_or_default();
        let (head, preamble) = match self.prefix.read(first) {
            Some(head) => (head, None),
            None => match self.embedded(first) {
                Some((preamble, head)) => (head, Some(preamble)),
                None => return foreign(entry, self.prefix.source()),
            },
        };
        let mut body = String::with_capacity(entry.len());
        body.push_str(head.body);
        for line in lines {
            body.push('\n');
            match self.prefix.read(line) {
                Some(cont) if cont.is_continuation() => body.push_str(cont.body),
                _ => body.push_str(line),
            }
        }
        let mut out = Parsed {
            ts: head.ts,
            fields: head.fields,
            ..Parsed::default()
        };
        if let Some(preamble) = preamble {
            out.fields.insert("preamble".into(), Value::from(preamble));
        }
        parse_body(&body, &mut out);
        Ok(out)
    }
}

impl PgStderr {
    /// A PostgreSQL line glued to the end of another program's output, as the docker image's
    /// init script writes it: `waiting for server to start....2026-11-28 … [48] LOG:  starting …`.
    /// Looks for the prefix and a severity within the first [`EMBEDDED_SCAN`] bytes.
    fn embedded<'a>(&self, line: &'a str) -> Option<(&'a str, LineHead<'a>)> {
        line.char_indices()
            .skip(1)
            .take_while(|(i, _)| *i < EMBEDDED_SCAN)
            .find_map(|(i, _)| {
                let head = self.prefix.read(&line[i..])?;
                (!head.is_continuation()).then_some((&line[..i], head))
            })
    }
}

/// How far into a line [`PgStderr::embedded`] looks for the prefix.
const EMBEDDED_SCAN: usize = 256;

/// An entry that does not start with the prefix (see the module doc for Ok vs Err).
fn foreign(entry: &str, prefix: &str) -> Result<Parsed, String> {
    let text: Vec<&str> = entry
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    let first = text.first().copied().unwrap_or_default();
    if LOOKS_PG.as_ref().is_some_and(|re| re.is_match(first)) {
        return Err(format!(
            "line does not start with log_line_prefix `{prefix}` and a severity"
        ));
    }
    Ok(Parsed {
        level: Some(Level::Unknown),
        message: text.join("\n"),
        ..Parsed::default()
    })
}

/// Read what follows the prefix: `LOG:  duration: 12.3 ms  statement: …`, `FATAL:  …`, then the
/// entry's `DETAIL:`/`HINT:`/`STATEMENT:`/`CONTEXT:`/`QUERY:`/`LOCATION:` lines (prefix already
/// removed) and tab-indented lines (one leading tab removed). Sets the level, the message (the
/// first section with its indented lines), `sqlstate` (verbose `ERROR:  42P01: …`), `duration_ms`,
/// `statement`, `detail`, `hint`, `context`, `internal_query`, `location`. A body without a
/// severity becomes the message as it is.
pub fn parse_body(body: &str, out: &mut Parsed) {
    let mut message = String::new();
    let mut section: Option<&'static str> = None; // None: the message
    let mut first = true;
    for line in body.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some((keyword, rest)) = keyword_line(line) {
            if first {
                out.level = Level::parse_name(keyword).or(Some(Level::Info));
                let rest = take_sqlstate(rest, out);
                message.push_str(rest);
                first = false;
                section = continuation_field(keyword);
                continue;
            }
            if let Some(field) = continuation_field(keyword) {
                section = Some(field);
                append(out, field, rest);
                continue;
            }
        }
        let text = line.strip_prefix('\t').unwrap_or(line);
        match section {
            None => {
                if !first {
                    message.push('\n');
                }
                message.push_str(text);
            }
            Some(field) => {
                let prev = out
                    .fields
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let joined = format!("{prev}\n{text}");
                out.fields.insert(field.to_string(), Value::from(joined));
            }
        }
        first = false;
    }
    // Empty lines that joined the entry (a blank line after a statement) end nothing.
    message.truncate(message.trim_end().len());
    for field in CONTINUATIONS.iter().filter_map(|k| continuation_field(k)) {
        if let Some(Value::String(text)) = out.fields.get_mut(field) {
            text.truncate(text.trim_end().len());
        }
    }
    read_message(&message, out);
    out.message = message;
}

/// Fields read from the message itself: `duration_ms` (`duration: 12.3 ms`) and `statement`
/// (`statement: …`, `execute <unnamed>: …`, with or without a duration before it).
fn read_message(message: &str, out: &mut Parsed) {
    let mut rest = message;
    if let Some(after) = message.strip_prefix("duration: ")
        && let Some((ms, after)) = after.split_once(" ms")
        && let Ok(ms) = ms.parse::<f64>()
    {
        out.fields.insert("duration_ms".into(), Value::from(ms));
        rest = after.trim_start();
    }
    let statement = if let Some(s) = rest.strip_prefix("statement: ") {
        Some(s)
    } else if ["execute ", "parse ", "bind "]
        .iter()
        .any(|k| rest.starts_with(k))
    {
        rest.split_once(": ").map(|(_, s)| s)
    } else {
        None
    };
    if let Some(s) = statement.filter(|s| !s.is_empty()) {
        out.fields.insert("statement".into(), Value::from(s));
    }
}

/// `KEYWORD:  rest` when the line starts with a severity or continuation keyword.
fn keyword_line(line: &str) -> Option<(&str, &str)> {
    let (keyword, rest) = line.split_once(':')?;
    if !SEVERITIES.contains(&keyword) && !CONTINUATIONS.contains(&keyword) {
        return None;
    }
    let rest = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(' '))
        .unwrap_or(rest);
    Some((keyword, rest))
}

/// The field a continuation keyword fills.
fn continuation_field(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "DETAIL" => "detail",
        "HINT" => "hint",
        "STATEMENT" => "statement",
        "CONTEXT" => "context",
        "QUERY" => "internal_query",
        "LOCATION" => "location",
        _ => return None,
    })
}

/// Add `text` to a field, after what it already holds.
fn append(out: &mut Parsed, field: &str, text: &str) {
    let joined = match out.fields.get(field).and_then(Value::as_str) {
        Some(prev) if !prev.is_empty() => format!("{prev}\n{text}"),
        _ => text.to_string(),
    };
    out.fields.insert(field.to_string(), Value::from(joined));
}

/// `42P01: relation …` (log_error_verbosity = verbose) → sqlstate, and the rest.
fn take_sqlstate<'a>(rest: &'a str, out: &mut Parsed) -> &'a str {
    let b = rest.as_bytes();
    if b.len() > 7
        && b[5] == b':'
        && b[6] == b' '
        && b[..5]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        out.fields
            .entry("sqlstate")
            .or_insert_with(|| Value::from(&rest[..5]));
        return rest[7..].trim_start();
    }
    rest
}

/// The prefix of the newsletter stack and of Debian's packages; a sensible fallback when
/// [`detect_prefix`] finds nothing in the first lines (a file that starts with non-PostgreSQL output).
pub const DEFAULT_PREFIX: &str = "%m [%p] %q%u@%d ";

/// The `log_line_prefix` that reads the most lines of the sample (the file's first ~100–200 lines),
/// among [`pg_prefix::COMMON_PREFIXES`]; `None` when none reads a single line.
pub fn detect_prefix(lines: &[&str]) -> Option<String> {
    pg_prefix::detect(lines)
}

/// PostgreSQL `csvlog` records: 22/23 columns (≤ 12), 24 (13, `backend_type`), 26 (14+,
/// `leader_pid`, `query_id`). A record spans lines while its quotes are open.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgCsv;

/// csvlog columns in order (PostgreSQL 14+; older versions stop earlier).
const CSV_COLUMNS: [&str; 26] = [
    "log_time",
    "user",
    "db",
    "pid",
    "connection_from",
    "session_id",
    "line_num",
    "command_tag",
    "session_start",
    "vxid",
    "xid",
    "error_severity",
    "sqlstate",
    "message",
    "detail",
    "hint",
    "internal_query",
    "internal_query_pos",
    "context",
    "statement",
    "query_pos",
    "location",
    "app",
    "backend_type",
    "leader_pid",
    "query_id",
];

impl EntryFormat for PgCsv {
    fn continues(&self, entry: &str, _line: &str) -> bool {
        memchr::memchr_iter(b'"', entry.as_bytes()).count() % 2 == 1
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let entry = entry.trim_end_matches(['\r', '\n']);
        let cols = split_csv(entry)?;
        // 22: PostgreSQL ≤ 8.4 (no application_name).
        if !matches!(cols.len(), 22..=24 | 26) {
            return Err(format!(
                "csvlog record has {} columns (expected 22, 23, 24 or 26)",
                cols.len()
            ));
        }
        let mut out = Parsed {
            ts: pg_prefix::parse_time(&cols[0]),
            ..Parsed::default()
        };
        if out.ts.is_none() {
            return Err(format!(
                "csvlog record starts with `{}`, not a time",
                cols[0]
            ));
        }
        let mut message = String::new();
        for (name, value) in CSV_COLUMNS.iter().zip(cols) {
            if value.is_empty() {
                continue;
            }
            match *name {
                "log_time" => {}
                "error_severity" => out.level = Level::parse_name(&value).or(Some(Level::Unknown)),
                "message" => message = value,
                "connection_from" => put_client(&mut out.fields, &value),
                "pid" | "line_num" | "leader_pid" | "xid" | "query_id" | "internal_query_pos"
                | "query_pos" => {
                    if let Ok(n) = value.parse::<i64>()
                        && (n != 0 || *name == "line_num")
                    {
                        out.fields.insert((*name).into(), Value::from(n));
                    }
                }
                _ => {
                    out.fields.insert((*name).into(), Value::from(value));
                }
            }
        }
        read_message(&message, &mut out);
        out.message = message;
        Ok(out)
    }
}

/// `host:port` / `[local]` → `client`, `client_port`.
fn put_client(fields: &mut Map<String, Value>, text: &str) {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            fields.insert("client".into(), Value::from(host));
            if let Ok(p) = port.parse::<i64>() {
                fields.insert("client_port".into(), Value::from(p));
            }
        }
        _ => {
            fields.insert("client".into(), Value::from(text));
        }
    }
}

/// One CSV record (RFC 4180 quoting, `""` for a quote) → its columns.
fn split_csv(record: &str) -> Result<Vec<String>, String> {
    let mut cols = Vec::with_capacity(26);
    let mut cur = String::new();
    let mut chars = record.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' => {
                cols.push(std::mem::take(&mut cur));
                at_start = true;
            }
            _ => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("csvlog record ends inside a quoted field".into());
    }
    cols.push(cur);
    Ok(cols)
}

/// PostgreSQL `jsonlog` (15+): one JSON object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgJson;

impl EntryFormat for PgJson {
    fn continues(&self, _entry: &str, _line: &str) -> bool {
        false
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let obj: Map<String, Value> = serde_json::from_str(entry.trim_end_matches(['\r', '\n']))
            .map_err(|e| format!("jsonlog entry is not a JSON object: {e}"))?;
        let mut out = Parsed::default();
        let mut message = String::new();
        for (key, value) in obj {
            if value.is_null() || value.as_str() == Some("") {
                continue;
            }
            let name = match key.as_str() {
                "timestamp" => {
                    out.ts = value.as_str().and_then(pg_prefix::parse_time);
                    continue;
                }
                "error_severity" => {
                    out.level = value
                        .as_str()
                        .and_then(Level::parse_name)
                        .or(Some(Level::Unknown));
                    continue;
                }
                "message" => {
                    message = value.as_str().unwrap_or_default().to_string();
                    continue;
                }
                "txid" | "query_id" if value.as_i64() == Some(0) => continue,
                "dbname" => "db",
                "remote_host" => "client",
                "remote_port" => "client_port",
                "state_code" => "sqlstate",
                "application_name" => "app",
                "ps" => "command_tag",
                "txid" => "xid",
                other => other,
            };
            out.fields.insert(name.to_string(), value);
        }
        if out.ts.is_none() {
            return Err("jsonlog entry has no readable `timestamp`".into());
        }
        read_message(&message, &mut out);
        out.message = message;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    /// The fixture's text (tests/fixtures/pgbadger, copied from pgbadger's t/fixtures).
    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/pgbadger/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Physical lines as the framer gives them: split on `\n`, no terminator, the last `\n` ends
    /// the last line.
    fn lines(text: &str) -> Vec<&str> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        text.split('\n').collect()
    }

    /// Group lines into entries the way the Parser drives `continues`.
    fn entries(format: &dyn EntryFormat, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in lines(text) {
            match out.last_mut() {
                Some(entry) if format.continues(entry, line) => {
                    entry.push('\n');
                    entry.push_str(line);
                }
                _ => out.push(line.to_string()),
            }
        }
        out
    }

    fn parse_all(format: &dyn EntryFormat, text: &str) -> Vec<Parsed> {
        entries(format, text)
            .iter()
            .map(|e| format.parse(e).unwrap_or_else(|err| panic!("{err}: {e}")))
            .collect()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse::<jiff::Timestamp>().unwrap())
    }

    fn stderr_for(name: &str) -> (PgStderr, String) {
        let text = fixture(name);
        let sample: Vec<&str> = lines(&text).into_iter().take(200).collect();
        let prefix = detect_prefix(&sample).unwrap();
        (PgStderr::new(&prefix).unwrap(), text)
    }

    fn field<'a>(p: &'a Parsed, name: &str) -> Option<&'a Value> {
        p.fields.get(name)
    }

    #[test]
    fn our_stack_lines_read_with_level_user_db_and_duration() {
        let f = PgStderr::new("%m [%p] %q%u@%d ").unwrap();
        let text = "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT * FROM campaigns WHERE tenant_id = $1\n\
2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time\n\
2026-11-28 14:05:00.100 UTC [4301] newsletter@newsletter FATAL:  sorry, too many clients already\n\
2026-11-28 14:06:00.200 UTC [4302] newsletter@newsletter FATAL:  password authentication failed for user \"newsletter\"\n\
2026-11-28 14:06:00.200 UTC [4302] newsletter@newsletter DETAIL:  Connection matched pg_hba.conf line 99: \"host all all all scram-sha-256\"\n\
2026-11-28 14:07:00.000 UTC [57] PANIC:  could not write to file \"pg_wal/xlogtemp.57\": No space left on device\n\
2026-11-28 14:07:30.000 UTC [4305] newsletter@newsletter ERROR:  out of memory\n\
2026-11-28 14:07:30.000 UTC [4305] newsletter@newsletter DETAIL:  Failed on request of size 8192.\n\
2026-11-28 14:08:00.000 UTC [4303] newsletter@newsletter ERROR:  canceling statement due to statement timeout\n\
2026-11-28 14:08:00.000 UTC [4303] newsletter@newsletter STATEMENT:  SELECT count(*)\n\
\t  FROM email_events\n";
        let got = parse_all(&f, text);
        assert_eq!(got.len(), 7);

        assert_eq!(got[0].level, Some(Level::Info));
        assert_eq!(got[0].ts, Some(ts("2026-11-28T14:00:01.123Z")));
        assert_eq!(field(&got[0], "duration_ms"), Some(&Value::from(12.345)));
        assert_eq!(
            field(&got[0], "statement"),
            Some(&Value::from("SELECT * FROM campaigns WHERE tenant_id = $1"))
        );
        assert_eq!(field(&got[0], "user"), Some(&Value::from("newsletter")));

        assert_eq!(got[1].message, "checkpoint starting: time");
        assert_eq!(field(&got[1], "pid"), Some(&Value::from(57)));
        assert_eq!(field(&got[1], "user"), None);

        assert_eq!(got[2].level, Some(Level::Fatal));
        assert_eq!(got[2].message, "sorry, too many clients already");
        assert_eq!(field(&got[2], "db"), Some(&Value::from("newsletter")));
        assert_eq!(field(&got[2], "pid"), Some(&Value::from(4301)));

        assert_eq!(got[3].level, Some(Level::Fatal));
        assert_eq!(
            got[3].message,
            "password authentication failed for user \"newsletter\""
        );
        assert_eq!(field(&got[3], "user"), Some(&Value::from("newsletter")));
        assert!(
            field(&got[3], "detail")
                .and_then(Value::as_str)
                .unwrap()
                .starts_with("Connection matched pg_hba.conf line 99")
        );

        assert_eq!(got[4].level, Some(Level::Panic));
        assert_eq!(got[5].level, Some(Level::Error));
        assert_eq!(got[5].message, "out of memory");
        assert_eq!(
            field(&got[5], "detail"),
            Some(&Value::from("Failed on request of size 8192."))
        );
        assert_eq!(got[6].level, Some(Level::Error));
        assert_eq!(
            field(&got[6], "statement"),
            Some(&Value::from("SELECT count(*)\n  FROM email_events"))
        );
    }

    #[test]
    fn body_reads_levels_verbose_sqlstate_and_sections() {
        let mut p = Parsed::default();
        parse_body(
            "ERROR:  42P01: relation \"nope\" does not exist at character 15\nLOCATION:  parserOpenTable, parse_relation.c:1384\nSTATEMENT:  select * from nope;",
            &mut p,
        );
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(
            p.message,
            "relation \"nope\" does not exist at character 15"
        );
        assert_eq!(field(&p, "sqlstate"), Some(&Value::from("42P01")));
        assert_eq!(
            field(&p, "statement"),
            Some(&Value::from("select * from nope;"))
        );
        assert_eq!(
            field(&p, "location"),
            Some(&Value::from("parserOpenTable, parse_relation.c:1384"))
        );

        for (sev, level) in [
            ("WARNING", Level::Warn),
            ("NOTICE", Level::Notice),
            ("INFO", Level::Info),
            ("DEBUG2", Level::Debug),
            ("LOG", Level::Info),
        ] {
            let mut p = Parsed::default();
            parse_body(&format!("{sev}:  something"), &mut p);
            assert_eq!(p.level, Some(level), "{sev}");
            assert_eq!(p.message, "something");
        }

        let mut p = Parsed::default();
        parse_body(
            "LOG:  duration: 778.166 ms  execute <unnamed>: select 1\nDETAIL:  parameters: $1 = 'x'",
            &mut p,
        );
        assert_eq!(field(&p, "duration_ms"), Some(&Value::from(778.166)));
        assert_eq!(field(&p, "statement"), Some(&Value::from("select 1")));
        assert_eq!(
            field(&p, "detail"),
            Some(&Value::from("parameters: $1 = 'x'"))
        );
    }

    #[test]
    fn queryid_log_groups_statements_and_reads_the_lock_wait() {
        let (f, text) = stderr_for("queryid.log");
        assert_eq!(f.prefix(), "%m [%p] [queryid=%Q] %u@%d ");
        assert_eq!(lines(&text).len(), 63);
        let got = parse_all(&f, &text);
        // The corpora README says 39 events: that is the number of prefixed lines. By its own
        // definition (DETAIL/HINT/STATEMENT lines belong to the entry above) the file holds 28
        // entries: 28 severity lines + 11 DETAIL/HINT/STATEMENT lines + 24 indented/empty lines.
        assert_eq!(got.len(), 28);
        let prefixed = lines(&text).iter().filter(|l| f.prefix.matches(l)).count();
        assert_eq!(prefixed, 39);

        let slow: Vec<&Parsed> = got
            .iter()
            .filter(|p| {
                field(p, "duration_ms")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
                    > 1000.0
            })
            .collect();
        assert_eq!(slow.len(), 1);
        assert_eq!(field(slow[0], "duration_ms"), Some(&Value::from(13556.339)));
        assert!(field(slow[0], "query_id").is_some());
        assert_eq!(field(slow[0], "user"), Some(&Value::from("postgres")));
        assert_eq!(field(slow[0], "db"), Some(&Value::from("stackoverflow")));

        let errors: Vec<&Parsed> = got
            .iter()
            .filter(|p| p.level == Some(Level::Error))
            .collect();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].message, "canceling statement due to user request");
        assert!(
            field(errors[0], "statement")
                .and_then(Value::as_str)
                .unwrap()
                .ends_with("FROM posts_toast;")
        );
        assert!(
            errors[1].fields.contains_key("hint"),
            "{:?}",
            errors[1].fields
        );
        // The multi-line statement of the second entry is one entry with its tab-indented lines.
        assert!(
            field(&got[1], "statement")
                .and_then(Value::as_str)
                .unwrap()
                .contains("ORDER BY 1,2;")
        );
        assert_eq!(field(&got[1], "duration_ms"), Some(&Value::from(25.45)));
        // Line 23 is empty: it joins `select 1;` without changing its statement.
        let select1 = got
            .iter()
            .find(|p| p.message.ends_with("statement: select 1;"))
            .unwrap();
        assert_eq!(field(select1, "statement"), Some(&Value::from("select 1;")));
    }

    #[test]
    fn tempfile_only_log_reads_every_slow_statement() {
        let (f, text) = stderr_for("tempfile_only.log");
        assert_eq!(f.prefix(), "%t [%p]: [%l-1] user=%u,db=%d ");
        assert_eq!(lines(&text).len(), 188);
        let got = parse_all(&f, &text);
        // README: 176 = prefixed lines; 5 of them are the STATEMENT of a temporary-file entry.
        assert_eq!(got.len(), 171);
        let durations = got
            .iter()
            .filter_map(|p| field(p, "duration_ms").and_then(Value::as_f64))
            .filter(|ms| *ms >= 1000.0)
            .count();
        assert!(durations >= 65, "{durations}");
        assert_eq!(got[0].ts, Some(ts("2014-04-01T09:13:21Z")));
        assert_eq!(field(&got[0], "line_num"), Some(&Value::from(12)));
        assert_eq!(field(&got[0], "user"), Some(&Value::from("creward")));
    }

    #[test]
    fn light_log_is_one_entry_per_line() {
        let (f, text) = stderr_for("light.postgres.log");
        assert_eq!(
            f.prefix(),
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "
        );
        let got = parse_all(&f, &text);
        assert_eq!(got.len(), 630);
        let durations: Vec<f64> = got
            .iter()
            .filter_map(|p| field(p, "duration_ms").and_then(Value::as_f64))
            .collect();
        assert_eq!(durations.len(), 629);
        assert_eq!(durations.iter().filter(|d| **d >= 200.0).count(), 9);
        assert!(durations.iter().all(|d| *d < 500.0));
        assert!(got.iter().all(|p| p.ts.is_some()));
    }

    #[test]
    fn crlf_param_range_log_joins_detail_lines() {
        let (f, text) = stderr_for("postgresql_param_range.log");
        assert!(text.contains("\r\n"));
        assert_eq!(f.prefix(), "%t [%p]: [%l-1] [%x] usr=%u,db=%d,appli=%a ");
        let got = parse_all(&f, &text);
        assert_eq!(got.len(), 3);
        let ms: Vec<f64> = got
            .iter()
            .map(|p| field(p, "duration_ms").and_then(Value::as_f64).unwrap())
            .collect();
        assert_eq!(ms, vec![778.166, 747.825, 133.424]);
        for p in &got {
            let detail = field(p, "detail").and_then(Value::as_str).unwrap();
            assert!(detail.starts_with("parameters: $1 = "), "{detail}");
            assert!(!detail.ends_with('\r'));
            assert_eq!(
                field(p, "app").and_then(Value::as_str).map(str::len),
                Some(16)
            );
        }
    }

    #[test]
    fn pg_rawcsv_keeps_pg_ctl_lines_as_their_own_events() {
        let (f, text) = stderr_for("pg_rawcsv.log");
        assert_eq!(f.prefix(), "%m [%p] %q%u@%d ");
        let es = entries(&f, &text);
        // README: 12 = prefixed lines; by its definition 9 PostgreSQL entries + 2 pg_ctl lines.
        assert_eq!(es.len(), 11);
        let got: Vec<Parsed> = es.iter().map(|e| f.parse(e).unwrap()).collect();
        assert_eq!(got[1].level, Some(Level::Fatal));
        assert_eq!(got[1].ts, Some(ts("2025-01-21T17:32:48.288Z")));
        assert_eq!(got[2].level, Some(Level::Unknown));
        assert_eq!(got[2].message, "pg_ctl: could not start server");
        assert_eq!(got[2].ts, None);
        assert_eq!(got[3].message, "Examine the log output.");
        assert_eq!(field(&got[4], "user"), None);
        let err = &got[9];
        assert_eq!(err.level, Some(Level::Error));
        assert_eq!(field(err, "user"), Some(&Value::from("gilles")));
        assert!(err.fields.contains_key("detail") && err.fields.contains_key("statement"));
    }

    #[test]
    fn docker_init_output_is_plain_and_glued_pg_lines_still_read() {
        let f = PgStderr::new("%m [%p] %q%u@%d ").unwrap();
        let text = "The files belonging to this database system will be owned by user \"postgres\".\n\
waiting for server to start....2026-11-28 13:59:58.001 UTC [48] LOG:  starting PostgreSQL 16.4 on x86_64-pc-linux-gnu\n done\n\
server started\n\
2026-11-28 13:59:59.500 UTC [48] LOG:  database system is ready to accept connections\n";
        let es = entries(&f, text);
        // ` done` starts with a space: it continues the glued line (as PostgreSQL's own indented
        // lines do); everything else is an entry of its own.
        assert_eq!(es.len(), 4);
        let got: Vec<Parsed> = es.iter().map(|e| f.parse(e).unwrap()).collect();
        assert_eq!(got[0].level, Some(Level::Unknown));
        assert_eq!(got[1].level, Some(Level::Info));
        assert_eq!(got[1].ts, Some(ts("2026-11-28T13:59:58.001Z")));
        assert!(got[1].message.starts_with("starting PostgreSQL 16.4"));
        assert_eq!(
            field(&got[1], "preamble"),
            Some(&Value::from("waiting for server to start...."))
        );
        assert_eq!(field(&got[1], "pid"), Some(&Value::from(48)));
        assert_eq!(got[2].message, "server started");
        assert_eq!(got[3].ts, Some(ts("2026-11-28T13:59:59.500Z")));
    }

    proptest::proptest! {
        #[test]
        fn any_entry_parses_or_errs_without_panicking(entry in "\\PC{0,120}(\n[\t ]?\\PC{0,40}){0,3}") {
            let f = PgStderr::new("%m [%p] %q%u@%d ").unwrap();
            let _ = f.parse(&entry);
            let _ = f.continues("", &entry);
            let _ = PgCsv.parse(&entry);
            let _ = PgJson.parse(&entry);
            let mut p = Parsed::default();
            parse_body(&entry, &mut p);
            let _ = f.parse(&format!("2026-11-28 14:00:01.123 UTC [1] a@b ERROR:  {entry}"));
        }
    }

    #[test]
    fn a_line_of_another_prefix_is_malformed_not_unknown() {
        let f = PgStderr::new("%m [%p] %q%u@%d ").unwrap();
        assert!(
            f.parse("2014-04-01 11:13:21 CEST [28414]: [12-1] user=a,db=b LOG:  x")
                .is_err()
        );
        assert!(!f.starts_entry("2014-04-01 11:13:21 CEST [28414]: [12-1] user=a,db=b LOG:  x"));
    }

    #[test]
    fn rds_log_reads_host_port_and_the_refused_client() {
        let (f, text) = stderr_for("rds_head3000.log");
        assert_eq!(f.prefix(), "%t:%r:%u@%d:[%p]:");
        let got = parse_all(&f, &text);
        assert_eq!(got.len(), 3000);
        let fatal: Vec<&Parsed> = got
            .iter()
            .filter(|p| p.level == Some(Level::Fatal))
            .collect();
        assert_eq!(fatal.len(), 2);
        assert_eq!(
            field(fatal[0], "client"),
            Some(&Value::from("192.168.1.201"))
        );
        assert_eq!(field(fatal[0], "user"), Some(&Value::from("gilles")));
        assert_eq!(field(fatal[0], "db"), Some(&Value::from("pgbench")));
        let max = got
            .iter()
            .filter_map(|p| field(p, "duration_ms").and_then(Value::as_f64))
            .fold(0.0, f64::max);
        assert!(max < 15.0, "{max}");
    }

    #[test]
    fn vacuum_reports_match_their_jsonlog_twin() {
        let (f, text) = stderr_for("pg_vacuums_head1000.log");
        assert_eq!(f.prefix(), "%t [%p]: [%l-1] user=%u,db=%d,host=%h,app=%a ");
        assert_eq!(lines(&text).len(), 9139);
        let stderr = parse_all(&f, &text);
        assert_eq!(stderr.len(), 1000);

        let json_text = fixture("pg_vacuums_head1000.json");
        let json = parse_all(&PgJson, &json_text);
        assert_eq!(json.len(), 1000);
        for (s, j) in stderr.iter().zip(&json) {
            assert_eq!(s.ts.map(|t| t.as_secs()), j.ts.map(|t| t.as_secs()));
            assert_eq!(field(s, "pid"), field(j, "pid"));
            assert_eq!(field(s, "line_num"), field(j, "line_num"));
            assert_eq!(s.level, j.level);
            assert_eq!(s.message, j.message);
        }
        assert_eq!(
            field(&json[0], "backend_type"),
            Some(&Value::from("autovacuum worker"))
        );
        assert_eq!(
            field(&json[0], "session_id"),
            Some(&Value::from("667c8f67.e327"))
        );
        assert_eq!(json[0].ts, Some(ts("2024-06-26T22:00:07.369Z")));
    }

    #[test]
    fn csvlog_reads_23_columns_and_slow_statements() {
        let text = fixture("anonymize.log");
        let got = parse_all(&PgCsv, &text);
        assert_eq!(got.len(), 8);
        let ms: Vec<f64> = got
            .iter()
            .map(|p| field(p, "duration_ms").and_then(Value::as_f64).unwrap())
            .collect();
        assert_eq!(ms.iter().filter(|m| **m >= 200.0).count(), 2);
        assert_eq!(ms.iter().filter(|m| **m >= 1000.0).count(), 1);
        let p = &got[0];
        assert_eq!(p.ts, Some(ts("2021-01-22T09:03:22.785Z")));
        assert_eq!(p.level, Some(Level::Info));
        assert_eq!(field(p, "pid"), Some(&Value::from(1486)));
        assert_eq!(field(p, "user"), Some(&Value::from("aaaa")));
        assert_eq!(field(p, "client"), Some(&Value::from("127.0.0.1")));
        assert_eq!(field(p, "sqlstate"), Some(&Value::from("00000")));
        assert_eq!(
            field(p, "app"),
            Some(&Value::from("PostgreSQL JDBC Driver"))
        );
        assert!(
            field(p, "detail")
                .and_then(Value::as_str)
                .unwrap()
                .starts_with("parameters: $1 = ")
        );
    }

    #[test]
    fn csvlog_records_span_lines_and_newer_layouts_read() {
        let rec = "2026-11-28 14:08:00.000 UTC,\"newsletter\",\"newsletter\",4303,\"172.18.0.3:51234\",6747f0a1.10cf,3,\"SELECT\",2026-11-28 14:07:00 UTC,3/17,0,ERROR,57014,\"canceling statement due to statement timeout\",,,,,,\"SELECT count(*)\nFROM \"\"email_events\"\"\",,,\"app\",\"client backend\",,-4242";
        let got = parse_all(&PgCsv, &format!("{rec}\n{rec}\n"));
        assert_eq!(got.len(), 2);
        let p = &got[0];
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(field(p, "sqlstate"), Some(&Value::from("57014")));
        assert_eq!(
            field(p, "statement"),
            Some(&Value::from("SELECT count(*)\nFROM \"email_events\""))
        );
        assert_eq!(
            field(p, "backend_type"),
            Some(&Value::from("client backend"))
        );
        assert_eq!(field(p, "query_id"), Some(&Value::from(-4242)));
        assert_eq!(field(p, "client_port"), Some(&Value::from(51234)));
        assert!(PgCsv.parse("a,b,c").is_err());
    }

    #[test]
    fn jsonlog_reads_detail_statement_and_sqlstate() {
        let line = r#"{"timestamp":"2026-11-28 14:05:00.100 UTC","user":"newsletter","dbname":"newsletter","pid":4301,"remote_host":"172.18.0.3","remote_port":51234,"session_id":"6747f0a1.10cd","line_num":1,"error_severity":"FATAL","state_code":"53300","message":"sorry, too many clients already","backend_type":"client backend","query_id":0}"#;
        let p = PgJson.parse(line).unwrap();
        assert_eq!(p.level, Some(Level::Fatal));
        assert_eq!(p.message, "sorry, too many clients already");
        assert_eq!(field(&p, "sqlstate"), Some(&Value::from("53300")));
        assert_eq!(field(&p, "db"), Some(&Value::from("newsletter")));
        assert_eq!(field(&p, "client"), Some(&Value::from("172.18.0.3")));
        assert_eq!(field(&p, "query_id"), None);
        assert!(PgJson.parse("not json").is_err());
        assert!(!PgJson.continues(line, line));
    }
}
