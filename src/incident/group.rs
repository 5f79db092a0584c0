//! Group keys and capped evidence: which matches belong to the same incident, and which of them
//! an incident keeps as proof.
//!
//! A group is a rule, a service and the values of the rule's `group_by` names, read from the
//! match's captures (the matcher puts `group_by` field values there too). One group has at most
//! one open incident. Evidence keeps the first matches and the latest ones so that a storm of a
//! million matches costs a bounded amount of memory.
//!
//! This module must not decide when an incident opens or resolves; that is `condition` and
//! `lifecycle`.

use std::collections::VecDeque;

use crate::detect::Match;
use crate::detect::rules::Rule;
use crate::incident::{Evidence, IncidentId};

/// Seed of the incident id hash. Changing it changes every incident id: never do.
const ID_SEED: u64 = 0x6c6f_6777_6172_6465; // "logwarde"

/// The identity of a group: the rule, the service and the `group_by` values, in rule order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub rule: String,
    pub service: String,
    /// `(name, value)` for each of the rule's `group_by` names except `service`; a name without a
    /// capture has an empty value.
    pub values: Vec<(String, String)>,
}

impl GroupKey {
    pub fn of(rule: &Rule, m: &Match) -> GroupKey {
        let values = rule
            .group_by
            .iter()
            .filter(|name| name.as_str() != "service")
            .map(|name| {
                let value = m
                    .captures
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (name.clone(), value)
            })
            .collect();
        GroupKey {
            rule: rule.id.clone(),
            service: m.service.clone(),
            values,
        }
    }

    /// The key as text: `rule-id service=app ip=203.0.113.9`. Stored in [`crate::incident::Incident::group`].
    pub fn render(&self) -> String {
        let mut out = format!("{} service={}", self.rule, self.service);
        for (name, value) in &self.values {
            out.push(' ');
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        out
    }

    /// `<rule title> on <service>` plus the group values: `Failed logins on app (ip 203.0.113.9)`.
    pub fn title(&self, rule_title: &str) -> String {
        let mut out = format!("{rule_title} on {}", self.service);
        let shown: Vec<String> = self
            .values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        if !shown.is_empty() {
            out.push_str(" (");
            out.push_str(&shown.join(", "));
            out.push(')');
        }
        out
    }

    /// The stable incident id of this group's incident that started at `first_seen_us`:
    /// `inc-` + 16 hex digits of XxHash64 over (rule id, group key, first_seen µs).
    pub fn incident_id(&self, first_seen_us: i64) -> IncidentId {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(self.rule.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(self.render().as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&first_seen_us.to_le_bytes());
        let hash = twox_hash::XxHash64::oneshot(ID_SEED, &bytes);
        IncidentId(format!("inc-{hash:016x}"))
    }
}

/// Evidence for one match.
pub fn evidence_of(rule: &Rule, m: &Match) -> Evidence {
    Evidence {
        event: m.event,
        ts: m.ts,
        service: m.service.clone(),
        rule: rule.id.clone(),
        text: m.excerpt.clone(),
    }
}

/// The first `cap / 2` pieces of evidence and the latest `cap - cap / 2`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EvidenceBuf {
    cap: usize,
    first: Vec<Evidence>,
    latest: VecDeque<Evidence>,
}

impl EvidenceBuf {
    pub fn new(cap: usize) -> EvidenceBuf {
        EvidenceBuf {
            cap,
            first: Vec::new(),
            latest: VecDeque::new(),
        }
    }

    pub fn push(&mut self, e: Evidence) {
        let first_cap = self.cap / 2;
        let latest_cap = self.cap - first_cap;
        if self.first.len() < first_cap {
            self.first.push(e);
            return;
        }
        if latest_cap == 0 {
            return;
        }
        if self.latest.len() == latest_cap {
            self.latest.pop_front();
        }
        self.latest.push_back(e);
    }

    /// The kept evidence: the first ones, then the latest ones, each part in arrival order.
    pub fn to_vec(&self) -> Vec<Evidence> {
        self.first
            .iter()
            .chain(self.latest.iter())
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.first.len() + self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Timestamp};

    fn ev(i: u64) -> Evidence {
        Evidence {
            event: EventId {
                fingerprint: 1,
                offset: i,
            },
            ts: Timestamp(i as i64),
            service: "app".into(),
            rule: "r".into(),
            text: format!("line {i}"),
        }
    }

    #[test]
    fn evidence_keeps_the_first_and_the_latest() {
        let mut buf = EvidenceBuf::new(4);
        for i in 0..10 {
            buf.push(ev(i));
        }
        let kept: Vec<u64> = buf.to_vec().iter().map(|e| e.event.offset).collect();
        assert_eq!(kept, vec![0, 1, 8, 9]);

        let mut odd = EvidenceBuf::new(3);
        for i in 0..10 {
            odd.push(ev(i));
        }
        let kept: Vec<u64> = odd.to_vec().iter().map(|e| e.event.offset).collect();
        assert_eq!(kept, vec![0, 8, 9]);
    }

    #[test]
    fn ids_depend_on_rule_group_and_start_only() {
        let key = GroupKey {
            rule: "pg-too-many-clients".into(),
            service: "postgres".into(),
            values: vec![],
        };
        let id = key.incident_id(1_796_220_000_000_000);
        // Pinned: incident ids are an interface (URLs, webhooks, the feed's history).
        assert_eq!(id.0.len(), 4 + 16);
        assert!(id.0.starts_with("inc-"));
        assert_eq!(id, key.incident_id(1_796_220_000_000_000));
        assert_ne!(id, key.incident_id(1_796_220_000_000_001));
        let other = GroupKey {
            service: "app".into(),
            ..key.clone()
        };
        assert_ne!(id, other.incident_id(1_796_220_000_000_000));
    }

    #[test]
    fn titles_and_keys_name_the_group_values() {
        let key = GroupKey {
            rule: "failed-logins".into(),
            service: "app".into(),
            values: vec![("ip".into(), "203.0.113.9".into())],
        };
        assert_eq!(key.render(), "failed-logins service=app ip=203.0.113.9");
        assert_eq!(
            key.title("Failed logins"),
            "Failed logins on app (ip 203.0.113.9)"
        );
    }
}
