//! Regex terms (`/timeout after \d+ms/`): compile them within bounds, decide them on the raw
//! event's lines, and name the literals the index can narrow them by.
//!
//! Takes the pattern as written between the slashes; gives a [`Pattern`] or a [`PatternError`]
//! with the offset of the offending character (the planner turns it into a query column).
//! Semantics follow `rg` on the source file: each line of the event is matched on its own
//! (a match never spans lines, `^`/`$` are line ends), with ripgrep's smart case.
//!
//! Narrowing rests on regex-syntax's literal extraction: a finite set of prefix (else suffix)
//! literals of which every match contains one. Each is folded as the index folds tokens and
//! planned like a case-insensitive literal (see `plan`), so the candidates are a superset of the
//! answer; the regex itself decides. Must not: build tantivy queries or read documents.

use crate::query::plan::Literal;
use crate::store::schema;

/// Compiled size a regex term may take (bytes of the regex crate's automata): a query must not be
/// able to exhaust memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy DFA cache of one regex term.
const REGEX_DFA_LIMIT: usize = 2 << 20;
/// Nesting depth of groups, classes and repetitions in a regex term.
const REGEX_NEST_LIMIT: u32 = 64;

/// A regex term, matched against each line of the raw event as `rg` matches the lines of a
/// file, with smart case like [`Literal`]: a pattern with an uppercase literal character is
/// case-sensitive, one without is not (`\S` or `\W` do not count; `(?i)` and `(?-i)` override).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub case_insensitive: bool,
    regex: regex::Regex,
    /// Folded literals of which every match contains one (empty: none known, nothing narrows).
    narrowing: Vec<Literal>,
}

/// Why a regex term is refused: a message and the 0-based char offset in the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        use regex_syntax::ast::parse::ParserBuilder;
        use regex_syntax::hir::translate::TranslatorBuilder;

        let at = |span: &regex_syntax::ast::Span, message: String| PatternError {
            offset: span.start.column.saturating_sub(1),
            message,
        };
        let ast = ParserBuilder::new()
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .parse(source)
            .map_err(|e| at(e.span(), format!("invalid regex: {}", e.kind())))?;
        let case_insensitive = !has_uppercase_literal(&ast);
        let translate = |ci: bool| {
            TranslatorBuilder::new()
                .case_insensitive(ci)
                .build()
                .translate(source, &ast)
                .map_err(|e| at(e.span(), format!("invalid regex: {}", e.kind())))
        };
        // Literals come from the case-sensitive reading (case variants would blow the extractor's
        // limits) and are folded as the index folds: a case-insensitive match holds a case
        // variant of one of them, whose folded ASCII tokens are the same terms.
        let hir = translate(false)?;
        if has_newline_literal(&hir) {
            return Err(PatternError {
                offset: source
                    .find("\\n")
                    .map_or(0, |b| source[..b].chars().count()),
                message:
                    "a regex matches within one line: a literal `\\n` is not allowed (as in rg)"
                        .to_string(),
            });
        }
        let narrowing = required_literals(&hir);
        translate(case_insensitive)?;
        let regex = regex::RegexBuilder::new(source)
            .case_insensitive(case_insensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| PatternError {
                offset: 0,
                message: match e {
                    regex::Error::CompiledTooBig(limit) => format!(
                        "regex too big: it compiles to more than {limit} bytes (make it more specific)"
                    ),
                    other => format!("invalid regex: {other}"),
                },
            })?;
        Ok(Pattern {
            source: source.to_string(),
            case_insensitive,
            regex,
            narrowing,
        })
    }

    /// Folded literals of which every match contains one (empty: the index cannot narrow).
    pub fn narrowing(&self) -> &[Literal] {
        &self.narrowing
    }

    /// Does some line of `haystack` (lines joined with `\n`) match?
    pub fn is_match(&self, haystack: &str) -> bool {
        haystack.split('\n').any(|line| self.regex.is_match(line))
    }

    /// Byte ranges of every match in every line, for highlighting.
    pub fn find_all(&self, haystack: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        for line in haystack.split('\n') {
            out.extend(
                self.regex
                    .find_iter(line)
                    .filter(|m| !m.is_empty())
                    .map(|m| (start + m.start(), start + m.end())),
            );
            start += line.len() + 1;
        }
        out
    }
}

/// Does the pattern spell a line break as a literal (which no single line holds)?
fn has_newline_literal(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Repetition(rep) => has_newline_literal(&rep.sub),
        HirKind::Capture(cap) => has_newline_literal(&cap.sub),
        HirKind::Concat(items) | HirKind::Alternation(items) => {
            items.iter().any(has_newline_literal)
        }
        HirKind::Empty | HirKind::Class(_) | HirKind::Look(_) => false,
    }
}

/// ripgrep's smart-case test: does the pattern spell an uppercase character as a literal (alone
/// or in a bracketed class)?
fn has_uppercase_literal(ast: &regex_syntax::ast::Ast) -> bool {
    use regex_syntax::ast::Ast;
    match ast {
        Ast::Literal(lit) => lit.c.is_uppercase(),
        Ast::ClassBracketed(class) => class_has_uppercase(&class.kind),
        Ast::Repetition(rep) => has_uppercase_literal(&rep.ast),
        Ast::Group(group) => has_uppercase_literal(&group.ast),
        Ast::Alternation(alt) => alt.asts.iter().any(has_uppercase_literal),
        Ast::Concat(concat) => concat.asts.iter().any(has_uppercase_literal),
        Ast::Empty(_)
        | Ast::Flags(_)
        | Ast::Dot(_)
        | Ast::Assertion(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_) => false,
    }
}

fn class_has_uppercase(set: &regex_syntax::ast::ClassSet) -> bool {
    use regex_syntax::ast::{ClassSet, ClassSetItem};
    fn item(it: &ClassSetItem) -> bool {
        match it {
            ClassSetItem::Literal(lit) => lit.c.is_uppercase(),
            ClassSetItem::Range(r) => r.start.c.is_uppercase() || r.end.c.is_uppercase(),
            ClassSetItem::Bracketed(b) => class_has_uppercase(&b.kind),
            ClassSetItem::Union(u) => u.items.iter().any(item),
            ClassSetItem::Empty(_)
            | ClassSetItem::Ascii(_)
            | ClassSetItem::Unicode(_)
            | ClassSetItem::Perl(_) => false,
        }
    }
    match set {
        ClassSet::Item(it) => item(it),
        ClassSet::BinaryOp(op) => class_has_uppercase(&op.lhs) || class_has_uppercase(&op.rhs),
    }
}

/// Literals, folded as the index folds tokens, of which every match of `hir` contains one: its
/// prefix literals, else its suffix literals; empty when either set is infinite or holds the
/// empty string (then the index cannot narrow the regex).
fn required_literals(hir: &regex_syntax::hir::Hir) -> Vec<Literal> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let seq = Extractor::new().kind(kind).extract(hir);
        let Some(literals) = seq.literals() else {
            continue;
        };
        let mut folded: Vec<String> = Vec::new();
        for lit in literals {
            let bytes = lit.as_bytes();
            // A trimmed literal may end inside a character: its valid start is still contained.
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
            };
            let mut out = String::new();
            schema::fold_chars_into(text, &mut out);
            folded.push(out);
        }
        if folded.is_empty() || folded.iter().any(String::is_empty) {
            continue;
        }
        folded.sort();
        folded.dedup();
        return folded.iter().map(|t| Literal::new(t)).collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrowing(p: &str) -> Vec<String> {
        let pattern = Pattern::new(p).unwrap();
        pattern.narrowing().iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn smart_case_counts_only_literal_uppercase() {
        assert!(Pattern::new(r"timeout \d+ms").unwrap().case_insensitive);
        assert!(Pattern::new(r"\S+\W\D").unwrap().case_insensitive);
        assert!(!Pattern::new("Timeout").unwrap().case_insensitive);
        assert!(!Pattern::new("[A-Z]x").unwrap().case_insensitive);
        assert!(Pattern::new("(?i)TIMEOUT").unwrap().is_match("timeout"));
        assert!(!Pattern::new("(?-i)timeout").unwrap().is_match("TIMEOUT"));
    }

    #[test]
    fn required_literals_are_folded_prefixes_or_suffixes() {
        assert_eq!(narrowing(r"Timeout after \d+ms"), ["timeout after "]);
        assert_eq!(narrowing("(GET|post) /api"), ["get /api", "post /api"]);
        assert_eq!(narrowing(r".*\d+ms"), ["ms"]);
        assert!(narrowing(r"\d+").is_empty());
        assert!(narrowing("a?").is_empty());
    }

    #[test]
    fn lines_are_matched_one_by_one() {
        let p = Pattern::new("^at ").unwrap();
        assert!(p.is_match("Error\nat main"));
        assert_eq!(p.find_all("Error\nat main"), [(6, 9)]);
        assert!(!Pattern::new(r"Error\sat").unwrap().is_match("Error\nat"));
    }

    /// The compiled-size bound at its edge: the largest `a{n}` that fits compiles and matches,
    /// one more repetition is refused saying the bound.
    #[test]
    fn the_regex_size_bound_holds_at_its_edge() {
        let fits = |n: usize| Pattern::new(&format!("a{{{n}}}")).is_ok();
        let (mut ok, mut too_big) = (1usize, 2usize);
        while fits(too_big) {
            ok = too_big;
            too_big *= 2;
            assert!(too_big < 1 << 24, "no bound met");
        }
        while too_big - ok > 1 {
            let mid = (ok + too_big) / 2;
            if fits(mid) {
                ok = mid;
            } else {
                too_big = mid;
            }
        }
        let edge = Pattern::new(&format!("a{{{ok}}}")).unwrap();
        assert!(edge.is_match(&"a".repeat(ok)));
        assert!(!edge.is_match(&"a".repeat(ok - 1)));
        let e = Pattern::new(&format!("a{{{too_big}}}")).unwrap_err();
        assert!(
            e.message.contains("too big") && e.message.contains(&REGEX_SIZE_LIMIT.to_string()),
            "{e:?}"
        );
    }

    #[test]
    fn oversized_and_invalid_patterns_are_refused_with_an_offset() {
        let e = Pattern::new("(a{1000}){1000}").unwrap_err();
        assert!(e.message.contains("too big"), "{e:?}");
        let e = Pattern::new("ab(c").unwrap_err();
        assert_eq!(e.offset, 2, "{e:?}");
        let e = Pattern::new(r"é\nb").unwrap_err();
        assert_eq!(e.offset, 1, "{e:?}");
        assert!(e.message.contains("one line"), "{e:?}");
    }
}
