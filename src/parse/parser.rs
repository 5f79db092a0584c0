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
use crate::parse::postgres::{PgCsv, PgJson, PgStderr};
use crate::parse::redact;
use crate::parse::sniff;
use crate::parse::syslog::{Redis, Syslog};
use crate::parse::{EntryFormat, Format, LineHit, MAX_FIELDS, Parsed, Stats, cap_fields};
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
            Format::Postgres {
                prefix: Some(prefix),
            } => {
                let reader = PgStderr::new(prefix).map_err(|e| ParseError::PgPrefix {
                    prefix: prefix.clone(),
                    reason: e.to_string(),
                })?;
                text(Box::new(reader), false)
            }
            Format::Postgres { prefix: None } => {
                // Asked for PostgreSQL but no common log_line_prefix fits the first lines.
                tracing::warn!(
                    "parse: no log_line_prefix fits this file; reading it as plain text"
                );
                text(Box::new(Plain { now }), false)
            }
            Format::PostgresCsv => text(Box::new(PgCsv), false),
            Format::PostgresJson => text(Box::new(PgJson), true),
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

    /// A reader for a later part of the same file: the same format (and, for compose, the same
    /// services in the same formats), none of the state of entries being read.
    pub(crate) fn fork(&self) -> Reader {
        match self {
            Reader::Compose(c) => Reader::Compose(c.fork()),
            Reader::Text { fmt, json_lines } => Reader::Text {
                fmt: fmt.clone_format(),
                json_lines: *json_lines,
            },
        }
    }

    /// Skim: for a line opening an entry, whether that entry is already complete ([`Reader::closes`])
    /// and its level bound ([`EntryFormat::level_bound`]), reading a compose prefix once.
    pub(crate) fn skim_line(&mut self, line: &str) -> (bool, Option<Level>) {
        match self {
            Reader::Text { fmt, json_lines } => (
                *json_lines && is_json_object_line(line),
                fmt.level_bound(line),
            ),
            Reader::Compose(c) => c.skim_line(line),
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
    /// Skim: what its lines hold of what the scan looks for.
    hit: Hit,
    /// Skim: its first line's level bound stays below every level rule.
    quiet: bool,
}

/// Skim: the strongest hit among an entry's lines (see [`LineHit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Hit {
    #[default]
    None,
    Weak,
    Strong,
}

/// Entries passed over that are kept for their time, at most (see [`Skim`]).
const PENDING_MAX: usize = 256;

/// Skimming (the scan): entries that hold no literal of interest and whose level provably stays
/// below what any level rule needs are counted and passed over, not parsed.
struct Skim {
    /// The lines holding a literal, in file order, consumed as lines go by.
    hits: std::collections::VecDeque<LineHit>,
    /// The lowest level a rule looks for without literals; `None`: no rule does.
    min_level: Option<Level>,
    /// The entries passed over since the last entry whose time is known, end to end (their ends
    /// in `pending_ends`): the latest of them with a time stands in for a parsed entry that has
    /// none. Read back (newest first) only then, or once [`PENDING_MAX`] have piled up, so memory
    /// stays bounded and the fallback time is the one a full parse gives.
    pending: String,
    pending_ends: Vec<usize>,
    skipped: u64,
}

impl Skim {
    fn new(min_level: Option<Level>) -> Skim {
        Skim {
            hits: std::collections::VecDeque::new(),
            min_level,
            pending: String::new(),
            pending_ends: Vec::new(),
            skipped: 0,
        }
    }
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
    /// Cap of a multi-line entry's text: past it the entry is cut (both parts flagged split), so
    /// an endless run of continuation lines cannot hold memory.
    max_entry: usize,
    skim: Option<Skim>,
    /// A timeless entry took the reference time: no earlier time was known (for a fork, its
    /// events may then depend on the blocks before it).
    fell_back_to_now: bool,
}

impl Assembler {
    /// An assembler with nothing read yet.
    fn new(
        service: String,
        fingerprint: u64,
        now: Timestamp,
        reader: Option<Reader>,
        max_entry: usize,
    ) -> Assembler {
        Assembler {
            service,
            fingerprint,
            now,
            reader,
            open: None,
            out: Vec::new(),
            stats: Stats::default(),
            last_ts: None,
            checkpoint: 0,
            max_entry,
            skim: None,
            fell_back_to_now: false,
        }
    }

    fn on_line(&mut self, line: Line<'_>) {
        self.stats.lines += u64::from(line.lines);
        let (text, invalid) = match std::str::from_utf8(line.bytes) {
            Ok(s) => (Cow::Borrowed(s), false),
            Err(_) => (String::from_utf8_lossy(line.bytes), true),
        };
        let mut flags = Flags::default();
        if invalid {
            flags.insert(Flags::INVALID_UTF8);
        }
        if line.partial {
            flags.insert(Flags::PARTIAL);
        }
        let hit = match self.skim.as_mut() {
            None => Hit::None,
            Some(skim) => {
                while skim.hits.front().is_some_and(|h| h.offset < line.offset) {
                    skim.hits.pop_front();
                }
                match skim.hits.front() {
                    Some(h) if h.offset == line.offset && h.strong => Hit::Strong,
                    Some(h) if h.offset == line.offset => Hit::Weak,
                    _ => Hit::None,
                }
            }
        };
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
                hit,
                quiet: false,
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
            let fits = open.raw.len() + 1 + text.len() <= self.max_entry;
            if continues && fits {
                open.raw.push('\n');
                open.raw.push_str(&text);
                open.len += u64::from(line.len);
                open.lines += line.lines;
                open.flags.insert(flags);
                open.hit = open.hit.max(hit);
                return;
            }
            if continues {
                open.flags.insert(Flags::SPLIT);
                flags.insert(Flags::SPLIT);
            }
            self.close();
        }
        // Skim: whether the entry's level may be passed over, found once as it opens.
        let mut quiet = false;
        let closes = if let Some(skim) = self.skim.as_mut()
            && let Some(reader) = self.reader.as_mut()
            && !line.partial
            && hit != Hit::Strong
        {
            let (closes, bound) = reader.skim_line(&text);
            quiet = skim
                .min_level
                .is_none_or(|min| bound.is_some_and(|b| b < min));
            if closes && quiet && hit == Hit::None {
                // A whole entry on one line that no rule can match.
                self.pass_over(&text, flags, line.offset + u64::from(line.len));
                return;
            }
            closes
        } else {
            line.partial || self.reader.as_mut().is_some_and(|r| r.closes(&text))
        };
        self.open = Some(Open {
            offset: line.offset,
            len: u64::from(line.len),
            lines: line.lines,
            raw: text.into_owned(),
            flags,
            hit,
            quiet,
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
        if self.passes_over(&open) {
            self.pass_over(&open.raw, open.flags, open.offset + open.len);
            return;
        }
        let mut entry = open;
        let (parsed, malformed) = self.read_entry(&entry.raw);
        if malformed {
            entry.flags.insert(Flags::MALFORMED);
        }
        self.emit_parsed(entry, parsed);
    }

    /// Skim: count an entry without parsing it, keeping its text for the time a later timeless
    /// entry may need.
    fn pass_over(&mut self, raw: &str, flags: Flags, end: u64) {
        self.stats.events += 1;
        self.count_flags(flags);
        self.checkpoint = end;
        let Some(skim) = self.skim.as_mut() else {
            return;
        };
        skim.skipped += 1;
        skim.pending.push_str(raw);
        skim.pending_ends.push(skim.pending.len());
        if skim.pending_ends.len() >= PENDING_MAX {
            self.settle_pending();
        }
    }

    /// One entry read by the format, or as plain text (`true`: malformed) when it does not follow it.
    fn read_entry(&mut self, raw: &str) -> (Parsed, bool) {
        let result = match self.reader.as_mut() {
            Some(r) => r.parse(raw),
            None => Err("no format".to_string()),
        };
        match result {
            Ok(p) => (p, false),
            Err(_reason) => (plain::parse_text(raw, self.now), true),
        }
    }

    /// Skim: read the entries passed over since the last known time, newest first, until one has a
    /// time; that is the latest time, as a full parse would have it.
    fn settle_pending(&mut self) {
        let Some(skim) = self.skim.as_mut() else {
            return;
        };
        let text = std::mem::take(&mut skim.pending);
        let ends = std::mem::take(&mut skim.pending_ends);
        for i in (0..ends.len()).rev() {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            if let Some(ts) = self.read_entry(&text[start..ends[i]]).0.ts {
                self.last_ts = Some(ts);
                break;
            }
        }
        if let Some(skim) = self.skim.as_mut() {
            // Keep the buffers' memory for the next entries.
            skim.pending = text;
            skim.pending.clear();
            skim.pending_ends = ends;
            skim.pending_ends.clear();
        }
    }

    /// Skim: nothing in the entry can interest a rule, so it need not be parsed.
    fn passes_over(&mut self, open: &Open) -> bool {
        let Some(skim) = self.skim.as_ref() else {
            return false;
        };
        // A regex may match across the lines of a multi-line entry: a weak hit counts there.
        if open.hit == Hit::Strong || (open.hit == Hit::Weak && open.lines > 1) {
            return false;
        }
        skim.min_level.is_none() || open.quiet
    }

    /// The time an entry without one takes: the latest time before it, read from the entries
    /// passed over when they came after the last entry parsed.
    fn fallback_time(&mut self) -> Timestamp {
        if self
            .skim
            .as_ref()
            .is_some_and(|s| !s.pending_ends.is_empty())
        {
            self.settle_pending();
        }
        if self.last_ts.is_none() {
            self.fell_back_to_now = true;
        }
        self.last_ts.unwrap_or(self.now)
    }

    fn emit_parsed(&mut self, entry: Open, parsed: Parsed) {
        let mut flags = entry.flags;
        let ts = match parsed.ts.filter(|t| t.storable()) {
            Some(ts) => {
                self.last_ts = Some(ts);
                if let Some(skim) = self.skim.as_mut() {
                    skim.pending.clear();
                    skim.pending_ends.clear();
                }
                ts
            }
            None => {
                flags.insert(Flags::NO_TIMESTAMP);
                self.fallback_time()
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
        if event.raw.len() >= 2 * MAX_FIELDS && cap_fields(&mut event.fields, MAX_FIELDS) {
            event.flags.insert(Flags::FIELDS_CAPPED);
        }
        if redact::redact_event(&mut event) {
            event.flags.insert(Flags::REDACTED);
        }
        self.count(&event);
        self.checkpoint = entry.offset + entry.len;
        self.out.push(event);
    }

    fn count(&mut self, event: &Event) {
        self.stats.events += 1;
        self.count_flags(event.flags);
    }

    fn count_flags(&mut self, f: Flags) {
        let s = &mut self.stats;
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
            asm: Assembler::new(service.to_string(), fingerprint, now, reader, MAX_LINE),
            probe: needs_probe.then(Vec::new),
            probe_offset: 0,
            next_offset: None,
        })
    }

    /// The reference time for layouts without a year (BSD syslog, old Redis) and for a first entry
    /// without any time. Defaults to the wall clock; set it for deterministic replays and tests.
    pub fn with_reference_time(mut self, now: Timestamp) -> Parser {
        self.asm.now = now;
        if self.probe.is_none()
            && let Ok(reader) = Reader::build(&self.format, now)
        {
            self.asm.reader = Some(reader);
        }
        self
    }

    /// Reading starts at `offset` of the file (a checkpoint, or its end with `--from end`): the
    /// checkpoint is `offset` until an entry completes, even when no byte ever comes.
    pub fn starting_at(mut self, offset: u64) -> Parser {
        self.asm.checkpoint = offset;
        self.probe_offset = offset;
        self.next_offset = Some(offset);
        self
    }

    /// The line cap (default [`MAX_LINE`]); longer lines are split into events flagged split.
    pub fn with_max_line(mut self, max_line: usize) -> Parser {
        self.framer = Framer::new(max_line);
        self.asm.max_entry = max_line;
        self
    }

    /// Skim (the scan): parse only the entries that hold a line named in [`Parser::feed_skim`]
    /// and those whose level may reach `min_level` (`None`: no rule looks at levels alone);
    /// count the others and pass over them. An entry without a time takes the latest entry's,
    /// parsed or passed over.
    pub fn skimming(mut self, min_level: Option<Level>) -> Parser {
        self.asm.skim = Some(Skim::new(min_level));
        self
    }

    /// Feed `bytes` (at file offset `offset`, following the previous ones) to a skimming parser;
    /// `hit_lines` are the file offsets, ascending, of the lines among them holding a literal of
    /// interest. Returns the entries parsed.
    pub fn feed_skim(&mut self, offset: u64, bytes: &[u8], hit_lines: &[LineHit]) -> Events {
        if let Some(skim) = self.asm.skim.as_mut() {
            skim.hits.extend(hit_lines);
        }
        self.feed(offset, bytes);
        self.take()
    }

    /// See [`Parser::fork`].
    pub fn can_fork(&self) -> bool {
        self.asm.skim.is_some()
            && self.probe.is_none()
            && self.framer.held() == 0
            && self.asm.reader.is_some()
    }

    /// A skimming parser for a later block of the same file, to run in parallel with this one:
    /// the format decided, none of the entries in progress. `None` while the format is still being
    /// detected, when something is held (a partial line), or when not skimming. Its events are
    /// only valid once [`Parser::join`] accepts it.
    pub fn fork(&self) -> Option<Parser> {
        if !self.can_fork() {
            return None;
        }
        let min_level = self.asm.skim.as_ref()?.min_level;
        let reader = self.asm.reader.as_ref()?.fork();
        let mut asm = Assembler::new(
            self.asm.service.clone(),
            self.asm.fingerprint,
            self.asm.now,
            Some(reader),
            self.asm.max_entry,
        );
        asm.skim = Some(Skim::new(min_level));
        Some(Parser {
            requested: self.requested.clone(),
            format: self.format.clone(),
            framer: Framer::new(self.asm.max_entry),
            asm,
            probe: None,
            probe_offset: 0,
            next_offset: None,
        })
    }

    /// Take over `fork` (made by [`Parser::fork`] of this parser, then fed the block that follows
    /// what this one has read, whose first line is `first_line`) as if this parser had read that
    /// block itself. Gives the events of the entry this parser had open, which the block's first
    /// line ended. `None` when the fork's reading may differ from reading on (the block's first
    /// line continues the open entry, a timeless entry needed an earlier time, a compose service
    /// was sniffed differently, the block did not end a line): drop the fork's events and feed
    /// the block to this parser instead.
    pub fn join(&mut self, mut fork: Parser, first_line: &[u8]) -> Option<Events> {
        if self.probe.is_some()
            || self.framer.held() > 0
            || fork.framer.held() > 0
            || fork.asm.fell_back_to_now
        {
            return None;
        }
        if let Some(open) = self.asm.open.as_ref() {
            let line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
            let text = String::from_utf8_lossy(line);
            if self
                .asm
                .reader
                .as_mut()
                .is_some_and(|r| r.continues(&open.raw, &text))
            {
                return None;
            }
        }
        if let (Some(Reader::Compose(mine)), Some(Reader::Compose(theirs))) =
            (self.asm.reader.as_mut(), fork.asm.reader.take())
            && !mine.adopt(theirs)
        {
            return None;
        }
        // Reading on, the block's first line would have ended the open entry.
        self.asm.close();
        let ended = self.take();
        let asm = &mut self.asm;
        let theirs = &mut fork.asm;
        asm.stats += &theirs.stats;
        asm.open = theirs.open.take();
        if theirs.checkpoint > 0 {
            asm.checkpoint = theirs.checkpoint;
        }
        if let (Some(mine), Some(their)) = (asm.skim.as_mut(), theirs.skim.as_mut()) {
            mine.skipped += their.skipped;
            if theirs.last_ts.is_some() {
                // Entries passed over before the fork's last known time no longer matter.
                mine.pending.clear();
                mine.pending_ends.clear();
            }
            let base = mine.pending.len();
            mine.pending.push_str(&their.pending);
            mine.pending_ends
                .extend(their.pending_ends.iter().map(|e| e + base));
        }
        if theirs.last_ts.is_some() {
            asm.last_ts = theirs.last_ts;
        }
        self.next_offset = fork.next_offset;
        Some(ended)
    }

    /// Entries passed over by the skim.
    pub fn skipped(&self) -> u64 {
        self.asm.skim.as_ref().map_or(0, |s| s.skipped)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: Timestamp = Timestamp(1_795_881_600_000_000); // 2026-11-28T16:00:00Z

    /// A time from the year 30000, before 1970, or past any store's range is not trusted: the
    /// event takes the previous time and is flagged `no_timestamp`; times at the range's ends
    /// are kept.
    #[test]
    fn times_no_store_can_hold_fall_back_and_are_flagged() {
        let input = concat!(
            "{\"time\":\"2026-12-07T10:00:00Z\",\"msg\":\"first\"}\n",
            "{\"time\":\"30000-01-01T00:00:00Z\",\"msg\":\"far\"}\n",
            "{\"time\":9007199254740991,\"msg\":\"max safe ms\"}\n",
            "{\"time\":-1,\"msg\":\"before 1970\"}\n",
            "{\"time\":\"2105-12-31T23:59:59Z\",\"msg\":\"last storable second\"}\n",
            "{\"time\":\"2106-01-01T00:00:00Z\",\"msg\":\"one second past\"}\n",
        );
        let (events, _) = run(Format::Pino, MAX_LINE, input.as_bytes(), &[]);
        let first = events[0].ts;
        let got: Vec<(bool, bool)> = events
            .iter()
            .map(|e| (e.flags.contains(Flags::NO_TIMESTAMP), e.ts.storable()))
            .collect();
        assert_eq!(
            got,
            [
                (false, true),
                (true, true),
                (true, true),
                (true, true),
                (false, true),
                (true, true)
            ]
        );
        assert_eq!(events[1].ts, first);
        assert_eq!(events[4].ts.as_secs(), Timestamp::LATEST.as_secs());
        assert_eq!(events[5].ts, events[4].ts);
        // Query bounds however far are clamped, never overflow tantivy's nanoseconds.
        assert_eq!(
            crate::store::schema::date(Timestamp(i64::MAX)),
            crate::store::schema::date(Timestamp::LATEST)
        );
        assert_eq!(
            crate::store::schema::date(Timestamp(i64::MIN)),
            crate::store::schema::date(Timestamp::EARLIEST)
        );
    }

    /// The line cap at its edge: a line of exactly [`MAX_LINE`] bytes is one event, one byte
    /// more is two events flagged split that together hold every byte.
    #[test]
    fn the_line_cap_holds_at_its_edge() {
        for (len, events_wanted) in [(MAX_LINE, 1), (MAX_LINE + 1, 2)] {
            let line = format!("{}\n", "x".repeat(len));
            let (events, stats) = run(Format::Plain, MAX_LINE, line.as_bytes(), &[]);
            assert_eq!(events.len(), events_wanted, "{len}");
            let split = events.iter().all(|e| e.flags.contains(Flags::SPLIT));
            assert_eq!(split, events_wanted > 1, "{len}");
            let bytes: usize = events.iter().map(|e| e.raw.len()).sum();
            assert_eq!(bytes, len);
            assert_eq!(stats.lines, 1);
        }
    }

    /// The resource limits at their boundaries: a JSON line nested [`json::MAX_JSON_DEPTH`] deep
    /// is read into fields, one level deeper is kept as a plain event flagged malformed;
    /// [`MAX_FIELDS`] keys and items become fields, one more is flagged `fields_capped` and the
    /// raw text keeps every byte.
    #[test]
    fn json_depth_and_field_count_limits_hold_at_their_boundaries() {
        let nested =
            |depth: usize| format!("{}\"deep\"{}\n", "{\"a\":".repeat(depth), "}".repeat(depth));
        let depth = crate::parse::json::MAX_JSON_DEPTH;
        let (events, _) = run(Format::Pino, MAX_LINE, nested(depth).as_bytes(), &[]);
        assert_eq!(events.len(), 1);
        assert!(
            !events[0].flags.contains(Flags::MALFORMED),
            "{:?}",
            events[0].flags.names()
        );
        assert!(events[0].fields.contains_key("a"));
        let line = nested(depth + 1);
        let (events, _) = run(Format::Pino, MAX_LINE, line.as_bytes(), &[]);
        assert_eq!(events.len(), 1);
        assert!(events[0].flags.contains(Flags::MALFORMED));
        assert_eq!(events[0].raw, line.trim_end());

        let wide = |n: usize| {
            let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{\"msg\":\"wide\",{}}}\n", keys.join(","))
        };
        let (events, _) = run(Format::Pino, MAX_LINE, wide(MAX_FIELDS).as_bytes(), &[]);
        assert_eq!(events[0].fields.len(), MAX_FIELDS);
        assert!(
            !events[0].flags.contains(Flags::FIELDS_CAPPED),
            "{:?}",
            events[0].flags.names()
        );
        let line = wide(MAX_FIELDS + 1);
        let (events, _) = run(Format::Pino, MAX_LINE, line.as_bytes(), &[]);
        assert_eq!(events[0].fields.len(), MAX_FIELDS);
        assert!(events[0].flags.contains(Flags::FIELDS_CAPPED));
        assert_eq!(events[0].raw, line.trim_end());
        // Nested keys and array items count as well.
        let nested_wide = format!(
            "{{\"msg\":\"m\",\"obj\":{{\"list\":[{}]}}}}\n",
            vec!["1"; MAX_FIELDS].join(",")
        );
        let (events, _) = run(Format::Pino, MAX_LINE, nested_wide.as_bytes(), &[]);
        assert!(events[0].flags.contains(Flags::FIELDS_CAPPED));
        assert_eq!(
            events[0].fields["obj"]["list"].as_array().map(Vec::len),
            Some(MAX_FIELDS - 2)
        );
    }

    fn parser(format: Format) -> Parser {
        Parser::new("svc", format, 7)
            .unwrap()
            .with_reference_time(NOW)
    }

    /// Feed `input` cut at `cuts`, then finish; all events in order.
    fn run(format: Format, max_line: usize, input: &[u8], cuts: &[usize]) -> (Vec<Event>, Stats) {
        let mut p = parser(format).with_max_line(max_line);
        let mut events = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        bounds.sort_unstable();
        let mut start = 0;
        for end in bounds.into_iter().chain([input.len()]) {
            let chunk = Chunk {
                source: 0,
                fingerprint: 7,
                offset: start as u64,
                bytes: input[start..end].to_vec(),
                eof: false,
            };
            events.extend(p.parse(&chunk).events);
            start = end;
        }
        events.extend(p.finish().events);
        assert_eq!(p.checkpoint(), input.len() as u64);
        (events, p.stats().clone())
    }

    fn physical_lines(input: &[u8]) -> u64 {
        let newlines = input.iter().filter(|b| **b == b'\n').count() as u64;
        newlines + u64::from(!input.is_empty() && input.last() != Some(&b'\n'))
    }

    fn assert_covers(events: &[Event], input: &[u8]) {
        let mut next = 0;
        for e in events {
            assert_eq!(e.id.offset, next, "events must tile the input");
            next = e.end_offset();
        }
        assert_eq!(next, input.len() as u64);
    }

    fn input_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"{\"level\":50,\"time\":1796220000123,\"msg\":\"x\"}".to_vec()),
            Just(b"{\"level\":".to_vec()),
            Just(b"Error: boom".to_vec()),
            Just(b"    at f (a.js:1:1)".to_vec()),
            Just(b"2026-11-28 14:00:01.123 UTC [42] LOG:  hi".to_vec()),
            Just(b"Nov 28 14:00:04 host kernel: [1.5] up".to_vec()),
            Just("é".as_bytes().to_vec()),
            Just(vec![0xff, 0xfe]),
            Just(b"password=hunter2".to_vec()),
            Just(b"Nov 28 14:00:04 db postgres[9]: [1-1] ".to_vec()),
            Just(b"newsletter-app  | ".to_vec()),
            Just("ü:  ".as_bytes().to_vec()),
            Just(b"ERROR:  ".to_vec()),
            Just(b"DETAIL:  ".to_vec()),
            Just(b"\t".to_vec()),
            Just(b"\"".to_vec()),
            Just(b",".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    fn format_strategy() -> impl Strategy<Value = Format> {
        prop_oneof![
            Just(Format::Auto),
            Just(Format::Plain),
            Just(Format::Pino),
            Just(Format::Syslog),
            Just(Format::Redis),
            Just(Format::Compose),
            Just(Format::Postgres { prefix: None }),
            Just(Format::Postgres {
                prefix: Some("%m [%p] %q%u@%d ".to_string())
            }),
            Just(Format::PostgresCsv),
            Just(Format::PostgresJson),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Nothing is ever dropped: every physical line lands in exactly one event, the events tile
        /// the input, and chunking changes nothing.
        #[test]
        fn every_line_lands_in_exactly_one_event(
            input in input_strategy(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            format in format_strategy(),
            max_line in prop_oneof![Just(16usize), Just(MAX_LINE)],
        ) {
            let (events, stats) = run(format.clone(), max_line, &input, &cuts);
            let expected = physical_lines(&input);
            prop_assert_eq!(stats.lines, expected);
            let in_events: u64 = events.iter().map(|e| u64::from(e.lines)).sum();
            prop_assert_eq!(in_events, expected);
            prop_assert_eq!(stats.events, events.len() as u64);
            assert_covers(&events, &input);
            let (whole, _) = run(format, max_line, &input, &[]);
            prop_assert_eq!(events, whole);
        }
    }

    const STACK: &str = "{\"level\":30,\"time\":1796220000123,\"msg\":\"ok\"}\n\
Error: boom\n    at f (/app/a.js:1:1)\n    at g (/app/b.js:2:2)\n\
{\"level\":50,\"time\":1796220000456,\"err\":{\"message\":\"x\"},\"msg\":\"failed\"}\n\
FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n\
----- Native stack trace -----\n\n 1: 0xb7c5f0 node::Abort() [node]\n 2: 0xa8e3d9 [node]\n\
{\"level\":30,\"time\":1796220000789,\"msg\":\"restarted\"}\n";

    #[test]
    fn an_endless_stack_trace_is_cut_at_the_cap_and_nothing_is_lost() {
        let mut input = String::from("Error: boom\n");
        for i in 0..100 {
            input.push_str(&format!("    at f{i} (/app/a.js:1:1)\n"));
        }
        let (events, stats) = run(Format::Plain, 256, input.as_bytes(), &[]);
        assert_eq!(stats.lines, 101);
        assert!(events.len() > 1);
        for e in &events {
            assert!(e.raw.len() <= 256, "{} bytes", e.raw.len());
            assert!(e.flags.contains(Flags::SPLIT));
        }
        assert_eq!(events.iter().map(|e| u64::from(e.lines)).sum::<u64>(), 101);
        assert_covers(&events, input.as_bytes());
    }

    #[test]
    fn a_resumed_file_checkpoints_from_its_start_offset() {
        let mut p = parser(Format::Auto).starting_at(1000);
        assert_eq!(p.checkpoint(), 1000, "no bytes yet: still where it started");
        assert!(p.flush().events.is_empty());
        assert_eq!(p.checkpoint(), 1000);
        let line = b"{\"level\":50,\"time\":1796220000123,\"msg\":\"x\"}\n";
        let chunk = Chunk {
            source: 0,
            fingerprint: 7,
            offset: 1000,
            bytes: line.to_vec(),
            eof: true,
        };
        let events = p.parse(&chunk).events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id.offset, 1000);
        assert_eq!(p.checkpoint(), 1000 + line.len() as u64);
    }

    #[test]
    fn chunking_does_not_change_the_events() {
        let input = STACK.as_bytes();
        let (whole, _) = run(Format::Auto, MAX_LINE, input, &[]);
        for cut in 0..input.len() {
            let (cut_events, _) = run(Format::Auto, MAX_LINE, input, &[cut]);
            assert_eq!(cut_events, whole, "cut at {cut}");
        }
    }

    #[test]
    fn stack_traces_and_heap_reports_are_one_event_each() {
        let (events, stats) = run(Format::Auto, MAX_LINE, STACK.as_bytes(), &[]);
        assert_eq!(events.len(), 5);
        assert_eq!(stats.lines, 11);
        assert_eq!(events[1].lines, 3);
        assert_eq!(events[1].level, Level::Error);
        assert!(events[1].raw.ends_with("at g (/app/b.js:2:2)"));
        assert_eq!(events[3].lines, 5);
        assert_eq!(events[3].level, Level::Fatal);
        // The stack trace has no time of its own: it takes the previous event's.
        assert!(events[1].flags.contains(Flags::NO_TIMESTAMP));
        assert_eq!(events[1].ts, events[0].ts);
        assert_eq!(events[2].message, "failed: x");
        assert_eq!(
            events[2].id,
            EventId {
                fingerprint: 7,
                offset: events[1].end_offset()
            }
        );
    }

    #[test]
    fn parse_holds_the_open_entry_and_the_partial_line() {
        let mut p = parser(Format::Plain);
        let chunk = |offset: u64, s: &str| Chunk {
            source: 0,
            fingerprint: 7,
            offset,
            bytes: s.as_bytes().to_vec(),
            eof: false,
        };
        let out = p.parse(&chunk(0, "Error: boom\n    at f (a.js:1:1)\nnext li"));
        assert!(
            out.is_empty(),
            "the trace may continue; the next line is partial"
        );
        assert_eq!(p.checkpoint(), 0);
        let out = p.parse(&chunk(39, "ne\n    at g\nlast"));
        assert_eq!(out.len(), 1);
        assert_eq!(out.events[0].lines, 2);
        assert_eq!(p.checkpoint(), 32);
        let out = p.flush();
        assert_eq!(out.len(), 1);
        assert_eq!(out.events[0].raw, "next line\n    at g");
        assert_eq!(p.checkpoint(), 51);
        let out = p.finish();
        assert_eq!(out.len(), 1);
        assert_eq!(out.events[0].raw, "last");
        assert!(out.events[0].flags.contains(Flags::PARTIAL));
        assert_eq!(p.checkpoint(), 55);
        assert_eq!(p.stats().lines, 5);
        assert_eq!(p.stats().partial, 1);
    }

    #[test]
    fn json_lines_are_emitted_at_once() {
        let mut p = parser(Format::Pino);
        let out = p.parse(&Chunk {
            source: 0,
            fingerprint: 7,
            offset: 0,
            bytes: b"{\"level\":30,\"msg\":\"a\"}\n".to_vec(),
            eof: false,
        });
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn malformed_json_and_invalid_utf8_are_kept_and_flagged() {
        let input = b"{\"level\":50,\"msg\":\"cut\n{\"level\":30,\"msg\":\"caf\xe9\"}\n".to_vec();
        let events = parse_all("app", Format::Pino, 1, &input).unwrap().events;
        assert_eq!(events.len(), 2);
        assert!(events[0].flags.contains(Flags::MALFORMED));
        assert_eq!(events[0].raw, "{\"level\":50,\"msg\":\"cut");
        assert!(events[1].flags.contains(Flags::INVALID_UTF8));
        assert_eq!(events[1].message, "caf\u{fffd}");
    }

    #[test]
    fn a_huge_line_is_split_as_it_arrives_and_never_buffered_whole() {
        let mut p = parser(Format::Pino).with_max_line(1 << 20);
        let block = vec![b'a'; 256 * 1024];
        let mut events = Vec::new();
        let total = 12 * 1024 * 1024;
        let mut offset = 0;
        while offset < total {
            let out = p.parse(&Chunk {
                source: 0,
                fingerprint: 7,
                offset: offset as u64,
                bytes: block.clone(),
                eof: false,
            });
            offset += block.len();
            events.extend(out.events);
            assert!(p.framer.held() <= (1 << 20) + 1 + block.len());
        }
        events.extend(
            p.parse(&Chunk {
                source: 0,
                fingerprint: 7,
                offset: offset as u64,
                bytes: b"\n{\"level\":30,\"msg\":\"after\"}\n".to_vec(),
                eof: true,
            })
            .events,
        );
        assert_eq!(events.len(), 13);
        assert!(events[..12].iter().all(|e| e.flags.contains(Flags::SPLIT)));
        assert_eq!(events[..12].iter().map(|e| e.lines).sum::<u32>(), 1);
        assert_eq!(events[12].message, "after");
        assert_eq!(p.stats().lines, 2);
        assert_eq!(p.stats().split, 12);
    }

    #[test]
    fn secrets_are_redacted_before_events_leave() {
        let input = "{\"level\":50,\"time\":1796220000123,\"err\":{\"message\":\"connect postgres://newsletter:S3cretPw@db:5432/newsletter failed\"},\"apiKey\":\"sk-proj-abc123def\",\"msg\":\"Database query failed\"}\n";
        let events = parse_all("app", Format::Pino, 1, input.as_bytes())
            .unwrap()
            .events;
        let e = &events[0];
        assert!(e.flags.contains(Flags::REDACTED));
        assert!(!e.raw.contains("S3cretPw") && !e.message.contains("S3cretPw"));
        assert_eq!(e.fields["apiKey"], "***");
        assert!(
            !e.fields["err"]["message"]
                .as_str()
                .unwrap()
                .contains("S3cretPw")
        );
    }

    #[test]
    fn auto_detects_and_reports_the_format() {
        let mut p = parser(Format::Auto);
        assert_eq!(p.format(), &Format::Auto);
        let out = p.parse(&Chunk {
            source: 0,
            fingerprint: 7,
            offset: 0,
            bytes: b"1:M 28 Nov 2026 14:00:03.123 * 100 changes in 300 seconds. Saving...\n"
                .to_vec(),
            eof: false,
        });
        assert!(out.is_empty(), "still sniffing");
        let out = p.flush();
        assert_eq!(p.format(), &Format::Redis);
        assert_eq!(out.events[0].level, Level::Info);
        assert_eq!(
            out.events[0].message,
            "100 changes in 300 seconds. Saving..."
        );
    }

    #[test]
    fn postgres_stderr_of_the_stack_is_detected_and_read() {
        let input = "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 5234.123 ms  statement: SELECT 1\n\
2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time\n\
2026-11-28 14:00:03.001 UTC [4301] newsletter@newsletter FATAL:  password authentication failed for user \"newsletter\"\n\
2026-11-28 14:00:03.001 UTC [4301] newsletter@newsletter DETAIL:  Connection matched pg_hba.conf line 99: \"host all all all scram-sha-256\"\n";
        let mut p = parser(Format::Auto);
        p.feed(0, input.as_bytes());
        let events = p.finish().events;
        assert_eq!(
            p.format(),
            &Format::Postgres {
                prefix: Some("%m [%p] %q%u@%d ".into())
            }
        );
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].field("duration_ms"),
            Some(&serde_json::json!(5234.123))
        );
        assert_eq!(events[2].level, Level::Fatal);
        assert_eq!(events[2].lines, 2);
    }

    #[test]
    fn an_invalid_prefix_is_an_error() {
        let err = Parser::new(
            "db",
            Format::Postgres {
                prefix: Some("%Y [%p] ".into()),
            },
            1,
        );
        assert!(matches!(err, Err(ParseError::PgPrefix { .. })));
    }

    #[test]
    fn compose_lines_take_their_service_from_the_prefix() {
        let input = "newsletter-app-1  | {\"level\":50,\"time\":1796220000123,\"res\":{\"statusCode\":503},\"msg\":\"request completed\"}\n\
worker-1  | Error: boom\n\
newsletter-app-1  | {\"level\":30,\"time\":1796220000124,\"msg\":\"ok\"}\n\
worker-1  |     at f (a.js:1:1)\n";
        let events = parse_all("compose", Format::Auto, 1, input.as_bytes())
            .unwrap()
            .events;
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].service, "newsletter-app");
        assert_eq!(events[0].level, Level::Error);
        assert_eq!(events[1].service, "worker");
        assert_eq!(events[3].service, "worker");
    }
}

/// Every log file of the shared corpora ingests with `auto`: no error, no lost line, and the
/// README's event counts.
#[cfg(test)]
mod corpora {
    use std::path::PathBuf;

    use super::*;

    /// (file, physical lines, events) as the corpora README gives them.
    const FILES: [(&str, u64, Option<u64>); 17] = [
        ("loghub/Apache/Apache_2k.log", 2000, None),
        ("loghub/Linux/Linux_2k.log", 2000, None),
        ("loghub/OpenSSH/OpenSSH_2k.log", 2000, None),
        ("loghub/Zookeeper/Zookeeper_2k.log", 2000, None),
        // README: 39 and 176, the number of prefixed lines; with DETAIL/HINT/STATEMENT lines
        // joined to the entry above (the README's own definition) there are 28 and 171 entries.
        ("pgbadger/stderr/queryid.log", 63, Some(28)),
        ("pgbadger/stderr/tempfile_only.log", 188, Some(171)),
        ("pgbadger/stderr/light.postgres.log", 630, Some(630)),
        ("pgbadger/stderr/postgresql_param_range.log", 6, Some(3)),
        // README: 12 (joins the two STATEMENT lines only); the DETAIL line joins too: 11.
        ("pgbadger/stderr/pg_rawcsv.log", 14, Some(11)),
        ("pgbadger/stderr/rds_head3000.log", 3000, Some(3000)),
        ("pgbadger/stderr/pg_vacuums_head1000.log", 9139, Some(1000)),
        (
            "pgbadger/jsonlog/pg_vacuums_head1000.json",
            1000,
            Some(1000),
        ),
        ("pgbadger/csvlog/anonymize.log", 8, Some(8)),
        // README: 4,976. The syslog sequence numbers give 4,978: the 22 lines `[n-m]` with m > 1
        // (one HINT, 21 `#011` statement lines) are the only continuations in the file.
        ("pgbadger/syslog/pg-syslog_head5000.log", 5000, Some(4978)),
        // README: 26, which joins only the tab-continued lines. By its own definition (an entry
        // with its DETAIL/CONTEXT/STATEMENT lines is one event) and by the sequence numbers
        // (`[19-2]` … `[19-10]` continue `[19-1]`) there are 10 entries.
        ("pgbadger/syslog/logplex.log", 36, Some(10)),
        ("pgbadger/cloud/cloudsql.log", 1343, Some(1343)),
        ("pgbadger/cloud/cnpg.log", 2022, Some(2022)),
    ];

    fn corpora_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("LOGWARDEN_CORPORA") {
            return PathBuf::from(dir);
        }
        let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
        if beside.is_dir() {
            return beside;
        }
        PathBuf::from("/work/shared/corpora")
    }

    #[test]
    fn every_corpus_file_ingests_without_losing_a_line() {
        let dir = corpora_dir();
        assert!(dir.is_dir(), "corpora folder {} is missing", dir.display());
        let mut report = Vec::new();
        for (file, lines, events) in FILES {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let mut p = Parser::new("corpus", Format::Auto, 1)
                .unwrap()
                .with_reference_time(Timestamp::from_secs(1_795_881_600));
            // Realistic chunks: 64 KiB reads.
            let mut out = Vec::new();
            for (i, block) in bytes.chunks(64 * 1024).enumerate() {
                let chunk = Chunk {
                    source: 0,
                    fingerprint: 1,
                    offset: (i * 64 * 1024) as u64,
                    bytes: block.to_vec(),
                    eof: false,
                };
                out.extend(p.parse(&chunk).events);
            }
            out.extend(p.finish().events);
            let in_events: u64 = out.iter().map(|e| u64::from(e.lines)).sum();
            assert_eq!(p.stats().lines, lines, "{file}: lines read");
            assert_eq!(in_events, lines, "{file}: lines in events");
            assert_eq!(p.checkpoint(), bytes.len() as u64, "{file}: checkpoint");
            report.push(format!(
                "{file}: format {}, {} events (README {:?}), {} malformed, {} without time",
                p.format(),
                out.len(),
                events,
                p.stats().malformed,
                out.iter()
                    .filter(|e| e.flags.contains(Flags::NO_TIMESTAMP))
                    .count(),
            ));
            if let Some(expected) = events
                && out.len() as u64 != expected
            {
                report.push(format!("  MISMATCH {file}: {} != {expected}", out.len()));
            }
        }
        let text = report.join("\n");
        println!("{text}");
        assert!(!text.contains("MISMATCH"), "{text}");
    }
}
