//! The invariants the fuzz targets check, shared by the targets in `fuzz_targets/`.
//!
//! A target is one format or loader; the checks are what the library promises of every input, so
//! that a target fails on a wrong answer and not only on a panic. For the parsers (one [`Parser`]
//! per file, fed in reads): every input byte lands in exactly one event (the events tile the input,
//! their line counts add up to its physical lines, the [`Stats`] agree), an event's `raw` is the
//! text of its bytes unless it was redacted, and the events do not depend on how the input was cut
//! into reads or on which run it is. The cut point and the line cap are drawn from a hash of the
//! input, so a seed is a plain log file and a crashing input reproduces from its file alone.
//!
//! This crate must not copy library code: it calls the library's public API only.

use logwarden::event::{Event, Flags, Timestamp};
use logwarden::parse::frame::MAX_LINE;
use logwarden::parse::redact;
use logwarden::parse::{Format, Parser, Stats};
use logwarden::source::Chunk;

/// The reference time of every parser here (2026-11-28T16:00:00Z): events must not depend on the
/// wall clock.
pub const NOW: Timestamp = Timestamp(1_795_881_600_000_000);

/// FNV-1a: a fixed, dependency-free hash for the choices drawn from an input.
pub fn hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// How one input is read: where it is cut into two reads, and the line cap.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub cut: usize,
    pub max_line: usize,
}

impl Plan {
    /// The plan for `data`: a cut anywhere (ends included); one input in four with a small line cap
    /// (8 to 71 bytes), so that splitting and the entry cap are exercised too.
    pub fn of(data: &[u8]) -> Plan {
        let h = hash(data);
        let cut = (h % (data.len() as u64 + 1)) as usize;
        let max_line = if (h >> 32).is_multiple_of(4) {
            8 + ((h >> 40) % 64) as usize
        } else {
            MAX_LINE
        };
        Plan { cut, max_line }
    }
}

/// A parser for the fuzz runs: fixed reference time, the given line cap. `None` when the format
/// cannot be built (an invalid `log_line_prefix`: an error, which is an answer).
pub fn parser(format: &Format, max_line: usize) -> Option<Parser> {
    let parser = Parser::new("fuzz", format.clone(), 7).ok()?;
    Some(parser.with_reference_time(NOW).with_max_line(max_line))
}

fn chunk(offset: usize, bytes: &[u8]) -> Chunk {
    Chunk {
        source: 0,
        fingerprint: 7,
        offset: offset as u64,
        bytes: bytes.to_vec(),
        eof: false,
    }
}

/// Read `data` in reads cut at `cuts` (ascending), then finish. Returns the events, the stats and
/// the checkpoint.
pub fn read(
    format: &Format,
    max_line: usize,
    data: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, Stats, u64) {
    let Some(mut p) = parser(format, max_line) else {
        return (Vec::new(), Stats::default(), 0);
    };
    let mut events = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        events.extend(p.parse(&chunk(start, &data[start..end])).events);
        start = end;
    }
    events.extend(p.finish().events);
    (events, p.stats().clone(), p.checkpoint())
}

/// Lines in `data` as the framer counts them: one per `\n`, plus an unterminated last line.
pub fn physical_lines(data: &[u8]) -> u64 {
    let newlines = count_newlines(data);
    newlines + u64::from(data.last().is_some_and(|b| *b != b'\n'))
}

fn count_newlines(data: &[u8]) -> u64 {
    data.iter().filter(|b| **b == b'\n').count() as u64
}

/// The text an event's bytes stand for: each line without its terminator (`\n`, `\r\n`, or a `\r`
/// closing the input's unterminated last line), joined with `\n`, decoded lossily.
pub fn text_of(bytes: &[u8], ends_input: bool) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let content = match line.strip_suffix(b"\n") {
            Some(c) => c.strip_suffix(b"\r").unwrap_or(c),
            None if last && ends_input => line.strip_suffix(b"\r").unwrap_or(line),
            None => line,
        };
        out.extend_from_slice(content);
        if !last {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every input byte lands in exactly one event, and each event says what its bytes say.
pub fn assert_accounts_for(data: &[u8], events: &[Event], stats: &Stats, checkpoint: u64) {
    let lines = physical_lines(data);
    assert_eq!(stats.bytes, data.len() as u64, "stats.bytes");
    assert_eq!(stats.lines, lines, "stats.lines against the input's lines");
    assert_eq!(stats.events, events.len() as u64, "stats.events");
    let in_events: u64 = events.iter().map(|e| u64::from(e.lines)).sum();
    assert_eq!(
        in_events, lines,
        "lines in events against the input's lines"
    );
    assert_eq!(
        checkpoint,
        data.len() as u64,
        "checkpoint at the end of the input"
    );
    let mut next = 0u64;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.id.offset, next,
            "event {i} does not start where the one before ended"
        );
        assert!(e.len > 0, "event {i} takes no byte");
        next = e.end_offset();
        let end = usize::try_from(next).expect("offset fits");
        assert!(end <= data.len(), "event {i} ends past the input");
        let start = usize::try_from(e.id.offset).expect("offset fits");
        let bytes = &data[start..end];
        let text = text_of(bytes, end == data.len());
        if e.flags.contains(Flags::REDACTED) {
            // Redaction is done once and for all: the redacted text holds nothing to redact.
            let again = redact::redact_text(&e.raw);
            assert_eq!(
                again.as_ref(),
                e.raw,
                "event {i}: redacting its raw again changes it"
            );
        } else {
            assert_eq!(e.raw, text, "event {i}: raw is not the text of its bytes");
            // Not flagged, so there was nothing to redact: the input's own text holds no secret.
            assert!(
                redact::redact_text(&text) == text.as_str(),
                "event {i}: not flagged redacted but its text holds a secret"
            );
        }
        // Whatever was read out of the text (a JSON string with its escapes decoded, a
        // PostgreSQL field) holds no secret either.
        assert_clean(&e.message, &format!("event {i}: message"));
        for (key, value) in &e.fields {
            assert_clean_value(key, value, &format!("event {i}: field `{key}`"));
        }
        assert_eq!(
            e.flags.contains(Flags::INVALID_UTF8),
            std::str::from_utf8(bytes).is_err(),
            "event {i}: flag invalid_utf8 against its bytes"
        );
    }
    assert_eq!(
        next,
        data.len() as u64,
        "the events stop before the end of the input"
    );
}

fn assert_clean(text: &str, what: &str) {
    assert!(
        redact::redact_text(text) == text,
        "{what} holds a secret after redaction: {text:?}"
    );
}

/// A string field holds no secret; under a secret-sounding key (`password`, `apiKey`, …) it is
/// `***` (or empty), whatever it looks like. Array items are under their array's key.
fn assert_clean_value(key: &str, value: &serde_json::Value, what: &str) {
    match value {
        serde_json::Value::String(s) => {
            assert_clean(s, what);
            assert!(
                !redact::secret_key(key) || s.is_empty() || s == "***",
                "{what}: a secret key's value is not redacted: {s:?}"
            );
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| assert_clean_value(key, v, what))
        }
        serde_json::Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| assert_clean_value(k, v, &format!("{what}.{k}"))),
        _ => {}
    }
}

/// The parser checks for one format: byte accounting, then determinism (a second run, and the
/// input in two reads cut anywhere, give the same events).
pub fn check_format(format: &Format, data: &[u8]) {
    let plan = Plan::of(data);
    let (whole, stats, checkpoint) = read(format, plan.max_line, data, &[]);
    if parser(format, plan.max_line).is_none() {
        return;
    }
    assert_accounts_for(data, &whole, &stats, checkpoint);
    let (again, _, _) = read(format, plan.max_line, data, &[]);
    assert_eq!(whole, again, "a second run gives other events");
    let (cut, cut_stats, cut_checkpoint) = read(format, plan.max_line, data, &[plan.cut]);
    assert_accounts_for(data, &cut, &cut_stats, cut_checkpoint);
    assert_eq!(
        whole, cut,
        "two reads cut at {} give other events",
        plan.cut
    );
}
