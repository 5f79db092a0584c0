//! The scan's line stage: one literal search over a raw block of whole lines, before any parsing.
//!
//! Takes a block of a file's bytes (cut at a line end) and gives the file offsets of the lines that
//! hold a literal of some rule, or of the parser's level probe ([`LEVEL_PROBE_LITERALS`]), plus the
//! number of lines the pack's text patterns match: a rule's literal on the line and, when the rule
//! has a regex, the regex matching the line. That count is what `rg -c -f` counts with the
//! patterns `rules export --rg` writes, so the two can be compared line for line.
//!
//! It must not decide matches: services, levels and field conditions need the parsed event, which
//! the [`Matcher`](crate::detect::matcher::Matcher) confirms afterwards.

use std::sync::Arc;

use crate::detect::prefilter::{Prefilter, PrefilterError};
use crate::detect::rules::RuleSet;
use crate::parse::{LEVEL_PROBE_LITERALS, LineHit};

/// A pack's literals and the level probe's, compiled for whole blocks.
#[derive(Debug)]
pub struct LineScanner {
    rules: Arc<RuleSet>,
    prefilter: Prefilter,
}

/// What the line stage found in one block.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockHits {
    /// The lines holding a literal, in file order.
    pub lines: Vec<LineHit>,
    /// Lines some rule's text pattern matches.
    pub matching_lines: u64,
}

impl LineScanner {
    pub fn new(rules: Arc<RuleSet>) -> Result<LineScanner, PrefilterError> {
        let probe: Vec<String> = LEVEL_PROBE_LITERALS.iter().map(|s| s.to_string()).collect();
        let groups = rules
            .rules
            .iter()
            .map(|r| r.literals.as_slice())
            .chain([probe.as_slice()]);
        let prefilter = Prefilter::of_groups(groups)?;
        Ok(LineScanner { rules, prefilter })
    }

    /// Scan `block`, which starts at file offset `offset` and holds whole lines (the last may lack
    /// its newline).
    pub fn scan(&self, offset: u64, block: &[u8]) -> BlockHits {
        let n = self.rules.rules.len();
        let mut hit = vec![false; n + 1];
        let mut out = BlockHits::default();
        self.prefilter
            .lines_with_hits(block, &mut hit, |start, end, hit| {
                let bytes = &block[start..end];
                let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                let line = String::from_utf8_lossy(bytes);
                let matches =
                    self.rules.rules.iter().zip(hit).any(|(rule, &h)| {
                        h && rule.regex.as_ref().is_none_or(|re| re.is_match(&line))
                    });
                out.matching_lines += u64::from(matches);
                out.lines.push(LineHit {
                    offset: offset + start as u64,
                    strong: matches || hit[n],
                });
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Arc<RuleSet> {
        let text = r#"
[[rule]]
id = "clients"
class = "db-connection"
severity = "critical"
title = "t"
literals = ["too many clients"]
regex = 'FATAL:\s+sorry, too many clients'
runbook = "database-connection-issues"

[[rule]]
id = "bounce"
class = "email-delivery"
severity = "warning"
title = "t"
literals = ["email.bounced"]
runbook = "log-analysis"
"#;
        Arc::new(RuleSet::from_files(&[("t.toml".into(), text.into())]).unwrap())
    }

    #[test]
    fn lines_with_literals_are_named_and_text_matches_counted() {
        let scanner = LineScanner::new(rules()).unwrap();
        let block = b"LOG:  fine\n\
FATAL:  sorry, too many clients already\n\
LOG:  statement: SELECT 'too many clients'\n\
{\"type\":\"email.bounced\"}\n\
{\"level\":30,\"msg\":\"ERROR in template\"}\n\
tail without newline email.bounced";
        let hits = scanner.scan(1000, block);
        let starts: Vec<u64> = block
            .split(|b| *b == b'\n')
            .scan(1000u64, |at, line| {
                let start = *at;
                *at += line.len() as u64 + 1;
                Some(start)
            })
            .collect();
        // Line 0 holds nothing; line 2 a literal its rule's regex rejects (weak); line 4 only a
        // level-probe literal (ERROR: strong, it voids the level bound).
        let got: Vec<(u64, bool)> = hits.lines.iter().map(|h| (h.offset, h.strong)).collect();
        assert_eq!(
            got,
            vec![
                (starts[1], true),
                (starts[2], false),
                (starts[3], true),
                (starts[4], true),
                (starts[5], true)
            ]
        );
        // The regex rejects the statement line; the probe literal is no rule's.
        assert_eq!(hits.matching_lines, 3);
    }
}
