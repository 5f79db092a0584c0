//! Stage 1 of matching: one aho-corasick automaton over every literal of every rule.
//!
//! Takes a [`RuleSet`]'s literals, gives for a text the set of rules whose literals occur in it.
//! Literals are exact-case (case folding drops the SIMD Teddy scan: see PERFORMANCE.md), deduplicated
//! across rules, and searched with leftmost-longest semantics; after each hit the search resumes one
//! byte after the hit's start, and every literal that is a prefix of the reported one is counted too.
//! That finds every literal that occurs, as an overlapping search would, while keeping the packed
//! Teddy searcher, which only knows leftmost semantics and, with `heuristic_pattern_limits(false)`,
//! keeps its SIMD scan beyond 64 literals. Where Teddy cannot be built (no SIMD, too many literals)
//! a regular automaton with the same semantics is used.
//!
//! It must not confirm anything: a candidate is only a candidate.

use aho_corasick::{AhoCorasick, Input, MatchKind, packed};

use crate::detect::rules::RuleSet;

enum Engine {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
    /// No literal at all.
    Empty,
}

/// The compiled literal set of a pack.
pub struct Prefilter {
    engine: Engine,
    /// For each distinct literal: itself plus every other literal that is a prefix of it.
    implied: Vec<Vec<usize>>,
    /// For each distinct literal: the rules (indices into the RuleSet) that list it.
    rules_of: Vec<Vec<usize>>,
    literals: Vec<String>,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.engine {
            Engine::Packed(_) => "packed",
            Engine::Automaton(_) => "automaton",
            Engine::Empty => "empty",
        };
        f.debug_struct("Prefilter")
            .field("engine", &engine)
            .field("literals", &self.literals.len())
            .finish()
    }
}

/// Why the automaton could not be built.
#[derive(thiserror::Error, Debug)]
#[error("cannot build the literal prefilter: {0}")]
pub struct PrefilterError(#[from] aho_corasick::BuildError);

impl Prefilter {
    pub fn new(rules: &RuleSet) -> Result<Prefilter, PrefilterError> {
        Prefilter::of_groups(rules.rules.iter().map(|r| r.literals.as_slice()))
    }

    /// A prefilter over groups of literals, a group standing for a rule: group `i` is marked in
    /// `hit[i]`. Rules of a pack and, after them, extra groups (the scan's level-probe literals).
    pub fn of_groups<'a>(
        groups: impl IntoIterator<Item = &'a [String]>,
    ) -> Result<Prefilter, PrefilterError> {
        let mut literals: Vec<String> = Vec::new();
        let mut rules_of: Vec<Vec<usize>> = Vec::new();
        for (rule_idx, group) in groups.into_iter().enumerate() {
            for literal in group {
                let pos = match literals.iter().position(|l| l == literal) {
                    Some(p) => p,
                    None => {
                        literals.push(literal.clone());
                        rules_of.push(Vec::new());
                        literals.len() - 1
                    }
                };
                if !rules_of[pos].contains(&rule_idx) {
                    rules_of[pos].push(rule_idx);
                }
            }
        }
        let implied = literals
            .iter()
            .enumerate()
            .map(|(i, long)| {
                let mut set = vec![i];
                set.extend(
                    literals
                        .iter()
                        .enumerate()
                        .filter(|(j, short)| *j != i && long.starts_with(short.as_str()))
                        .map(|(j, _)| j),
                );
                set
            })
            .collect();
        let engine = if literals.is_empty() {
            Engine::Empty
        } else {
            let packed = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostLongest)
                .heuristic_pattern_limits(false)
                .builder()
                .extend(&literals)
                .build();
            match packed {
                Some(searcher) => Engine::Packed(searcher),
                None => Engine::Automaton(
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&literals)?,
                ),
            }
        };
        Ok(Prefilter {
            engine,
            implied,
            rules_of,
            literals,
        })
    }

    /// Number of distinct literals.
    pub fn len(&self) -> usize {
        self.literals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.literals.is_empty()
    }

    /// True when the packed (Teddy) searcher is in use.
    pub fn is_packed(&self) -> bool {
        matches!(self.engine, Engine::Packed(_))
    }

    /// Mark in `hit` (one flag per rule, cleared by the caller) every rule with a literal in `text`.
    /// Returns the number of rules newly marked.
    pub fn candidates(&self, text: &str, hit: &mut [bool]) -> usize {
        let bytes = text.as_bytes();
        let mut marked = 0;
        let mut at = 0;
        while at < bytes.len() {
            let found = match &self.engine {
                Engine::Packed(s) => s.find_in(bytes, aho_corasick::Span::from(at..bytes.len())),
                Engine::Automaton(ac) => ac.find(Input::new(bytes).range(at..)),
                Engine::Empty => None,
            };
            let Some(m) = found else { break };
            for &literal in &self.implied[m.pattern().as_usize()] {
                for &rule in &self.rules_of[literal] {
                    if !hit[rule] {
                        hit[rule] = true;
                        marked += 1;
                    }
                }
            }
            at = m.start() + 1;
        }
        marked
    }

    /// Call `on_line(start, end, hit)` once for every line of `block` (lines end at `\n`,
    /// excluded) holding at least one literal, in order, with `hit` marking the groups whose
    /// literals occur on that line (as [`Prefilter::candidates`] would): one search over the whole
    /// block, no framing. `hit` must have a flag per group.
    pub fn lines_with_hits(
        &self,
        block: &[u8],
        hit: &mut [bool],
        mut on_line: impl FnMut(usize, usize, &[bool]),
    ) {
        let mut at = 0;
        // The line being reported: (start, end).
        let mut line: Option<(usize, usize)> = None;
        loop {
            let found = if at < block.len() {
                match &self.engine {
                    Engine::Packed(s) => {
                        s.find_in(block, aho_corasick::Span::from(at..block.len()))
                    }
                    Engine::Automaton(ac) => ac.find(Input::new(block).range(at..)),
                    Engine::Empty => None,
                }
            } else {
                None
            };
            if let Some((start, end)) = line
                && found.is_none_or(|m| m.start() > end)
            {
                on_line(start, end, hit);
                line = None;
            }
            let Some(m) = found else { break };
            if line.is_none() {
                hit.fill(false);
                let start = memchr::memrchr(b'\n', &block[..m.start()]).map_or(0, |i| i + 1);
                let end =
                    memchr::memchr(b'\n', &block[m.end()..]).map_or(block.len(), |i| m.end() + i);
                line = Some((start, end));
            }
            for &literal in &self.implied[m.pattern().as_usize()] {
                for &rule in &self.rules_of[literal] {
                    hit[rule] = true;
                }
            }
            at = m.start() + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(literal_lists: &[&[&str]]) -> RuleSet {
        let mut text = String::new();
        for (i, lits) in literal_lists.iter().enumerate() {
            let quoted: Vec<String> = lits.iter().map(|l| format!("{l:?}")).collect();
            text.push_str(&format!(
                "[[rule]]\nid = \"r{i}\"\nclass = \"security\"\nseverity = \"info\"\ntitle = \"t\"\nliterals = [{}]\nrunbook = \"log-analysis\"\n",
                quoted.join(", ")
            ));
        }
        RuleSet::from_files(&[("t.toml".into(), text)]).unwrap()
    }

    fn hits(p: &Prefilter, n: usize, text: &str) -> Vec<usize> {
        let mut hit = vec![false; n];
        p.candidates(text, &mut hit);
        (0..n).filter(|i| hit[*i]).collect()
    }

    #[test]
    fn overlapping_and_prefix_literals_are_all_found() {
        let rules = set(&[
            &["FATAL:"],
            &["FATAL:  sorry"],
            &["sorry, too many"],
            &["ATA"],
        ]);
        let p = Prefilter::new(&rules).unwrap();
        assert_eq!(
            hits(&p, 4, "x FATAL:  sorry, too many clients"),
            vec![0, 1, 2, 3]
        );
        assert_eq!(hits(&p, 4, "FATAL: other"), vec![0, 3]);
        assert_eq!(hits(&p, 4, "fatal: lower case"), Vec::<usize>::new());
    }

    #[test]
    fn lines_with_hits_names_each_line_once_in_order() {
        let rules = set(&[&["FATAL:"], &["too many"]]);
        let p = Prefilter::new(&rules).unwrap();
        let block = b"ok\nx FATAL: too many FATAL:\nquiet\n\ntoo many\nlast FATAL:";
        let mut lines = Vec::new();
        let mut hit = vec![false; 2];
        p.lines_with_hits(block, &mut hit, |s, e, hit| {
            let text = String::from_utf8_lossy(&block[s..e]).into_owned();
            // The groups marked are those a search of the line alone finds.
            let alone: Vec<usize> = hits(&p, 2, &text);
            assert_eq!(alone, (0..2).filter(|i| hit[*i]).collect::<Vec<_>>());
            lines.push(text);
        });
        assert_eq!(
            lines,
            ["x FATAL: too many FATAL:", "too many", "last FATAL:"]
        );
    }

    #[test]
    fn more_than_64_literals_keep_every_hit() {
        let many: Vec<String> = (0..150).map(|i| format!("token{i:03}x")).collect();
        let lists: Vec<Vec<&str>> = many.iter().map(|s| vec![s.as_str()]).collect();
        let refs: Vec<&[&str]> = lists.iter().map(|v| v.as_slice()).collect();
        let rules = set(&refs);
        let p = Prefilter::new(&rules).unwrap();
        assert_eq!(p.len(), 150);
        assert_eq!(hits(&p, 150, "a token007x b token149x"), vec![7, 149]);
    }
}
