//! The incident engine: matches in, in event-time order; incident changes out.
//!
//! Matches arrive in whatever order the sources deliver them. [`Engine::push`] puts them in a
//! reorder buffer; [`Engine::advance`] takes a watermark (the newest event time seen) and applies
//! every buffered match with `ts <= watermark - lateness`, in `(ts, event id, rule)` order. Before
//! a match at `t` is applied, every open incident whose quiet period ended before `t` is resolved,
//! so the changes come out in event-time order whatever the batching: the same matches give the
//! same changes (ids, times, order) live or in a backfill, as long as no match arrives more than
//! `lateness` behind the watermark. A match that does ([`Stats::late`]) is still applied, against
//! the state as it stands.
//!
//! For each match: the group key ([`group`]) picks the group; an open incident absorbs it;
//! otherwise the group's window ([`window`]) collects it until the rule's threshold
//! ([`condition`]) is met, and then an incident opens, or reopens if the group's last incident
//! resolved less than `reopen_within` ago ([`lifecycle`]). Opening links causes and consequences
//! ([`correlate`]). Groups that can no longer influence anything are dropped as the watermark
//! advances, so memory follows the number of active groups, not the length of the input.
//!
//! The engine must not read the wall clock, files or the index.
//!
//! [`group`]: crate::incident::group
//! [`window`]: crate::incident::window
//! [`condition`]: crate::incident::condition
//! [`lifecycle`]: crate::incident::lifecycle
//! [`correlate`]: crate::incident::correlate

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use crate::detect::Match;
use crate::detect::rules::{Rule, RuleSet};
use crate::event::{EventId, Timestamp};
use crate::incident::condition::Threshold;
use crate::incident::correlate;
use crate::incident::group::{self, EvidenceBuf, GroupKey};
use crate::incident::lifecycle::{Next, Tracked};
use crate::incident::window::CountWindow;
use crate::incident::{
    Change, ChangeKind, Evidence, Incident, IncidentId, RunbookLink, State, Stats,
};
use crate::runbook::Runbook;

/// Tuning of the engine. All durations are event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// How far behind the watermark a match may arrive and still be applied in order.
    pub lateness_secs: i64,
    /// Evidence kept per incident: the first half and the latest half.
    pub evidence_cap: usize,
    /// A group's qualifying match this soon after its incident resolved reopens it (same id).
    pub reopen_within_secs: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness_secs: 60,
            evidence_cap: 20,
            reopen_within_secs: 600,
        }
    }
}

/// A buffered match, ordered by `(ts, event id, rule)` only.
#[derive(Debug)]
struct Buffered(Match);

impl Buffered {
    fn key(&self) -> (Timestamp, EventId, usize) {
        (self.0.ts, self.0.event, self.0.rule)
    }
}

impl PartialEq for Buffered {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Buffered {}
impl PartialOrd for Buffered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Buffered {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The state of one group: its window of pending matches and its latest incident.
#[derive(Debug)]
struct Group {
    window: CountWindow,
    last: Option<Tracked>,
}

pub struct Engine {
    rules: Arc<RuleSet>,
    config: EngineConfig,
    /// Per rule, by index: its threshold and its resolved runbook link.
    thresholds: Vec<Threshold>,
    links: Vec<RunbookLink>,
    buffer: BinaryHeap<Reverse<Buffered>>,
    groups: BTreeMap<GroupKey, Group>,
    /// Open incidents by the time their quiet period ends.
    deadlines: BTreeSet<(Timestamp, GroupKey)>,
    /// Every match with `ts <=` this has been applied.
    processed: Option<Timestamp>,
    /// The newest event time known: of a match, or a watermark.
    newest: Option<Timestamp>,
    stats: Stats,
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>, runbook: Arc<Runbook>, config: EngineConfig) -> Engine {
        let thresholds = rules
            .rules
            .iter()
            .map(|r| Threshold::of(&r.condition))
            .collect();
        let links = rules.rules.iter().map(|r| link_of(r, &runbook)).collect();
        Engine {
            rules,
            config,
            thresholds,
            links,
            buffer: BinaryHeap::new(),
            groups: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            processed: None,
            newest: None,
            stats: Stats::default(),
        }
    }

    /// Buffer matches until the watermark passes them.
    pub fn push(&mut self, matches: Vec<Match>) {
        for m in matches {
            if self.processed.is_some_and(|p| m.ts <= p) {
                self.stats.late += 1;
            }
            self.newest = self.newest.max(Some(m.ts));
            self.buffer.push(Reverse(Buffered(m)));
        }
    }

    /// Apply every buffered match with `ts <= max_event_time - lateness` and resolve the incidents
    /// whose quiet period ended before that point.
    pub fn advance(&mut self, max_event_time: Timestamp) -> Vec<Change> {
        self.newest = self.newest.max(Some(max_event_time));
        let frontier = max_event_time.plus_secs(self.config.lateness_secs.saturating_neg());
        let upto = self.processed.max(Some(frontier)).unwrap_or(frontier);
        let mut out = Vec::new();
        self.apply_buffered(Some(upto), &mut out);
        self.resolve_before(upto, &mut out);
        self.processed = Some(upto);
        self.collect_idle(upto);
        out
    }

    /// End of input: apply everything buffered, resolve what the newest event time allows, and
    /// emit an `Updated` snapshot of every open incident that changed since its last change.
    pub fn finish(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        self.apply_buffered(None, &mut out);
        let Some(end) = self.newest.max(self.processed) else {
            return out;
        };
        self.resolve_before(end, &mut out);
        self.processed = Some(end);

        let mut dirty: Vec<&mut Tracked> = self
            .groups
            .values_mut()
            .filter_map(|g| g.last.as_mut())
            .filter(|t| t.is_open() && t.dirty)
            .collect();
        dirty.sort_by(|a, b| {
            (a.incident.first_seen, &a.incident.id).cmp(&(b.incident.first_seen, &b.incident.id))
        });
        for t in dirty {
            let at = t.incident.last_seen;
            out.push(change(ChangeKind::Updated, at, t));
        }
        out
    }

    /// Snapshots of the open incidents, ordered by first_seen then id.
    pub fn open_incidents(&self) -> Vec<Incident> {
        let mut open: Vec<Incident> = self
            .groups
            .values()
            .filter_map(|g| g.last.as_ref())
            .filter(|t| t.is_open())
            .map(Tracked::snapshot)
            .collect();
        open.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
        open
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Apply buffered matches with `ts <= upto` (all of them for `None`), in order.
    fn apply_buffered(&mut self, upto: Option<Timestamp>, out: &mut Vec<Change>) {
        while let Some(Reverse(top)) = self.buffer.peek() {
            if upto.is_some_and(|u| top.0.ts > u) {
                break;
            }
            let Some(Reverse(Buffered(m))) = self.buffer.pop() else {
                break;
            };
            self.apply(m, out);
        }
    }

    /// Resolve every open incident whose quiet period ended strictly before `t`, in order.
    fn resolve_before(&mut self, t: Timestamp, out: &mut Vec<Change>) {
        while let Some((at, _)) = self.deadlines.first() {
            if *at >= t {
                break;
            }
            let Some((_, key)) = self.deadlines.pop_first() else {
                break;
            };
            let Some(tracked) = self.groups.get_mut(&key).and_then(|g| g.last.as_mut()) else {
                continue;
            };
            let resolved_at = tracked.resolve();
            self.stats.resolved += 1;
            out.push(change(ChangeKind::Resolved, resolved_at, tracked));
        }
    }

    fn apply(&mut self, m: Match, out: &mut Vec<Change>) {
        let Some(rule) = self.rules.rules.get(m.rule).cloned() else {
            self.stats.unknown_rule += 1;
            tracing::debug!(rule = m.rule, event = %m.event, "match names no rule of the set");
            return;
        };
        self.stats.matches += 1;
        self.resolve_before(m.ts, out);

        let key = GroupKey::of(&rule, &m);
        let threshold = self.thresholds[m.rule];
        let evidence = group::evidence_of(&rule, &m);
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            window: threshold.window(),
            last: None,
        });

        let next = group
            .last
            .as_ref()
            .map(|t| t.next_for(m.ts, self.config.reopen_within_secs));
        match next {
            Some(Next::Join) => {
                let Some(tracked) = group.last.as_mut() else {
                    return;
                };
                let old_deadline = tracked.resolve_at();
                let due = tracked.join(m.ts, &m.service, evidence);
                let new_deadline = tracked.resolve_at();
                if new_deadline != old_deadline {
                    self.deadlines.remove(&(old_deadline, key.clone()));
                    self.deadlines.insert((new_deadline, key));
                }
                if due {
                    out.push(change(ChangeKind::Updated, m.ts, tracked));
                }
                self.stats.joined += 1;
            }
            Some(Next::FoldLate) => {
                if let Some(tracked) = group.last.as_mut() {
                    tracked.join(m.ts, &m.service, evidence);
                }
                self.stats.joined += 1;
            }
            Some(Next::Reopen) | Some(Next::New) | None => {
                group.window.add(m.ts, evidence);
                if !threshold.is_met(&group.window) {
                    self.stats.pending += 1;
                    return;
                }
                self.stats.opened += 1;
                let entries: Vec<_> = group
                    .window
                    .take()
                    .into_iter()
                    .map(|(ts, e)| (ts, e.service.clone(), e))
                    .collect();
                let kind = if next == Some(Next::Reopen) {
                    ChangeKind::Reopened
                } else {
                    ChangeKind::Opened
                };
                match (kind, group.last.as_mut()) {
                    (ChangeKind::Reopened, Some(tracked)) => tracked.reopen(entries),
                    _ => {
                        group.last = Some(open_incident(
                            &rule,
                            &self.links[m.rule],
                            self.config.evidence_cap,
                            &key,
                            entries,
                        ));
                    }
                }
                self.link_and_emit(&key, kind, m.ts, out);
            }
        }
    }

    /// After `key`'s incident opened or reopened: link it to the open incidents that explain it
    /// (before emitting it) and to those it explains (emitting `Updated` for each), and schedule
    /// its resolution.
    fn link_and_emit(
        &mut self,
        key: &GroupKey,
        kind: ChangeKind,
        at: Timestamp,
        out: &mut Vec<Change>,
    ) {
        let Some((class, id)) = self
            .groups
            .get(key)
            .and_then(|g| g.last.as_ref())
            .map(|t| (t.incident.class, t.incident.id.clone()))
        else {
            return;
        };
        let mut causes: Vec<IncidentId> = Vec::new();
        let mut consequences: Vec<GroupKey> = Vec::new();
        for (other_key, other) in &self.groups {
            let Some(t) = other.last.as_ref().filter(|t| t.is_open()) else {
                continue;
            };
            if other_key == key {
                continue;
            }
            if correlate::explains(t.incident.class, class) {
                causes.push(t.incident.id.clone());
            }
            if correlate::explains(class, t.incident.class) && !t.incident.caused_by.contains(&id) {
                consequences.push(other_key.clone());
            }
        }

        if let Some(tracked) = self.groups.get_mut(key).and_then(|g| g.last.as_mut()) {
            for cause in causes {
                if !tracked.incident.caused_by.contains(&cause) {
                    tracked.incident.caused_by.push(cause);
                }
            }
            tracked.incident.caused_by.sort();
            self.deadlines.insert((tracked.resolve_at(), key.clone()));
            out.push(change(kind, at, tracked));
        }
        for other_key in consequences {
            if let Some(t) = self
                .groups
                .get_mut(&other_key)
                .and_then(|g| g.last.as_mut())
            {
                t.incident.caused_by.push(id.clone());
                t.incident.caused_by.sort();
                out.push(change(ChangeKind::Updated, at, t));
            }
        }
    }

    /// Drop groups that no match after `upto` can affect: an empty window (once expired) and no
    /// incident, or one resolved more than `reopen_within` ago.
    fn collect_idle(&mut self, upto: Timestamp) {
        let reopen_within = self.config.reopen_within_secs;
        self.groups.retain(|_, g| {
            g.window.expire_at(upto);
            if !g.window.is_empty() {
                return true;
            }
            match &g.last {
                None => false,
                Some(t) => match t.incident.resolved_at {
                    None => true,
                    Some(resolved) => resolved.plus_secs(reopen_within) > upto,
                },
            }
        });
    }
}

/// A new incident from the matches that met the threshold (in event-time order).
fn open_incident(
    rule: &Rule,
    runbook: &RunbookLink,
    evidence_cap: usize,
    key: &GroupKey,
    entries: Vec<(Timestamp, String, Evidence)>,
) -> Tracked {
    let first_seen = entries.first().map(|(ts, _, _)| *ts).unwrap_or_default();
    let incident = Incident {
        id: key.incident_id(first_seen.as_micros()),
        class: rule.class,
        severity: rule.severity,
        state: State::Open,
        title: key.title(&rule.title),
        rule: rule.id.clone(),
        group: key.render(),
        services: Vec::new(),
        first_seen,
        last_seen: first_seen,
        resolved_at: None,
        count: 0,
        escalation_level: 0,
        caused_by: Vec::new(),
        runbook: runbook.clone(),
        evidence: Vec::new(),
    };
    let mut tracked = Tracked::new(
        incident,
        EvidenceBuf::new(evidence_cap),
        rule.resolve_after_secs,
    );
    tracked.reopen(entries);
    tracked
}

/// A change carrying the incident as it stands; marks it emitted.
fn change(kind: ChangeKind, at: Timestamp, tracked: &mut Tracked) -> Change {
    tracked.emitted();
    Change {
        seq: 0,
        kind,
        at,
        incident: tracked.snapshot(),
    }
}

/// The rule's runbook procedure: the first of its links that the runbook resolves; else an empty
/// link titled with the first key (`rules check` reports the broken link).
fn link_of(rule: &Rule, runbook: &Runbook) -> RunbookLink {
    rule.runbook
        .iter()
        .find_map(|link| runbook.find(link))
        .map(|p| p.link())
        .unwrap_or_else(|| RunbookLink {
            title: rule.runbook.first().cloned().unwrap_or_default(),
            anchor: String::new(),
            steps: Vec::new(),
        })
}
