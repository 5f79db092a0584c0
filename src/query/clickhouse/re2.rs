//! Rust regex (as `regex-syntax` reads it) → an RE2 pattern that ClickHouse's `match` runs with
//! the same answer.
//!
//! The translation goes through the HIR, not the pattern text: by then `regex-syntax` has
//! expanded Unicode classes (`\d`, `\w`, `\p{L}`), applied case folding (`(?i)` and smart case
//! become explicit classes) and resolved escapes, so RE2 never has to agree with Rust on what a
//! class or a flag means. Every class is written as `\x{…}` ranges; every literal character that
//! is not an ASCII letter or digit becomes a one-character class, so neither RE2 nor ClickHouse's
//! own pattern analyser (which looks for required substrings before calling RE2, and gets `(?i)`
//! wrong on 18.16) meets an escape or a flag.
//!
//! Two modes: [`Mode::Lines`] for `/regex/` terms, which loggrep matches on each line of the raw
//! event like `rg` (classes lose `\n`, so no match can span lines; `^`/`$` become line anchors
//! under `(?m)`; ClickHouse runs RE2 with `.` matching `\n`, which no longer matters); and
//! [`Mode::Text`] for case-insensitive literals, which are searched in the whole text.
//!
//! What RE2 cannot say the same way is refused with an [`Untranslatable`] message, never
//! approximated: Unicode word boundaries (`\b` is Unicode-aware in Rust, ASCII in RE2), CRLF
//! anchors, word-start/end assertions, repetition counts over 1000, non-ASCII byte classes.
//! Must not: touch SQL or the server (the pattern is a bound value).

use std::fmt::Write as _;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// RE2's largest repetition count.
const RE2_MAX_REPEAT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Match within one line (a `/regex/` term).
    Lines,
    /// Match anywhere in the text (a case-insensitive literal).
    Text,
}

/// Why a regex has no faithful RE2 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable(pub String);

/// The RE2 pattern of `hir`.
pub fn translate(hir: &Hir, mode: Mode) -> Result<String, Untranslatable> {
    let mut out = String::new();
    if mode == Mode::Lines {
        out.push_str("(?m)");
    }
    emit(hir, mode, &mut out)?;
    Ok(out)
}

/// A case-insensitive literal (Unicode simple case folding, as [`crate::query::plan::Literal`]
/// folds) as an RE2 pattern over the whole text.
pub fn folded_literal(text: &str) -> Result<String, Untranslatable> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(&regex_syntax::escape(text))
        .map_err(|e| Untranslatable(format!("cannot fold `{text}`: {e}")))?;
    translate(&hir, Mode::Text)
}

fn emit(hir: &Hir, mode: Mode, out: &mut String) -> Result<(), Untranslatable> {
    match hir.kind() {
        HirKind::Empty => out.push_str("(?:)"),
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0).map_err(|_| {
                Untranslatable("a literal byte that is not UTF-8 (from `(?-u)`)".into())
            })?;
            for c in text.chars() {
                if c.is_ascii_alphanumeric() {
                    out.push(c);
                } else {
                    let _ = write!(out, "[\\x{{{:x}}}]", u32::from(c));
                }
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            let ranges: Vec<(u32, u32)> = class
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect();
            write_class(&ranges, mode, out);
        }
        HirKind::Class(Class::Bytes(class)) => {
            let mut ranges = Vec::new();
            for r in class.ranges() {
                if r.end() > 0x7F {
                    return Err(Untranslatable(
                        "a byte class beyond ASCII (from `(?-u)`)".into(),
                    ));
                }
                ranges.push((u32::from(r.start()), u32::from(r.end())));
            }
            write_class(&ranges, mode, out);
        }
        HirKind::Look(look) => out.push_str(match (look, mode) {
            (Look::Start | Look::StartLF, Mode::Lines) => "^",
            (Look::End | Look::EndLF, Mode::Lines) => "$",
            (Look::Start, Mode::Text) => "\\A",
            (Look::End, Mode::Text) => "\\z",
            (Look::WordAscii, _) => "\\b",
            (Look::WordAsciiNegate, _) => "\\B",
            (Look::WordUnicode | Look::WordUnicodeNegate, _) => {
                return Err(Untranslatable(
                    "`\\b`/`\\B` are Unicode-aware here but ASCII-only in ClickHouse's RE2; write `(?-u:\\b)` for ASCII word boundaries".into(),
                ));
            }
            _ => {
                return Err(Untranslatable(format!(
                    "the assertion {look:?} has no RE2 equivalent"
                )));
            }
        }),
        HirKind::Repetition(rep) => {
            let too_many = rep.min > RE2_MAX_REPEAT || rep.max.is_some_and(|m| m > RE2_MAX_REPEAT);
            if too_many {
                return Err(Untranslatable(format!(
                    "a repetition count over {RE2_MAX_REPEAT} (RE2's limit)"
                )));
            }
            out.push_str("(?:");
            emit(&rep.sub, mode, out)?;
            out.push(')');
            match (rep.min, rep.max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (n, None) => {
                    let _ = write!(out, "{{{n},}}");
                }
                (n, Some(m)) if n == m => {
                    let _ = write!(out, "{{{n}}}");
                }
                (n, Some(m)) => {
                    let _ = write!(out, "{{{n},{m}}}");
                }
            }
            if !rep.greedy {
                out.push('?');
            }
        }
        HirKind::Capture(cap) => {
            out.push_str("(?:");
            emit(&cap.sub, mode, out)?;
            out.push(')');
        }
        HirKind::Concat(items) => {
            for item in items {
                emit(item, mode, out)?;
            }
        }
        HirKind::Alternation(items) => {
            out.push_str("(?:");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(item, mode, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// `[…]` of inclusive code point ranges; in [`Mode::Lines`] without `\n`. An empty class is one
/// that matches nothing.
fn write_class(ranges: &[(u32, u32)], mode: Mode, out: &mut String) {
    const NEWLINE: u32 = 0x0A;
    let mut kept: Vec<(u32, u32)> = Vec::with_capacity(ranges.len() + 1);
    for &(start, end) in ranges {
        if mode == Mode::Lines && start <= NEWLINE && NEWLINE <= end {
            if start < NEWLINE {
                kept.push((start, NEWLINE - 1));
            }
            if NEWLINE < end {
                kept.push((NEWLINE + 1, end));
            }
        } else {
            kept.push((start, end));
        }
    }
    if kept.is_empty() {
        out.push_str("[^\\x{0}-\\x{10ffff}]");
        return;
    }
    out.push('[');
    for (start, end) in kept {
        if start == end {
            let _ = write!(out, "\\x{{{start:x}}}");
        } else {
            let _ = write!(out, "\\x{{{start:x}}}-\\x{{{end:x}}}");
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pattern: &str, case_insensitive: bool) -> Result<String, Untranslatable> {
        let hir = regex_syntax::ParserBuilder::new()
            .case_insensitive(case_insensitive)
            .build()
            .parse(pattern)
            .unwrap();
        translate(&hir, Mode::Lines)
    }

    #[test]
    fn literals_and_classes_become_ranges_without_escapes_or_flags() {
        assert_eq!(lines("ab1", false).unwrap(), "(?m)ab1");
        assert_eq!(lines("a.b", false).unwrap().matches("\\x{a}").count(), 0);
        assert_eq!(
            lines("time(out)? after", false).unwrap(),
            "(?m)time(?:(?:out))?[\\x{20}]after"
        );
        // Smart case arrives folded: no `(?i)` (which ClickHouse 18.16's analyser mishandles).
        let folded = lines("k", true).unwrap();
        assert!(!folded.contains("(?i)"), "{folded}");
        assert!(folded.contains("\\x{212a}"), "{folded}");
        // `[^x]` would match a line break: it does not here.
        assert_eq!(
            lines("[^x]", false).unwrap(),
            "(?m)[\\x{0}-\\x{9}\\x{b}-\\x{77}\\x{79}-\\x{10ffff}]"
        );
        assert_eq!(lines("^a$", false).unwrap(), "(?m)^a$");
        assert_eq!(lines("a{2,5}?", false).unwrap(), "(?m)(?:a){2,5}?");
    }

    #[test]
    fn what_re2_says_otherwise_is_refused() {
        assert!(
            lines(r"\bword\b", false)
                .unwrap_err()
                .0
                .contains("Unicode-aware")
        );
        assert_eq!(lines(r"(?-u:\b)word", false).unwrap(), "(?m)\\bword");
        assert!(lines("a{1001}", false).unwrap_err().0.contains("1000"));
    }

    #[test]
    fn folded_literals_keep_line_breaks_and_anchor_nothing() {
        let p = folded_literal("a\nks").unwrap();
        assert!(!p.starts_with("(?m)"), "{p}");
        assert!(p.contains("[\\x{a}]"), "{p}");
        assert!(p.contains("\\x{17f}"), "{p}");
    }
}
