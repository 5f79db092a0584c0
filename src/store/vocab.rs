//! Per-segment vocabularies of the `raw` field: every distinct term of a segment, one per line,
//! in `<data dir>/vocab/<segment id>.words` (terms with a byte that is not a digit) and
//! `<segment id>.numbers` (the others: in logs, ~85 % of the distinct terms and ~95 % of the
//! bytes), so that a token with a letter searches only the first.
//!
//! The query planner reads them to find the terms that end with or contain a token (the `.*tok`
//! and `.*tok.*` of a substring search) with memmem at memory speed, where a regex over the term
//! dictionary (an FST) decodes every term: ~1 s on 10 M events of logs, whose request ids and
//! numbers make millions of distinct terms. A vocabulary is written when missing (at the end of a
//! backfill, and by the first query that needs it), atomically (temporary file, then rename);
//! [`Vocab::refresh`] also removes those of segments that no longer exist.
//!
//! Owns: the file format and its directory. Must not: change the index, or be read for any
//! segment but its own (the file is named by the segment id, and segments never change).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use memchr::memmem;
use tantivy::schema::Field;
use tantivy::{Searcher, SegmentReader};

/// Why a vocabulary could not be written.
#[derive(thiserror::Error, Debug)]
pub enum VocabError {
    #[error("vocabulary {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the terms of segment {segment}: {source}")]
    Terms {
        segment: String,
        source: tantivy::TantivyError,
    },
}

/// Bytes read at a time when searching a vocabulary (a reused buffer: no page faults).
const CHUNK: usize = 1 << 20;

/// The two files of a segment's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Terms with a byte that is not an ASCII digit.
    Words = 0,
    /// Terms of ASCII digits only.
    Numbers = 1,
}

/// Both kinds, in file-index order; `Numbers` is written last.
const KINDS: [Kind; 2] = [Kind::Words, Kind::Numbers];

/// The vocabularies of one data dir.
#[derive(Debug, Clone)]
pub struct Vocab {
    dir: PathBuf,
    field: Field,
}

impl Vocab {
    /// The vocabularies of `field` (the index's `raw`) under `data_dir`.
    pub fn new(data_dir: &Path, field: Field) -> Vocab {
        Vocab {
            dir: data_dir.join("vocab"),
            field,
        }
    }

    fn path(&self, segment: &SegmentReader, kind: Kind) -> PathBuf {
        let ext = match kind {
            Kind::Words => "words",
            Kind::Numbers => "numbers",
        };
        self.dir
            .join(format!("{}.{ext}", segment.segment_id().uuid_string()))
    }

    /// Write the missing vocabularies of `searcher`'s segments and remove the others.
    pub fn refresh(&self, searcher: &Searcher) -> Result<(), VocabError> {
        let mut live = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let paths = KINDS.map(|kind| self.path(segment, kind));
            // An error asking counts as missing: writing it again says what is wrong.
            if !paths.iter().all(|p| p.try_exists().unwrap_or(false)) {
                self.write(segment)?;
            }
            live.extend(paths);
        }
        let io = |source| VocabError::Io {
            path: self.dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if !live.contains(&path) {
                // Another process may have removed it first.
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Every term of `segment`, one per line, into its two files (each through a temporary
    /// file; numbers last, so that its presence means both are complete).
    fn write(&self, segment: &SegmentReader) -> Result<(), VocabError> {
        let paths = KINDS.map(|kind| self.path(segment, kind));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| VocabError::Io { path, source }
        };
        let terms = |source| VocabError::Terms {
            segment: segment.segment_id().uuid_string(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let inverted = segment.inverted_index(self.field).map_err(terms)?;
        let mut stream = inverted
            .terms()
            .stream()
            .map_err(|e| terms(tantivy::TantivyError::from(e)))?;
        let temps = paths.clone().map(|p| {
            let mut name = p.into_os_string();
            name.push(format!(".tmp.{}", std::process::id()));
            PathBuf::from(name)
        });
        let mut outs = Vec::with_capacity(2);
        for temp in &temps {
            outs.push(BufWriter::with_capacity(
                CHUNK,
                File::create(temp).map_err(io(temp))?,
            ));
        }
        while stream.advance() {
            let key = stream.key();
            let kind = if key.iter().all(u8::is_ascii_digit) {
                Kind::Numbers
            } else {
                Kind::Words
            };
            let out = &mut outs[kind as usize];
            out.write_all(key)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(io(&temps[kind as usize]))?;
        }
        for ((out, temp), path) in outs.into_iter().zip(&temps).zip(&paths) {
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(io(temp))?;
            std::fs::rename(temp, path).map_err(io(path))?;
        }
        Ok(())
    }

    /// The distinct terms, over every segment of `searcher`, that end with `needle` (`suffix`)
    /// or contain it. `None` when more than `cap` terms do, or a vocabulary is missing and
    /// cannot be written (the caller then walks the term dictionary instead).
    pub fn terms_with(
        &self,
        searcher: &Searcher,
        needle: &str,
        suffix: bool,
        cap: usize,
    ) -> Option<BTreeSet<String>> {
        let mut pattern = needle.as_bytes().to_vec();
        if suffix {
            pattern.push(b'\n');
        }
        let finder = memmem::Finder::new(&pattern);
        let mut found = BTreeSet::new();
        let mut buf = vec![0u8; CHUNK];
        // A needle with a byte that is not a digit is in no term of digits only.
        let kinds: &[Kind] = if needle.bytes().all(|b| b.is_ascii_digit()) {
            &KINDS
        } else {
            &[Kind::Words]
        };
        for segment in searcher.segment_readers() {
            let written = self.path(segment, Kind::Numbers).try_exists();
            if !written.unwrap_or(false)
                && let Err(e) = self.write(segment)
            {
                tracing::debug!(error = %e, "vocabulary not written; walking the term dictionary");
                return None;
            }
            for kind in kinds {
                let file = File::open(self.path(segment, *kind)).ok()?;
                search_file(file, &finder, &mut buf, &mut |term| {
                    found.insert(String::from_utf8_lossy(term).into_owned());
                    found.len() <= cap
                })?;
            }
        }
        Some(found)
    }
}

/// Call `each` with every line of `file` that contains the finder's needle (`each` returns false
/// to stop: then `None`). Reads the file a buffer at a time; a line cut by the buffer's end is
/// carried over to the next read.
fn search_file(
    mut file: File,
    finder: &memmem::Finder<'_>,
    buf: &mut [u8],
    each: &mut dyn FnMut(&[u8]) -> bool,
) -> Option<()> {
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // A line longer than the buffer: terms never are (they are at most 255 bytes).
            return None;
        }
        let n = file.read(&mut buf[filled..]).ok()?;
        let end = filled + n;
        let last_line_end = if n == 0 {
            end
        } else {
            match memchr::memrchr(b'\n', &buf[..end]) {
                Some(i) => i + 1,
                // No line end yet: read on.
                None => {
                    filled = end;
                    continue;
                }
            }
        };
        let text = &buf[..last_line_end];
        let mut at = 0;
        while let Some(i) = finder.find(&text[at..]) {
            let hit = at + i;
            let start = memchr::memrchr(b'\n', &text[..hit]).map_or(0, |p| p + 1);
            let stop = memchr::memchr(b'\n', &text[hit..]).map_or(text.len(), |p| hit + p);
            if !each(&text[start..stop]) {
                return None;
            }
            at = (stop + 1).max(hit + 1);
            if at >= text.len() {
                break;
            }
        }
        if n == 0 {
            return Some(());
        }
        buf.copy_within(last_line_end..end, 0);
        filled = end - last_line_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_with(text: &str, needle: &str, chunk: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        std::fs::write(&path, text).unwrap();
        let finder = memmem::Finder::new(needle.as_bytes());
        let mut buf = vec![0u8; chunk];
        let mut out = Vec::new();
        search_file(File::open(&path).unwrap(), &finder, &mut buf, &mut |l| {
            out.push(String::from_utf8_lossy(l).into_owned());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn every_line_holding_the_needle_once_across_buffer_edges() {
        let text: String = (0..500).map(|i| format!("term{i}x{i}\n")).collect();
        let want: Vec<String> = (0..500)
            .map(|i| format!("term{i}x{i}"))
            .filter(|t| t.contains("7"))
            .collect();
        for chunk in [16, 17, 64, 1000, CHUNK] {
            assert_eq!(lines_with(&text, "7", chunk), want, "chunk {chunk}");
        }
        // A line holding the needle twice is reported once.
        assert_eq!(
            lines_with("a\nkillerkiller\nb\n", "killer", 16),
            ["killerkiller"]
        );
        // A line that does not fit the buffer is refused, not cut.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long");
        std::fs::write(&path, "x".repeat(40)).unwrap();
        let finder = memmem::Finder::new("x");
        let refused = search_file(
            File::open(&path).unwrap(),
            &finder,
            &mut [0u8; 16],
            &mut |_| true,
        );
        assert!(refused.is_none());
        assert_eq!(
            lines_with("oom\nroom\nbloom\nooms\n", "oom\n", 8),
            ["oom", "room", "bloom"]
        );
    }
}
