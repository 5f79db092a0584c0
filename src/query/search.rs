//! Execute a [`Plan`]: collect candidates with their sort keys from fast fields, order them by
//! event time (then event id), decide each with the predicate, keep the newest `limit` matches.
//!
//! Takes a searcher and a plan; gives [`Found`] (the total and the kept hits, oldest first).
//! Must not: parse queries or format output.
//!
//! Cost model: collecting candidates reads three fast-field values per candidate; deciding an
//! inexact plan loads each candidate's stored document (one doc-store block each), so narrow
//! queries are fast and a query the index cannot narrow (`NOT "text"` alone) reads everything.

use std::collections::VecDeque;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::Query;
use tantivy::schema::{OwnedValue, Value};
use tantivy::{
    DateTime, DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument,
};

use crate::event::{EventId, Flags, Level, Timestamp};
use crate::query::plan::Plan;
use crate::store::schema::{self, Fields};

/// One stored event, as the query face sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: EventId,
    pub ts: Timestamp,
    pub service: String,
    pub level: Level,
    pub message: String,
    pub raw: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub flags: Flags,
    /// Ids of the rules that matched the event when it was indexed.
    pub rules: Vec<String>,
    /// Their incident classes.
    pub classes: Vec<String>,
    /// The incident groups the matches went to.
    pub groups: Vec<String>,
}

/// The answer of a search.
#[derive(Debug, Default)]
pub struct Found {
    /// Number of events that match.
    pub matched: u64,
    /// The newest `limit` matches in time order (empty when only counting).
    pub hits: Vec<Hit>,
}

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Keep at most this many (the newest); `None`: all.
    pub limit: Option<usize>,
    /// Only count; keep no hits.
    pub count_only: bool,
}

/// Run `plan` (already combined with the request's filters) on `searcher`.
pub fn search(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    keep: Keep,
) -> tantivy::Result<Found> {
    let mut candidates = searcher.search(query, &SortKeys)?;
    candidates.sort_unstable_by_key(|c| (c.ts, c.fingerprint, c.offset));
    let limit = if keep.count_only {
        0
    } else {
        keep.limit.unwrap_or(usize::MAX)
    };

    if plan.exact {
        let matched = candidates.len() as u64;
        let skip = candidates.len().saturating_sub(limit);
        let mut hits = Vec::with_capacity(candidates.len() - skip);
        for c in &candidates[skip..] {
            hits.push(load(searcher, fields, c.address)?);
        }
        return Ok(Found { matched, hits });
    }

    let mut matched = 0u64;
    let mut kept: VecDeque<Hit> = VecDeque::new();
    for c in &candidates {
        let hit = load(searcher, fields, c.address)?;
        if !plan.pred.eval(&hit) {
            continue;
        }
        matched += 1;
        if limit == 0 {
            continue;
        }
        if kept.len() == limit {
            kept.pop_front();
        }
        kept.push_back(hit);
    }
    Ok(Found {
        matched,
        hits: kept.into(),
    })
}

/// Every match of `query` (decided by `plan`) in event-time order, loaded one at a time and handed
/// to `each` until it returns `false`. Memory holds the candidates' sort keys (a few words each),
/// never all the hits: for streaming an export, or reading a timeline from its start. Returns the
/// number of matches handed over.
pub fn each_in_order<E: From<tantivy::TantivyError>>(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    mut each: impl FnMut(Hit) -> Result<bool, E>,
) -> Result<u64, E> {
    let mut candidates = searcher.search(query, &SortKeys)?;
    candidates.sort_unstable_by_key(|c| (c.ts, c.fingerprint, c.offset));
    let mut handed = 0;
    for c in &candidates {
        let hit = load(searcher, fields, c.address)?;
        if !plan.exact && !plan.pred.eval(&hit) {
            continue;
        }
        handed += 1;
        if !each(hit)? {
            break;
        }
    }
    Ok(handed)
}

/// Read a stored event back.
pub fn load(searcher: &Searcher, f: Fields, address: DocAddress) -> tantivy::Result<Hit> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let ts = doc
        .get_first(f.ts)
        .and_then(|v| v.as_datetime())
        .map_or(Timestamp(0), |d| Timestamp(d.into_timestamp_micros()));
    let id = text(f.event_id).parse().unwrap_or(EventId {
        fingerprint: 0,
        offset: 0,
    });
    let fields = doc
        .get_first(f.fields)
        .map(|v| OwnedValue::from(v.as_value()))
        .and_then(|owned| serde_json::to_value(owned).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    let mut flags = Flags::default();
    for v in doc.get_all(f.flags) {
        if let Some(flag) = v.as_str().and_then(Flags::from_name) {
            flags.insert(flag);
        }
    }
    let all_text = |field| {
        doc.get_all(field)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect::<Vec<String>>()
    };
    Ok(Hit {
        rules: all_text(f.rules),
        classes: all_text(f.classes),
        groups: all_text(f.groups),
        id,
        ts,
        service: text(f.service),
        level: text(f.level).parse().unwrap_or(Level::Unknown),
        message: text(f.message),
        raw: text(f.raw),
        fields,
        flags,
    })
}

/// A candidate and its sort key.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ts: i64,
    fingerprint: u64,
    offset: u64,
    address: DocAddress,
}

/// Collects every matching document with its (ts, fingerprint, offset) from the fast fields.
struct SortKeys;

struct SortKeysSegment {
    segment: SegmentOrdinal,
    ts: Column<DateTime>,
    fingerprint: Column<u64>,
    offset: Column<u64>,
    out: Vec<Candidate>,
}

impl Collector for SortKeys {
    type Fruit = Vec<Candidate>;
    type Child = SortKeysSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SortKeysSegment> {
        let ff = reader.fast_fields();
        Ok(SortKeysSegment {
            segment,
            ts: ff.date(schema::TS)?,
            fingerprint: ff.u64(schema::FINGERPRINT)?,
            offset: ff.u64(schema::OFFSET)?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Candidate>>) -> tantivy::Result<Vec<Candidate>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SortKeysSegment {
    type Fruit = Vec<Candidate>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.out.push(Candidate {
            ts: self.ts.first(doc).map_or(0, |d| d.into_timestamp_micros()),
            fingerprint: self.fingerprint.first(doc).unwrap_or(0),
            offset: self.offset.first(doc).unwrap_or(0),
            address: DocAddress::new(self.segment, doc),
        });
    }

    fn harvest(self) -> Vec<Candidate> {
        self.out
    }
}
