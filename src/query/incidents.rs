//! Incidents for people: the live change line, the list, and one incident with its runbook
//! checklist and evidence. Reads the incident log through `store::incidents`; must not change it.

use std::fmt::Write as _;
use std::path::Path;

use crate::incident::{Change, ChangeKind, Incident, State};
use crate::store::incidents::{self, IncidentLog, IncidentLogError};

/// Terminal styling, off when not a terminal or NO_COLOR is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// All incidents of a data dir, latest state of each, oldest first.
pub fn load(data_dir: &Path) -> Result<Vec<Incident>, IncidentLogError> {
    // A missing log reads as an empty one.
    let path = data_dir.join(incidents::LOG_FILE);
    Ok(incidents::current(&IncidentLog::read_all(&path)?))
}

/// The first step to take: the first step with a command (its text and the command on one line),
/// else the first step's text alone.
fn first_step(incident: &Incident) -> Option<(&str, Option<String>)> {
    let steps = &incident.runbook.steps;
    let with_command = steps.iter().find_map(|s| {
        s.commands.first().map(|c| {
            (
                s.text.as_str(),
                Some(c.split_whitespace().collect::<Vec<_>>().join(" ")),
            )
        })
    });
    with_command.or_else(|| steps.first().map(|s| (s.text.as_str(), None)))
}

/// One line for a match, grep-like: time, service, rule id, then the event's first line.
pub fn match_line(
    event: &crate::event::Event,
    m: &crate::detect::Match,
    rules: &crate::detect::rules::RuleSet,
    style: Style,
) -> String {
    let rule = rules.rules.get(m.rule).map_or("?", |r| r.id.as_str());
    format!(
        "{} {:<10} {} {}",
        event.ts,
        event.service,
        style.paint("1;33", rule),
        m.excerpt
    )
}

/// One line (two with the runbook hint) for a change as it happens.
pub fn change_line(change: &Change, style: Style) -> String {
    let inc = &change.incident;
    let (tag, code) = match change.kind {
        ChangeKind::Opened => ("OPEN    ", "1;31"),
        ChangeKind::Reopened => ("REOPEN  ", "1;31"),
        ChangeKind::Escalated => ("ESCALATE", "1;35"),
        ChangeKind::Updated => ("UPDATE  ", "33"),
        ChangeKind::Resolved => ("RESOLVED", "1;32"),
        ChangeKind::Silenced => ("SILENCED", "2"),
        ChangeKind::Unsilenced => ("NOTIFY  ", "1;31"),
        ChangeKind::Acknowledged => ("ACK     ", "36"),
    };
    let mut out = format!(
        "{} {} {} {:<8} {:<15} [{}] {} ({} events)",
        style.paint(code, tag),
        change.at,
        inc.id,
        inc.severity,
        inc.class,
        inc.services.join(","),
        inc.title,
        inc.count
    );
    if change.kind == ChangeKind::Escalated {
        let _ = write!(out, " → escalation level {}", inc.escalation_level);
    }
    if change.kind == ChangeKind::Unsilenced {
        out.push_str(" (its silence ended)");
    }
    if let Some(marks) = marks_of(inc) {
        let _ = write!(out, " {marks}");
    }
    if let Some(causes) = consequence_of(inc) {
        let _ = write!(out, " {causes}");
    }
    if matches!(
        change.kind,
        ChangeKind::Opened | ChangeKind::Reopened | ChangeKind::Unsilenced
    ) {
        let _ = write!(
            out,
            "\n         runbook: {} (#{})",
            inc.runbook.title, inc.runbook.anchor
        );
        match first_step(inc) {
            Some((step, Some(cmd))) => {
                let _ = write!(
                    out,
                    "\n         first step: {step}: {}",
                    style.paint("1", &cmd)
                );
            }
            Some((step, None)) => {
                let _ = write!(out, "\n         first step: {step}");
            }
            None => {}
        }
    }
    out
}

/// `[silenced by sil-…]`, `[acknowledged by NAME at TIME: NOTE]`, or both; `None` without either.
fn marks_of(inc: &Incident) -> Option<String> {
    let mut marks = Vec::new();
    if let Some(silence) = &inc.silenced_by {
        marks.push(format!(
            "[silenced by {} until {} ({}: {})]",
            silence.id,
            silence.ends.rfc3339(),
            silence.by,
            silence.reason
        ));
    }
    if let Some(ack) = &inc.acknowledged {
        let note = if ack.note.is_empty() {
            String::new()
        } else {
            format!(": {}", ack.note)
        };
        marks.push(format!(
            "[acknowledged by {} at {}{note}]",
            ack.by,
            ack.at.rfc3339()
        ));
    }
    (!marks.is_empty()).then(|| marks.join(" "))
}

/// The silences as a table, with each one's state at `now`.
pub fn silences_table(
    silences: &[crate::incident::Silence],
    now: crate::event::Timestamp,
) -> String {
    let mut out = format!(
        "{:<20} {:<8} {:<24} {:<24} {:<12} {:<40} {}\n",
        "ID", "STATE", "STARTS", "ENDS", "BY", "MATCH", "REASON"
    );
    for s in silences {
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:<24} {:<24} {:<12} {:<40} {}",
            s.id.0,
            s.state_at(now),
            s.starts.rfc3339(),
            s.ends.rfc3339(),
            s.by,
            s.render_matchers(),
            s.reason
        );
    }
    out
}

/// The incident list as a table.
pub fn table(incidents: &[Incident], style: Style) -> String {
    let mut out = format!(
        "{:<20} {:<9} {:<8} {:<15} {:<24} {:<24} {:>6} {:>3}  {}\n",
        "ID", "STATE", "SEVERITY", "CLASS", "FIRST SEEN", "LAST SEEN", "COUNT", "LVL", "TITLE"
    );
    for inc in incidents {
        let state = match inc.state {
            State::Open => style.paint("1;31", "open     "),
            State::Resolved => style.paint("32", "resolved "),
        };
        let _ = writeln!(
            out,
            "{:<20} {} {:<8} {:<15} {:<24} {:<24} {:>6} {:>3}  {}",
            inc.id.0,
            state,
            inc.severity.as_str(),
            inc.class.as_str(),
            inc.first_seen.rfc3339(),
            inc.last_seen.rfc3339(),
            inc.count,
            inc.escalation_level,
            [Some(inc.title.clone()), consequence_of(inc), marks_of(inc)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    out
}

/// `(consequence of inc-…)` for an incident that its causes explain.
fn consequence_of(inc: &Incident) -> Option<String> {
    if !inc.consequence || inc.caused_by.is_empty() {
        return None;
    }
    let ids: Vec<&str> = inc.caused_by.iter().map(|i| i.0.as_str()).collect();
    Some(format!("(consequence of {})", ids.join(", ")))
}

/// One incident: what, when, who it is escalated to (`matrix`: the runbook's escalation matrix,
/// level 1 first), the runbook procedure as a checklist, and the evidence.
pub fn detail(inc: &Incident, matrix: &[String], style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", style.paint("1", &inc.id.0), inc.title);
    let _ = writeln!(
        out,
        "class {}  severity {}  state {:?}  escalation level {}",
        inc.class, inc.severity, inc.state, inc.escalation_level
    );
    let level = usize::from(inc.escalation_level);
    if let Some(who) = level.checked_sub(1).and_then(|i| matrix.get(i)) {
        let _ = writeln!(out, "escalated to {who}");
    }
    let _ = writeln!(out, "services {}", inc.services.join(", "));
    let _ = writeln!(
        out,
        "first seen {}  raised {}  last seen {}  events {}",
        inc.first_seen, inc.opened_at, inc.last_seen, inc.count
    );
    if let Some(at) = inc.resolved_at {
        let _ = writeln!(out, "resolved {at}");
    }
    if let Some(marks) = marks_of(inc) {
        let _ = writeln!(out, "{marks}");
    }
    if !inc.caused_by.is_empty() {
        let ids: Vec<&str> = inc.caused_by.iter().map(|i| i.0.as_str()).collect();
        let _ = writeln!(out, "caused by {}", ids.join(", "));
    }
    if inc.consequence {
        let _ = writeln!(
            out,
            "a consequence: it does not page on its own while a cause is open; start with the cause"
        );
    }
    let _ = writeln!(
        out,
        "\n{} {} (runbook #{})",
        style.paint("1", "Runbook:"),
        inc.runbook.title,
        inc.runbook.anchor
    );
    for (i, step) in inc.runbook.steps.iter().enumerate() {
        let _ = writeln!(out, "  [ ] {}. {}", i + 1, step.text);
        for cmd in &step.commands {
            for (j, line) in cmd.lines().enumerate() {
                let lead = if j == 0 { "      $ " } else { "        " };
                let _ = writeln!(out, "{lead}{}", style.paint("1", line));
            }
        }
    }
    let _ = writeln!(out, "\n{}", style.paint("1", "Evidence:"));
    for ev in &inc.evidence {
        let _ = writeln!(
            out,
            "  {} {:<8} {}  ({})",
            ev.ts, ev.service, ev.text, ev.event
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Timestamp};
    use crate::incident::{Class, Evidence, IncidentId, RunbookLink, RunbookStep, Severity};

    fn incident() -> Incident {
        Incident {
            id: IncidentId("inc-0123456789abcdef".into()),
            class: Class::DbConnection,
            severity: Severity::Critical,
            state: State::Open,
            title: "PostgreSQL refuses connections on postgres".into(),
            rule: "pg-too-many-clients".into(),
            group: "pg-too-many-clients|postgres".into(),
            services: vec!["postgres".into()],
            first_seen: Timestamp::from_secs(1_796_220_000),
            opened_at: Timestamp::from_secs(1_796_220_000),
            last_seen: Timestamp::from_secs(1_796_220_060),
            resolved_at: None,
            count: 12,
            escalation_level: 0,
            caused_by: vec![],
            consequence: false,
            runbook: RunbookLink {
                title: "Database Connection Issues".into(),
                anchor: "database-connection-issues".into(),
                steps: vec![RunbookStep {
                    text: "Check database status".into(),
                    commands: vec!["docker-compose exec postgres pg_isready".into()],
                }],
            },
            evidence: vec![Evidence {
                event: EventId {
                    fingerprint: 1,
                    offset: 0,
                },
                ts: Timestamp::from_secs(1_796_220_000),
                service: "postgres".into(),
                rule: "pg-too-many-clients".into(),
                text: "FATAL:  sorry, too many clients already".into(),
            }],
            silenced_by: None,
            acknowledged: None,
        }
    }

    #[test]
    fn an_opening_names_class_runbook_and_first_command() {
        let change = Change {
            seq: 1,
            kind: ChangeKind::Opened,
            at: Timestamp::from_secs(1_796_220_000),
            incident: incident(),
        };
        let line = change_line(&change, Style { color: false });
        assert!(line.contains("db-connection"));
        assert!(line.contains("Database Connection Issues"));
        assert!(line.contains("docker-compose exec postgres pg_isready"));
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn the_detail_is_a_checklist_with_evidence() {
        let matrix: Vec<String> = ["Level 1: On-call engineer (0-15 minutes)", "Level 2: DBA"]
            .map(String::from)
            .to_vec();
        let mut inc = incident();
        inc.escalation_level = 2;
        let text = detail(&inc, &matrix, Style { color: false });
        assert!(text.contains("escalated to Level 2: DBA"), "{text}");
        assert!(text.contains("[ ] 1. Check database status"));
        assert!(text.contains("$ docker-compose exec postgres pg_isready"));
        assert!(text.contains("too many clients already"));
        assert!(!text.contains("consequence"), "{text}");
    }

    #[test]
    fn a_consequence_names_its_causes_everywhere() {
        let mut inc = incident();
        inc.caused_by = vec![crate::incident::IncidentId("inc-00000000000000cc".into())];
        inc.consequence = true;
        let plain = Style { color: false };
        assert!(detail(&inc, &[], plain).contains("a consequence: it does not page"));
        assert!(
            table(std::slice::from_ref(&inc), plain)
                .contains("(consequence of inc-00000000000000cc)")
        );
        let change = Change {
            seq: 1,
            kind: ChangeKind::Opened,
            at: inc.first_seen,
            incident: inc.clone(),
        };
        assert!(change_line(&change, plain).contains("(consequence of inc-00000000000000cc)"));
    }
}
