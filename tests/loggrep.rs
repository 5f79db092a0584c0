//! loggrep over the demo's index agrees with `grep -F` and `rg` over the demo's files (and, in
//! `corpora`, over the shared corpora): literal, phrase, boolean and regex queries give the same
//! set of lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use logwarden::demo::DemoFile;
use logwarden::parse::redact::redact_text;
use logwarden::query::pattern::Pattern;
use logwarden::query::plan::Literal;

use crate::support::{loggrep, logwarden, run, stderr, stdout};

/// The backfilled demo shared with the other read-only tests.
fn indexed() -> &'static Path {
    crate::support::demo_index()
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

/// What `rg` is asked, and how its answers combine, for one query.
pub enum Rg {
    /// `rg -F -S`: a literal with smart case.
    Fixed(&'static str),
    /// `rg -S`: a regex with smart case.
    Regex(&'static str),
    And(Vec<Rg>),
    Or(Vec<Rg>),
    Not(Box<Rg>),
}

/// Lines `rg` finds in `files`, redacted as logwarden redacts them before indexing.
fn rg_lines(files: &[PathBuf], fixed: bool, pattern: &str) -> BTreeSet<String> {
    let mut cmd = std::process::Command::new("rg");
    cmd.args([
        "--no-config",
        "--no-filename",
        "--no-line-number",
        "--no-ignore",
        "--text",
        "--smart-case",
        // loggrep's lines carry no terminator: `$` matches before a `\r\n` too
        "--crlf",
    ]);
    if fixed {
        cmd.arg("--fixed-strings");
    }
    cmd.arg("-e").arg(pattern).args(files);
    let out = run(&mut cmd);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "rg {pattern}: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|l| redact_text(l).into_owned())
        .collect()
}

impl Rg {
    fn lines(&self, files: &[PathBuf], universe: &BTreeSet<String>) -> BTreeSet<String> {
        match self {
            Rg::Fixed(p) => rg_lines(files, true, p),
            Rg::Regex(p) => rg_lines(files, false, p),
            Rg::And(items) => {
                let mut sets = items.iter().map(|q| q.lines(files, universe));
                let first = sets.next().unwrap_or_default();
                sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
            }
            Rg::Or(items) => items
                .iter()
                .flat_map(|q| q.lines(files, universe))
                .collect(),
            Rg::Not(inner) => universe
                .difference(&inner.lines(files, universe))
                .cloned()
                .collect(),
        }
    }
}

/// The raw text of loggrep's single-line hits for `query` (every event when empty).
fn single_line_hits(data_dir: &Path, query: &str) -> BTreeSet<String> {
    hits(data_dir, query)
        .into_iter()
        .filter(|raw| !raw.contains('\n'))
        .collect()
}

/// The raw text of loggrep's hits for `query`.
fn hits(data_dir: &Path, query: &str) -> Vec<String> {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--json", "--limit", "0", "--color", "never", "--", query]));
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{query}: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|hit| {
            let v: serde_json::Value = serde_json::from_str(hit).unwrap();
            v["raw"].as_str().unwrap().to_string()
        })
        .collect()
}

/// For each (query, rg) case: the single-line events loggrep finds are exactly the lines `rg`
/// finds among the single-line events of the index (a line of a multi-line event is left out on
/// both sides). Cases `rg` answers with no line at all are reported, so that a test cannot pass
/// by finding nothing.
pub fn agree_with_rg(data_dir: &Path, files: &[PathBuf], cases: &[(&str, Rg)]) {
    let universe = single_line_hits(data_dir, "");
    assert!(!universe.is_empty(), "the index holds no single-line event");
    for (query, rg) in cases {
        let want: BTreeSet<String> = rg
            .lines(files, &universe)
            .intersection(&universe)
            .cloned()
            .collect();
        assert!(
            !want.is_empty(),
            "rg finds nothing for `{query}`: pick another case"
        );
        let got = single_line_hits(data_dir, query);
        let missing: Vec<_> = want.difference(&got).take(3).collect();
        let extra: Vec<_> = got.difference(&want).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "loggrep `{query}` and rg differ: {} lines only rg finds, e.g. {missing:?}; {} only \
             loggrep finds, e.g. {extra:?}",
            want.difference(&got).count(),
            got.difference(&want).count(),
        );
        // One term: multi-line events too, line by line (the lines of the hits that match).
        let line_matches: Box<dyn Fn(&str) -> bool> = match rg {
            Rg::Fixed(p) => {
                let lit = Literal::new(p);
                Box::new(move |l| lit.is_match(l))
            }
            Rg::Regex(p) => {
                let pattern = Pattern::new(p).unwrap();
                Box::new(move |l| pattern.is_match(l))
            }
            _ => continue,
        };
        let every_line = rg.lines(files, &universe);
        let got: BTreeSet<String> = hits(data_dir, query)
            .iter()
            .flat_map(|raw| raw.split('\n'))
            .filter(|l| line_matches(l))
            .map(str::to_string)
            .collect();
        assert_eq!(
            got.len(),
            every_line.len(),
            "`{query}`: loggrep's lines (multi-line events included) and rg's differ in number"
        );
        assert!(
            got == every_line,
            "`{query}`: loggrep's lines and rg's differ"
        );
    }
}

#[test]
fn literal_phrase_boolean_and_regex_queries_agree_with_rg() {
    let files: Vec<PathBuf> = DemoFile::ALL
        .iter()
        .map(|f| indexed().join("logs").join(f.file_name()))
        .collect();
    let cases = [
        ("ECONNREFUSED", Rg::Fixed("ECONNREFUSED")),
        ("econnrefused", Rg::Fixed("econnrefused")),
        (r#""too many clients""#, Rg::Fixed("too many clients")),
        (
            r#""Job completed" campaign"#,
            Rg::And(vec![Rg::Fixed("Job completed"), Rg::Fixed("campaign")]),
        ),
        (
            "ECONNREFUSED OR \"rate limit exceeded\"",
            Rg::Or(vec![
                Rg::Fixed("ECONNREFUSED"),
                Rg::Fixed("rate limit exceeded"),
            ]),
        ),
        (
            r#""request completed" -campaigns"#,
            Rg::And(vec![
                Rg::Fixed("request completed"),
                Rg::Not(Box::new(Rg::Fixed("campaigns"))),
            ]),
        ),
        (
            "(FATAL OR PANIC) NOT \"too many\"",
            Rg::And(vec![
                Rg::Or(vec![Rg::Fixed("FATAL"), Rg::Fixed("PANIC")]),
                Rg::Not(Box::new(Rg::Fixed("too many"))),
            ]),
        ),
        (
            r#"/duration: \d{4,}\.\d+ ms/"#,
            Rg::Regex(r"duration: \d{4,}\.\d+ ms"),
        ),
        (
            r#"/"statusCode":5\d\d/"#,
            Rg::Regex(r#""statusCode":5\d\d"#),
        ),
        (
            r#"/"responseTime":\d{4,}[,}]/"#,
            Rg::Regex(r#""responseTime":\d{4,}[,}]"#),
        ),
        ("/^\\{.*\"level\":50/", Rg::Regex(r#"^\{.*"level":50"#)),
        ("/out of memory|oom/", Rg::Regex("out of memory|oom")),
        (
            r#"/(?-i)Killed process \d+/ OR /timeout/"#,
            Rg::Or(vec![
                Rg::Regex(r"(?-i)Killed process \d+"),
                Rg::Regex("timeout"),
            ]),
        ),
        (
            r#"/\bcampaign-\w+/ -/Job completed/"#,
            Rg::And(vec![
                Rg::Regex(r"\bcampaign-\w+"),
                Rg::Not(Box::new(Rg::Regex("Job completed"))),
            ]),
        ),
    ];
    agree_with_rg(indexed(), &files, &cases);
}

#[test]
fn bad_queries_exit_2_with_the_column() {
    for (query, column) in [
        ("(unbalanced", 1),
        ("a b)", 4),
        ("servce:app", 1),
        ("x /a(b/", 5),
        ("ok /(a{1000}){1000}/", 5),
        ("level:>panic", 7),
        ("class:nope", 7),
    ] {
        let out = run(loggrep().arg("--data-dir").arg(indexed()).arg(query));
        assert_eq!(out.status.code(), Some(2), "{query}");
        let err = stderr(&out);
        assert!(err.contains(&format!("column {column}")), "{query}: {err}");
        // the caret under the query points at the column
        let caret = err.lines().find(|l| l.trim() == "^").unwrap_or_default();
        assert_eq!(caret.len(), 2 + column, "{query}: {err}");
    }
}

#[test]
fn rule_class_and_incident_fields_find_the_events_detection_saw() {
    let n = |q: &str| {
        let out = run(loggrep()
            .arg("--data-dir")
            .arg(indexed())
            .args(["--count", "--", q]));
        assert!(out.status.code() != Some(2), "{q}: {}", stderr(&out));
        stdout(&out).trim().parse::<u64>().unwrap()
    };
    let oom = n("rule:kernel-oom-kill");
    assert!(oom > 0, "the demo's OOM kills are tagged with their rule");
    assert!(n(r#"rule:kernel-oom-kill "Out of memory: Killed process""#) > 0);
    assert!(n("class:high-memory") >= oom);
    assert_eq!(n("rule:kernel-oom-kill -class:high-memory"), 0);

    let incidents = logwarden::query::incidents::load(indexed()).unwrap();
    assert!(!incidents.is_empty(), "the demo opens incidents");
    for incident in &incidents {
        incident_finds_its_evidence(incident);
    }
}

/// `incident:ID` finds every piece of the incident's evidence, and only events of its rule,
/// class and services.
fn incident_finds_its_evidence(incident: &logwarden::incident::Incident) {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(indexed())
        .args(["--json", "--limit", "0", "--"])
        .arg(format!("incident:{}", incident.id)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let hits: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(hits.len() as u64 >= incident.count.min(1));
    for hit in &hits {
        let service = hit["service"].as_str().unwrap();
        assert!(incident.services.iter().any(|s| s == service), "{hit}");
        let rules = hit["rules"].as_array().unwrap();
        assert!(rules.iter().any(|r| *r == incident.rule.as_str()), "{hit}");
        assert!(
            hit["classes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| *c == incident.class.as_str()),
            "{hit}"
        );
    }
    let ids: BTreeSet<&str> = hits.iter().map(|h| h["id"].as_str().unwrap()).collect();
    for evidence in &incident.evidence {
        assert!(
            ids.contains(evidence.event.to_string().as_str()),
            "incident {} ({}): evidence {} not found",
            incident.id,
            incident.group,
            evidence.event
        );
    }
}

// Issue 6, time and output options.

fn lg(args: &[&str]) -> std::process::Output {
    run(loggrep().arg("--data-dir").arg(indexed()).args(args))
}

/// `grep ARGS -F -- LITERAL FILE` lines, redacted as logwarden redacts them and without the CR
/// of CRLF files (loggrep prints LF-terminated lines).
fn grep_context(args: &[&str], literal: &str, file: &Path) -> Vec<String> {
    let out = run(std::process::Command::new("grep")
        .args(args)
        .args(["-F", "--", literal])
        .arg(file));
    stdout(&out)
        .lines()
        .map(|l| redact_text(l.trim_end_matches('\r')).into_owned())
        .collect()
}

fn loggrep_context(data_dir: &Path, args: &[&str], literal: &str) -> Vec<String> {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--fields", "raw", "--limit", "0"])
        .args(args)
        .arg("--")
        .arg(format!("\"{literal}\"")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

const CONTEXTS: [&[&str]; 5] = [
    &["-C", "2"],
    &["-A", "3"],
    &["-B", "1"],
    &["-C", "0"],
    &["-A", "5", "-B", "2"],
];

#[test]
fn context_lines_equal_grep_c_on_the_demo_files() {
    for (file, literal) in [
        (DemoFile::App, "ECONNREFUSED"),
        (DemoFile::App, "Redis"),
        (DemoFile::Worker, "Job failed"),
        (DemoFile::Worker, "ECONNREFUSED"),
    ] {
        let path = indexed().join("logs").join(file.file_name());
        for args in CONTEXTS {
            let want = grep_context(args, literal, &path);
            assert!(want.len() > 2, "the demo's {path:?} has no `{literal}`");
            let mut with_service = vec!["--service", file.service()];
            with_service.extend_from_slice(args);
            let got = loggrep_context(indexed(), &with_service, literal);
            assert_eq!(got, want, "{args:?} `{literal}` in {}", file.file_name());
        }
    }
}

#[test]
fn context_lines_equal_grep_c_on_a_corpus_file() {
    let Some(corpora) = crate::support::corpora() else {
        eprintln!("left out: no corpora folder (tests/run says so too)");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    for (service, file, literals) in [
        (
            "sshd",
            "loghub/OpenSSH/OpenSSH_2k.log",
            &["Invalid user", "POSSIBLE BREAK-IN", "Connection closed"][..],
        ),
        (
            "apache",
            "loghub/Apache/Apache_2k.log",
            &["Directory index forbidden", "mod_jk child"][..],
        ),
    ] {
        let path = corpora.join(file);
        let out = run(crate::support::logwarden()
            .arg("backfill")
            .arg("--data-dir")
            .arg(data.path())
            .arg("--source")
            .arg(format!("{service}={}", path.display())));
        assert!(out.status.success(), "{}", stderr(&out));
        for literal in literals {
            for args in CONTEXTS {
                let want = grep_context(args, literal, &path);
                assert!(!want.is_empty(), "{file} has no `{literal}`");
                let mut with_service = vec!["--service", service];
                with_service.extend_from_slice(args);
                let got = loggrep_context(data.path(), &with_service, literal);
                assert_eq!(got, want, "{args:?} `{literal}` in {file}");
            }
        }
    }
}

#[test]
fn count_by_and_histogram_add_up_to_count() {
    let total = count("ECONNREFUSED");
    let out = lg(&["--count-by", "service", "ECONNREFUSED"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut sum = 0;
    for line in stdout(&out).lines() {
        let (n, service) = line.trim_start().split_once(' ').unwrap();
        let one = lg(&["--count", "--service", service, "ECONNREFUSED"]);
        assert_eq!(stdout(&one).trim(), n, "{service}");
        sum += n.parse::<u64>().unwrap();
    }
    assert_eq!(sum, total);

    // attribute paths: the JSON fast columns give what reading every event gives
    for field in ["req.url", "host", "res.statusCode"] {
        let columns = lg(&["--count-by", field]);
        let documents = lg(&["--count-by", field, r#"NOT "zzzz-not-there""#]);
        assert_eq!(stdout(&columns), stdout(&documents), "--count-by {field}");
        assert!(stdout(&columns).lines().count() > 1, "--count-by {field}");
    }

    let out = lg(&["--histogram", "10m", "ECONNREFUSED"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let counts: Vec<u64> = text
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), total);
    assert!(counts.contains(&0), "empty buckets are shown:\n{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn limit_says_on_stderr_what_it_cut() {
    // a literal is decided on the stored text, newest first: the listing stops once it knows
    // the limit cut, and says so without a total
    let out = lg(&["--limit", "2", "ECONNREFUSED"]);
    assert_eq!(stdout(&out).lines().count(), 2);
    let total = count("ECONNREFUSED");
    assert!(total > 2);
    let note = stderr(&out);
    assert!(
        note.contains("showing the newest 2 matching events; more match")
            && note.contains("--limit 0")
            && note.contains("--count"),
        "{note}"
    );
    // the index decides a level alone, and counts every match while listing
    let out = lg(&["--limit", "2", "level:error"]);
    let errors = count("level:error");
    let note = stderr(&out);
    assert!(
        note.contains(&format!("showing the newest 2 of {errors}")) && note.contains("--limit 0"),
        "{note}"
    );
    let out = lg(&["--limit", "0", "ECONNREFUSED"]);
    assert_eq!(stdout(&out).lines().count() as u64, total);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn every_output_mode_keeps_grep_exit_status() {
    // a time inside the demo's timeline for --around
    let first = lg(&["--json", "--limit", "1", "ECONNREFUSED"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&first).trim()).unwrap();
    let t = v["ts"].as_str().unwrap().to_string();
    let modes: [&[&str]; 9] = [
        &[],
        &["--count-by", "service"],
        &["--count-by", "req.url", "--top", "2"],
        &["--histogram", "1h"],
        &["-C", "2"],
        &["--fields", "ts,service,raw"],
        &["--format", "csv"],
        &["--reverse", "--json"],
        &["--around", &t, "--window", "1m"],
    ];
    for mode in modes {
        let mut found = mode.to_vec();
        found.push("ECONNREFUSED");
        let out = lg(&found);
        assert_eq!(out.status.code(), Some(0), "{found:?}: {}", stderr(&out));
        let mut nothing = mode.to_vec();
        nothing.push("no-such-text-anywhere-4711");
        let out = lg(&nothing);
        assert_eq!(out.status.code(), Some(1), "{nothing:?}: {}", stderr(&out));
    }
    let errors: [&[&str]; 7] = [
        &["--around", &t, "--window", "0m", "x"],
        &["--around", "whenever", "x"],
        &["--histogram", "0s", "x"],
        &["--top", "3", "x"],
        &["--fields", "ts,,raw", "x"],
        &["-C", "1", "--format", "csv", "x"],
        &["--count-by", "service", "(unbalanced"],
    ];
    for args in errors {
        let out = lg(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    // A histogram of more buckets than the cap is refused: two events 20 000 s apart, 1s wide.
    let wide = tempfile::tempdir().unwrap();
    let log = wide.path().join("app.log");
    std::fs::write(
        &log,
        "{\"level\":50,\"time\":1796212800000,\"msg\":\"x first\"}\n\
         {\"level\":50,\"time\":1796232800000,\"msg\":\"x last\"}\n",
    )
    .unwrap();
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(wide.path())
        .arg("--source")
        .arg(format!("app:pino={}", log.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    let histogram = |width: &str| {
        run(loggrep().arg("--data-dir").arg(wide.path()).args([
            "--no-server",
            "--histogram",
            width,
            "x",
        ]))
    };
    let out = histogram("1s");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("buckets"), "{}", stderr(&out));
    assert_eq!(histogram("10s").status.code(), Some(0));
    let missing = tempfile::tempdir().unwrap();
    let out =
        run(loggrep()
            .arg("--data-dir")
            .arg(missing.path())
            .args(["--count-by", "service", "x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("backfill"), "{}", stderr(&out));
}

// A running agent answers loggrep's questions (query::remote): the same bytes, faster.

/// A `logwarden run` over a copy of the demo's index, serving HTTP on a free port; its address
/// and the copy. Killed when dropped.
struct Agent {
    child: std::process::Child,
    url: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn agent() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let copied = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(indexed())
        .arg(&data));
    assert!(copied.status.success(), "{}", stderr(&copied));
    let _ = std::fs::remove_file(data.join(logwarden::query::remote::ADDR_FILE));
    let quiet = dir.path().join("quiet.log");
    std::fs::write(&quiet, "").unwrap();
    let child = crate::support::logwarden()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--source")
        .arg(format!("app:pino={}", quiet.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = data.join(logwarden::query::remote::ADDR_FILE);
    let mut agent = Agent {
        child,
        url: String::new(),
        data,
        _dir: dir,
    };
    assert!(
        crate::support::wait_until(60, || addr_file.try_exists().unwrap_or(false)),
        "the agent wrote no {}",
        addr_file.display()
    );
    agent.url = logwarden::query::remote::discover(&agent.data).unwrap();
    agent
}

#[test]
fn a_running_agent_answers_loggrep_byte_for_byte_as_the_index_files_do() {
    let agent = agent();
    let first = lg(&["--json", "--limit", "1", "ECONNREFUSED"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&first).trim()).unwrap();
    let t = v["ts"].as_str().unwrap().to_string();
    let questions: Vec<Vec<&str>> = vec![
        vec!["ECONNREFUSED"],
        vec!["\"connection refused\" OR /timeout after \\d+ms/"],
        vec!["--json", "service:postgres level:>=error"],
        vec!["--count", "level:error"],
        vec!["--count-by", "service"],
        vec![
            "--count-by",
            "req.url",
            "--top",
            "2",
            "res.statusCode:>=500",
        ],
        vec!["--histogram", "1h", "ECONNREFUSED"],
        vec!["-C", "2", "--limit", "5", "ECONNREFUSED"],
        vec!["--fields", "ts,service,raw", "--format", "csv", "timeout"],
        vec!["--reverse", "--limit", "3", "error"],
        vec!["--around", &t, "--window", "1m"],
        vec!["--limit", "2", "level:error"],
        vec!["--limit", "2", "ECONNREFUSED"],
        vec!["--color", "always", "--limit", "20", "refused"],
        vec!["no-such-text-anywhere-4711"],
        vec!["--count-by", "service", "(unbalanced"],
        vec!["nosuchfield:x"],
        vec!["--since", "the day after tomorrow", "x"],
    ];
    let ask = |how: &[&str], data: &Path, q: &[&str]| {
        run(loggrep()
            .env_remove("LOGWARDEN_SERVER")
            .env_remove("RUST_LOG")
            .arg("--data-dir")
            .arg(data)
            .args(how)
            .args(q))
    };
    for q in &questions {
        let local = ask(&["--no-server"], &agent.data, q);
        let found = ask(&[], &agent.data, q);
        let named = ask(&["--server", &agent.url], &agent.data, q);
        for (how, out) in [("found", &found), ("--server", &named)] {
            assert_eq!(
                out.status.code(),
                local.status.code(),
                "{how} {q:?}: {}",
                stderr(out)
            );
            assert_eq!(stdout(out), stdout(&local), "{how} {q:?}");
            assert_eq!(stderr(out), stderr(&local), "{how} {q:?}");
        }
    }

    // The answers came from the agent: it says so in loggrep's log, and one named with
    // --server answers about its data whatever --data-dir says.
    let logged = run(loggrep()
        .env("RUST_LOG", "info")
        .arg("--data-dir")
        .arg(&agent.data)
        .args(["--count", "ECONNREFUSED"]));
    assert!(
        stderr(&logged).contains(&format!("answered by the agent at {}", agent.url)),
        "{}",
        stderr(&logged)
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let named = ask(
        &["--server", &agent.url],
        elsewhere.path(),
        &["--count", "ECONNREFUSED"],
    );
    assert_eq!(stdout(&named), stdout(&logged));
    // An address file copied into another data dir does not make that agent answer for it.
    std::fs::copy(
        agent.data.join(logwarden::query::remote::ADDR_FILE),
        elsewhere.path().join(logwarden::query::remote::ADDR_FILE),
    )
    .unwrap();
    let other = ask(&[], elsewhere.path(), &["--count", "ECONNREFUSED"]);
    assert_eq!(other.status.code(), Some(2), "{}", stdout(&other));
    assert!(stderr(&other).contains("backfill"), "{}", stderr(&other));

    // A dead agent (killed: its address file stays): found through that file, the index files
    // answer; named with --server, it is an error.
    let mut agent = agent;
    agent.kill();
    assert!(
        agent
            .data
            .join(logwarden::query::remote::ADDR_FILE)
            .try_exists()
            .unwrap()
    );
    for q in &questions[..4] {
        let local = ask(&["--no-server"], &agent.data, q);
        let found = ask(&[], &agent.data, q);
        assert_eq!(found.status.code(), local.status.code(), "{q:?}");
        assert_eq!(stdout(&found), stdout(&local), "{q:?}");
    }
    let named = ask(&["--server", &agent.url], &agent.data, &["x"]);
    assert_eq!(named.status.code(), Some(2));
    assert!(
        stderr(&named).contains("no logwarden agent answers at"),
        "{}",
        stderr(&named)
    );
}
