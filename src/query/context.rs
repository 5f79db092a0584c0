//! Context events (`-A`/`-B`/`-C`): the neighbours of each hit in its own source file, in file
//! order, grouped as `grep -C` groups lines.
//!
//! Takes the kept hits and the context sizes; gives [`Group`]s, each a run of events adjacent in
//! one file (hits and their context), ordered by their first hit's place in the hit list. Must
//! not: decide matches or print.
//!
//! Why a collector and not a query per hit: an event's neighbours are the events of the same
//! `fingerprint` with the nearest `offset`s, and the distance in bytes is unknown. One pass over
//! the postings of the hits' fingerprints, reading two fast fields per document, keeps for each
//! gap between two consecutive hits of a file only its count, the `after` smallest offsets and the
//! `before` largest: memory is bounded by hits × (before + after), whatever the file's size. A gap
//! of at most `before + after` events is printed whole, so its two hits share a group; a longer one
//! is where grep prints `--`. Context is counted in events: for single-line events that is grep's
//! count of lines; a multi-line event counts once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, Term};

use crate::query::search::{self, Hit};
use crate::store::schema::{self, Fields};

/// At most this many context events are read and printed for one query.
pub const MAX_CONTEXT_EVENTS: usize = 100_000;

#[derive(thiserror::Error, Debug)]
pub enum ContextError {
    #[error(
        "context: {events} events around the hits (at most {max}); lower -A/-B/-C or --limit",
        max = MAX_CONTEXT_EVENTS
    )]
    TooMany { events: usize },
    #[error("search failed: {0}")]
    Search(#[from] tantivy::TantivyError),
    #[error("context: event {0} went away while it was read")]
    Gone(String),
}

/// How many events to print before and after each hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContextLines {
    pub before: usize,
    pub after: usize,
}

/// One event of a group: a hit, or a neighbour printed for context.
#[derive(Debug, Clone)]
pub struct Line {
    pub hit: Hit,
    pub is_match: bool,
}

/// Events adjacent in one source file, in file order.
pub type Group = Vec<Line>;

/// The groups of `hits` (in the order given) with their context, each group placed where its
/// first hit stands in `hits`.
pub fn groups(
    searcher: &Searcher,
    fields: Fields,
    hits: &[Hit],
    lines: ContextLines,
) -> Result<Vec<Group>, ContextError> {
    let per_file = Arc::new(files_of(hits));
    // With -C 0 no neighbour is printed, but the gap sizes still decide the separators.
    let gaps = searcher.search(
        &files_query(fields, &per_file),
        &Gaps {
            per_file: Arc::clone(&per_file),
            lines,
        },
    )?;
    check_size(&gaps)?;
    assemble(hits, lines, &per_file, &gaps, &mut |(_, address)| {
        Ok(search::load(searcher, fields, *address)?)
    })
}

/// The hits' offsets per file (fingerprint), sorted, each once.
pub fn files_of(hits: &[Hit]) -> HashMap<u64, Vec<u64>> {
    let mut per_file: HashMap<u64, Vec<u64>> = HashMap::new();
    for hit in hits {
        per_file
            .entry(hit.id.fingerprint)
            .or_default()
            .push(hit.id.offset);
    }
    for offsets in per_file.values_mut() {
        offsets.sort_unstable();
        offsets.dedup();
    }
    per_file
}

/// Refuse more context events than [`MAX_CONTEXT_EVENTS`], before any is read: a -C of millions
/// over a large file would hold them all.
pub fn check_size<T>(gaps: &HashMap<GapKey, Gap<T>>) -> Result<(), ContextError> {
    let events: usize = gaps.values().map(|g| g.after.len() + g.before.len()).sum();
    if events > MAX_CONTEXT_EVENTS {
        return Err(ContextError::TooMany { events });
    }
    Ok(())
}

/// Loads a context event from its (offset, handle).
pub type Loader<'a, T> = dyn FnMut(&(u64, T)) -> Result<Hit, ContextError> + 'a;

/// The groups of `hits` (in the order given), from the gaps around them in their files
/// (`per_file`: [`files_of`] the hits), each context event loaded by `load`. Every backend's
/// context goes through here, so the groups and separators are the same.
pub fn assemble<T: Clone>(
    hits: &[Hit],
    lines: ContextLines,
    per_file: &HashMap<u64, Vec<u64>>,
    gaps: &HashMap<GapKey, Gap<T>>,
    load: &mut Loader<'_, T>,
) -> Result<Vec<Group>, ContextError> {
    let mut rank: HashMap<(u64, u64), usize> = HashMap::new();
    let mut by_id: HashMap<(u64, u64), &Hit> = HashMap::new();
    for (i, hit) in hits.iter().enumerate() {
        rank.entry((hit.id.fingerprint, hit.id.offset)).or_insert(i);
        by_id.insert((hit.id.fingerprint, hit.id.offset), hit);
    }
    let mut push_context = |group: &mut Group, items: &[(u64, T)]| -> Result<(), ContextError> {
        for item in items {
            group.push(Line {
                hit: load(item)?,
                is_match: false,
            });
        }
        Ok(())
    };
    let mut out: Vec<(usize, Group)> = Vec::new();
    let mut fingerprints: Vec<&u64> = per_file.keys().collect();
    fingerprints.sort_unstable();
    for fp in fingerprints {
        let offsets = &per_file[fp];
        let mut group: Group = Vec::new();
        for (i, offset) in offsets.iter().enumerate() {
            let gap = gaps.get(&(*fp, i)).cloned().unwrap_or_default();
            let whole = gap.count <= (lines.before + lines.after) as u64;
            if i > 0 {
                if whole {
                    let mut all = gap.after.clone();
                    all.extend(gap.before.iter().cloned());
                    all.sort_by_key(|(o, _)| *o);
                    all.dedup_by_key(|(o, _)| *o);
                    push_context(&mut group, &all)?;
                } else {
                    push_context(&mut group, &sorted(&gap.after))?;
                    close(&mut out, &mut group, &rank);
                }
            }
            if i == 0 || !whole {
                push_context(&mut group, &sorted(&gap.before))?;
            }
            if let Some(hit) = by_id.get(&(*fp, *offset)) {
                group.push(Line {
                    hit: (*hit).clone(),
                    is_match: true,
                });
            }
        }
        let tail = gaps.get(&(*fp, offsets.len())).cloned().unwrap_or_default();
        push_context(&mut group, &sorted(&tail.after))?;
        close(&mut out, &mut group, &rank);
    }
    out.sort_by_key(|(first, _)| *first);
    Ok(out.into_iter().map(|(_, g)| g).collect())
}

fn sorted<T: Clone>(items: &[(u64, T)]) -> Vec<(u64, T)> {
    let mut v = items.to_vec();
    v.sort_by_key(|(o, _)| *o);
    v
}

/// End the current group; it sorts by the earliest rank of its hits.
fn close(out: &mut Vec<(usize, Group)>, group: &mut Group, rank: &HashMap<(u64, u64), usize>) {
    let first = group
        .iter()
        .filter(|l| l.is_match)
        .filter_map(|l| rank.get(&(l.hit.id.fingerprint, l.hit.id.offset)))
        .min()
        .copied();
    let taken = std::mem::take(group);
    if let Some(first) = first {
        out.push((first, taken));
    }
}

fn files_query(fields: Fields, per_file: &HashMap<u64, Vec<u64>>) -> BooleanQuery {
    let clauses: Vec<(Occur, Box<dyn Query>)> = per_file
        .keys()
        .map(|fp| {
            let term = Term::from_field_u64(fields.fingerprint, *fp);
            let q: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::Basic));
            (Occur::Should, q)
        })
        .collect();
    BooleanQuery::new(clauses)
}

/// A file's fingerprint and a gap's index in it.
pub type GapKey = (u64, usize);
/// An event's offset and address.
type Item = (u64, DocAddress);

/// What one gap between consecutive hits of a file (gap `i` lies before the file's hit `i`; the
/// last gap follows its last hit) holds: its number of events, the `after` first ones and the
/// `before` last ones (offset and what loads the event: an address in the index, or the event).
#[derive(Debug, Clone)]
pub struct Gap<T> {
    pub count: u64,
    pub after: Vec<(u64, T)>,
    pub before: Vec<(u64, T)>,
}

impl<T> Default for Gap<T> {
    fn default() -> Self {
        Gap {
            count: 0,
            after: Vec::new(),
            before: Vec::new(),
        }
    }
}

struct Gaps {
    per_file: Arc<HashMap<u64, Vec<u64>>>,
    lines: ContextLines,
}

/// Bounded selections while collecting: a max-heap of the smallest offsets, a min-heap of the
/// largest.
#[derive(Default)]
struct GapHeaps {
    count: u64,
    after: BinaryHeap<(u64, DocAddress)>,
    before: BinaryHeap<Reverse<(u64, DocAddress)>>,
}

impl GapHeaps {
    fn offer(&mut self, item: (u64, DocAddress), lines: ContextLines, lower: bool, upper: bool) {
        // Peek first: most events of a long gap are neither among its first nor its last ones.
        if lower && lines.after > 0 {
            if self.after.len() < lines.after {
                self.after.push(item);
            } else if self.after.peek().is_some_and(|worst| item < *worst) {
                self.after.pop();
                self.after.push(item);
            }
        }
        if upper && lines.before > 0 {
            if self.before.len() < lines.before {
                self.before.push(Reverse(item));
            } else if self
                .before
                .peek()
                .is_some_and(|Reverse(worst)| item > *worst)
            {
                self.before.pop();
                self.before.push(Reverse(item));
            }
        }
    }
}

/// One file's hits and the selections of its gaps (gap `i` before hit `i`) in one segment; only
/// the gaps this segment has events in.
struct FileGaps {
    fingerprint: u64,
    hits: Vec<u64>,
    gaps: HashMap<usize, GapHeaps>,
}

/// Per segment. Documents of one file mostly follow each other, so the file of the previous
/// document is remembered and the per-document work is two column reads, a binary search among
/// the file's hits and a counter.
struct GapsSegment {
    segment: SegmentOrdinal,
    per_file: Arc<HashMap<u64, Vec<u64>>>,
    lines: ContextLines,
    fingerprint: Column<u64>,
    offset: Column<u64>,
    files: Vec<FileGaps>,
    /// The previous document's fingerprint and its index in `files` (`None`: not a hits' file).
    last: Option<(u64, Option<usize>)>,
}

impl GapsSegment {
    /// Index in `files` of the file `fp`, when it holds hits.
    fn file(&mut self, fp: u64) -> Option<usize> {
        if let Some((last_fp, slot)) = self.last
            && last_fp == fp
        {
            return slot;
        }
        let slot = match self.files.iter().position(|f| f.fingerprint == fp) {
            Some(i) => Some(i),
            None => self.per_file.get(&fp).map(|hits| {
                self.files.push(FileGaps {
                    fingerprint: fp,
                    hits: hits.clone(),
                    gaps: HashMap::new(),
                });
                self.files.len() - 1
            }),
        };
        self.last = Some((fp, slot));
        slot
    }
}

impl Collector for Gaps {
    type Fruit = HashMap<(u64, usize), Gap<DocAddress>>;
    type Child = GapsSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<GapsSegment> {
        let ff = reader.fast_fields();
        Ok(GapsSegment {
            segment,
            per_file: Arc::clone(&self.per_file),
            lines: self.lines,
            fingerprint: ff.u64(schema::FINGERPRINT)?,
            offset: ff.u64(schema::OFFSET)?,
            files: Vec::new(),
            last: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<((u64, usize), Gap<DocAddress>)>>,
    ) -> tantivy::Result<Self::Fruit> {
        // Per gap: the counts add up; the selections are chosen again from the union of the
        // segments' selections (an event can sit in both selections of a small gap: once only).
        let mut union: HashMap<GapKey, (u64, Vec<Item>)> = HashMap::new();
        for (key, gap) in fruits.into_iter().flatten() {
            let entry = union.entry(key).or_default();
            entry.0 += gap.count;
            entry.1.extend(gap.after);
            entry.1.extend(gap.before);
        }
        let mut merged = HashMap::with_capacity(union.len());
        for (key, (count, mut items)) in union {
            items.sort_unstable();
            items.dedup();
            let hits = self.per_file.get(&key.0).map_or(0, Vec::len);
            let mut heaps = GapHeaps {
                count,
                ..GapHeaps::default()
            };
            for item in items {
                heaps.offer(item, self.lines, key.1 > 0, key.1 < hits);
            }
            merged.insert(key, heaps.into_gap());
        }
        Ok(merged)
    }
}

impl GapHeaps {
    fn into_gap(self) -> Gap<DocAddress> {
        Gap {
            count: self.count,
            after: self.after.into_vec(),
            before: self.before.into_iter().map(|Reverse(item)| item).collect(),
        }
    }
}

impl SegmentCollector for GapsSegment {
    type Fruit = Vec<((u64, usize), Gap<DocAddress>)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let (Some(fp), Some(offset)) = (self.fingerprint.first(doc), self.offset.first(doc)) else {
            return;
        };
        let Some(slot) = self.file(fp) else {
            return;
        };
        let lines = self.lines;
        let item = (offset, DocAddress::new(self.segment, doc));
        let Some(file) = self.files.get_mut(slot) else {
            return;
        };
        let i = file.hits.partition_point(|h| *h < offset);
        if file.hits.get(i) == Some(&offset) {
            return; // a hit itself
        }
        let hits = file.hits.len();
        let heaps = file.gaps.entry(i).or_default();
        heaps.count += 1;
        heaps.offer(item, lines, i > 0, i < hits);
    }

    fn harvest(self) -> Self::Fruit {
        let mut out = Vec::new();
        for file in self.files {
            for (i, heaps) in file.gaps {
                out.push(((file.fingerprint, i), heaps.into_gap()));
            }
        }
        out
    }
}
