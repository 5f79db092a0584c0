//! The parse stage alone, on a file: MB/s (median of 3 runs, one core) and heap allocations per
//! line. `benches/compare.sh` runs it on the PostgreSQL log beside pgBadger.
//!
//! `cargo bench --bench parse -- FILE [--format F] [--skim]` (F as `--source SERVICE:F=FILE`
//! takes it; default `auto`). `--skim` measures the scan's skimming parse instead, with every line
//! treated as holding no literal (its cheapest path). Prints one line:
//! `parse FORMAT: M MB/s, L lines, E events, A allocations per line`.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use logwarden::event::Level;
use logwarden::parse::{Format, Parser};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut file = None;
    let mut format = Format::Auto;
    let mut skim = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--format" => format = args.next().unwrap().parse().unwrap(),
            "--skim" => skim = true,
            other => file = Some(other.to_string()),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: cargo bench --bench parse -- FILE [--format F] [--skim]");
        std::process::exit(2);
    };
    let bytes = std::fs::read(&file).unwrap();
    let mut runs = Vec::new();
    let mut last = (0, 0, 0);
    for _ in 0..3 {
        let mut lines_events = (0, 0);
        let started = Instant::now();
        let info = allocation_counter::measure(|| {
            let mut parser = Parser::new("bench", format.clone(), 1).unwrap();
            if skim {
                parser = parser.skimming(Some(Level::Warn));
            }
            let mut events = 0u64;
            // Chunks as the sources send them.
            for (i, chunk) in bytes.chunks(256 * 1024).enumerate() {
                let got = parser.feed_skim((i * 256 * 1024) as u64, chunk, &[]);
                events += got.len() as u64;
            }
            events += parser.finish().len() as u64;
            lines_events = (parser.stats().lines, events);
        });
        runs.push(started.elapsed().as_secs_f64());
        last = (lines_events.0, lines_events.1, info.count_total);
    }
    runs.sort_by(f64::total_cmp);
    let median = runs[1];
    let (lines, events, allocations) = last;
    println!(
        "parse {}{}: {:.1} MB/s, {} lines, {} events, {:.2} allocations per line",
        format,
        if skim { " (skim)" } else { "" },
        bytes.len() as f64 / median / 1e6,
        lines,
        events,
        allocations as f64 / lines.max(1) as f64
    );
}
