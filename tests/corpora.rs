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

/// The incident classes `logwarden scan` opens on a file.
fn classes_raised(service: &str, path: &Path) -> std::collections::BTreeSet<String> {
    let out = run(logwarden()
        .args(["scan", "--json", "--source"])
        .arg(format!("{service}={}", path.display())));
    assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
    crate::support::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|c| c["kind"] == "opened" || c["kind"] == "reopened")
        .map(|c| c["incident"]["class"].as_str().unwrap().to_string())
        .collect()
}

/// What the corpora README says a correct pipeline raises on each file (and nothing else).
#[test]
fn each_corpus_file_raises_what_its_readme_says() {
    let Some(dir) = corpora() else {
        eprintln!("left out: no corpora folder");
        return;
    };
    let expected: &[(&str, &str, &[&str])] = &[
        ("loghub/OpenSSH/OpenSSH_2k.log", "sshd", &["security"]),
        ("loghub/Linux/Linux_2k.log", "host", &["security"]),
        (
            "loghub/Apache/Apache_2k.log",
            "apache",
            &["high-error-rate"],
        ),
        (
            "loghub/Zookeeper/Zookeeper_2k.log",
            "zookeeper",
            &["high-error-rate"],
        ),
        ("pgbadger/stderr/queryid.log", "postgres", &["slow-queries"]),
        (
            "pgbadger/stderr/tempfile_only.log",
            "postgres",
            &["slow-queries"],
        ),
        ("pgbadger/stderr/light.postgres.log", "postgres", &[]),
        (
            "pgbadger/stderr/postgresql_param_range.log",
            "postgres",
            &[],
        ),
        (
            "pgbadger/stderr/pg_rawcsv.log",
            "postgres",
            &["db-connection"],
        ),
        ("pgbadger/stderr/rds_head3000.log", "postgres", &[]),
        ("pgbadger/stderr/pg_vacuums_head1000.log", "postgres", &[]),
        ("pgbadger/jsonlog/pg_vacuums_head1000.json", "postgres", &[]),
        ("pgbadger/csvlog/anonymize.log", "postgres", &[]),
        ("pgbadger/syslog/pg-syslog_head5000.log", "postgres", &[]),
        ("pgbadger/syslog/logplex.log", "postgres", &["slow-queries"]),
        (
            "pgbadger/cloud/cloudsql.log",
            "postgres",
            &["db-connection"],
        ),
        ("pgbadger/cloud/cnpg.log", "postgres", &[]),
    ];
    for (file, service, classes) in expected {
        let got = classes_raised(service, &dir.join(file));
        let want: std::collections::BTreeSet<String> =
            classes.iter().map(|c| c.to_string()).collect();
        assert_eq!(got, want, "{file}");
    }
}
