//! `logwarden run`: follows a growing file, stops cleanly on SIGTERM, resumes without duplicates.

use std::io::Write;
use std::process::{Child, Stdio};

use crate::support::{loggrep_count, logwarden, run, terminate, wait_until};

fn start(data: &std::path::Path, log: &std::path::Path) -> Child {
    crate::support::run_following(data, log)
}

fn append(log: &std::path::Path, from: u32, to: u32) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for i in from..to {
        writeln!(
            f,
            "{{\"level\":30,\"time\":{},\"msg\":\"livemarker number {i}\"}}",
            1_796_220_000_000u64 + u64::from(i) * 1000
        )
        .unwrap();
    }
}

#[test]
fn run_follows_stops_on_sigterm_and_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    append(&log, 0, 3);

    let child = start(&data, &log);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 3));
    append(&log, 3, 5);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 5));
    terminate(child);

    // Lines written while it was down are picked up from the checkpoint, once.
    append(&log, 5, 7);
    let child = start(&data, &log);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 7));
    append(&log, 7, 8);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 8));
    terminate(child);
    assert_eq!(loggrep_count(&data, "livemarker"), 8);

    // `status` shows the file read to its end: offset = size, no lag.
    let out = run(logwarden().arg("status").arg("--data-dir").arg(&data));
    assert!(out.status.success());
    let text = crate::support::stdout(&out);
    let size = std::fs::metadata(&log).unwrap().len().to_string();
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.ends_with(&log.display().to_string()))
        .unwrap_or_else(|| panic!("no status row for the file:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "app");
    assert_eq!(
        (row[2], row[3], row[4], row[5]),
        (size.as_str(), size.as_str(), "0", "0"),
        "{text}"
    );
    for i in 0..8 {
        assert_eq!(
            loggrep_count(&data, &format!("\"livemarker number {i}\"")),
            1,
            "line {i} not indexed exactly once"
        );
    }
}

/// A last line without its newline is held for a while, then indexed flagged partial; when the
/// rest of the line arrives it is an event of its own and the first part is not indexed again.
#[test]
fn a_line_waiting_for_its_newline_is_emitted_partial_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    append(&log, 0, 2);
    let child = start(&data, &log);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 2));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(br#"{"level":30,"time":1796220099000,"msg":"halfwritten"#)
        .unwrap();
    assert!(wait_until(30, || loggrep_count(&data, "flags:partial") == 1));
    assert_eq!(loggrep_count(&data, "halfwritten"), 1);
    f.write_all(b" rest of it\"}\n").unwrap();
    assert!(wait_until(30, || loggrep_count(&data, "\"rest of it\"") == 1));
    terminate(child);
    assert_eq!(loggrep_count(&data, "halfwritten"), 1);
    assert_eq!(loggrep_count(&data, "flags:partial"), 1);
}

/// `--from end`: a file never seen before starts at its end; a restart resumes where it stopped.
#[test]
fn from_end_skips_what_was_there_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    append(&log, 0, 3);
    let from_end = || {
        logwarden()
            .arg("run")
            .args(["--listen", "off"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--from", "end", "--source"])
            .arg(format!("app:pino={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let child = from_end();
    // The file is recorded at its end as soon as it is opened.
    assert!(wait_until(30, || {
        let out = run(logwarden().arg("status").arg("--data-dir").arg(&data));
        crate::support::stdout(&out).contains(&log.display().to_string())
    }));
    append(&log, 3, 5);
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 2));
    terminate(child);
    append(&log, 5, 6);
    let child = from_end();
    assert!(wait_until(30, || loggrep_count(&data, "livemarker") == 3));
    terminate(child);
    for i in 0..3 {
        assert_eq!(
            loggrep_count(&data, &format!("\"livemarker number {i}\"")),
            0
        );
    }
}

/// Issue 5's lifecycle: an incident resolves after its rule's quiet period by the wall clock when
/// the log goes silent (no later line moves event time on), that resolution is logged once and
/// survives a restart without being made again, and the restarted run resolves a reopening too.
/// The rule's quiet period (2 s) and `--lateness 1s` keep the waits short.
#[test]
fn an_idle_source_resolves_its_incident_by_the_wall_clock_once_across_a_restart() {
    use logwarden::incident::{ChangeKind, Incident, State};
    use logwarden::store::incidents::IncidentLog;

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("quiet.toml"),
        r#"
[[rule]]
id = "test-quiet-fault"
class = "db-connection"
severity = "error"
title = "A fault that stops"
literals = ["quietfault"]
resolve_after = "2s"
runbook = ["database-connection-issues"]
examples = ['{"level":50,"time":1796220000000,"msg":"quietfault happened"}']
"#,
    )
    .unwrap();
    let fault = |log: &std::path::Path| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let now = logwarden::event::Timestamp::now().as_millis();
        writeln!(
            f,
            r#"{{"level":50,"time":{now},"msg":"quietfault happened"}}"#
        )
        .unwrap();
    };
    let start = || {
        logwarden()
            .arg("run")
            .args(["--listen", "off"])
            .arg("--data-dir")
            .arg(&data)
            .arg("--patterns")
            .arg(&rules)
            .args(["--lateness", "1s", "--source"])
            .arg(format!("app:pino={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let incident = || -> Option<Incident> {
        let out = run(logwarden()
            .args(["incidents", "--json", "--data-dir"])
            .arg(&data));
        assert!(out.status.success(), "{}", crate::support::stderr(&out));
        let text = crate::support::stdout(&out);
        let mut all: Vec<Incident> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(all.len() <= 1, "{text}");
        all.pop()
    };
    let state_is = |state: State, count: u64| {
        move || incident().is_some_and(|i| i.state == state && i.count == count)
    };

    fault(&log);
    let written = std::time::Instant::now();
    let child = start();
    assert!(wait_until(30, state_is(State::Open, 1)), "{:?}", incident());
    // Nothing more is written: only the wall clock can resolve it, after 2 s + 1 s of lateness.
    assert!(
        wait_until(30, state_is(State::Resolved, 1)),
        "{:?}",
        incident()
    );
    assert!(written.elapsed() >= std::time::Duration::from_secs(3));
    let first = incident().unwrap();
    assert_eq!(first.resolved_at, Some(first.last_seen.plus_secs(2)));
    terminate(child);

    // Restarted: the resolution is not made again; a new fault reopens it, and the silence
    // that follows resolves it again.
    let child = start();
    fault(&log);
    assert!(wait_until(30, state_is(State::Open, 2)), "{:?}", incident());
    assert!(
        wait_until(30, state_is(State::Resolved, 2)),
        "{:?}",
        incident()
    );
    terminate(child);
    let second = incident().unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.resolved_at, Some(second.last_seen.plus_secs(2)));

    let kinds: Vec<ChangeKind> = IncidentLog::read_all(&data.join("incidents.jsonl"))
        .unwrap()
        .iter()
        .map(|c| c.kind)
        .filter(|k| *k != ChangeKind::Updated && *k != ChangeKind::Escalated)
        .collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Opened,
            ChangeKind::Resolved,
            ChangeKind::Reopened,
            ChangeKind::Resolved
        ]
    );
}
