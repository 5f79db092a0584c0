//! Execute a [`Plan`]: collect candidates with their sort keys from fast fields, order them by
//! event time (then event id), decide each with the predicate, keep the newest `limit` matches.
//!
//! Takes a searcher and a plan; gives [`Found`] (the total and the kept hits, oldest first), or
//! for the tallies every match one at a time ([`each_match`]) or counts straight from the fast
//! columns ([`count_by_column`], [`count_by_attribute`], [`count_by_bucket`]) when the index
//! decides the query alone. Must not: parse queries or format output.
//!
//! Cost model: collecting candidates reads three fast-field values per candidate; deciding an
//! inexact plan loads each candidate's stored document (one doc-store block each), so narrow
//! queries are fast and a query the index cannot narrow (`NOT "text"` alone) reads everything.
//! Memory: a listing the index decides alone keeps the newest `limit` keys per segment (it follows
//! the limit); an inexact plan holds every candidate's key (~32 bytes) to decide them in order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnType, DynamicColumn, StrColumn};
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
    /// Number of events that match; when not [`Found::exact`], a lower bound (the kept hits and
    /// one more: a listing stops deciding candidates once it knows the limit cut it).
    pub matched: u64,
    /// Whether `matched` is the exact number of matches.
    pub exact: bool,
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
    let limit = if keep.count_only {
        0
    } else {
        keep.limit.unwrap_or(usize::MAX)
    };

    if plan.exact {
        // The index decides: count every match, keep only the newest `limit` keys per segment,
        // so memory follows the limit, not the number of matches.
        let (matched, mut newest) = searcher.search(query, &NewestKeys { keep: limit })?;
        newest.sort_unstable_by_key(Candidate::key);
        let skip = newest.len().saturating_sub(limit);
        let mut hits = Vec::with_capacity(newest.len() - skip);
        for c in &newest[skip..] {
            hits.push(load(searcher, fields, c.address)?);
        }
        return Ok(Found {
            matched,
            exact: true,
            hits,
        });
    }

    let mut candidates = searcher.search(query, &SortKeys)?;
    candidates.sort_unstable_by_key(Candidate::key);

    // Counting decides every candidate. A listing decides them newest first and stops at the
    // first match past the limit: it then knows the limit cut, which is all it says, and a
    // common word's listing reads `limit + 1` matches' documents, not every candidate's.
    let mut matched = 0u64;
    let mut hits = Vec::new();
    for c in candidates.iter().rev() {
        let hit = load(searcher, fields, c.address)?;
        if !plan.pred.eval(&hit) {
            continue;
        }
        matched += 1;
        if limit == 0 {
            continue;
        }
        if hits.len() == limit {
            hits.reverse();
            return Ok(Found {
                matched,
                exact: false,
                hits,
            });
        }
        hits.push(hit);
    }
    hits.reverse();
    Ok(Found {
        matched,
        exact: true,
        hits,
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
    candidates.sort_unstable_by_key(Candidate::key);
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

impl Candidate {
    /// Event-time order: time, then event id.
    fn key(&self) -> (i64, u64, u64) {
        (self.ts, self.fingerprint, self.offset)
    }
}

/// Counts every matching document and keeps the `keep` newest (by [`Candidate::key`]) of each
/// segment; the merge keeps the newest `keep` of those.
struct NewestKeys {
    keep: usize,
}

/// A kept candidate of one segment: its key and document.
type Kept = ((i64, u64, u64), DocId);

struct NewestKeysSegment {
    keys: SortKeysSegment,
    keep: usize,
    count: u64,
    /// A min-heap on the key: the oldest kept candidate is the first to go.
    heap: BinaryHeap<Reverse<Kept>>,
}

impl Collector for NewestKeys {
    type Fruit = (u64, Vec<Candidate>);
    type Child = NewestKeysSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NewestKeysSegment> {
        Ok(NewestKeysSegment {
            keys: SortKeys.for_segment(segment, reader)?,
            keep: self.keep,
            count: 0,
            heap: BinaryHeap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(u64, Vec<Candidate>)>,
    ) -> tantivy::Result<(u64, Vec<Candidate>)> {
        let mut count = 0;
        let mut all = Vec::new();
        for (n, candidates) in fruits {
            count += n;
            all.extend(candidates);
        }
        all.sort_unstable_by_key(Candidate::key);
        let skip = all.len().saturating_sub(self.keep);
        all.drain(..skip);
        Ok((count, all))
    }
}

impl SegmentCollector for NewestKeysSegment {
    type Fruit = (u64, Vec<Candidate>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        if self.keep == 0 {
            return;
        }
        let c = self.keys.candidate(doc);
        let entry = Reverse((c.key(), doc));
        if self.heap.len() < self.keep {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|oldest| entry < *oldest) {
            // `Reverse`: smaller means newer than the oldest kept one.
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    fn harvest(self) -> (u64, Vec<Candidate>) {
        let segment = self.keys.segment;
        let kept = self
            .heap
            .into_iter()
            .map(
                |std::cmp::Reverse(((ts, fingerprint, offset), doc))| Candidate {
                    ts,
                    fingerprint,
                    offset,
                    address: DocAddress::new(segment, doc),
                },
            )
            .collect();
        (self.count, kept)
    }
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

impl SortKeysSegment {
    fn candidate(&self, doc: DocId) -> Candidate {
        Candidate {
            ts: self.ts.first(doc).map_or(0, |d| d.into_timestamp_micros()),
            fingerprint: self.fingerprint.first(doc).unwrap_or(0),
            offset: self.offset.first(doc).unwrap_or(0),
            address: DocAddress::new(self.segment, doc),
        }
    }
}

impl SegmentCollector for SortKeysSegment {
    type Fruit = Vec<Candidate>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let c = self.candidate(doc);
        self.out.push(c);
    }

    fn harvest(self) -> Vec<Candidate> {
        self.out
    }
}

/// Every match of `plan` (any order), handed to `visit` with its time and, when `need_doc` (or
/// when the plan must read the document to decide anyway), the loaded hit. Returns the number of
/// matches. Used by the tallies (`--count-by`, `--histogram`), which need no order and keep
/// only their counters, so memory stays bounded by the candidates' sort keys.
pub fn each_match(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    need_doc: bool,
    visit: &mut dyn FnMut(Timestamp, Option<&Hit>),
) -> tantivy::Result<u64> {
    let candidates = searcher.search(query, &SortKeys)?;
    let mut matched = 0u64;
    for c in &candidates {
        if plan.exact && !need_doc {
            matched += 1;
            visit(Timestamp(c.ts), None);
            continue;
        }
        let hit = load(searcher, fields, c.address)?;
        if !plan.exact && !plan.pred.eval(&hit) {
            continue;
        }
        matched += 1;
        visit(hit.ts, Some(&hit));
    }
    Ok(matched)
}

/// Count the matching documents of an exact `query` per value of the string fast field
/// `column` (`service`, `level`) without loading a document: `None` counts the documents without
/// a value. This is what makes `--count-by service` over millions of events an aggregation.
pub fn count_by_column(
    searcher: &Searcher,
    query: &dyn Query,
    column: &'static str,
) -> tantivy::Result<HashMap<Option<String>, u64>> {
    searcher.search(query, &CountByColumn { column })
}

struct CountByColumn {
    column: &'static str,
}

struct CountByColumnSegment {
    column: Option<StrColumn>,
    per_ord: Vec<u64>,
    missing: u64,
}

impl Collector for CountByColumn {
    type Fruit = HashMap<Option<String>, u64>;
    type Child = CountByColumnSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<CountByColumnSegment> {
        let column = reader.fast_fields().str(self.column)?;
        let terms = column.as_ref().map_or(0, |c| c.num_terms());
        Ok(CountByColumnSegment {
            column,
            per_ord: vec![0; terms],
            missing: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<std::io::Result<Vec<(Option<String>, u64)>>>,
    ) -> tantivy::Result<HashMap<Option<String>, u64>> {
        let mut counts: HashMap<Option<String>, u64> = HashMap::new();
        for fruit in fruits {
            for (value, n) in fruit? {
                *counts.entry(value).or_insert(0) += n;
            }
        }
        Ok(counts)
    }
}

impl SegmentCollector for CountByColumnSegment {
    type Fruit = std::io::Result<Vec<(Option<String>, u64)>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let ord = self.column.as_ref().and_then(|c| c.term_ords(doc).next());
        match ord.and_then(|o| self.per_ord.get_mut(o as usize)) {
            Some(n) => *n += 1,
            None => self.missing += 1,
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut out = Vec::new();
        if self.missing > 0 {
            out.push((None, self.missing));
        }
        let Some(column) = self.column else {
            return Ok(out);
        };
        let mut text = String::new();
        for (ord, n) in self.per_ord.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            text.clear();
            if column.ord_to_str(ord as u64, &mut text)? {
                out.push((Some(text.clone()), *n));
            }
        }
        Ok(out)
    }
}

/// `count_by_column` for attribute paths (full column names such as `fields.req.url`; the first
/// path holding a value wins, as `host` falls back to `hostname`), read from the JSON fast
/// columns. `Ok(None)` when the columns cannot give what the stored documents give: the path
/// holds an object somewhere (there are columns below it), a type other than text, number or
/// bool, or an event holds more than one value there (an array). A one-value array counts as
/// its value here, where the documents would print it as JSON text.
pub fn count_by_attribute(
    searcher: &Searcher,
    query: &dyn Query,
    paths: &[String],
) -> tantivy::Result<Option<HashMap<Option<String>, u64>>> {
    for segment in searcher.segment_readers() {
        let ff = segment.fast_fields();
        for path in paths {
            if !ff.dynamic_subpath_column_handles(path)?.is_empty() {
                return Ok(None);
            }
            for handle in ff.dynamic_column_handles(path)? {
                if !matches!(
                    handle.column_type(),
                    ColumnType::Str
                        | ColumnType::I64
                        | ColumnType::U64
                        | ColumnType::F64
                        | ColumnType::Bool
                ) {
                    return Ok(None);
                }
            }
        }
    }
    searcher.search(
        query,
        &CountByAttribute {
            paths: paths.to_vec(),
        },
    )
}

struct CountByAttribute {
    paths: Vec<String>,
}

/// Per segment: the columns of each path; counts by (path, column, raw value) where the raw value
/// is a term ordinal for text and the bits of a number or bool.
struct CountByAttributeSegment {
    columns: Vec<Vec<DynamicColumn>>,
    counts: HashMap<(usize, usize, u64), u64>,
    missing: u64,
    several: bool,
}

type AttributeFruit = std::io::Result<Option<Vec<(Option<String>, u64)>>>;

impl Collector for CountByAttribute {
    type Fruit = Option<HashMap<Option<String>, u64>>;
    type Child = CountByAttributeSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<CountByAttributeSegment> {
        let ff = reader.fast_fields();
        let mut columns = Vec::with_capacity(self.paths.len());
        for path in &self.paths {
            let mut opened = Vec::new();
            for handle in ff.dynamic_column_handles(path)? {
                opened.push(handle.open()?);
            }
            columns.push(opened);
        }
        Ok(CountByAttributeSegment {
            columns,
            counts: HashMap::new(),
            missing: 0,
            several: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<AttributeFruit>) -> tantivy::Result<Self::Fruit> {
        let mut counts: HashMap<Option<String>, u64> = HashMap::new();
        for fruit in fruits {
            let Some(rows) = fruit? else {
                return Ok(None);
            };
            for (value, n) in rows {
                *counts.entry(value).or_insert(0) += n;
            }
        }
        Ok(Some(counts))
    }
}

impl SegmentCollector for CountByAttributeSegment {
    type Fruit = AttributeFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (p, columns) in self.columns.iter().enumerate() {
            let mut values = 0;
            let mut last = None;
            for (c, column) in columns.iter().enumerate() {
                let raws: Vec<u64> = match column {
                    DynamicColumn::Str(col) => col.term_ords(doc).collect(),
                    DynamicColumn::I64(col) => col.values_for_doc(doc).map(|v| v as u64).collect(),
                    DynamicColumn::U64(col) => col.values_for_doc(doc).collect(),
                    DynamicColumn::F64(col) => col.values_for_doc(doc).map(f64::to_bits).collect(),
                    DynamicColumn::Bool(col) => col.values_for_doc(doc).map(u64::from).collect(),
                    _ => Vec::new(),
                };
                values += raws.len();
                if let Some(raw) = raws.last() {
                    last = Some((c, *raw));
                }
            }
            if values > 1 {
                self.several = true;
                return;
            }
            if let Some((c, raw)) = last {
                *self.counts.entry((p, c, raw)).or_insert(0) += 1;
                return;
            }
        }
        self.missing += 1;
    }

    fn harvest(self) -> AttributeFruit {
        if self.several {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.counts.len() + 1);
        if self.missing > 0 {
            out.push((None, self.missing));
        }
        let mut text = String::new();
        for ((p, c, raw), n) in self.counts {
            let value = match self.columns.get(p).and_then(|cols| cols.get(c)) {
                Some(DynamicColumn::Str(col)) => {
                    text.clear();
                    col.ord_to_str(raw, &mut text)?.then(|| text.clone())
                }
                Some(DynamicColumn::I64(_)) => Some((raw as i64).to_string()),
                Some(DynamicColumn::U64(_)) => Some(raw.to_string()),
                Some(DynamicColumn::F64(_)) => {
                    serde_json::Number::from_f64(f64::from_bits(raw)).map(|n| n.to_string())
                }
                Some(DynamicColumn::Bool(_)) => Some((raw != 0).to_string()),
                _ => None,
            };
            out.push((value, n));
        }
        Ok(Some(out))
    }
}

/// The matching documents of an exact `query` per time bucket (`width_secs` wide, aligned on
/// multiples of it since the epoch), read from the `ts` fast column: no candidate list, so a
/// histogram of every event costs one counter per bucket. `None` when more than `max_buckets`
/// distinct buckets hold matches (the caller refuses such a histogram anyway).
pub fn count_by_bucket(
    searcher: &Searcher,
    query: &dyn Query,
    width_secs: i64,
    max_buckets: usize,
) -> tantivy::Result<Option<HashMap<i64, u64>>> {
    searcher.search(
        query,
        &CountByBucket {
            width_micros: width_secs.max(1).saturating_mul(Timestamp::MICROS_PER_SEC),
            max_buckets,
        },
    )
}

struct CountByBucket {
    width_micros: i64,
    max_buckets: usize,
}

struct CountByBucketSegment {
    ts: Column<DateTime>,
    width_micros: i64,
    max_buckets: usize,
    counts: HashMap<i64, u64>,
    overflow: bool,
}

impl Collector for CountByBucket {
    type Fruit = Option<HashMap<i64, u64>>;
    type Child = CountByBucketSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<CountByBucketSegment> {
        Ok(CountByBucketSegment {
            ts: reader.fast_fields().date(schema::TS)?,
            width_micros: self.width_micros,
            max_buckets: self.max_buckets,
            counts: HashMap::new(),
            overflow: false,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<HashMap<i64, u64>>>) -> tantivy::Result<Self::Fruit> {
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for fruit in fruits {
            let Some(segment) = fruit else {
                return Ok(None);
            };
            for (bucket, n) in segment {
                *counts.entry(bucket).or_insert(0) += n;
            }
            if counts.len() > self.max_buckets {
                return Ok(None);
            }
        }
        Ok(Some(counts))
    }
}

impl SegmentCollector for CountByBucketSegment {
    type Fruit = Option<HashMap<i64, u64>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let micros = self.ts.first(doc).map_or(0, |d| d.into_timestamp_micros());
        // bucket start in seconds, as `tally::Histogram` keys its buckets
        let bucket =
            micros.div_euclid(self.width_micros) * (self.width_micros / Timestamp::MICROS_PER_SEC);
        if let Some(n) = self.counts.get_mut(&bucket) {
            *n += 1;
        } else if self.counts.len() < self.max_buckets {
            self.counts.insert(bucket, 1);
        } else {
            self.overflow = true;
        }
    }

    fn harvest(self) -> Option<HashMap<i64, u64>> {
        (!self.overflow).then_some(self.counts)
    }
}
