//! Rendering hits: terminal lines (optionally colored, matched text highlighted) and NDJSON.
//!
//! Line format: `2026-11-28T14:02:03.123Z postgres error <raw>`; a multi-line event prints its
//! continuation lines as they stood in the file. Colour is the caller's decision (terminal,
//! `NO_COLOR`, `--color`); this module only obeys it. Must not: search or decide exit codes.

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
