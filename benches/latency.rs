//! Live latency of `logwarden run`: from a line appended to a followed file to (a) the line being
//! searchable in the index and (b) its incident being raised. Prints p50/p90/p99/max.
//!
//! `cargo bench --bench latency` (release build). The pipeline runs in-process on a temp file,
//! exactly as `logwarden run` does; nothing else loads the machine ("idle load").
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // a measuring harness, not library code

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use logwarden::incident::ChangeKind;
use logwarden::parse::Format;
use logwarden::pipeline::{self, Settings};
use logwarden::source::SourceSpec;
use logwarden::source::tail::TailConfig;
use logwarden::store::index::EventIndex;

const SAMPLES: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "{what:<32} n={:<4} p50 {:>6.1} ms  p90 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, r#"{{"level":30,"time":1796220000000,"msg":"start"}}"#).unwrap();
    let settings = Settings::new(
        dir.path().join("data"),
        vec![SourceSpec {
            service: "app".into(),
            format: Format::Pino,
            path: log.clone(),
        }],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (changes_tx, changes_rx) = channel();
    let runner = {
        let (settings, stop) = (settings.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut on_change = |c: &logwarden::incident::Change| {
                let _ = changes_tx.send((c.kind, c.incident.class, Instant::now()));
            };
            pipeline::run(&settings, TailConfig::default(), stop, &mut on_change).unwrap();
        })
    };
    // Wait for the first commit (the file is recorded at once).
    let index = loop {
        if let Ok(i) = EventIndex::open_existing(&settings.index_dir()) {
            break i;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    while index.num_docs().unwrap() < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }

    // (a) Appended line → searchable. Each sample waits for the previous one to land.
    let mut searchable = Vec::new();
    for i in 0..SAMPLES {
        let before = index.num_docs().unwrap();
        let t = 1_796_220_001_000u64 + i as u64 * 1000;
        let sent = Instant::now();
        writeln!(
            file,
            r#"{{"level":30,"time":{t},"msg":"latency probe {i}"}}"#
        )
        .unwrap();
        while index.num_docs().unwrap() <= before {
            std::thread::sleep(Duration::from_micros(500));
        }
        searchable.push(sent.elapsed());
        // Space samples out so each one starts from an idle follower.
        std::thread::sleep(Duration::from_millis(20));
    }
    report("append → searchable", searchable);

    // (b) Appended line → incident opened. Heap OOM (node-heap-oom) is immediate; each sample a
    // new service-less group would be needed, so the group is resolved in between by event time:
    // every probe is an hour after the previous one.
    let mut raised = Vec::new();
    for i in 0..40u64 {
        let t = 1_796_230_000_000u64 + i * 3_600_000;
        while changes_rx.try_recv().is_ok() {}
        let sent = Instant::now();
        writeln!(
            file,
            r#"{{"level":60,"time":{t},"msg":"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"}}"#
        )
        .unwrap();
        let deadline = sent + Duration::from_secs(10);
        loop {
            match changes_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((ChangeKind::Opened | ChangeKind::Reopened, _, at)) => {
                    raised.push(at - sent);
                    break;
                }
                Ok(_) => continue,
                Err(_) => panic!("probe {i}: no incident within 10 s"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report("append → incident raised", raised);

    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
}
