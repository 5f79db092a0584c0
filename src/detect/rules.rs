//! The rule pack's schema: `patterns/*.toml` → validated, compiled [`RuleSet`].
//!
//! (Interface fixed here; loading/validation is filled in by the detect work.)

use std::sync::Arc;

use regex::Regex;

use crate::detect::predicate::Predicate;
use crate::detect::{Class, Severity};
use crate::event::Level;

/// When a rule's matches become an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The first match opens an incident.
    Immediate,
    /// `count >= n within W`: at least `n` matches of the same group within a sliding event-time
    /// window of `within_secs`.
    Count { n: u32, within_secs: i64 },
}

/// Where a rule or pack entry was written: `file:line` and the field, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id, unique in the pack (`pg-too-many-clients`). Part of incident ids.
    pub id: String,
    pub class: Class,
    pub severity: Severity,
    /// Short human title of what the rule detects ("PostgreSQL refuses connections: too many clients").
    pub title: String,
    /// Services the rule applies to; empty means every service.
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
    /// Event-time quiet period after the last match before the incident resolves (`resolve_after`).
    pub resolve_after_secs: i64,
    /// Fields or capture names whose values split incidents (`service` is always part of the key).
    pub group_by: Vec<String>,
    /// Runbook link: a procedure anchor (`database-connection-issues`) or `section:item` for the
    /// bold items of the Alert Response Procedures (`critical-alerts:database-down`).
    pub runbook: Vec<String>,
    /// Lines the rule must match, and lines it must not (checked by `rules check` and tests).
    pub examples: Vec<String>,
    pub counter_examples: Vec<String>,
    pub location: Location,
}

/// Every rule of a pack, compiled once and shared.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
}
