//! One incident's life: open → (joined by matches) → resolved after a quiet period → reopened
//! within the flap window, or succeeded by a new incident with a new id.
//!
//! [`Tracked`] is the engine's state of one incident: the [`Incident`] as it will be published, its
//! capped evidence, and when the next `Updated` change is due. Updates are sparse on purpose:
//! one when the count reaches 2×, 4×, 8×, … of its value at opening, so a storm of matches gives a
//! handful of changes, not one per line. (Severity rises in the engine, by the rule's
//! `critical_when`; escalation levels are driven by `incident::escalation`.)
//!
//! Times are event times. An incident resolves at `last_seen + resolve_after`: a match exactly at
//! that instant still joins, a later one finds it resolved. A qualifying match at most
//! `reopen_within` after the resolution reopens it with the same id.
//!
//! This module must not decide grouping or thresholds, nor emit changes itself: it returns what
//! happened and the engine turns that into [`crate::incident::Change`]s.

use crate::event::Timestamp;
use crate::incident::group::EvidenceBuf;
use crate::incident::{Evidence, Incident, State};

/// What a new (threshold-meeting) match means for a group whose last incident is `self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The incident is open: the match joins it.
    Join,
    /// The incident is resolved, but the match falls inside its lifetime (a late match): it is
    /// folded in without reopening.
    FoldLate,
    /// Resolved recently enough: the match reopens it (if the rule's threshold is met again).
    Reopen,
    /// Resolved too long ago: a new incident with a new id (if the threshold is met).
    New,
}

/// The engine's state of one incident.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tracked {
    /// The published shape, except `evidence`, which [`Tracked::snapshot`] fills from the buffer.
    pub incident: Incident,
    pub evidence: EvidenceBuf,
    pub resolve_after_secs: i64,
    /// The count at which the next `Updated` change is due.
    next_update: u64,
    /// Changed since the last change that was emitted for it.
    pub dirty: bool,
    /// When its escalation clock started (see `incident::escalation`); `None`: at `opened_at`.
    #[serde(default)]
    pub escalate_from: Option<Timestamp>,
    /// Event time it last opened or reopened; `None`: at `opened_at` (a state of an older run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_since: Option<Timestamp>,
}

impl Tracked {
    /// A freshly opened incident from the matches that met the threshold (`incident.count` and
    /// times already set by the caller from them).
    pub fn new(incident: Incident, evidence: EvidenceBuf, resolve_after_secs: i64) -> Tracked {
        let next_update = incident.count.max(1).saturating_mul(2);
        Tracked {
            incident,
            evidence,
            resolve_after_secs,
            next_update,
            dirty: false,
            escalate_from: None,
            open_since: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.incident.state == State::Open
    }

    /// The published incident, evidence included.
    pub fn snapshot(&self) -> Incident {
        let mut inc = self.incident.clone();
        inc.evidence = self.evidence.to_vec();
        inc
    }

    /// When the quiet period after the last match ends.
    pub fn resolve_at(&self) -> Timestamp {
        self.incident.last_seen.plus_secs(self.resolve_after_secs)
    }

    /// What a match at `ts` does to this incident.
    pub fn next_for(&self, ts: Timestamp, reopen_within_secs: i64) -> Next {
        match self.incident.resolved_at {
            None => Next::Join,
            Some(resolved) if ts <= resolved => Next::FoldLate,
            Some(resolved) if ts <= resolved.plus_secs(reopen_within_secs) => Next::Reopen,
            Some(_) => Next::New,
        }
    }

    /// Fold one match in. Returns true when the count has reached the next update milestone
    /// (2×, 4×, 8×, … of the count at opening): the caller emits an `Updated` change.
    pub fn join(&mut self, evidence: Evidence) -> bool {
        let inc = &mut self.incident;
        inc.count = inc.count.saturating_add(1);
        inc.last_seen = inc.last_seen.max(evidence.ts);
        if let Err(pos) = inc.services.binary_search(&evidence.service) {
            inc.services.insert(pos, evidence.service.clone());
        }
        self.evidence.push(evidence);
        self.dirty = true;
        if inc.state == State::Open && inc.count >= self.next_update {
            while self.next_update <= inc.count {
                self.next_update = self.next_update.saturating_mul(2);
            }
            return true;
        }
        false
    }

    /// Resolve at `last_seen + resolve_after`; returns that time.
    pub fn resolve(&mut self) -> Timestamp {
        let at = self.resolve_at();
        self.end(at);
        at
    }

    /// Resolve at `at` (an absence ends when the expected event is back).
    pub fn end(&mut self, at: Timestamp) {
        self.incident.state = State::Resolved;
        self.incident.resolved_at = Some(at);
    }

    /// Reopen with the matches that met the condition again: `matches` are kept as evidence and
    /// stand for `total` matches (more when the window held more than its evidence). The update
    /// milestones restart from the count after reopening.
    pub fn reopen(&mut self, matches: Vec<Evidence>, total: u64) {
        self.incident.state = State::Open;
        self.incident.resolved_at = None;
        let kept = matches.len() as u64;
        for evidence in matches {
            self.join(evidence);
        }
        self.incident.count = self
            .incident
            .count
            .saturating_add(total.saturating_sub(kept));
        self.next_update = self.incident.count.max(1).saturating_mul(2);
    }

    /// Whether it was already open at event time `at` (it opened or reopened at or before).
    pub fn open_at(&self, at: Timestamp) -> bool {
        self.is_open() && self.open_since.unwrap_or(self.incident.opened_at) <= at
    }

    /// Mark that a change carrying the current state has been emitted.
    pub fn emitted(&mut self) {
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Class, Severity};
    use crate::event::EventId;
    use crate::incident::{IncidentId, RunbookLink};

    fn ev(secs: i64) -> Evidence {
        ev_on(secs, "app")
    }

    fn ev_on(secs: i64, service: &str) -> Evidence {
        Evidence {
            event: EventId {
                fingerprint: 3,
                offset: secs as u64,
            },
            ts: Timestamp::from_secs(secs),
            service: service.into(),
            rule: "r".into(),
            text: String::new(),
        }
    }

    fn tracked(count: u64) -> Tracked {
        let incident = Incident {
            id: IncidentId("inc-0000000000000001".into()),
            class: Class::AppDown,
            severity: Severity::Critical,
            state: State::Open,
            title: "t".into(),
            rule: "r".into(),
            group: "r service=app".into(),
            services: vec!["app".into()],
            first_seen: Timestamp::from_secs(0),
            opened_at: Timestamp::from_secs(0),
            last_seen: Timestamp::from_secs(0),
            resolved_at: None,
            count,
            escalation_level: 0,
            caused_by: vec![],
            consequence: false,
            runbook: RunbookLink {
                title: String::new(),
                anchor: String::new(),
                steps: vec![],
            },
            evidence: vec![],
            silenced_by: None,
            acknowledged: None,
        };
        Tracked::new(incident, EvidenceBuf::new(4), 300)
    }

    #[test]
    fn updates_are_due_at_doublings_of_the_opening_count() {
        let mut t = tracked(3);
        let due: Vec<u64> = (1..=30)
            .filter_map(|i| t.join(ev(i)).then_some(t.incident.count))
            .collect();
        assert_eq!(due, vec![6, 12, 24]);
    }

    #[test]
    fn resolution_reopening_and_succession_follow_event_time() {
        let mut t = tracked(1);
        t.join(ev(100));
        assert_eq!(t.resolve_at(), Timestamp::from_secs(400));
        assert_eq!(t.next_for(Timestamp::from_secs(400), 600), Next::Join);
        assert_eq!(t.resolve(), Timestamp::from_secs(400));
        assert_eq!(t.next_for(Timestamp::from_secs(399), 600), Next::FoldLate);
        assert_eq!(t.next_for(Timestamp::from_secs(1000), 600), Next::Reopen);
        assert_eq!(t.next_for(Timestamp::from_secs(1001), 600), Next::New);
        t.reopen(vec![ev_on(500, "worker")], 1);
        assert!(t.is_open());
        assert_eq!(t.incident.count, 3);
        assert_eq!(t.incident.services, vec!["app", "worker"]);
        assert_eq!(t.incident.resolved_at, None);
    }
}
