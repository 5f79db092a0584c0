//! `logwarden scan`'s fast path against the slow, obvious way.
//!
//! The scan searches raw blocks for the rules' literals and skims: an entry holding no literal
//! whose level provably cannot reach a level-only rule is counted, not parsed. The claim checked
//! here is that the skim changes nothing: the scan finds exactly the matches and incident changes
//! that parsing every event (`parse_all`), matching all of them and running the incident engine
//! over every match find. The inputs are the demo's stack (compose and split layouts) and two
//! hand-written files built to break the skim's promises if they were wrong. The line count of
//! `scan --count` is checked against ripgrep's over the patterns `rules export --rg` writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use logwarden::demo::{DemoFile, Layout};
use logwarden::detect::Match;
use logwarden::detect::matcher::Matcher;
use logwarden::detect::pack;
use logwarden::event::EventId;
use logwarden::incident::Change;
use logwarden::incident::engine::{Engine, EngineConfig};
use logwarden::parse::{Format, parse_all};
use logwarden::pipeline::{self, Settings, Summary};
use logwarden::source::SourceSpec;

use crate::support::{logwarden, run, stderr, stdout};

const SEED: u64 = 42;
const PG_PREFIX: &str = "%m [%p] %q%u@%d ";

fn spec(service: &str, format: Format, path: &Path) -> SourceSpec {
    SourceSpec {
        service: service.to_string(),
        format,
        path: path.to_path_buf(),
    }
}

/// What a run found: every match and every incident change, in the order they came.
struct Found {
    matches: Vec<Match>,
    changes: Vec<Change>,
    /// Events and lines: every line in exactly one event, whether parsed or skimmed over.
    events: u64,
    lines: u64,
}

/// The slow, obvious way: parse every event of every file, match all of them, and give every
/// match to the incident engine, which runs once at the end (as `scan` and `backfill` do).
fn reference(sources: &[SourceSpec]) -> Found {
    let rules = Arc::new(pack::default_rules().unwrap());
    let runbook = Arc::new(pack::runbook_from(None).unwrap());
    let matcher = Matcher::new(Arc::clone(&rules)).unwrap();
    let mut engine = Engine::new(rules, runbook, EngineConfig::default());
    let mut found = Found {
        matches: Vec::new(),
        changes: Vec::new(),
        events: 0,
        lines: 0,
    };
    for source in sources {
        let bytes = std::fs::read(&source.path).unwrap();
        let fingerprint = logwarden::source::fingerprint::of_head(&bytes, true).unwrap_or(0);
        let events = parse_all(&source.service, source.format.clone(), fingerprint, &bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", source.path.display()));
        found.events += events.len() as u64;
        found.lines += events.iter().map(|e| u64::from(e.lines)).sum::<u64>();
        let matches = matcher.scan(&events);
        found.matches.extend(matches.iter().cloned());
        engine.push(matches);
    }
    found.changes = engine.finish();
    found
}

/// The fast path, through the library: `pipeline::scan`, reading blocks of `block` bytes (small
/// blocks make many forks and many seams between them, some inside multi-line entries).
fn scanned(dir: &Path, sources: &[SourceSpec], block: usize) -> (Found, Summary) {
    let mut settings = Settings::new(dir.join("data"), sources.to_vec());
    settings.scan_block = block;
    let mut matches = Vec::new();
    let mut changes = Vec::new();
    let summary = pipeline::scan(
        &settings,
        &mut |event, m| {
            assert_eq!(event.id, m.event, "on_match is given the match's own event");
            matches.push(m.clone());
        },
        &mut |change| changes.push(change.clone()),
    )
    .unwrap();
    let found = Found {
        matches,
        changes,
        events: summary.events,
        lines: summary.lines,
    };
    (found, summary)
}

/// Where a match came from, for the report: the case of a hand-written file (empty otherwise).
type Label<'a> = &'a dyn Fn(&Match) -> String;

/// The matches by event and rule; one match per pair.
fn by_event_and_rule(matches: &[Match]) -> BTreeMap<(EventId, usize), &Match> {
    let mut out = BTreeMap::new();
    for m in matches {
        let previous = out.insert((m.event, m.rule), m);
        assert!(
            previous.is_none(),
            "two matches of one event and rule: {m:?}"
        );
    }
    out
}

fn describe_match(m: &Match, label: Label<'_>) -> String {
    static RULE_IDS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let rules = pack::default_rules().unwrap();
        rules.rules.iter().map(|r| r.id.clone()).collect()
    });
    format!(
        "{} on the event at byte {} [{}] {} ts={} {:?}",
        RULE_IDS[m.rule],
        m.event.offset,
        label(m),
        m.service,
        m.ts,
        m.excerpt
    )
}

fn describe_change(c: &Change) -> String {
    format!(
        "{:?} {} ({}) count={} at={} first_seen={}",
        c.kind, c.incident.id, c.incident.rule, c.incident.count, c.at, c.incident.first_seen
    )
}

/// Scan and reference agree on every match (event id and rule, and all the match carries: time,
/// service, captures, excerpt) and on every incident change (kind, incident id, count, times,
/// evidence), in the same order.
fn assert_scan_agrees(what: &str, want: &Found, got: &Found, label: Label<'_>) {
    assert_eq!(got.lines, want.lines, "{what}: lines read");
    assert_eq!(got.events, want.events, "{what}: events");
    let want_matches = by_event_and_rule(&want.matches);
    let got_matches = by_event_and_rule(&got.matches);
    let mut matches = Vec::new();
    let keys: BTreeSet<&(EventId, usize)> = want_matches.keys().chain(got_matches.keys()).collect();
    for key in keys {
        match (want_matches.get(key), got_matches.get(key)) {
            (Some(w), Some(g)) if w == g => {}
            (Some(w), Some(g)) => matches.push(format!(
                "match differs: reference {}\n                 scan      {}",
                describe_match(w, label),
                describe_match(g, label)
            )),
            (Some(w), None) => {
                matches.push(format!("missed by scan: {}", describe_match(w, label)))
            }
            (None, Some(g)) => matches.push(format!("only in scan: {}", describe_match(g, label))),
            (None, None) => {}
        }
    }
    let mut changes = Vec::new();
    for c in want.changes.iter().filter(|c| !got.changes.contains(c)) {
        changes.push(format!("change missed by scan: {}", describe_change(c)));
    }
    for c in got.changes.iter().filter(|c| !want.changes.contains(c)) {
        changes.push(format!("change only in scan: {}", describe_change(c)));
    }
    if changes.is_empty() && want.changes != got.changes {
        changes.push("the same changes, in another order".into());
    }
    assert!(
        matches.is_empty() && changes.is_empty(),
        "{what}: scan and the reference disagree on {} of {} matches and {} of {} changes \
         (the scan found {} matches, {} changes):\n  {}\n  {}",
        matches.len(),
        want.matches.len(),
        changes.len(),
        want.changes.len(),
        got.matches.len(),
        got.changes.len(),
        capped(matches).join("\n  "),
        capped(changes).join("\n  "),
    );
}

/// The first lines of a report, then how many more there are.
fn capped(mut lines: Vec<String>) -> Vec<String> {
    const SHOWN: usize = 16;
    let more = lines.len().saturating_sub(SHOWN);
    lines.truncate(SHOWN);
    if more > 0 {
        lines.push(format!("… and {more} more"));
    }
    lines
}

/// Scan `sources` and compare with the reference; the skim must have passed over something, or
/// the comparison proves nothing about it.
fn check(what: &str, dir: &Path, sources: &[SourceSpec], label: Label<'_>) -> Found {
    let want = reference(sources);
    assert!(!want.matches.is_empty(), "{what}: no match at all");
    assert!(!want.changes.is_empty(), "{what}: no incident at all");
    for block in [pipeline::SCAN_BLOCK, 64 * 1024, 4096, 700] {
        let (got, summary) = scanned(dir, sources, block);
        let what = format!("{what} in blocks of {block} bytes");
        assert!(
            summary.parsed < summary.events,
            "{what}: the skim passed over nothing ({summary})"
        );
        assert_eq!(
            summary.matches,
            got.matches.len() as u64,
            "{what}: {summary}"
        );
        assert_scan_agrees(&what, &want, &got, label);
    }
    want
}

/// A log file written line by line, each line labelled with the case it belongs to, so that a
/// match (by its event's first byte) can be traced back to the case that produced it.
#[derive(Default)]
struct Labelled {
    bytes: Vec<u8>,
    starts: Vec<(u64, &'static str)>,
}

/// Lines that only set the scene: they need not match anything.
const FILLER: &str = "filler";

impl Labelled {
    /// A line ending in `\n`.
    fn line(&mut self, case: &'static str, text: impl AsRef<[u8]>) {
        self.raw(case, text.as_ref());
        self.bytes.push(b'\n');
    }

    /// Bytes as they are (a CRLF line, invalid UTF-8, a last line without newline).
    fn raw(&mut self, case: &'static str, bytes: &[u8]) {
        self.starts.push((self.bytes.len() as u64, case));
        self.bytes.extend_from_slice(bytes);
    }

    /// The case of the line starting at or before `offset`.
    fn case_at(&self, offset: u64) -> &'static str {
        let at = self.starts.partition_point(|(start, _)| *start <= offset);
        at.checked_sub(1).map_or("?", |i| self.starts[i].1)
    }

    fn cases(&self) -> BTreeSet<&'static str> {
        self.starts
            .iter()
            .map(|(_, case)| *case)
            .filter(|c| *c != FILLER)
            .collect()
    }
}

/// 2026-11-28T14:00:00Z in milliseconds.
const T0: i64 = 1_795_874_400_000;
/// Rounds of each adversarial file, 1.5 s apart: enough for every count rule of the pack the
/// cases touch (`count >= 30 within 1m` is the most demanding) to open an incident.
const ROUNDS: i64 = 40;
const ROUND_MS: i64 = 1500;

/// A pino file (service `app`) built to break the skim's promises if they were wrong.
///
/// The skim passes over a line opening with `{"level":30,` (no other `"level"` on it, no literal,
/// no level-probe word) without parsing it. Each case either must be parsed because its level may
/// reach a level rule, or is passed over while a following line without a time takes its time, so
/// that a wrong skim shows up as a missed match or a match at the wrong time.
fn adversarial_pino() -> Labelled {
    let mut f = Labelled::default();
    f.line(
        FILLER,
        format!(r#"{{"level":30,"time":{T0},"pid":23,"msg":"server listening"}}"#),
    );
    for i in 0..ROUNDS {
        let t = T0 + i * ROUND_MS;
        // Passed over by the skim: info lines without any literal.
        for k in 0..3 {
            f.line(
                FILLER,
                format!(
                    r#"{{"level":30,"time":{},"pid":23,"req":{{"method":"GET","url":"/api/campaigns"}},"res":{{"statusCode":200}},"msg":"request completed"}}"#,
                    t + k
                ),
            );
        }
        let case = "level not the first key";
        f.line(
            case,
            format!(r#"{{"time":{t},"level":50,"msg":"query failed"}}"#),
        );
        f.line(
            case,
            format!(r#"{{"pid":23,"level":40,"time":{t},"msg":"slow"}}"#),
        );

        let case = "duplicate level key, the later one wins";
        f.line(
            case,
            format!(r#"{{"level":30,"time":{t},"msg":"retrying","level":50}}"#),
        );

        let case = "nested level in a level-30 line, then a timeless trace taking its time";
        f.line(
            case,
            format!(r#"{{"level":30,"time":{},"job":{{"level":50,"name":"digest"}},"msg":"job queued"}}"#, t + 100),
        );
        f.line(case, "Error: Redis reconnect failed");
        f.line(
            case,
            "    at RedisClient.connect ECONNREFUSED 10.0.0.3:6379",
        );

        let case = "string levels";
        f.line(
            case,
            format!(r#"{{"level":"error","time":{t},"msg":"string level"}}"#),
        );
        f.line(
            case,
            format!(r#"{{"level":"warn","time":{t},"msg":"string level"}}"#),
        );

        let case = "a space after the colon";
        f.line(
            case,
            format!(r#"{{"level": 50,"time":{t},"msg":"spaced"}}"#),
        );

        let case = "malformed JSON with a level word";
        f.line(
            case,
            format!(r#"{{"level":30,"time":{t},"msg":"ERROR in template render"#),
        );
        f.line(
            case,
            format!(r#"{{"level":30,"time":{t},"msg":"WARN pool low" "x"}}"#),
        );
        f.line(
            case,
            format!(r#"{{"level":30,"time":{t},"msg":"java.lang.IllegalStateException" oops}}"#),
        );

        let case = "malformed JSON without a level word, then a timeless trace";
        f.line(
            FILLER,
            format!(r#"{{"level":30,"time":{},"msg":"tick"}}"#, t + 200),
        );
        f.line(
            case,
            format!(r#"{{"level":30,"time":{},"msg":"cut short"#, t + 210),
        );
        f.line(
            case,
            format!(r#"{{"level":30,"time":{},"msg":"a" "b"}}"#, t + 220),
        );
        f.line(case, "Error: connect failed");
        f.line(
            case,
            "    at Pool.connect (node_modules/pg-pool/index.js:45:11)",
        );
        f.line(case, "    at connect ECONNREFUSED 10.0.0.1:5432");

        let case = "a literal only on a continuation line of a stack trace";
        f.line(
            case,
            "TypeError: Cannot read properties of undefined (reading 'id')",
        );
        f.line(
            case,
            "    at getCampaign (/app/dist/routes/campaigns.js:88:31)",
        );
        f.line(
            case,
            "    at Socket.<anonymous> connect ECONNREFUSED 10.0.0.1:5432",
        );

        let case = "a timeless trace right after skipped lines";
        f.line(
            FILLER,
            format!(r#"{{"level":30,"time":{},"msg":"tick"}}"#, t + 300),
        );
        f.line(
            FILLER,
            format!(r#"{{"level":20,"time":{},"msg":"tock"}}"#, t + 310),
        );
        f.line(case, "Error: Redis connection failed");
        f.line(
            case,
            "    at RedisClient.connect ECONNREFUSED 10.0.0.4:6379",
        );

        let case = "a timeless trace after a skipped line without time";
        f.line(
            FILLER,
            format!(r#"{{"level":30,"time":{},"msg":"tick"}}"#, t + 400),
        );
        f.line(case, r#"{"level":30,"pid":23,"msg":"no time here"}"#);
        f.line(case, "Error: Redis connection failed");
        f.line(
            case,
            "    at RedisClient.connect ECONNREFUSED 10.0.0.5:6379",
        );

        let case = "a literal whose regex fails on a skipped line, then a timeless trace";
        f.line(
            case,
            format!(
                r#"{{"level":30,"time":{},"msg":"connect ECONNREFUSED 10.0.0.1:9999"}}"#,
                t + 500
            ),
        );
        f.line(case, "Error: Redis connection failed");
        f.line(
            case,
            "    at RedisClient.connect ECONNREFUSED 10.0.0.6:6379",
        );

        let case = "CRLF line endings";
        f.raw(
            case,
            format!("{{\"level\":50,\"time\":{t},\"msg\":\"crlf\"}}\r\n").as_bytes(),
        );
        f.raw(
            FILLER,
            format!("{{\"level\":30,\"time\":{t},\"msg\":\"crlf quiet\"}}\r\n").as_bytes(),
        );
        f.raw(
            case,
            format!("{{\"level\":30,\"time\":{t},\"msg\":\"Redis connection lost\"}}\r\n")
                .as_bytes(),
        );

        let case = "invalid UTF-8";
        f.line(
            case,
            [
                format!(r#"{{"level":50,"time":{t},"msg":"caf"#).as_bytes(),
                b"\xe9\"}",
            ]
            .concat(),
        );
        f.line(
            FILLER,
            [
                format!(r#"{{"level":30,"time":{t},"msg":""#).as_bytes(),
                b"\xfe quiet\"}",
            ]
            .concat(),
        );
        f.line(
            case,
            [
                format!(r#"{{"level":30,"time":{t},"msg":""#).as_bytes(),
                b"\xff connect ECONNREFUSED 10.0.0.7:6379\"}",
            ]
            .concat(),
        );

        // JSON reads `"\u006cevel"` as `"level"`, and the later key wins: level 50.
        let case = "an escaped duplicate level key";
        f.line(
            case,
            format!(r#"{{"level":30,"time":{t},"msg":"retrying","\u006cevel":50}}"#),
        );
    }
    let t = T0 + ROUNDS * ROUND_MS;
    f.raw(
        "the last line without newline",
        format!(r#"{{"level":50,"time":{t},"msg":"connect ECONNREFUSED 10.0.0.2:5432"}}"#)
            .as_bytes(),
    );
    f
}

/// `%m` of the PostgreSQL prefix for `T0 + ms` (within the hour).
fn pg_time(ms: i64) -> String {
    let ms = ms - T0;
    format!(
        "2026-11-28 14:{:02}:{:02}.{:03} UTC",
        ms / 60_000,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A PostgreSQL stderr file (`log_line_prefix = '%m [%p] %q%u@%d '`, service `postgres`) built to
/// break the skim's promises: its level bound says a prefixed line is at most notice unless it
/// holds a probe word, so every case is on lines the skim would pass over if it trusted a wrong
/// promise, or on continuation lines whose entry opened as a quiet one.
fn adversarial_postgres() -> Labelled {
    let mut f = Labelled::default();
    for i in 0..ROUNDS {
        let t = T0 + i * ROUND_MS;
        let p = |ms: i64, pid: u32| format!("{} [{pid}] newsletter@newsletter", pg_time(t + ms));
        f.line(
            FILLER,
            format!("{} [57] LOG:  checkpoint starting: time", pg_time(t)),
        );
        // A literal whose regex fails: passed over.
        f.line(
            FILLER,
            format!(
                "{} LOG:  duration: 0.512 ms  statement: SELECT 1",
                p(1, 4300)
            ),
        );

        let case = "short and long durations";
        f.line(
            case,
            format!(
                "{} LOG:  duration: 999.9 ms  statement: SELECT 1",
                p(2, 4301)
            ),
        );
        f.line(
            case,
            format!(
                "{} LOG:  duration: 1000.0 ms  statement: SELECT 2",
                p(3, 4301)
            ),
        );
        f.line(
            case,
            format!("{} LOG:  duration: 1e4 ms  statement: SELECT 3", p(4, 4301)),
        );
        f.line(
            case,
            format!(
                "{} LOG:  duration: 61000.5 ms  statement: SELECT 4",
                p(5, 4301)
            ),
        );

        let case = "a multi-line statement";
        f.line(
            case,
            format!(
                "{} LOG:  duration: 5234.123 ms  statement: SELECT c.id,",
                p(6, 4302)
            ),
        );
        f.line(case, "\t       c.subject");
        f.line(case, "\tFROM campaigns c WHERE c.sent_at IS NULL");

        // A rule's literal on the first line and its regex matching only over both lines: a weak
        // hit, which the skim must not pass over in a multi-line entry.
        let case = "a regex matching only across the lines of a statement";
        f.line(
            case,
            format!(
                "{} LOG:  statement: SELECT 'password authentication failed for user \"bob",
                p(7, 4303)
            ),
        );
        f.line(case, "\t\"'");
        // The same with a `where` the event must also pass: it matches nothing, either way.
        f.line(
            FILLER,
            format!(
                "{} LOG:  statement: UPDATE jobs SET note = 'duration: 7",
                p(7, 4303)
            ),
        );
        f.line(FILLER, "\ttime'");

        let case = "WARNING, ERROR, FATAL and PANIC";
        f.line(
            case,
            format!(
                "{} WARNING:  there is no transaction in progress",
                p(8, 4304)
            ),
        );
        f.line(
            case,
            format!(
                "{} ERROR:  relation \"campaing\" does not exist at character 15",
                p(9, 4304)
            ),
        );
        f.line(
            case,
            format!("{} STATEMENT:  SELECT * FROM campaing", p(9, 4304)),
        );
        f.line(
            case,
            format!("{} FATAL:  sorry, too many clients already", p(10, 4305)),
        );
        f.line(
            case,
            format!(
                "{} FATAL:  password authentication failed for user \"newsletter\"",
                p(11, 4306)
            ),
        );
        f.line(
            case,
            format!(
                "{} DETAIL:  Connection matched pg_hba.conf line 99: \"host all all all scram-sha-256\"",
                p(11, 4306)
            ),
        );
        f.line(
            case,
            format!("{} [58] PANIC:  could not write to file \"pg_wal/xlogtemp.58\": No space left on device", pg_time(t + 12)),
        );

        let case = "a literal only on a DETAIL or CONTEXT line of a LOG entry";
        f.line(
            case,
            format!(
                "{} LOG:  process 4307 acquired ShareLock on transaction 7 after 2.0 ms",
                p(13, 4307)
            ),
        );
        f.line(
            case,
            format!(
                "{} DETAIL:  Process 4307 was still waiting for ShareLock on transaction 7",
                p(13, 4307)
            ),
        );
        f.line(
            case,
            format!(
                "{} LOG:  automatic vacuum of table \"newsletter.public.campaigns\"",
                p(14, 4308)
            ),
        );
        f.line(
            case,
            format!(
                "{} CONTEXT:  while scanning relation \"public.campaigns\": could not read block 5",
                p(14, 4308)
            ),
        );

        let case = "lines without the prefix";
        f.line(case, "pg_ctl: could not start server");
        f.line(
            case,
            format!(
                "waiting for server to start....{} [48] FATAL:  the database system is starting up",
                pg_time(t + 15)
            ),
        );
        f.line(
            case,
            "could not read block 7 in file \"base/16384/16385\": read only 0 of 8192 bytes",
        );

        let case = "a timeless line right after skipped lines";
        f.line(
            FILLER,
            format!(
                "{} LOG:  connection received: host=10.0.0.9 port=5000",
                p(300, 4309)
            ),
        );
        f.line(case, "pg_ctl: could not start server");
    }
    f
}

#[test]
fn scan_finds_what_parsing_everything_finds() {
    let dir = tempfile::tempdir().unwrap();
    let no_labels = |_: &Match| String::new();

    // (a) The demo's compose stream, read as `auto`.
    let compose = dir.path().join("compose.log");
    logwarden::demo::generate_to(&compose, 3_000_000, SEED, Layout::Compose).unwrap();
    check(
        "compose",
        dir.path(),
        &[spec("stack", Format::Auto, &compose)],
        &no_labels,
    );

    // (b) The demo's five files, each in its own format.
    let split = dir.path().join("split");
    std::fs::create_dir_all(&split).unwrap();
    logwarden::demo::generate_to(&split, 3_000_000, SEED, Layout::Split).unwrap();
    let sources: Vec<SourceSpec> = DemoFile::ALL
        .iter()
        .map(|f| spec(f.service(), f.format(), &split.join(f.file_name())))
        .collect();
    check("split", dir.path(), &sources, &no_labels);

    // (c) The hand-written files, each case of which must produce a match in the reference.
    let pino = adversarial_pino();
    let postgres = adversarial_postgres();
    let pino_path = dir.path().join("app.log");
    let pg_path = dir.path().join("postgresql.log");
    std::fs::write(&pino_path, &pino.bytes).unwrap();
    std::fs::write(&pg_path, &postgres.bytes).unwrap();
    let sources = [
        spec("app", Format::Pino, &pino_path),
        spec(
            "postgres",
            Format::Postgres {
                prefix: Some(PG_PREFIX.into()),
            },
            &pg_path,
        ),
    ];
    let pino_fp = logwarden::source::fingerprint::of_head(&pino.bytes, true).unwrap_or(0);
    let case_of = |m: &Match| -> &'static str {
        if m.event.fingerprint == pino_fp {
            pino.case_at(m.event.offset)
        } else {
            postgres.case_at(m.event.offset)
        }
    };
    let label = |m: &Match| case_of(m).to_string();
    let want = check("adversarial", dir.path(), &sources, &label);
    let matched: BTreeSet<&str> = want.matches.iter().map(case_of).collect();
    let cases: BTreeSet<&str> = pino.cases().union(&postgres.cases()).copied().collect();
    let idle: Vec<&&str> = cases.difference(&matched).collect();
    assert!(
        idle.is_empty(),
        "cases that produce no match in the reference, so prove nothing: {idle:?}"
    );
}

/// A `rg` command, or a failure saying how to install ripgrep.
fn rg() -> Command {
    let found = Command::new("rg").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "ripgrep (`rg`) is missing: `apt-get install ripgrep` (tests/run installs it)"
    );
    Command::new("rg")
}

/// `rg -c -f PATTERNS FILE` and `logwarden scan --count` print the same number for `file`, > 0.
fn rg_and_scan_count(dir: &Path, patterns: &Path, file: &Path) {
    let out = run(rg().arg("-c").arg("-f").arg(patterns).arg(file));
    assert!(out.status.success(), "rg: {}", stderr(&out));
    let rg_count: u64 = stdout(&out).trim().parse().unwrap();
    let out = run(logwarden()
        .current_dir(dir)
        .args(["scan", "--count", "--source"])
        .arg(format!("auto={}", file.display())));
    assert!(out.status.success(), "scan: {}", stderr(&out));
    let scan_count: u64 = stdout(&out).trim().parse().unwrap_or_else(|_| {
        panic!(
            "scan --count printed more than a number: {:?}",
            stdout(&out)
        )
    });
    assert_eq!(scan_count, rg_count, "{}", file.display());
    assert!(scan_count > 0, "{}: no line matches", file.display());
}

#[test]
fn scan_counts_the_lines_rg_counts() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("compose.log");
    let out = run(logwarden()
        .args(["demo", "--generate", "3M", "--out"])
        .arg(&corpus));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(logwarden().args(["rules", "export", "--rg"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let patterns = dir.path().join("pats");
    std::fs::write(&patterns, &out.stdout).unwrap();
    rg_and_scan_count(dir.path(), &patterns, &corpus);

    // The hand-written files: CRLF, invalid UTF-8, a last line without newline, weak hits.
    let pino = dir.path().join("app.log");
    std::fs::write(&pino, adversarial_pino().bytes).unwrap();
    rg_and_scan_count(dir.path(), &patterns, &pino);
    let postgres = dir.path().join("postgresql.log");
    std::fs::write(&postgres, adversarial_postgres().bytes).unwrap();
    rg_and_scan_count(dir.path(), &patterns, &postgres);
}

/// The number before ` matches` in the summary `scan` prints on stderr.
fn summary_matches(stderr: &str) -> u64 {
    let n = stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" matches"))
        .unwrap_or_else(|| panic!("no match count in the summary: {stderr}"));
    n.parse().unwrap()
}

#[test]
fn scan_matches_prints_each_matching_event() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("compose.log");
    let out = run(logwarden()
        .args(["demo", "--generate", "400K", "--out"])
        .arg(&corpus));
    assert!(out.status.success(), "{}", stderr(&out));
    let source = format!("auto={}", corpus.display());

    let out = run(logwarden().current_dir(dir.path()).args([
        "scan",
        "--matches",
        "--json",
        "--source",
        &source,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = summary_matches(&stderr(&out));
    assert!(expected > 0, "{}", stderr(&out));
    let mut json_matches = Vec::new();
    for line in stdout(&out).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not NDJSON ({e}): {line}"));
        if v.get("match").is_some() {
            for key in ["rule", "match", "event"] {
                assert!(v.get(key).is_some(), "no `{key}` in {line}");
            }
            assert_eq!(v["match"]["event"], v["event"]["id"], "{line}");
            json_matches.push(v);
        } else {
            assert!(
                v.get("kind").is_some(),
                "neither a match nor a change: {line}"
            );
        }
    }
    assert_eq!(json_matches.len() as u64, expected);

    // Without `--json`: one grep-like line per match (time, service, rule id, first line), in
    // the same order, among the incident changes.
    let out =
        run(logwarden()
            .current_dir(dir.path())
            .args(["scan", "--matches", "--source", &source]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(summary_matches(&stderr(&out)), expected);
    let text = stdout(&out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(lines.len() as u64, expected, "{text}");
    for (line, m) in lines.iter().zip(&json_matches) {
        let mut words = line.split_whitespace();
        // The same instant (the text view always prints milliseconds, JSON trims zeros).
        let instant = |t: Option<&str>| t.and_then(|t| t.parse::<jiff::Timestamp>().ok());
        assert_eq!(
            instant(words.next()),
            instant(m["event"]["ts"].as_str()),
            "{line}"
        );
        assert!(instant(m["event"]["ts"].as_str()).is_some(), "{line}");
        assert_eq!(words.next(), m["event"]["service"].as_str(), "{line}");
        assert_eq!(words.next(), m["rule"].as_str(), "{line}");
        let excerpt = m["match"]["excerpt"].as_str().unwrap();
        assert!(
            line.ends_with(excerpt),
            "{line}\ndoes not end with {excerpt}"
        );
    }
}
