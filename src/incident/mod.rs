//! Matches → incident changes: grouping, conditions over event-time windows, lifecycle.
//!
//! Takes `Vec<Match>` and a watermark (event time up to which input is complete) and gives
//! `Vec<Change>`. Everything runs on event timestamps, never the wall clock, so a backfill of
//! yesterday's files yields the same incidents (ids, times) as tailing them live would have. This
//! stage must not read files, the index or the clock; it is a deterministic function of its input.

pub mod condition;
pub mod correlate;
pub mod engine;
pub mod escalation;
pub mod group;
pub mod lifecycle;
pub mod maintenance;
pub mod silence;
pub mod window;

pub use engine::{Engine, EngineConfig};
pub use silence::{Ack, Silence, SilenceId, SilenceRef};

use serde::{Deserialize, Serialize};

pub use crate::detect::{Class, Severity};
use crate::event::{EventId, Timestamp};

/// Stable incident id: derived from the rule, the group key and the first match's event, so the
/// same input always yields the same id (`inc-<16 hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub String);

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Resolved,
}

/// One step of a runbook procedure as it travels with an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookStep {
    pub text: String,
    pub commands: Vec<String>,
}

/// The runbook procedure an incident links to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookLink {
    pub title: String,
    pub anchor: String,
    pub steps: Vec<RunbookStep>,
}

/// One piece of evidence: an event that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub event: EventId,
    pub ts: Timestamp,
    pub service: String,
    pub rule: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub class: Class,
    pub severity: Severity,
    pub state: State,
    /// Human title: the rule's title plus where ("… on postgres").
    pub title: String,
    /// The rule that opened the incident.
    pub rule: String,
    /// Group key (rule id + group_by values).
    pub group: String,
    pub services: Vec<String>,
    /// Time of the first matching event (for a count condition, the earliest in the window).
    pub first_seen: Timestamp,
    /// Event time at which the condition was met and the incident raised.
    #[serde(default)]
    pub opened_at: Timestamp,
    pub last_seen: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Number of matches folded into the incident.
    pub count: u64,
    pub escalation_level: u8,
    /// Open incidents that explain this one (rules' `explains`), sorted, at most
    /// [`engine::MAX_CAUSES`].
    pub caused_by: Vec<IncidentId>,
    /// Explained by another incident: kept visible, but it does not page (escalate) on its own
    /// while a cause is open.
    #[serde(default)]
    pub consequence: bool,
    pub runbook: RunbookLink,
    /// The first matches and the latest ones, capped.
    pub evidence: Vec<Evidence>,
    /// The silence that holds over it, while one does: it is recorded, but neither notifies nor
    /// escalates ([`silence`]).
    #[serde(default)]
    pub silenced_by: Option<SilenceRef>,
    /// Who acknowledged it and when: it stays open but no longer escalates. Cleared when it
    /// reopens (a new occurrence pages again).
    #[serde(default)]
    pub acknowledged: Option<Ack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Opened,
    Updated,
    Escalated,
    Resolved,
    Reopened,
    /// It opened or reopened under a silence, or a silence started to cover it while open: it is
    /// recorded and shown, but nothing is notified.
    Silenced,
    /// The silence over it ended while it was open: it notifies now, once, and escalates from
    /// here.
    Unsilenced,
    /// An operator acknowledged it: it stays open, and no longer escalates.
    Acknowledged,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 8] = [
        ChangeKind::Opened,
        ChangeKind::Updated,
        ChangeKind::Escalated,
        ChangeKind::Resolved,
        ChangeKind::Reopened,
        ChangeKind::Silenced,
        ChangeKind::Unsilenced,
        ChangeKind::Acknowledged,
    ];

    /// The kind's name as the incident log and the feed spell it (`opened`, `updated`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Opened => "opened",
            ChangeKind::Updated => "updated",
            ChangeKind::Escalated => "escalated",
            ChangeKind::Resolved => "resolved",
            ChangeKind::Reopened => "reopened",
            ChangeKind::Silenced => "silenced",
            ChangeKind::Unsilenced => "unsilenced",
            ChangeKind::Acknowledged => "acknowledged",
        }
    }
}

/// A change to an incident, with the incident as it stands after it. `seq` is assigned by the
/// incident log when the change is stored (0 until then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub kind: ChangeKind,
    /// Event time of the change.
    pub at: Timestamp,
    pub incident: Incident,
}

/// Counters of the incident stage (monotone, so they export as Prometheus counters).
///
/// Invariant: `matches == joined + opened + pending`. Each processed match is counted once, by
/// what it did when it was applied: it joined an open incident, it opened (or reopened) one, or
/// it left its group below the rule's threshold (pending). A count rule's window matches that
/// lead to an opening stay counted as pending; only the match that crosses the threshold counts as
/// opened. Buffered matches not yet processed are in none of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub matches: u64,
    pub joined: u64,
    pub opened: u64,
    pub pending: u64,
    pub resolved: u64,
    /// Matches that arrived after the watermark had already passed their event time.
    pub late: u64,
    /// Matches naming a rule index outside the engine's RuleSet (ignored, not in `matches`).
    pub unknown_rule: u64,
}
