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
/// Matched on bytes (compiled to a few inline compares): this runs on every line.
pub fn is_keyword(word: &str) -> bool {
    matches!(
        word.as_bytes(),
        b"LOG"
            | b"ERROR"
            | b"WARNING"
            | b"FATAL"
            | b"PANIC"
            | b"NOTICE"
            | b"INFO"
            | b"DEBUG"
            | b"DEBUG1"
            | b"DEBUG2"
            | b"DEBUG3"
            | b"DEBUG4"
            | b"DEBUG5"
            | b"DETAIL"
            | b"HINT"
            | b"STATEMENT"
            | b"CONTEXT"
            | b"QUERY"
            | b"LOCATION"
    )
}

/// Whether `word` is a continuation keyword (`DETAIL`, `HINT`, …), matched as [`is_keyword`].
pub fn is_continuation_keyword(word: &str) -> bool {
    matches!(
        word.as_bytes(),
        b"DETAIL" | b"HINT" | b"STATEMENT" | b"CONTEXT" | b"QUERY" | b"LOCATION"
    )
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

    /// The escape as a regex (ASCII classes): the reference the hand reader ([`Walk`]) follows,
    /// and its fallback for lines that would cost it too many steps.
    fn pattern(self) -> &'static str {
        match self {
            Escape::TimeMillis => {
                r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(?: (?:[A-Za-z]{1,6}|[+-][0-9]{2}(?::?[0-9]{2})?))?"
            }
            Escape::TimeSecs | Escape::SessionStart => {
                r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(?: (?:[A-Za-z]{1,6}|[+-][0-9]{2}(?::?[0-9]{2})?))?"
            }
            Escape::Epoch => r"[0-9]+\.[0-9]+",
            Escape::Pid | Escape::LineNum | Escape::Xid => r"[0-9]+",
            Escape::LeaderPid => r"[0-9]*",
            Escape::User | Escape::Db | Escape::Host => r"[^\t\n\x0B\x0C\r ,]*?",
            Escape::LocalAddr => r"[^\t\n\x0B\x0C\r ]*?",
            Escape::HostPort => r"\[local\]|[^\t\n\x0B\x0C\r ()]*\([0-9]+\)|[^\t\n\x0B\x0C\r ]*?",
            Escape::App | Escape::BackendType | Escape::CommandTag => r".*?",
            Escape::SessionId => r"[0-9a-f]+\.[0-9a-f]+",
            Escape::Vxid => r"(?:-?[0-9]+/-?[0-9]+)?",
            Escape::SqlState => r"[0-9A-Z]{5}",
            Escape::QueryId => r"-?[0-9]+",
        }
    }

    /// Where this escape's text may end when it starts at `pos`, in the regex's order of preference.
    fn ends(self, b: &[u8], pos: usize) -> Ends {
        let run = |from: usize, class: fn(u8) -> bool| -> usize {
            b.get(from..)
                .map_or(0, |t| t.iter().take_while(|&&c| class(c)).count())
        };
        let at = |i: usize, class: fn(u8) -> bool| b.get(i).is_some_and(|&c| class(c));
        let mut ends = Ends::default();
        match self {
            Escape::TimeMillis | Escape::TimeSecs | Escape::SessionStart => {
                let millis = self == Escape::TimeMillis;
                let layout: &[u8] = if millis {
                    b"dddd-dd-dd dd:dd:dd.ddd"
                } else {
                    b"dddd-dd-dd dd:dd:dd"
                };
                let fits = b.len() >= pos + layout.len()
                    && layout.iter().enumerate().all(|(i, &l)| {
                        let c = b[pos + i];
                        if l == b'd' {
                            c.is_ascii_digit()
                        } else {
                            c == l
                        }
                    });
                if !fits {
                    return ends;
                }
                let p = pos + layout.len();
                let q = p + 1;
                if at(p, |c| c == b' ') {
                    let letters = run(q, |c| c.is_ascii_alphabetic()).min(6);
                    if letters > 0 {
                        ends.push(Seg::Down(q + 1, q + letters));
                    } else if at(q, |c| c == b'+' || c == b'-')
                        && at(q + 1, digit)
                        && at(q + 2, digit)
                    {
                        let r = q + 3;
                        if at(r, |c| c == b':') && at(r + 1, digit) && at(r + 2, digit) {
                            ends.push(Seg::One(r + 3));
                        } else if at(r, digit) && at(r + 1, digit) {
                            ends.push(Seg::One(r + 2));
                        }
                        ends.push(Seg::One(r));
                    }
                }
                ends.push(Seg::One(p));
            }
            Escape::Epoch | Escape::SessionId => {
                let class: fn(u8) -> bool = if self == Escape::Epoch {
                    digit
                } else {
                    |c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
                };
                let whole = run(pos, class);
                let frac = pos + whole + 1;
                let n = run(frac, class);
                if whole > 0 && at(pos + whole, |c| c == b'.') && n > 0 {
                    ends.push(Seg::Down(frac + 1, frac + n));
                }
            }
            Escape::Pid | Escape::LineNum | Escape::Xid => {
                ends.push(Seg::Down(pos + 1, pos + run(pos, digit)));
            }
            Escape::LeaderPid => ends.push(Seg::Down(pos, pos + run(pos, digit))),
            Escape::QueryId => {
                let from = pos + usize::from(at(pos, |c| c == b'-'));
                ends.push(Seg::Down(from + 1, from + run(from, digit)));
            }
            Escape::SqlState => {
                if run(pos, |c| c.is_ascii_digit() || c.is_ascii_uppercase()) >= 5 {
                    ends.push(Seg::One(pos + 5));
                }
            }
            Escape::Vxid => {
                let from = pos + usize::from(at(pos, |c| c == b'-'));
                let n = run(from, digit);
                let slash = from + n;
                if n > 0 && at(slash, |c| c == b'/') {
                    let second = slash + 1 + usize::from(at(slash + 1, |c| c == b'-'));
                    ends.push(Seg::Down(second + 1, second + run(second, digit)));
                }
                ends.push(Seg::One(pos));
            }
            Escape::User | Escape::Db | Escape::Host => {
                ends.push(Seg::Up(pos, pos + run(pos, |c| !space(c) && c != b',')));
            }
            Escape::LocalAddr => ends.push(Seg::Up(pos, pos + run(pos, |c| !space(c)))),
            Escape::App | Escape::BackendType | Escape::CommandTag => {
                ends.push(Seg::Up(pos, pos + run(pos, |c| c != b'\n')));
            }
            Escape::HostPort => {
                if b.get(pos..).is_some_and(|t| t.starts_with(b"[local]")) {
                    ends.push(Seg::One(pos + 7));
                }
                let host = pos + run(pos, |c| !space(c) && c != b'(' && c != b')');
                let port = run(host + 1, digit);
                if at(host, |c| c == b'(') && port > 0 && at(host + 1 + port, |c| c == b')') {
                    ends.push(Seg::One(host + port + 2));
                }
                ends.push(Seg::Up(pos, pos + run(pos, |c| !space(c))));
            }
        }
        ends
    }
}

fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}

/// The regex's ASCII `\s`: space, tab, newline, vertical tab, form feed, carriage return.
fn space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// A run of candidate end positions.
#[derive(Debug, Clone, Copy)]
enum Seg {
    One(usize),
    /// `lo..=hi`, longest first (a greedy repetition).
    Down(usize, usize),
    /// `lo..=hi`, shortest first (a lazy repetition).
    Up(usize, usize),
}

impl Seg {
    /// Its end positions in order of preference.
    fn ends(self) -> impl Iterator<Item = usize> {
        let (lo, hi, longest_first) = match self {
            Seg::One(p) => (p, p, false),
            Seg::Down(lo, hi) => (lo, hi, true),
            Seg::Up(lo, hi) => (lo, hi, false),
        };
        (lo..=hi).map(move |k| if longest_first { hi - (k - lo) } else { k })
    }
}

/// The end positions one piece may take, at most three runs of them, in order of preference.
#[derive(Debug, Clone, Copy, Default)]
struct Ends {
    segs: [Option<Seg>; 3],
    n: usize,
}

impl Ends {
    fn push(&mut self, seg: Seg) {
        if let Some(slot) = self.segs.get_mut(self.n) {
            *slot = Some(seg);
            self.n += 1;
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
        is_continuation_keyword(self.severity)
    }
}

/// One part of a compiled prefix, in line order.
#[derive(Debug, Clone)]
enum Piece {
    /// Text that must follow as it is.
    Lit(Box<[u8]>),
    /// ` *`: the padding around `%-10u`.
    Pad,
    /// An escape; its text is capture `slot`.
    Esc { escape: Escape, slot: usize },
}

/// A byte span of a line.
type Span = (usize, usize);

/// Steps (candidate positions tried) the hand reader may spend on one line before handing it to
/// the regex. Common prefixes take a few dozen; only pathological prefixes (`%a%a%a`) reach it.
const STEP_BUDGET: usize = 4096;

/// Captures kept on the stack when reading a line (prefixes with more escapes use the heap).
const STACK_CAPTURES: usize = 16;

/// A compiled `log_line_prefix`.
///
/// Lines are read by a small backtracking reader over the prefix's pieces that takes the same
/// choices, in the same order, as the regex the prefix translates to (leftmost-first, greedy and
/// lazy repetitions as written in [`Escape::pattern`]); a property test holds the two equal. The
/// regex itself reads only the lines the hand reader gives up on ([`STEP_BUDGET`]).
#[derive(Debug, Clone)]
pub struct PgPrefix {
    source: String,
    pieces: Vec<Piece>,
    /// The piece where `%q` starts the part only session processes print.
    optional_from: Option<usize>,
    /// `^prefix(?P<sev>SEVERITY|CONTINUATION):` with one group per escape.
    head: Regex,
    /// The escape read by capture group `i + 1`.
    escapes: Vec<Escape>,
}

impl PgPrefix {
    /// Compile `prefix` (the value of `log_line_prefix`, without quotes).
    pub fn compile(prefix: &str) -> Result<PgPrefix, PgPrefixError> {
        let compiled = translate(prefix)?;
        let sev = SEVERITIES.join("|");
        let cont = CONTINUATIONS.join("|");
        let pattern = compiled.pattern;
        let head =
            Regex::new(&format!("^(?:{pattern})(?P<sev>{sev}|{cont}):  ?")).map_err(|e| {
                PgPrefixError::Regex {
                    prefix: prefix.to_string(),
                    reason: e.to_string(),
                }
            })?;
        Ok(PgPrefix {
            source: prefix.to_string(),
            pieces: compiled.pieces,
            optional_from: compiled.optional_from,
            head,
            escapes: compiled.escapes,
        })
    }

    /// The prefix as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The severity or continuation keyword after the prefix at the start of `line` (`LOG`,
    /// `DETAIL`, …); `None` when the line does not start with the prefix and a keyword.
    pub fn keyword<'a>(&self, line: &'a str) -> Option<&'a str> {
        self.with_captures(|caps| self.locate(line, caps))
            .map(|(start, end)| &line[start..end])
    }

    /// True when `line` starts with the prefix and a continuation keyword (`DETAIL:` …).
    pub fn is_continuation(&self, line: &str) -> bool {
        self.keyword(line).is_some_and(is_continuation_keyword)
    }

    /// True when `line` starts with the prefix and any severity or continuation keyword.
    pub fn matches(&self, line: &str) -> bool {
        self.keyword(line).is_some()
    }

    /// Read the prefix and severity at the start of `line`; `None` when the line does not start so.
    pub fn read<'a>(&self, line: &'a str) -> Option<LineHead<'a>> {
        self.with_captures(|caps| {
            let (start, end) = self.locate(line, caps)?;
            let mut head = LineHead {
                severity: &line[start..end],
                body: &line[start..],
                ts: None,
                fields: Map::new(),
            };
            for (escape, span) in self.escapes.iter().zip(caps.iter()) {
                if let Some((from, to)) = *span {
                    store(*escape, line[from..to].trim(), &mut head);
                }
            }
            Some(head)
        })
    }

    fn with_captures<R>(&self, f: impl FnOnce(&mut [Option<Span>]) -> R) -> R {
        let n = self.escapes.len();
        if n <= STACK_CAPTURES {
            let mut caps = [None; STACK_CAPTURES];
            f(&mut caps[..n])
        } else {
            f(&mut vec![None; n])
        }
    }

    /// The keyword's span, the escapes' spans written into `caps`.
    fn locate(&self, line: &str, caps: &mut [Option<Span>]) -> Option<Span> {
        let mut walk = Walk {
            prefix: self,
            line,
            steps: 0,
        };
        match walk.from(0, 0, caps) {
            Ok(found) => found,
            Err(OutOfSteps) => self.locate_by_regex(line, caps),
        }
    }

    /// What [`PgPrefix::locate`] finds, by the regex.
    fn locate_by_regex(&self, line: &str, caps: &mut [Option<Span>]) -> Option<Span> {
        let found = self.head.captures(line)?;
        let sev = found.name("sev")?;
        for (i, span) in caps.iter_mut().enumerate() {
            *span = found.get(i + 1).map(|m| (m.start(), m.end()));
        }
        Some((sev.start(), sev.end()))
    }
}

/// The hand reader gave up on a line.
struct OutOfSteps;

/// One line being read against a prefix's pieces, depth first in the regex's order of preference.
struct Walk<'a> {
    prefix: &'a PgPrefix,
    line: &'a str,
    steps: usize,
}

impl Walk<'_> {
    /// Read pieces `i..` from `pos`: the keyword's span, or `None` when no choice reads the line.
    fn from(
        &mut self,
        i: usize,
        pos: usize,
        caps: &mut [Option<Span>],
    ) -> Result<Option<Span>, OutOfSteps> {
        if self.prefix.optional_from == Some(i) {
            if let Some(found) = self.piece(i, pos, caps)? {
                return Ok(Some(found));
            }
            for piece in &self.prefix.pieces[i..] {
                if let Piece::Esc { slot, .. } = piece {
                    caps[*slot] = None;
                }
            }
            return Ok(self.keyword(pos));
        }
        self.piece(i, pos, caps)
    }

    fn piece(
        &mut self,
        i: usize,
        pos: usize,
        caps: &mut [Option<Span>],
    ) -> Result<Option<Span>, OutOfSteps> {
        let b = self.line.as_bytes();
        let (ends, slot) = match self.prefix.pieces.get(i) {
            None => return Ok(self.keyword(pos)),
            Some(Piece::Lit(lit)) => {
                // Byte by byte: literals are a few bytes, and libc's memcmp call costs more.
                let fits = b
                    .get(pos..pos + lit.len())
                    .is_some_and(|t| t.iter().zip(lit.iter()).all(|(x, y)| x == y));
                if !fits {
                    return Ok(None);
                }
                return self.from(i + 1, pos + lit.len(), caps);
            }
            Some(Piece::Pad) => {
                let spaces = b
                    .get(pos..)
                    .map_or(0, |t| t.iter().take_while(|&&c| c == b' ').count());
                let mut ends = Ends::default();
                ends.push(Seg::Down(pos, pos + spaces));
                (ends, None)
            }
            Some(Piece::Esc { escape, slot }) => (escape.ends(b, pos), Some(*slot)),
        };
        // What must stand at the end of this piece for the rest to have a chance: the next
        // literal's first byte (not across `%q`, whose part may be skipped).
        let next = match self.prefix.pieces.get(i + 1) {
            Some(Piece::Lit(lit)) if self.prefix.optional_from != Some(i + 1) => {
                lit.first().copied()
            }
            _ => None,
        };
        for seg in ends.segs.into_iter().flatten() {
            for end in seg.ends() {
                if let Some(found) = self.attempt(i, pos, end, slot, next, caps)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// Piece `i`, started at `pos`, ends at `end`: read the rest from there.
    fn attempt(
        &mut self,
        i: usize,
        pos: usize,
        end: usize,
        slot: Option<usize>,
        next: Option<u8>,
        caps: &mut [Option<Span>],
    ) -> Result<Option<Span>, OutOfSteps> {
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            return Err(OutOfSteps);
        }
        let b = self.line.as_bytes();
        if next.is_some_and(|n| b.get(end) != Some(&n)) || !self.line.is_char_boundary(end) {
            return Ok(None);
        }
        if let Some(slot) = slot {
            caps[slot] = Some((pos, end));
        }
        self.from(i + 1, end, caps)
    }

    /// A severity or continuation keyword at `pos`, followed by `: `.
    fn keyword(&self, pos: usize) -> Option<Span> {
        let b = self.line.as_bytes().get(pos..)?;
        let n = b
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            .count();
        let word = self.line.get(pos..pos + n)?;
        (b.get(n..n + 2) == Some(b": ") && is_keyword(word)).then_some((pos, pos + n))
    }
}

/// A prefix translated: its regex fragment (one capture group per escape), its pieces for the
/// hand reader, and the escapes in capture order.
struct Translated {
    pattern: String,
    pieces: Vec<Piece>,
    optional_from: Option<usize>,
    escapes: Vec<Escape>,
}

/// The prefix → its regex fragment and its pieces.
fn translate(prefix: &str) -> Result<Translated, PgPrefixError> {
    let mut out = String::new();
    let mut pieces = Vec::new();
    let mut escapes = Vec::new();
    let mut literal = String::new();
    let mut optional_from = None;
    let flush = |literal: &mut String, out: &mut String, pieces: &mut Vec<Piece>| {
        if !literal.is_empty() {
            out.push_str(&regex::escape(literal));
            pieces.push(Piece::Lit(literal.as_bytes().into()));
            literal.clear();
        }
    };
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
        flush(&mut literal, &mut out, &mut pieces);
        if e == 'q' {
            if optional_from.is_none() {
                out.push_str("(?:");
                optional_from = Some(pieces.len());
            }
            continue;
        }
        let escape = Escape::from_char(e).ok_or(PgPrefixError::UnknownEscape {
            escape: e,
            column: column + 1,
        })?;
        let slot = escapes.len();
        escapes.push(escape);
        if padded {
            out.push_str(&format!(" *({}) *", escape.pattern()));
            pieces.extend([Piece::Pad, Piece::Esc { escape, slot }, Piece::Pad]);
        } else {
            out.push_str(&format!("({})", escape.pattern()));
            pieces.push(Piece::Esc { escape, slot });
        }
    }
    flush(&mut literal, &mut out, &mut pieces);
    if optional_from.is_some() {
        out.push_str(")?");
    }
    Ok(Translated {
        pattern: out,
        pieces,
        optional_from,
        escapes,
    })
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

    /// Prefixes for the property test: the common ones and every escape, padded and adjacent.
    const EXOTIC_PREFIXES: [&str; 6] = [
        "%m [%-6p] %%%e %c %v %x %Q (%b) ",
        "%n %a%i:%L %s ",
        "%t %r %P %q[%c]%u ",
        "%a%b%i ",
        "%m [%p] %-10u %10d ",
        "%q%u %d %h ",
    ];

    /// Values an escape may print, the awkward ones included (empty, separators inside, a
    /// keyword inside, non-ASCII, digits where letters go).
    fn values(escape: char) -> &'static [&'static str] {
        match escape {
            'm' => &[
                "2026-11-28 14:00:01.123 UTC",
                "2026-11-28 14:00:01.123",
                "2026-11-28 14:00:01.123 +05:30",
                "2026-11-28 14:00:01.123 -0330",
                "2026-11-28 14:00:01.123 ABCDEFGH",
                "2026-11-28 14:00:01.123 -03",
                "2026-11-28 14:00:01",
            ],
            't' | 's' => &[
                "2026-11-28 14:00:01 CEST",
                "2026-11-28 14:00:01",
                "2026-11-28 14:00:01 +0530",
                "2026-11-28 14:00:01.123 UTC",
                "2026-11-28 14:00:01 LOG",
            ],
            'n' => &["1796220001.123", "1796220001", "17.9a", ".5"],
            'p' | 'l' | 'x' | 'P' => &["4242", "", "-1", "42a", "4 2", "0"],
            'u' | 'd' | 'h' => &[
                "newsletter",
                "",
                "a@b",
                "a,b",
                "a b",
                "é",
                "[unknown]",
                "x@y@z",
                "LOG:",
            ],
            'a' | 'b' | 'i' => &["pgbench", "", "client backend", "a LOG:  b", "x: y", "é"],
            'r' => &[
                "[local]",
                "10.0.0.1(5432)",
                "host",
                "",
                "a(b)",
                "h(1)x",
                "[local]x",
            ],
            'c' => &["6747f0a1.1092", "abc", "6747f0a1.", "ab.cd.ef", "AB.CD"],
            'v' => &["3/17", "", "-1/-2", "3/", "/4", "3/1x"],
            'e' => &["53300", "5330", "ABCDE1", "abcde"],
            'Q' => &["-77", "0", "", "-", "12", "--1"],
            _ => &["127.0.0.1", "", "a b", "é"],
        }
    }

    const KEYWORDS: [&str; 8] = [
        "LOG", "ERROR", "DETAIL", "DEBUG1", "LOGX", "log", "", "HINT",
    ];
    const AFTER_KEYWORD: [&str; 4] = [": ", ":  ", ":", " "];
    const TAILS: [&str; 5] = ["x", " ERROR:  y", "", "@a LOG:  b", "é"];

    /// A line as the prefix would print it, each escape's value, the keyword and what follows
    /// chosen by `picks`; `%q` sometimes ends the prefix as for non-session processes.
    fn render(prefix: &str, picks: &[usize]) -> String {
        let mut picks = picks.iter().copied().cycle();
        let mut pick = |n: usize| picks.next().unwrap_or(0) % n;
        let mut out = String::new();
        let mut chars = prefix.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut width = String::new();
            while let Some(&p) = chars.peek().filter(|p| **p == '-' || p.is_ascii_digit()) {
                width.push(p);
                chars.next();
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('q') if pick(3) == 0 => break,
                Some('q') => {}
                Some(e) => {
                    let pool = values(e);
                    let value = pool[pick(pool.len())];
                    let pad = width.trim_start_matches('-').parse::<usize>().unwrap_or(0);
                    let spaces = " ".repeat(pad.saturating_sub(value.len()) * pick(2));
                    if width.starts_with('-') {
                        out.push_str(&format!("{value}{spaces}"));
                    } else {
                        out.push_str(&format!("{spaces}{value}"));
                    }
                }
                None => {}
            }
        }
        out.push_str(KEYWORDS[pick(KEYWORDS.len())]);
        out.push_str(AFTER_KEYWORD[pick(AFTER_KEYWORD.len())]);
        out.push_str(TAILS[pick(TAILS.len())]);
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// The hand reader takes the regex's choices: same keyword, same captures.
        #[test]
        fn the_hand_reader_reads_as_the_regex(
            which in 0..COMMON_PREFIXES.len() + EXOTIC_PREFIXES.len(),
            picks in proptest::collection::vec(0usize..1000, 1..24),
            cut in 0usize..200,
            noise in "\\PC{0,40}",
        ) {
            let source = COMMON_PREFIXES.iter().chain(EXOTIC_PREFIXES.iter()).nth(which).unwrap();
            let p = PgPrefix::compile(source).unwrap();
            let line = render(source, &picks);
            let cut = (0..=cut.min(line.len())).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            for line in [line.clone(), format!("{}{noise}", &line[..cut]), noise.clone()] {
                let (mut by_hand, mut by_regex) = (vec![None; p.escapes.len()], vec![None; p.escapes.len()]);
                let mut walk = Walk { prefix: &p, line: &line, steps: 0 };
                let hand = walk.from(0, 0, &mut by_hand).ok().flatten();
                let regex = p.locate_by_regex(&line, &mut by_regex);
                proptest::prop_assert_eq!(hand, regex, "{:?} on {:?}", source, line);
                if hand.is_some() {
                    proptest::prop_assert_eq!(&by_hand, &by_regex, "{:?} on {:?}", source, line);
                }
            }
        }
    }

    #[test]
    fn keyword_matchers_agree_with_the_lists() {
        for word in SEVERITIES.iter().chain(CONTINUATIONS.iter()) {
            assert!(is_keyword(word), "{word}");
            assert_eq!(
                is_continuation_keyword(word),
                CONTINUATIONS.contains(word),
                "{word}"
            );
        }
        for word in ["", "LOGS", "DEBUG6", "log", "DETAILS"] {
            assert!(
                !is_keyword(word) && !is_continuation_keyword(word),
                "{word}"
            );
        }
    }

    #[test]
    fn pathological_prefixes_fall_back_to_the_regex() {
        let p = PgPrefix::compile("%a%a%a%a ").unwrap();
        // No keyword anywhere: every split of the line into four apps is tried.
        let hopeless = "ab ".repeat(400);
        let mut caps = vec![None; 4];
        let mut walk = Walk {
            prefix: &p,
            line: &hopeless,
            steps: 0,
        };
        assert!(matches!(walk.from(0, 0, &mut caps), Err(OutOfSteps)));
        assert!(!p.matches(&hopeless));
        let long = format!("{hopeless}LOG:  x");
        let head = p.read(&long).unwrap();
        assert_eq!(head.severity, "LOG");
        assert_eq!(
            head.fields.get("app").and_then(Value::as_str),
            Some(hopeless.trim())
        );
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
