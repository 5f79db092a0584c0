//! Where bytes come from: files followed by fingerprint, rotated archives, stdin, pushes.
//!
//! A source hands the pipeline [`Chunk`]s: large reads (≥ 64 KiB when the data is there) tagged with
//! the file's fingerprint and the byte range they cover. It must not frame lines or look inside the
//! bytes beyond the fingerprint; parsing is the next stage's job. Offsets are the contract with
//! `checkpoint`: a chunk always starts where the previous one of the same fingerprint ended.

pub mod blocks;
pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod operator;
pub mod push;
pub mod replay;
pub mod stdin;
pub mod tail;

use std::sync::mpsc::SyncSender;

use std::path::PathBuf;

use crate::parse::Format;

/// Bytes read from one source, with where they came from.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Index of the source in the pipeline's source list.
    pub source: usize,
    /// Identity of the file the bytes came from (see [`fingerprint`]).
    pub fingerprint: u64,
    /// File offset of `bytes[0]`.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// True when this chunk reaches the end of a file that will not grow again (backfill, a
    /// rotated-away file drained to its end): the parser may flush a partial last line.
    pub eof: bool,
}

impl Chunk {
    /// Offset just past the last byte of this chunk.
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// A file a source started (or resumed) reading, announced before its first chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Index of the source (its [`SourceSpec`]) in the pipeline's source list.
    pub source: usize,
    pub fingerprint: u64,
    pub path: PathBuf,
    /// The offset reading starts from (a checkpoint, 0, or the end with `--from end`).
    pub start: u64,
}

/// What sources send the pipeline, in order per file.
#[derive(Debug, Clone)]
pub enum Input {
    /// A file is being read from `start`; chunks of its fingerprint follow.
    Opened(FileInfo),
    /// A pushed stream (see [`push`]) starts: not one of the configured sources, so it names its
    /// own service and format; read from 0 and never checkpointed. Chunks of its fingerprint follow.
    Pushed {
        fingerprint: u64,
        spec: SourceSpec,
    },
    Chunk(Chunk),
    /// The file has had no new bytes for a while: entries held open may be emitted.
    Idle {
        fingerprint: u64,
    },
    /// Still no new bytes, for much longer: a last line still waiting for its newline is emitted
    /// (flagged partial); whatever of it comes later is an event of its own, nothing twice.
    Stale {
        fingerprint: u64,
    },
    /// The file will not be read again (rotated away and drained, or deleted).
    Closed {
        fingerprint: u64,
    },
    /// Every source is finished (backfill done, or shutdown after the last read).
    Done,
    /// An operator acknowledges an open incident ([`operator`]); the pipeline answers on `reply`
    /// with the change it logged, or why not.
    Acknowledge {
        id: crate::incident::IncidentId,
        ack: crate::incident::Ack,
        reply: SyncSender<operator::AckReply>,
    },
    /// The silences file changed: read it again now.
    SilencesChanged,
}

/// One configured source: a service name, a format, and a path or glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub service: String,
    pub format: Format,
    pub path: PathBuf,
}

/// Where a never-seen file starts when tailing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum From {
    #[default]
    Beginning,
    End,
}

/// The pipeline hung up: sources stop quietly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// Send to the pipeline, turning a hang-up into [`Disconnected`].
pub(crate) fn send(tx: &SyncSender<Input>, input: Input) -> Result<(), Disconnected> {
    tx.send(input).map_err(|_| Disconnected)
}

/// Read size: large reads, as the design asks (≥ 64 KiB).
pub const READ_SIZE: usize = 256 * 1024;

/// Counters a source reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub bytes_read: u64,
    pub chunks: u64,
    pub rotations: u64,
    pub truncations: u64,
}

impl SourceSpec {
    /// The source of `run --stdin`: `SERVICE[:FORMAT]` (`=-` may follow), or a bare format such as
    /// `auto` or `compose`, whose events are of service `stdin` unless a compose prefix names one.
    pub fn stdin(s: &str) -> Result<SourceSpec, String> {
        let lhs = s.strip_suffix("=-").unwrap_or(s);
        if lhs.contains('=') {
            return Err(format!(
                "source `{s}`: with --stdin a source is SERVICE[:FORMAT], without a path"
            ));
        }
        let (service, format) = match lhs.split_once(':') {
            Some((service, format)) => (service, format.parse::<Format>()?),
            None => match lhs.parse::<Format>() {
                Ok(format) => ("stdin", format),
                Err(_) => (lhs, Format::Auto),
            },
        };
        if service.is_empty() {
            return Err(format!("source `{s}` has no service name"));
        }
        Ok(SourceSpec {
            service: service.to_string(),
            format,
            path: PathBuf::from(stdin::STDIN_PATH),
        })
    }
}

impl std::str::FromStr for SourceSpec {
    type Err = String;

    /// `SERVICE[:FORMAT]=PATH`, e.g. `postgres:postgres=/var/log/postgresql/postgresql-15-main.log`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lhs, path) = s
            .split_once('=')
            .ok_or_else(|| format!("source `{s}` is not SERVICE[:FORMAT]=PATH"))?;
        let (service, format) = match lhs.split_once(':') {
            Some((service, format)) => (service, format.parse::<Format>()?),
            None => (lhs, Format::Auto),
        };
        if service.is_empty() {
            return Err(format!("source `{s}` has no service name before `=`"));
        }
        if path.is_empty() {
            return Err(format!("source `{s}` has no path after `=`"));
        }
        Ok(SourceSpec {
            service: service.to_string(),
            format,
            path: PathBuf::from(path),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_read_service_format_and_path() {
        let s: SourceSpec = "db:postgres=/var/log/pg.log".parse().unwrap();
        assert_eq!(s.service, "db");
        assert_eq!(s.format, Format::Postgres { prefix: None });
        assert_eq!(s.path, PathBuf::from("/var/log/pg.log"));
        let s: SourceSpec = "app=/x.log".parse().unwrap();
        assert_eq!(s.format, Format::Auto);
        assert!("app:nonsense=/x".parse::<SourceSpec>().is_err());
        assert!("=/x".parse::<SourceSpec>().is_err());
        assert!("app".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn stdin_specs_take_a_service_a_format_or_both() {
        let s = SourceSpec::stdin("auto").unwrap();
        assert_eq!((s.service.as_str(), &s.format), ("stdin", &Format::Auto));
        assert_eq!(s.path, PathBuf::from("-"));
        let s = SourceSpec::stdin("app:pino").unwrap();
        assert_eq!((s.service.as_str(), &s.format), ("app", &Format::Pino));
        let s = SourceSpec::stdin("worker=-").unwrap();
        assert_eq!((s.service.as_str(), &s.format), ("worker", &Format::Auto));
        assert!(SourceSpec::stdin("app:pino=/x.log").is_err());
        assert!(SourceSpec::stdin("app:nonsense").is_err());
    }
}
