//! `logwarden rules check`: does the pack fit the runbook, and does every rule do what it says?
//!
//! Takes a [`RuleSet`] and a [`Runbook`], gives a [`CheckReport`]: one coverage row per procedure
//! (the required ones and any other that a rule links to) with the rules that lead to it, and the
//! problems found: runbook links that resolve to nothing, required procedures no rule covers, rules
//! with neither a literal nor a level for the prefilter (they would be tried on every event), rules
//! without examples, examples a rule misses and counter-examples it matches. Examples run through a
//! real [`Matcher`], so the prefilter is checked along with the regex and the predicates.
//!
//! It must not print or exit: the binary renders the report and decides the exit code from
//! [`CheckReport::is_ok`].

use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::detect::matcher::Matcher;
use crate::detect::rules::{Location, RuleSet};
use crate::event::{Event, EventId, Events, Flags, Level, Timestamp};
use crate::runbook::Runbook;

/// One procedure of the runbook and the rules that link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRow {
    pub title: String,
    pub key: String,
    /// The sections the procedure sits in, joined with ` › `.
    pub section: String,
    /// True when the runbook requires a rule for this procedure.
    pub required: bool,
    /// Ids of the rules that link to it, in pack order.
    pub rules: Vec<String>,
}

/// Something `rules check` refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A rule's runbook link names no procedure (the message names file:line, rule and link).
    UnresolvedLink(String),
    /// A procedure the runbook requires a rule for has none.
    Uncovered {
        key: String,
        title: String,
    },
    /// A rule with neither literal nor minimum level: every event would be a candidate.
    NoPrefilter {
        rule: String,
        location: Location,
    },
    NoExamples {
        rule: String,
        location: Location,
    },
    ExampleMissed {
        rule: String,
        location: Location,
        example: String,
    },
    CounterExampleMatched {
        rule: String,
        location: Location,
        example: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnresolvedLink(message) => f.write_str(message),
            Problem::Uncovered { key, title } => write!(
                f,
                "procedure `{key}` ({title}) is required but no rule links to it"
            ),
            Problem::NoPrefilter { rule, location } => write!(
                f,
                "{location}: rule `{rule}`: has neither `literals` nor `level`, so every event is a candidate"
            ),
            Problem::NoExamples { rule, location } => {
                write!(f, "{location}: rule `{rule}`: field `examples`: none given")
            }
            Problem::ExampleMissed {
                rule,
                location,
                example,
            } => write!(
                f,
                "{location}: rule `{rule}`: field `examples`: does not match `{example}`"
            ),
            Problem::CounterExampleMatched {
                rule,
                location,
                example,
            } => write!(
                f,
                "{location}: rule `{rule}`: field `counter_examples`: matches `{example}`"
            ),
        }
    }
}

/// What `rules check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub rows: Vec<CoverageRow>,
    pub problems: Vec<Problem>,
    /// Number of rules checked.
    pub rules: usize,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The coverage table, then the problems, then a one-line verdict.
    pub fn render(&self) -> String {
        let header = ["procedure", "key", "section", "rules"];
        // The rules column wraps: each row is its first line plus continuation lines.
        let cells: Vec<([String; 3], Vec<String>)> = self
            .rows
            .iter()
            .map(|row| {
                let title = if row.required {
                    row.title.clone()
                } else {
                    format!("{} (optional)", row.title)
                };
                (
                    [title, row.key.clone(), row.section.clone()],
                    wrap_ids(&row.rules, RULES_COLUMN_WIDTH),
                )
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for (cols, rules) in &cells {
            for (w, cell) in widths.iter_mut().zip(cols) {
                *w = (*w).max(cell.chars().count());
            }
            for line in rules {
                widths[3] = widths[3].max(line.chars().count());
            }
        }
        let mut out = String::new();
        let mut push_row = |cols: [&str; 4]| {
            let mut line = String::new();
            for (i, col) in cols.iter().enumerate() {
                if i + 1 == cols.len() {
                    line.push_str(col);
                } else {
                    line.push_str(&format!("{col:<width$}  ", width = widths[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        push_row(header);
        let rule_line = widths.map(|w| "-".repeat(w));
        push_row([&rule_line[0], &rule_line[1], &rule_line[2], &rule_line[3]]);
        for (cols, rules) in &cells {
            for (i, rules_line) in rules.iter().enumerate() {
                if i == 0 {
                    push_row([&cols[0], &cols[1], &cols[2], rules_line]);
                } else {
                    push_row(["", "", "", rules_line]);
                }
            }
        }
        let required = self.rows.iter().filter(|r| r.required).count();
        let covered = self
            .rows
            .iter()
            .filter(|r| r.required && !r.rules.is_empty())
            .count();
        if !self.problems.is_empty() {
            out.push_str(&format!("\n{} problem(s):\n", self.problems.len()));
            for problem in &self.problems {
                out.push_str(&format!("  - {problem}\n"));
            }
        }
        out.push_str(&format!(
            "\n{}: {} rules, {covered}/{required} required procedures covered\n",
            if self.is_ok() { "ok" } else { "FAILED" },
            self.rules
        ));
        out
    }
}

/// Widest the rules column of the table grows before it wraps.
const RULES_COLUMN_WIDTH: usize = 60;

/// Rule ids joined with `, ` into lines of at most `width` characters (one id per line at least).
fn wrap_ids(ids: &[String], width: usize) -> Vec<String> {
    if ids.is_empty() {
        return vec!["(none)".to_string()];
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, id) in ids.iter().enumerate() {
        let piece = if i + 1 == ids.len() {
            id.clone()
        } else {
            format!("{id},")
        };
        if !current.is_empty() && current.len() + 1 + piece.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&piece);
    }
    lines.push(current);
    lines
}

/// Check a pack against a runbook.
pub fn check(rules: &RuleSet, runbook: &Runbook) -> CheckReport {
    let mut report = CheckReport {
        rules: rules.rules.len(),
        ..CheckReport::default()
    };

    for error in rules.link_errors(runbook) {
        report
            .problems
            .push(Problem::UnresolvedLink(error.to_string()));
    }

    for procedure in &runbook.procedures {
        let linking: Vec<String> = rules
            .rules
            .iter()
            .filter(|r| {
                r.runbook
                    .iter()
                    .any(|link| runbook.find(link).is_some_and(|p| p.key == procedure.key))
            })
            .map(|r| r.id.clone())
            .collect();
        let required = procedure.must_be_covered();
        if !required && linking.is_empty() {
            continue;
        }
        if required && linking.is_empty() {
            report.problems.push(Problem::Uncovered {
                key: procedure.key.clone(),
                title: procedure.title.clone(),
            });
        }
        report.rows.push(CoverageRow {
            title: procedure.title.clone(),
            key: procedure.key.clone(),
            section: procedure.sections.join(" › "),
            required,
            rules: linking,
        });
    }

    for rule in &rules.rules {
        if rule.literals.is_empty() && rule.min_level.is_none() {
            report.problems.push(Problem::NoPrefilter {
                rule: rule.id.clone(),
                location: rule.location.clone(),
            });
        }
        if rule.examples.is_empty() {
            report.problems.push(Problem::NoExamples {
                rule: rule.id.clone(),
                location: rule.location.clone(),
            });
        }
    }

    match Matcher::new(Arc::new(rules.clone())) {
        Ok(matcher) => {
            for (idx, rule) in rules.rules.iter().enumerate() {
                let service = rule.services.first().map_or("app", String::as_str);
                for example in &rule.examples {
                    if !matches_rule(&matcher, idx, example, service) {
                        report.problems.push(Problem::ExampleMissed {
                            rule: rule.id.clone(),
                            location: rule.location.clone(),
                            example: example.clone(),
                        });
                    }
                }
                for example in &rule.counter_examples {
                    if matches_rule(&matcher, idx, example, service) {
                        report.problems.push(Problem::CounterExampleMatched {
                            rule: rule.id.clone(),
                            location: rule.location.clone(),
                            example: example.clone(),
                        });
                    }
                }
            }
        }
        Err(e) => report.problems.push(Problem::UnresolvedLink(e.to_string())),
    }
    report
}

fn matches_rule(matcher: &Matcher, rule: usize, line: &str, service: &str) -> bool {
    let events = Events::new(vec![example_event(line, service)]);
    matcher.scan(&events).iter().any(|m| m.rule == rule)
}

/// A one-event stand-in for what the parser makes of an example line: JSON objects become fields
/// (pino `level` numbers read as levels, `msg` plus `err.message` as the message, `time` as the
/// time); text lines get the first upper-case level word (`FATAL:`, `ERROR`, `[error]`) as their
/// level and PostgreSQL's `duration: N ms` as `duration_ms`.
pub fn example_event(line: &str, service: &str) -> Event {
    let raw = line.trim_end_matches(['\n', '\r']).to_string();
    let mut fields = serde_json::Map::new();
    let level;
    let mut message = raw.clone();
    let mut ts = Timestamp(0);

    let json = raw
        .starts_with('{')
        .then(|| serde_json::from_str::<Json>(&raw).ok())
        .flatten();
    if let Some(Json::Object(obj)) = json {
        level = match obj.get("level") {
            Some(Json::Number(n)) => n.as_i64().map_or(Level::Unknown, Level::from_pino),
            Some(Json::String(s)) => Level::parse_name(s).unwrap_or(Level::Unknown),
            _ => Level::Unknown,
        };
        if let Some(ms) = obj.get("time").and_then(Json::as_i64) {
            ts = Timestamp::from_millis(ms);
        }
        let msg = obj.get("msg").and_then(Json::as_str).unwrap_or("");
        let err = obj
            .get("err")
            .and_then(|e| e.get("message"))
            .and_then(Json::as_str);
        message = match err {
            Some(err) if !msg.is_empty() => format!("{msg}: {err}"),
            Some(err) => err.to_string(),
            None => msg.to_string(),
        };
        fields = obj;
    } else {
        level = text_level(&raw);
        if let Some(ms) = pg_duration_ms(&raw) {
            fields.insert("duration_ms".into(), Json::from(ms));
        }
    }

    Event {
        id: EventId {
            fingerprint: 0,
            offset: 0,
        },
        ts,
        service: service.to_string(),
        level,
        message,
        len: u32::try_from(raw.len() + 1).unwrap_or(u32::MAX),
        lines: u32::try_from(raw.lines().count().max(1)).unwrap_or(u32::MAX),
        raw,
        fields,
        flags: Flags::default(),
    }
}

/// The first upper-case level word of a text line, or a bracketed lower-case one (`[error]`).
fn text_level(line: &str) -> Level {
    const WORDS: [&str; 12] = [
        "PANIC", "FATAL", "ERROR", "WARNING", "WARN", "NOTICE", "LOG", "INFO", "DEBUG", "TRACE",
        "CRIT", "CRITICAL",
    ];
    for word in line.split(|c: char| !c.is_ascii_alphanumeric()) {
        if WORDS.contains(&word) {
            return Level::parse_name(word).unwrap_or(Level::Unknown);
        }
    }
    for (bracketed, level) in [
        ("[error]", Level::Error),
        ("[crit]", Level::Fatal),
        ("[warn]", Level::Warn),
    ] {
        if line.contains(bracketed) {
            return level;
        }
    }
    Level::Unknown
}

/// PostgreSQL's `duration: 5234.123 ms`.
fn pg_duration_ms(line: &str) -> Option<f64> {
    let start = line.find("duration: ")? + "duration: ".len();
    let rest = &line[start..];
    let (number, unit) = rest.split_once(' ')?;
    if !unit.starts_with("ms") {
        return None;
    }
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::pack::{default_rules, default_runbook};

    #[test]
    fn example_events_read_levels_fields_and_durations() {
        let ev = example_event(
            r#"{"level":50,"time":1796220000123,"err":{"message":"boom"},"msg":"Job failed"}"#,
            "worker",
        );
        assert_eq!(ev.level, Level::Error);
        assert_eq!(ev.message, "Job failed: boom");
        assert_eq!(ev.ts, Timestamp::from_millis(1_796_220_000_123));
        let pg = example_event(
            "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 5234.123 ms  statement: SELECT 1",
            "postgres",
        );
        assert_eq!(pg.level, Level::Info);
        assert_eq!(pg.field("duration_ms"), Some(&Json::from(5234.123)));
        assert_eq!(
            example_event("[Sun Dec 04 04:47:44 2005] [error] mod_jk", "apache").level,
            Level::Error
        );
        assert_eq!(
            example_event("Dec 10 06:55:46 LabSZ sshd[24200]: Failed password", "sshd").level,
            Level::Unknown
        );
    }

    #[test]
    fn the_default_pack_passes_against_the_project_runbook() {
        let rules = default_rules().unwrap();
        let report = check(&rules, &Runbook::parse(default_runbook()));
        assert!(report.is_ok(), "{}", report.render());
        let rendered = report.render();
        assert!(rendered.contains("database-connection-issues"));
        assert!(rendered.contains("ok: "));
    }

    #[test]
    fn the_default_pack_passes_against_the_users_runbook() {
        let path = std::path::Path::new("/work/shared/seeds/000_dcd9a5b76c548bb3.txt");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {} is missing", path.display());
            return;
        };
        let report = check(&default_rules().unwrap(), &Runbook::parse(&text));
        assert!(report.is_ok(), "{}", report.render());
    }

    #[test]
    fn gaps_are_reported() {
        let text = r#"
[[rule]]
id = "everything"
class = "security"
severity = "info"
title = "t"
runbook = ["log-analysis", "no-such-procedure"]
counter_examples = ["anything at all"]

[[rule]]
id = "misses"
class = "db-connection"
severity = "error"
title = "t"
literals = ["too many clients"]
runbook = "database-connection-issues"
examples = ["sorry, too many connections"]
"#;
        let rules = RuleSet::from_files(&[("x.toml".into(), text.into())]).unwrap();
        let report = check(&rules, &Runbook::parse(default_runbook()));
        assert!(!report.is_ok());
        let rendered = report.render();
        for want in [
            "x.toml:2: rule `everything`: field `runbook`: `no-such-procedure` is not a procedure",
            "procedure `application-down` (Application Down) is required but no rule links to it",
            "x.toml:2: rule `everything`: has neither `literals` nor `level`",
            "x.toml:2: rule `everything`: field `examples`: none given",
            "x.toml:2: rule `everything`: field `counter_examples`: matches `anything at all`",
            "x.toml:10: rule `misses`: field `examples`: does not match `sorry, too many connections`",
            "FAILED: 2 rules, 1/12 required procedures covered",
        ] {
            assert!(rendered.contains(want), "missing {want:?} in\n{rendered}");
        }
        // Linked but optional procedures get a row too.
        assert!(
            report
                .rows
                .iter()
                .any(|r| r.key == "log-analysis" && !r.required)
        );
    }
}
