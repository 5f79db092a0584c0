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

/// Writes one mixed file (every format interleaved in time order) of roughly `size_bytes`, by
/// playing timelines of seeds `seed`, `seed + 1`, … one after the other. For benchmarks.
pub fn generate_to(out: &Path, size_bytes: u64, seed: u64) -> io::Result<WriteStats> {
    let mut file = BufWriter::with_capacity(1 << 20, File::create(out)?);
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
            stats.add(line, &mut buf);
            file.write_all(&buf)?;
            if stats.bytes >= size_bytes {
                break;
            }
        }
        cfg = DemoConfig {
            seed: cfg.seed.wrapping_add(1),
            start: tl.end,
        };
    }
    file.flush()?;
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.log");
        let one = Timeline::generate(&DemoConfig::default());
        let one_bytes: u64 = one.lines.iter().map(|l| l.text.len() as u64 + 1).sum();
        let want = one_bytes + one_bytes / 2;
        let stats = generate_to(&path, want, 42).unwrap();
        let written = fs::read(&path).unwrap();
        assert_eq!(stats.bytes, written.len() as u64);
        assert!(stats.bytes >= want && stats.bytes < want + 10_000);
        assert!(written.ends_with(b"\n"));
        // The second timeline starts where the first ended.
        let text = String::from_utf8(written).unwrap();
        assert!(text.contains("\"time\":"));
        assert_eq!(
            &text.as_bytes()[..one_bytes as usize],
            {
                let mut first = Vec::new();
                for l in &one.lines {
                    first.extend_from_slice(l.text.as_bytes());
                    first.push(b'\n');
                }
                first
            }
            .as_slice()
        );
    }
}
