//! Backpressure: `logwarden run` far behind a large file reads only as fast as it indexes, so its
//! memory stays under the bound the README states, whatever the backlog.

use std::io::{BufWriter, Write};
use std::process::Stdio;

use crate::support::{logwarden, run, stdout, wait_until};

/// Resident set size of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_reader_far_behind_the_indexer_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // ~210 MB of pino lines: far more than the bound, so reading ahead would show.
    let mut w = BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..2_000_000u64 {
        writeln!(
            w,
            r#"{{"level":30,"time":{},"pid":23,"hostname":"newsletter-app-1","msg":"request completed {i}"}}"#,
            1_796_220_000_000 + i
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let size = std::fs::metadata(&log).unwrap().len();

    let data = dir.path().join("data");
    let mut child = logwarden()
        .arg("run")
        .args(["--listen", "off"])
        .arg("--data-dir")
        .arg(&data)
        .args(["--index-memory", "16"])
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let offset = || {
        let out = run(logwarden().arg("status").arg("--data-dir").arg(&data));
        stdout(&out)
            .lines()
            .find(|l| l.ends_with(&log.display().to_string()))
            .and_then(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Sample while it works through the first 20 MB of the backlog.
    let progressed = wait_until(120, || {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        offset() >= 20_000_000
    });
    peak = peak.max(rss_kib(pid).unwrap_or(0));
    let done = offset();
    let _ = child.kill();
    let _ = child.wait();
    assert!(progressed, "indexing made no progress (offset {done})");
    assert!(
        done < size,
        "the file was indexed before memory could be tested"
    );
    // The README's bound: 16 MiB of chunks in flight + the 16 MiB writer heap here + the rules,
    // parser and runtime; reading the 210 MB backlog ahead would blow through it.
    let bound_kib = 128 * 1024;
    assert!(
        peak < bound_kib,
        "peak RSS {peak} KiB over the {bound_kib} KiB bound with {} MB unread",
        (size - done) / 1_000_000
    );
}
