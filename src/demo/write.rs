//! Writing a [`Timeline`] into `<dir>/{app,worker,postgresql,redis,kern}.log`: all at once, or live.
//!
//! Live writing paces lines by event time: after `w` seconds of wall time every line up to
//! `start + w × speed` has been written. Lines go out in bursts (one `write_all` per file per burst,
//! whole lines only, then a flush), so a tailer never waits on a half-written entry for long.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{DemoConfig, DemoFile, Line, Timeline};
use crate::event::Timestamp;

/// Wall time between two live bursts.
const BURST: Duration = Duration::from_millis(50);

/// What was written: physical lines (newlines) and bytes, over every file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub lines: u64,
    pub bytes: u64,
}

impl WriteStats {
    fn add(&mut self, line: &Line, buf: &mut Vec<u8>) {
        buf.extend_from_slice(line.text.as_bytes());
        buf.push(b'\n');
        self.lines += 1 + line.text.bytes().filter(|b| *b == b'\n').count() as u64;
        self.bytes += line.text.len() as u64 + 1;
    }
}

/// Creates `dir` and the five files, empty.
fn create_files(dir: &Path) -> io::Result<Vec<File>> {
    fs::create_dir_all(dir)?;
    DemoFile::ALL
        .iter()
        .map(|f| File::create(dir.join(f.file_name())))
        .collect()
}

/// Writes the whole timeline into `dir` at once (tests, backfill), replacing the files.
pub fn write_all(dir: &Path, tl: &Timeline) -> io::Result<WriteStats> {
    let mut files: Vec<BufWriter<File>> = create_files(dir)?
        .into_iter()
        .map(|f| BufWriter::with_capacity(1 << 16, f))
        .collect();
    let mut stats = WriteStats::default();
    let mut buf = Vec::with_capacity(4096);
    for line in &tl.lines {
        buf.clear();
        stats.add(line, &mut buf);
        files[line.file.index()].write_all(&buf)?;
    }
    for f in &mut files {
        f.flush()?;
    }
    Ok(stats)
}

/// Plays the timeline into `dir` with event time running `speed`× faster than the wall clock,
/// replacing the files. Calls `on_progress` with the event time reached after each burst; returns
/// early (files consistent, whole lines only) once `stop` is set.
pub fn write_live(
    dir: &Path,
    tl: &Timeline,
    speed: f64,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(Timestamp),
) -> io::Result<WriteStats> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("demo speed must be a positive number, not {speed}"),
        ));
    }
    let mut files = create_files(dir)?;
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); files.len()];
    let mut stats = WriteStats::default();
    let wall_start = Instant::now();
    let mut next = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let elapsed_us = wall_start.elapsed().as_secs_f64() * 1e6 * speed;
        // `as` saturates: a huge speed reaches the end at once.
        let reached = Timestamp(tl.start.0.saturating_add(elapsed_us as i64)).min(tl.end);
        while let Some(line) = tl.lines.get(next).filter(|l| l.ts <= reached) {
            stats.add(line, &mut bufs[line.file.index()]);
            next += 1;
        }
        for (file, buf) in files.iter_mut().zip(&mut bufs) {
            if !buf.is_empty() {
                file.write_all(buf)?;
                file.flush()?;
                buf.clear();
            }
        }
        on_progress(reached);
        if next >= tl.lines.len() && reached >= tl.end {
            break;
        }
        #[allow(clippy::disallowed_methods)] // pacing the simulator
        std::thread::sleep(BURST);
    }
    Ok(stats)
}

/// How `demo --generate` lays the stack's logs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One file as `docker-compose logs` prints it: every physical line prefixed with its
    /// container's name padded to one width and ` | ` (the kernel's lines under `kernel`, as a merged
    /// `journalctl -k` would add them), all services interleaved in time order.
    #[default]
    Compose,
    /// A directory with the demo's five files (`app.log`, `worker.log`, `postgresql.log`,
    /// `redis.log`, `kern.log`), each in its own format.
    Split,
}

/// Writes roughly `size_bytes` of the stack's logs to `out` (a file, or a directory for
/// [`Layout::Split`]) by playing the timelines of seeds `seed`, `seed + 1`, … one after the other,
/// each starting where the previous ended. Deterministic: the same arguments give the same bytes.
/// For benchmarks and for sizing machines.
pub fn generate_to(
    out: &Path,
    size_bytes: u64,
    seed: u64,
    layout: Layout,
) -> io::Result<WriteStats> {
    let mut files: Vec<BufWriter<File>> = match layout {
        Layout::Compose => vec![File::create(out)?],
        Layout::Split => create_files(out)?,
    }
    .into_iter()
    .map(|f| BufWriter::with_capacity(1 << 20, f))
    .collect();
    let width = DemoFile::ALL
        .iter()
        .map(|f| f.container().len())
        .max()
        .unwrap_or(0);
    let mut stats = WriteStats::default();
    let mut buf = Vec::with_capacity(4096);
    let mut cfg = DemoConfig {
        seed,
        ..DemoConfig::default()
    };
    while stats.bytes < size_bytes {
        let tl = Timeline::generate(&cfg);
        for line in &tl.lines {
            buf.clear();
            let file = match layout {
                Layout::Compose => {
                    for physical in line.text.split('\n') {
                        let _ = write!(buf, "{:<width$} | ", line.file.container());
                        buf.extend_from_slice(physical.as_bytes());
                        buf.push(b'\n');
                        stats.lines += 1;
                    }
                    stats.bytes += buf.len() as u64;
                    0
                }
                Layout::Split => {
                    stats.add(line, &mut buf);
                    line.file.index()
                }
            };
            files[file].write_all(&buf)?;
            if stats.bytes >= size_bytes {
                break;
            }
        }
        cfg = DemoConfig {
            seed: cfg.seed.wrapping_add(1),
            start: tl.end,
        };
    }
    for f in &mut files {
        f.flush()?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(dir: &Path) -> Vec<Vec<u8>> {
        DemoFile::ALL
            .iter()
            .map(|f| fs::read(dir.join(f.file_name())).unwrap())
            .collect()
    }

    #[test]
    fn the_same_seed_writes_byte_identical_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let tl = Timeline::generate(&DemoConfig::default());
        let sa = write_all(a.path(), &tl).unwrap();
        let sb = write_all(b.path(), &Timeline::generate(&DemoConfig::default())).unwrap();
        assert_eq!(sa, sb);
        let files = read_all(a.path());
        assert_eq!(files, read_all(b.path()));
        let bytes: usize = files.iter().map(Vec::len).sum();
        assert_eq!(sa.bytes, bytes as u64);
        let newlines = files.iter().flatten().filter(|b| **b == b'\n').count();
        assert_eq!(sa.lines, newlines as u64);
        assert!(
            sa.lines > tl.lines.len() as u64,
            "multi-line entries count each line"
        );
    }

    #[test]
    fn each_file_is_in_time_order() {
        let tl = Timeline::generate(&DemoConfig::default());
        for file in DemoFile::ALL {
            let times: Vec<_> = tl
                .lines
                .iter()
                .filter(|l| l.file == file)
                .map(|l| l.ts)
                .collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{file:?}");
        }
    }

    #[test]
    fn live_writing_at_a_huge_speed_writes_what_write_all_writes() {
        let tl = Timeline::generate(&DemoConfig::default());
        let all = tempfile::tempdir().unwrap();
        let live = tempfile::tempdir().unwrap();
        let expected = write_all(all.path(), &tl).unwrap();
        let stop = AtomicBool::new(false);
        let mut reached = Vec::new();
        let got = write_live(live.path(), &tl, 1e12, &stop, &mut |t| reached.push(t)).unwrap();
        assert_eq!(got, expected);
        assert_eq!(read_all(live.path()), read_all(all.path()));
        assert_eq!(reached.last(), Some(&tl.end));
    }

    #[test]
    fn live_writing_stops_when_asked_and_leaves_the_files() {
        let tl = Timeline::generate(&DemoConfig::default());
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(true);
        let got = write_live(dir.path(), &tl, 1.0, &stop, &mut |_| {}).unwrap();
        assert_eq!(got, WriteStats::default());
        assert!(read_all(dir.path()).iter().all(Vec::is_empty));
        assert!(write_live(dir.path(), &tl, 0.0, &stop, &mut |_| {}).is_err());
    }

    #[test]
    fn generate_to_writes_about_the_size_asked_across_timelines() {
        let split = tempfile::tempdir().unwrap();
        let one = Timeline::generate(&DemoConfig::default());
        let one_bytes: u64 = one.lines.iter().map(|l| l.text.len() as u64 + 1).sum();
        let want = one_bytes + one_bytes / 2;
        let stats = generate_to(split.path(), want, 42, Layout::Split).unwrap();
        let files = read_all(split.path());
        let written: usize = files.iter().map(Vec::len).sum();
        assert_eq!(stats.bytes, written as u64);
        assert!(stats.bytes >= want && stats.bytes < want + 10_000);
        assert!(files.iter().all(|f| f.ends_with(b"\n")));
        // The first timeline is written whole, and the second goes on after it.
        let first = tempfile::tempdir().unwrap();
        write_all(first.path(), &one).unwrap();
        for (whole, head) in files.iter().zip(read_all(first.path())) {
            assert!(whole.starts_with(&head));
        }
        assert!(files[0].len() > read_all(first.path())[0].len());
        // The same seed, the same bytes.
        let again = tempfile::tempdir().unwrap();
        generate_to(again.path(), want, 42, Layout::Split).unwrap();
        assert_eq!(read_all(again.path()), files);
    }

    #[test]
    fn the_compose_layout_is_the_split_files_interleaved_under_their_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let split = dir.path().join("split");
        let compose = dir.path().join("compose.log");
        let size = 3_000_000;
        generate_to(&split, size, 7, Layout::Split).unwrap();
        let stats = generate_to(&compose, size, 7, Layout::Compose).unwrap();
        let text = fs::read_to_string(&compose).unwrap();
        assert_eq!(stats.bytes, text.len() as u64);
        assert_eq!(stats.lines, text.lines().count() as u64);
        let mut per_container: Vec<String> = vec![String::new(); DemoFile::ALL.len()];
        for line in text.lines() {
            let (name, inner) = line.split_once(" | ").unwrap();
            let file = DemoFile::ALL
                .iter()
                .position(|f| f.container() == name.trim_end())
                .unwrap_or_else(|| panic!("unknown prefix in {line:?}"));
            per_container[file].push_str(inner);
            per_container[file].push('\n');
        }
        // The compose file stops at the size asked for counting its prefixes too, so it holds a
        // little less of each service than the split files: every service's text is a prefix.
        for (file, got) in DemoFile::ALL.iter().zip(&per_container) {
            let whole = fs::read_to_string(split.join(file.file_name())).unwrap();
            assert!(!got.is_empty(), "{file:?}");
            assert!(whole.starts_with(got.as_str()), "{file:?}");
        }
    }
}
