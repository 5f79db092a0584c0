//! The runbook in markdown → [`Procedure`]s: the shared vocabulary that links incidents to the fix.
//!
//! Owns reading the operations runbook (`patterns/runbook.md` or the user's own): every `###`/`####`
//! heading becomes a procedure with its GitHub-style anchor, its **Symptoms:** list, and its ordered
//! steps with the shell commands of their code blocks. The bold items of the Alert Response
//! Procedures (`**Database Down:**` followed by a numbered list) become procedures of their own,
//! keyed `critical-alerts:database-down`. The escalation matrix is read too.
//!
//! It must not know rules or incidents: `detect::check` verifies links against it and `incident`
//! copies the linked procedure into each incident.

use pulldown_cmark::{Event as Md, HeadingLevel, Parser, Tag, TagEnd};

use crate::incident::{RunbookLink, RunbookStep};

/// The top-level sections whose procedures must each be covered by a rule.
pub const COVERED_SECTIONS: [&str; 3] = [
    "Emergency Procedures",
    "Common Issues",
    "Alert Response Procedures",
];

/// One procedure of the runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    /// Heading text (`Database Connection Issues`) or `Critical Alerts: Database Down`.
    pub title: String,
    /// What rules link to: the heading's anchor (`database-connection-issues`), or
    /// `critical-alerts:database-down` for a bold alert item.
    pub key: String,
    /// The GitHub anchor to open in the rendered runbook (for a bold item: its heading's anchor).
    pub anchor: String,
    /// The `##` section it sits in (`Emergency Procedures`, `Common Issues`, …) and, for procedures
    /// nested deeper, the `###` heading too (`Alert Response Procedures`).
    pub sections: Vec<String>,
    pub symptoms: Vec<String>,
    pub steps: Vec<RunbookStep>,
    /// The line of the runbook where the procedure starts (1-based).
    pub line: usize,
}

impl Procedure {
    /// True when `rules check` requires a rule for this procedure.
    pub fn must_be_covered(&self) -> bool {
        let leaf_heading = !self.key.contains(':');
        if self
            .sections
            .iter()
            .any(|s| s == "Alert Response Procedures")
        {
            // The alert items are the procedures; the `Critical Alerts` headings only group them.
            return !leaf_heading;
        }
        self.sections.len() == 1
            && COVERED_SECTIONS.contains(&self.sections[0].as_str())
            && leaf_heading
    }

    pub fn link(&self) -> RunbookLink {
        RunbookLink {
            title: self.title.clone(),
            anchor: self.anchor.clone(),
            steps: self.steps.clone(),
        }
    }
}

/// A parsed runbook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runbook {
    pub procedures: Vec<Procedure>,
    /// The escalation matrix, level 1 first (`On-call engineer (0-15 minutes)`).
    pub escalation: Vec<String>,
    /// The services the runbook scales (`--scale worker=5`): the stateless tier, whose names a
    /// procedure's commands may swap for the incident's own ([`Runbook::fill`]).
    pub scaled: Vec<String>,
}

/// GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c.is_alphanumeric() || c == '_' || c == '-' {
            out.extend(c.to_lowercase());
        } else if c == ' ' {
            out.push('-');
        }
    }
    out
}

/// Shell commands of one code block: comment lines start a new step (their text is the step's), a
/// command continues over lines while a quote is open or a line ends with `\`.
fn commands_of(code: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut comment: Option<String> = None;
    let mut pending = String::new();
    for line in code.lines() {
        let trimmed = line.trim();
        if pending.is_empty() {
            if trimmed.is_empty() {
                continue;
            }
            if let Some(c) = trimmed.strip_prefix('#') {
                comment = Some(c.trim().to_string());
                continue;
            }
            if let Some(c) = trimmed.strip_prefix("--") {
                comment = Some(c.trim().to_string());
                continue;
            }
        } else {
            pending.push('\n');
        }
        pending.push_str(line.trim_end());
        let open_quote = pending.matches('"').count() % 2 == 1
            || pending.matches('\'').count() % 2 == 1
            || pending.ends_with('\\');
        let open_sql = looks_like_sql(&pending) && !pending.trim_end().ends_with(';');
        if !open_quote && !open_sql {
            out.push((comment.clone(), pending.trim().to_string()));
            pending.clear();
        }
    }
    if !pending.trim().is_empty() {
        out.push((comment, pending.trim().to_string()));
    }
    out
}

fn looks_like_sql(s: &str) -> bool {
    let first = s.split_whitespace().next().unwrap_or("");
    matches!(
        first.to_ascii_uppercase().as_str(),
        "SELECT" | "CREATE" | "DELETE" | "UPDATE" | "INSERT" | "ANALYZE;" | "VACUUM"
    )
}

/// A block-level piece of the document, flattened.
#[derive(Debug)]
enum Block {
    Heading {
        level: u8,
        text: String,
        line: usize,
    },
    /// A paragraph whose whole text is bold (`**Symptoms:**`, `**Database Down:**`).
    Label {
        text: String,
        line: usize,
    },
    Paragraph {
        text: String,
    },
    /// A list item at nesting depth `depth` (1 = top), ordered or not, with the code blocks inside it.
    Item {
        depth: usize,
        ordered: bool,
        text: String,
        code: Vec<String>,
    },
    Code {
        text: String,
    },
}

fn blocks(markdown: &str) -> Vec<Block> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(markdown.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset);

    let mut out = Vec::new();
    let mut text = String::new();
    let mut all_bold = true;
    let mut bold_depth = 0usize;
    let mut list_stack: Vec<bool> = Vec::new();
    // Items being built, innermost last: (text, code blocks).
    let mut items: Vec<(bool, String, Vec<String>)> = Vec::new();
    let mut code: Option<String> = None;
    let mut heading: Option<(u8, usize)> = None;
    let mut para_start = 0usize;

    for (ev, range) in Parser::new(markdown).into_offset_iter() {
        match ev {
            Md::Start(Tag::Heading { level, .. }) => {
                text.clear();
                let n = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    HeadingLevel::H3 => 3,
                    HeadingLevel::H4 => 4,
                    HeadingLevel::H5 => 5,
                    HeadingLevel::H6 => 6,
                };
                heading = Some((n, line_of(range.start)));
            }
            Md::End(TagEnd::Heading(_)) => {
                if let Some((level, line)) = heading.take() {
                    out.push(Block::Heading {
                        level,
                        text: text.trim().to_string(),
                        line,
                    });
                }
                text.clear();
            }
            Md::Start(Tag::Paragraph) => {
                if items.is_empty() {
                    text.clear();
                }
                all_bold = true;
                para_start = range.start;
            }
            Md::End(TagEnd::Paragraph) => {
                if items.is_empty() {
                    let t = text.trim().to_string();
                    if !t.is_empty() {
                        if all_bold {
                            out.push(Block::Label {
                                text: t,
                                line: line_of(para_start),
                            });
                        } else {
                            out.push(Block::Paragraph { text: t });
                        }
                    }
                    text.clear();
                } else {
                    text.push(' ');
                }
            }
            Md::Start(Tag::Strong) => bold_depth += 1,
            Md::End(TagEnd::Strong) => bold_depth = bold_depth.saturating_sub(1),
            Md::Start(Tag::List(first)) => {
                if let Some(item) = items.last_mut() {
                    // Text gathered so far belongs to the enclosing item.
                    item.1.push_str(&text);
                    text.clear();
                }
                list_stack.push(first.is_some());
            }
            Md::End(TagEnd::List(_)) => {
                list_stack.pop();
            }
            Md::Start(Tag::Item) => {
                text.clear();
                items.push((
                    list_stack.last().copied().unwrap_or(false),
                    String::new(),
                    Vec::new(),
                ));
            }
            Md::End(TagEnd::Item) => {
                if let Some((ordered, mut t, code_blocks)) = items.pop() {
                    t.push_str(&text);
                    text.clear();
                    out.push(Block::Item {
                        depth: items.len() + 1,
                        ordered,
                        text: t.split_whitespace().collect::<Vec<_>>().join(" "),
                        code: code_blocks,
                    });
                }
            }
            Md::Start(Tag::CodeBlock(_)) => {
                code = Some(String::new());
            }
            Md::End(TagEnd::CodeBlock) => {
                if let Some(c) = code.take() {
                    match items.last_mut() {
                        Some(item) => item.2.push(c),
                        None => out.push(Block::Code { text: c }),
                    }
                }
            }
            Md::Text(t) => {
                if let Some(c) = code.as_mut() {
                    c.push_str(&t);
                } else {
                    if bold_depth == 0 && !t.trim().is_empty() {
                        all_bold = false;
                    }
                    text.push_str(&t);
                }
            }
            Md::Code(t) => {
                all_bold = false;
                text.push_str(&t);
            }
            Md::SoftBreak | Md::HardBreak => text.push(' '),
            _ => {}
        }
    }
    out
}

impl Runbook {
    /// Read a runbook. Never fails: a document without procedures gives an empty runbook, which
    /// `rules check` then reports.
    pub fn parse(markdown: &str) -> Runbook {
        let mut runbook = Runbook::default();
        // Heading texts by level (index 0 = `#`).
        let mut headings: [Option<String>; 6] = Default::default();
        let mut current: Option<Procedure> = None;
        // What a bold label says the following blocks are.
        let mut label = String::new();
        let mut in_escalation = false;

        let flush = |current: &mut Option<Procedure>, runbook: &mut Runbook| {
            if let Some(p) = current.take() {
                runbook.procedures.push(p);
            }
        };

        for block in blocks(markdown) {
            match block {
                Block::Heading { level, text, line } => {
                    flush(&mut current, &mut runbook);
                    label.clear();
                    in_escalation = false;
                    let idx = usize::from(level.clamp(1, 6)) - 1;
                    headings[idx] = Some(text.clone());
                    for h in headings.iter_mut().skip(idx + 1) {
                        *h = None;
                    }
                    if level >= 3 {
                        let sections: Vec<String> =
                            headings[1..idx].iter().flatten().cloned().collect();
                        current = Some(Procedure {
                            title: text.clone(),
                            key: slug(&text),
                            anchor: slug(&text),
                            sections,
                            symptoms: Vec::new(),
                            steps: Vec::new(),
                            line,
                        });
                    }
                }
                Block::Label { text, line } => {
                    let name = text.trim_end_matches(':').trim().to_string();
                    in_escalation = name.eq_ignore_ascii_case("Escalation Matrix");
                    let in_alerts = headings[2].as_deref() == Some("Alert Response Procedures");
                    let known = [
                        "Symptoms",
                        "Immediate Actions",
                        "Actions",
                        "Diagnosis",
                        "Resolution",
                    ];
                    if in_alerts && !known.contains(&name.as_str()) && !in_escalation {
                        // A bold alert item (`**Application Down:**`) starts a procedure of its own.
                        let group = headings[3].clone().unwrap_or_default();
                        let parent_anchor = slug(&group);
                        // The group heading (kept as a procedure too) or the previous item is done.
                        flush(&mut current, &mut runbook);
                        let mut sections: Vec<String> =
                            headings[1..4].iter().flatten().cloned().collect();
                        sections.retain(|s| s != &group);
                        current = Some(Procedure {
                            title: format!("{group}: {name}"),
                            key: format!("{parent_anchor}:{}", slug(&name)),
                            anchor: parent_anchor,
                            sections,
                            symptoms: Vec::new(),
                            steps: Vec::new(),
                            line,
                        });
                        label.clear();
                    } else {
                        label = name;
                    }
                }
                Block::Paragraph { text } => {
                    if let (Some(rest), Some(p)) =
                        (text.strip_prefix("Escalation:"), current.as_mut())
                    {
                        p.steps.push(RunbookStep {
                            text: format!("Escalation: {}", rest.trim()),
                            commands: Vec::new(),
                        });
                    }
                }
                Block::Item {
                    depth,
                    ordered,
                    text,
                    code,
                } => {
                    if in_escalation {
                        if depth == 1 {
                            runbook.escalation.push(text.trim().to_string());
                        }
                        continue;
                    }
                    let Some(p) = current.as_mut() else { continue };
                    if label == "Symptoms" {
                        p.symptoms.push(text.trim().to_string());
                        continue;
                    }
                    let commands: Vec<String> = code
                        .iter()
                        .flat_map(|c| commands_of(c))
                        .map(|(_, cmd)| cmd)
                        .collect();
                    let text = text.trim().trim_end_matches(':').trim().to_string();
                    if depth == 1 && (ordered || !commands.is_empty() || !label.is_empty()) {
                        p.steps.push(RunbookStep { text, commands });
                    } else if depth > 1 {
                        // Sub-bullets refine the step above them.
                        if let Some(last) = p.steps.last_mut() {
                            last.text.push_str(if last.text.contains(" — ") {
                                "; "
                            } else {
                                " — "
                            });
                            last.text.push_str(&text);
                            last.commands.extend(commands);
                        }
                    }
                }
                Block::Code { text } => {
                    let Some(p) = current.as_mut() else { continue };
                    for (comment, cmd) in commands_of(&text) {
                        let step_text = comment.unwrap_or_else(|| label.clone());
                        match p.steps.last_mut() {
                            Some(last) if last.text == step_text => last.commands.push(cmd),
                            _ => p.steps.push(RunbookStep {
                                text: step_text,
                                commands: vec![cmd],
                            }),
                        }
                    }
                }
            }
        }
        flush(&mut current, &mut runbook);
        let commands = runbook
            .procedures
            .iter()
            .flat_map(|p| p.steps.iter())
            .flat_map(|s| s.commands.iter());
        for command in commands {
            for (_, rest) in command
                .match_indices("--scale ")
                .map(|(i, m)| command.split_at(i + m.len()))
            {
                if let Some((name, _)) = rest.split_once('=')
                    && !name.is_empty()
                    && !runbook.scaled.iter().any(|s| s == name)
                {
                    runbook.scaled.push(name.to_string());
                }
            }
        }
        runbook
    }

    /// `link`'s steps with their commands filled for an incident on `service` with group values
    /// `values`: where a command names another service of the scaled tier than the incident's
    /// (`docker-compose restart newsletter-app` for a worker incident) it names the incident's
    /// (`docker-compose restart worker`), and where a step's commands name one BullMQ queue
    /// (`bull:campaign-emails:waiting`) and the incident has another (`queue=ai-insights`), they
    /// name the incident's. Commands that already name the incident's service or queue, or name
    /// several, are left as written.
    pub fn fill(
        &self,
        link: &RunbookLink,
        service: &str,
        values: &[(String, String)],
    ) -> RunbookLink {
        let own = self
            .scaled
            .iter()
            .find(|name| same_service(name, service))
            .cloned();
        let queue = values
            .iter()
            .find(|(n, v)| n == "queue" && !v.is_empty())
            .map(|(_, v)| v.as_str());
        let mut filled = link.clone();
        for step in &mut filled.steps {
            if let Some(own) = &own {
                for command in &mut step.commands {
                    *command = swap_service(command, own, &self.scaled);
                }
            }
            if let Some(queue) = queue {
                swap_queue(&mut step.commands, queue);
            }
        }
        filled
    }

    /// The procedure a rule links to: by key (`database-connection-issues`,
    /// `critical-alerts:database-down`), by anchor with or without `#`, or by exact title.
    pub fn find(&self, link: &str) -> Option<&Procedure> {
        let link = link.trim().trim_start_matches('#');
        self.procedures
            .iter()
            .find(|p| p.key == link)
            .or_else(|| self.procedures.iter().find(|p| p.title == link))
            .or_else(|| self.procedures.iter().find(|p| p.anchor == link))
    }

    /// Procedures that `rules check` requires a rule for.
    pub fn required(&self) -> impl Iterator<Item = &Procedure> {
        self.procedures.iter().filter(|p| p.must_be_covered())
    }
}

/// `name` (as the runbook writes it) is `service` (as logwarden's sources name it): equal, or one
/// is a `-`-separated word of the other (`newsletter-app` is `app`, `worker` is `newsletter-worker`).
fn same_service(name: &str, service: &str) -> bool {
    let words = |s: &str| {
        s.split(['-', '_', '.'])
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    name == service
        || words(name).iter().any(|w| w == service)
        || words(service).iter().any(|w| w == name)
}

/// The words of a command with their byte ranges: runs of service-name characters.
fn name_tokens(command: &str) -> Vec<(usize, usize)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in command.char_indices() {
        match (is_name(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                tokens.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push((s, command.len()));
    }
    tokens
}

/// `command` naming `own` instead of the one other scaled service it names (if it names exactly
/// one and not `own`).
fn swap_service(command: &str, own: &str, scaled: &[String]) -> String {
    let tokens = name_tokens(command);
    let named: Vec<&(usize, usize)> = tokens
        .iter()
        .filter(|(a, b)| scaled.iter().any(|s| s == &command[*a..*b]))
        .collect();
    let names: std::collections::BTreeSet<&str> =
        named.iter().map(|(a, b)| &command[*a..*b]).collect();
    if names.len() != 1 || names.contains(own) {
        return command.to_string();
    }
    let mut out = String::with_capacity(command.len());
    let mut at = 0;
    for (a, b) in named {
        out.push_str(&command[at..*a]);
        out.push_str(own);
        at = *b;
    }
    out.push_str(&command[at..]);
    out
}

/// Point a step's `bull:QUEUE:` keys at `queue` when they name exactly one other queue.
fn swap_queue(commands: &mut [String], queue: &str) {
    let mut named = std::collections::BTreeSet::new();
    for command in commands.iter() {
        for (i, _) in command.match_indices("bull:") {
            let rest = &command[i + 5..];
            if let Some(end) = rest.find(':') {
                named.insert(rest[..end].to_string());
            }
        }
    }
    if named.len() != 1 || named.contains(queue) {
        return;
    }
    if let Some(other) = named.first() {
        let (from, to) = (format!("bull:{other}:"), format!("bull:{queue}:"));
        for command in commands.iter_mut() {
            *command = command.replace(&from, &to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_filled_with_the_incidents_service_and_queue() {
        let rb = Runbook::parse(SEED);
        assert_eq!(rb.scaled, vec!["worker", "newsletter-app"]);
        let down = rb.find("application-down").unwrap().link();
        let commands = |link: &RunbookLink| -> Vec<String> {
            link.steps.iter().flat_map(|s| s.commands.clone()).collect()
        };
        let as_written = commands(&down);
        // The app itself: as written.
        assert_eq!(commands(&rb.fill(&down, "app", &[])), as_written);
        assert_eq!(commands(&rb.fill(&down, "newsletter-app", &[])), as_written);
        // A worker incident: the worker's logs and restart; other services untouched.
        let worker = commands(&rb.fill(&down, "worker", &[]));
        assert!(
            worker.contains(&"docker-compose logs --tail=100 worker".to_string()),
            "{worker:?}"
        );
        assert!(
            worker.contains(&"docker-compose restart worker".to_string()),
            "{worker:?}"
        );
        assert!(
            worker.contains(&"docker-compose restart postgres".to_string()),
            "{worker:?}"
        );
        assert!(
            !worker.iter().any(|c| c.contains("newsletter-app")),
            "{worker:?}"
        );
        // Services outside the scaled tier are never swapped in.
        assert_eq!(commands(&rb.fill(&down, "postgres", &[])), as_written);
        // A command naming both tiers stays as written.
        let memory = rb.find("high-memory-usage").unwrap().link();
        let filled = commands(&rb.fill(&memory, "worker", &[]));
        assert!(
            filled.contains(&"docker-compose restart newsletter-app worker".to_string()),
            "{filled:?}"
        );

        let email = rb.find("email-delivery-issues").unwrap().link();
        let queue = [("queue".to_string(), "ai-insights".to_string())];
        let filled = commands(&rb.fill(&email, "worker", &queue));
        assert!(
            filled.contains(
                &"docker-compose exec redis redis-cli llen bull:ai-insights:waiting".to_string()
            ),
            "{filled:?}"
        );
        assert!(
            filled.contains(
                &"docker-compose exec redis redis-cli llen bull:ai-insights:failed".to_string()
            ),
            "{filled:?}"
        );
        let backlog = rb.find("issue-queue-backlog").unwrap().link();
        assert_eq!(
            commands(&rb.fill(&backlog, "worker", &queue)),
            commands(&backlog),
            "it names both queues"
        );
    }

    const SEED: &str = include_str!("../patterns/runbook.md");

    #[test]
    fn slugs_follow_github() {
        assert_eq!(slug("Issue: Queue Backlog"), "issue-queue-backlog");
        assert_eq!(
            slug("Database Connection Issues"),
            "database-connection-issues"
        );
        assert_eq!(slug("Monitoring and Alerts"), "monitoring-and-alerts");
    }

    #[test]
    fn procedures_carry_symptoms_steps_and_commands() {
        let rb = Runbook::parse(SEED);
        let db = rb.find("database-connection-issues").unwrap();
        assert_eq!(db.title, "Database Connection Issues");
        assert_eq!(db.sections, vec!["Emergency Procedures".to_string()]);
        assert!(
            db.symptoms
                .iter()
                .any(|s| s.contains("too many connections"))
        );
        assert_eq!(db.steps.len(), 4);
        assert_eq!(db.steps[0].text, "Check database status");
        assert_eq!(
            db.steps[0].commands,
            vec!["docker-compose exec postgres pg_isready"]
        );
        // A multi-line psql command stays one command.
        assert!(db.steps[2].commands[0].contains("pg_terminate_backend"));
        assert_eq!(db.steps[2].commands.len(), 1);

        let app = rb.find("application-down").unwrap();
        assert_eq!(app.steps.len(), 6, "{:#?}", app.steps);
        assert!(app.steps[5].text.starts_with("Escalation:"));
    }

    #[test]
    fn common_issues_split_code_blocks_into_commented_steps() {
        let rb = Runbook::parse(SEED);
        let q = rb.find("issue-queue-backlog").unwrap();
        assert_eq!(q.steps[0].text, "Check queue sizes");
        assert_eq!(q.steps[0].commands.len(), 2);
        assert!(q.steps.iter().any(|s| s.text == "Scale up workers"));
    }

    #[test]
    fn alert_items_become_procedures_with_keys() {
        let rb = Runbook::parse(SEED);
        let down = rb.find("critical-alerts:database-down").unwrap();
        assert_eq!(down.title, "Critical Alerts: Database Down");
        assert_eq!(down.anchor, "critical-alerts");
        assert_eq!(down.steps.len(), 4);
        assert!(down.steps[3].text.contains("data corruption"));
        assert!(rb.find("warning-alerts:high-latency").is_some());
    }

    #[test]
    fn required_procedures_are_the_emergency_common_and_alert_ones() {
        let rb = Runbook::parse(SEED);
        let mut keys: Vec<&str> = rb.required().map(|p| p.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "application-down",
                "critical-alerts:application-down",
                "critical-alerts:database-down",
                "database-connection-issues",
                "email-delivery-issues",
                "high-memory-usage",
                "issue-high-cpu-usage",
                "issue-queue-backlog",
                "issue-slow-database-queries",
                "issue-storage-issues",
                "warning-alerts:high-error-rate",
                "warning-alerts:high-latency",
            ]
        );
        assert_eq!(rb.escalation.len(), 3);
        assert!(rb.escalation[0].starts_with("Level 1"));
    }
}
