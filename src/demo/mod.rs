//! The seeded newsletter-stack simulator behind `logwarden demo` (and the benches' line generator).
//!
//! [`Timeline::generate`] turns a [`DemoConfig`] (seed, start instant) into every line the stack would
//! have logged: the Node app and the BullMQ worker as pino JSON (`app.log`, `worker.log`), PostgreSQL's
//! stderr log under `log_line_prefix = '%m [%p] %q%u@%d '` (`postgresql.log`), Redis's own log
//! (`redis.log`) and the kernel's syslog lines (`kern.log`). The same seed always gives the same bytes.
//! [`write_all`] writes a timeline at once; [`write_live`] plays it at `speed`× event time so that the
//! pipeline can tail it.
//!
//! The timeline (about 2 h 30 of event time, about 60 s at [`DEFAULT_SPEED`]):
//!
//! ```text
//! | 10 min baseline | episode 1 | 8 min baseline | episode 2 | … | episode 13 | 10 min baseline |
//! ```
//!
//! * The **baseline** ([`baseline`]) runs under everything: app requests, health checks, email and
//!   OpenAI jobs, R2 uploads, PostgreSQL statements (1–80 ms), checkpoints, autovacuum, Redis saves
//!   and kernel noise, about 3 lines per second. Each healthy span holds one **near miss** a correct
//!   pipeline must not turn into an incident (one 1.2 s query, one failed login, one 500, one
//!   Resend 429 that succeeds on retry, one PostgreSQL ERROR), and the start-up lines carry secrets
//!   that parse must redact ([`SECRETS`]).
//! * Each **episode** ([`episodes`]) plays one incident class of the runbook for 2–3 minutes, with the
//!   exact line shapes the rule pack matches, enough of them to cross each rule's threshold, and
//!   only its own class's shapes. Rules resolve after 5 minutes of quiet, so 8 minutes of pure
//!   baseline separate episodes. Error-level lines are budgeted: outside the `high-error-rate`
//!   episode (played last) fewer than 30 per minute and 60 per hour, all services together.
//!
//! This module only writes files; it must not know the parser, the rules or the pipeline.
//!
//! # Adding an episode
//!
//! 1. Add the class to `crate::detect::Class` if it is new (and its rules to `patterns/`).
//! 2. Write `fn my_episode(c: &mut Ctx<'_>)` in `episodes.rs`: for each line take an offset in
//!    seconds inside the episode (`c.spread(from, to, n)` gives `n` of them), get its instant with
//!    `c.ts(s)`, render it with the `render` helpers (`pino`, `pg`, `pg_entry`, `redis`, `kern`) and
//!    `c.emit(ts, file, text)`. Use `c.rng` (the episode's own random stream) for any variation.
//! 3. Add a `Recipe { class, secs, mutes, write }` to `RECIPES` at the place in the story where it
//!    belongs; `mutes` names the files whose healthy lines stop while it plays (a crashed process).
//! 4. Add the class's threshold to `THRESHOLDS` in this module's tests and its signature phrases to
//!    `EPISODE_ONLY`, then run `cargo test --lib demo`: the tests check that it crosses the threshold,
//!    that the baseline never says those phrases, and that its error-level lines stay within the
//!    budget (it must not raise `high-error-rate`).
//! 5. Adjust [`DEFAULT_SPEED`] if the timeline no longer plays in about 60 s.

mod baseline;
mod episodes;
mod render;
mod storm;
mod write;

use crate::detect::Class;
use crate::event::Timestamp;
use crate::parse::Format;

pub use storm::{STORM_USERS, storm};
pub use write::{Layout, WriteStats, generate_to, write_all, write_live};

/// 2026-11-28 14:00:00 UTC, the default first instant of the timeline.
pub const DEFAULT_START: Timestamp = Timestamp(1_795_874_400_000_000);
/// Seconds of pure baseline before the first episode and after the last.
pub const EDGE_SECS: i64 = 600;
/// Seconds of pure baseline between two episodes.
pub const GAP_SECS: i64 = 480;
/// Event time runs this many times faster than the wall clock by default: the whole timeline plays
/// in about 60 s.
pub const DEFAULT_SPEED: f64 = 150.0;

/// The secrets the demo writes (in a connection string, a logged Authorization header, an env dump,
/// a JSON `apiKey` and a presigned URL's `X-Amz-Signature`). None of them may reach the index.
pub const SECRETS: [&str; 5] = [
    "S3cretPw",
    "re_live_8f3k2j1h4g5f6d7s8a9",
    "re_live_3k4j5h6g7f8d9s0a1z",
    "sk-proj-abc123def456ghi789jkl012mno345pqr",
    "9c1f5e0b7a3d4c2e8f6a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e",
];

/// The kernel's uptime at the timeline's start (the `[123456.789012]` of kern.log).
const KERNEL_UPTIME_AT_START: Timestamp = Timestamp(123_456_000_000);

/// One log file of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoFile {
    App,
    Worker,
    Postgres,
    Redis,
    Kernel,
}

impl DemoFile {
    pub const ALL: [DemoFile; 5] = [
        DemoFile::App,
        DemoFile::Worker,
        DemoFile::Postgres,
        DemoFile::Redis,
        DemoFile::Kernel,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            DemoFile::App => "app.log",
            DemoFile::Worker => "worker.log",
            DemoFile::Postgres => "postgresql.log",
            DemoFile::Redis => "redis.log",
            DemoFile::Kernel => "kern.log",
        }
    }

    /// The container name `docker-compose logs` prints for this file's service (the kernel's
    /// lines, which no container writes, as `kernel`).
    pub fn container(self) -> &'static str {
        match self {
            DemoFile::App => "newsletter-app-1",
            DemoFile::Worker => "newsletter-worker-1",
            DemoFile::Postgres => "newsletter-postgres-1",
            DemoFile::Redis => "newsletter-redis-1",
            DemoFile::Kernel => "kernel",
        }
    }

    pub fn service(self) -> &'static str {
        match self {
            DemoFile::App => "app",
            DemoFile::Worker => "worker",
            DemoFile::Postgres => "postgres",
            DemoFile::Redis => "redis",
            DemoFile::Kernel => "kernel",
        }
    }

    pub fn format(self) -> Format {
        match self {
            DemoFile::App | DemoFile::Worker => Format::Pino,
            DemoFile::Postgres => Format::Postgres {
                prefix: Some("%m [%p] %q%u@%d ".to_string()),
            },
            DemoFile::Redis => Format::Redis,
            DemoFile::Kernel => Format::Syslog,
        }
    }

    /// Position in [`DemoFile::ALL`].
    fn index(self) -> usize {
        match self {
            DemoFile::App => 0,
            DemoFile::Worker => 1,
            DemoFile::Postgres => 2,
            DemoFile::Redis => 3,
            DemoFile::Kernel => 4,
        }
    }
}

/// What to generate: the seed of every random choice and the first instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    pub seed: u64,
    pub start: Timestamp,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 42,
            start: DEFAULT_START,
        }
    }
}

/// One log entry of one file. `text` has no final newline and may span several physical lines (a
/// PostgreSQL entry with its DETAIL/STATEMENT lines, an autovacuum report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ts: Timestamp,
    pub file: DemoFile,
    pub text: String,
}

/// The span `[start, end)` whose lines play one incident class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub class: Class,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Every line of the demo, in time order, and where the episodes are.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub lines: Vec<Line>,
    pub episodes: Vec<Episode>,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Timeline {
    pub fn generate(cfg: &DemoConfig) -> Timeline {
        let (tagged, episodes, end) = generate_tagged(cfg);
        Timeline {
            lines: tagged.into_iter().map(|t| t.line).collect(),
            episodes,
            start: cfg.start,
            end,
        }
    }

    /// The healthy spans `[from, to)` before, between and after the episodes.
    pub fn baseline_spans(&self) -> Vec<(Timestamp, Timestamp)> {
        spans_between(self.start, self.end, &self.episodes)
    }
}

fn spans_between(
    start: Timestamp,
    end: Timestamp,
    episodes: &[Episode],
) -> Vec<(Timestamp, Timestamp)> {
    let mut spans = Vec::with_capacity(episodes.len() + 1);
    let mut from = start;
    for ep in episodes {
        spans.push((from, ep.start));
        from = ep.end;
    }
    spans.push((from, end));
    spans
}

/// `t + secs`, rounded to the millisecond (the precision every format of the stack prints).
fn offset(t: Timestamp, secs: f64) -> Timestamp {
    Timestamp(t.0 + (secs * 1000.0).round() as i64 * 1000)
}

/// The kernel's uptime at `ts` (with a sub-millisecond part, as the kernel prints microseconds).
fn kernel_uptime(start: Timestamp, ts: Timestamp) -> Timestamp {
    let micros = (ts.as_millis() * 7_919).rem_euclid(1000);
    Timestamp(KERNEL_UPTIME_AT_START.0 + (ts.0 - start.0) + micros)
}

/// A line and the episode it belongs to (`None`: baseline).
#[derive(Debug)]
struct Tagged {
    line: Line,
    episode: Option<usize>,
}

/// The lines written so far, and which files each episode silences.
struct Script {
    start: Timestamp,
    lines: Vec<Tagged>,
    mutes: Vec<(Timestamp, Timestamp, &'static [DemoFile])>,
}

impl Script {
    /// A healthy line, dropped when an episode silences its file at that instant.
    fn baseline(&mut self, ts: Timestamp, file: DemoFile, text: String) {
        let muted = self
            .mutes
            .iter()
            .any(|(from, to, files)| (*from..*to).contains(&ts) && files.contains(&file));
        if !muted {
            self.push(ts, file, text, None);
        }
    }

    fn episode(&mut self, idx: usize, ts: Timestamp, file: DemoFile, text: String) {
        self.push(ts, file, text, Some(idx));
    }

    fn push(&mut self, ts: Timestamp, file: DemoFile, text: String, episode: Option<usize>) {
        self.lines.push(Tagged {
            line: Line { ts, file, text },
            episode,
        });
    }
}

fn generate_tagged(cfg: &DemoConfig) -> (Vec<Tagged>, Vec<Episode>, Timestamp) {
    let mut episodes = Vec::with_capacity(episodes::RECIPES.len());
    let mut at = cfg.start.plus_secs(EDGE_SECS);
    for recipe in &episodes::RECIPES {
        let end = at.plus_secs(recipe.secs);
        episodes.push(Episode {
            class: recipe.class,
            start: at,
            end,
        });
        at = end.plus_secs(GAP_SECS);
    }
    let end = at.plus_secs(EDGE_SECS - GAP_SECS);

    let mut script = Script {
        start: cfg.start,
        lines: Vec::new(),
        mutes: episodes
            .iter()
            .zip(&episodes::RECIPES)
            .map(|(ep, recipe)| (ep.start, ep.end, recipe.mutes))
            .collect(),
    };
    baseline::write(&mut script, cfg.seed, end, &episodes);
    for (idx, (ep, recipe)) in episodes.iter().zip(&episodes::RECIPES).enumerate() {
        let mut ctx = episodes::Ctx {
            rng: baseline::stream(cfg.seed, 1000 + idx as u64),
            start: ep.start,
            secs: (ep.end.0 - ep.start.0) as f64 / 1e6,
            idx,
            script: &mut script,
        };
        (recipe.write)(&mut ctx);
    }
    let mut lines = script.lines;
    debug_assert!(lines.iter().all(|t| {
        t.episode
            .is_none_or(|i| (episodes[i].start..episodes[i].end).contains(&t.line.ts))
    }));
    // Stable: lines at the same instant keep the order they were written in.
    lines.sort_by_key(|t| t.line.ts);
    (lines, episodes, end)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn tagged() -> (Vec<Tagged>, Vec<Episode>, Timestamp) {
        generate_tagged(&DemoConfig::default())
    }

    /// The default seed and a few others: the properties must not hang on one seed's luck.
    fn seeds() -> impl Iterator<Item = (u64, Vec<Tagged>, Vec<Episode>, Timestamp)> {
        [42, 1, 7, 0xdead_beef].into_iter().map(|seed| {
            let (lines, episodes, end) = generate_tagged(&DemoConfig {
                seed,
                ..DemoConfig::default()
            });
            (seed, lines, episodes, end)
        })
    }

    /// pino level ≥ 50, PostgreSQL ERROR/FATAL/PANIC, or ERROR/FATAL/Exception in a text line.
    fn is_error(line: &Line) -> bool {
        let first = line.text.lines().next().unwrap_or("");
        match line.file {
            DemoFile::App | DemoFile::Worker => {
                match serde_json::from_str::<serde_json::Value>(first) {
                    Ok(v) => v["level"].as_u64().unwrap() >= 50,
                    Err(_) => ["ERROR", "FATAL", "Exception"]
                        .iter()
                        .any(|w| first.contains(w)),
                }
            }
            DemoFile::Postgres => [" ERROR:  ", " FATAL:  ", " PANIC:  "]
                .iter()
                .any(|w| first.contains(w)),
            _ => ["ERROR", "FATAL", "Exception"]
                .iter()
                .any(|w| first.contains(w)),
        }
    }

    /// Most lines matching `pred` within any window of `window` seconds.
    fn max_in_window<'a>(
        lines: impl Iterator<Item = &'a Line>,
        window: i64,
        pred: impl Fn(&Line) -> bool,
    ) -> usize {
        let times: Vec<i64> = lines.filter(|l| pred(l)).map(|l| l.ts.0).collect();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= window * 1_000_000 {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    fn pg_duration_ms(line: &Line) -> Option<f64> {
        let rest = line.text.split(" duration: ").nth(1)?;
        rest.split(" ms").next()?.parse().ok()
    }

    fn json_field(line: &Line, field: &str) -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&line.text).ok()?;
        v.get(field).cloned()
    }

    /// Per class: what its rule counts, how many it needs, within how many seconds (the brief's
    /// obvious thresholds).
    type Pred = fn(&Line) -> bool;
    const THRESHOLDS: [(Class, Pred, usize, i64); 13] = [
        (
            Class::AppDown,
            |l| {
                l.text
                    .contains(r#""url":"/api/health"},"res":{"statusCode":503}"#)
            },
            5,
            60,
        ),
        (
            Class::DbConnection,
            |l| {
                l.text.contains("too many clients already")
                    || l.text.contains("remaining connection slots are reserved")
            },
            5,
            300,
        ),
        (
            Class::DbDown,
            |l| l.text.contains("the database system is shutting down"),
            1,
            300,
        ),
        (
            Class::HighMemory,
            |l| l.text.contains("Out of memory: Killed process"),
            1,
            300,
        ),
        (
            Class::EmailDelivery,
            |l| l.text.contains(r#""msg":"Resend API error""#),
            10,
            300,
        ),
        (
            Class::QueueBacklog,
            |l| l.text.contains("job stalled more than allowable limit"),
            5,
            300,
        ),
        (
            Class::SlowQueries,
            |l| pg_duration_ms(l).is_some_and(|ms| ms >= 1000.0),
            10,
            300,
        ),
        (
            Class::HighCpu,
            |l| {
                json_field(l, "eventLoopLagMs")
                    .and_then(|v| v.as_i64())
                    .is_some_and(|ms| ms >= 500)
            },
            5,
            300,
        ),
        (
            Class::Storage,
            |l| l.text.contains(r#""msg":"R2 upload failed""#),
            5,
            300,
        ),
        (
            Class::Redis,
            |l| l.text.contains("ECONNREFUSED 172.18.0.4:6379"),
            5,
            300,
        ),
        (Class::HighErrorRate, is_error, 60, 60),
        (
            Class::HighLatency,
            |l| {
                json_field(l, "responseTime")
                    .and_then(|v| v.as_i64())
                    .is_some_and(|ms| ms >= 2000)
            },
            10,
            300,
        ),
        (
            Class::Security,
            |l| l.text.contains(r#""ip":"203.0.113.9","email""#) && l.text.contains("failed login"),
            8,
            120,
        ),
    ];

    /// Phrases only episodes may write.
    const EPISODE_ONLY: [&str; 33] = [
        "too many clients",
        "remaining connection slots",
        "timeout exceeded when trying to connect",
        "the database system is",
        "PANIC",
        "invalid page",
        "Out of memory",
        "out of memory",
        "oom-killer",
        "job stalled",
        "Queue backlog growing",
        "Event loop lag",
        "R2 upload failed",
        "File upload failed",
        "Storage health check failing",
        "ECONNREFUSED",
        "MISCONF",
        "OOM command not allowed",
        "Background saving error",
        "Can't save in background",
        "request timeout",
        "slow request",
        "canceling statement",
        "Uncaught exception",
        r#""statusCode":503"#,
        "rate limit exceeded",
        "suspicious activity",
        "password authentication failed",
        "Email bounced",
        "Spam complaint",
        "Email delivery failed",
        "Unhandled error",
        "203.0.113.9",
    ];

    #[test]
    fn every_class_has_one_episode_with_room_to_resolve_around_it() {
        let tl = Timeline::generate(&DemoConfig::default());
        let mut classes: Vec<Class> = tl.episodes.iter().map(|e| e.class).collect();
        classes.sort();
        assert_eq!(classes, Class::ALL.to_vec());
        for (from, to) in tl.baseline_spans() {
            assert!(to.0 - from.0 >= GAP_SECS * 1_000_000);
        }
        let spans = tl.baseline_spans();
        assert!(spans[0].1.0 - spans[0].0.0 >= 600_000_000);
        assert!(spans[spans.len() - 1].1.0 - spans[spans.len() - 1].0.0 >= 600_000_000);
        for ep in &tl.episodes {
            let secs = (ep.end.0 - ep.start.0) / 1_000_000;
            assert!((120..=300).contains(&secs), "{} lasts {secs} s", ep.class);
        }
        let play = (tl.end.0 - tl.start.0) as f64 / 1e6 / DEFAULT_SPEED;
        assert!((50.0..=70.0).contains(&play), "plays in {play} s");
    }

    #[test]
    fn lines_are_in_time_order_and_inside_the_timeline() {
        let tl = Timeline::generate(&DemoConfig::default());
        assert!(tl.lines.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert!(tl.lines.iter().all(|l| tl.start <= l.ts && l.ts < tl.end));
        let per_sec = tl.lines.len() as f64 / ((tl.end.0 - tl.start.0) as f64 / 1e6);
        assert!((2.0..=6.0).contains(&per_sec), "{per_sec} lines/s");
        for file in DemoFile::ALL {
            assert!(tl.lines.iter().any(|l| l.file == file), "{file:?} is empty");
        }
    }

    #[test]
    fn episode_lines_stay_inside_their_episode_and_out_of_the_baseline() {
        let (lines, episodes, end) = tagged();
        let spans = spans_between(DEFAULT_START, end, &episodes);
        let mut per_episode = vec![0; episodes.len()];
        for t in lines.iter().filter_map(|t| t.episode.map(|e| (e, &t.line))) {
            let (idx, line) = t;
            per_episode[idx] += 1;
            let ep = episodes[idx];
            assert!(
                ep.start <= line.ts && line.ts < ep.end,
                "{}: {}",
                ep.class,
                line.text
            );
            assert!(!spans.iter().any(|(a, b)| *a <= line.ts && line.ts < *b));
        }
        assert!(per_episode.iter().all(|n| *n >= 5), "{per_episode:?}");
    }

    #[test]
    fn each_episode_crosses_its_class_threshold() {
        for (seed, lines, episodes, _) in seeds() {
            each_episode_crosses_its_class_threshold_for(seed, &lines, &episodes);
        }
    }

    fn each_episode_crosses_its_class_threshold_for(
        seed: u64,
        lines: &[Tagged],
        episodes: &[Episode],
    ) {
        for (class, pred, need, window) in THRESHOLDS {
            let idx = episodes.iter().position(|e| e.class == class).unwrap();
            let got = max_in_window(
                lines
                    .iter()
                    .filter(|t| t.episode == Some(idx))
                    .map(|t| &t.line),
                window,
                pred,
            );
            assert!(
                got >= need,
                "seed {seed}: {class}: {got} < {need} within {window} s"
            );
        }
        let backlog = episodes
            .iter()
            .position(|e| e.class == Class::QueueBacklog)
            .unwrap();
        assert!(
            lines
                .iter()
                .filter(|t| t.episode == Some(backlog))
                .any(|t| {
                    json_field(&t.line, "waiting")
                        .and_then(|v| v.as_i64())
                        .is_some_and(|w| w > 1000)
                })
        );
    }

    #[test]
    fn only_the_error_rate_episode_bursts_errors() {
        for (seed, lines, episodes, _) in seeds() {
            let lines: Vec<Line> = lines.into_iter().map(|t| t.line).collect();
            only_the_error_rate_episode_bursts_errors_for(seed, &lines, &episodes);
        }
    }

    fn only_the_error_rate_episode_bursts_errors_for(
        seed: u64,
        lines: &[Line],
        episodes: &[Episode],
    ) {
        for ep in episodes {
            let during = |l: &&Line| ep.start <= l.ts && l.ts < ep.end;
            if ep.class == Class::HighErrorRate {
                let app = lines
                    .iter()
                    .filter(during)
                    .filter(|l| l.file == DemoFile::App);
                assert!(max_in_window(app, 60, is_error) >= 60, "seed {seed}");
            } else {
                // Every service together, so a stack-wide error-rate rule stays quiet too.
                let worst = max_in_window(lines.iter().filter(during), 60, is_error);
                assert!(
                    worst < 30,
                    "seed {seed}: {} writes {worst} errors/min",
                    ep.class
                );
            }
        }
    }

    #[test]
    fn no_hour_outside_the_error_burst_reaches_sixty_errors() {
        for (seed, lines, episodes, _) in seeds() {
            let burst = episodes
                .iter()
                .position(|e| e.class == Class::HighErrorRate)
                .unwrap();
            let others = lines
                .iter()
                .filter(|t| t.episode != Some(burst))
                .map(|t| &t.line);
            let worst = max_in_window(others, 3600, is_error);
            assert!(
                worst < 60,
                "seed {seed}: {worst} error-level lines within an hour"
            );
        }
    }

    #[test]
    fn the_baseline_only_holds_near_misses() {
        let (lines, _, _) = tagged();
        let healthy: Vec<&Line> = lines
            .iter()
            .filter(|t| t.episode.is_none())
            .map(|t| &t.line)
            .collect();
        for line in &healthy {
            for phrase in EPISODE_ONLY {
                assert!(
                    !line.text.contains(phrase),
                    "baseline says `{phrase}`: {}",
                    line.text
                );
            }
        }
        let hour = 3600;
        assert!(max_in_window(healthy.iter().copied(), hour, is_error) <= 3);
        let slow = |l: &Line| pg_duration_ms(l).is_some_and(|ms| ms >= 1000.0);
        assert!(max_in_window(healthy.iter().copied(), 1800, slow) <= 1);
        assert!(healthy.iter().any(|l| slow(l)));
        // Near misses come one at a time, never two within ten minutes.
        let failed_login = |l: &Line| l.text.contains("failed login");
        assert_eq!(max_in_window(healthy.iter().copied(), 600, failed_login), 1);
        let resend = |l: &Line| l.text.contains("Resend API error");
        assert_eq!(max_in_window(healthy.iter().copied(), 600, resend), 1);
        let slow_request = |l: &Line| {
            json_field(l, "responseTime")
                .and_then(|v| v.as_i64())
                .is_some_and(|ms| ms >= 2000)
        };
        assert_eq!(max_in_window(healthy.iter().copied(), 600, slow_request), 1);
        let status = |l: &Line, code: i64| {
            json_field(l, "res").is_some_and(|r| r["statusCode"].as_i64() == Some(code))
        };
        assert!(healthy.iter().any(|l| status(l, 404)));
        assert!(healthy.iter().any(|l| status(l, 500)));
        let ok = healthy.iter().filter(|l| status(l, 200)).count();
        assert!(ok > 1000);
    }

    #[test]
    fn lines_have_the_shape_of_their_format() {
        let tl = Timeline::generate(&DemoConfig::default());
        let pg_prefix =
            regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] ").unwrap();
        let redis = regex::Regex::new(
            r"^\d+:([MCS] \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} [.*#-] |signal-handler \(\d+\) )",
        )
        .unwrap();
        let kern = regex::Regex::new(
            r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d newsletter-host kernel: \[ *\d+\.\d{6}\] ",
        )
        .unwrap();
        let mut by_file: HashMap<DemoFile, usize> = HashMap::new();
        for line in &tl.lines {
            *by_file.entry(line.file).or_default() += 1;
            match line.file {
                DemoFile::App | DemoFile::Worker => {
                    assert!(!line.text.contains('\n'));
                    if line.text.starts_with("FATAL ERROR: ") {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(&line.text).unwrap();
                    assert!([30, 40, 50, 60].contains(&v["level"].as_i64().unwrap()));
                    assert_eq!(v["time"].as_i64(), Some(line.ts.as_millis()));
                    assert!(v["pid"].is_u64() && v["hostname"].is_string() && v["msg"].is_string());
                }
                DemoFile::Postgres => {
                    for (i, physical) in line.text.lines().enumerate() {
                        assert!(
                            pg_prefix.is_match(physical) || (i > 0 && physical.starts_with('\t')),
                            "{physical}"
                        );
                    }
                    assert!(line.text.starts_with(&render::pg_time(line.ts)));
                }
                DemoFile::Redis => assert!(redis.is_match(&line.text), "{}", line.text),
                DemoFile::Kernel => assert!(kern.is_match(&line.text), "{}", line.text),
            }
        }
        assert_eq!(by_file.len(), 5);
    }

    #[test]
    fn the_same_seed_gives_the_same_timeline_and_another_seed_another() {
        let a = Timeline::generate(&DemoConfig::default());
        let b = Timeline::generate(&DemoConfig::default());
        assert_eq!(a.lines, b.lines);
        let c = Timeline::generate(&DemoConfig {
            seed: 7,
            ..DemoConfig::default()
        });
        assert_eq!(a.episodes, c.episodes);
        assert_ne!(a.lines, c.lines);
    }

    #[test]
    fn every_secret_is_written_somewhere() {
        let tl = Timeline::generate(&DemoConfig::default());
        for secret in SECRETS {
            assert!(tl.lines.iter().any(|l| l.text.contains(secret)), "{secret}");
        }
    }

    #[test]
    fn file_metadata_matches_the_stack() {
        let names: Vec<_> = DemoFile::ALL.iter().map(|f| f.file_name()).collect();
        assert_eq!(
            names,
            [
                "app.log",
                "worker.log",
                "postgresql.log",
                "redis.log",
                "kern.log"
            ]
        );
        let services: Vec<_> = DemoFile::ALL.iter().map(|f| f.service()).collect();
        assert_eq!(services, ["app", "worker", "postgres", "redis", "kernel"]);
        assert_eq!(
            DemoFile::Postgres.format(),
            Format::Postgres {
                prefix: Some("%m [%p] %q%u@%d ".into())
            }
        );
        for (i, f) in DemoFile::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
