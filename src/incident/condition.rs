//! A rule's condition over its group's window: when do matches become an incident?
//!
//! `immediate` is the count condition with `n = 1`: the first match opens. `count >= n within W`
//! opens when the sliding event-time window of the group holds `n` matches. Both are reduced to a
//! [`Threshold`] once per rule, so the engine has one code path.
//!
//! This module must not touch incidents; it only answers "is the threshold met".

use crate::detect::rules::Condition;
use crate::incident::window::CountWindow;

/// A condition reduced to "at least `n` matches within `within_secs`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub n: usize,
    pub within_secs: i64,
}

impl Threshold {
    pub fn of(condition: &Condition) -> Threshold {
        match condition {
            // Any window holds the match that was just added; one second keeps it non-empty.
            Condition::Immediate => Threshold {
                n: 1,
                within_secs: 1,
            },
            Condition::Count { n, within_secs } => Threshold {
                n: usize::try_from(*n).unwrap_or(usize::MAX).max(1),
                within_secs: (*within_secs).max(1),
            },
        }
    }

    /// An empty window sized for this threshold.
    pub fn window(&self) -> CountWindow {
        CountWindow::new(self.within_secs, self.n)
    }

    /// True when the window holds enough matches to open (or reopen) an incident.
    pub fn is_met(&self, window: &CountWindow) -> bool {
        window.len() >= self.n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Timestamp};
    use crate::incident::Evidence;

    fn add(w: &mut CountWindow, secs: i64) {
        let ts = Timestamp::from_secs(secs);
        w.add(
            ts,
            Evidence {
                event: EventId {
                    fingerprint: 1,
                    offset: secs as u64,
                },
                ts,
                service: "app".into(),
                rule: "r".into(),
                text: String::new(),
            },
        );
    }

    #[test]
    fn immediate_is_met_by_one_match() {
        let t = Threshold::of(&Condition::Immediate);
        let mut w = t.window();
        assert!(!t.is_met(&w));
        add(&mut w, 5);
        assert!(t.is_met(&w));
    }

    #[test]
    fn count_needs_n_inside_the_window() {
        let t = Threshold::of(&Condition::Count {
            n: 3,
            within_secs: 60,
        });
        let mut w = t.window();
        add(&mut w, 0);
        add(&mut w, 10);
        assert!(!t.is_met(&w));
        add(&mut w, 61); // 0 has slid out
        assert!(!t.is_met(&w));
        add(&mut w, 62);
        assert!(t.is_met(&w));
        assert_eq!(w.earliest(), Some(Timestamp::from_secs(10)));
    }

    #[test]
    fn a_zero_count_behaves_as_immediate() {
        let t = Threshold::of(&Condition::Count {
            n: 0,
            within_secs: 60,
        });
        assert_eq!(t.n, 1);
    }
}
