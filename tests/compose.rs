//! `docker-compose logs` output: the prefix names the service, and the rules written for `app`,
//! `worker` and `postgres` fire on the compose services `newsletter-app-1`, `worker-1`, `postgres-1`.

use std::fmt::Write as _;

use crate::support::{logwarden, run, stderr, stdout};

/// Five rounds of a compose stack in trouble: health checks failing on the app, PostgreSQL out of
/// connections, the worker unable to reach Redis.
fn compose_log() -> String {
    let mut log = String::new();
    for i in 0..5u64 {
        let ms = 1_796_220_000_000 + i * 1000; // 2026-12-02T14:00:00Z on
        writeln!(
            log,
            r#"newsletter-app-1  | {{"level":50,"time":{ms},"req":{{"method":"GET","url":"/api/health"}},"res":{{"statusCode":503}},"msg":"request completed"}}"#
        )
        .unwrap();
        writeln!(
            log,
            "postgres-1        | 2026-12-02 14:00:0{i}.500 UTC [43{i}] newsletter@newsletter FATAL:  sorry, too many clients already"
        )
        .unwrap();
        writeln!(
            log,
            r#"worker-1          | {{"level":50,"time":{},"err":{{"message":"connect ECONNREFUSED 172.18.0.4:6379","code":"ECONNREFUSED"}},"msg":"Redis connection error"}}"#,
            ms + 700
        )
        .unwrap();
    }
    log
}

/// The (class, first service) of every incident in a data dir, sorted, without repeats.
fn classes_and_services(data: &std::path::Path) -> Vec<(String, String)> {
    let out = run(logwarden()
        .arg("incidents")
        .arg("--data-dir")
        .arg(data)
        .arg("--json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut found: Vec<(String, String)> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["class"].as_str().unwrap().to_string(),
                v["services"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

fn expected() -> Vec<(String, String)> {
    [
        ("app-down", "newsletter-app"),
        ("db-connection", "postgres"),
        ("redis", "worker"),
    ]
    .iter()
    .map(|(c, s)| (c.to_string(), s.to_string()))
    .collect()
}

#[test]
fn compose_logs_raise_incidents_under_the_compose_service_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("compose.log");
    std::fs::write(&path, compose_log()).unwrap();
    let data = dir.path().join("data");
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&data)
        .arg("--source")
        .arg(format!("stack={}", path.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(classes_and_services(&data), expected());
}

/// `docker-compose logs -f | logwarden run --stdin --source auto`: the pipe is read to its end,
/// every line indexed under its compose service, the same incidents raised, exit 0.
#[test]
fn a_compose_pipe_on_stdin_is_ingested_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = logwarden()
        .arg("run")
        .args(["--listen", "off"])
        .arg("--stdin")
        .arg("--source")
        .arg("auto")
        .arg("--data-dir")
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(compose_log().as_bytes()).unwrap();
        // The last line without its newline: kept, flagged partial.
        pipe.write_all(b"newsletter-app-1  | the last words")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(classes_and_services(&data), expected());
    assert_eq!(
        crate::support::loggrep_count(&data, "service:newsletter-app"),
        6
    );
    assert_eq!(crate::support::loggrep_count(&data, "flags:partial"), 1);
    assert_eq!(crate::support::loggrep_count(&data, "service:postgres"), 5);
}

/// A second backfill of the same data dir continues the incidents of the first: the incident
/// opened by the first half of a file absorbs the matches of the appended second half.
#[test]
fn a_second_ingest_continues_the_incidents_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postgresql.log");
    let data = dir.path().join("data");
    let lines = |from: u32, to: u32| -> String {
        (from..to)
            .map(|i| {
                format!(
                    "2026-12-02 14:00:{i:02}.500 UTC [43{i}] newsletter@newsletter FATAL:  sorry, too many clients already\n"
                )
            })
            .collect()
    };
    let backfill = || {
        let out = run(logwarden()
            .arg("backfill")
            .arg("--data-dir")
            .arg(&data)
            .arg("--source")
            .arg(format!("postgres:postgres={}", path.display())));
        assert!(out.status.success(), "{}", stderr(&out));
    };
    std::fs::write(&path, lines(0, 10)).unwrap();
    backfill();
    let mut all = lines(0, 10);
    all.push_str(&lines(10, 20));
    std::fs::write(&path, all).unwrap();
    backfill();

    let out = run(logwarden()
        .arg("incidents")
        .arg("--data-dir")
        .arg(&data)
        .arg("--json"));
    let incidents: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["class"] == "db-connection")
        .collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["count"], 20);
    assert_eq!(incidents[0]["first_seen"], "2026-12-02T14:00:00.5Z");
    assert_eq!(incidents[0]["last_seen"], "2026-12-02T14:00:19.5Z");
}
