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
//! [`IncidentLog::read_after`] is the feed's replay: the changes after a sequence number, read
//! while a run may be appending (an unfinished last line is a write in progress, not damage).
//! [`IncidentLog::read_from`] is the same from a [`Position`] (a byte offset and the sequence
//! number before it), so that a webhook that follows the log does not read it whole each time.
//!
//! This module must not decide anything about incidents; it stores and replays what it is given.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::incident::{Change, Incident};

/// The incident log's file name inside a data dir.
pub const LOG_FILE: &str = "incidents.jsonl";

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
    /// The file's length up to the end of each change (parallel to `changes`).
    ends: Vec<u64>,
    complete_len: u64,
    torn: bool,
}

/// How [`replay`] reads: which changes it keeps, and what an unfinished last line means.
#[derive(Clone, Copy)]
struct ReplayMode {
    /// Keep only the changes with a greater sequence number (0: all).
    after: u64,
    /// The log may be being appended to: an unfinished last line is expected, not worth a warning.
    live: bool,
    /// Start reading here: the byte offset just after the change with sequence number `seq`.
    from: Position,
}

impl ReplayMode {
    const ALL: ReplayMode = ReplayMode {
        after: 0,
        live: false,
        from: Position { offset: 0, seq: 0 },
    };
}

/// A place in the log: the byte offset just after the entry of sequence number `seq` (0, 0: the
/// start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub seq: u64,
}

fn replay(path: &Path, mode: ReplayMode) -> Result<Replay, IncidentLogError> {
    let read_err = |source| IncidentLogError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Replay {
                changes: Vec::new(),
                ends: Vec::new(),
                complete_len: 0,
                torn: false,
            });
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut reader = BufReader::new(file);
    if mode.from.offset > 0 {
        reader
            .seek(SeekFrom::Start(mode.from.offset))
            .map_err(read_err)?;
    }
    let mut changes: Vec<Change> = Vec::new();
    let mut ends: Vec<u64> = Vec::new();
    let mut buf = Vec::new();
    let mut complete_len = mode.from.offset;
    // Lines are counted from the start position (the whole file when reading from its start).
    let mut line = 0usize;
    let mut previous = mode.from.seq;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        if n == 0 {
            return Ok(Replay {
                changes,
                ends,
                complete_len,
                torn: false,
            });
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            if mode.live {
                // Being written by the run: the next read sees it whole.
                tracing::debug!(path = %path.display(), line, "incident log entry being written");
            } else {
                // The last line, without its newline: the write was interrupted.
                tracing::warn!(
                    path = %path.display(),
                    line,
                    bytes = buf.len(),
                    "ignoring a torn last entry in the incident log"
                );
            }
            return Ok(Replay {
                changes,
                ends,
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
        if change.seq <= previous {
            return Err(IncidentLogError::Sequence {
                path: path.to_path_buf(),
                line,
                seq: change.seq,
                previous,
            });
        }
        previous = change.seq;
        if change.seq > mode.after {
            changes.push(change);
            ends.push(complete_len);
        }
    }
}

impl IncidentLog {
    /// Open (or create) the log and find the last sequence number. A torn last entry is cut off so
    /// that the next append starts on a fresh line.
    pub fn open(path: &Path) -> Result<IncidentLog, IncidentLogError> {
        Ok(IncidentLog::open_with_current(path)?.0)
    }

    /// [`IncidentLog::open`], also giving the latest snapshot of each incident found in the log
    /// ([`current`]), which is what a restarted engine takes back.
    pub fn open_with_current(
        path: &Path,
    ) -> Result<(IncidentLog, Vec<Incident>), IncidentLogError> {
        IncidentLog::open_at_commit(path, None)
    }

    /// [`IncidentLog::open_with_current`], first cutting off the changes after sequence number
    /// `committed` when given: changes logged after the last index commit, by a run that then
    /// crashed, whose events will be read and matched again (and their changes derived again).
    pub fn open_at_commit(
        path: &Path,
        committed: Option<u64>,
    ) -> Result<(IncidentLog, Vec<Incident>), IncidentLogError> {
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
        let mut found = replay(path, ReplayMode::ALL)?;
        let keep = committed.map_or(found.changes.len(), |seq| {
            found.changes.partition_point(|c| c.seq <= seq)
        });
        if keep < found.changes.len() {
            tracing::warn!(path = %path.display(), dropped = found.changes.len() - keep,
                "incident log runs past the last index commit (a crash); those changes are derived again");
            found.complete_len = keep.checked_sub(1).map_or(0, |i| found.ends[i]);
            found.changes.truncate(keep);
            found.torn = true;
        }
        if found.torn {
            file.set_len(found.complete_len).map_err(open_err)?;
            file.sync_data().map_err(open_err)?;
        }
        let log = IncidentLog {
            path: path.to_path_buf(),
            file,
            len: found.complete_len,
            last_seq: found.changes.last().map_or(0, |c| c.seq),
        };
        Ok((log, current(&found.changes)))
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
        Ok(replay(path, ReplayMode::ALL)?.changes)
    }

    /// The stored changes with a sequence number greater than `after`, in order, read while a run
    /// may be appending: a last line still being written is left for the next read (the feed gets
    /// that change live). Only those changes are kept in memory.
    pub fn read_after(path: &Path, after: u64) -> Result<Vec<Change>, IncidentLogError> {
        let mode = ReplayMode {
            after,
            live: true,
            from: Position::default(),
        };
        Ok(replay(path, mode)?.changes)
    }

    /// The complete changes stored after `from`, read while a run may be appending, and the
    /// position after the last of them (`from` when there are none). `None` when the log no
    /// longer continues `from` (it is shorter, or what follows `from` is not the next sequence
    /// number): it was cut back or replaced, and the caller should read it from the start.
    pub fn read_from(
        path: &Path,
        from: Position,
    ) -> Result<Option<(Vec<Change>, Position)>, IncidentLogError> {
        if from.offset > 0 {
            let len = match std::fs::metadata(path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(source) => {
                    return Err(IncidentLogError::Read {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            };
            if len < from.offset {
                return Ok(None);
            }
        }
        let mode = ReplayMode {
            after: from.seq,
            live: true,
            from,
        };
        let found = match replay(path, mode) {
            Ok(found) => found,
            // From the middle of a replaced file: not a line boundary, or not the next number.
            Err(IncidentLogError::Corrupt { .. } | IncidentLogError::Sequence { .. })
                if from.offset > 0 =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if from.offset > 0
            && let Some(first) = found.changes.first()
            && first.seq != from.seq + 1
        {
            return Ok(None);
        }
        let end = match (found.changes.last(), found.ends.last()) {
            (Some(change), Some(&offset)) => Position {
                offset,
                seq: change.seq,
            },
            _ => from,
        };
        Ok(Some((found.changes, end)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Class, Severity};
    use crate::event::{EventId, Timestamp};
    use crate::incident::{ChangeKind, Evidence, IncidentId, RunbookLink, RunbookStep, State};

    fn change(id: &str, kind: ChangeKind, first_seen: i64, count: u64) -> Change {
        Change {
            seq: 0,
            kind,
            at: Timestamp::from_secs(first_seen + count as i64),
            incident: Incident {
                id: IncidentId(id.into()),
                class: Class::DbConnection,
                severity: Severity::Critical,
                state: if kind == ChangeKind::Resolved {
                    State::Resolved
                } else {
                    State::Open
                },
                title: "Too many clients on postgres".into(),
                rule: "pg-too-many-clients".into(),
                group: "pg-too-many-clients service=postgres".into(),
                services: vec!["postgres".into()],
                first_seen: Timestamp::from_secs(first_seen),
                opened_at: Timestamp::from_secs(first_seen),
                last_seen: Timestamp::from_secs(first_seen + count as i64),
                resolved_at: None,
                count,
                escalation_level: 0,
                caused_by: vec![IncidentId("inc-00000000000000aa".into())],
                consequence: false,
                runbook: RunbookLink {
                    title: "Database Connection Issues".into(),
                    anchor: "database-connection-issues".into(),
                    steps: vec![RunbookStep {
                        text: "Check database status".into(),
                        commands: vec!["docker-compose exec postgres pg_isready".into()],
                    }],
                },
                evidence: vec![Evidence {
                    event: EventId {
                        fingerprint: 9,
                        offset: 120,
                    },
                    ts: Timestamp::from_secs(first_seen),
                    service: "postgres".into(),
                    rule: "pg-too-many-clients".into(),
                    text: "FATAL:  sorry, too many clients already".into(),
                }],
                silenced_by: None,
                acknowledged: None,
            },
        }
    }

    #[test]
    fn the_log_round_trips_and_sequence_numbers_continue_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/incidents.jsonl");
        let mut log = IncidentLog::open(&path).unwrap();
        assert_eq!(log.last_seq(), 0);
        let mut batch = vec![
            change("inc-0000000000000001", ChangeKind::Opened, 100, 1),
            change("inc-0000000000000002", ChangeKind::Opened, 50, 1),
        ];
        log.append(&mut batch).unwrap();
        assert_eq!(batch.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2]);
        drop(log);

        let mut log = IncidentLog::open(&path).unwrap();
        assert_eq!(log.last_seq(), 2);
        let mut more = vec![change("inc-0000000000000001", ChangeKind::Updated, 100, 4)];
        log.append(&mut more).unwrap();
        assert_eq!(more[0].seq, 3);
        log.append(&mut []).unwrap();
        assert_eq!(log.last_seq(), 3);

        let read = IncidentLog::read_all(&path).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0], batch[0]);
        assert_eq!(read[2], more[0]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    /// A log of one incident opened, then updated twice (counts 1, 2, 4).
    fn three_changes(dir: &Path) -> PathBuf {
        let path = dir.join("incidents.jsonl");
        let mut log = IncidentLog::open(&path).unwrap();
        log.append(&mut [
            change("inc-0000000000000001", ChangeKind::Opened, 0, 1),
            change("inc-0000000000000001", ChangeKind::Updated, 0, 2),
            change("inc-0000000000000001", ChangeKind::Updated, 0, 4),
        ])
        .unwrap();
        path
    }

    #[test]
    fn changes_after_the_committed_sequence_number_are_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_changes(dir.path());
        let (mut log, current) = IncidentLog::open_at_commit(&path, Some(2)).unwrap();
        assert_eq!(log.last_seq(), 2);
        assert_eq!(current[0].count, 2);
        let mut next = [change("inc-0000000000000001", ChangeKind::Updated, 0, 3)];
        log.append(&mut next).unwrap();
        assert_eq!(next[0].seq, 3);
        let counts: Vec<u64> = IncidentLog::read_all(&path)
            .unwrap()
            .iter()
            .map(|c| c.incident.count)
            .collect();
        assert_eq!(counts, [1, 2, 3]);
        // Nothing past the commit: nothing cut.
        let (log, _) = IncidentLog::open_at_commit(&path, Some(3)).unwrap();
        assert_eq!(log.last_seq(), 3);
    }

    #[test]
    fn read_after_gives_the_changes_past_a_sequence_number_and_leaves_a_line_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_changes(dir.path());
        let seqs = |after| -> Vec<u64> {
            IncidentLog::read_after(&path, after)
                .unwrap()
                .iter()
                .map(|c| c.seq)
                .collect()
        };
        assert_eq!(seqs(0), [1, 2, 3]);
        assert_eq!(seqs(1), [2, 3]);
        assert_eq!(seqs(3), [] as [u64; 0]);
        assert_eq!(seqs(99), [] as [u64; 0]);
        // An append in progress: the complete entries only.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"seq":4,"kind":"upd"#).unwrap();
        assert_eq!(seqs(2), [3]);
    }

    #[test]
    fn read_from_continues_a_position_and_notices_a_log_cut_back_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_changes(dir.path());
        let (all, end) = IncidentLog::read_from(&path, Position::default())
            .unwrap()
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(end.seq, 3);
        assert_eq!(end.offset, std::fs::metadata(&path).unwrap().len());
        let (none, same) = IncidentLog::read_from(&path, end).unwrap().unwrap();
        assert!(none.is_empty());
        assert_eq!(same, end);

        let mut log = IncidentLog::open(&path).unwrap();
        log.append(&mut [change("inc-0000000000000002", ChangeKind::Opened, 9, 1)])
            .unwrap();
        let (more, after) = IncidentLog::read_from(&path, end).unwrap().unwrap();
        assert_eq!(more.iter().map(|c| c.seq).collect::<Vec<_>>(), [4]);
        assert_eq!(after.seq, 4);
        drop(log);

        // Replaced by a shorter log: shorter than the position.
        std::fs::remove_file(&path).unwrap();
        let mut log = IncidentLog::open(&path).unwrap();
        log.append(&mut [change("inc-0000000000000003", ChangeKind::Opened, 1, 1)])
            .unwrap();
        assert_eq!(IncidentLog::read_from(&path, after).unwrap(), None);
        // Replaced by a longer one: the position is not the end of its entry `seq`.
        log.append(&mut [
            change("inc-0000000000000003", ChangeKind::Updated, 1, 2),
            change("inc-0000000000000003", ChangeKind::Updated, 1, 3),
            change("inc-0000000000000003", ChangeKind::Updated, 1, 4),
            change("inc-0000000000000003", ChangeKind::Updated, 1, 5),
        ])
        .unwrap();
        let moved = Position {
            offset: after.offset,
            seq: 1,
        };
        assert_eq!(IncidentLog::read_from(&path, moved).unwrap(), None);
    }

    #[test]
    fn a_missing_log_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            IncidentLog::read_all(&dir.path().join("none.jsonl"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.jsonl");
        let mut log = IncidentLog::open(&path).unwrap();
        log.append(&mut [change("inc-0000000000000001", ChangeKind::Opened, 0, 1)])
            .unwrap();
        drop(log);
        // A crash in the middle of the next write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"seq":2,"kind":"updated","at":5,"incid"#)
            .unwrap();
        drop(f);

        assert_eq!(IncidentLog::read_all(&path).unwrap().len(), 1);
        let mut log = IncidentLog::open(&path).unwrap();
        assert_eq!(log.last_seq(), 1);
        log.append(&mut [change("inc-0000000000000001", ChangeKind::Updated, 0, 2)])
            .unwrap();
        let read = IncidentLog::read_all(&path).unwrap();
        assert_eq!(read.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_changes(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "{\"seq\":2,\"kind\":\"upd";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();

        let err = IncidentLog::read_all(&path).unwrap_err();
        assert!(
            matches!(err, IncidentLogError::Corrupt { line: 2, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("incidents.jsonl:2"), "{msg}");
        assert!(IncidentLog::open(&path).is_err());
    }

    #[test]
    fn sequence_numbers_must_increase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incidents.jsonl");
        let mut log = IncidentLog::open(&path).unwrap();
        log.append(&mut [change("inc-0000000000000001", ChangeKind::Opened, 0, 1)])
            .unwrap();
        drop(log);
        let line = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{line}{line}")).unwrap();
        let err = IncidentLog::read_all(&path).unwrap_err();
        assert!(matches!(
            err,
            IncidentLogError::Sequence {
                line: 2,
                seq: 1,
                previous: 1,
                ..
            }
        ));
    }

    #[test]
    fn current_folds_to_the_latest_snapshot_in_first_seen_order() {
        let changes = vec![
            change("inc-00000000000000b1", ChangeKind::Opened, 100, 1),
            change("inc-00000000000000a1", ChangeKind::Opened, 50, 1),
            change("inc-00000000000000b1", ChangeKind::Updated, 100, 8),
            change("inc-00000000000000a1", ChangeKind::Resolved, 50, 3),
            change("inc-00000000000000c1", ChangeKind::Opened, 100, 1),
        ];
        let now = current(&changes);
        let ids: Vec<&str> = now.iter().map(|i| i.id.0.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "inc-00000000000000a1",
                "inc-00000000000000b1",
                "inc-00000000000000c1"
            ]
        );
        assert_eq!(now[0].state, State::Resolved);
        assert_eq!(now[1].count, 8);
    }

    #[test]
    fn find_takes_a_full_id_or_an_unambiguous_prefix() {
        let now = current(&[
            change("inc-00000000000000b1", ChangeKind::Opened, 100, 1),
            change("inc-00000000000000a1", ChangeKind::Opened, 50, 1),
            change("inc-1234000000000000", ChangeKind::Opened, 10, 1),
        ]);
        assert_eq!(
            find(&now, "inc-00000000000000b1").unwrap().id.0,
            "inc-00000000000000b1"
        );
        assert_eq!(find(&now, "1234").unwrap().id.0, "inc-1234000000000000");
        assert_eq!(find(&now, "inc-0000").map(|i| &i.id.0), None, "ambiguous");
        assert_eq!(
            find(&now, "00000000000000a").unwrap().id.0,
            "inc-00000000000000a1"
        );
        assert!(find(&now, "ffff").is_none());
        assert!(find(&now, "").is_none());
    }
}
