//! loggrep over the demo's index agrees with `grep -F` over the demo's files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use logwarden::demo::{DemoConfig, DemoFile, Timeline, write_all};
use logwarden::event::Timestamp;
use logwarden::parse::redact::redact_text;

use crate::support::{backfill_demo, loggrep, run, stderr, stdout};

/// One backfilled copy of the demo's files shared by the tests of this module.
fn indexed() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let tl = Timeline::generate(&DemoConfig {
            seed: 11,
            start: Timestamp::from_secs(1_796_212_800),
        });
        write_all(&logs, &tl).unwrap();
        backfill_demo(dir.path(), &logs);
        dir
    })
    .path()
}

/// Lines of the demo's files that `grep -F` (or `-iF`) finds, as a multiset, with their secrets
/// redacted as logwarden redacts them before indexing.
fn grep_lines(literal: &str, insensitive: bool) -> BTreeMap<String, usize> {
    let mut cmd = std::process::Command::new("grep");
    cmd.arg("-h")
        .arg(if insensitive { "-iF" } else { "-F" })
        .arg("--")
        .arg(literal);
    for f in DemoFile::ALL {
        cmd.arg(indexed().join("logs").join(f.file_name()));
    }
    let out = run(&mut cmd);
    let mut lines = BTreeMap::new();
    for l in stdout(&out).lines() {
        *lines.entry(redact_text(l).into_owned()).or_insert(0) += 1;
    }
    lines
}

/// The lines of loggrep's JSON hits that contain the literal (an event may span several lines).
fn loggrep_lines(literal: &str, insensitive: bool) -> (BTreeMap<String, usize>, Vec<String>) {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .args(["--json", "--limit", "1000000", "--", literal]));
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        stderr(&out)
    );
    let mut lines = BTreeMap::new();
    let mut times = Vec::new();
    let needle = literal.to_lowercase();
    for hit in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(hit).unwrap();
        times.push(v["ts"].as_str().unwrap().to_string());
        for l in v["raw"].as_str().unwrap().lines() {
            let found = if insensitive {
                l.to_lowercase().contains(&needle)
            } else {
                l.contains(literal)
            };
            if found {
                *lines.entry(l.to_string()).or_insert(0) += 1;
            }
        }
    }
    (lines, times)
}

fn count(literal: &str) -> u64 {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .args(["--count", "--", literal]));
    stdout(&out).trim().parse().unwrap()
}

#[test]
fn literal_queries_find_exactly_what_grep_finds() {
    for literal in [
        "too many clients",
        "ECONNREFUSED",
        "Job completed",
        "invalid page in block",
        "Out of memory: Killed process",
        "rate limit exceeded",
    ] {
        let want = grep_lines(literal, false);
        assert!(!want.is_empty(), "the demo has no `{literal}` line");
        let (got, times) = loggrep_lines(literal, false);
        assert_eq!(got, want, "loggrep and grep -F differ for `{literal}`");
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "hits for `{literal}` are not in time order");
        assert_eq!(
            count(literal),
            times.len() as u64,
            "--count for `{literal}`"
        );
    }
}

#[test]
fn lowercase_literals_match_any_case_like_grep_i() {
    for literal in ["out of memory", "econnrefused", "slow request"] {
        let want = grep_lines(literal, true);
        assert!(!want.is_empty(), "the demo has no `{literal}` line");
        let (got, _) = loggrep_lines(literal, true);
        assert_eq!(got, want, "loggrep and grep -iF differ for `{literal}`");
    }
}

#[test]
fn exit_status_says_whether_anything_matched() {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .arg("no-such-text-anywhere-4711"));
    assert_eq!(out.status.code(), Some(1));
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .arg("ECONNREFUSED"));
    assert_eq!(out.status.code(), Some(0));
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .arg("(unbalanced"));
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).is_empty());
}

#[test]
fn secrets_never_reach_the_index() {
    for secret in ["S3cretPw", "re_live_8f3k2j1h4g5f6d7s8a9"] {
        assert!(
            !grep_lines(secret, false).is_empty(),
            "the demo should write the secret `{secret}` so that redaction is tested"
        );
        let out = run(loggrep()
            .arg("--data-dir")
            .arg(indexed())
            .args(["--count", "--", secret]));
        assert_eq!(stdout(&out).trim(), "0", "`{secret}` reached the index");
    }
}
