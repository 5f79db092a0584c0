//! The [`Parser`]: one per file, driving framing, format detection, multi-line grouping, the
//! timestamp fallback, flags, redaction and the stage's counters around an [`EntryFormat`].
//!
//! Takes the [`Chunk`]s of one file in order; gives [`Events`] holding complete entries only. It holds
//! back the partial last line (see `frame.rs`) and the entry still open (a stack trace or a
//! PostgreSQL STATEMENT may continue in the next chunk). With `auto` (or PostgreSQL without a
//! prefix) it first buffers the file's opening bytes until it has enough lines to choose (see
//! `sniff.rs`). It must not drop anything: every framed line lands in exactly one event, and an
//! entry its format rejects becomes a plain event flagged malformed.

use std::borrow::Cow;

use crate::event::{Event, EventId, Events, Flags, Level, Timestamp};
use crate::parse::compose::Compose;
use crate::parse::frame::{Framer, Line, MAX_LINE};
use crate::parse::json::Json;
use crate::parse::plain::{self, Plain};
use crate::parse::redact;
use crate::parse::sniff;
use crate::parse::syslog::{Redis, Syslog};
use crate::parse::{EntryFormat, Format, Parsed, Stats};
use crate::source::Chunk;

/// Why a parser could not be built.
#[derive(thiserror::Error, Debug)]
pub enum ParseError {
    #[error("invalid log_line_prefix `{prefix}`: {reason}")]
    PgPrefix { prefix: String, reason: String },
}

/// How many non-empty lines `auto` looks at, and how many bytes at most it waits for.
const SNIFF_LINES: usize = 20;
const SNIFF_BYTES: usize = 64 * 1024;

/// A format's reader as the parser drives it.
pub(crate) enum Reader {
    /// A format reading entries of one file. `json_lines`: a line holding a whole JSON object is a
    /// complete entry at once (no continuation can follow), so it is emitted without waiting.
    Text {
        fmt: Box<dyn EntryFormat>,
        json_lines: bool,
    },
    /// `docker-compose logs`: an inner reader per service.
    Compose(Compose),
}

impl Reader {
    /// The reader for a (decided, non-`auto`) format.
    pub(crate) fn build(format: &Format, now: Timestamp) -> Result<Reader, ParseError> {
        let text = |fmt: Box<dyn EntryFormat>, json_lines| Reader::Text { fmt, json_lines };
        Ok(match format {
            Format::Pino => text(Box::new(Json { now }), true),
            Format::Syslog => text(Box::new(Syslog { now }), false),
            Format::Redis => text(Box::new(Redis { now }), false),
            Format::Compose => Reader::Compose(Compose::new(now)),
            Format::Plain | Format::Auto => text(Box::new(Plain { now }), false),
            // TODO(h-pg): PgStderr / PgCsv / PgJson once parse/postgres.rs lands; plain until then.
            Format::Postgres { .. } => text(Box::new(Plain { now }), false),
            Format::PostgresCsv => text(Box::new(Plain { now }), false),
            Format::PostgresJson => text(Box::new(Json { now }), true),
        })
    }

    pub(crate) fn continues(&mut self, entry: &str, line: &str) -> bool {
        match self {
            Reader::Text { fmt, .. } => fmt.continues(entry, line),
            Reader::Compose(c) => c.continues(entry, line),
        }
    }

    /// True when the entry that `line` opens is already complete.
    pub(crate) fn closes(&mut self, line: &str) -> bool {
        match self {
            Reader::Text { json_lines, .. } => *json_lines && is_json_object_line(line),
            Reader::Compose(c) => c.closes(line),
        }
    }

    pub(crate) fn parse(&mut self, entry: &str) -> Result<Parsed, String> {
        match self {
            Reader::Text { fmt, .. } => fmt.parse(entry),
            Reader::Compose(c) => c.parse(entry),
        }
    }
}

/// `{ … }` on one line (whitespace around allowed): cheap, no regex, no parsing.
pub(crate) fn is_json_object_line(line: &str) -> bool {
    let t = line.trim_ascii();
    t.starts_with('{') && t.ends_with('}')
}

/// The entry being assembled.
struct Open {
    offset: u64,
    len: u64,
    lines: u32,
    raw: String,
    flags: Flags,
}

/// Everything after framing: grouping lines into entries and entries into events.
struct Assembler {
    service: String,
    fingerprint: u64,
    now: Timestamp,
    reader: Option<Reader>,
    open: Option<Open>,
    out: Vec<Event>,
    stats: Stats,
    last_ts: Option<Timestamp>,
    checkpoint: u64,
}

impl Assembler {
    fn on_line(&mut self, line: Line<'_>) {
        self.stats.lines += u64::from(line.lines);
        let (text, invalid) = match String::from_utf8_lossy(line.bytes) {
            Cow::Borrowed(s) => (Cow::Borrowed(s), false),
            Cow::Owned(s) => (Cow::Owned(s), true),
        };
        let mut flags = Flags::default();
        if invalid {
            flags.insert(Flags::INVALID_UTF8);
        }
        if line.partial {
            flags.insert(Flags::PARTIAL);
        }
        if line.split {
            // A piece of an over-long line stands alone: no format reads half a line.
            flags.insert(Flags::SPLIT);
            self.close();
            let piece = Open {
                offset: line.offset,
                len: u64::from(line.len),
                lines: line.lines,
                raw: text.into_owned(),
                flags,
            };
            let parsed = plain::parse_text(&piece.raw, self.now);
            self.emit_parsed(piece, parsed);
            return;
        }
        if let Some(open) = self.open.as_mut() {
            let continues = match self.reader.as_mut() {
                Some(r) => r.continues(&open.raw, &text),
                None => false,
            };
            if continues {
                open.raw.push('\n');
                open.raw.push_str(&text);
                open.len += u64::from(line.len);
                open.lines += line.lines;
                open.flags.insert(flags);
                return;
            }
            self.close();
        }
        let closes = line.partial || self.reader.as_mut().is_some_and(|r| r.closes(&text));
        self.open = Some(Open {
            offset: line.offset,
            len: u64::from(line.len),
            lines: line.lines,
            raw: text.into_owned(),
            flags,
        });
        if closes {
            self.close();
        }
    }

    /// Emit the open entry, if any.
    fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let result = match self.reader.as_mut() {
            Some(r) => r.parse(&open.raw),
            None => Err("no format".to_string()),
        };
        let mut entry = open;
        let parsed = match result {
            Ok(p) => p,
            Err(_reason) => {
                entry.flags.insert(Flags::MALFORMED);
                plain::parse_text(&entry.raw, self.now)
            }
        };
        self.emit_parsed(entry, parsed);
    }

    fn emit_parsed(&mut self, entry: Open, parsed: Parsed) {
        let mut flags = entry.flags;
        let ts = match parsed.ts {
            Some(ts) => {
                self.last_ts = Some(ts);
                ts
            }
            None => {
                flags.insert(Flags::NO_TIMESTAMP);
                self.last_ts.unwrap_or(self.now)
            }
        };
        let mut event = Event {
            id: EventId {
                fingerprint: self.fingerprint,
                offset: entry.offset,
            },
            ts,
            service: parsed.service.unwrap_or_else(|| self.service.clone()),
            level: parsed.level.unwrap_or(Level::Unknown),
            message: parsed.message,
            raw: entry.raw,
            fields: parsed.fields,
            flags,
            len: u32::try_from(entry.len).unwrap_or(u32::MAX),
            lines: entry.lines,
        };
        if redact::redact_event(&mut event) {
            event.flags.insert(Flags::REDACTED);
        }
        self.count(&event);
        self.checkpoint = entry.offset + entry.len;
        self.out.push(event);
    }

    fn count(&mut self, event: &Event) {
        let s = &mut self.stats;
        s.events += 1;
        let f = event.flags;
        if !f.is_empty() {
            s.flagged += 1;
        }
        s.malformed += u64::from(f.contains(Flags::MALFORMED));
        s.invalid_utf8 += u64::from(f.contains(Flags::INVALID_UTF8));
        s.split += u64::from(f.contains(Flags::SPLIT));
        s.partial += u64::from(f.contains(Flags::PARTIAL));
        s.redacted += u64::from(f.contains(Flags::REDACTED));
    }
}

/// Parses the chunks of one file (one fingerprint) into events; see the module doc.
pub struct Parser {
    requested: Format,
    format: Format,
    framer: Framer,
    asm: Assembler,
    /// While the format is undecided: the file's opening bytes, from `probe_offset`.
    probe: Option<Vec<u8>>,
    probe_offset: u64,
    /// Offset the next chunk must start at (`None` before the first chunk).
    next_offset: Option<u64>,
}

impl Parser {
    /// A parser for one file of `service` in `format` (`auto` detects it from the first lines).
    pub fn new(service: &str, format: Format, fingerprint: u64) -> Result<Parser, ParseError> {
        let now = Timestamp::now();
        let needs_probe = needs_sniffing(&format);
        let reader = if needs_probe {
            None
        } else {
            Some(Reader::build(&format, now)?)
        };
        Ok(Parser {
            requested: format.clone(),
            format,
            framer: Framer::new(MAX_LINE),
            asm: Assembler {
                service: service.to_string(),
                fingerprint,
                now,
                reader,
                open: None,
                out: Vec::new(),
                stats: Stats::default(),
                last_ts: None,
                checkpoint: 0,
            },
            probe: needs_probe.then(Vec::new),
            probe_offset: 0,
            next_offset: None,
        })
    }

    /// The reference time for layouts without a year (BSD syslog, old Redis) and for a first entry
    /// without any time. Defaults to the wall clock; set it for deterministic replays and tests.
    pub fn with_reference_time(mut self, now: Timestamp) -> Parser {
        self.asm.now = now;
        if self.probe.is_none() {
            if let Ok(reader) = Reader::build(&self.format, now) {
                self.asm.reader = Some(reader);
            }
        }
        self
    }

    /// The line cap (default [`MAX_LINE`]); longer lines are split into events flagged split.
    pub fn with_max_line(mut self, max_line: usize) -> Parser {
        self.framer = Framer::new(max_line);
        self
    }

    /// Parse one chunk; returns the entries it completed. A chunk flagged `eof` also finishes.
    pub fn parse(&mut self, chunk: &Chunk) -> Events {
        self.feed(chunk.offset, &chunk.bytes);
        if chunk.eof {
            return self.finish_into();
        }
        self.take()
    }

    /// The source went idle: emit the open entry; a partial (unterminated) line stays held.
    pub fn flush(&mut self) -> Events {
        if self.probe.is_some() {
            self.decide(false, true);
        }
        self.asm.close();
        self.take()
    }

    /// End of input: emit everything; an unterminated last line is an event flagged partial.
    pub fn finish(&mut self) -> Events {
        self.finish_into()
    }

    /// File offset up to which every byte belongs to an emitted event.
    pub fn checkpoint(&self) -> u64 {
        self.asm.checkpoint
    }

    pub fn stats(&self) -> &Stats {
        &self.asm.stats
    }

    /// The format in use (after `auto` detection; `auto` while still undecided).
    pub fn format(&self) -> &Format {
        &self.format
    }

    fn finish_into(&mut self) -> Events {
        if self.probe.is_some() {
            self.decide(true, false);
        }
        let asm = &mut self.asm;
        self.framer.finish(&mut |line| asm.on_line(line));
        self.asm.close();
        self.take()
    }

    fn take(&mut self) -> Events {
        Events::new(std::mem::take(&mut self.asm.out))
    }

    fn feed(&mut self, offset: u64, bytes: &[u8]) {
        match self.next_offset {
            None => {
                self.asm.checkpoint = offset;
                self.probe_offset = offset;
            }
            Some(expected) if expected != offset => {
                // Not contiguous: never glue unrelated bytes into one line. Close what is held.
                tracing::warn!(expected, offset, "parse: chunk is not contiguous");
                if self.probe.is_none() {
                    let asm = &mut self.asm;
                    self.framer.finish(&mut |line| asm.on_line(line));
                    self.asm.close();
                }
            }
            Some(_) => {}
        }
        self.next_offset = Some(offset + bytes.len() as u64);
        self.asm.stats.bytes += bytes.len() as u64;
        if let Some(probe) = self.probe.as_mut() {
            probe.extend_from_slice(bytes);
            self.decide(false, false);
            return;
        }
        let asm = &mut self.asm;
        self.framer
            .feed(offset, bytes, &mut |line| asm.on_line(line));
    }

    /// Choose the format from the probe if there is enough to go on (or `force`), then frame the
    /// probe's bytes. `idle`: decide on any complete line.
    fn decide(&mut self, force: bool, idle: bool) {
        let Some(probe) = self.probe.as_ref() else {
            return;
        };
        let window = &probe[..probe.len().min(SNIFF_BYTES)];
        let mut lines: Vec<Cow<'_, str>> = Vec::new();
        let mut complete = 0;
        let mut rest = window;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let line = trim_cr(&rest[..nl]);
            rest = &rest[nl + 1..];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            complete += 1;
            if lines.len() < SNIFF_LINES {
                lines.push(String::from_utf8_lossy(line));
            }
        }
        let full = complete >= SNIFF_LINES || probe.len() >= SNIFF_BYTES;
        if !(force || full || (idle && complete > 0)) {
            return;
        }
        if complete == 0 && !rest.is_empty() {
            lines.push(String::from_utf8_lossy(trim_cr(rest)));
        }
        let sample: Vec<&str> = lines.iter().map(|l| l.as_ref()).collect();
        let chosen = match &self.requested {
            Format::Postgres { prefix: None } => sniff::postgres_format(&sample),
            _ => sniff::sniff(&sample),
        };
        let reader = Reader::build(&chosen, self.asm.now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "parse: detected format unusable, reading as plain");
            Reader::Text {
                fmt: Box::new(Plain { now: self.asm.now }),
                json_lines: false,
            }
        });
        self.format = chosen;
        self.asm.reader = Some(reader);
        let Some(bytes) = self.probe.take() else {
            return;
        };
        let asm = &mut self.asm;
        self.framer
            .feed(self.probe_offset, &bytes, &mut |line| asm.on_line(line));
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn needs_sniffing(format: &Format) -> bool {
    matches!(format, Format::Auto | Format::Postgres { prefix: None })
}

/// Parse a whole input (`finish` included) in one go.
pub fn parse_all(
    service: &str,
    format: Format,
    fingerprint: u64,
    bytes: &[u8],
) -> Result<Events, ParseError> {
    let mut parser = Parser::new(service, format, fingerprint)?;
    parser.feed(0, bytes);
    Ok(parser.finish())
}
