//! The tantivy event index: open or create it, add [`Events`], commit them together with the
//! pipeline's checkpoint (the commit payload), read that payload back, and hand out searchers.
//!
//! Takes `Events` batches and a payload string; gives durable, searchable documents.
//! Must not: decide when to commit (the pipeline does), interpret the payload (source::checkpoint
//! does), or know the query language (query:: does).
//!
//! Exactly-once rests on one fact: tantivy writes the payload into `meta.json` in the same atomic
//! step that makes the segments of the commit visible, so after a crash the payload read by
//! [`EventIndex::last_payload`] describes exactly the events the index holds.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::indexer::NoMergePolicy;
use tantivy::schema::OwnedValue;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument};

use crate::event::{Event, EventId, Events};
use crate::store::schema::{self, Fields};

#[derive(thiserror::Error, Debug)]
pub enum IndexError {
    #[error("no index in {dir}: run logwarden demo or backfill first")]
    Missing { dir: PathBuf },
    #[error("cannot create index directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "index in {dir} has a different schema (an index from an older logwarden, or not a logwarden \
         event index): re-index it (move the directory away and run logwarden backfill again)"
    )]
    ForeignSchema { dir: PathBuf },
    #[error("index in {dir}: {source}")]
    Tantivy {
        dir: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("index: {0}")]
    Engine(#[from] tantivy::TantivyError),
}

/// An open event index (one directory, `<data-dir>/index`).
pub struct EventIndex {
    dir: PathBuf,
    index: Index,
    fields: Fields,
    reader: IndexReader,
}

impl EventIndex {
    /// Open the index in `dir`, creating the directory and an empty index when there is none.
    pub fn open_or_create(dir: &Path) -> Result<EventIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let directory = open_dir(dir)?;
        let index =
            Index::open_or_create(directory, schema::build()).map_err(|source| match source {
                tantivy::TantivyError::SchemaError(_) => IndexError::ForeignSchema {
                    dir: dir.to_path_buf(),
                },
                other => IndexError::Tantivy {
                    dir: dir.to_path_buf(),
                    source: other,
                },
            })?;
        Self::from_index(dir, index)
    }

    /// Open the index in `dir` for reading; a clear [`IndexError::Missing`] when there is none.
    pub fn open_existing(dir: &Path) -> Result<EventIndex, IndexError> {
        let missing = || IndexError::Missing {
            dir: dir.to_path_buf(),
        };
        if !dir.is_dir() {
            return Err(missing());
        }
        let directory = open_dir(dir)?;
        if !Index::exists(&directory).unwrap_or(false) {
            return Err(missing());
        }
        let index = Index::open(directory).map_err(|source| IndexError::Tantivy {
            dir: dir.to_path_buf(),
            source,
        })?;
        Self::from_index(dir, index)
    }

    fn from_index(dir: &Path, index: Index) -> Result<EventIndex, IndexError> {
        schema::register_tokenizers(&index);
        let fields = Fields::resolve(&index.schema()).ok_or_else(|| IndexError::ForeignSchema {
            dir: dir.to_path_buf(),
        })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(EventIndex {
            dir: dir.to_path_buf(),
            index,
            fields,
            reader,
        })
    }

    /// A writer with `heap_bytes` of indexing memory (tantivy needs at least 15 MB per thread).
    pub fn writer(&self, heap_bytes: usize) -> Result<IndexSink, IndexError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let per_thread_min = 15_000_000;
        let threads = threads.min((heap_bytes / per_thread_min).max(1));
        let writer = self
            .index
            .writer_with_num_threads(threads, heap_bytes)
            .map_err(|source| IndexError::Tantivy {
                dir: self.dir.clone(),
                source,
            })?;
        Ok(IndexSink {
            writer,
            fields: self.fields,
        })
    }

    /// The payload of the last commit (the pipeline's checkpoint JSON), `None` before the first.
    pub fn last_payload(&self) -> Result<Option<String>, IndexError> {
        Ok(self.index.load_metas()?.payload)
    }

    /// Number of events in the last commit.
    pub fn num_docs(&self) -> Result<u64, IndexError> {
        Ok(self.searcher()?.num_docs())
    }

    /// A searcher over the last commit (reloads first).
    pub fn searcher(&self) -> Result<Searcher, IndexError> {
        self.reader.reload()?;
        Ok(self.reader.searcher())
    }

    pub fn fields(&self) -> Fields {
        self.fields
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn open_dir(dir: &Path) -> Result<MmapDirectory, IndexError> {
    MmapDirectory::open(dir).map_err(|e| IndexError::Tantivy {
        dir: dir.to_path_buf(),
        source: tantivy::TantivyError::from(e),
    })
}

/// A rule that matched an event: stored in the event's `rules` and `classes` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTag {
    pub event: EventId,
    /// The rule id.
    pub rule: String,
    /// The rule's incident class, as `Class::as_str` spells it.
    pub class: &'static str,
    /// The incident group the match went to (`GroupKey::render`).
    pub group: String,
}

/// `tags` by the event they tag, each (rule, group) once: what a stored event carries.
pub fn tags_by_event(tags: &[RuleTag]) -> HashMap<EventId, Vec<&RuleTag>> {
    let mut by_event: HashMap<EventId, Vec<&RuleTag>> = HashMap::new();
    for tag in tags {
        let of_event = by_event.entry(tag.event).or_default();
        if !of_event
            .iter()
            .any(|t| t.rule == tag.rule && t.group == tag.group)
        {
            of_event.push(tag);
        }
    }
    by_event
}

/// The writing end of the index: add batches, then commit them with a payload.
pub struct IndexSink {
    writer: IndexWriter<TantivyDocument>,
    fields: Fields,
}

impl IndexSink {
    /// Queue every event of the batch (not durable until [`IndexSink::commit`]).
    pub fn add(&mut self, events: &Events) -> Result<(), IndexError> {
        self.add_tagged(events, &[])
    }

    /// [`IndexSink::add`], storing with each event the rules (and their classes) that matched
    /// it and the incident groups the matches went to; a tag for no event of the batch is
    /// ignored.
    pub fn add_tagged(&mut self, events: &Events, tags: &[RuleTag]) -> Result<(), IndexError> {
        let by_event = tags_by_event(tags);
        for event in events {
            let mut doc = self.document(event);
            let mut rules: Vec<&str> = Vec::new();
            for tag in by_event.get(&event.id).into_iter().flatten() {
                if !rules.contains(&tag.rule.as_str()) {
                    rules.push(&tag.rule);
                    doc.add_text(self.fields.rules, &tag.rule);
                    doc.add_text(self.fields.classes, tag.class);
                }
                doc.add_text(self.fields.groups, &tag.group);
            }
            self.writer.add_document(doc)?;
        }
        Ok(())
    }

    /// Make the added events and `payload` durable together.
    pub fn commit(&mut self, payload: &str) -> Result<(), IndexError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(payload);
        prepared.commit()?;
        Ok(())
    }

    /// Queue the deletion of every event with `ts < cutoff` (retention); it takes effect, and
    /// becomes durable, with the next [`IndexSink::commit`].
    pub fn delete_before(&mut self, cutoff: crate::event::Timestamp) -> Result<(), IndexError> {
        let upper =
            tantivy::Term::from_field_date(self.fields.ts, crate::store::schema::date(cutoff));
        let old = tantivy::query::RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(upper),
        );
        self.writer.delete_query(Box::new(old))?;
        Ok(())
    }

    /// Leave merging to [`IndexSink::compact`] (a backfill, which commits once at its end and
    /// then compacts); by default tantivy's log merge policy merges after each commit.
    pub fn merge_only_when_told(&self) {
        self.writer.set_merge_policy(Box::new(NoMergePolicy));
    }

    /// Merge the committed segments into as few as hold about `per_segment` documents each, wait
    /// for it, and let the writer go. A merge keeps the commit's payload. Fewer segments make
    /// every later query open, plan, sample and tear down less.
    pub fn compact(mut self, per_segment: u32) -> Result<(), IndexError> {
        let mut metas = self.writer.index().searchable_segment_metas()?;
        metas.sort_by_key(|m| m.num_docs());
        let mut groups: Vec<(Vec<SegmentId>, u32)> = Vec::new();
        for meta in metas {
            match groups.last_mut() {
                Some((ids, docs)) if docs.saturating_add(meta.num_docs()) <= per_segment => {
                    ids.push(meta.id());
                    *docs += meta.num_docs();
                }
                _ => groups.push((vec![meta.id()], meta.num_docs())),
            }
        }
        // One merge at a time: a merge holds much of its output in memory, and a backfill's
        // peak memory should stay the pipeline's, not twice a merge's.
        for (ids, _) in groups.into_iter().filter(|(ids, _)| ids.len() > 1) {
            self.writer.merge(&ids).wait()?;
        }
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    /// Start merging every committed segment that holds deleted events, in the background, so
    /// their space is given back (tantivy collects the old files once the merge is committed).
    /// Returns the number of segments merged.
    pub fn merge_deleted(&mut self) -> Result<usize, IndexError> {
        let touched: Vec<_> = self
            .writer
            .index()
            .searchable_segment_metas()?
            .into_iter()
            .filter(|m| m.has_deletes())
            .map(|m| m.id())
            .collect();
        if !touched.is_empty() {
            // Not waited for: the merge runs on tantivy's merge threads while ingestion goes on.
            drop(self.writer.merge(&touched));
        }
        Ok(touched.len())
    }

    fn document(&self, event: &Event) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_date(f.ts, crate::store::schema::date(event.ts));
        doc.add_text(f.service, &event.service);
        doc.add_text(f.level, event.level.as_str());
        doc.add_text(f.message, &event.message);
        doc.add_text(f.raw, &event.raw);
        doc.add_object(f.fields, json_object(&event.fields));
        for name in event.flags.names() {
            doc.add_text(f.flags, name);
        }
        doc.add_text(f.event_id, event.id.to_string());
        doc.add_u64(f.fingerprint, event.id.fingerprint);
        doc.add_u64(f.offset, event.id.offset);
        doc
    }
}

/// serde_json → tantivy values, keeping strings as strings (tantivy's own `From` turns RFC 3339
/// strings into dates, which would change the stored text of the attribute).
fn json_object(map: &serde_json::Map<String, serde_json::Value>) -> BTreeMap<String, OwnedValue> {
    map.iter()
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect()
}

fn json_value(value: &serde_json::Value) -> OwnedValue {
    match value {
        serde_json::Value::String(s) => OwnedValue::Str(s.clone()),
        serde_json::Value::Array(items) => {
            OwnedValue::Array(items.iter().map(json_value).collect())
        }
        serde_json::Value::Object(map) => OwnedValue::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect(),
        ),
        other => OwnedValue::from(other.clone()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{EventId, Flags, Level, Timestamp};

    pub(crate) fn event(fp: u64, offset: u64, ts_ms: i64, service: &str, raw: &str) -> Event {
        let fields = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        Event {
            id: EventId {
                fingerprint: fp,
                offset,
            },
            ts: Timestamp::from_millis(ts_ms),
            service: service.to_string(),
            level: if raw.contains("FATAL") || raw.contains("\"level\":50") {
                Level::Error
            } else {
                Level::Info
            },
            message: raw.to_string(),
            raw: raw.to_string(),
            fields,
            flags: Flags::default(),
            len: raw.len() as u32 + 1,
            lines: 1,
        }
    }

    /// Five commits of 4 events (five segments) compacted to segments of at most 8: the two
    /// smallest groups merge, every event and the payload stay.
    #[test]
    fn compaction_merges_segments_and_keeps_events_and_payload() {
        let dir = tempfile::TempDir::new().unwrap();
        let index = EventIndex::open_or_create(dir.path()).unwrap();
        let mut sink = index.writer(15_000_000).unwrap();
        sink.merge_only_when_told();
        for commit in 0..5u64 {
            let events = (0..4u64)
                .map(|i| event(1, commit * 10 + i, (commit * 10 + i) as i64, "app", "x"))
                .collect();
            sink.add(&Events::new(events)).unwrap();
            sink.commit(&format!("p{commit}")).unwrap();
        }
        assert_eq!(index.searcher().unwrap().segment_readers().len(), 5);
        sink.compact(8).unwrap();
        let index = EventIndex::open_existing(dir.path()).unwrap();
        let searcher = index.searcher().unwrap();
        let mut sizes: Vec<u32> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.num_docs())
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [4, 8, 8]);
        assert_eq!(index.last_payload().unwrap().as_deref(), Some("p4"));
    }

    #[test]
    fn events_and_payload_survive_a_reopen() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("index");
        {
            let index = EventIndex::open_or_create(&path).unwrap();
            assert_eq!(index.last_payload().unwrap(), None);
            let mut sink = index.writer(20_000_000).unwrap();
            sink.add(&Events::new(vec![
                event(
                    1,
                    0,
                    1000,
                    "postgres",
                    "FATAL:  sorry, too many clients already",
                ),
                event(1, 42, 2000, "app", r#"{"level":30,"msg":"ok"}"#),
            ]))
            .unwrap();
            sink.commit(r#"{"offsets":{"1":80}}"#).unwrap();
        }
        let index = EventIndex::open_existing(&path).unwrap();
        assert_eq!(
            index.last_payload().unwrap().as_deref(),
            Some(r#"{"offsets":{"1":80}}"#)
        );
        assert_eq!(index.num_docs().unwrap(), 2);
    }

    #[test]
    fn uncommitted_events_are_not_visible() {
        let dir = tempfile::TempDir::new().unwrap();
        let index = EventIndex::open_or_create(dir.path()).unwrap();
        let mut sink = index.writer(20_000_000).unwrap();
        sink.add(&Events::new(vec![event(1, 0, 0, "app", "x")]))
            .unwrap();
        assert_eq!(index.num_docs().unwrap(), 0);
        sink.commit("p1").unwrap();
        assert_eq!(index.num_docs().unwrap(), 1);
        assert_eq!(index.last_payload().unwrap().as_deref(), Some("p1"));
    }

    #[test]
    fn an_index_of_an_older_schema_says_to_reindex() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut builder = tantivy::schema::Schema::builder();
        builder.add_text_field(schema::RAW, tantivy::schema::TEXT);
        Index::create_in_dir(dir.path(), builder.build()).unwrap();
        let err = EventIndex::open_existing(dir.path()).err().unwrap();
        assert!(err.to_string().contains("re-index"), "{err}");
        let err = EventIndex::open_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("re-index"), "{err}");
    }

    #[test]
    fn opening_a_missing_index_says_what_to_run() {
        let dir = tempfile::TempDir::new().unwrap();
        let err = EventIndex::open_existing(&dir.path().join("index"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("run logwarden demo or backfill"));
        let err = EventIndex::open_existing(dir.path()).err().unwrap();
        assert!(matches!(err, IndexError::Missing { .. }));
    }
}
