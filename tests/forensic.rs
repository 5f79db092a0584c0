//! Issue 6, forensic slice: `loggrep --incident` (timeline, marks, export) and `loggrep --follow`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;

use logwarden::event::Timestamp;

use crate::support::{
    loggrep, loggrep_count, logwarden, run, stderr, stdout, terminate, wait_until,
};

/// The backfilled demo shared with the other read-only tests.
fn indexed() -> &'static Path {
    crate::support::demo_index()
}

/// The demo's "too many clients" incident, as `logwarden incidents --json` prints it.
fn too_many_clients() -> serde_json::Value {
    let out = run(logwarden()
        .arg("incidents")
        .arg("--data-dir")
        .arg(indexed())
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|i| i["rule"] == "pg-too-many-clients")
        .expect("the demo raises a too-many-clients incident")
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn timeline_json(id: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    timeline_json_in(indexed(), id, extra)
}

/// `loggrep --incident ID --json --limit 0` over the index in `data`, one value per event.
fn timeline_json_in(data: &Path, id: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(data)
        .args(["--incident", id, "--json", "--limit", "0"])
        .args(extra));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The timeline runs from the lead before the first event to the resolution, holds every service
/// in event-time order, and marks the evidence and the rule's other matches in the incident's
/// group during its lifetime, and nothing else.
#[test]
fn an_incident_timeline_covers_every_service_from_the_lead_to_the_resolution() {
    let inc = too_many_clients();
    let id = inc["id"].as_str().unwrap();
    let prefix = &id[..10]; // `inc-` and 6 hex digits: a unique prefix is enough
    let events = timeline_json(prefix, &["--lead", "2m"]);

    let from = ms(inc["first_seen"].as_str().unwrap()) - 120_000;
    let to = ms(inc["resolved_at"].as_str().unwrap());
    let times: Vec<i64> = events
        .iter()
        .map(|e| ms(e["ts"].as_str().unwrap()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order");
    assert!(times.iter().all(|&t| t >= from && t <= to));
    let services: BTreeSet<&str> = events
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert!(services.len() >= 3, "every service: {services:?}");

    let marked: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["marked"] == true)
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for ev in inc["evidence"].as_array().unwrap() {
        let e = &ev["event"];
        let ev_id = format!(
            "{:016x}:{}",
            e["fingerprint"].as_u64().unwrap(),
            e["offset"].as_u64().unwrap()
        );
        assert!(
            marked.contains(ev_id.as_str()),
            "evidence {ev_id} not marked"
        );
    }
    // The incident counted `count` matches; all of them lie in the window and are marked.
    assert_eq!(marked.len() as u64, inc["count"].as_u64().unwrap());
    for e in events.iter().filter(|e| e["marked"] == true) {
        assert_eq!(e["service"], "postgres");
        let raw = e["raw"].as_str().unwrap();
        assert!(
            raw.contains("too many clients") || raw.contains("connection slots are reserved"),
            "{raw}"
        );
    }

    // The terminal view: the incident, its runbook and evidence, then the `>`-marked timeline.
    let out = run(loggrep().arg("--data-dir").arg(indexed()).args([
        "--incident",
        prefix,
        "--lead",
        "2m",
        "--limit",
        "0",
        "--color",
        "never",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for part in [
        inc["title"].as_str().unwrap(),
        "class db-connection",
        "severity critical",
        "Runbook: Database Connection Issues",
        "Evidence:",
        "Timeline:",
    ] {
        assert!(text.contains(part), "no `{part}` in:\n{text}");
    }
    let gutters = text.lines().filter(|l| l.starts_with("> ")).count();
    assert_eq!(gutters, marked.len());
    let lines = text.lines().filter(|l| l.starts_with("  2026-")).count();
    assert!(lines + gutters >= events.len());
}

/// A query narrows the timeline; an unknown id is an error (exit 2) that says what to do.
#[test]
fn a_query_narrows_the_timeline_and_an_unknown_incident_exits_2() {
    let inc = too_many_clients();
    let id = inc["id"].as_str().unwrap();
    let events = timeline_json(id, &["--service", "postgres", "FATAL"]);
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["service"] == "postgres" && e["raw"].as_str().unwrap().contains("FATAL"))
    );

    // --limit keeps the start of the timeline (the lead-up), and says it cut.
    let all = timeline_json(id, &[]);
    let out = run(loggrep().arg("--data-dir").arg(indexed()).args([
        "--incident",
        id,
        "--json",
        "--limit",
        "5",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(first, all[..5]);
    assert!(
        stderr(&out).contains(&format!("first 5 of the timeline's {} events", all.len())),
        "{}",
        stderr(&out)
    );

    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .args(["--incident", "inc-ffffffffffffffff"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no incident `inc-ffffffffffffffff`"));
    assert!(stdout(&out).is_empty());
}

/// `--export DIR` writes the whole timeline as `--json` prints it (with `marked`) and the
/// incident with its procedure, steps and commands.
#[test]
fn export_writes_the_timeline_and_the_incident_for_a_post_mortem() {
    let inc = too_many_clients();
    let id = inc["id"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("pm").join("db");
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .args(["--incident", id, "--export"])
        .arg(&export));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let written = std::fs::read_to_string(export.join("timeline.ndjson")).unwrap();
    let printed = timeline_json(id, &[]);
    let exported: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, printed, "the export is the --json timeline");
    assert!(exported.len() > 1000, "no --limit cut: {}", exported.len());
    let keys: Vec<&String> = exported[0].as_object().unwrap().keys().collect();
    for key in [
        "ts", "service", "level", "message", "raw", "fields", "flags", "id", "marked",
    ] {
        assert!(keys.iter().any(|k| *k == key), "no {key} in {keys:?}");
    }

    let incident: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("incident.json")).unwrap())
            .unwrap();
    assert_eq!(
        incident, inc,
        "the incident as `logwarden incidents --json` has it"
    );
    let steps = incident["runbook"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(
        steps
            .iter()
            .any(|s| !s["commands"].as_array().unwrap().is_empty())
    );
}

/// The marks are the incident groups indexing stored, so they follow the rules the run used: a
/// rule from a `--patterns` folder (not in the embedded pack) opens one incident per address, and
/// each incident's timeline marks every match of its own address (more than its capped evidence)
/// and none of the other address's, which lie in the same window.
#[test]
fn marks_are_the_events_indexing_sent_to_the_incident_group() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("gate.toml"),
        r#"
[[rule]]
id = "test-gate-fault"
class = "security"
severity = "warning"
title = "Gate faults from one address"
literals = ["gatefault"]
group_by = ["ip"]
resolve_after = "1h"
runbook = ["log-analysis"]
examples = ['{"level":40,"time":1796220000000,"ip":"192.0.2.1","msg":"gatefault"}']
"#,
    )
    .unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let line = |i: u64, ip: &str, msg: &str| {
        format!(
            "{{\"level\":40,\"time\":{},\"ip\":\"{ip}\",\"msg\":\"{msg} {i}\"}}",
            1_796_220_000_000u64 + i * 1000
        )
    };
    let addresses = ["192.0.2.1", "192.0.2.2"];
    let mut lines = Vec::new();
    for i in 0..30u64 {
        for (k, ip) in addresses.iter().enumerate() {
            lines.push(line(2 * i + k as u64, ip, "gatefault"));
        }
        lines.push(line(2 * i, addresses[0], "unrelated"));
    }
    append(&log, &lines);
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&data)
        .arg("--patterns")
        .arg(&rules)
        .arg("--source")
        .arg(format!("app:pino={}", log.display())));
    assert!(out.status.success(), "{}", stderr(&out));

    let incidents = logwarden::query::incidents::load(&data).unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    for inc in &incidents {
        assert_eq!(inc.rule, "test-gate-fault");
        let own = addresses
            .iter()
            .find(|ip| inc.group.ends_with(&format!("ip={ip}")))
            .unwrap_or_else(|| panic!("group {}", inc.group));
        assert_eq!(inc.count, 30);
        assert!(
            (inc.evidence.len() as u64) < inc.count,
            "evidence is capped"
        );

        let events = timeline_json_in(&data, &inc.id.0, &[]);
        let ip_of = |e: &serde_json::Value| e["fields"]["ip"].as_str().unwrap().to_string();
        let marked: Vec<&serde_json::Value> =
            events.iter().filter(|e| e["marked"] == true).collect();
        assert_eq!(
            marked.len(),
            30,
            "every match of {own}, not only the evidence"
        );
        for e in &marked {
            assert_eq!(ip_of(e), *own);
            assert!(e["message"].as_str().unwrap().starts_with("gatefault "));
        }
        let others = events
            .iter()
            .filter(|e| e["marked"] == false)
            .filter(|e| {
                ip_of(e) != *own && e["message"].as_str().unwrap().starts_with("gatefault ")
            })
            .count();
        assert!(
            others > 0,
            "the other address's matches are in the window, unmarked"
        );
        let unrelated = events
            .iter()
            .filter(|e| e["message"].as_str().unwrap().starts_with("unrelated "))
            .collect::<Vec<_>>();
        assert!(!unrelated.is_empty() && unrelated.iter().all(|e| e["marked"] == false));
    }
}

/// The `message` of each NDJSON line the follower printed.
fn messages(printed: &Mutex<String>) -> Vec<String> {
    printed
        .lock()
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_string()
        })
        .collect()
}

fn append(log: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn pino(i: u64, msg: &str) -> String {
    format!(
        "{{\"level\":30,\"time\":{},\"msg\":\"{msg} {i}\"}}",
        1_796_220_000_000u64 + i * 1000
    )
}

fn start_run(data: &Path, log: &Path) -> Child {
    crate::support::run_following(data, log)
}

/// `loggrep --follow` prints what `logwarden run` indexes after it started, matching lines only,
/// each once, and exits 0 on SIGTERM.
#[test]
fn follow_prints_each_new_match_once_as_run_indexes_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    append(&log, &[pino(0, "followmark old"), pino(1, "other")]);
    let runner = start_run(&data, &log);
    assert!(wait_until(30, || loggrep_count(&data, "") == 2));

    // --since between the old line and the new ones: whether a new line is indexed before the
    // follower takes its marks (then it comes from the --since search) or after (then from the
    // follow), it prints once, and the old line never.
    let since = Timestamp::from_secs(1_796_220_005).rfc3339();
    let mut follower = loggrep()
        .arg("--data-dir")
        .arg(&data)
        .args(["--follow", "--json", "--since", &since, "followmark"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = crate::support::collect(follower.stdout.take().unwrap());
    let msgs = || messages(&printed);
    let mut expected = Vec::new();
    for round in 0..3u64 {
        let base = 10 + round * 10;
        append(
            &log,
            &[
                pino(base, "followmark new"),
                pino(base + 1, "unrelated"),
                pino(base + 2, "followmark new"),
            ],
        );
        expected.push(format!("followmark new {base}"));
        expected.push(format!("followmark new {}", base + 2));
        assert!(
            wait_until(30, || msgs().len() >= expected.len()),
            "follower printed {:?}, expected {expected:?}",
            msgs()
        );
    }
    // Nothing more arrives, and nothing came twice or from before the follow.
    assert!(wait_until(30, || loggrep_count(&data, "") == 11));
    #[allow(clippy::disallowed_methods)] // one more poll of the follower
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert_eq!(msgs(), expected);

    terminate(runner);
    terminate(follower);
    assert_eq!(msgs(), expected);
}

/// `loggrep --follow` started before the index exists waits for it, as `tail -F` waits for a
/// file: one note on stderr, then it prints what `logwarden run` indexes once it starts. SIGTERM
/// ends it, also while it waits (exit 1: nothing matched). Without `--follow` a missing index is
/// still an error (exit 2).
#[test]
fn follow_waits_for_the_index_to_appear() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let note = format!(
        "loggrep: waiting for the index at {} to appear…",
        data.join("index").display()
    );

    let out = run(loggrep().arg("--data-dir").arg(&data).arg("followmark"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no index in") && stderr(&out).contains("backfill first"),
        "{}",
        stderr(&out)
    );

    let mut follower = loggrep()
        .arg("--data-dir")
        .arg(&data)
        .args(["--follow", "--json", "followmark"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = crate::support::collect(follower.stdout.take().unwrap());
    let notes = crate::support::collect(follower.stderr.take().unwrap());
    assert!(
        wait_until(30, || notes.lock().unwrap().contains(&note)),
        "stderr: {}",
        notes.lock().unwrap()
    );
    assert!(follower.try_wait().unwrap().is_none(), "it waits");

    append(
        &log,
        &[
            pino(0, "followmark first"),
            pino(1, "other"),
            pino(2, "followmark second"),
        ],
    );
    let runner = start_run(&data, &log);
    let expected = ["followmark first 0", "followmark second 2"];
    assert!(
        wait_until(30, || messages(&printed) == expected),
        "{:?}",
        messages(&printed)
    );
    append(&log, &[pino(3, "followmark third")]);
    let expected = [
        "followmark first 0",
        "followmark second 2",
        "followmark third 3",
    ];
    assert!(
        wait_until(30, || messages(&printed) == expected),
        "{:?}",
        messages(&printed)
    );
    terminate(runner);
    terminate(follower);
    assert_eq!(messages(&printed), expected);
    assert_eq!(notes.lock().unwrap().as_str(), format!("{note}\n"));

    // Stopped while it waits.
    let elsewhere = dir.path().join("elsewhere");
    let mut waiting = loggrep()
        .arg("--data-dir")
        .arg(&elsewhere)
        .args(["--follow", "x"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let notes = crate::support::collect(waiting.stderr.take().unwrap());
    assert!(wait_until(30, || notes
        .lock()
        .unwrap()
        .contains("waiting for the index")));
    let out = run(std::process::Command::new("kill")
        .arg("-TERM")
        .arg(waiting.id().to_string()));
    assert!(out.status.success());
    assert_eq!(waiting.wait().unwrap().code(), Some(1));
}

/// The follower ends by itself when the index is removed.
#[test]
fn follow_ends_when_the_index_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    append(&log, &[pino(0, "x")]);
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&data)
        .arg("--source")
        .arg(format!("app:pino={}", log.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut follower = loggrep()
        .arg("--data-dir")
        .arg(&data)
        .args(["--follow", "x"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    #[allow(clippy::disallowed_methods)] // let it start polling
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(follower.try_wait().unwrap().is_none());
    std::fs::remove_dir_all(data.join("index")).unwrap();
    assert!(wait_until(30, || follower.try_wait().unwrap().is_some()));
}

fn index_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("index"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// `logwarden retention --older-than 730d` deletes the old events, keeps the rest, shrinks the
/// index directory, and a later backfill of the same file indexes nothing twice (the checkpoint
/// survived the retention commit).
#[test]
fn retention_deletes_old_events_and_reclaims_their_space() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let day = 86_400_000i64;
    let filler = "y".repeat(300);
    let mut lines = Vec::new();
    for i in 0..4000i64 {
        let t = now_ms - 1000 * day + i;
        lines.push(format!(
            "{{\"level\":30,\"time\":{t},\"msg\":\"ancient {i} {filler}\"}}"
        ));
    }
    for i in 0..400i64 {
        let t = now_ms - day + i;
        lines.push(format!(
            "{{\"level\":30,\"time\":{t},\"msg\":\"recent {i} {filler}\"}}"
        ));
    }
    append(&log, &lines);
    let backfill = || {
        let out = run(logwarden()
            .arg("backfill")
            .arg("--data-dir")
            .arg(&data)
            .arg("--source")
            .arg(format!("app:pino={}", log.display())));
        assert!(out.status.success(), "{}", stderr(&out));
    };
    backfill();
    assert_eq!(loggrep_count(&data, "ancient"), 4000);
    let before = index_bytes(&data);

    let out = run(logwarden()
        .arg("retention")
        .arg("--data-dir")
        .arg(&data)
        .args(["--older-than", "730d"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deleted 4000 events"),
        "{}",
        stdout(&out)
    );
    let after = index_bytes(&data);
    assert!(after * 3 < before, "index {before} B -> {after} B");
    assert_eq!(loggrep_count(&data, "ancient"), 0);
    assert_eq!(loggrep_count(&data, "recent"), 400);

    backfill();
    assert_eq!(loggrep_count(&data, "recent"), 400);
    assert_eq!(loggrep_count(&data, "ancient"), 0);

    let out = run(logwarden()
        .arg("retention")
        .arg("--data-dir")
        .arg(dir.path().join("nowhere"))
        .args(["--older-than", "730d"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no index"), "{}", stderr(&out));
}

/// A profile's `[retention]` makes `logwarden run` delete old events as it goes (here every
/// second), keep the recent ones, and resume after a restart without indexing anything twice.
#[test]
fn run_applies_the_profile_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        format!(
            "[[source]]\nservice = \"app\"\nformat = \"pino\"\npath = \"{}\"\n\n\
             [retention]\nolder_than = \"730d\"\nevery = \"1s\"\n",
            log.display()
        ),
    )
    .unwrap();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let day = 86_400_000i64;
    let line = |t: i64, msg: &str| format!("{{\"level\":30,\"time\":{t},\"msg\":\"{msg}\"}}");
    let mut lines: Vec<String> = (0..50)
        .map(|i| line(now_ms - 1000 * day + i, "ancient"))
        .collect();
    lines.extend((0..20).map(|i| line(now_ms - day + i, "recent")));
    append(&log, &lines);

    let start = || {
        logwarden()
            .arg("run")
            .args(["--listen", "off"])
            .arg("--data-dir")
            .arg(&data)
            .arg("--profile")
            .arg(&profile)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let runner = start();
    assert!(wait_until(30, || loggrep_count(&data, "recent") == 20
        && loggrep_count(&data, "ancient") == 0));
    terminate(runner);

    let runner = start();
    append(
        &log,
        &[line(now_ms, "recent"), line(now_ms - 900 * day, "ancient")],
    );
    assert!(wait_until(30, || loggrep_count(&data, "recent") == 21
        && loggrep_count(&data, "ancient") == 0));
    terminate(runner);
    assert_eq!(loggrep_count(&data, "recent"), 21);
}
