//! Retention: delete the events older than a cutoff and give their disk space back.
//!
//! Owns: the delete (one tantivy delete-by-query on the `ts` range `[.., cutoff)`), its commit
//! (carrying the pipeline's checkpoint payload over unchanged, so a later `run` resumes exactly
//! where it was), the merge of every segment that holds deleted documents (tantivy only drops a
//! deleted document's bytes when its segment is rewritten), and the garbage collection of the
//! files no commit needs any more. Takes an [`EventIndex`] and a cutoff; gives a [`Report`] with
//! the index directory's size before and after.
//!
//! Must not: decide the cutoff (the caller turns `--older-than` or the profile into one), touch
//! the incident log (incidents outlive their events; their evidence keeps the text), or run while
//! another writer holds the index: tantivy's lock refuses that, and the error says so.

use std::path::{Path, PathBuf};

use tantivy::collector::Count;
use tantivy::query::RangeQuery;
use tantivy::{TantivyDocument, Term};

use crate::event::Timestamp;
use crate::store::index::{EventIndex, IndexError};

#[derive(thiserror::Error, Debug)]
pub enum RetentionError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(
        "the index in {dir} is being written by another process (a running logwarden run or \
         backfill?): stop it first, or give its profile a [retention] section"
    )]
    Locked { dir: PathBuf },
    #[error("retention on the index in {dir}: {source}")]
    Tantivy {
        dir: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("measuring {dir}: {source}")]
    Size {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// How long `logwarden run` keeps events (a profile's `[retention]`): every `every` it deletes
/// those older than `older_than_secs` in its own next commit and merges the touched segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub older_than_secs: i64,
    pub every: std::time::Duration,
}

/// How often `run` applies a [`Policy`] when the profile does not say.
pub const DEFAULT_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// What a retention pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Events strictly before this time were deleted.
    pub cutoff: Timestamp,
    pub deleted: u64,
    /// Events left.
    pub kept: u64,
    /// Size of the index directory before and after, in bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Delete every event with `ts < cutoff`, commit, merge the touched segments and collect the
/// garbage. `heap_bytes` is the writer's memory (at least 15 MB).
pub fn apply(
    index: &EventIndex,
    cutoff: Timestamp,
    heap_bytes: usize,
) -> Result<Report, RetentionError> {
    let dir = index.dir().to_path_buf();
    let engine = |source| RetentionError::Tantivy {
        dir: dir.clone(),
        source,
    };
    let bytes_before = dir_size(&dir)?;
    let old = || {
        let upper = Term::from_field_date(index.fields().ts, crate::store::schema::date(cutoff));
        RangeQuery::new(std::ops::Bound::Unbounded, std::ops::Bound::Excluded(upper))
    };
    let searcher = index.searcher()?;
    let deleted = searcher.search(&old(), &Count).map_err(engine)? as u64;
    if deleted == 0 {
        return Ok(Report {
            cutoff,
            deleted,
            kept: searcher.num_docs(),
            bytes_before,
            bytes_after: bytes_before,
        });
    }

    let mut writer = index
        .index()
        .writer::<TantivyDocument>(heap_bytes.max(15_000_000))
        .map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => RetentionError::Locked { dir: dir.clone() },
            other => engine(other),
        })?;
    let payload = index.last_payload()?;
    writer.delete_query(Box::new(old())).map_err(engine)?;
    let mut prepared = writer.prepare_commit().map_err(engine)?;
    if let Some(p) = &payload {
        prepared.set_payload(p);
    }
    prepared.commit().map_err(engine)?;

    let touched: Vec<_> = index
        .index()
        .searchable_segment_metas()
        .map_err(engine)?
        .into_iter()
        .filter(|m| m.has_deletes())
        .map(|m| m.id())
        .collect();
    if !touched.is_empty() {
        writer.merge(&touched).wait().map_err(engine)?;
    }
    writer.garbage_collect_files().wait().map_err(engine)?;
    writer.wait_merging_threads().map_err(engine)?;

    let kept = index.searcher()?.num_docs();
    Ok(Report {
        cutoff,
        deleted,
        kept,
        bytes_before,
        bytes_after: dir_size(&dir)?,
    })
}

/// Bytes of the files in `dir` (the index directory is flat).
pub fn dir_size(dir: &Path) -> Result<u64, RetentionError> {
    let fail = |source| RetentionError::Size {
        dir: dir.to_path_buf(),
        source,
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let meta = entry.map_err(fail)?.metadata().map_err(fail)?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Events;
    use crate::store::index::tests::event;

    const DAY_MS: i64 = 86_400_000;

    /// Old events go, new ones stay, the checkpoint payload survives, and the directory shrinks.
    #[test]
    fn old_events_are_deleted_and_their_space_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
        let t0 = 1_796_220_000_000;
        let filler = "x".repeat(400);
        // Two commits (two segments): old then new, each with distinct text.
        let old: Vec<_> = (0..3000)
            .map(|i| {
                event(
                    1,
                    i * 500,
                    t0 + i as i64,
                    "app",
                    &format!("old {i} {filler}"),
                )
            })
            .collect();
        let new: Vec<_> = (0..300)
            .map(|i| {
                let ts = t0 + 800 * DAY_MS + i as i64;
                event(2, i * 500, ts, "app", &format!("new {i} {filler}"))
            })
            .collect();
        let mut sink = index.writer(20_000_000).unwrap();
        sink.add(&Events::new(old)).unwrap();
        sink.commit("checkpoint-1").unwrap();
        sink.add(&Events::new(new)).unwrap();
        sink.commit(r#"{"offsets":{"2":150000}}"#).unwrap();
        drop(sink);

        let cutoff = Timestamp::from_millis(t0 + 100 * DAY_MS);
        let report = apply(&index, cutoff, 20_000_000).unwrap();
        assert_eq!((report.deleted, report.kept), (3000, 300));
        assert!(
            report.bytes_after * 3 < report.bytes_before,
            "space not reclaimed: {report:?}"
        );
        assert_eq!(report.bytes_after, dir_size(index.dir()).unwrap());
        assert_eq!(
            index.last_payload().unwrap().as_deref(),
            Some(r#"{"offsets":{"2":150000}}"#)
        );
        assert_eq!(index.num_docs().unwrap(), 300);

        // A second pass finds nothing to do.
        let again = apply(&index, cutoff, 20_000_000).unwrap();
        assert_eq!((again.deleted, again.kept), (0, 300));
    }

    /// While another writer holds the index, retention refuses with a message saying why.
    #[test]
    fn a_running_writer_is_reported_not_fought() {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
        let mut sink = index.writer(20_000_000).unwrap();
        sink.add(&Events::new(vec![event(1, 0, 0, "app", "x")]))
            .unwrap();
        sink.commit("p").unwrap();
        let err = apply(&index, Timestamp::from_millis(1), 20_000_000).unwrap_err();
        assert!(matches!(err, RetentionError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("logwarden run"));
    }
}
