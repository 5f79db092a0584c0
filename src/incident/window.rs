//! Event-time windows: the recent matches of one group that have not yet become an incident.
//!
//! A [`CountWindow`] is a sliding window over event time, `(t - W, t]` for the newest match at
//! `t`: a match exactly `W` seconds older than the newest one has left it. It holds at most `n`
//! entries (a count condition never needs more), each with its evidence so that an incident
//! opened from the window carries the matches that led to it.
//!
//! This module knows nothing of rules or incidents; `condition` decides what a window means.

use std::collections::VecDeque;

use crate::event::Timestamp;
use crate::incident::Evidence;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CountWindow {
    within_us: i64,
    cap: usize,
    /// Entries in event-time order (a late entry is inserted in its place).
    entries: VecDeque<(Timestamp, Evidence)>,
}

impl Default for CountWindow {
    /// A one-second window of one entry.
    fn default() -> Self {
        CountWindow::new(1, 1)
    }
}

impl CountWindow {
    /// A window of `within_secs` that keeps at most `cap` entries (at least one).
    pub fn new(within_secs: i64, cap: usize) -> CountWindow {
        CountWindow {
            within_us: within_secs.saturating_mul(Timestamp::MICROS_PER_SEC).max(0),
            cap: cap.max(1),
            entries: VecDeque::new(),
        }
    }

    /// Add a match and drop what the newest entry has pushed out of the window (and the oldest
    /// entries beyond the cap).
    pub fn add(&mut self, ts: Timestamp, evidence: Evidence) {
        let pos = self.entries.partition_point(|(t, _)| *t <= ts);
        self.entries.insert(pos, (ts, evidence));
        if let Some(&(newest, _)) = self.entries.back() {
            self.expire_at(newest);
        }
        while self.entries.len() > self.cap {
            self.entries.pop_front();
        }
    }

    /// Drop every entry that is out of the window of a match at `now`: `ts <= now - W`.
    pub fn expire_at(&mut self, now: Timestamp) {
        let horizon = now.0.saturating_sub(self.within_us);
        while self.entries.front().is_some_and(|(t, _)| t.0 <= horizon) {
            self.entries.pop_front();
        }
    }

    /// The rule of the entries held (all of a window's entries share one rule).
    pub fn rule(&self) -> Option<String> {
        self.entries.front().map(|(_, e)| e.rule.clone())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Time of the earliest entry still in the window.
    pub fn earliest(&self) -> Option<Timestamp> {
        self.entries.front().map(|(t, _)| *t)
    }

    /// Empty the window, giving its entries in event-time order.
    pub fn take(&mut self) -> Vec<(Timestamp, Evidence)> {
        self.entries.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventId;

    fn ev(secs: i64) -> (Timestamp, Evidence) {
        let ts = Timestamp::from_secs(secs);
        let e = Evidence {
            event: EventId {
                fingerprint: 7,
                offset: secs as u64,
            },
            ts,
            service: "app".into(),
            rule: "r".into(),
            text: String::new(),
        };
        (ts, e)
    }

    #[test]
    fn entries_slide_out_after_the_window() {
        let mut w = CountWindow::new(60, 10);
        for s in [0, 30, 59] {
            let (t, e) = ev(s);
            w.add(t, e);
        }
        assert_eq!(w.len(), 3);
        let (t, e) = ev(60);
        w.add(t, e);
        // 0 is exactly 60 s older than 60: out.
        assert_eq!(w.len(), 3);
        assert_eq!(w.earliest(), Some(Timestamp::from_secs(30)));
        let (t, e) = ev(200);
        w.add(t, e);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn late_entries_take_their_place_and_the_cap_holds() {
        let mut w = CountWindow::new(60, 3);
        for s in [10, 30, 20] {
            let (t, e) = ev(s);
            w.add(t, e);
        }
        let order: Vec<i64> = w.take().iter().map(|(t, _)| t.as_secs()).collect();
        assert_eq!(order, vec![10, 20, 30]);
        for s in [1, 2, 3, 4] {
            let (t, e) = ev(s);
            w.add(t, e);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.earliest(), Some(Timestamp::from_secs(2)));
    }
}
