//! Follow files as they grow: notify (inotify) wakes the reader, a periodic stat catches the rest.
//!
//! Takes the configured sources (paths or globs) and the checkpoints, gives the pipeline
//! `Opened`/`Chunk`/`Idle`/`Closed` inputs and `Done` once asked to stop. Files are tracked by an
//! open handle plus fingerprint, not by name: after a rename+create rotation the old handle is read
//! to its end before it is let go, and the new file at the path is picked up as a new identity. A
//! file that shrinks below the offset read (copytruncate) is re-identified from its new first line.
//! Reads are large (up to [`READ_SIZE`]) and fair across files. It must not parse.

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
    /// A file no longer at its path is kept open this long after its last byte, then closed.
    pub release_after: Duration,
    /// At most this many bytes are read from one file per round, so one busy file cannot starve
    /// the others.
    pub max_round_bytes: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            from: From::Beginning,
            poll: Duration::from_millis(250),
            idle_after: Duration::from_millis(200),
            release_after: Duration::from_secs(2),
            max_round_bytes: 8 * 1024 * 1024,
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
    detached_since: Option<Instant>,
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
        // Wait for a notification or the stat interval, whichever comes first.
        if wake_rx.recv_timeout(cfg.poll).is_ok() {
            while wake_rx.try_recv().is_ok() {}
        }
    }
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

struct Tailer<'a> {
    specs: &'a [SourceSpec],
    checkpoints: &'a Checkpoints,
    cfg: &'a TailConfig,
    tx: &'a SyncSender<Input>,
    tracked: Vec<Tracked>,
    stats: Stats,
    buf: Vec<u8>,
}

impl Tailer<'_> {
    /// One round; when stopping, rounds until nothing is left to read.
    fn drain_if(&mut self, stopping: bool, first_round: bool) -> Result<(), RoundError> {
        let mut first = first_round;
        loop {
            let read = self.round(first)?;
            first = false;
            if !stopping || read == 0 {
                return Ok(());
            }
        }
    }

    /// Discover, then read what every file has; returns the bytes read.
    fn round(&mut self, first_round: bool) -> Result<usize, RoundError> {
        let mut read = 0usize;
        self.discover(first_round)?;
        let now = Instant::now();
        let mut i = 0;
        while i < self.tracked.len() {
            let got = self.read_available(i)?;
            read += got;
            let t = &mut self.tracked[i];
            if got > 0 {
                t.last_data = now;
                t.idle_sent = false;
            } else if !t.idle_sent && t.last_data.elapsed() >= self.cfg.idle_after {
                t.idle_sent = true;
                send(
                    self.tx,
                    Input::Idle {
                        fingerprint: t.fingerprint,
                    },
                )?;
            }
            let release = t
                .detached_since
                .is_some_and(|since| since.elapsed() >= self.cfg.release_after)
                && t.last_data.elapsed() >= self.cfg.release_after;
            let truncated = got == 0 && self.was_truncated(i);
            if release || truncated {
                let t = self.tracked.remove(i);
                if truncated {
                    self.stats.truncations += 1;
                    tracing::info!(path = %t.path.display(), offset = t.offset,
                        "file truncated (copytruncate?); following its new content");
                } else {
                    self.stats.rotations += 1;
                    tracing::info!(path = %t.path.display(), offset = t.offset,
                        "rotated file read to its end; letting it go");
                }
                send(
                    self.tx,
                    Input::Closed {
                        fingerprint: t.fingerprint,
                    },
                )?;
                continue;
            }
            i += 1;
        }
        Ok(read)
    }

    fn was_truncated(&self, i: usize) -> bool {
        let t = &self.tracked[i];
        t.file.metadata().is_ok_and(|m| m.len() < t.offset)
    }

    /// Look at every path: new files are opened, files that left their path are marked detached.
    fn discover(&mut self, first_round: bool) -> Result<(), RoundError> {
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for (source, spec) in self.specs.iter().enumerate() {
            let paths = discover::expand(&spec.path).map_err(|source| RoundError::Io {
                path: spec.path.clone(),
                source,
            })?;
            for path in paths {
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
                self.open(source, path, inode, first_round)?;
            }
        }
        let now = Instant::now();
        for t in &mut self.tracked {
            if !seen.contains(&t.inode) && t.detached_since.is_none() {
                t.detached_since = Some(now);
            }
        }
        Ok(())
    }

    fn open(
        &mut self,
        source: usize,
        path: PathBuf,
        inode: (u64, u64),
        first_round: bool,
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
        let mut head = vec![0u8; FINGERPRINT_BYTES + 1];
        let n = file.read_at(&mut head, 0).map_err(io_err(&path))?;
        head.truncate(n);
        let Some(fp) = fingerprint::of_head(&head, false) else {
            // No complete first line yet: try again next round.
            return Ok(());
        };
        if self.tracked.iter().any(|t| t.fingerprint == fp) {
            // A copy of a file we follow (copytruncate's rotated copy): its bytes are ours already.
            return Ok(());
        }
        let size = file.metadata().map_err(io_err(&path))?.len();
        let start = match self.checkpoints.get(fp) {
            Some(state) => state.offset.min(size),
            None if first_round && self.cfg.from == From::End => size,
            None => 0,
        };
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
            detached_since: None,
        });
        Ok(())
    }

    /// Read what file `i` has beyond its offset, up to the round's cap. Returns the bytes read.
    fn read_available(&mut self, i: usize) -> Result<usize, RoundError> {
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
            let chunk = Chunk {
                source: t.source,
                fingerprint: t.fingerprint,
                offset: t.offset,
                bytes: self.buf[..n].to_vec(),
                eof: false,
            };
            t.offset += n as u64;
            total += n;
            self.stats.chunks += 1;
            self.stats.bytes_read += n as u64;
            send(self.tx, Input::Chunk(chunk))?;
        }
        Ok(total)
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

    #[test]
    fn growth_and_rename_rotation_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
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
}
