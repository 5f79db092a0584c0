//! The ClickHouse sink's insert throughput against the raw `clickhouse` crate inserting the same
//! rows (issue 8): the sink spools every row to disk (JSON lines, fsynced per batch) before a
//! thread of its own inserts it, and the figure to record is what that costs.
//!
//! Needs a server: `CLICKHOUSE_URL=http://127.0.0.1:18123 cargo bench --bench clickhouse_sink`
//! (`benches/compare.sh` with `PARTS=clickhouse` starts one as ../shared/CLICKHOUSE.md does).
//! Rows: the demo's logs parsed, repeated under other file fingerprints up to `ROWS` events.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use logwarden::demo::{DemoConfig, DemoFile, Timeline, write_all};
use logwarden::event::Events;
use logwarden::parse::parse_all;
use logwarden::store::clickhouse::{ClickHouse, EventRow};
use logwarden::store::clickhouse_sink::{SinkConfig, Spool};

const BATCH: usize = 50_000;

fn main() {
    let Ok(url) = std::env::var("CLICKHOUSE_URL") else {
        eprintln!(
            "clickhouse_sink: skipped (set CLICKHOUSE_URL=http://HOST:PORT; benches/compare.sh PARTS=clickhouse does)"
        );
        return;
    };
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let batches = corpus(rows);
    let n: usize = batches.iter().map(Events::len).sum();
    let bytes: usize = batches.iter().flatten().map(|e| e.raw.len()).sum();
    eprintln!(
        "clickhouse_sink: {n} events ({:.0} MiB of raw text), {runs} runs each, batches of {BATCH}",
        bytes as f64 / 1048576.0
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut raw, mut sink) = (Vec::new(), Vec::new());
    for run in 0..runs {
        raw.push(rt.block_on(raw_crate(&url, &format!("bench_raw_{run}"), &batches)));
        sink.push(through_sink(&url, &format!("bench_sink_{run}"), &batches));
        eprintln!(
            "  run {run}: raw crate {:.2} s, sink {:.2} s",
            raw[run].as_secs_f64(),
            sink[run].as_secs_f64()
        );
    }
    raw.sort();
    sink.sort();
    let (r, s) = (raw[runs / 2], sink[runs / 2]);
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!(
        "clickhouse insert, {n} rows: raw crate {:.2} s ({:.2} M rows/s), sink {:.2} s ({:.2} M rows/s): sink/raw = {:.2}x the time",
        r.as_secs_f64(),
        rate(r),
        s.as_secs_f64(),
        rate(s),
        s.as_secs_f64() / r.as_secs_f64()
    );
    rt.block_on(async {
        let ch = ClickHouse::connect(&url, "default", None, None, None)
            .await
            .unwrap();
        for run in 0..runs {
            for db in ["bench_raw", "bench_sink"] {
                ch.client()
                    .query(&format!("DROP DATABASE IF EXISTS {db}_{run}"))
                    .execute()
                    .await
                    .unwrap();
            }
        }
    });
}

/// The demo's files parsed, repeated under new fingerprints until `rows` events.
fn corpus(rows: usize) -> Vec<Events> {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &Timeline::generate(&DemoConfig::default())).unwrap();
    let files: Vec<(DemoFile, Vec<u8>)> = DemoFile::ALL
        .iter()
        .map(|f| (*f, std::fs::read(dir.path().join(f.file_name())).unwrap()))
        .collect();
    let mut out = Vec::new();
    let (mut total, mut fingerprint) = (0, 1u64);
    while total < rows {
        for (file, bytes) in &files {
            let events = parse_all(file.service(), file.format(), fingerprint, bytes).unwrap();
            total += events.len();
            out.push(events);
            fingerprint += 1;
        }
    }
    out
}

/// The crate alone: rows made from the events, one INSERT per `BATCH` rows.
async fn raw_crate(url: &str, db: &str, batches: &[Events]) -> Duration {
    let ch = ClickHouse::connect(url, db, None, None, None)
        .await
        .unwrap();
    let started = Instant::now();
    let mut insert = ch.client().insert::<EventRow>("events").await.unwrap();
    let mut in_insert = 0;
    for events in batches {
        for event in events {
            insert
                .write(&EventRow::new("bench", event, &[]))
                .await
                .unwrap();
            in_insert += 1;
            if in_insert == BATCH {
                insert.end().await.unwrap();
                insert = ch.client().insert::<EventRow>("events").await.unwrap();
                in_insert = 0;
            }
        }
    }
    insert.end().await.unwrap();
    started.elapsed()
}

/// The sink: spooled, sealed, sent by its thread; timed until the spool is empty.
fn through_sink(url: &str, db: &str, batches: &[Events]) -> Duration {
    let spool_dir = tempfile::tempdir().unwrap();
    let mut config = SinkConfig::new(&format!("{url}/{db}"), "bench".into()).unwrap();
    config.batch_rows = BATCH;
    // The tables exist before the clock starts, as for the raw crate.
    logwarden::store::clickhouse_sink::probe(&config, Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    let mut spool = Spool::open(spool_dir.path(), config).unwrap();
    for events in batches {
        spool.add_events(events, &[]).unwrap();
    }
    let closed = spool.close(None).unwrap();
    assert_eq!(closed.left_batches, 0);
    started.elapsed()
}
