//! An incident storm — 100,000 matching PostgreSQL lines in one minute — yields a handful of
//! incidents (one per rule and group), not thousands, each counting every line of its kind.

use std::collections::{BTreeMap, BTreeSet};

use logwarden::demo::{STORM_USERS, storm};
use logwarden::event::Timestamp;

use crate::support::{logwarden, run, stderr, stdout};

const LINES: usize = 100_000;

#[test]
fn an_incident_storm_folds_into_a_handful_of_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postgresql.log");
    std::fs::write(&log, storm(LINES, Timestamp::from_secs(1_796_220_000))).unwrap();
    let out = run(logwarden()
        .args(["scan", "--json", "--source"])
        .arg(format!("postgres:postgres={}", log.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut opened = BTreeSet::new();
    let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in stdout(&out).lines() {
        let change: serde_json::Value = serde_json::from_str(line).unwrap();
        let inc = change["incident"].clone();
        let id = inc["id"].as_str().unwrap().to_string();
        if change["kind"] == "opened" {
            opened.insert(id.clone());
        }
        last.insert(id, inc);
    }
    // One per rule (and per user for the failed logins), plus the rules that watch error levels.
    let per_rule = |rule: &str| last.values().filter(|i| i["rule"] == rule).count();
    assert_eq!(per_rule("pg-too-many-clients"), 1, "{opened:?}");
    assert_eq!(per_rule("pg-password-auth-failed"), STORM_USERS as usize);
    assert_eq!(per_rule("pg-slow-statements"), 1);
    assert_eq!(per_rule("pg-statement-timeout"), 1);
    assert!(
        opened.len() <= STORM_USERS as usize + 10,
        "{} incidents: {:#?}",
        opened.len(),
        last.values().map(|i| &i["group"]).collect::<Vec<_>>()
    );
    // Each counts every line of its kind.
    let count = |rule: &str| -> u64 {
        last.values()
            .filter(|i| i["rule"] == rule)
            .map(|i| i["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("pg-too-many-clients"), (LINES / 4) as u64);
    assert_eq!(count("pg-password-auth-failed"), (LINES / 4) as u64);
    assert_eq!(count("pg-statement-timeout"), (LINES / 4) as u64);
}
