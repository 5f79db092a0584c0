//! The demo, end to end through the binaries: every incident class raised live, linked to its
//! runbook procedure, none in the healthy baseline, and a backfill of the same files agreeing.

use std::collections::BTreeSet;
use std::path::Path;

use logwarden::demo::{DemoConfig, Timeline};
use logwarden::detect::Class;
use logwarden::event::Timestamp;
use logwarden::incident::Incident;
use logwarden::runbook::Runbook;

use crate::support::{backfill_demo, backfill_demo_sources, logwarden, run, stderr, stdout};

const START: &str = "2026-11-28T12:00:00Z";
const SEED: u64 = 7;

fn incidents(data_dir: &Path) -> Vec<Incident> {
    let out = run(logwarden()
        .args(["incidents", "--json", "--data-dir"])
        .arg(data_dir));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn demo_raises_every_class_outside_the_baseline_and_backfill_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let out = run(logwarden()
        .args([
            "demo",
            "--speed",
            "4000",
            "--seed",
            &SEED.to_string(),
            "--start",
            START,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&live));
    assert!(out.status.success(), "demo failed: {}", stderr(&out));
    // The demo serves the API and feed too (issue 7), here on a port of its own.
    assert!(
        stderr(&out).contains("serving http://127.0.0.1:"),
        "{}",
        stderr(&out)
    );
    let printed = stdout(&out);
    assert!(printed.contains("OPEN"), "{printed}");
    assert!(printed.contains("RESOLVED"), "{printed}");
    assert_eq!(
        printed.matches("loggrep --data-dir").count(),
        3,
        "{printed}"
    );

    let live_incidents = incidents(&live);
    let classes: BTreeSet<Class> = live_incidents.iter().map(|i| i.class).collect();
    let missing: Vec<Class> = Class::ALL
        .iter()
        .copied()
        .filter(|c| !classes.contains(c))
        .collect();
    assert!(missing.is_empty(), "classes never raised: {missing:?}");

    // Each incident links to a runbook procedure that exists, with its steps.
    let runbook = Runbook::parse(include_str!("../patterns/runbook.md"));
    for inc in &live_incidents {
        assert!(
            runbook
                .procedures
                .iter()
                .any(|p| p.title == inc.runbook.title),
            "{} links to an unknown procedure `{}`",
            inc.id,
            inc.runbook.title
        );
        assert!(!inc.runbook.steps.is_empty(), "{} has no steps", inc.id);
    }

    // `logwarden incident ID` shows the procedure as a checklist with commands, and the evidence.
    let db = live_incidents
        .iter()
        .find(|i| i.class == Class::DbConnection)
        .unwrap();
    let out = run(logwarden()
        .args(["incident", &db.id.0[..12], "--data-dir"])
        .arg(&live));
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("Database Connection Issues"), "{shown}");
    assert!(shown.contains("[ ] 1. Check database status"), "{shown}");
    assert!(
        shown.contains("$ docker-compose exec postgres pg_isready"),
        "{shown}"
    );
    assert!(shown.contains(&db.evidence[0].text), "{shown}");
    // Every incident is at least at level 1, whose contact the runbook's matrix names.
    assert!(db.escalation_level >= 1, "{db:?}");
    assert!(shown.contains("escalated to Level "), "{shown}");

    // No incident is raised in the healthy baseline: each one opens inside an episode. (A count
    // condition's first_seen may lie earlier: it is the first event of the window that met it.)
    let start: jiff::Timestamp = START.parse().unwrap();
    let timeline = Timeline::generate(&DemoConfig {
        seed: SEED,
        start: Timestamp::from_jiff(start),
    });
    for inc in &live_incidents {
        let in_episode = timeline
            .episodes
            .iter()
            .any(|e| e.start <= inc.opened_at && inc.opened_at <= e.end);
        assert!(
            in_episode,
            "{} ({}) opened at {} in the healthy baseline",
            inc.id, inc.class, inc.opened_at
        );
    }

    // Backfilling the demo's files into a fresh data dir gives the same incidents.
    let back = dir.path().join("back");
    backfill_demo(&back, &live.join("logs"));
    let key = |i: &Incident| (i.id.clone(), i.class, i.first_seen, i.last_seen, i.state);
    let live_keys: BTreeSet<_> = live_incidents.iter().map(key).collect();
    let back_incidents = incidents(&back);
    let back_keys: BTreeSet<_> = back_incidents.iter().map(key).collect();
    assert_eq!(live_keys, back_keys);

    // The same files named in the reverse order: identical incidents, to the last field.
    let reversed = dir.path().join("back-reversed");
    backfill_demo_sources(&reversed, &live.join("logs"), true);
    let by_id = |mut v: Vec<Incident>| {
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    };
    assert_eq!(by_id(incidents(&reversed)), by_id(back_incidents));
}
