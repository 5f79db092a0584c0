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
//! A listing decides newest first and stops one match past its limit; counting and the tallies
//! read each segment's candidates in document order (each store block decompressed once).
//! Memory: a listing the index decides alone keeps the newest `limit` keys per segment; an
//! inexact listing and an ordered walk (timelines, exports) keep at most one round of candidates'
//! keys ([`ROUND_MAX`], ~32 MiB); counting keeps none.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnType, DynamicColumn, StrColumn};
use tantivy::query::{EnableScoring, Query};
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
        let edge = Edge {
            keep: limit,
            newest: true,
            beyond: None,
        };
        let (matched, newest) = searcher.search(query, &edge)?;
        let mut hits = Vec::with_capacity(newest.len());
        for c in newest.iter().rev() {
            hits.push(load(searcher, fields, c.address)?);
        }
        return Ok(Found {
            matched,
            exact: true,
            hits,
        });
    }

    if limit == 0 {
        // Counting decides every candidate, in document order (any order counts the same).
        let matched = each_match(searcher, fields, query, plan, false, &mut |_, _| {})?;
        return Ok(Found {
            matched,
            exact: true,
            hits: Vec::new(),
        });
    }

    // A listing decides the candidates newest first and stops at the first match past the limit:
    // it then knows the limit cut, which is all it says, so a common word's listing reads
    // `limit + 1` matches' documents, not every candidate's.
    let mut hits = Vec::new();
    let mut more = false;
    walk::<tantivy::TantivyError>(searcher, fields, query, plan, true, &mut |hit| {
        if hits.len() == limit {
            more = true;
            return Ok(false);
        }
        hits.push(hit);
        Ok(true)
    })?;
    hits.reverse();
    Ok(Found {
        matched: hits.len() as u64 + u64::from(more),
        exact: !more,
        hits,
    })
}

/// Every match of `query` (decided by `plan`) in event-time order, loaded one at a time and handed
/// to `each` until it returns `false`: for streaming an export, or reading a timeline from its
/// start. Memory is bounded (see [`walk`]), never all the hits. Returns the number of matches
/// handed over.
pub fn each_in_order<E: From<tantivy::TantivyError>>(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    mut each: impl FnMut(Hit) -> Result<bool, E>,
) -> Result<u64, E> {
    let mut handed = 0;
    walk(searcher, fields, query, plan, false, &mut |hit| {
        handed += 1;
        each(hit)
    })?;
    Ok(handed)
}

/// Candidates fetched by the first round of a [`walk`]; each further round doubles it, up to
/// [`ROUND_MAX`].
const ROUND_FIRST: usize = 1024;
/// The most candidates' keys a round holds (~32 bytes each: 32 MiB).
const ROUND_MAX: usize = 1 << 20;

/// Hand the matches of `query` (decided by `plan`) to `each` in event-time order, newest first
/// when `newest`, until it returns `false` or none are left. Memory stays bounded whatever the
/// number of candidates: a round keeps only the next [`ROUND_FIRST`] (doubling up to
/// [`ROUND_MAX`]) candidates' keys beyond the last one handed over, decides them in order, and
/// the next round starts past the last.
fn walk<E: From<tantivy::TantivyError>>(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    newest: bool,
    each: &mut dyn FnMut(Hit) -> Result<bool, E>,
) -> Result<(), E> {
    let mut round = ROUND_FIRST;
    let mut beyond = None;
    loop {
        let edge = Edge {
            keep: round,
            newest,
            beyond,
        };
        let (_, batch) = searcher.search(query, &edge)?;
        for c in &batch {
            let hit = load(searcher, fields, c.address)?;
            if !plan.exact && !plan.pred.eval(&hit) {
                continue;
            }
            if !each(hit)? {
                return Ok(());
            }
        }
        match batch.last() {
            Some(last) if batch.len() == round => beyond = Some(last.key()),
            _ => return Ok(()),
        }
        round = (round * 2).min(ROUND_MAX);
    }
}

/// Read a stored event back.
pub fn load(searcher: &Searcher, f: Fields, address: DocAddress) -> tantivy::Result<Hit> {
    let doc: TantivyDocument = searcher.doc(address)?;
    Ok(hit_of(&doc, f))
}

/// A stored document as a [`Hit`].
fn hit_of(doc: &TantivyDocument, f: Fields) -> Hit {
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
    Hit {
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
    }
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

/// A key as an unsigned triple ordered so that the walk's next candidate is the *largest*:
/// time (sign bit flipped, so the order holds across 1970), fingerprint, offset; complemented
/// when walking oldest first.
fn walk_order(key: (i64, u64, u64), newest: bool) -> (u64, u64, u64) {
    let t = (key.0 as u64) ^ (1 << 63);
    if newest {
        (t, key.1, key.2)
    } else {
        (!t, !key.1, !key.2)
    }
}

/// Counts every matching document and keeps the next `keep` candidates of a walk (the newest,
/// or the oldest), only those `beyond` the given key; the merge keeps the next `keep` of the
/// segments', in walk order.
struct Edge {
    keep: usize,
    newest: bool,
    /// Only candidates past this key in walk order (older when walking newest first).
    beyond: Option<(i64, u64, u64)>,
}

/// A kept candidate of one segment: its key in walk order and document.
type Kept = ((u64, u64, u64), DocId);

struct EdgeSegment {
    keys: KeyColumns,
    keep: usize,
    newest: bool,
    beyond: Option<(u64, u64, u64)>,
    count: u64,
    /// A min-heap on the walk-order key: the last candidate in walk order goes first.
    heap: BinaryHeap<Reverse<Kept>>,
}

impl Collector for Edge {
    type Fruit = (u64, Vec<Candidate>);
    type Child = EdgeSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<EdgeSegment> {
        Ok(EdgeSegment {
            keys: KeyColumns::open(segment, reader)?,
            keep: self.keep,
            newest: self.newest,
            beyond: self.beyond.map(|k| walk_order(k, self.newest)),
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
        all.sort_unstable_by_key(|c| Reverse(walk_order(c.key(), self.newest)));
        all.truncate(self.keep);
        Ok((count, all))
    }
}

impl SegmentCollector for EdgeSegment {
    type Fruit = (u64, Vec<Candidate>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        if self.keep == 0 {
            return;
        }
        let key = walk_order(self.keys.candidate(doc).key(), self.newest);
        if self.beyond.is_some_and(|b| key >= b) {
            return;
        }
        let entry = Reverse((key, doc));
        if self.heap.len() < self.keep {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|last| entry < *last) {
            // `Reverse`: smaller means earlier in the walk than the last kept one.
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    fn harvest(self) -> (u64, Vec<Candidate>) {
        let keys = &self.keys;
        let kept = self
            .heap
            .into_iter()
            .map(|Reverse((_, doc))| keys.candidate(doc))
            .collect();
        (self.count, kept)
    }
}

/// The fast columns of a segment that give a document its sort key.
struct KeyColumns {
    segment: SegmentOrdinal,
    ts: Column<DateTime>,
    fingerprint: Column<u64>,
    offset: Column<u64>,
}

impl KeyColumns {
    fn open(segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<KeyColumns> {
        let ff = reader.fast_fields();
        Ok(KeyColumns {
            segment,
            ts: ff.date(schema::TS)?,
            fingerprint: ff.u64(schema::FINGERPRINT)?,
            offset: ff.u64(schema::OFFSET)?,
        })
    }

    fn candidate(&self, doc: DocId) -> Candidate {
        Candidate {
            ts: self.ts.first(doc).map_or(0, |d| d.into_timestamp_micros()),
            fingerprint: self.fingerprint.first(doc).unwrap_or(0),
            offset: self.offset.first(doc).unwrap_or(0),
            address: DocAddress::new(self.segment, doc),
        }
    }
}

/// Every match of `plan` (any order), handed to `visit` with its time and, when `need_doc` (or
/// when the plan must read the document to decide anyway), the loaded hit. Returns the number of
/// matches. Used by counting and the tallies (`--count-by`, `--histogram`), which need no order
/// and keep only their counters: each segment's candidates are visited in document order, so
/// memory stays flat and the stored documents are read block after block, each block
/// decompressed once.
pub fn each_match(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    plan: &Plan,
    need_doc: bool,
    visit: &mut dyn FnMut(Timestamp, Option<&Hit>),
) -> tantivy::Result<u64> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let read_doc = need_doc || !plan.exact;
    let mut matched = 0u64;
    for reader in searcher.segment_readers() {
        let ts = reader.fast_fields().date(schema::TS)?;
        let store = if read_doc {
            Some(reader.get_store_reader(1)?)
        } else {
            None
        };
        let alive = reader.alive_bitset();
        let mut failed = None;
        weight.for_each_no_score(reader, &mut |docs| {
            for &doc in docs {
                if failed.is_some() || alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let Some(store) = &store else {
                    matched += 1;
                    let micros = ts.first(doc).map_or(0, |d| d.into_timestamp_micros());
                    visit(Timestamp(micros), None);
                    continue;
                };
                let hit = match store.get::<TantivyDocument>(doc) {
                    Ok(d) => hit_of(&d, fields),
                    Err(e) => {
                        failed = Some(e);
                        continue;
                    }
                };
                if !plan.exact && !plan.pred.eval(&hit) {
                    continue;
                }
                matched += 1;
                visit(hit.ts, Some(&hit));
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
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
