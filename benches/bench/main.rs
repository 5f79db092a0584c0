//! logwarden's one criterion binary: a group per stage over the demo's seeded logs.
//!
//! `cargo bench` reports throughput in bytes per second for parse, detect and index; the
//! side-by-side comparison with peer tools is `benches/compare.sh`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use logwarden::demo::{DemoConfig, DemoFile, Timeline, write_all};
use logwarden::detect::matcher::Matcher;
use logwarden::detect::pack;
use logwarden::event::{Events, Timestamp};
use logwarden::incident::{ChangeKind, Engine, EngineConfig};
use logwarden::parse::Format;
use logwarden::parse::parse_all;
use logwarden::parse::redact::redact_text;
use logwarden::runbook::Runbook;
use logwarden::store::index::EventIndex;

/// The demo's files, written once: (file, bytes).
fn corpus() -> Vec<(DemoFile, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &Timeline::generate(&DemoConfig::default())).unwrap();
    DemoFile::ALL
        .iter()
        .map(|f| (*f, std::fs::read(dir.path().join(f.file_name())).unwrap()))
        .collect()
}

fn parse_each(files: &[(DemoFile, Vec<u8>)]) -> Vec<Events> {
    files
        .iter()
        .map(|(f, bytes)| parse_all(f.service(), f.format(), 1, bytes).unwrap())
        .collect()
}

fn stages(c: &mut Criterion) {
    let files = corpus();
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();

    let mut parse = c.benchmark_group("parse");
    for (file, bytes) in &files {
        if matches!(file, DemoFile::App | DemoFile::Postgres) {
            parse.throughput(Throughput::Bytes(bytes.len() as u64));
            parse.bench_function(file.file_name(), |b| {
                b.iter(|| parse_all(file.service(), file.format(), 1, bytes).unwrap())
            });
        }
    }
    parse.finish();

    let events = parse_each(&files);
    let matcher = Matcher::new(Arc::new(pack::default_rules().unwrap())).unwrap();
    let mut detect = c.benchmark_group("detect");
    detect.throughput(Throughput::Bytes(total));
    detect.bench_function("all-rules", |b| {
        b.iter(|| events.iter().map(|e| matcher.scan(e).len()).sum::<usize>())
    });
    detect.finish();

    let mut index = c.benchmark_group("index");
    index.sample_size(10);
    index.throughput(Throughput::Bytes(total));
    index.bench_function("add+commit", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let idx = EventIndex::open_or_create(dir.path()).unwrap();
                let mut sink = idx.writer(128 * 1024 * 1024).unwrap();
                for batch in &events {
                    sink.add(batch).unwrap();
                }
                sink.commit("{}").unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    index.finish();
}

/// Redaction alone, line by line (the parse group includes it): the app's log as the demo writes
/// it (a few lines carry secrets; a clean line costs one automaton scan), and the same lines each
/// carrying a bearer token and a `postgres://` password (every line runs its regexes).
fn redaction(c: &mut Criterion) {
    let files = corpus();
    let app = files
        .iter()
        .find(|(f, _)| matches!(f, DemoFile::App))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .unwrap();
    let clean: Vec<&str> = app.lines().collect();
    let dirty: Vec<String> = clean
        .iter()
        .map(|l| format!("{l} Authorization: Bearer tok_4fG7hJ2kL9mNq postgres://u:pw@db/x"))
        .collect();
    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Bytes(app.len() as u64));
    group.bench_function("app.log", |b| {
        b.iter(|| {
            clean
                .iter()
                .filter(|l| matches!(redact_text(l), std::borrow::Cow::Owned(_)))
                .count()
        })
    });
    let dirty_bytes: usize = dirty.iter().map(String::len).sum();
    group.throughput(Throughput::Bytes(dirty_bytes as u64));
    group.bench_function("every-line-a-secret", |b| {
        b.iter(|| dirty.iter().map(|l| redact_text(l).len()).sum::<usize>())
    });
    group.finish();
}

/// The incident engine alone under a storm: 100,000 matching PostgreSQL lines in one minute
/// (`demo::storm`), parsed and matched beforehand; matches per second through push + finish, and
/// how many incidents they make (printed once).
fn storm(c: &mut Criterion) {
    let rules = Arc::new(pack::default_rules().unwrap());
    let runbook = Arc::new(Runbook::parse(pack::default_runbook()));
    let text = logwarden::demo::storm(100_000, Timestamp::from_secs(1_796_220_000));
    let format = Format::Postgres { prefix: None };
    let events = parse_all("postgres", format, 1, text.as_bytes()).unwrap();
    let matches = Matcher::new(Arc::clone(&rules)).unwrap().scan(&events);
    eprintln!("storm: 100000 lines, {} matches", matches.len());
    engine_alone(c, "storm-100k", &rules, &runbook, &matches);
}

/// Bench the engine alone on `matches` (push + finish), printing once how many incidents open.
fn engine_alone(
    c: &mut Criterion,
    name: &str,
    rules: &Arc<logwarden::detect::rules::RuleSet>,
    runbook: &Arc<Runbook>,
    matches: &[logwarden::detect::Match],
) {
    let run = || {
        let mut engine = Engine::new(
            Arc::clone(rules),
            Arc::clone(runbook),
            EngineConfig::default(),
        );
        engine.push(matches.to_vec());
        engine.finish()
    };
    let opened = run()
        .iter()
        .filter(|c| c.kind == ChangeKind::Opened)
        .count();
    eprintln!(
        "{name}: {} matches, {opened} incidents opened",
        matches.len()
    );
    let mut group = c.benchmark_group("incident");
    group.sample_size(10);
    group.throughput(Throughput::Elements(matches.len() as u64));
    group.bench_function(name, |b| b.iter(run));
    group.finish();
}

/// Rules whose conditions keep a tally (distinct values, a p95, a ratio over a base rule, the
/// trailing baseline) under 100,000 matches in ten minutes: the cost of the counters, matches per
/// second through push + finish.
fn tallies(c: &mut Criterion) {
    const RULES: &str = r#"
[[rule]]
id = "spray"
class = "security"
severity = "warning"
title = "spray"
condition = "distinct(user) >= 50 within 5m"
group_by = ["ip"]
runbook = "log-analysis"

[[rule]]
id = "latency"
class = "high-latency"
severity = "warning"
title = "p95"
condition = "p95(ms) > 900 within 5m min 50"
runbook = "warning-alerts:high-latency"

[[rule]]
id = "sends"
class = "email-delivery"
severity = "info"
title = "sends"
condition = "never"
runbook = "email-delivery-issues"

[[rule]]
id = "failures"
class = "email-delivery"
severity = "warning"
title = "failures"
condition = "rate >= 5% of sends within 5m min 100"
runbook = "email-delivery-issues"

[[rule]]
id = "jump"
class = "high-error-rate"
severity = "warning"
title = "jump"
condition = "rate > 5x baseline(1h) within 1m min 20"
runbook = "warning-alerts:high-error-rate"
"#;
    let rules = Arc::new(
        logwarden::detect::rules::RuleSet::from_files(&[("bench.toml".into(), RULES.into())])
            .unwrap(),
    );
    let runbook = Arc::new(Runbook::parse(pack::default_runbook()));
    let n = 100_000u64;
    let matches: Vec<logwarden::detect::Match> = (0..n)
        .map(|i| {
            let rule = (i % 5) as usize;
            let captures = match rule {
                0 => vec![
                    ("ip".to_string(), format!("203.0.113.{}", i % 7)),
                    ("user".to_string(), format!("user{}", i % 97)),
                ],
                1 => vec![("ms".to_string(), format!("{}", (i * 7919) % 1000))],
                _ => vec![],
            };
            logwarden::detect::Match {
                event: logwarden::event::EventId {
                    fingerprint: 1,
                    offset: i,
                },
                ts: Timestamp(1_796_220_000_000_000 + (i as i64) * 6_000),
                rule,
                service: "app".into(),
                captures,
                excerpt: String::new(),
            }
        })
        .collect();
    engine_alone(c, "tallies-100k", &rules, &runbook, &matches);
}

criterion_group!(benches, stages, redaction, storm, tallies);
criterion_main!(benches);
