//! The event-time filter of a query (`--since/--until`, `--around`, an incident's span), chosen per
//! segment between the two ways tantivy can answer it.
//!
//! `ts` is both a fast column and indexed (one term per microsecond). tantivy's `RangeQuery` on a
//! fast field scans the column from the segment's first document up to the first value in range,
//! and further as the intersection seeks: a one-hour window in a segment spanning days reads
//! millions of values (on 10 M events, 20 ms of a 25 ms query). The inverted index instead reads
//! the terms of the window and their postings: work in proportion to the events *in* the range,
//! but a term lookup each, so it loses on wide windows. Per segment, this query samples
//! [`SAMPLES`] documents of the column, evenly spread: when none falls in range, the range holds
//! a few percent of the segment at most and the inverted index answers; else the column scan
//! does (a segment's `min`/`max` say little: merges mix far-apart times, and one odd timestamp
//! stretches them). The index holds times to the second, so the
//! inverted way reads the whole seconds the bounds fall in and the column cuts them exactly.
//!
//! Must not: decide anything but which tantivy weight answers a segment.

use std::ops::Bound;

use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, EnableScoring, Explanation, InvertedIndexRangeQuery, Query, RangeQuery, Scorer,
    Weight,
};
use tantivy::{DateTime, DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

use crate::event::Timestamp;
use crate::store::schema::{self, Fields};

/// Documents of a segment sampled to choose: each costs a column lookup (a page fault in a fresh
/// process), so few; the choice only has to be right about ranges that are a small part of
/// the segment, which a sample of 32 misses with certainty 1 − (1 − f)³².
pub const SAMPLES: u64 = 32;

/// Segments this small are scanned: a few microseconds either way.
const SMALL_SEGMENT: u32 = 4096;

/// Events with `lo ≤ ts < hi` (or as the bounds say).
#[derive(Clone, Debug)]
pub struct TimeRange {
    lo: Bound<Timestamp>,
    hi: Bound<Timestamp>,
    fast: RangeQuery,
    inverted: InvertedIndexRangeQuery,
    /// Tests force one way: `Some(true)` the inverted index, `Some(false)` the scan.
    force: Option<bool>,
}

impl TimeRange {
    pub fn new(fields: Fields, lo: Bound<Timestamp>, hi: Bound<Timestamp>) -> TimeRange {
        let (lo, hi) = (storable(lo, true), storable(hi, false));
        let term = |t: Timestamp| Term::from_field_date(fields.ts, crate::store::schema::date(t));
        TimeRange {
            lo,
            hi,
            fast: RangeQuery::new(lo.map(term), hi.map(term)),
            // The index holds whole seconds: the terms give the seconds the bounds fall in,
            // and the column decides those two seconds' events exactly.
            inverted: InvertedIndexRangeQuery::new(widened(fields.ts, lo), widened(fields.ts, hi)),
            force: None,
        }
    }
}

/// A bound outside the times the index can hold ([`Timestamp::EARLIEST`]..=[`Timestamp::LATEST`]),
/// said with one inside that means the same: every event is within them.
fn storable(bound: Bound<Timestamp>, lower: bool) -> Bound<Timestamp> {
    match bound {
        Bound::Included(t) | Bound::Excluded(t) if t < Timestamp::EARLIEST => {
            if lower {
                Bound::Unbounded
            } else {
                Bound::Excluded(Timestamp::EARLIEST)
            }
        }
        Bound::Included(t) | Bound::Excluded(t) if t > Timestamp::LATEST => {
            if lower {
                Bound::Excluded(Timestamp::LATEST)
            } else {
                Bound::Unbounded
            }
        }
        other => other,
    }
}

/// The bound of the whole second `bound` falls in, as a term of the inverted index (which holds
/// event times truncated to the second).
fn widened(ts: tantivy::schema::Field, bound: Bound<Timestamp>) -> Bound<Term> {
    match bound {
        Bound::Included(t) | Bound::Excluded(t) => Bound::Included(
            Term::from_field_date_for_search(ts, crate::store::schema::date(t)),
        ),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Query for TimeRange {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        if matches!((self.lo, self.hi), (Bound::Unbounded, Bound::Unbounded)) {
            // tantivy's range queries need a bound; without either, every event is in range.
            return AllQuery.weight(scoring);
        }
        Ok(Box::new(TimeRangeWeight {
            force: self.force,
            lo: self.lo,
            hi: self.hi,
            fast: self.fast.weight(scoring)?,
            inverted: self.inverted.weight(scoring)?,
        }))
    }
}

struct TimeRangeWeight {
    force: Option<bool>,
    lo: Bound<Timestamp>,
    hi: Bound<Timestamp>,
    fast: Box<dyn Weight>,
    inverted: Box<dyn Weight>,
}

impl TimeRangeWeight {
    /// Whether the inverted index answers `reader` cheaper than the column scan: no sampled
    /// document is in range.
    fn inverted_for(&self, reader: &SegmentReader) -> bool {
        if let Some(force) = self.force {
            return force;
        }
        let docs = reader.max_doc();
        if docs <= SMALL_SEGMENT {
            return false;
        }
        let Ok(column) = reader.fast_fields().date(schema::TS) else {
            return false;
        };
        let range = (self.lo, self.hi);
        !(0..SAMPLES).any(|i| {
            let doc = (u64::from(docs) * i / SAMPLES) as DocId;
            column.first(doc).is_some_and(|ts| {
                let ts = Timestamp(ts.into_timestamp_micros());
                std::ops::RangeBounds::contains(&range, &ts)
            })
        })
    }
}

impl Weight for TimeRangeWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        if !self.inverted_for(reader) {
            return self.fast.scorer(reader, boost);
        }
        let column = reader.fast_fields().date(schema::TS)?;
        let inner = self.inverted.scorer(reader, boost)?;
        let mut exact = Exact {
            inner,
            column,
            lo: self.lo,
            hi: self.hi,
        };
        exact.settle();
        Ok(Box::new(exact))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is outside the time range"
            )));
        }
        Ok(Explanation::new("time range", 1.0))
    }
}

/// The inverted index's whole-second answer, cut to the exact bounds by the column.
struct Exact {
    inner: Box<dyn Scorer>,
    column: Column<DateTime>,
    lo: Bound<Timestamp>,
    hi: Bound<Timestamp>,
}

impl Exact {
    fn inside(&self, doc: DocId) -> bool {
        self.column.first(doc).is_some_and(|ts| {
            let ts = Timestamp(ts.into_timestamp_micros());
            std::ops::RangeBounds::contains(&(self.lo, self.hi), &ts)
        })
    }

    /// Move past the current document while it is outside the bounds.
    fn settle(&mut self) -> DocId {
        let mut doc = self.inner.doc();
        while doc != TERMINATED && !self.inside(doc) {
            doc = self.inner.advance();
        }
        doc
    }
}

impl DocSet for Exact {
    fn advance(&mut self) -> DocId {
        self.inner.advance();
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target);
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

impl Scorer for Exact {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Events;
    use crate::store::EventIndex;
    use crate::store::index::tests::event;
    use tantivy::collector::Count;

    /// Both ways give the same, exact answer, at every kind of bound, also across segments.
    #[test]
    fn the_inverted_index_and_the_column_scan_agree() {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(dir.path()).unwrap();
        let mut sink = index.writer(15_000_000).unwrap();
        let stamps: Vec<i64> = vec![0, 5, 5, 10, 999, 1000, 1000, 1001, 1500, 2000, 86_400_000];
        let (first, second) = stamps.split_at(6);
        for (i, part) in [first, second].into_iter().enumerate() {
            let events = part
                .iter()
                .enumerate()
                .map(|(j, ms)| event(1, (i * 100 + j) as u64, *ms, "app", "line"))
                .collect();
            sink.add(&Events::new(events)).unwrap();
            sink.commit("x").unwrap();
        }
        let searcher = index.searcher().unwrap();
        assert_eq!(searcher.segment_readers().len(), 2);
        let t = |ms| Timestamp::from_millis(ms);
        let bounds = [
            Bound::Unbounded,
            Bound::Included(t(5)),
            Bound::Excluded(t(5)),
            Bound::Included(t(1000)),
            Bound::Excluded(t(1000)),
            Bound::Included(t(1_000_000)),
            Bound::Excluded(t(1500)),
            Bound::Excluded(t(-1)),
            Bound::Included(t(-1)),
            Bound::Included(t(i64::MAX / 1000)),
            Bound::Excluded(t(i64::MIN / 1000)),
        ];
        let inside = |ms: i64, lo: Bound<Timestamp>, hi: Bound<Timestamp>| {
            let ts = t(ms);
            (match lo {
                Bound::Included(b) => ts >= b,
                Bound::Excluded(b) => ts > b,
                Bound::Unbounded => true,
            }) && (match hi {
                Bound::Included(b) => ts <= b,
                Bound::Excluded(b) => ts < b,
                Bound::Unbounded => true,
            })
        };
        for lo in bounds {
            for hi in bounds {
                let expected = stamps.iter().filter(|ms| inside(**ms, lo, hi)).count();
                for force in [Some(true), Some(false), None] {
                    let mut q = TimeRange::new(index.fields(), lo, hi);
                    q.force = force;
                    let got = searcher.search(&q, &Count).unwrap();
                    assert_eq!(got, expected, "{lo:?}..{hi:?} forced {force:?}");
                }
            }
        }
    }
}
