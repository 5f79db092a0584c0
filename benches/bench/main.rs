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
use logwarden::event::Events;
use logwarden::parse::parse_all;
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

criterion_group!(benches, stages);
criterion_main!(benches);
