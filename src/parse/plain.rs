//! Everything else: a leading timestamp of any common layout, a level word, Node stack traces.
//!
//! Takes one entry's text (its lines joined with `\n`) and gives a [`Parsed`]: the time from a
//! leading timestamp (see `timestamp.rs`), the level from a leading `[error]` / `ERROR` / `WARN:` /
//! `level=warn` token, else from an uppercase level word (`ERROR`, `FATAL`, `WARN`) among the words,
//! else `Error` for a Node error line or a line naming an `Exception`. The message is the text after
//! the timestamp and a leading level token. Also the fallback reader for every entry another format
//! rejects (flagged malformed by the parser), so it must accept any text and never fail.

use std::sync::LazyLock;

use memchr::memmem;

use crate::event::{Level, Timestamp};
use crate::parse::multiline;
use crate::parse::timestamp;
use crate::parse::{EntryFormat, Parsed};

/// The plain-text reader; `now` fills in the year for layouts without one.
#[derive(Debug, Clone)]
pub struct Plain {
    pub now: Timestamp,
}

impl EntryFormat for Plain {
    fn continues(&self, entry: &str, line: &str) -> bool {
        multiline::continues_text(first_line(entry), line)
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        Ok(parse_text(entry, self.now))
    }
}

/// The first line of an entry.
pub fn first_line(entry: &str) -> &str {
    entry.split('\n').next().unwrap_or(entry)
}

/// Read any text: leading timestamp, level, message. Never fails.
pub fn parse_text(entry: &str, now: Timestamp) -> Parsed {
    let mut rest = entry;
    let mut ts = None;
    if let Some((t, n)) = timestamp::parse_leading(entry, now) {
        ts = Some(t);
        rest = &entry[n..];
    }
    rest = skip_separators(rest);
    let mut level = None;
    if let Some((lvl, n)) = leading_level(rest) {
        level = Some(lvl);
        rest = skip_separators(&rest[n..]);
    }
    if level.is_none() {
        level = guess_level(first_line(entry));
    }
    Parsed {
        ts,
        level,
        message: rest.to_string(),
        ..Parsed::default()
    }
}

fn skip_separators(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '-', '|', ':'])
}

/// A level token at the very start: `[error]`, `[WARN]`, `ERROR`, `ERROR:`, `<warn>`, `level=error`.
pub fn leading_level(s: &str) -> Option<(Level, usize)> {
    let bytes = s.as_bytes();
    let (open, close) = match bytes.first()? {
        b'[' => (1, b']'),
        b'<' => (1, b'>'),
        _ => (0, 0),
    };
    if open == 1 {
        let end = s[1..].find(close as char)? + 1;
        let level = Level::parse_name(&s[1..end])?;
        return Some((level, end + 1));
    }
    if let Some(v) = s.strip_prefix("level=") {
        let end = v.find([' ', '\t']).unwrap_or(v.len());
        let level = Level::parse_name(v[..end].trim_matches('"'))?;
        return Some((level, 6 + end));
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    let word = &s[..end];
    // Only all-caps words: `Info about …` is a sentence, `INFO` is a level.
    if word.len() < 3 || !word.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let level = Level::parse_name(word)?;
    if level == Level::Info && word == "LOG" {
        return None;
    }
    Some((level, end))
}

/// A level from the words of a line when none leads it: uppercase level words, then Node errors and
/// exceptions.
pub fn guess_level(line: &str) -> Option<Level> {
    let hay = line.as_bytes();
    for (finder, level) in LEVEL_WORDS.iter() {
        if has_word(hay, finder) {
            return Some(*level);
        }
    }
    if multiline::is_error_start(line) || EXCEPTION.find(hay).is_some() {
        return Some(Level::Error);
    }
    None
}

/// The level words `guess_level` reads, in precedence order, each searcher built once (building
/// one per line cost more than the search).
static LEVEL_WORDS: LazyLock<[(memmem::Finder<'static>, Level); 6]> = LazyLock::new(|| {
    [
        ("PANIC", Level::Panic),
        ("FATAL", Level::Fatal),
        ("CRITICAL", Level::Fatal),
        ("ERROR", Level::Error),
        ("WARNING", Level::Warn),
        ("WARN", Level::Warn),
    ]
    .map(|(word, level)| (memmem::Finder::new(word), level))
});

static EXCEPTION: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new("Exception"));

/// The finder's needle appears in `hay` as a whole word (not inside a longer identifier).
fn has_word(hay: &[u8], finder: &memmem::Finder<'_>) -> bool {
    let len = finder.needle().len();
    finder.find_iter(hay).any(|at| {
        let before = at.checked_sub(1).and_then(|i| hay.get(i));
        let after = hay.get(at + len);
        let is_ident = |b: Option<&u8>| b.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        !is_ident(before) && !is_ident(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_jiff("2026-11-28T17:00:00Z".parse().unwrap())
    }

    #[test]
    fn apache_error_log_lines() {
        let p = parse_text(
            "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
            now(),
        );
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.message, "mod_jk child workerEnv in error state 6");
        assert_eq!(
            p.ts.unwrap(),
            Timestamp::from_jiff("2005-12-04T04:47:44Z".parse().unwrap())
        );
        let p = parse_text(
            "[Sun Dec 04 04:51:08 2005] [notice] jk2_init() Found child",
            now(),
        );
        assert_eq!(p.level, Some(Level::Notice));
    }

    #[test]
    fn log4j_lines() {
        let p = parse_text(
            "2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@688] - Send worker leaving thread",
            now(),
        );
        assert_eq!(p.level, Some(Level::Warn));
        assert!(p.message.starts_with("[SendWorker"));
        assert_eq!(
            p.ts.unwrap(),
            Timestamp::from_jiff("2015-07-29T19:04:29.071Z".parse().unwrap())
        );
    }

    #[test]
    fn levels_from_words_and_exceptions() {
        assert_eq!(
            parse_text("something ERROR happened", now()).level,
            Some(Level::Error)
        );
        assert_eq!(
            parse_text("java.io.IOException: broken pipe", now()).level,
            Some(Level::Error)
        );
        assert_eq!(
            parse_text("TypeError: x is undefined\n    at f (a.js:1:1)", now()).level,
            Some(Level::Error)
        );
        assert_eq!(
            parse_text("FATAL ERROR: Reached heap limit", now()).level,
            Some(Level::Fatal)
        );
        assert_eq!(
            parse_text("level=warn msg=\"disk almost full\"", now()).level,
            Some(Level::Warn)
        );
        // Lowercase words in prose and identifiers are not levels.
        assert_eq!(
            parse_text("no errors here, ERRORS_SEEN=0", now()).level,
            None
        );
        assert_eq!(parse_text("Information only", now()).level, None);
        let p = parse_text("pg_ctl: could not start server", now());
        assert_eq!((p.ts, p.level), (None, None));
        assert_eq!(p.message, "pg_ctl: could not start server");
    }
}
