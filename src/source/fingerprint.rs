//! File identity from a hash of the file's first line, not its name or inode.
//!
//! A file keeps its fingerprint through renames (logrotate's rename+create), and a rotated `.gz` copy
//! has the same fingerprint as the file it was compressed from, so backfill can tell what `run`
//! already indexed. The first line (capped at [`FINGERPRINT_BYTES`]) is used rather than a fixed
//! number of bytes because a growing file must not change identity once it has one: a file whose
//! first line is not complete yet has no fingerprint (`None`) unless the caller says the file is
//! finished, in which case whatever bytes there are are hashed.
//!
//! This module must not keep state; callers store fingerprints in checkpoints.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use twox_hash::XxHash64;

/// At most this many bytes of the first line take part in the fingerprint.
pub const FINGERPRINT_BYTES: usize = 256;

const SEED: u64 = 0x6c6f_6777_6172_6465; // "logwarde"

/// The fingerprint of a file's head: `head` is the file's first bytes (any amount).
/// `complete` says the file will not grow (a finished file, a rotated archive).
pub fn of_head(head: &[u8], complete: bool) -> Option<u64> {
    let line_end = memchr::memchr(b'\n', head);
    let line = match line_end {
        Some(end) => &head[..end],
        None if head.len() >= FINGERPRINT_BYTES || (complete && !head.is_empty()) => head,
        None => return None,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let capped = &line[..line.len().min(FINGERPRINT_BYTES)];
    if capped.is_empty() && line_end.is_some() {
        // An empty first line says nothing about identity: hash the fixed cap of bytes instead.
        let cap = &head[..head.len().min(FINGERPRINT_BYTES)];
        if cap.len() < FINGERPRINT_BYTES && !complete {
            return None;
        }
        return Some(XxHash64::oneshot(SEED, cap));
    }
    Some(XxHash64::oneshot(SEED, capped))
}

/// The file's bytes as written, decompressing a `.gz` file (every gzip member of it).
pub fn open_decoded(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    Ok(if is_gzip(path) {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Read up to [`FINGERPRINT_BYTES`] + 1 bytes of the head of a plain file.
fn read_head(reader: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES + 1);
    reader
        .take(FINGERPRINT_BYTES as u64 + 1)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The fingerprint of the file at `path` (decompressing `.gz` files), or `None` when its first
/// line is not complete yet and `complete` is false.
pub fn of_path(path: &Path, complete: bool) -> io::Result<Option<u64>> {
    // The same bounded head for a plain file and its `.gz` copy, so both get one fingerprint
    // (also when the first line is empty and the first bytes are hashed instead).
    let head = read_head(&mut open_decoded(path)?)?;
    Ok(of_head(&head, complete || is_gzip(path)))
}

/// True for paths that name gzip archives (`.gz`).
pub fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    #[test]
    fn a_growing_file_keeps_its_fingerprint() {
        let first = of_head(b"2026-11-28 first line\n", false).unwrap();
        let later = of_head(b"2026-11-28 first line\nsecond line\nthird\n", false).unwrap();
        assert_eq!(first, later);
    }

    #[test]
    fn an_incomplete_first_line_has_no_fingerprint_until_finished() {
        assert_eq!(of_head(b"partial", false), None);
        assert!(of_head(b"partial", true).is_some());
        assert_eq!(of_head(b"", true), None);
        let long = vec![b'x'; FINGERPRINT_BYTES + 10];
        assert!(of_head(&long, false).is_some());
    }

    #[test]
    fn different_first_lines_differ_and_crlf_does_not_matter() {
        assert_ne!(of_head(b"a\n", false), of_head(b"b\n", false));
        assert_eq!(of_head(b"a\r\n", false), of_head(b"a\n", false));
    }

    #[test]
    fn a_gz_copy_has_the_fingerprint_of_its_original() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("app.log");
        let gz = dir.path().join("app.log.1.gz");
        let empty_first = format!("\n{}\n", "x".repeat(300));
        for body in [
            "{\"level\":30,\"msg\":\"hello\"}\n{\"level\":30}\n",
            empty_first.as_str(),
        ] {
            std::fs::write(&plain, body).unwrap();
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(body.as_bytes()).unwrap();
            std::fs::write(&gz, enc.finish().unwrap()).unwrap();
            let fp = of_path(&plain, false).unwrap();
            assert!(fp.is_some());
            assert_eq!(fp, of_path(&gz, false).unwrap(), "{body:?}");
        }
    }
}
