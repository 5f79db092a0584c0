//! The rule pack's schema: `patterns/*.toml` → validated, compiled [`RuleSet`].
//!
//! Owns the TOML format of a rule (one `[[rule]]` table per rule, `deny_unknown_fields`), its
//! validation and its compilation (regex, predicates, condition, durations). Every error names the
//! file, the line and the field, and unknown keys get a did-you-mean, because a rule file is written
//! by hand under pressure. Takes file names and texts, gives a [`RuleSet`]; it must not scan events
//! (that is `matcher`) nor read the runbook except to resolve links when asked ([`RuleSet::link_errors`]).
//!
//! ```toml
//! [[rule]]
//! id = "pg-too-many-clients"
//! class = "db-connection"
//! severity = "critical"
//! title = "PostgreSQL refuses connections: too many clients"
//! services = ["postgres"]
//! literals = ["too many clients already"]
//! regex = 'FATAL:\s+(?P<reason>sorry, too many clients already)'
//! where = ["res.statusCode >= 500"]
//! level = "error"
//! condition = "count >= 20 within 1m"   # the forms: `detect::condition`
//! critical_when = "count >= 200 within 1m"  # severity rises to critical while open
//! group_by = ["ip"]
//! resolve_after = "5m"
//! escalate = "immediately"          # or "5m"; default: the runbook's escalation matrix
//! explains = ["app-down", "high-error-rate"]  # incidents of these classes are consequences
//! explains_in = ["app", "worker"]   # … on these services (default: the rule's own)
//! explains_within = "5m"            # … opened within this time of its matches (default 5m)
//! runbook = ["database-connection-issues"]
//! examples = ['… FATAL:  sorry, too many clients already']
//! counter_examples = ['…']
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::config::did_you_mean;
use crate::detect::predicate::Predicate;
use crate::detect::{Class, Severity};
use crate::event::Level;
use crate::runbook::Runbook;

pub use crate::detect::condition::Condition;

/// Read a duration such as `30s`, `5m`, `2h`, `1d` into seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "duration `{text}` must be a whole number followed by s, m, h or d (30s, 5m, 2h, 1d)"
            ));
        }
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("duration `{text}` must start with a whole number"))?;
    if n == 0 {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    n.checked_mul(unit_secs)
        .ok_or_else(|| format!("duration `{text}` is too long"))
}

/// Where a rule was written (`file:line`; the field is named by the error that carries it).
pub use crate::config::Location;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id, unique in the pack (`pg-too-many-clients`). Part of incident ids.
    pub id: String,
    pub class: Class,
    pub severity: Severity,
    /// Short human title of what the rule detects ("PostgreSQL refuses connections: too many clients").
    pub title: String,
    /// Services the rule applies to (see [`Rule::applies_to`]); empty means every service.
    pub services: Vec<String>,
    /// Literals for the prefilter: an event is a candidate when its raw text contains any of them.
    pub literals: Vec<String>,
    /// Optional confirmation regex over the event's raw text, with named captures.
    pub regex: Option<Regex>,
    /// Field conditions that must all hold (`res.statusCode >= 500`).
    pub predicates: Vec<Predicate>,
    /// Minimum event level, if any.
    pub min_level: Option<Level>,
    pub condition: Condition,
    /// The line of `condition` (of the header when the rule has none).
    pub condition_line: usize,
    /// A second condition over the same group: while it holds the open incident is critical.
    pub critical_when: Option<Condition>,
    /// Event-time quiet period after the last match before the incident resolves (`resolve_after`).
    pub resolve_after_secs: i64,
    /// When the incident goes past level 1 of the escalation matrix, if the rule says so
    /// (`escalate = "immediately"` or `"5m"`); `None`: its runbook procedures' or the matrix's times.
    pub escalate_after_secs: Option<i64>,
    /// Fields or capture names whose values split incidents (`service` is always part of the key).
    pub group_by: Vec<String>,
    /// Every field the matcher captures for the engine besides the regex's named groups: the
    /// `group_by` names, the fields the conditions read, and the `group_by` names of the rates
    /// that count this rule as their base (filled in by [`RuleSet::from_files`]).
    pub capture_fields: Vec<String>,
    /// Classes whose incidents this rule's incidents explain (cause → consequence).
    pub explains: Vec<Class>,
    /// Services on which the explained incidents are (empty: the cause's own services).
    pub explains_in: Vec<String>,
    /// How long before its first match or after its last a consequence may open and be explained.
    pub explains_within_secs: i64,
    /// Runbook link: a procedure anchor (`database-connection-issues`) or `section:item` for the
    /// bold items of the Alert Response Procedures (`critical-alerts:database-down`).
    pub runbook: Vec<String>,
    /// Lines the rule must match, and lines it must not (checked by `rules check` and tests).
    pub examples: Vec<String>,
    pub counter_examples: Vec<String>,
    /// The line of the rule's `[[rule]]` header.
    pub location: Location,
}

impl Rule {
    /// Whether the rule applies to events of `service`: every service when the rule names none,
    /// else a named one equal to the event's service or to one of its words (split on `-`, `_`,
    /// `.`), so `app` covers the compose service `newsletter-app` and `postgres` covers
    /// `postgres-replica`, while `app` does not cover `application`.
    pub fn applies_to(&self, service: &str) -> bool {
        self.services.is_empty()
            || self.services.iter().any(|s| {
                s == service
                    || service
                        .split(['-', '_', '.'])
                        .any(|word| word == s.as_str())
            })
    }
}

/// Every rule of a pack, compiled once and shared.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
}

/// A rule file that cannot be used, with the file, line and field to fix.
#[derive(thiserror::Error, Debug)]
pub enum RuleError {
    #[error("{}: cannot read rules: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Broken TOML (a missing quote, a duplicated key).
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: unknown field `{field}`{}", hint(suggestion.as_deref()))]
    UnknownField {
        file: String,
        line: usize,
        field: String,
        suggestion: Option<String>,
    },
    #[error("{file}:{line}: field `{field}`: {message}")]
    Field {
        file: String,
        line: usize,
        field: String,
        message: String,
    },
    #[error("{file}:{line}: field `id`: rule `{id}` is already defined at {first}")]
    DuplicateId {
        file: String,
        line: usize,
        id: String,
        first: Location,
    },
    #[error(
        "{file}:{line}: rule `{rule}`: field `runbook`: `{link}` is not a procedure of the runbook{}",
        hint(suggestion.as_deref())
    )]
    UnresolvedLink {
        file: String,
        line: usize,
        rule: String,
        link: String,
        suggestion: Option<String>,
    },
    #[error(transparent)]
    Prefilter(#[from] crate::detect::prefilter::PrefilterError),
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(", did you mean `{s}`?"))
        .unwrap_or_default()
}

/// Keys a `[[rule]]` table may hold (for did-you-mean).
const RULE_FIELDS: [&str; 21] = [
    "id",
    "class",
    "severity",
    "title",
    "services",
    "literals",
    "regex",
    "where",
    "level",
    "condition",
    "critical_when",
    "group_by",
    "resolve_after",
    "escalate",
    "explains",
    "explains_in",
    "explains_within",
    "runbook",
    "examples",
    "counter_examples",
    "rule",
];

/// Regexes of rules are bounded: a rule file must not be able to eat the memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Default quiet period before an incident resolves.
pub const DEFAULT_RESOLVE_AFTER_SECS: i64 = 300;

/// Default `explains_within`.
pub const DEFAULT_EXPLAINS_WITHIN_SECS: i64 = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    class: Spanned<String>,
    severity: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    services: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    literals: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    regex: Option<Spanned<String>>,
    #[serde(default, rename = "where")]
    predicates: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    level: Option<Spanned<String>>,
    #[serde(default)]
    condition: Option<Spanned<String>>,
    #[serde(default)]
    critical_when: Option<Spanned<String>>,
    #[serde(default)]
    group_by: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    resolve_after: Option<Spanned<String>>,
    #[serde(default)]
    escalate: Option<Spanned<String>>,
    #[serde(default)]
    explains: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    explains_in: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    explains_within: Option<Spanned<String>>,
    runbook: Spanned<OneOrMany>,
    #[serde(default)]
    examples: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    counter_examples: Option<Spanned<Vec<String>>>,
}

/// Byte offsets → 1-based line numbers of one file.
struct Lines<'a> {
    file: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(file: &'a str, text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { file, starts }
    }
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
    fn field_error<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: String,
    ) -> Result<T, RuleError> {
        Err(RuleError::Field {
            file: self.file.to_string(),
            line: self.line(span.start),
            field: field.to_string(),
            message,
        })
    }
}

/// Turn toml's own error (syntax, unknown key, wrong type, missing key) into a located one.
fn toml_error(lines: &Lines<'_>, text: &str, err: &toml::de::Error) -> RuleError {
    let span = err.span().unwrap_or(0..0);
    let line = lines.line(span.start);
    let message = err.message().trim().to_string();
    let file = lines.file.to_string();
    if let Some(field) = backticked_after(&message, "unknown field `") {
        let suggestion = did_you_mean(&field, RULE_FIELDS.iter().copied()).map(str::to_string);
        return RuleError::UnknownField {
            file,
            line,
            field,
            suggestion,
        };
    }
    if let Some(field) = backticked_after(&message, "missing field `") {
        return RuleError::Field {
            file,
            line,
            field,
            message: "missing; every rule needs id, class, severity, title and runbook".into(),
        };
    }
    // A type error: name the key written on the offending line, if there is one.
    let line_text = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| RULE_FIELDS.contains(&k.as_str()));
    match key {
        Some(field) => RuleError::Field {
            file,
            line,
            field,
            message,
        },
        None => RuleError::Syntax {
            file,
            line,
            message,
        },
    }
}

fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn compile(lines: &Lines<'_>, raw: Spanned<RawRule>) -> Result<Rule, RuleError> {
    let header_line = lines.line(raw.span().start);
    let raw = raw.into_inner();

    let id = raw.id.get_ref().trim().to_string();
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return lines.field_error(
            raw.id.span(),
            "id",
            format!("`{id}`: use lowercase letters, digits and `-` (e.g. `pg-too-many-clients`)"),
        );
    }

    let class: Class = match raw.class.get_ref().parse() {
        Ok(c) => c,
        Err(e) => {
            let hint = hint(did_you_mean(
                raw.class.get_ref(),
                Class::ALL.iter().map(|c| c.as_str()),
            ));
            return lines.field_error(raw.class.span(), "class", format!("{e}{hint}"));
        }
    };
    let severity: Severity = match raw.severity.get_ref().parse() {
        Ok(s) => s,
        Err(e) => {
            return lines.field_error(
                raw.severity.span(),
                "severity",
                format!("{e} (expected info, warning, error or critical)"),
            );
        }
    };
    let title = raw.title.get_ref().trim().to_string();
    if title.is_empty() {
        return lines.field_error(raw.title.span(), "title", "must not be empty".into());
    }

    let services = raw.services.map(Spanned::into_inner).unwrap_or_default();

    let literals = match raw.literals {
        Some(l) => {
            let span = l.span();
            let list = l.into_inner();
            if list.iter().any(|s| s.is_empty()) {
                return lines.field_error(
                    span,
                    "literals",
                    "an empty literal matches every line".into(),
                );
            }
            list
        }
        None => Vec::new(),
    };

    let regex = match raw.regex {
        Some(r) => match RegexBuilder::new(r.get_ref())
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                let detail = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return lines.field_error(r.span(), "regex", format!("bad regex: {detail}"));
            }
        },
        None => None,
    };

    let mut predicates = Vec::new();
    if let Some(list) = raw.predicates {
        for text in list.into_inner() {
            match Predicate::parse(text.get_ref()) {
                Ok(p) => predicates.push(p),
                Err(e) => return lines.field_error(text.span(), "where", e.to_string()),
            }
        }
    }

    let min_level = match raw.level {
        Some(l) => match l.get_ref().parse::<Level>() {
            Ok(level) => Some(level),
            Err(e) => return lines.field_error(l.span(), "level", e),
        },
        None => None,
    };

    let (condition, condition_line) = match raw.condition {
        Some(c) => match Condition::parse(c.get_ref()) {
            Ok(cond) => (cond, lines.line(c.span().start)),
            Err(e) => return lines.field_error(c.span(), "condition", e),
        },
        None => (Condition::Immediate, header_line),
    };
    let critical_when = match raw.critical_when {
        Some(c) => match Condition::parse(c.get_ref()) {
            Ok(cond)
                if cond.is_windowed()
                    && !matches!(condition, Condition::Never | Condition::Absent { .. }) =>
            {
                Some(cond)
            }
            Ok(_) => {
                return lines.field_error(
                    c.span(),
                    "critical_when",
                    "needs a condition over a window (count, distinct, an aggregate or a rate), \
                     on a rule that opens on matches (not `never` or `absent`)"
                        .into(),
                );
            }
            Err(e) => return lines.field_error(c.span(), "critical_when", e),
        },
        None => None,
    };

    let resolve_after_secs = match raw.resolve_after {
        Some(r) => match parse_duration(r.get_ref()) {
            Ok(secs) => secs,
            Err(e) => return lines.field_error(r.span(), "resolve_after", e),
        },
        None => DEFAULT_RESOLVE_AFTER_SECS,
    };

    let escalate_after_secs = match raw.escalate {
        Some(e) if e.get_ref().trim() == "immediately" => Some(0),
        Some(e) => match parse_duration(e.get_ref()) {
            Ok(secs) => Some(secs),
            Err(msg) => {
                return lines.field_error(
                    e.span(),
                    "escalate",
                    format!("{msg}; or \"immediately\""),
                );
            }
        },
        None => None,
    };

    let group_by = match raw.group_by {
        Some(g) => {
            let span = g.span();
            let list = g.into_inner();
            if let Some(bad) = list.iter().find(|s| s.trim().is_empty()) {
                return lines.field_error(span, "group_by", format!("`{bad}` is not a field path"));
            }
            list
        }
        None => Vec::new(),
    };

    let explains = match raw.explains {
        Some(list) => {
            let span = list.span();
            let mut classes = Vec::new();
            for name in list.into_inner() {
                match name.parse::<Class>() {
                    Ok(c) => classes.push(c),
                    Err(e) => {
                        let hint = hint(did_you_mean(&name, Class::ALL.iter().map(|c| c.as_str())));
                        return lines.field_error(span, "explains", format!("{e}{hint}"));
                    }
                }
            }
            classes
        }
        None => Vec::new(),
    };
    let explains_in = raw.explains_in.map(Spanned::into_inner).unwrap_or_default();
    let explains_within_secs = match raw.explains_within {
        Some(w) => match parse_duration(w.get_ref()) {
            Ok(secs) => secs,
            Err(e) => return lines.field_error(w.span(), "explains_within", e),
        },
        None => DEFAULT_EXPLAINS_WITHIN_SECS,
    };

    let runbook_span = raw.runbook.span();
    let runbook = match raw.runbook.into_inner() {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    if runbook.is_empty() || runbook.iter().any(|l| l.trim().is_empty()) {
        return lines.field_error(
            runbook_span,
            "runbook",
            "name at least one procedure key (e.g. \"database-connection-issues\")".into(),
        );
    }

    Ok(Rule {
        id,
        class,
        severity,
        title,
        services,
        literals,
        regex,
        predicates,
        min_level,
        capture_fields: capture_fields(&group_by, &condition, critical_when.as_ref()),
        condition,
        condition_line,
        critical_when,
        resolve_after_secs,
        escalate_after_secs,
        group_by,
        explains,
        explains_in,
        explains_within_secs,
        runbook,
        examples: raw.examples.map(Spanned::into_inner).unwrap_or_default(),
        counter_examples: raw
            .counter_examples
            .map(Spanned::into_inner)
            .unwrap_or_default(),
        location: Location {
            file: lines.file.to_string(),
            line: header_line,
            field: None,
        },
    })
}

/// The fields a rule's matches must carry: its `group_by` names and the fields its conditions read.
fn capture_fields(
    group_by: &[String],
    condition: &Condition,
    critical_when: Option<&Condition>,
) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let read = [condition.field(), critical_when.and_then(Condition::field)];
    for name in group_by
        .iter()
        .map(String::as_str)
        .chain(read.into_iter().flatten())
    {
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_string());
        }
    }
    fields
}

/// Check that every rate names a base rule of the set (not itself), and make each base rule
/// capture the `group_by` fields of the rates counting it, so its matches find their groups.
fn link_bases(rules: &mut [Rule]) -> Result<(), RuleError> {
    for i in 0..rules.len() {
        let Some(base) = rules[i].condition.base().map(str::to_string) else {
            continue;
        };
        let found = rules.iter().position(|r| r.id == base).filter(|&b| b != i);
        let Some(b) = found else {
            let rule = &rules[i];
            let suggestion = did_you_mean(
                &base,
                rules
                    .iter()
                    .filter(|r| r.id != rule.id)
                    .map(|r| r.id.as_str()),
            );
            return Err(RuleError::Field {
                file: rule.location.file.clone(),
                line: rule.condition_line,
                field: "condition".into(),
                message: format!(
                    "the rate's base `{base}` is not another rule of the pack{}",
                    hint(suggestion)
                ),
            });
        };
        let wanted = rules[i].group_by.clone();
        for name in wanted {
            if !rules[b].capture_fields.contains(&name) {
                rules[b].capture_fields.push(name);
            }
        }
    }
    Ok(())
}

impl RuleSet {
    /// Load rules from `(file name, TOML text)` pairs, in the order given. Ids must be unique across
    /// all files; a rate's base must be a rule of the set.
    pub fn from_files(files: &[(String, String)]) -> Result<RuleSet, RuleError> {
        let mut rules: Vec<Rule> = Vec::new();
        for (name, text) in files {
            let lines = Lines::new(name, text);
            let parsed: RawFile = toml::from_str(text).map_err(|e| toml_error(&lines, text, &e))?;
            for raw in parsed.rule {
                let id_span = raw.get_ref().id.span();
                let rule = compile(&lines, raw)?;
                if let Some(first) = rules.iter().find(|r| r.id == rule.id) {
                    return Err(RuleError::DuplicateId {
                        file: name.clone(),
                        line: lines.line(id_span.start),
                        id: rule.id.clone(),
                        first: first.location.clone(),
                    });
                }
                rules.push(rule);
            }
        }
        link_bases(&mut rules)?;
        Ok(RuleSet {
            rules: rules.into_iter().map(Arc::new).collect(),
        })
    }

    /// Load every `*.toml` of a directory, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleError> {
        let io = |source| RuleError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| RuleError::Io {
                path: path.clone(),
                source,
            })?;
            files.push((path.display().to_string(), text));
        }
        RuleSet::from_files(&files)
    }

    /// A rule by id.
    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The index of a rule by id (what [`crate::detect::Match::rule`] holds).
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every runbook link that names no procedure of `runbook`, located at its rule.
    pub fn link_errors(&self, runbook: &Runbook) -> Vec<RuleError> {
        let mut errors = Vec::new();
        for rule in &self.rules {
            for link in &rule.runbook {
                if runbook.find(link).is_none() {
                    let suggestion =
                        did_you_mean(link, runbook.procedures.iter().map(|p| p.key.as_str()))
                            .map(str::to_string);
                    errors.push(RuleError::UnresolvedLink {
                        file: rule.location.file.clone(),
                        line: rule.location.line,
                        rule: rule.id.clone(),
                        link: link.clone(),
                        suggestion,
                    });
                }
            }
        }
        errors
    }
}

/// A bare rule for tests elsewhere in the crate: immediate, no literal, five minutes' quiet.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn rule(id: &str) -> Rule {
        Rule {
            id: id.into(),
            class: Class::DbConnection,
            severity: Severity::Error,
            title: format!("{id} title"),
            services: vec![],
            literals: vec![],
            regex: None,
            predicates: vec![],
            min_level: None,
            condition: Condition::Immediate,
            condition_line: 0,
            critical_when: None,
            resolve_after_secs: DEFAULT_RESOLVE_AFTER_SECS,
            escalate_after_secs: None,
            group_by: vec![],
            capture_fields: vec![],
            explains: vec![],
            explains_in: vec![],
            explains_within_secs: DEFAULT_EXPLAINS_WITHIN_SECS,
            runbook: vec!["database-connection-issues".into()],
            examples: vec![],
            counter_examples: vec![],
            location: Location::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[rule]]
id = "pg-too-many-clients"
class = "db-connection"
severity = "critical"
title = "PostgreSQL refuses connections: too many clients"
services = ["postgres"]
literals = ["too many clients already"]
regex = 'FATAL:\s+(?P<reason>sorry, too many clients already)'
where = ["pid > 0"]
condition = "count >= 20 within 1m"
resolve_after = "10m"
runbook = "database-connection-issues"
examples = ['2026-11-28 14:02:03.123 UTC [4301] newsletter@newsletter FATAL:  sorry, too many clients already']
"#;

    fn load(text: &str) -> Result<RuleSet, RuleError> {
        RuleSet::from_files(&[("patterns/database.toml".to_string(), text.to_string())])
    }

    /// Replace one line of GOOD (1-based in the file as written, the first line being empty).
    fn with_line(line_no: usize, replacement: &str) -> String {
        GOOD.lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == line_no { replacement } else { l })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_good_rule_compiles() {
        let set = load(GOOD).unwrap();
        let rule = set.get("pg-too-many-clients").unwrap();
        assert_eq!(rule.class, Class::DbConnection);
        assert_eq!(rule.severity, Severity::Critical);
        assert_eq!(
            rule.condition,
            Condition::Count {
                n: 20,
                within_secs: 60
            }
        );
        assert_eq!(rule.resolve_after_secs, 600);
        assert_eq!(rule.runbook, vec!["database-connection-issues"]);
        assert_eq!(rule.location.line, 2);
        assert_eq!(rule.predicates.len(), 1);
        assert_eq!(set.index_of("pg-too-many-clients"), Some(0));
        assert_eq!(
            rule.escalate_after_secs, None,
            "the runbook's times by default"
        );
        for (value, want) in [("immediately", Some(0)), ("5m", Some(300))] {
            let text = with_line(12, &format!("escalate = \"{value}\""));
            let set = load(&text).unwrap();
            assert_eq!(set.rules[0].escalate_after_secs, want, "{value}");
        }
    }

    #[test]
    fn a_misspelt_key_names_file_line_and_suggests() {
        let text = with_line(8, r#"literal = ["too many clients already"]"#);
        let err = load(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "patterns/database.toml:8: unknown field `literal`, did you mean `literals`?"
        );
    }

    #[test]
    fn a_bad_condition_names_file_line_and_field() {
        let text = with_line(11, r#"condition = "count > 5""#);
        let err = load(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "patterns/database.toml:11: field `condition`: expected {}, got \"count > 5\"",
                crate::detect::condition::FORMS
            )
        );
        let text = with_line(11, r#"condition = "count >= 5 within 5 minutes""#);
        assert!(load(&text).is_err());
    }

    #[test]
    fn an_unknown_class_is_refused_with_a_suggestion() {
        let text = with_line(4, r#"class = "db-conection""#);
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "patterns/database.toml:4: field `class`: unknown incident class `db-conection`"
            ),
            "{err}"
        );
        assert!(err.ends_with("did you mean `db-connection`?"), "{err}");
    }

    #[test]
    fn a_bad_regex_names_its_line() {
        let text = with_line(9, r#"regex = 'FATAL:\s+(?P<reason>sorry'"#);
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("patterns/database.toml:9: field `regex`: bad regex"),
            "{err}"
        );
    }

    #[test]
    fn other_field_mistakes_are_located() {
        for (line, text, want) in [
            (10, r#"where = ["pid >> 0"]"#, ":10: field `where`:"),
            (
                12,
                r#"resolve_after = "5 minutes""#,
                ":12: field `resolve_after`:",
            ),
            (5, r#"severity = "loud""#, ":5: field `severity`:"),
            (7, r#"services = "postgres""#, ":7: field `services`:"),
            (3, r#"id = "Has Spaces""#, ":3: field `id`:"),
            (13, r#"runbook = []"#, ":13: field `runbook`:"),
            (12, r#"escalate = "soon""#, ":12: field `escalate`:"),
        ] {
            let err = load(&with_line(line, text)).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let err = load(&with_line(6, "")).unwrap_err().to_string();
        assert!(err.contains("field `title`: missing"), "{err}");
        let err = load("[[rule]\nid = 1").unwrap_err().to_string();
        assert!(err.starts_with("patterns/database.toml:1: "), "{err}");
    }

    #[test]
    fn duplicate_ids_across_files_are_refused() {
        let files = vec![
            ("a.toml".to_string(), GOOD.to_string()),
            ("b.toml".to_string(), GOOD.to_string()),
        ];
        let err = RuleSet::from_files(&files).unwrap_err().to_string();
        assert_eq!(
            err,
            "b.toml:3: field `id`: rule `pg-too-many-clients` is already defined at a.toml:2"
        );
    }

    #[test]
    fn unresolved_runbook_links_name_the_rule_and_suggest() {
        let text = with_line(13, r#"runbook = ["database-conection-issues"]"#);
        let set = load(&text).unwrap();
        let runbook = Runbook::parse(include_str!("../../patterns/runbook.md"));
        let errors = set.link_errors(&runbook);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "patterns/database.toml:2: rule `pg-too-many-clients`: field `runbook`: `database-conection-issues` is not a procedure of the runbook, did you mean `database-connection-issues`?"
        );
        assert!(load(GOOD).unwrap().link_errors(&runbook).is_empty());
    }

    #[test]
    fn load_dir_reads_every_toml_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), GOOD.replace("pg-too", "pg-b")).unwrap();
        std::fs::write(dir.path().join("a.toml"), GOOD.replace("pg-too", "pg-a")).unwrap();
        std::fs::write(dir.path().join("notes.md"), "not rules").unwrap();
        let set = RuleSet::load_dir(dir.path()).unwrap();
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["pg-a-many-clients", "pg-b-many-clients"]);
        assert!(RuleSet::load_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("5").is_err());
    }

    const SENDS: &str = r#"
[[rule]]
id = "resend-sends"
class = "email-delivery"
severity = "info"
title = "sends"
literals = ["resend"]
condition = "never"
runbook = "email-delivery-issues"

[[rule]]
id = "resend-failures"
class = "email-delivery"
severity = "warning"
title = "failures"
literals = ["resend failed"]
condition = "rate >= 5% of resend-sends within 5m min 20"
critical_when = "rate >= 50% of resend-sends within 5m min 20"
group_by = ["queue"]
explains = ["high-error-rate"]
explains_in = ["app"]
explains_within = "5m"
runbook = "email-delivery-issues"
"#;

    #[test]
    fn rates_name_their_base_and_the_base_captures_their_groups() {
        let set = load(SENDS).unwrap();
        let base = set.get("resend-sends").unwrap();
        assert_eq!(base.capture_fields, vec!["queue"]);
        let rate = set.get("resend-failures").unwrap();
        assert_eq!(rate.condition.base(), Some("resend-sends"));
        assert!(rate.critical_when.is_some());
        assert_eq!(rate.explains, vec![Class::HighErrorRate]);
        assert_eq!(rate.explains_in, vec!["app"]);
        assert_eq!(rate.explains_within_secs, 300);

        let err = load(&SENDS.replace(
            "of resend-sends within 5m min",
            "of resend-send within 5m min",
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "patterns/database.toml:17: field `condition`: the rate's base `resend-send` is not another rule of the pack, did you mean `resend-sends`?"
        );
        let err = load(&SENDS.replace(
            "of resend-sends within 5m min 20\"\n",
            "of resend-failures within 5m\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":17: field `condition`: the rate's base `resend-failures`"),
            "{err}"
        );
    }

    #[test]
    fn severity_and_correlation_mistakes_are_located() {
        let err = load(&SENDS.replace(
            "critical_when = \"rate",
            "critical_when = \"absent for 1m\"\n#",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "patterns/database.toml:18: field `critical_when`: needs a condition over a window"
            ),
            "{err}"
        );
        let err = load(&SENDS.replace("\"high-error-rate\"", "\"high-eror-rate\""))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("patterns/database.toml:20: field `explains`: unknown incident class `high-eror-rate`"), "{err}");
        assert!(err.ends_with("did you mean `high-error-rate`?"), "{err}");
        let err = load(&SENDS.replace("explains_within = \"5m\"", "explains_within = \"soon\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("patterns/database.toml:22: field `explains_within`:"),
            "{err}"
        );
    }
}
