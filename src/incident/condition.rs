//! A rule's condition over its group's window: when do matches become an incident?
//!
//! `immediate` is the count condition with `n = 1`: the first match opens. `count >= n within W`
//! opens when the sliding event-time window of the group holds `n` matches. Both are reduced to a
//! [`Threshold`] over the group's [`CountWindow`], which also keeps the evidence.
//!
//! The other windowed conditions (distinct values, aggregates of a captured number, rates over a
//! base rule or over the trailing baseline) keep a [`Tally`]: the window's matches reduced to the
//! few counters the condition reads, updated as matches enter and leave, so a check costs O(1)
//! whatever the window holds. A percentile needs no sorting: with the `n` values of the window in
//! order, the nearest-rank `pq` is the value of rank `r = ⌈q·n/100⌉`, and `pq > X` exactly when
//! at least `n − r + 1` values are above `X`; the tally counts those. (`absent` and `never` are
//! timers and nothing; the engine handles them.)
//!
//! This module must not touch incidents; it only answers "is the condition met".

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::detect::condition::{Aggregate, Condition};
use crate::event::Timestamp;
use crate::incident::window::CountWindow;

/// A condition reduced to "at least `n` matches within `within_secs`" over a window that keeps
/// `cap` pieces of evidence (`n` for a count; the evidence cap for conditions read from a tally,
/// whose `n` is never reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub n: usize,
    pub within_secs: i64,
    cap: usize,
}

impl Threshold {
    /// The threshold of `condition`; `evidence_cap` sizes the window of tally conditions.
    pub fn of(condition: &Condition, evidence_cap: usize) -> Threshold {
        match condition {
            // Any window holds the match that was just added; one second keeps it non-empty.
            Condition::Immediate => Threshold {
                n: 1,
                within_secs: 1,
                cap: 1,
            },
            Condition::Count { n, within_secs } => {
                let n = usize::try_from(*n).unwrap_or(usize::MAX).max(1);
                Threshold {
                    n,
                    within_secs: (*within_secs).max(1),
                    cap: n,
                }
            }
            other => Threshold {
                n: usize::MAX,
                within_secs: window_secs(other).unwrap_or(1).max(1),
                cap: evidence_cap.max(1),
            },
        }
    }

    /// An empty window sized for this threshold.
    pub fn window(&self) -> CountWindow {
        CountWindow::new(self.within_secs, self.cap)
    }

    /// True when the window holds enough matches to open (or reopen) an incident.
    pub fn is_met(&self, window: &CountWindow) -> bool {
        window.len() >= self.n
    }
}

/// The window of a windowed condition, in seconds.
pub fn window_secs(condition: &Condition) -> Option<i64> {
    match condition {
        Condition::Count { within_secs, .. }
        | Condition::Distinct { within_secs, .. }
        | Condition::Aggregate { within_secs, .. }
        | Condition::Ratio { within_secs, .. }
        | Condition::Baseline { within_secs, .. } => Some(*within_secs),
        Condition::Immediate | Condition::Never | Condition::Absent { .. } => None,
    }
}

/// True for the conditions evaluated on a [`Tally`] rather than on the count window.
pub fn uses_tally(condition: &Condition) -> bool {
    matches!(
        condition,
        Condition::Distinct { .. }
            | Condition::Aggregate { .. }
            | Condition::Ratio { .. }
            | Condition::Baseline { .. }
    )
}

/// What a match brings to a tally: nothing but itself, a number, or a value to tell apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Sample {
    Hit,
    Number(f64),
    Value(String),
}

/// The matches of one group within a condition's window, reduced to what the condition reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    within_us: i64,
    /// Matches in the window, in event-time order.
    samples: VecDeque<(Timestamp, Sample)>,
    /// Samples holding a number; their sum; those above the aggregate's threshold.
    numbers: u64,
    sum: f64,
    above: u64,
    /// Distinct values in the window, with how many samples hold each.
    distinct: BTreeMap<String, u32>,
    /// Matches of a ratio's base rule in the window, in event-time order (a busy base holds
    /// every send of five minutes: stored as microsecond deltas, not as RFC 3339 texts).
    #[serde(with = "deltas")]
    base: VecDeque<Timestamp>,
    /// A baseline's matches per aligned window (`⌊t / W⌋`), oldest first, empty windows left out.
    history: VecDeque<(i64, u64)>,
}

/// A time-ordered run of timestamps in a snapshot as `{"first_us":…, "deltas_us":[…]}` (each
/// the microseconds after the one before): about six bytes a timestamp instead of thirty, and no
/// date formatting on every commit. A snapshot of an earlier version (a list of times) still
/// reads.
mod deltas {
    use std::collections::VecDeque;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::event::Timestamp;

    #[derive(Serialize, Deserialize)]
    struct Packed {
        first_us: i64,
        deltas_us: Vec<i64>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Packed(Packed),
        Times(Vec<Timestamp>),
    }

    pub fn serialize<S: Serializer>(times: &VecDeque<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        let first_us = times.front().map_or(0, |t| t.0);
        let mut previous = first_us;
        let deltas_us = times
            .iter()
            .skip(1)
            .map(|t| {
                let d = t.0.saturating_sub(previous);
                previous = t.0;
                d
            })
            .collect();
        if times.is_empty() {
            return Vec::<Timestamp>::new().serialize(s);
        }
        Packed {
            first_us,
            deltas_us,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<Timestamp>, D::Error> {
        Ok(match Stored::deserialize(d)? {
            Stored::Times(times) => times.into(),
            Stored::Packed(p) => {
                let mut at = p.first_us;
                std::iter::once(Timestamp(at))
                    .chain(p.deltas_us.into_iter().map(|d| {
                        at = at.saturating_add(d);
                        Timestamp(at)
                    }))
                    .collect()
            }
        })
    }
}

impl Tally {
    /// An empty tally for `condition` (a windowed one).
    pub fn new(condition: &Condition) -> Tally {
        Tally {
            within_us: window_secs(condition)
                .unwrap_or(1)
                .saturating_mul(Timestamp::MICROS_PER_SEC),
            ..Tally::default()
        }
    }

    /// Add a match at `ts` with the rule's captures (where distinct and aggregates read their field).
    pub fn add(&mut self, condition: &Condition, ts: Timestamp, captures: &[(String, String)]) {
        let value = condition
            .field()
            .and_then(|f| captures.iter().find(|(n, _)| n == f))
            .map(|(_, v)| v.as_str());
        let sample = match condition {
            Condition::Distinct { .. } => match value {
                Some(v) => Sample::Value(v.to_string()),
                None => Sample::Hit,
            },
            Condition::Aggregate { .. } => match value.and_then(|v| v.trim().parse::<f64>().ok()) {
                Some(x) if x.is_finite() => Sample::Number(x),
                _ => Sample::Hit,
            },
            _ => Sample::Hit,
        };
        self.count_in(condition, &sample, true);
        let pos = self.samples.partition_point(|(t, _)| *t <= ts);
        self.samples.insert(pos, (ts, sample));
        if let Some(&(newest, _)) = self.samples.back() {
            self.expire_at(condition, newest);
        }
    }

    /// A match of the ratio's base rule at `ts`; base matches older than the window of the newest
    /// one leave (a base that never meets a failure must not grow with the input).
    pub fn add_base(&mut self, ts: Timestamp) {
        let pos = self.base.partition_point(|t| *t <= ts);
        self.base.insert(pos, ts);
        if let Some(&newest) = self.base.back() {
            let horizon = newest.0.saturating_sub(self.within_us);
            while self.base.front().is_some_and(|t| t.0 <= horizon) {
                self.base.pop_front();
            }
        }
    }

    /// Count a match of a baseline rule into its aligned window (every match, also those that join
    /// an open incident: the baseline is the rule's whole history).
    pub fn note(&mut self, ts: Timestamp) {
        let bucket = ts.0.div_euclid(self.within_us.max(1));
        let pos = self.history.partition_point(|(b, _)| *b < bucket);
        match self.history.get_mut(pos) {
            Some((b, n)) if *b == bucket => *n += 1,
            _ => self.history.insert(pos, (bucket, 1)),
        }
    }

    /// Drop what has left the window of a match at `now` (`ts <= now - W`), and baseline windows
    /// older than the trailing period.
    pub fn expire_at(&mut self, condition: &Condition, now: Timestamp) {
        let horizon = now.0.saturating_sub(self.within_us);
        while let Some((t, _)) = self.samples.front() {
            if t.0 > horizon {
                break;
            }
            if let Some((_, sample)) = self.samples.pop_front() {
                self.count_in(condition, &sample, false);
            }
        }
        while self.base.front().is_some_and(|t| t.0 <= horizon) {
            self.base.pop_front();
        }
        if let Condition::Baseline {
            period_secs,
            within_secs,
            ..
        } = condition
        {
            let oldest = self.bucket(now) - period_secs / within_secs.max(&1);
            while self.history.front().is_some_and(|(b, _)| *b < oldest) {
                self.history.pop_front();
            }
        }
    }

    /// True when the condition holds over the window as it stands.
    pub fn is_met(&self, condition: &Condition, now: Timestamp) -> bool {
        let hits = self.samples.len() as u64;
        match condition {
            Condition::Count { n, .. } => hits >= u64::from(*n),
            Condition::Distinct { n, min, .. } => {
                hits >= *min && self.distinct.len() as u64 >= u64::from(*n)
            }
            Condition::Aggregate {
                func,
                cmp,
                value,
                min,
                ..
            } => {
                let n = self.numbers;
                if n == 0 || n < *min {
                    return false;
                }
                match func {
                    Aggregate::Max => self.above >= 1,
                    Aggregate::Avg => cmp.holds(self.sum / n as f64, *value),
                    Aggregate::Percentile(q) => {
                        let rank = (u64::from(*q) * n).div_ceil(100).max(1);
                        self.above > n - rank
                    }
                }
            }
            Condition::Ratio {
                cmp, percent, min, ..
            } => {
                let base = self.base.len() as u64;
                base >= *min && cmp.holds(100.0 * hits as f64 / base as f64, *percent)
            }
            Condition::Baseline {
                cmp,
                multiple,
                period_secs,
                within_secs,
                min,
            } => {
                let windows = period_secs / within_secs.max(&1);
                hits >= *min && cmp.holds(hits as f64, multiple * self.median(now, windows))
            }
            Condition::Immediate | Condition::Never | Condition::Absent { .. } => false,
        }
    }

    /// Matches in the window.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Time of the earliest match still in the window.
    pub fn earliest(&self) -> Option<Timestamp> {
        self.samples.front().map(|(t, _)| *t)
    }

    /// Forget the window's matches (they opened an incident); base counts and history stay.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.numbers = 0;
        self.sum = 0.0;
        self.above = 0;
        self.distinct.clear();
    }

    /// True when nothing is held: the group can be dropped.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.base.is_empty() && self.history.is_empty()
    }

    fn bucket(&self, ts: Timestamp) -> i64 {
        ts.0.div_euclid(self.within_us.max(1))
    }

    /// The median of the matches per window over the `windows` aligned windows before `now`'s,
    /// empty ones counted as zero.
    fn median(&self, now: Timestamp, windows: i64) -> f64 {
        let current = self.bucket(now);
        let mut counts: Vec<u64> = self
            .history
            .iter()
            .filter(|(b, _)| *b < current && *b >= current - windows)
            .map(|(_, n)| *n)
            .collect();
        let windows = usize::try_from(windows.max(1)).unwrap_or(1);
        counts.resize(windows.max(counts.len()), 0);
        counts.sort_unstable();
        let mid = counts.len() / 2;
        if counts.len() % 2 == 1 {
            counts[mid] as f64
        } else {
            (counts[mid - 1] as f64 + counts[mid] as f64) / 2.0
        }
    }

    /// Update the derived counters for a sample entering (`add`) or leaving the window.
    fn count_in(&mut self, condition: &Condition, sample: &Sample, add: bool) {
        match sample {
            Sample::Hit => {}
            Sample::Number(x) => {
                let above = match condition {
                    Condition::Aggregate { cmp, value, .. } => cmp.holds(*x, *value),
                    _ => false,
                };
                if add {
                    self.numbers += 1;
                    self.sum += x;
                    self.above += u64::from(above);
                } else {
                    self.numbers = self.numbers.saturating_sub(1);
                    self.sum -= x;
                    self.above = self.above.saturating_sub(u64::from(above));
                    if self.numbers == 0 {
                        self.sum = 0.0;
                    }
                }
            }
            Sample::Value(v) => {
                if add {
                    *self.distinct.entry(v.clone()).or_default() += 1;
                } else if let Some(n) = self.distinct.get_mut(v) {
                    *n -= 1;
                    if *n == 0 {
                        self.distinct.remove(v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::EventId;
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
        let t = Threshold::of(&Condition::Immediate, 20);
        let mut w = t.window();
        assert!(!t.is_met(&w));
        add(&mut w, 5);
        assert!(t.is_met(&w));
    }

    #[test]
    fn count_needs_n_inside_the_window() {
        let t = Threshold::of(
            &Condition::Count {
                n: 3,
                within_secs: 60,
            },
            20,
        );
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
        let t = Threshold::of(
            &Condition::Count {
                n: 0,
                within_secs: 60,
            },
            20,
        );
        assert_eq!(t.n, 1);
    }

    fn cond(text: &str) -> Condition {
        Condition::parse(text).unwrap()
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_796_220_000 + secs)
    }

    fn cap(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    #[test]
    fn distinct_counts_values_in_the_window() {
        let c = cond("distinct(user) >= 3 within 1m");
        let mut tally = Tally::new(&c);
        for (s, user) in [(0, "a"), (10, "a"), (20, "b")] {
            tally.add(&c, t(s), &cap("user", user));
        }
        assert!(!tally.is_met(&c, t(20)), "two users");
        tally.add(&c, t(59), &cap("user", "c"));
        assert!(tally.is_met(&c, t(59)));
        // At 65, 0 has left; `a` is still there at 10.
        tally.add(&c, t(65), &cap("user", "b"));
        assert!(tally.is_met(&c, t(65)));
        // At 75 both `a`s have left.
        tally.add(&c, t(75), &cap("user", "c"));
        assert!(!tally.is_met(&c, t(75)));
        // A match without the field counts as a match, not as a value.
        tally.add(&c, t(76), &[]);
        assert!(!tally.is_met(&c, t(76)));
    }

    #[test]
    fn aggregates_over_captured_numbers() {
        let p95 = cond("p95(duration_ms) > 1000 within 5m");
        let mut tally = Tally::new(&p95);
        // 19 fast and one slow: the 95th percentile of 20 is the 19th value, fast.
        for s in 0..19 {
            tally.add(&p95, t(s), &cap("duration_ms", "20.5"));
        }
        tally.add(&p95, t(19), &cap("duration_ms", "4000"));
        assert!(!tally.is_met(&p95, t(19)));
        tally.add(&p95, t(20), &cap("duration_ms", "1200"));
        // 21 values: rank ⌈0.95·21⌉ = 20, the two slow ones are ranks 20 and 21.
        assert!(tally.is_met(&p95, t(20)));
        tally.add(&p95, t(21), &cap("duration_ms", "not a number"));
        assert!(tally.is_met(&p95, t(21)), "non-numbers are left out");

        let max = cond("max(ms) >= 50 within 1m");
        let mut tally = Tally::new(&max);
        tally.add(&max, t(0), &cap("ms", "50"));
        assert!(tally.is_met(&max, t(0)));
        tally.add(&max, t(60), &cap("ms", "1"));
        assert!(!tally.is_met(&max, t(60)), "the 50 has left");

        let avg = cond("avg(ms) > 10 within 1m min 3");
        let mut tally = Tally::new(&avg);
        tally.add(&avg, t(0), &cap("ms", "100"));
        tally.add(&avg, t(1), &cap("ms", "1"));
        assert!(!tally.is_met(&avg, t(1)), "below the minimum volume");
        tally.add(&avg, t(2), &cap("ms", "1"));
        assert!(tally.is_met(&avg, t(2)), "34 > 10");
        tally.add(&avg, t(60), &cap("ms", "1"));
        assert!(!tally.is_met(&avg, t(60)), "(1+1+1)/3");
    }

    #[test]
    fn a_ratio_reads_its_base_and_waits_for_volume() {
        let c = cond("rate >= 10% of sends within 1m min 10");
        let mut tally = Tally::new(&c);
        for s in 0..9 {
            tally.add_base(t(s));
        }
        tally.add(&c, t(9), &[]);
        assert!(
            !tally.is_met(&c, t(9)),
            "9 sends are below the minimum volume"
        );
        let mut alone = Tally::new(&c);
        for s in 0..10_000 {
            alone.add_base(t(s));
        }
        assert_eq!(alone.base.len(), 60, "only the window's base is kept");
        tally.add_base(t(10));
        tally.add(&c, t(10), &[]);
        assert!(tally.is_met(&c, t(10)), "2 of 10");
        for s in 11..30 {
            tally.add_base(t(s));
        }
        tally.add(&c, t(30), &[]);
        assert!(tally.is_met(&c, t(30)), "3 of 29 ≥ 10%");
        for s in 31..50 {
            tally.add_base(t(s));
        }
        tally.add(&c, t(61), &[]);
        // Window (1, 61]: sends 2..49 (48), failures 9, 10, 30, 61 (4): 8.3 %.
        assert!(!tally.is_met(&c, t(61)));
    }

    #[test]
    fn a_baseline_compares_with_the_median_window() {
        let c = cond("rate > 3x baseline(10m) within 1m min 5");
        let mut tally = Tally::new(&c);
        // Two matches a minute for ten minutes.
        for minute in 0..10 {
            for k in 0..2 {
                let ts = t(minute * 60 + k);
                tally.note(ts);
                tally.add(&c, ts, &[]);
            }
        }
        // Minute 10: six matches are not more than 3 × 2.
        for k in 0..6 {
            let ts = t(600 + k);
            tally.note(ts);
            tally.add(&c, ts, &[]);
        }
        assert!(!tally.is_met(&c, t(605)));
        tally.note(t(606));
        tally.add(&c, t(606), &[]);
        assert!(tally.is_met(&c, t(606)), "seven > 6");

        // A quiet past: the median is 0, so the minimum volume decides.
        let mut quiet = Tally::new(&c);
        for k in 0..4 {
            quiet.note(t(k));
            quiet.add(&c, t(k), &[]);
        }
        assert!(!quiet.is_met(&c, t(3)));
        quiet.note(t(4));
        quiet.add(&c, t(4), &[]);
        assert!(quiet.is_met(&c, t(4)));
        quiet.expire_at(&c, t(10_000));
        assert!(quiet.is_empty(), "history past the period is dropped");
    }

    fn nearest_rank(values: &mut [f64], q: u8) -> f64 {
        values.sort_by(f64::total_cmp);
        let rank = (u64::from(q) * values.len() as u64).div_ceil(100).max(1);
        values[rank as usize - 1]
    }

    /// A base of many sends round-trips through a snapshot exactly and small; an earlier
    /// snapshot's list of times still reads.
    #[test]
    fn a_ratio_base_is_stored_as_deltas_and_reads_back_exactly() {
        let cond = Condition::parse("rate >= 5% of sends within 5m min 20").unwrap();
        let mut tally = Tally::new(&cond);
        let start = 1_796_220_000_000_000i64;
        for i in 0..10_000i64 {
            tally.add_base(Timestamp(start + i * 29_987 + (i % 7)));
        }
        let text = serde_json::to_string(&tally).unwrap();
        assert!(text.len() < 10_000 * 8, "{} bytes", text.len());
        let back: Tally = serde_json::from_str(&text).unwrap();
        assert_eq!(back.base, tally.base);
        let old = r#"{"within_us":300000000,"samples":[],"numbers":0,"sum":0.0,"above":0,"distinct":{},"base":["2026-12-07T10:00:00Z","2026-12-07T10:00:01.5Z"],"history":[]}"#;
        let back: Tally = serde_json::from_str(old).unwrap();
        assert_eq!(back.base.len(), 2);
        assert_eq!(back.base[1].0 - back.base[0].0, 1_500_000);
        let empty: Tally =
            serde_json::from_str(&serde_json::to_string(&Tally::new(&cond)).unwrap()).unwrap();
        assert!(empty.base.is_empty());
    }

    proptest! {
        /// The counting shortcut agrees with sorting the window, for any values, quantile,
        /// threshold, and comparison, as matches enter and leave.
        #[test]
        fn percentiles_by_counting_equal_percentiles_by_sorting(
            values in prop::collection::vec((0i64..120, 0u32..100), 1..60),
            q in 1u8..=99,
            threshold in 0u32..100,
            ge in any::<bool>(),
        ) {
            let op = if ge { ">=" } else { ">" };
            let c = cond(&format!("p{q}(v) {op} {threshold} within 30s"));
            let mut tally = Tally::new(&c);
            let mut sorted: Vec<(i64, u32)> = values.clone();
            sorted.sort();
            for (i, (s, v)) in sorted.iter().enumerate() {
                tally.add(&c, t(*s), &cap("v", &v.to_string()));
                let mut window: Vec<f64> = sorted[..=i]
                    .iter()
                    .filter(|(w, _)| *w > s - 30)
                    .map(|(_, v)| f64::from(*v))
                    .collect();
                let p = nearest_rank(&mut window, q);
                let want = if ge { p >= f64::from(threshold) } else { p > f64::from(threshold) };
                prop_assert_eq!(tally.is_met(&c, t(*s)), want);
            }
        }
    }
}
