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
    let run = || {
        let mut engine = Engine::new(
            Arc::clone(&rules),
            Arc::clone(&runbook),
            EngineConfig::default(),
        );
        engine.push(matches.clone());
        engine.finish()
    };
    let opened = run()
        .iter()
        .filter(|c| c.kind == ChangeKind::Opened)
        .count();
    eprintln!(
        "storm: {} lines, {} matches, {opened} incidents opened",
        100_000,
        matches.len()
    );
    let mut group = c.benchmark_group("incident");
    group.sample_size(10);
    group.throughput(Throughput::Elements(matches.len() as u64));
    group.bench_function("storm-100k", |b| b.iter(run));
    group.finish();
}

criterion_group!(benches, stages, storm);
criterion_main!(benches);
