//! Rendering hits: terminal lines (optionally colored, matched text highlighted), NDJSON, chosen
//! columns (`--fields`) as text, CSV or NDJSON.
//!
//! Line format: `2026-11-28T14:02:03.123Z postgres error <raw>`; a multi-line event prints its
//! continuation lines as they stood in the file. Colour is the caller's decision (terminal,
//! `NO_COLOR`, `--color`); this module only obeys it. Must not: search or decide exit codes.
//!
//! Columns: the built-ins `ts`, `service`, `level`, `message`, `raw`, `id`, `flags`, `host`
//! (the event's `host` attribute, else pino's `hostname`), and any other name is a JSON path into
//! the event's attributes (`req.url`, `err.type`). As text, columns are separated by one space
//! and a missing value prints `-`, so `--fields raw` prints the file's lines exactly. CSV follows
//! RFC 4180 quoting (a value with a comma, a double quote, CR or LF is quoted, its quotes
//! doubled), records end with LF, and the first row names the columns.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use crate::event::Level;
use crate::query::plan::Highlight;
#[cfg(test)]
use crate::query::plan::Literal;
use crate::query::search::Hit;

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const CYAN: &str = "\x1b[36m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const MATCH: &str = "\x1b[1;31m";

/// One hit as a terminal line.
pub fn write_line(
    out: &mut dyn Write,
    hit: &Hit,
    highlights: &[&dyn Highlight],
    color: bool,
) -> io::Result<()> {
    if !color {
        return writeln!(out, "{} {} {} {}", hit.ts, hit.service, hit.level, hit.raw);
    }
    let level_color = match hit.level {
        Level::Error | Level::Fatal | Level::Panic => RED,
        Level::Warn => YELLOW,
        _ => "",
    };
    write!(
        out,
        "{DIM}{}{RESET} {CYAN}{}{RESET} {level_color}{}{RESET} ",
        hit.ts, hit.service, hit.level
    )?;
    let mut pos = 0;
    for (start, end) in match_ranges(&hit.raw, highlights) {
        out.write_all(&hit.raw.as_bytes()[pos..start])?;
        write!(out, "{MATCH}{}{RESET}", &hit.raw[start..end])?;
        pos = end;
    }
    out.write_all(&hit.raw.as_bytes()[pos..])?;
    out.write_all(b"\n")
}

/// The built-in column names (anything else is an attribute path).
pub const BUILTIN_COLUMNS: [&str; 8] = [
    "ts", "service", "level", "message", "raw", "id", "flags", "host",
];

/// True for a built-in column name other than `host` (which reads the attributes).
pub fn is_builtin_column(name: &str) -> bool {
    name != "host" && BUILTIN_COLUMNS.contains(&name)
}

/// The value of column `name` in `hit` (see the module doc); `None` when the event has none.
pub fn column_value<'a>(hit: &'a Hit, name: &str) -> Option<Cow<'a, str>> {
    match name {
        "ts" => Some(Cow::Owned(hit.ts.rfc3339())),
        "service" => Some(Cow::Borrowed(&hit.service)),
        "level" => Some(Cow::Borrowed(hit.level.as_str())),
        "message" => Some(Cow::Borrowed(&hit.message)),
        "raw" => Some(Cow::Borrowed(&hit.raw)),
        "id" => Some(Cow::Owned(hit.id.to_string())),
        "flags" => Some(Cow::Owned(hit.flags.names().join(","))),
        "host" => attribute(hit, "host").or_else(|| attribute(hit, "hostname")),
        path => attribute(hit, path),
    }
}

/// A JSON attribute by dotted path: strings as they are, other values as JSON text.
fn attribute<'a>(hit: &'a Hit, path: &str) -> Option<Cow<'a, str>> {
    let value = lookup(&hit.fields, path)?;
    match value {
        serde_json::Value::String(s) => Some(Cow::Borrowed(s)),
        serde_json::Value::Null => None,
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// `path` in `map`: a key as it stands (`"req.url"`) or through nested objects (`req` → `url`).
fn lookup<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(serde_json::Value::Object(inner)) = map.get(&path[..i])
            && let Some(v) = lookup(inner, &path[i + 1..])
        {
            return Some(v);
        }
    }
    None
}

/// Chosen columns as one text line: space-separated, `-` for a missing value.
pub fn write_columns(out: &mut dyn Write, hit: &Hit, columns: &[String]) -> io::Result<()> {
    for (i, name) in columns.iter().enumerate() {
        if i > 0 {
            out.write_all(b" ")?;
        }
        let value = column_value(hit, name);
        out.write_all(value.as_deref().unwrap_or("-").as_bytes())?;
    }
    out.write_all(b"\n")
}

/// One CSV record of `values`.
pub fn write_csv_record<'v>(
    out: &mut dyn Write,
    values: impl IntoIterator<Item = &'v str>,
) -> io::Result<()> {
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_field(value).as_bytes())?;
    }
    out.write_all(b"\n")
}

/// Chosen columns of `hit` as one CSV record (a missing value is an empty field).
pub fn write_csv_row(out: &mut dyn Write, hit: &Hit, columns: &[String]) -> io::Result<()> {
    let values: Vec<Option<Cow<'_, str>>> = columns.iter().map(|c| column_value(hit, c)).collect();
    write_csv_record(out, values.iter().map(|v| v.as_deref().unwrap_or("")))
}

/// A value quoted as RFC 4180 requires: in double quotes, quotes doubled, when it holds a comma,
/// a double quote, CR or LF.
pub fn csv_field(value: &str) -> Cow<'_, str> {
    if value.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

/// Chosen columns of `hit` as one NDJSON object, keys in the order asked (a missing value is
/// `null`).
pub fn write_json_columns(out: &mut dyn Write, hit: &Hit, columns: &[String]) -> io::Result<()> {
    let values: Vec<serde_json::Value> = columns
        .iter()
        .map(|name| {
            let value = if BUILTIN_COLUMNS.contains(&name.as_str()) {
                column_value(hit, name).map(|v| serde_json::Value::String(v.into_owned()))
            } else {
                lookup(&hit.fields, name).cloned()
            };
            value.unwrap_or(serde_json::Value::Null)
        })
        .collect();
    write_json_object(out, columns.iter().map(String::as_str).zip(values.iter()))
}

/// One NDJSON line of `pairs`, keys in the order given (`serde_json::Map` would sort them).
pub fn write_json_object<'a>(
    out: &mut dyn Write,
    pairs: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
) -> io::Result<()> {
    out.write_all(b"{")?;
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key).map_err(io::Error::other)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?;
    }
    out.write_all(b"}\n")
}

/// Sorted, merged byte ranges of every highlight in `text`.
pub fn match_ranges(text: &str, highlights: &[&dyn Highlight]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = highlights
        .iter()
        .flat_map(|lit| lit.find_all(text))
        .filter(|(s, e)| s < e)
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The NDJSON shape, fields in this order.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: String,
    service: &'a str,
    level: &'a str,
    message: &'a str,
    raw: &'a str,
    fields: &'a serde_json::Map<String, serde_json::Value>,
    flags: Vec<&'static str>,
    /// The rules that matched the event, and their classes (left out when none did).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    rules: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    classes: &'a [String],
    id: String,
}

/// One hit as an NDJSON line.
pub fn write_json(out: &mut dyn Write, hit: &Hit) -> io::Result<()> {
    let line = JsonLine {
        ts: hit.ts.rfc3339(),
        service: &hit.service,
        level: hit.level.as_str(),
        message: &hit.message,
        raw: &hit.raw,
        fields: &hit.fields,
        flags: hit.flags.names(),
        rules: &hit.rules,
        classes: &hit.classes,
        id: hit.id.to_string(),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Flags, Timestamp};

    fn hit(raw: &str) -> Hit {
        Hit {
            rules: Vec::new(),
            classes: Vec::new(),
            groups: Vec::new(),
            id: EventId {
                fingerprint: 0xab,
                offset: 7,
            },
            ts: Timestamp::from_jiff("2026-11-28T14:02:03.123Z".parse().unwrap()),
            service: "postgres".into(),
            level: Level::Error,
            message: "m".into(),
            raw: raw.into(),
            fields: serde_json::Map::new(),
            flags: Flags::PARTIAL,
        }
    }

    #[test]
    fn plain_lines_have_no_escape_codes() {
        let mut out = Vec::new();
        let lit = Literal::new("clients");
        write_line(&mut out, &hit("too many clients"), &[&lit], false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-28T14:02:03.123Z postgres error too many clients\n"
        );
    }

    #[test]
    fn colored_lines_highlight_every_match() {
        let mut out = Vec::new();
        let a = Literal::new("many");
        let b = Literal::new("ANY");
        write_line(&mut out, &hit("Many many clients"), &[&a, &b], true).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with(&format!("{MATCH}Many{RESET} {MATCH}many{RESET} clients\n")),
            "{s:?}"
        );
        assert_eq!(
            match_ranges("aaaa", &[&Literal::new("aa"), &Literal::new("aaa")]),
            [(0, 4)]
        );
    }

    #[test]
    fn columns_pick_builtins_and_json_paths() {
        let mut h = hit("a \"quoted\", line");
        h.fields = serde_json::from_str(
            r#"{"req":{"url":"/api/x"},"res.statusCode":503,"hostname":"app-1","n":null}"#,
        )
        .unwrap();
        let cols: Vec<String> = ["service", "req.url", "res.statusCode", "host", "nope", "n"]
            .map(String::from)
            .to_vec();
        let mut out = Vec::new();
        write_columns(&mut out, &h, &cols).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "postgres /api/x 503 app-1 - -\n"
        );
        let mut out = Vec::new();
        write_csv_row(&mut out, &h, &["raw".to_string(), "nope".to_string()]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a \"\"quoted\"\", line\",\n"
        );
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("plain"), "plain");
        let mut out = Vec::new();
        write_json_columns(&mut out, &h, &cols).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["res.statusCode"], 503);
        assert_eq!(v["nope"], serde_json::Value::Null);
        assert_eq!(v["host"], "app-1");
    }

    #[test]
    fn json_lines_carry_every_field() {
        let mut out = Vec::new();
        write_json(&mut out, &hit("x")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ts"], "2026-11-28T14:02:03.123Z");
        assert_eq!(v["level"], "error");
        assert_eq!(v["flags"], serde_json::json!(["partial"]));
        assert_eq!(v["id"], "00000000000000ab:7");
        assert!(v["fields"].is_object());
    }
}
