//! The runbook's escalation matrix applied to incidents: the level an open incident is at, and
//! when it reaches the next one.
//!
//! Owns one [`Schedule`] per rule, read from the runbook: the matrix's level starts (`Level 2:
//! Senior engineer + DBA (15-30 minutes)` → level 2 at 15 minutes, level 3 at 30), moved earlier
//! by a linked procedure's `Escalate if not resolved in 5 minutes` (level 2 at 5 minutes, the
//! matrix's gaps after it: level 3 at 20), or by the rule's own `escalate` (`"immediately"`: the
//! top level at once, as the runbook asks for suspected data corruption). Levels count from 1 at
//! opening; times are event time since the incident opened (or since it reopened, keeping the
//! level it had). Must not: hold incidents or emit changes (the engine does).

use std::sync::LazyLock;

use regex::Regex;

use crate::detect::rules::Rule;
use crate::runbook::Runbook;

/// Level starts, in seconds after opening, when the runbook has no readable matrix.
pub const DEFAULT_MATRIX: [i64; 3] = [0, 15 * 60, 30 * 60];

/// When each level starts for one rule's incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Seconds after opening at which level `i + 1` starts; `starts[0]` is 0.
    starts: Vec<i64>,
}

impl Schedule {
    /// The schedule of `rule`'s incidents under `runbook`.
    pub fn of(rule: &Rule, runbook: &Runbook) -> Schedule {
        let matrix = matrix(&runbook.escalation);
        let own = rule.escalate_after_secs.or_else(|| {
            rule.runbook
                .iter()
                .filter_map(|link| runbook.find(link))
                .flat_map(|p| p.steps.iter())
                .filter_map(|step| escalate_after(&step.text))
                .min()
        });
        let Some(first) = own else {
            return Schedule { starts: matrix };
        };
        // Level 2 at `first`, the matrix's gaps between later levels kept; "immediately" is the
        // top level at once.
        let mut starts = vec![0];
        let mut at = first;
        for (i, pair) in matrix.windows(2).enumerate() {
            if i > 0 {
                at += if first == 0 { 0 } else { pair[1] - pair[0] };
            }
            starts.push(at);
        }
        Schedule { starts }
    }

    /// The highest level.
    pub fn top(&self) -> u8 {
        u8::try_from(self.starts.len()).unwrap_or(u8::MAX)
    }

    /// The level `elapsed` seconds after opening (1 at opening).
    pub fn level_at(&self, elapsed: i64) -> u8 {
        let reached = self.starts.iter().filter(|&&s| s <= elapsed).count();
        u8::try_from(reached.max(1)).unwrap_or(u8::MAX)
    }

    /// Seconds after opening at which `level` starts (0 for level 1 and below).
    pub fn start_of(&self, level: u8) -> i64 {
        let i = usize::from(level.max(1)) - 1;
        self.starts.get(i).copied().unwrap_or(0)
    }

    /// Seconds after opening at which the level after `level` starts; `None` at the top.
    pub fn next_after(&self, level: u8) -> Option<i64> {
        self.starts.get(usize::from(level.max(1))).copied()
    }
}

/// The matrix's level starts in seconds (`… (0-15 minutes)`, `… (15-30 minutes)`, `… (30+
/// minutes)`), or [`DEFAULT_MATRIX`] when an entry has no such time or they do not increase.
pub fn matrix(entries: &[String]) -> Vec<i64> {
    static START: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"\((\d{1,4})\s*(?:-\s*\d{1,4}|\+)\s*min(?:ute)?s?\)").ok());
    let starts: Option<Vec<i64>> = entries
        .iter()
        .map(|e| {
            let caps = START.as_ref()?.captures(e)?;
            caps[1].parse::<i64>().ok().map(|m| m * 60)
        })
        .collect();
    match starts {
        Some(s) if s.first() == Some(&0) && s.len() >= 2 && s.windows(2).all(|w| w[0] < w[1]) => s,
        _ => DEFAULT_MATRIX.to_vec(),
    }
}

/// `Escalate if not resolved in 5 minutes` → 300; `None` for other step texts.
pub fn escalate_after(step: &str) -> Option<i64> {
    static STEP: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"(?i)\bescalate\b.*\bin\s+(\d{1,4})\s*(min(?:ute)?s?|h(?:ours?)?)\b").ok()
    });
    let caps = STEP.as_ref()?.captures(step)?;
    let n: i64 = caps[1].parse().ok()?;
    let unit = if caps[2].starts_with(['h', 'H']) {
        3600
    } else {
        60
    };
    Some(n * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBOOK: &str = include_str!("../../patterns/runbook.md");

    fn rule(runbook: &[&str], escalate: Option<i64>) -> Rule {
        let mut r = crate::detect::rules::tests_support::rule("r");
        r.runbook = runbook.iter().map(|s| s.to_string()).collect();
        r.escalate_after_secs = escalate;
        r
    }

    #[test]
    fn the_runbook_matrix_and_its_procedures_set_the_times() {
        let rb = Runbook::parse(RUNBOOK);
        assert_eq!(matrix(&rb.escalation), vec![0, 900, 1800]);
        let plain = Schedule::of(&rule(&["database-connection-issues"], None), &rb);
        assert_eq!(
            (plain.level_at(0), plain.level_at(899), plain.level_at(900)),
            (1, 1, 2)
        );
        assert_eq!((plain.level_at(1800), plain.top()), (3, 3));
        assert_eq!(plain.next_after(1), Some(900));
        assert_eq!(plain.next_after(3), None);
        // Application Down: "Escalate if not resolved in 5 minutes" (a later link of the rule).
        let app = Schedule::of(
            &rule(
                &["application-down", "critical-alerts:application-down"],
                None,
            ),
            &rb,
        );
        assert_eq!(
            (app.next_after(1), app.next_after(2)),
            (Some(300), Some(1200))
        );
        // The rule's own "immediately": the top level at opening.
        let now = Schedule::of(&rule(&["critical-alerts:database-down"], Some(0)), &rb);
        assert_eq!((now.level_at(0), now.next_after(1)), (3, Some(0)));
        assert_eq!(now.start_of(3), 0);
    }

    #[test]
    fn matrices_and_steps_are_read_or_defaulted() {
        let m = |e: &[&str]| matrix(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            m(&[
                "L1 (0-10 minutes)",
                "L2 (10-20 minutes)",
                "L3 (20+ minutes)"
            ]),
            vec![0, 600, 1200]
        );
        assert_eq!(
            m(&["L1 (0-10 minutes)", "L2 soon"]),
            DEFAULT_MATRIX.to_vec()
        );
        assert_eq!(m(&[]), DEFAULT_MATRIX.to_vec());
        assert_eq!(
            escalate_after("Escalate if not resolved in 5 minutes"),
            Some(300)
        );
        assert_eq!(
            escalate_after("escalate when not fixed in 2 hours"),
            Some(7200)
        );
        assert_eq!(
            escalate_after("Escalate immediately if data corruption suspected"),
            None
        );
        assert_eq!(escalate_after("Restart services if needed"), None);
    }
}
