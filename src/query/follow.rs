//! `loggrep --follow`: keep printing new matching events as a running `logwarden run` commits
//! them, until stopped (SIGINT/SIGTERM set the stop flag) or the index is gone.
//!
//! Owns: waiting for an index that does not exist yet, polling the index for new commits, finding
//! the events that are new since the last poll, printing each matching one exactly once. Must
//! not: write the index, write to stderr itself (the caller's [`Follow::note`] does), or decide
//! exit codes.
//!
//! An index that does not exist yet (the follow started before `logwarden run` created it) is
//! waited for, as `tail -F` waits for a file: one note, then a look at every poll until it can be
//! opened or the stop flag is set. Nothing in it was there when the follow started, so every
//! matching event it holds when it appears is new and prints (held to `--since`), then it is
//! followed as any other.
//!
//! Why it is shaped this way: tantivy segments are immutable, so a poll only evaluates the query
//! on segments it has not seen; but a background merge makes a new segment out of old ones, so
//! "new segment" does not mean "new events". What does: an event's id is (source fingerprint,
//! byte offset) and a source is read front to back, so every event indexed after a poll has a
//! larger offset than every event of its source already indexed then. A per-source high-water
//! mark of offsets (a few bytes per file, not per event) therefore tells new from old in any
//! segment, merged or not, and an event is never printed twice.
//!
//! With `--since`, followed events are held to it too. Events print in event-time order within
//! one poll; a late event (an older timestamp arriving after newer ones) prints when it is
//! indexed, as `tail -f` would show it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Query};
use tantivy::{DocAddress, Searcher};

use crate::event::Timestamp;
use crate::query::lang::Expr;
use crate::query::search::{self, Hit, Keep};
use crate::query::{Outcome, QueryError, Request, output, plan, time};
use crate::query::{lang, narrowed};
use crate::store::index::{EventIndex, IndexError};
use crate::store::schema;

/// Default pause between two polls of the index.
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);

/// `--follow`.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Set by the caller (a signal handler) to end the follow after the current poll.
    pub stop: Arc<AtomicBool>,
    /// Pause between two polls.
    pub poll: Duration,
    /// Tells the user something that is not output (`loggrep` writes it on stderr): that the
    /// index does not exist yet and the follow waits for it.
    pub note: fn(&str),
}

/// Highest offset indexed per source fingerprint.
type Marks = HashMap<u64, u64>;

/// Print the matches from `--since` (if given, newest `limit`), then every new match as it is
/// committed, until stopped or the index is gone. A missing index is waited for (see the module
/// doc); stopped while waiting, nothing matched.
pub fn run(req: &Request, f: &Follow, out: &mut dyn Write) -> Result<Outcome, QueryError> {
    let since = req
        .since
        .as_deref()
        .map(|s| time::parse(s, req.now))
        .transpose()
        .map_err(|source| QueryError::Time {
            flag: "--since",
            source,
        })?;
    // A query that cannot parse fails now, not once the index appears.
    let expr = lang::parse(&req.query)?;
    let dir = req.data_dir.join("index");
    let (index, appeared) = match EventIndex::open_existing(&dir) {
        Ok(index) => (index, false),
        Err(IndexError::Missing { .. }) => match wait_for(&dir, f)? {
            Some(index) => (index, true),
            None => {
                return Ok(Outcome {
                    matched: 0,
                    truncated: false,
                    cut: None,
                });
            }
        },
        Err(e) => return Err(e.into()),
    };
    let fields = index.fields();
    let meta = index.dir().join("meta.json");

    let mut searcher = index.searcher()?;
    // An index that appeared while waiting holds only new events: no segment is seen yet.
    let mut seen: HashSet<SegmentId> = if appeared {
        HashSet::new()
    } else {
        segment_ids(&searcher)
    };
    let mut marks = Marks::new();
    advance(&searcher, &seen, &mut marks)?;

    let mut matched = 0u64;
    let mut truncated = false;
    if let Some(since) = since.filter(|_| !appeared) {
        let (query, planned) = narrowed(
            req,
            expr.as_ref(),
            &index,
            &searcher,
            Bound::Included(since),
            Bound::Unbounded,
        )?;
        let keep = Keep {
            limit: req.limit,
            count_only: false,
        };
        let found = search::search(&searcher, fields, query.as_ref(), &planned, keep)?;
        truncated = (found.hits.len() as u64) < found.matched;
        matched += found.matched;
        print(req, &planned, &found.hits, out)?;
    }

    while !f.stop.load(Ordering::SeqCst) {
        pause(f.poll);
        if !meta.try_exists().unwrap_or(false) {
            break;
        }
        searcher = match index.searcher() {
            Ok(s) => s,
            // Removed between the check and the reload.
            Err(_) if !meta.try_exists().unwrap_or(false) => break,
            Err(e) => return Err(e.into()),
        };
        let current = segment_ids(&searcher);
        let fresh: HashSet<SegmentId> = current.difference(&seen).copied().collect();
        if !fresh.is_empty() {
            let (hits, planned) =
                new_matches(req, expr.as_ref(), &index, &searcher, since, &fresh, &marks)?;
            advance(&searcher, &fresh, &mut marks)?;
            matched += hits.len() as u64;
            print(req, &planned, &hits, out)?;
        }
        seen = current;
    }
    Ok(Outcome {
        matched,
        truncated,
        cut: None,
    })
}

/// Wait for the index in `dir` to appear: one note, then a look every poll. `None`: stopped first.
fn wait_for(dir: &Path, f: &Follow) -> Result<Option<EventIndex>, QueryError> {
    (f.note)(&format!(
        "waiting for the index at {} to appear…",
        dir.display()
    ));
    while !f.stop.load(Ordering::SeqCst) {
        pause(f.poll);
        match EventIndex::open_existing(dir) {
            Ok(index) => return Ok(Some(index)),
            Err(IndexError::Missing { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

/// Sleep between polls (real pacing, not a test waiting on a condition).
#[allow(clippy::disallowed_methods)] // pacing the polls of the index
fn pause(d: Duration) {
    std::thread::sleep(d);
}

fn segment_ids(searcher: &Searcher) -> HashSet<SegmentId> {
    searcher
        .segment_readers()
        .iter()
        .map(|r| r.segment_id())
        .collect()
}

/// Raise the marks to the highest offset of every source in the `fresh` segments.
fn advance(
    searcher: &Searcher,
    fresh: &HashSet<SegmentId>,
    marks: &mut Marks,
) -> tantivy::Result<()> {
    for reader in searcher.segment_readers() {
        if !fresh.contains(&reader.segment_id()) {
            continue;
        }
        let ff = reader.fast_fields();
        let fingerprint = ff.u64(schema::FINGERPRINT)?;
        let offset = ff.u64(schema::OFFSET)?;
        for doc in reader.doc_ids_alive() {
            let (Some(fp), Some(off)) = (fingerprint.first(doc), offset.first(doc)) else {
                continue;
            };
            let mark = marks.entry(fp).or_insert(off);
            *mark = (*mark).max(off);
        }
    }
    Ok(())
}

/// The matching events (at or after `since`) of the `fresh` segments that are beyond the marks,
/// in event-time order.
fn new_matches(
    req: &Request,
    expr: Option<&Expr>,
    index: &EventIndex,
    searcher: &Searcher,
    since: Option<Timestamp>,
    fresh: &HashSet<SegmentId>,
    marks: &Marks,
) -> Result<(Vec<Hit>, plan::Plan), QueryError> {
    // Planned against this searcher: the plan may read the term dictionaries of new segments.
    let lo = since.map_or(Bound::Unbounded, Bound::Included);
    let fields = index.fields();
    let (query, planned) = narrowed(req, expr, index, searcher, lo, Bound::Unbounded)?;
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut addresses = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        if !fresh.contains(&reader.segment_id()) {
            continue;
        }
        let ff = reader.fast_fields();
        let fingerprint = ff.u64(schema::FINGERPRINT)?;
        let offset = ff.u64(schema::OFFSET)?;
        let alive = reader.alive_bitset();
        let segment = u32::try_from(ord).unwrap_or(u32::MAX);
        weight.for_each_no_score(reader, &mut |docs| {
            for &doc in docs {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let fp = fingerprint.first(doc).unwrap_or(0);
                let off = offset.first(doc).unwrap_or(0);
                if marks.get(&fp).is_some_and(|&mark| off <= mark) {
                    continue;
                }
                addresses.push(DocAddress::new(segment, doc));
            }
        })?;
    }
    let mut hits = Vec::with_capacity(addresses.len());
    for address in addresses {
        let hit = search::load(searcher, fields, address)?;
        if planned.exact || planned.pred.eval(&hit) {
            hits.push(hit);
        }
    }
    hits.sort_by_key(|h| (h.ts, h.id));
    Ok((hits, planned))
}

fn print(
    req: &Request,
    planned: &plan::Plan,
    hits: &[Hit],
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    let highlights = planned.pred.highlights();
    for hit in hits {
        if req.json {
            output::write_json(out, hit)?;
        } else {
            output::write_line(out, hit, &highlights, req.color)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;
    use crate::event::Events;
    use crate::store::index::tests::event;

    /// Output shared between the follower's thread and the test.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut inner = self
                .0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            inner.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn messages(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["raw"].as_str().unwrap().to_string()
                })
                .collect()
        }
    }

    fn wait(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            pause(Duration::from_millis(20));
        }
        cond()
    }

    fn request(dir: &Path) -> Request {
        Request {
            // Between the old events and the new ones: a new event committed before the
            // follower took its marks comes from this search instead, so the test has no race.
            since: Some("1970-01-01T00:00:01.500Z".into()),
            json: true,
            ..Request::plain(dir, "hit", Timestamp::from_secs(0))
        }
    }

    /// New matches print once, old ones never, also after a merge rewrites old and already
    /// printed events into a new segment.
    #[test]
    fn each_new_match_prints_once_across_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
        let mut sink = index.writer(15_000_000).unwrap();
        // Each commit also holds an event at ts 0, deleted later so that both segments merge.
        sink.add(&Events::new(vec![
            event(1, 0, 0, "app", "doomed"),
            event(1, 10, 1000, "app", "old hit"),
            event(1, 20, 1001, "app", "old miss"),
        ]))
        .unwrap();
        sink.commit("1").unwrap();

        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let follow = Follow {
            stop: Arc::clone(&stop),
            poll: Duration::from_millis(20),
            note: |_| {},
        };
        let req = request(dir.path());
        let mut writer = out.clone();
        let follower = std::thread::spawn(move || run(&req, &follow, &mut writer));

        sink.add(&Events::new(vec![
            event(2, 0, 0, "app", "doomed"),
            event(2, 10, 3000, "app", "new hit 1"),
            event(1, 30, 2000, "app", "new hit 2"),
            event(1, 40, 2001, "app", "new miss"),
        ]))
        .unwrap();
        sink.commit("2").unwrap();
        assert!(
            wait(10, || out.messages().len() == 2),
            "{:?}",
            out.messages()
        );
        assert_eq!(out.messages(), ["new hit 2", "new hit 1"]);

        sink.delete_before(Timestamp::from_millis(1)).unwrap();
        sink.commit("3").unwrap();
        assert_eq!(sink.merge_deleted().unwrap(), 2);
        assert!(wait(10, || index
            .searcher()
            .unwrap()
            .segment_readers()
            .len()
            == 1));

        sink.add(&Events::new(vec![
            event(1, 50, 1600, "app", "late hit"),
            event(1, 60, 1400, "app", "hit before --since"),
        ]))
        .unwrap();
        sink.commit("4").unwrap();
        assert!(
            wait(10, || out.messages().len() == 3),
            "{:?}",
            out.messages()
        );
        pause(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        let outcome = follower.join().unwrap().unwrap();
        assert_eq!(outcome.matched, 3);
        assert_eq!(out.messages(), ["new hit 2", "new hit 1", "late hit"]);
    }

    /// Notes given by the follower of the test below (the only one counting them).
    static NOTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    fn count_note(note: &str) {
        assert!(note.starts_with("waiting for the index at "), "{note}");
        NOTES.fetch_add(1, Ordering::SeqCst);
    }

    /// Started before the index exists, the follower says so once and waits; the index then
    /// appears with events already committed (built beside it and moved into place): they were
    /// all indexed after the follow started, so its matches print, and later commits too.
    #[test]
    fn a_follow_started_before_the_index_prints_what_it_holds_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let follow = Follow {
            stop: Arc::clone(&stop),
            poll: Duration::from_millis(20),
            note: count_note,
        };
        let req = Request {
            json: true,
            ..Request::plain(&data, "hit", Timestamp::from_secs(0))
        };
        let mut writer = out.clone();
        let follower = std::thread::spawn(move || run(&req, &follow, &mut writer));
        assert!(wait(10, || NOTES.load(Ordering::SeqCst) == 1));

        let staged = dir.path().join("staged");
        {
            let index = EventIndex::open_or_create(&staged).unwrap();
            let mut sink = index.writer(15_000_000).unwrap();
            sink.add(&Events::new(vec![
                event(1, 10, 2000, "app", "first hit"),
                event(1, 20, 1000, "app", "a miss"),
                event(2, 10, 1500, "app", "second hit"),
            ]))
            .unwrap();
            sink.commit("1").unwrap();
        }
        std::fs::create_dir_all(&data).unwrap();
        std::fs::rename(&staged, data.join("index")).unwrap();
        assert!(
            wait(10, || out.messages().len() == 2),
            "{:?}",
            out.messages()
        );
        assert_eq!(out.messages(), ["second hit", "first hit"]);

        let index = EventIndex::open_existing(&data.join("index")).unwrap();
        let mut sink = index.writer(15_000_000).unwrap();
        sink.add(&Events::new(vec![event(1, 30, 3000, "app", "third hit")]))
            .unwrap();
        sink.commit("2").unwrap();
        assert!(
            wait(10, || out.messages().len() == 3),
            "{:?}",
            out.messages()
        );
        stop.store(true, Ordering::SeqCst);
        let outcome = follower.join().unwrap().unwrap();
        assert_eq!(outcome.matched, 3);
        assert_eq!(out.messages(), ["second hit", "first hit", "third hit"]);
        assert_eq!(NOTES.load(Ordering::SeqCst), 1);
    }
}
