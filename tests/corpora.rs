//! Every log file of the shared corpora ingests without an error or a lost line.

use std::path::{Path, PathBuf};

use logwarden::parse::{Format, parse_all};

use crate::support::{corpora, logwarden, run, stderr};

fn log_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            log_files(&path, out);
        } else {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let is_log = name.ends_with(".log") || name.ends_with(".json");
            if is_log {
                out.push(path);
            }
        }
    }
}

fn physical_lines(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

#[test]
fn every_corpus_file_parses_with_every_line_in_an_event() {
    let Some(dir) = corpora() else {
        eprintln!("left out: no corpora folder (tests/run says so too)");
        return;
    };
    let mut files = Vec::new();
    log_files(&dir, &mut files);
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let events = parse_all("corpus", Format::Auto, 1, &bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lines: u64 = events.iter().map(|e| u64::from(e.lines)).sum();
        assert_eq!(
            lines,
            physical_lines(&bytes),
            "{}: lines lost",
            path.display()
        );
    }
}

#[test]
fn the_corpora_backfill_in_one_run() {
    let Some(dir) = corpora() else {
        eprintln!("left out: no corpora folder");
        return;
    };
    let mut files = Vec::new();
    log_files(&dir, &mut files);
    let data = tempfile::tempdir().unwrap();
    let mut cmd = logwarden();
    cmd.arg("backfill").arg("--data-dir").arg(data.path());
    for (i, f) in files.iter().enumerate() {
        cmd.arg("--source")
            .arg(format!("corpus{i}={}", f.display()));
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
}
