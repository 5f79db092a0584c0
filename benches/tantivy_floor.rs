//! The physical floor of logwarden's indexing: tantivy alone, indexing events parsed beforehand,
//! with logwarden's schema and documents, then one commit. `benches/compare.sh` runs it beside
//! `logwarden backfill` on the same file and prints the ratio of their events per second.
//!
//! `cargo bench --bench tantivy_floor -- FILE [--heap MIB] [--runs N]` (FILE read as `backfill
//! --source auto=FILE` reads it; parsed once, untimed, then indexed N times into fresh indexes).
//! Prints one line: `floor: N events in S s = R events/s (M MB/s)`, S the median of the runs.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use logwarden::parse::{Format, parse_all};
use logwarden::source::fingerprint;
use logwarden::store::index::EventIndex;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut file = None;
    let mut heap_mib: usize = 128;
    let mut runs: usize = 1;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--heap" => heap_mib = args.next().and_then(|v| v.parse().ok()).unwrap_or(128),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(1).max(1),
            other => file = Some(other.to_string()),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: cargo bench --bench tantivy_floor -- FILE [--heap MIB]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(&file).unwrap();
    let fp = fingerprint::of_head(&bytes, true).unwrap_or(0);
    let parse_started = Instant::now();
    let events = parse_all("auto", Format::Auto, fp, &bytes).unwrap();
    eprintln!(
        "parsed {} events in {:.1} s (not timed)",
        events.len(),
        parse_started.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(dir.path()).unwrap();
        let started = Instant::now();
        let mut sink = index.writer(heap_mib << 20).unwrap();
        sink.add(&events).unwrap();
        sink.commit("{}").unwrap();
        drop(sink);
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    println!(
        "floor: {} events in {:.2} s = {:.0} events/s ({:.1} MB/s)",
        events.len(),
        secs,
        events.len() as f64 / secs,
        bytes.len() as f64 / secs / 1e6
    );
}
