//! `docker-compose logs` output: `newsletter-app  | {json}`, `newsletter-app-1  | …`.
//!
//! Takes lines prefixed by a compose service (or container) name and a `|`; the prefix gives the
//! event's service (the replica suffix `-1` dropped, the full name kept in the `container` field),
//! and the inner line is read by a format sniffed per service from that service's first line
//! (pino JSON for the app, PostgreSQL stderr for the database, …). Colour codes around the prefix
//! are ignored. Entries only continue within one service: interleaved services cannot share an
//! event, since an event is one contiguous byte range. Lines without a prefix (`Attaching to …`)
//! are plain events. This module must not decide the inner formats itself: `sniff.rs` does.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::{Level, Timestamp};
use crate::parse::parser::Reader;
use crate::parse::plain::{self, first_line};
use crate::parse::sniff;
use crate::parse::{Format, Parsed};

/// The compose reader: an inner reader per service.
pub struct Compose {
    now: Timestamp,
    /// The services met so far, in order, with the format sniffed for each and its reader.
    inner: Vec<(String, Format, Reader)>,
    /// For a fork ([`Compose::fork`]): how many services it was given; the others it met itself.
    given: usize,
}

/// A compose line taken apart: the container name as printed and the inner line.
pub fn split_prefix(line: &str) -> Option<(&str, &str)> {
    let rest = skip_ansi(line);
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .filter(|&i| i > 0)?;
    let name = &rest[..name_end];
    let after = skip_ansi(&rest[name_end..]);
    let spaces = after.len() - after.trim_start_matches(' ').len();
    let after = skip_ansi(&after[spaces..]);
    let inner = after.strip_prefix('|')?;
    let inner = skip_ansi(inner);
    if spaces == 0 && !inner.starts_with(' ') {
        return None;
    }
    Some((name, inner.strip_prefix(' ').unwrap_or(inner)))
}

/// Skip ANSI colour sequences (`ESC [ … m`) at the start of `s`.
fn skip_ansi(mut s: &str) -> &str {
    while let Some(rest) = s.strip_prefix("\u{1b}[") {
        match rest.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => s = &rest[i + 1..],
            None => return s,
        }
    }
    s
}

/// The service a container name stands for: `newsletter-app-1` → `newsletter-app`.
pub fn service_name(container: &str) -> &str {
    match container.rsplit_once(['-', '_']) {
        Some((base, n))
            if !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => container,
    }
}

impl Compose {
    pub fn new(now: Timestamp) -> Self {
        Compose {
            now,
            inner: Vec::new(),
            given: 0,
        }
    }

    /// The reader of `service`, sniffed from `inner_line` when the service is new. A short list
    /// searched in order: a stack has a handful of services, and this runs for every line.
    fn reader(&mut self, service: &str, inner_line: &str) -> &mut Reader {
        let at = match self.inner.iter().position(|(name, _, _)| name == service) {
            Some(at) => at,
            None => {
                let format = match sniff::sniff(&[inner_line]) {
                    Format::Compose | Format::Auto => Format::Plain,
                    f => f,
                };
                let reader = build_inner(&format, self.now);
                self.inner.push((service.to_string(), format, reader));
                self.inner.len() - 1
            }
        };
        &mut self.inner[at].2
    }

    /// A reader in the same state of knowledge: the same services read in the same formats.
    pub(crate) fn fork(&self) -> Compose {
        Compose {
            now: self.now,
            inner: self
                .inner
                .iter()
                .map(|(name, format, reader)| (name.clone(), format.clone(), reader.fork()))
                .collect(),
            given: self.inner.len(),
        }
    }

    /// Take over the services `fork` (made by [`Compose::fork`] from this reader) met that this
    /// one does not know yet; false when both met a service and chose different formats.
    pub(crate) fn adopt(&mut self, fork: Compose) -> bool {
        let given = fork.given;
        let new = || fork.inner.iter().skip(given);
        let disagree = new().any(|(name, format, _)| {
            self.inner
                .iter()
                .any(|(n, mine, _)| n == name && mine != format)
        });
        if disagree {
            return false;
        }
        for (name, format, reader) in fork.inner.into_iter().skip(given) {
            if !self.inner.iter().any(|(n, _, _)| *n == name) {
                self.inner.push((name, format, reader));
            }
        }
        true
    }

    pub(crate) fn continues(&mut self, entry: &str, line: &str) -> bool {
        let Some((name, inner)) = split_prefix(line) else {
            return false;
        };
        let Some((first_name, first_inner)) = split_prefix(first_line(entry)) else {
            return false;
        };
        if name != first_name {
            return false;
        }
        let inner_entry = if entry.contains('\n') {
            Cow::Owned(strip_prefixes(entry))
        } else {
            Cow::Borrowed(first_inner)
        };
        self.reader(service_name(name), inner)
            .continues(&inner_entry, inner)
    }

    pub(crate) fn closes(&mut self, line: &str) -> bool {
        match split_prefix(line) {
            Some((name, inner)) => self.reader(service_name(name), inner).closes(inner),
            None => false,
        }
    }

    pub(crate) fn skim_line(&mut self, line: &str) -> (bool, Option<Level>) {
        match split_prefix(line) {
            Some((name, inner)) => self.reader(service_name(name), inner).skim_line(inner),
            None => (false, None),
        }
    }

    pub(crate) fn parse(&mut self, entry: &str) -> Result<Parsed, String> {
        let Some((name, inner_first)) = split_prefix(first_line(entry)) else {
            return Ok(plain::parse_text(entry, self.now));
        };
        let service = service_name(name).to_string();
        let inner_entry = strip_prefixes(entry);
        let mut parsed = self.reader(&service, inner_first).parse(&inner_entry)?;
        parsed
            .fields
            .insert("container".into(), Value::from(name.to_string()));
        parsed.service = Some(service);
        Ok(parsed)
    }
}

/// The reader of one service's lines.
fn build_inner(format: &Format, now: Timestamp) -> Reader {
    Reader::build(format, now).unwrap_or_else(|_| {
        Reader::build(&Format::Plain, now).unwrap_or(Reader::Compose(Compose::new(now)))
    })
}

/// The entry's lines without their compose prefixes.
fn strip_prefixes(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len());
    for (i, line) in entry.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(split_prefix(line).map_or(line, |(_, inner)| inner));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;

    fn compose() -> Compose {
        Compose::new(Timestamp::from_millis(1_796_220_000_000))
    }

    #[test]
    fn prefixes_give_the_service() {
        assert_eq!(
            split_prefix("newsletter-app  | {\"a\":1}"),
            Some(("newsletter-app", "{\"a\":1}"))
        );
        assert_eq!(
            split_prefix("\u{1b}[36mworker-1  |\u{1b}[0m hello"),
            Some(("worker-1", "hello"))
        );
        assert_eq!(split_prefix("Attaching to a, b"), None);
        assert_eq!(split_prefix("a|b"), None);
        assert_eq!(service_name("newsletter-app-1"), "newsletter-app");
        assert_eq!(service_name("redis"), "redis");
    }

    #[test]
    fn inner_lines_are_read_in_their_own_format() {
        let mut c = compose();
        let line = r#"newsletter-app-1  | {"level":50,"time":1796220000123,"msg":"request timeout","responseTime":30000}"#;
        assert!(c.closes(line));
        let p = c.parse(line).unwrap();
        assert_eq!(p.service.as_deref(), Some("newsletter-app"));
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.message, "request timeout");
        assert_eq!(p.fields["container"], "newsletter-app-1");
        let redis = "redis-1  | 1:M 28 Nov 2026 14:50:01.123 # Background saving error";
        let p = c.parse(redis).unwrap();
        assert_eq!(p.service.as_deref(), Some("redis"));
        assert_eq!(p.level, Some(Level::Warn));
    }

    #[test]
    fn stack_traces_continue_within_one_service_only() {
        let mut c = compose();
        let first = "worker-1  | Error: boom";
        assert!(c.continues(first, "worker-1  |     at f (a.js:1:1)"));
        assert!(!c.continues(first, "app-1  |     at f (a.js:1:1)"));
    }
}
