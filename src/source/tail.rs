//! Follow files as they grow: notify (inotify) wakes the reader, a periodic stat catches the rest.
//!
//! Takes the configured sources (paths or globs) and the checkpoints, gives the pipeline
//! `Opened`/`Chunk`/`Idle`/`Closed` inputs and `Done` once asked to stop. Files are tracked by an
//! open handle plus fingerprint, not by name: after a rename+create rotation (or a deletion, or a
//! repointed symlink) the old handle is read to its end before it is let go, and the new file at
//! the path is picked up as a new identity. A file truncated in place (it shrinks below the offset
//! read, or its first line changes: copytruncate followed by new writes) is re-identified from its
//! new first line, and the bytes written between the last read and the truncation are recovered
//! from the rotated copy beside it (`app.log.1`, `app.log-20261129`, `app.log.1.gz`), found by
//! fingerprint. Compressed archives are not tailed (backfill reads them). Reads are large (up to
//! [`READ_SIZE`]) and fair across files. It must not parse.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::source::checkpoint::Checkpoints;
use crate::source::fingerprint::{self, FINGERPRINT_BYTES};
use crate::source::{
    Chunk, Disconnected, FileInfo, From, Input, READ_SIZE, SourceSpec, Stats, discover, send,
};

/// How the tailer paces itself.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Where a file never seen before starts, for files present at start-up.
    pub from: From,
    /// The stat fallback: how often every path is looked at when no notify event arrives.
    pub poll: Duration,
    /// A file without new bytes for this long is reported `Idle` (its open entry may be emitted).
    pub idle_after: Duration,
    /// A file without new bytes for this long has its unterminated last line emitted (`Stale`).
    pub partial_after: Duration,
    /// A file no longer at its path is kept open this long after its last byte, then closed.
    pub release_after: Duration,
    /// At most this many bytes are read from one file per round, so one busy file cannot starve
    /// the others.
    pub max_round_bytes: usize,
    /// After a truncation, how long to look for the rotated copy that holds the bytes not read
    /// yet (logrotate may still be compressing it).
    pub recover_within: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            from: From::Beginning,
            poll: Duration::from_millis(250),
            idle_after: Duration::from_millis(100),
            partial_after: Duration::from_secs(2),
            release_after: Duration::from_secs(2),
            max_round_bytes: 8 * 1024 * 1024,
            recover_within: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

struct Tracked {
    source: usize,
    fingerprint: u64,
    path: PathBuf,
    file: File,
    inode: (u64, u64),
    offset: u64,
    last_data: Instant,
    idle_sent: bool,
    stale_sent: bool,
    detached_since: Option<Instant>,
}

/// A file truncated under us: the bytes from `offset` on are looked for in a rotated copy.
struct Recovery {
    source: usize,
    fingerprint: u64,
    /// The path the file was followed at; its copies sit beside it and share its name as prefix.
    path: PathBuf,
    offset: u64,
    since: Instant,
    /// Whether the pipeline has the file open (a truncation seen live) or must be told first (a
    /// file rotated away while logwarden was down).
    opened: bool,
}

/// Follow every source until `stop` is set; then read what is left, send `Done` and return.
pub fn tail(
    specs: &[SourceSpec],
    checkpoints: &Checkpoints,
    cfg: &TailConfig,
    tx: &SyncSender<Input>,
    stop: &AtomicBool,
) -> Result<Stats, TailError> {
    let (wake_tx, wake_rx) = sync_channel::<()>(64);
    let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        // A full channel already holds a wake-up; dropping this one loses nothing.
        let _ = wake_tx.try_send(());
    });
    let mut _watcher = match watcher {
        Ok(mut w) => {
            for spec in specs {
                let dir = watch_dir(&spec.path);
                if let Err(e) = w.watch(&dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), error = %e,
                        "cannot watch directory; relying on the periodic stat");
                }
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no file notifications; relying on the periodic stat");
            None
        }
    };

    let mut tailer = Tailer {
        specs,
        checkpoints,
        cfg,
        tx,
        tracked: Vec::new(),
        recoveries: Vec::new(),
        done: HashMap::new(),
        following_since: HashMap::new(),
        stats: Stats::default(),
        buf: vec![0u8; READ_SIZE],
    };
    let mut first_round = true;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match tailer.drain_if(stopping, first_round) {
            Ok(()) => {}
            Err(RoundError::Disconnected) => return Ok(tailer.stats),
            Err(RoundError::Io { path, source }) => {
                return Err(TailError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        first_round = false;
        if stopping {
            let _ = send(tx, Input::Done);
            return Ok(tailer.stats);
        }
        // Wait for a notification, the stat interval or the next file going idle (its held
        // entry is emitted then), whichever comes first.
        if wake_rx.recv_timeout(tailer.next_wait()).is_ok() {
            while wake_rx.try_recv().is_ok() {}
        }
    }
}

/// The files beside `path` whose names extend its name (`app.log.1`, `app.log-20261129`,
/// `app.log.1.gz`): its rotated generations, newest first, with their modification times.
fn rotated_generations(path: &Path) -> Vec<(std::time::SystemTime, PathBuf)> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.len() > name.len() && n.starts_with(name.as_str())
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file()
                .then(|| (meta.modified().unwrap_or(std::time::UNIX_EPOCH), e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found
}

/// The rotated generation of the file followed at `path` whose fingerprint is `fingerprint`.
fn rotated_copy(path: &Path, fingerprint: u64) -> Option<PathBuf> {
    rotated_generations(path)
        .into_iter()
        .map(|(_, p)| p)
        .find(|p| matches!(fingerprint::of_path(p, true), Ok(Some(fp)) if fp == fingerprint))
}

/// The decoded bytes of the rotated copy at `copy`, checked to be the generation `fingerprint`.
/// The copy was found by its fingerprint but is opened by name: a rotation in between (the
/// follower descheduled) puts the next generation under that name, whose bytes must not be
/// read as this one's.
fn open_copy(copy: &Path, fingerprint: u64) -> io::Result<impl Read> {
    let mut reader = fingerprint::open_decoded(copy)?;
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES + 1);
    (&mut reader)
        .take(FINGERPRINT_BYTES as u64 + 1)
        .read_to_end(&mut head)?;
    if fingerprint::of_head(&head, true) != Some(fingerprint) {
        return Err(io::Error::other(
            "another generation took the copy's name before it was opened",
        ));
    }
    Ok(io::Cursor::new(head).chain(reader))
}

/// The directory to watch for a path or glob: the deepest parent without glob characters.
fn watch_dir(path: &Path) -> PathBuf {
    let mut dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    while discover::is_glob(&dir) {
        dir = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

enum RoundError {
    Io { path: PathBuf, source: io::Error },
    Disconnected,
}

impl std::convert::From<Disconnected> for RoundError {
    fn from(_: Disconnected) -> Self {
        RoundError::Disconnected
    }
}

/// Send `bytes` of the file `(source, fingerprint)` read at `*offset` as one chunk, and move the
/// offset past them.
fn send_chunk(
    tx: &SyncSender<Input>,
    stats: &mut Stats,
    (source, fingerprint): (usize, u64),
    offset: &mut u64,
    bytes: &[u8],
) -> Result<(), Disconnected> {
    let chunk = Chunk {
        source,
        fingerprint,
        offset: *offset,
        bytes: bytes.to_vec(),
        eof: false,
    };
    *offset += bytes.len() as u64;
    stats.chunks += 1;
    stats.bytes_read += bytes.len() as u64;
    send(tx, Input::Chunk(chunk))
}

struct Tailer<'a> {
    specs: &'a [SourceSpec],
    checkpoints: &'a Checkpoints,
    cfg: &'a TailConfig,
    tx: &'a SyncSender<Input>,
    tracked: Vec<Tracked>,
    recoveries: Vec<Recovery>,
    /// Files let go this run, by fingerprint: how far they were read. A copy of one found later
    /// (a rotated generation matched by a glob) starts there, so nothing is read twice.
    done: HashMap<u64, u64>,
    /// When this run began following each path: rotated generations newer than that are ours.
    following_since: HashMap<PathBuf, std::time::SystemTime>,
    stats: Stats,
    buf: Vec<u8>,
}

impl Tailer<'_> {
    /// How long the loop may sleep: the stat interval, or less when a file is about to go idle.
    fn next_wait(&self) -> Duration {
        self.tracked
            .iter()
            .filter_map(|t| {
                let after = match (t.idle_sent, t.stale_sent) {
                    (false, _) => self.cfg.idle_after,
                    (true, false) => self.cfg.partial_after,
                    (true, true) => return None,
                };
                Some(after.saturating_sub(t.last_data.elapsed()))
            })
            .fold(self.cfg.poll, Duration::min)
            .max(Duration::from_millis(1))
    }

    /// One round; when stopping, rounds until nothing is left to read (or a round cap: a file
    /// written faster than it is read must not hold the shutdown forever), then gives up on
    /// copies still being looked for.
    fn drain_if(&mut self, stopping: bool, first_round: bool) -> Result<(), RoundError> {
        const MAX_DRAIN_ROUNDS: usize = 64;
        let mut first = first_round;
        for _ in 0..MAX_DRAIN_ROUNDS {
            let read = self.round(first)?;
            first = false;
            if !stopping || read == 0 {
                break;
            }
        }
        if stopping {
            for r in std::mem::take(&mut self.recoveries) {
                tracing::warn!(path = %r.path.display(), offset = r.offset,
                    "stopping before the rotated copy was found; bytes after this offset may be missing");
                self.close(r.fingerprint, r.offset)?;
            }
        }
        Ok(())
    }

    /// Tell the pipeline a file is done, and remember how far it was read.
    fn close(&mut self, fingerprint: u64, offset: u64) -> Result<(), RoundError> {
        self.done.insert(fingerprint, offset);
        send(self.tx, Input::Closed { fingerprint })?;
        Ok(())
    }

    /// Discover, then read what every file has; returns the bytes read.
    fn round(&mut self, first_round: bool) -> Result<usize, RoundError> {
        let mut read = self.recover()?;
        self.discover(first_round)?;
        if first_round {
            self.recover_rotated_while_down();
            read += self.recover()?;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.tracked.len() {
            let (got, replaced) = self.read_available(i)?;
            read += got;
            let t = &mut self.tracked[i];
            if got > 0 {
                t.last_data = now;
                t.idle_sent = false;
                t.stale_sent = false;
            } else if !t.idle_sent && t.last_data.elapsed() >= self.cfg.idle_after {
                t.idle_sent = true;
                send(
                    self.tx,
                    Input::Idle {
                        fingerprint: t.fingerprint,
                    },
                )?;
            } else if t.idle_sent
                && !t.stale_sent
                && t.last_data.elapsed() >= self.cfg.partial_after
            {
                t.stale_sent = true;
                send(
                    self.tx,
                    Input::Stale {
                        fingerprint: t.fingerprint,
                    },
                )?;
            }
            let release = t
                .detached_since
                .is_some_and(|since| since.elapsed() >= self.cfg.release_after)
                && t.last_data.elapsed() >= self.cfg.release_after;
            let truncated = replaced || (got == 0 && self.was_truncated(i));
            if truncated {
                let t = self.tracked.remove(i);
                self.stats.truncations += 1;
                tracing::info!(path = %t.path.display(), offset = t.offset,
                    "file truncated in place (copytruncate?); recovering its last bytes from the rotated copy");
                self.recoveries.push(Recovery {
                    source: t.source,
                    fingerprint: t.fingerprint,
                    path: t.path.clone(),
                    offset: t.offset,
                    since: Instant::now(),
                    opened: true,
                });
                // Behind by several rotations, the ones between may be gone unseen; the last
                // may have left the path empty (the writer done), so no new file will come
                // there to say so.
                self.adopt_missed_since_following(t.source, &t.path);
                // The copy is usually there already: recover at once, before the new content.
                read += self.recover()?;
                continue;
            }
            if release {
                let t = self.tracked.remove(i);
                self.stats.rotations += 1;
                tracing::info!(path = %t.path.display(), offset = t.offset,
                    "rotated file read to its end; letting it go");
                self.close(t.fingerprint, t.offset)?;
                continue;
            }
            i += 1;
        }
        Ok(read)
    }

    /// The file under the handle is no longer the one read so far: it shrank below the offset,
    /// or its first line changed (truncated, then written again past the old offset between two
    /// looks).
    fn was_truncated(&self, i: usize) -> bool {
        let t = &self.tracked[i];
        let Ok(meta) = t.file.metadata() else {
            return false;
        };
        if meta.len() < t.offset {
            return true;
        }
        let mut head = vec![0u8; FINGERPRINT_BYTES + 1];
        match t.file.read_at(&mut head, 0) {
            Ok(n) => fingerprint::of_head(&head[..n], false) != Some(t.fingerprint),
            Err(_) => false,
        }
    }

    /// Files checkpointed at a source's path that are no longer there (rotated, truncated or
    /// deleted while logwarden was down): their unread rest is looked for in rotated copies beside
    /// that path, once.
    fn recover_rotated_while_down(&mut self) {
        for (key, state) in &self.checkpoints.files {
            let Ok(fp) = u64::from_str_radix(key, 16) else {
                continue;
            };
            if self.tracked.iter().any(|t| t.fingerprint == fp) {
                continue;
            }
            let Some(source) = self.specs.iter().position(|spec| {
                spec.path == state.path
                    || glob::Pattern::new(&spec.path.to_string_lossy())
                        .is_ok_and(|p| p.matches_path(&state.path))
            }) else {
                continue;
            };
            self.recoveries.push(Recovery {
                source,
                fingerprint: fp,
                path: state.path.clone(),
                offset: state.offset,
                // One look only: give up at once when no copy is there.
                since: Instant::now() - self.cfg.recover_within,
                opened: false,
            });
        }
    }

    /// Rotated generations beside `path` written since `since` (this run followed the path then)
    /// whose fingerprint nothing knows: files that were created, written and rotated away while
    /// the follower was not looking. They are read whole, from the copy.
    fn adopt_missed_generations(
        &mut self,
        source: usize,
        path: &Path,
        since: std::time::SystemTime,
    ) {
        for (modified, copy) in rotated_generations(path) {
            if modified < since {
                continue;
            }
            let followed = std::fs::metadata(&copy)
                .is_ok_and(|m| self.tracked.iter().any(|t| t.inode == (m.dev(), m.ino())));
            let Ok(Some(fp)) = fingerprint::of_path(&copy, true) else {
                continue;
            };
            let known = followed
                || self.tracked.iter().any(|t| t.fingerprint == fp)
                || self.recoveries.iter().any(|r| r.fingerprint == fp)
                || self.done.contains_key(&fp)
                || self.checkpoints.get(fp).is_some();
            if known {
                continue;
            }
            tracing::info!(copy = %copy.display(), fingerprint = %format!("{fp:016x}"),
                "a whole generation was rotated away unseen; reading it");
            self.recoveries.push(Recovery {
                source,
                fingerprint: fp,
                path: path.to_path_buf(),
                offset: 0,
                since: Instant::now(),
                opened: false,
            });
        }
    }

    /// Work on the pending recoveries: read each one's bytes from its rotated copy, then let the
    /// file go. Returns the bytes read.
    fn recover(&mut self) -> Result<usize, RoundError> {
        let mut read = 0;
        let mut i = 0;
        while i < self.recoveries.len() {
            let r = &self.recoveries[i];
            let (fp, path, offset) = (r.fingerprint, r.path.clone(), r.offset);
            let copy = rotated_copy(&path, fp);
            if let Some(copy) = &copy
                && !self.recoveries[i].opened
                && !fingerprint::is_gzip(copy)
                && std::fs::metadata(copy).is_ok_and(|m| m.len() <= offset)
            {
                // Checkpointed to its end before: nothing to recover.
                self.recoveries.remove(i);
                continue;
            }
            let found = match copy {
                Some(copy) => match self
                    .open_recovery(i, &copy)
                    .and_then(|()| self.read_copy(i, &copy))
                {
                    Ok(n) => {
                        read += n;
                        tracing::info!(copy = %copy.display(), from = offset, bytes = n,
                            "recovered the bytes written before the truncation");
                        true
                    }
                    Err(RoundError::Io { path, source }) => {
                        // A copy still being written (compressed): try again next round.
                        tracing::debug!(copy = %path.display(), error = %source, "rotated copy not readable yet");
                        false
                    }
                    Err(e) => return Err(e),
                },
                None => false,
            };
            let r = &self.recoveries[i];
            if found || r.since.elapsed() >= self.cfg.recover_within {
                if !r.opened {
                    // Never told the pipeline about it: nothing to close.
                    tracing::debug!(path = %path.display(), "no rotated copy of a file checkpointed earlier");
                    self.recoveries.remove(i);
                    continue;
                }
                if !found {
                    tracing::warn!(path = %path.display(), offset = r.offset,
                        "no rotated copy of the truncated file found; bytes written after this offset before the truncation are lost");
                }
                let r = self.recoveries.remove(i);
                self.close(r.fingerprint, r.offset)?;
                continue;
            }
            i += 1;
        }
        Ok(read)
    }

    /// Tell the pipeline about a file it does not have open yet (recovered after a restart).
    fn open_recovery(&mut self, i: usize, copy: &Path) -> Result<(), RoundError> {
        let r = &mut self.recoveries[i];
        if r.opened {
            return Ok(());
        }
        r.opened = true;
        self.stats.files += 1;
        tracing::info!(copy = %copy.display(), from = r.offset,
            "reading a rotated generation not followed yet");
        send(
            self.tx,
            // The path it was followed at, not the copy's: checkpoints name the source's path,
            // which is where a later restart looks for copies again.
            Input::Opened(FileInfo {
                source: r.source,
                fingerprint: r.fingerprint,
                path: r.path.clone(),
                start: r.offset,
            }),
        )?;
        Ok(())
    }

    /// Send recovery `i`'s bytes from `copy` (plain or `.gz`), advancing its offset as chunks go.
    fn read_copy(&mut self, i: usize, copy: &Path) -> Result<usize, RoundError> {
        let io_err = |source| RoundError::Io {
            path: copy.to_path_buf(),
            source,
        };
        // On a mismatch the copy is looked for again next round.
        let mut reader = open_copy(copy, self.recoveries[i].fingerprint).map_err(io_err)?;
        let offset = self.recoveries[i].offset;
        let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(io_err)?;
        if skipped < offset {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let n = match reader.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(io_err(source)),
            };
            let r = &mut self.recoveries[i];
            send_chunk(
                self.tx,
                &mut self.stats,
                (r.source, r.fingerprint),
                &mut r.offset,
                &self.buf[..n],
            )?;
            total += n;
        }
    }

    /// Look at every path: new files are opened, files that left their path are marked detached.
    fn discover(&mut self, first_round: bool) -> Result<(), RoundError> {
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let recovering: Vec<u64> = self.recoveries.iter().map(|r| r.fingerprint).collect();
        for (source, spec) in self.specs.iter().enumerate() {
            let paths = discover::expand(&spec.path).map_err(|source| RoundError::Io {
                path: spec.path.clone(),
                source,
            })?;
            for path in paths {
                if fingerprint::is_gzip(&path) {
                    continue; // archives are read by backfill, not tailed
                }
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    // Gone between listing and stat: it will be seen (or not) next round.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(RoundError::Io { path, source }),
                };
                let inode = (meta.dev(), meta.ino());
                seen.push(inode);
                if let Some(t) = self.tracked.iter_mut().find(|t| t.inode == inode) {
                    if t.path != path {
                        t.path = path;
                    }
                    t.detached_since = None;
                    continue;
                }
                self.open(source, path, first_round, &recovering)?;
            }
        }
        let now = Instant::now();
        let mut detached = Vec::new();
        for t in &mut self.tracked {
            if !seen.contains(&t.inode) && t.detached_since.is_none() {
                t.detached_since = Some(now);
                detached.push((t.source, t.path.clone()));
            }
        }
        // A file renamed away: generations rotated between it and the path's next file may be
        // gone unseen, and the next file may stay empty.
        for (source, path) in detached {
            self.adopt_missed_since_following(source, &path);
        }
        Ok(())
    }

    /// [`Self::adopt_missed_generations`] for a path this run has been following.
    fn adopt_missed_since_following(&mut self, source: usize, path: &Path) {
        if let Some(&since) = self.following_since.get(path) {
            self.adopt_missed_generations(source, path, since);
        }
    }

    fn open(
        &mut self,
        source: usize,
        path: PathBuf,
        first_round: bool,
        recovering: &[u64],
    ) -> Result<(), RoundError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RoundError::Io { path, source }
        };
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        // The file opened, which a rotation since the directory was listed may have changed.
        let opened = file.metadata().map_err(io_err(&path))?;
        let inode = (opened.dev(), opened.ino());
        if self.tracked.iter().any(|t| t.inode == inode) {
            return Ok(());
        }
        let mut head = vec![0u8; FINGERPRINT_BYTES + 1];
        let n = file.read_at(&mut head, 0).map_err(io_err(&path))?;
        head.truncate(n);
        let Some(fp) = fingerprint::of_head(&head, false) else {
            // No complete first line yet: try again next round.
            return Ok(());
        };
        if self.tracked.iter().any(|t| t.fingerprint == fp) || recovering.contains(&fp) {
            // A copy of a file we follow (copytruncate's rotated copy): its bytes are ours already.
            return Ok(());
        }
        let size = opened.len();
        let stored = self.checkpoints.get(fp).map(|state| state.offset);
        let start = match (stored, self.done.get(&fp)) {
            (stored, Some(&read)) => read.max(stored.unwrap_or(0)),
            (Some(stored), None) => stored,
            (None, None) if first_round && self.cfg.from == From::End => size,
            (None, None) => 0,
        };
        if self.done.contains_key(&fp) && size <= start {
            // A rotated generation of a file already read to its end: nothing new in it.
            return Ok(());
        }
        let start = start.min(size);
        file.seek(SeekFrom::Start(start)).map_err(io_err(&path))?;
        self.stats.files += 1;
        tracing::info!(path = %path.display(), fingerprint = %format!("{fp:016x}"), start, "following file");
        send(
            self.tx,
            Input::Opened(FileInfo {
                source,
                fingerprint: fp,
                path: path.clone(),
                start,
            }),
        )?;
        self.tracked.push(Tracked {
            source,
            fingerprint: fp,
            path,
            file,
            inode,
            offset: start,
            last_data: Instant::now(),
            idle_sent: false,
            stale_sent: false,
            detached_since: None,
        });
        // A new file at a path followed before in this run: a rotation. If the follower was
        // behind across several rotations, whole generations may have come and gone unseen.
        // (Looked for once the new file is tracked, so it can never take itself for one.)
        let path = &self.tracked[self.tracked.len() - 1].path.clone();
        if self.following_since.contains_key(path) {
            self.adopt_missed_since_following(source, path);
        } else {
            self.following_since
                .insert(path.clone(), std::time::SystemTime::now());
        }
        Ok(())
    }

    /// Read what file `i` has beyond its offset, up to the round's cap. Returns the bytes read,
    /// and whether the file turned out to be truncated and written again: bytes read are only
    /// sent once the file's first line is seen unchanged after the read, so new content written
    /// past the old offset is never taken for the old file's continuation.
    fn read_available(&mut self, i: usize) -> Result<(usize, bool), RoundError> {
        let mut total = 0usize;
        while total < self.cfg.max_round_bytes {
            let t = &mut self.tracked[i];
            let n = match t.file.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(RoundError::Io {
                        path: t.path.clone(),
                        source,
                    });
                }
            };
            if n == 0 {
                break;
            }
            if self.was_truncated(i) {
                return Ok((total, true));
            }
            let t = &mut self.tracked[i];
            send_chunk(
                self.tx,
                &mut self.stats,
                (t.source, t.fingerprint),
                &mut t.offset,
                &self.buf[..n],
            )?;
            total += n;
        }
        Ok((total, false))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::mpsc::Receiver;

    use super::*;
    use crate::parse::Format;

    /// Collect chunks per fingerprint until the files' contents are `want`, or the deadline passes.
    fn wait_for_files(
        rx: &Receiver<Input>,
        got: &mut BTreeMap<u64, Vec<u8>>,
        want: &[&[u8]],
    ) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Input::Chunk(c)) = rx.recv_timeout(Duration::from_millis(20)) {
                got.entry(c.fingerprint)
                    .or_default()
                    .extend_from_slice(&c.bytes);
            }
            let mut have: Vec<&[u8]> = got.values().map(Vec::as_slice).collect();
            have.sort_unstable();
            let mut want = want.to_vec();
            want.sort_unstable();
            if have == want {
                return true;
            }
        }
        false
    }

    /// A tailer on `dir/app.log` (written with "line one") on its own thread, fast polling.
    struct Running {
        path: std::path::PathBuf,
        rx: Receiver<Input>,
        stop: Arc<AtomicBool>,
        handle: std::thread::JoinHandle<Stats>,
        got: BTreeMap<u64, Vec<u8>>,
    }

    fn start(dir: &Path) -> Running {
        let path = dir.join("app.log");
        std::fs::write(&path, b"line one\n").unwrap();
        let specs = vec![SourceSpec {
            service: "app".into(),
            format: Format::Plain,
            path: path.clone(),
        }];
        let (tx, rx) = sync_channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let cfg = TailConfig {
            poll: Duration::from_millis(20),
            release_after: Duration::from_millis(100),
            ..TailConfig::default()
        };
        let handle = std::thread::spawn(move || {
            tail(&specs, &Checkpoints::default(), &cfg, &tx, &stop2).unwrap()
        });
        let mut got = BTreeMap::new();
        assert!(wait_for_files(&rx, &mut got, &[b"line one\n"]));
        Running {
            path,
            rx,
            stop,
            handle,
            got,
        }
    }

    #[test]
    fn growth_and_rename_rotation_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            path,
            rx,
            stop,
            handle,
            mut got,
        } = start(dir.path());

        // Growth, then a write to the old file after it was renamed, then a new file at the path.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"line two\n").unwrap();
        assert!(wait_for_files(&rx, &mut got, &[b"line one\nline two\n"]));
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        f.write_all(b"late line\n").unwrap();
        std::fs::write(&path, b"new file first\n").unwrap();
        assert!(
            wait_for_files(
                &rx,
                &mut got,
                &[b"line one\nline two\nlate line\n", b"new file first\n"]
            ),
            "{got:?}"
        );
        stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done = false;
        while Instant::now() < deadline && !done {
            done = matches!(rx.recv_timeout(Duration::from_millis(20)), Ok(Input::Done));
        }
        assert!(done);
        let stats = handle.join().unwrap();
        assert_eq!(stats.files, 2);
    }

    /// A copy found by fingerprint and then opened by name is checked again once open: after
    /// a rotation in between, the name holds the next generation, which is refused, and the
    /// generation sought is read (whole, `.gz` or not) from the name it moved to.
    #[test]
    fn a_copy_renamed_between_finding_and_opening_is_not_read_as_another() {
        use flate2::Compression;
        use flate2::write::GzEncoder;
        let dir = tempfile::tempdir().unwrap();
        let gz = |name: &str, body: &str| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(body.as_bytes()).unwrap();
            std::fs::write(dir.path().join(name), enc.finish().unwrap()).unwrap();
        };
        let g8 = "line 2121 of g8\nline 2122\n";
        let g9 = "line 2421 of g9\nline 2422\n";
        let fp8 = fingerprint::of_head(g8.as_bytes(), true).unwrap();
        // Found as app.log.1.gz; then logrotate moved it to .2.gz and put g9 at .1.gz.
        gz("app.log.2.gz", g8);
        gz("app.log.1.gz", g9);
        let err = open_copy(&dir.path().join("app.log.1.gz"), fp8)
            .err()
            .unwrap();
        assert!(err.to_string().contains("another generation"), "{err}");
        let found = rotated_copy(&dir.path().join("app.log"), fp8).unwrap();
        assert!(found.ends_with("app.log.2.gz"), "{found:?}");
        let mut text = String::new();
        open_copy(&found, fp8)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, g8);
        // A plain copy whose first line fits in the head is read whole as well.
        std::fs::write(dir.path().join("plain.1"), g8).unwrap();
        let mut text = String::new();
        open_copy(&dir.path().join("plain.1"), fp8)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, g8);
    }

    /// copytruncate: the bytes written after the last read are recovered from the rotated copy,
    /// whether or not the tailer saw them before the truncation.
    #[test]
    fn copytruncate_recovers_unread_bytes_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let Running {
            path,
            rx,
            stop,
            handle,
            mut got,
        } = start(dir.path());
        // Append, copy, truncate, write anew: all at once, as logrotate and the app would.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"unread two\nunread three\n").unwrap();
        std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        f.set_len(0).unwrap();
        f.write_all(b"after truncation\n").unwrap();
        assert!(
            wait_for_files(
                &rx,
                &mut got,
                &[
                    b"line one\nunread two\nunread three\n",
                    b"after truncation\n"
                ]
            ),
            "{got:?}"
        );
        stop.store(true, Ordering::SeqCst);
        let stats = handle.join().unwrap();
        assert_eq!(stats.truncations, 1);
    }
}
