//! `docker-compose logs` output: the prefix names the service, and the rules written for `app`,
//! `worker` and `postgres` fire on the compose services `newsletter-app-1`, `worker-1`, `postgres-1`.

use std::fmt::Write as _;

use crate::support::{logwarden, run, stderr, stdout};

#[test]
fn compose_logs_raise_incidents_under_the_compose_service_names() {
    let dir = tempfile::tempdir().unwrap();
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
    let path = dir.path().join("compose.log");
    std::fs::write(&path, log).unwrap();
    let data = dir.path().join("data");
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&data)
        .arg("--source")
        .arg(format!("stack={}", path.display())));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(logwarden()
        .arg("incidents")
        .arg("--data-dir")
        .arg(&data)
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
    assert_eq!(
        found,
        [
            ("app-down".to_string(), "newsletter-app".to_string()),
            ("db-connection".to_string(), "postgres".to_string()),
            ("redis".to_string(), "worker".to_string()),
        ]
    );
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
