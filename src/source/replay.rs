//! Backfill: read existing files once, whole, oldest first, skipping what checkpoints cover.
//!
//! Takes the configured sources and the checkpoints of the index, gives the pipeline
//! `Opened`/`Chunk`/`Closed` inputs per file and `Done` at the end. Rotated `.gz` archives are
//! decompressed as multi-member streams. A file whose fingerprint the index already knows resumes
//! from its stored offset, so backfill never re-ingests what `run` indexed. It must not parse.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::SyncSender;

use crate::source::checkpoint::Checkpoints;
use crate::source::{
    Chunk, Disconnected, FileInfo, Input, READ_SIZE, SourceSpec, Stats, discover, fingerprint, send,
};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("source {service}: no file matches {path}")]
    NoFiles { service: String, path: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReplayError + '_ {
    move |source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Read every file of every source once. Returns early (Ok) if the pipeline hangs up.
pub fn replay(
    specs: &[SourceSpec],
    checkpoints: &Checkpoints,
    tx: &SyncSender<Input>,
) -> Result<Stats, ReplayError> {
    let mut stats = Stats::default();
    for (source, spec) in specs.iter().enumerate() {
        let files = discover::expand(&spec.path).map_err(io_err(&spec.path))?;
        if files.is_empty() {
            return Err(ReplayError::NoFiles {
                service: spec.service.clone(),
                path: spec.path.display().to_string(),
            });
        }
        for path in files {
            match replay_file(source, &path, checkpoints, tx, &mut stats) {
                Ok(()) => {}
                Err(FileError::Io(e)) => return Err(io_err(&path)(e)),
                Err(FileError::Disconnected) => return Ok(stats),
            }
        }
    }
    // The pipeline may already have hung up; there is nobody left to tell.
    let _ = send(tx, Input::Done);
    Ok(stats)
}

enum FileError {
    Io(io::Error),
    Disconnected,
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        FileError::Io(e)
    }
}

impl From<Disconnected> for FileError {
    fn from(_: Disconnected) -> Self {
        FileError::Disconnected
    }
}

fn replay_file(
    source: usize,
    path: &Path,
    checkpoints: &Checkpoints,
    tx: &SyncSender<Input>,
    stats: &mut Stats,
) -> Result<(), FileError> {
    let Some(fp) = fingerprint::of_path(path, true)? else {
        // An empty file: nothing to read, nothing lost.
        return Ok(());
    };
    let start = checkpoints.offset(fp);
    let mut reader = fingerprint::open_decoded(path)?;
    // Skip what the index already holds (no seeking in a gzip stream: read and discard).
    let skipped = io::copy(&mut (&mut reader).take(start), &mut io::sink())?;
    if skipped < start {
        tracing::warn!(path = %path.display(), stored = start, size = skipped,
            "file is shorter than its checkpoint; nothing new to read");
        return Ok(());
    }
    stats.files += 1;
    send(
        tx,
        Input::Opened(FileInfo {
            source,
            fingerprint: fp,
            path: path.to_path_buf(),
            start,
        }),
    )?;
    let mut offset = start;
    let mut buf = vec![0u8; READ_SIZE];
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if let Some(bytes) = pending.take() {
            let len = bytes.len() as u64;
            send(
                tx,
                Input::Chunk(Chunk {
                    source,
                    fingerprint: fp,
                    offset,
                    bytes,
                    eof: n == 0,
                }),
            )?;
            offset += len;
            stats.chunks += 1;
            stats.bytes_read += len;
        }
        if n == 0 {
            break;
        }
        pending = Some(buf[..n].to_vec());
    }
    send(tx, Input::Closed { fingerprint: fp })?;
    Ok(())
}

/// Fill `buf` as far as the reader allows; 0 only at the end.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc::sync_channel;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::parse::Format;

    fn collect(specs: &[SourceSpec], cp: &Checkpoints) -> Vec<Input> {
        let (tx, rx) = sync_channel(1024);
        replay(specs, cp, &tx).unwrap();
        drop(tx);
        rx.into_iter().collect()
    }

    fn bytes_of(inputs: &[Input]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in inputs {
            if let Input::Chunk(c) = i {
                out.extend_from_slice(&c.bytes);
            }
        }
        out
    }

    #[test]
    fn files_are_read_whole_and_gz_members_all_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("app.log.1.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(b"one\ntwo\n").unwrap();
        let mut data = enc.finish().unwrap();
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(b"three\n").unwrap();
        data.extend(enc.finish().unwrap());
        std::fs::write(&gz, data).unwrap();
        let spec = SourceSpec {
            service: "app".into(),
            format: Format::Plain,
            path: gz,
        };
        let inputs = collect(std::slice::from_ref(&spec), &Checkpoints::default());
        assert_eq!(bytes_of(&inputs), b"one\ntwo\nthree\n");
        assert!(matches!(inputs.last(), Some(Input::Done)));
        let last_chunk = inputs.iter().rev().find_map(|i| match i {
            Input::Chunk(c) => Some(c.clone()),
            _ => None,
        });
        assert!(last_chunk.unwrap().eof);
    }

    #[test]
    fn checkpointed_bytes_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first\nsecond\n").unwrap();
        let fp = fingerprint::of_path(&path, true).unwrap().unwrap();
        let mut cp = Checkpoints::default();
        cp.advance(fp, path.clone(), "app", 6, 13, None);
        let spec = SourceSpec {
            service: "app".into(),
            format: Format::Plain,
            path,
        };
        let inputs = collect(&[spec], &cp);
        assert_eq!(bytes_of(&inputs), b"second\n");
        let first = inputs.iter().find_map(|i| match i {
            Input::Chunk(c) => Some(c.offset),
            _ => None,
        });
        assert_eq!(first, Some(6));
    }

    #[test]
    fn a_source_without_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SourceSpec {
            service: "app".into(),
            format: Format::Plain,
            path: dir.path().join("none-*.log"),
        };
        let (tx, _rx) = sync_channel(4);
        let err = replay(&[spec], &Checkpoints::default(), &tx).unwrap_err();
        assert!(err.to_string().contains("no file matches"));
    }
}
