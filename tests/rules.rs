//! `logwarden rules check` against the project's runbook and the user's own.

use crate::support::{logwarden, repo, run, stderr, stdout};

#[test]
fn the_pack_covers_the_project_runbook() {
    let out = run(logwarden().args(["rules", "check"]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let table = stdout(&out);
    for procedure in [
        "Application Down",
        "Database Connection Issues",
        "High Memory Usage",
        "Email Delivery Issues",
        "Issue: Queue Backlog",
        "Issue: Slow Database Queries",
        "Issue: High CPU Usage",
        "Issue: Storage Issues",
        "Critical Alerts: Database Down",
        "Warning Alerts: High Latency",
    ] {
        assert!(
            table.contains(procedure),
            "{procedure} missing from\n{table}"
        );
    }
}

#[test]
fn the_pack_covers_the_users_runbook_too() {
    let seeds = repo().join("../shared/seeds");
    let Ok(entries) = std::fs::read_dir(&seeds) else {
        eprintln!("left out: no {} beside the checkout", seeds.display());
        return;
    };
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let out = run(logwarden().args(["rules", "check", "--runbook"]).arg(&path));
        assert!(
            out.status.success(),
            "{}: {}{}",
            path.display(),
            stdout(&out),
            stderr(&out)
        );
        checked += 1;
    }
    assert!(checked > 0);
}

#[test]
fn an_uncovered_procedure_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("runbook.md");
    let mut text = std::fs::read_to_string(repo().join("patterns/runbook.md")).unwrap();
    text = text.replace(
        "## Common Issues",
        "## Common Issues\n\n### Issue: Certificate Expiry\n\n**Symptoms:**\n- TLS errors\n\n**Diagnosis:**\n```bash\ncertbot certificates\n```\n",
    );
    std::fs::write(&runbook, text).unwrap();
    let out = run(logwarden()
        .args(["rules", "check", "--runbook"])
        .arg(&runbook));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("Certificate Expiry"),
        "{}",
        stdout(&out)
    );
}
