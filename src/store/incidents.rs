//! The incident log: every [`Change`] the engine emits, append-only, one JSON object per line.
//!
//! Owns the file `incidents.jsonl` (the caller chooses the path). [`IncidentLog::append`] gives each
//! change the next sequence number (1, 2, …), writes the batch with one `write_all` and makes it
//! durable with one fsync per call; the sequence numbers are the cursor of the live feed
//! (`Last-Event-ID`) and of webhooks. [`IncidentLog::read_all`] replays the file: a torn last line
//! (a crash in the middle of a write) is ignored with a warning, while a corrupt line anywhere
//! else is an error naming the file and the line, because it means the log was damaged, not
//! interrupted. [`current`] folds the changes into the latest snapshot of each incident, which is
//! what `logwarden incidents` lists and what the engine's open incidents are restored from.
//!
//! This module must not decide anything about incidents; it stores and replays what it is given.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::incident::{Change, Incident};

#[derive(thiserror::Error, Debug)]
pub enum IncidentLogError {
    #[error("cannot open incident log {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot read incident log {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write incident log {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("corrupt entry in incident log {path}:{line}: {source}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error(
        "corrupt entry in incident log {path}:{line}: sequence number {seq} does not follow {previous}"
    )]
    Sequence {
        path: PathBuf,
        line: usize,
        seq: u64,
        previous: u64,
    },
    #[error("cannot encode a change of incident {id}: {source}")]
    Encode {
        id: String,
        source: serde_json::Error,
    },
}

/// The open incident log, ready to append.
#[derive(Debug)]
pub struct IncidentLog {
    path: PathBuf,
    file: File,
    /// Length of the file up to the last complete entry.
    len: u64,
    last_seq: u64,
}

/// What a replay found: the changes, the length of the complete part, and whether a torn last
/// line follows it.
struct Replay {
    changes: Vec<Change>,
    complete_len: u64,
    torn: bool,
}

fn replay(path: &Path) -> Result<Replay, IncidentLogError> {
    let read_err = |source| IncidentLogError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Replay {
                changes: Vec::new(),
                complete_len: 0,
                torn: false,
            });
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut reader = BufReader::new(file);
    let mut changes: Vec<Change> = Vec::new();
    let mut buf = Vec::new();
    let mut complete_len = 0u64;
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        if n == 0 {
            return Ok(Replay {
                changes,
                complete_len,
                torn: false,
            });
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            // The last line, without its newline: the write was interrupted.
            tracing::warn!(
                path = %path.display(),
                line,
                bytes = buf.len(),
                "ignoring a torn last entry in the incident log"
            );
            return Ok(Replay {
                changes,
                complete_len,
                torn: true,
            });
        }
        complete_len += n as u64;
        let text = &buf[..buf.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let change: Change =
            serde_json::from_slice(text).map_err(|source| IncidentLogError::Corrupt {
                path: path.to_path_buf(),
                line,
                source,
            })?;
        let previous = changes.last().map_or(0, |c| c.seq);
        if change.seq <= previous {
            return Err(IncidentLogError::Sequence {
                path: path.to_path_buf(),
                line,
                seq: change.seq,
                previous,
            });
        }
        changes.push(change);
    }
}

impl IncidentLog {
    /// Open (or create) the log and find the last sequence number. A torn last entry is cut off so
    /// that the next append starts on a fresh line.
    pub fn open(path: &Path) -> Result<IncidentLog, IncidentLogError> {
        let open_err = |source| IncidentLogError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_err)?;
        let found = replay(path)?;
        if found.torn {
            file.set_len(found.complete_len).map_err(open_err)?;
            file.sync_data().map_err(open_err)?;
        }
        Ok(IncidentLog {
            path: path.to_path_buf(),
            file,
            len: found.complete_len,
            last_seq: found.changes.last().map_or(0, |c| c.seq),
        })
    }

    /// Give each change the next sequence number and store them durably (one fsync). On error
    /// the file is cut back to where it was and the changes keep `seq == 0`.
    pub fn append(&mut self, changes: &mut [Change]) -> Result<(), IncidentLogError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(changes.len() * 1024);
        let mut seq = self.last_seq;
        for i in 0..changes.len() {
            seq += 1;
            changes[i].seq = seq;
            if let Err(source) = serde_json::to_writer(&mut buf, &changes[i]) {
                let id = changes[i].incident.id.0.clone();
                reset_seqs(changes);
                return Err(IncidentLogError::Encode { id, source });
            }
            buf.push(b'\n');
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Leave no partial entry behind for the next append to run into.
            let _ = self.file.set_len(self.len);
            reset_seqs(changes);
            return Err(IncidentLogError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.len += buf.len() as u64;
        self.last_seq = seq;
        Ok(())
    }

    /// Every stored change, in sequence order. A torn last line is ignored with a warning; a
    /// missing file is an empty log.
    pub fn read_all(path: &Path) -> Result<Vec<Change>, IncidentLogError> {
        Ok(replay(path)?.changes)
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn reset_seqs(changes: &mut [Change]) {
    for c in changes {
        c.seq = 0;
    }
}

/// The latest snapshot of each incident, ordered by first_seen then id.
pub fn current(changes: &[Change]) -> Vec<Incident> {
    let mut latest: std::collections::HashMap<&str, &Incident> = std::collections::HashMap::new();
    for change in changes {
        latest.insert(change.incident.id.0.as_str(), &change.incident);
    }
    let mut out: Vec<Incident> = latest.into_values().cloned().collect();
    out.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
    out
}

/// An incident by its full id or an unambiguous prefix of it (with or without `inc-`).
pub fn find<'a>(incidents: &'a [Incident], id_or_prefix: &str) -> Option<&'a Incident> {
    let wanted = id_or_prefix.trim();
    if wanted.is_empty() {
        return None;
    }
    if let Some(exact) = incidents.iter().find(|i| i.id.0 == wanted) {
        return Some(exact);
    }
    let hex = wanted.strip_prefix("inc-").unwrap_or(wanted);
    let mut candidates = incidents.iter().filter(|i| {
        i.id.0
            .strip_prefix("inc-")
            .unwrap_or(&i.id.0)
            .starts_with(hex)
    });
    let first = candidates.next()?;
    match candidates.next() {
        None => Some(first),
        Some(_) => None,
    }
}
