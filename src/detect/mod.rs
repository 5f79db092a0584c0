//! Events → matches: every rule of the pack applied to every event, at close to memory speed.
//!
//! Takes `&Events` and gives `Vec<Match>`. Matching is two-stage: one aho-corasick automaton over
//! every literal of every rule finds candidate events, and only those are confirmed by the rule's
//! regex and field predicates. This stage knows nothing of windows, counts or incidents: a match
//! says "this event fits this rule", and the incident engine decides what that means.
//!
//! [`Class`] and [`Severity`] live here rather than in `incident/` because rules declare them and
//! detect sits upstream of incident; `incident` re-exports them.

pub mod check;
pub mod condition;
pub mod lines;
pub mod matcher;
pub mod pack;
pub mod predicate;
pub mod prefilter;
pub mod rules;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::{EventId, Timestamp};

/// An incident class: one per runbook procedure family. The kebab-case names are an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    AppDown,
    DbConnection,
    DbDown,
    HighMemory,
    EmailDelivery,
    QueueBacklog,
    SlowQueries,
    HighCpu,
    Storage,
    Redis,
    HighErrorRate,
    HighLatency,
    Security,
}

impl Class {
    pub const ALL: [Class; 13] = [
        Class::AppDown,
        Class::DbConnection,
        Class::DbDown,
        Class::HighMemory,
        Class::EmailDelivery,
        Class::QueueBacklog,
        Class::SlowQueries,
        Class::HighCpu,
        Class::Storage,
        Class::Redis,
        Class::HighErrorRate,
        Class::HighLatency,
        Class::Security,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::AppDown => "app-down",
            Class::DbConnection => "db-connection",
            Class::DbDown => "db-down",
            Class::HighMemory => "high-memory",
            Class::EmailDelivery => "email-delivery",
            Class::QueueBacklog => "queue-backlog",
            Class::SlowQueries => "slow-queries",
            Class::HighCpu => "high-cpu",
            Class::Storage => "storage",
            Class::Redis => "redis",
            Class::HighErrorRate => "high-error-rate",
            Class::HighLatency => "high-latency",
            Class::Security => "security",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown incident class `{s}`"))
    }
}

/// How bad an incident is. Ordered: `Info < Warning < Error < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown severity `{s}`"))
    }
}

/// "This event fits this rule", with what the rule's regex captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub event: EventId,
    pub ts: Timestamp,
    /// Index of the rule in the [`rules::RuleSet`] that produced the match.
    pub rule: usize,
    pub service: String,
    /// Named captures of the rule's regex (and `group_by` field values), in rule order.
    pub captures: Vec<(String, String)>,
    /// The event's first line, cut to a few hundred bytes: evidence without an index lookup.
    pub excerpt: String,
}

/// Counters of the detect stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub candidates: u64,
    pub matches: u64,
}
