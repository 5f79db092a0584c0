//! Behaviour of `query::run` over real (temporary) indexes.

use std::path::Path;

use proptest::prelude::*;
use tempfile::TempDir;

use super::*;
use crate::event::{Event, EventId, Events, Flags};
use crate::store::index::EventIndex;

const T0: i64 = 1_795_874_400_000; // 2026-11-28T14:00:00Z in ms

fn ev(offset: u64, ts_ms: i64, service: &str, level: Level, raw: &str) -> Event {
    let fields = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let message = fields
        .get("msg")
        .and_then(|m| m.as_str())
        .unwrap_or(raw)
        .to_string();
    Event {
        id: EventId {
            fingerprint: 0xf00d,
            offset,
        },
        ts: Timestamp::from_millis(ts_ms),
        service: service.into(),
        level,
        message,
        raw: raw.into(),
        fields,
        flags: Flags::default(),
        len: raw.len() as u32 + 1,
        lines: 1,
    }
}

fn build(dir: &Path, events: Vec<Event>) {
    let index = EventIndex::open_or_create(&dir.join("index")).unwrap();
    let mut sink = index.writer(15_000_000).unwrap();
    sink.add(&Events::new(events)).unwrap();
    sink.commit("{}").unwrap();
}

fn request(dir: &Path, query: &str) -> Request {
    Request::plain(dir, query, Timestamp::from_millis(T0 + 3_600_000))
}

fn lines(req: &Request) -> (Outcome, Vec<String>) {
    let mut out = Vec::new();
    let outcome = run(req, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    (outcome, text.lines().map(str::to_string).collect())
}

/// The raw text of each printed event (the line after `ts service level `).
fn raws(req: &Request) -> Vec<String> {
    lines(req)
        .1
        .into_iter()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default().to_string())
        .collect()
}

fn count(req: &Request) -> u64 {
    let mut r = req.clone();
    r.count = true;
    let (outcome, out) = lines(&r);
    assert_eq!(out, vec![outcome.matched.to_string()]);
    outcome.matched
}

fn stack() -> (TempDir, Vec<Event>) {
    let dir = TempDir::new().unwrap();
    let events = vec![
        ev(
            0,
            T0,
            "app",
            Level::Info,
            r#"{"level":30,"req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":42,"msg":"request completed"}"#,
        ),
        ev(
            200,
            T0 + 1000,
            "app",
            Level::Error,
            r#"{"level":50,"req":{"method":"GET","url":"/api/health"},"res":{"statusCode":503},"responseTime":3,"msg":"request completed"}"#,
        ),
        ev(
            0,
            T0 + 2000,
            "postgres",
            Level::Fatal,
            "2026-11-28 14:00:02.000 UTC [4301] newsletter@newsletter FATAL:  sorry, too many clients already",
        ),
        ev(
            100,
            T0 + 3000,
            "postgres",
            Level::Info,
            r#"2026-11-28 14:00:03.000 UTC [4242] newsletter@newsletter LOG:  duration: 5234.123 ms  statement: SELECT * FROM email_events"#,
        ),
        ev(
            400,
            T0 + 4000,
            "worker",
            Level::Info,
            r#"{"level":30,"queue":"campaign-emails","jobId":"8812","msg":"Job completed","durationMs":310}"#,
        ),
        ev(
            600,
            T0 + 5000,
            "worker",
            Level::Warn,
            r#"{"level":40,"queue":"campaign-emails","waiting":5234,"active":5,"msg":"Queue backlog growing"}"#,
        ),
        ev(
            800,
            T0 + 6000,
            "app",
            Level::Warn,
            r#"{"level":40,"req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":4200,"msg":"slow request"}"#,
        ),
        ev(
            900,
            T0 + 7000,
            "worker",
            Level::Error,
            r#"{"level":50,"queue":"ai-insights","err":{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests."},"msg":"Resend API error"}"#,
        ),
    ];
    let mut fields_pg = events[3].clone();
    fields_pg
        .fields
        .insert("duration_ms".into(), serde_json::json!(5234.123));
    let mut all = events;
    all[3] = fields_pg;
    build(dir.path(), all.clone());
    (dir, all)
}

#[test]
fn literal_phrases_match_raw_substrings_with_smart_case() {
    let (dir, _) = stack();
    let d = dir.path();
    assert_eq!(raws(&request(d, r#""too many clients""#)).len(), 1);
    // all-lowercase: case-insensitive (also finds "Too many requests.")
    assert_eq!(raws(&request(d, r#""too many""#)).len(), 2);
    // an uppercase letter makes it case-sensitive
    assert_eq!(raws(&request(d, r#""Too many""#)).len(), 1);
    // substrings inside tokens
    assert_eq!(raws(&request(d, "ampaign")).len(), 4);
    assert_eq!(raws(&request(d, "FATAL:")).len(), 1);
    assert_eq!(raws(&request(d, "4301]")).len(), 1);
    assert_eq!(raws(&request(d, "nothing-like-this")).len(), 0);
}

#[test]
fn field_terms_comparisons_and_booleans() {
    let (dir, _) = stack();
    let d = dir.path();
    let n = |q: &str| count(&request(d, q));
    assert_eq!(n("res.statusCode:503"), 1);
    assert_eq!(n("res.statusCode:200"), 2);
    assert_eq!(n("queue:campaign-emails"), 2);
    assert_eq!(n("jobId:8812"), 1);
    assert_eq!(n("service:postgres"), 2);
    assert_eq!(n("level:error"), 2, "level:error means exactly error");
    assert_eq!(n("level:>=error"), 3);
    assert_eq!(n("responseTime:>=2000"), 1);
    assert_eq!(n("responseTime:<42"), 1);
    assert_eq!(n("duration_ms:>1000"), 1);
    assert_eq!(n(r#"msg:"Job completed""#), 1);
    assert_eq!(n("message:backlog"), 1);
    assert_eq!(n("err.statusCode:429"), 1);
    assert_eq!(n("service:app OR service:worker"), 6);
    assert_eq!(n("service:app completed"), 2);
    assert_eq!(n("service:app AND NOT completed"), 1);
    assert_eq!(n("service:app -completed"), 1);
    assert_eq!(n("-service:app"), 5);
    assert_eq!(n("NOT completed"), 5);
    assert_eq!(
        n("(queue:ai-insights OR res.statusCode:503) level:error"),
        2
    );
    assert_eq!(n(""), 8);
}

#[test]
fn results_come_in_time_order_and_count_agrees() {
    let dir = TempDir::new().unwrap();
    // inserted out of order; two share a timestamp and are ordered by event id
    let events = vec![
        ev(50, T0 + 3000, "app", Level::Info, "error c"),
        ev(10, T0 + 1000, "app", Level::Info, "error a"),
        ev(30, T0 + 2000, "app", Level::Info, "error b2"),
        ev(20, T0 + 2000, "app", Level::Info, "error b1"),
    ];
    build(dir.path(), events);
    let req = request(dir.path(), "error");
    let got = raws(&req);
    assert_eq!(got, ["error a", "error b1", "error b2", "error c"]);
    assert_eq!(count(&req), got.len() as u64);
    let (_, out) = lines(&req);
    assert!(
        out[0].starts_with("2026-11-28T14:00:01.000Z app info "),
        "{}",
        out[0]
    );

    // the limit keeps the newest, still printed in time order, and says it cut; a lowercase
    // word is decided by the index alone, so the total is known
    let mut limited = req.clone();
    limited.limit = Some(2);
    let (outcome, _) = lines(&limited);
    assert_eq!(raws(&limited), ["error b2", "error c"]);
    assert_eq!(
        outcome,
        Outcome {
            matched: 4,
            truncated: true,
            cut: Some(Cut {
                shown: 2,
                of: Some(4),
                what: CutWhat::Events
            })
        }
    );
    // a literal checked on the stored text is decided newest first: the listing stops once it
    // knows the limit cut, and says so without a total
    let mut checked = request(dir.path(), "\"error \"");
    checked.limit = Some(2);
    let (outcome, _) = lines(&checked);
    assert_eq!(raws(&checked), ["error b2", "error c"]);
    assert_eq!(
        outcome,
        Outcome {
            matched: 3,
            truncated: true,
            cut: Some(Cut {
                shown: 2,
                of: None,
                what: CutWhat::Events
            })
        }
    );
    assert_eq!(count(&checked), 4);
}

#[test]
fn since_and_until_bound_event_time() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "");
    req.since = Some("2026-11-28T14:00:02Z".into());
    req.until = Some("2026-11-28 14:00:05".into());
    assert_eq!(count(&req), 3, "since is inclusive, until exclusive");
    // relative to now (T0 + 1h): the last 59 min 55 s cover the last three events
    let mut rel = request(dir.path(), "");
    rel.since = Some("3595s".into());
    assert_eq!(count(&rel), 3);
    let mut bad = request(dir.path(), "");
    bad.since = Some("yesterday".into());
    let err = run(&bad, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("--since"), "{err}");
}

#[test]
fn service_and_level_filters_are_exact() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "");
    req.services = vec!["worker".into(), "postgres".into()];
    assert_eq!(count(&req), 5);
    req.levels = vec![Level::Error];
    assert_eq!(count(&req), 1);
}

#[test]
fn json_output_is_ndjson_with_every_field() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "res.statusCode:503");
    req.json = true;
    let (_, out) = lines(&req);
    assert_eq!(out.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(v["ts"], "2026-11-28T14:00:01.000Z");
    assert_eq!(v["service"], "app");
    assert_eq!(v["level"], "error");
    assert_eq!(v["fields"]["res"]["statusCode"], 503);
    assert_eq!(v["id"], "000000000000f00d:200");
    assert!(v["raw"].as_str().unwrap().contains("/api/health"));
}

#[test]
fn errors_carry_the_column_and_a_suggestion() {
    let (dir, _) = stack();
    let err = run(&request(dir.path(), r#"error "unclosed"#), &mut Vec::new()).unwrap_err();
    assert_eq!(err.column(), Some(7));
    let err = run(&request(dir.path(), "app servce:app"), &mut Vec::new()).unwrap_err();
    assert_eq!(err.column(), Some(5));
    assert!(err.to_string().contains("did you mean `service`"), "{err}");
    let err = run(&request(dir.path(), "res.statusCod:503"), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("`res.statusCode`"), "{err}");
    let err = run(&request(dir.path(), "responseTime:>fast"), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("not a number"), "{err}");
    let err = run(&request(dir.path(), "level:loud"), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("unknown level"), "{err}");
}

#[test]
fn regex_terms_match_lines_with_smart_case() {
    let (dir, _) = stack();
    let d = dir.path();
    let n = |q: &str| count(&request(d, q));
    assert_eq!(n(r"/duration: \d+\.\d+ ms/"), 1);
    assert_eq!(n(r"/statusCode.:50\d/"), 1);
    // all-lowercase: case-insensitive; an uppercase literal makes it case-sensitive
    assert_eq!(n("/too many (clients|requests)/"), 2);
    assert_eq!(n("/Too many (clients|requests)/"), 1);
    // `\S` is a class, not an uppercase literal; `(?-i)` overrides
    assert_eq!(n(r"/fatal:\s+\S+/"), 1);
    assert_eq!(n("/(?-i)fatal/"), 0);
    // spaces and escaped slashes inside, anchors per line, booleans around
    assert_eq!(n(r#"/url":"\/api\/health"/"#), 1);
    assert_eq!(n(r"/^\{/ -/completed/"), 3);
    assert_eq!(n("/job|queue/ OR service:postgres"), 5);
    // nothing the index can narrow: every event is checked
    assert_eq!(n(r"/\d{4}/"), 5);
    // a `/` word without a closing slash is literal text
    assert_eq!(n("/api/health"), 1);
    // on a terminal the regex's matches are highlighted
    let mut req = request(d, r"/too many \w+/");
    req.color = true;
    let (_, out) = lines(&req);
    assert!(
        out.iter()
            .any(|l| l.contains("\x1b[1;31mtoo many clients\x1b[0m")),
        "{out:?}"
    );
}

#[test]
fn regex_terms_see_each_line_of_a_multiline_event() {
    let dir = TempDir::new().unwrap();
    build(
        dir.path(),
        vec![
            ev(
                0,
                T0,
                "app",
                Level::Error,
                "Error: boom\n    at main (app.js:1:2)",
            ),
            ev(50, T0, "app", Level::Info, "at first"),
        ],
    );
    let d = dir.path();
    assert_eq!(count(&request(d, "/^ +at main/")), 1);
    assert_eq!(count(&request(d, "/^at/")), 1);
    // like rg, a match never spans a line break
    assert_eq!(count(&request(d, r"/boom\s+at/")), 0);
}

#[test]
fn prefix_terms_match_token_starts() {
    let (dir, _) = stack();
    let d = dir.path();
    let n = |q: &str| count(&request(d, q));
    assert_eq!(n("camp*"), 4, "campaigns, campaign-emails");
    assert_eq!(n("ampaign*"), 0, "a prefix starts a token");
    assert_eq!(n("COMPLETE*"), 3, "prefixes ignore case like the index");
    assert_eq!(n("camp* -service:app"), 2);
    assert_eq!(n("44*"), 0);
    assert_eq!(n("429*"), 1);
}

#[test]
fn prefix_terms_reach_tokens_too_long_to_index() {
    let dir = TempDir::new().unwrap();
    let long = format!("key={} tail", "ab".repeat(200));
    build(
        dir.path(),
        vec![
            ev(0, T0, "app", Level::Info, &long),
            ev(9, T0, "app", Level::Info, "xab"),
        ],
    );
    assert_eq!(count(&request(dir.path(), "abab*")), 1);
    assert_eq!(count(&request(dir.path(), "ab*")), 1);
}

#[test]
fn host_and_source_fields() {
    let dir = TempDir::new().unwrap();
    let mut pino = ev(
        0,
        T0,
        "app",
        Level::Info,
        r#"{"level":30,"hostname":"newsletter-app-1","msg":"up"}"#,
    );
    pino.id.fingerprint = 0xa;
    let mut sys = ev(0, T0 + 1, "kernel", Level::Info, "x");
    sys.id.fingerprint = 0xb;
    sys.fields.insert("host".into(), "db-host".into());
    let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
    let mut sink = index.writer(15_000_000).unwrap();
    sink.add(&Events::new(vec![pino, sys])).unwrap();
    let payload = r#"{"files":{
        "000000000000000a":{"path":"/var/log/app/app.log","service":"app","offset":1,"size":1,"last_event":null},
        "000000000000000b":{"path":"/var/log/syslog","service":"kernel","offset":1,"size":1,"last_event":null}}}"#;
    sink.commit(payload).unwrap();
    let d = dir.path();
    let n = |q: &str| count(&request(d, q));
    assert_eq!(n("host:newsletter-app-1"), 1);
    assert_eq!(n("host:db-host"), 1);
    assert_eq!(n("host:nowhere"), 0);
    assert_eq!(n("source:app.log"), 1);
    assert_eq!(n("source:/var/log"), 2);
    assert_eq!(n("-source:syslog"), 1);
    let err = run(&request(d, "x source:nginx"), &mut Vec::new()).unwrap_err();
    assert_eq!(err.column(), Some(10));
    assert!(err.to_string().contains("/var/log/syslog"), "{err}");
}

#[test]
fn rule_and_class_fields_come_from_the_tags_stored_at_index_time() {
    use crate::store::index::RuleTag;
    let dir = TempDir::new().unwrap();
    let events = vec![
        ev(
            0,
            T0,
            "postgres",
            Level::Fatal,
            "FATAL:  sorry, too many clients already",
        ),
        ev(
            50,
            T0 + 1,
            "postgres",
            Level::Info,
            "LOG:  checkpoint starting",
        ),
    ];
    let tag = |rule: &str, class| RuleTag {
        event: events[0].id,
        rule: rule.into(),
        class,
        group: format!("{rule} service=postgres"),
    };
    let tags = [
        tag("pg_too_many_clients", "db-connection"),
        tag("pg_fatal", "db-down"),
        tag("pg_fatal", "db-down"),
    ];
    let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
    let mut sink = index.writer(15_000_000).unwrap();
    sink.add_tagged(&Events::new(events.clone()), &tags)
        .unwrap();
    sink.commit("{}").unwrap();
    let d = dir.path();
    let n = |q: &str| count(&request(d, q));
    assert_eq!(n("rule:pg_too_many_clients"), 1);
    assert_eq!(n("rule:pg_fatal clients"), 1);
    assert_eq!(n("class:db-down OR checkpoint"), 2);
    assert_eq!(n("-class:db-connection"), 1);
    assert_eq!(n("rule:nothing"), 0);
    let err = run(&request(d, "class:db-conection"), &mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("did you mean `db-connection`"),
        "{err}"
    );
    assert_eq!(err.column(), Some(7));
    let err = run(&request(d, "incident:nope"), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("no incident `nope`"), "{err}");
}

#[test]
fn bad_regexes_and_prefixes_name_the_column() {
    let (dir, _) = stack();
    let d = dir.path();
    let cases = [
        ("error /a(b/", 9, "invalid regex"),
        ("x /ab[z-a]/", 7, "invalid regex"),
        (r"/\p{Nope}/", 2, "invalid regex"),
        ("ok /(a{1000}){1000}/", 5, "regex too big"),
        ("a //", 3, "empty regex"),
        ("a foo-*", 3, "prefix term"),
        ("level:>panic", 7, "no level"),
        ("host:>3", 6, "cannot be compared"),
    ];
    for (query, column, message) in cases {
        let err = run(&request(d, query), &mut Vec::new()).unwrap_err();
        assert_eq!(err.column(), Some(column), "{query}: {err}");
        assert!(err.to_string().contains(message), "{query}: {err}");
    }
}

#[test]
fn a_missing_index_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let err = run(&request(dir.path(), "x"), &mut Vec::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("run logwarden demo or backfill first"),
        "{err}"
    );
}

#[test]
fn long_tokens_are_still_found() {
    let dir = TempDir::new().unwrap();
    let long = format!("key={}Z tail", "ab".repeat(200));
    build(
        dir.path(),
        vec![
            ev(0, T0, "app", Level::Info, &long),
            ev(9, T0, "app", Level::Info, "abab"),
        ],
    );
    assert_eq!(count(&request(dir.path(), "babZ")), 1);
    assert_eq!(count(&request(dir.path(), "abab")), 2);
    assert_eq!(
        count(&request(dir.path(), &format!("\"={}\"", "ab".repeat(150)))),
        1
    );
}

#[test]
fn partial_words_are_found_through_the_vocabulary_as_segments_come_and_go() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    build(
        d,
        vec![
            ev(
                0,
                T0,
                "kernel",
                Level::Error,
                "Out of memory: Killed process 4242 (node)",
            ),
            ev(100, T0 + 1000, "app", Level::Info, "nothing here"),
        ],
    );
    let vocab_files = || std::fs::read_dir(d.join("vocab")).map_or(0, |r| r.count());
    assert_eq!(vocab_files(), 0, "a bare index has none");
    assert_eq!(count(&request(d, "illed")), 1, "an infix");
    assert_eq!(
        vocab_files(),
        2,
        "the query wrote the segment's words and numbers"
    );
    assert_eq!(
        count(&request(d, "24")),
        1,
        "digits are looked up among numbers too"
    );
    assert_eq!(count(&request(d, "thing her")), 1, "a suffix and a prefix");
    // A second commit: a second segment, whose vocabulary the next query writes.
    build(
        d,
        vec![ev(
            200,
            T0 + 2000,
            "worker",
            Level::Warn,
            "worker-3 was OOMKilled",
        )],
    );
    assert_eq!(count(&request(d, "illed")), 2);
    assert_eq!(
        count(&request(d, "illed process")),
        1,
        "an AND of two literals"
    );
    assert_eq!(vocab_files(), 4);
    // Merged into one segment: a refresh writes its vocabulary and removes the stale ones.
    let index = EventIndex::open_existing(&d.join("index")).unwrap();
    let ids = index.index().searchable_segment_ids().unwrap();
    let mut writer: tantivy::IndexWriter = index.index().writer(15_000_000).unwrap();
    writer.merge(&ids).wait().unwrap();
    writer.wait_merging_threads().unwrap();
    let searcher = index.searcher().unwrap();
    assert_eq!(searcher.segment_readers().len(), 1);
    Vocab::new(d, index.fields().raw)
        .refresh(&searcher)
        .unwrap();
    assert_eq!(vocab_files(), 2);
    assert_eq!(count(&request(d, "illed")), 2);
    // Where no vocabulary can be written, the term dictionary is walked: same answers.
    std::fs::remove_dir_all(d.join("vocab")).unwrap();
    std::fs::write(d.join("vocab"), "not a directory").unwrap();
    assert_eq!(count(&request(d, "illed")), 2);
    assert_eq!(count(&request(d, "thing her")), 1);
}

/// The oracle: `grep -F` with ripgrep's smart case, on the raw text.
fn oracle(raw: &str, lit: &str) -> bool {
    if lit.chars().any(char::is_uppercase) {
        raw.contains(lit)
    } else {
        let folded: String = raw.chars().flat_map(char::to_lowercase).collect();
        folded.contains(lit)
    }
}

fn quote(lit: &str) -> String {
    format!("\"{}\"", lit.replace('\\', "\\\\").replace('"', "\\\""))
}

fn raw_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => proptest::sample::select(vec![
            "a", "b", "A", "B", "ab", "Ab", "too", "Many", "clients", "x", "1", "42", "7",
            " ", " ", " ", ".", ":", "-", "_", "/", "\"", "=", "é", "É", "σ", "Σ", "sk", "KS",
        ])
        .prop_map(str::to_string),
        1 => Just("q".repeat(260)),
    ];
    proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat())
}

/// Regexes built from pieces the planner treats differently: literals (narrowing), classes,
/// repetitions, alternations and anchors (which may leave nothing to narrow).
fn regex_strategy() -> impl Strategy<Value = String> {
    let piece = proptest::sample::select(vec![
        "a", "b", "A", "ab", "too", "Many", "clients", "42", "é", "Σ", "sk", r"\d+", r"\w", ".",
        " ", ":", "-", "(a|b)", "(too|x)", "[a-c]", "[A-C]", "b?", r"\b", "^", "$", "(?i)k", ".*",
    ]);
    proptest::collection::vec(piece, 1..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn regex_queries_agree_with_a_line_scan(
        texts in proptest::collection::vec(raw_strategy(), 1..30),
        patterns in proptest::collection::vec(regex_strategy(), 1..8),
    ) {
        let dir = TempDir::new().unwrap();
        let events: Vec<Event> = texts
            .iter()
            .enumerate()
            .map(|(i, r)| ev(i as u64, T0, "app", Level::Info, r))
            .collect();
        build(dir.path(), events.clone());
        for pattern in patterns {
            let ci = !pattern.chars().filter(|c| c.is_alphabetic()).any(char::is_uppercase)
                || pattern.contains("(?i)");
            let Ok(re) = regex::RegexBuilder::new(&pattern).case_insensitive(ci).build() else {
                continue;
            };
            // `(?i)k` makes the smart-case guess above moot only for that part; skip the mixes.
            if pattern.contains("(?i)") && pattern.chars().any(char::is_uppercase) {
                continue;
            }
            let want = events.iter().filter(|e| e.raw.split('\n').any(|l| re.is_match(l))).count();
            let req = request(dir.path(), &format!("/{pattern}/"));
            prop_assert_eq!(count(&req), want as u64, "regex {:?}", pattern);
        }
    }

    #[test]
    fn literal_queries_agree_with_a_substring_scan(
        texts in proptest::collection::vec(raw_strategy(), 1..30),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..40, 1usize..14, any::<bool>()), 1..12),
    ) {
        let dir = TempDir::new().unwrap();
        let events: Vec<Event> = texts
            .iter()
            .enumerate()
            .map(|(i, r)| ev(i as u64, T0 + (i as i64 % 5) * 1000, "app", Level::Info, r))
            .collect();
        build(dir.path(), events.clone());
        let mut previous: Option<String> = None;
        for (which, start, len, upper) in picks {
            let source: Vec<char> = events[which.index(events.len())].raw.chars().collect();
            let start = start.min(source.len());
            let end = (start + len).min(source.len());
            let mut lit: String = source[start..end].iter().collect();
            if upper {
                lit = lit.to_uppercase();
            } else if lit.chars().any(char::is_uppercase) && start % 2 == 0 {
                lit = lit.chars().flat_map(char::to_lowercase).collect();
            }
            if lit.is_empty() {
                continue;
            }
            let req = request(dir.path(), &quote(&lit));
            let mut want: Vec<&Event> = events.iter().filter(|e| oracle(&e.raw, &lit)).collect();
            want.sort_by_key(|e| (e.ts, e.id));
            let want: Vec<String> = want.iter().map(|e| e.raw.clone()).collect();
            let got = raws(&req);
            prop_assert_eq!(&got, &want, "literal {:?}", lit);
            prop_assert_eq!(count(&req), want.len() as u64);
            // Two literals: an AND, where one may bound the candidates for the other.
            if let Some(prev) = previous.replace(lit.clone()) {
                let both = events.iter().filter(|e| oracle(&e.raw, &lit) && oracle(&e.raw, &prev)).count();
                let req = request(dir.path(), &format!("{} {}", quote(&prev), quote(&lit)));
                prop_assert_eq!(count(&req), both as u64, "{:?} AND {:?}", prev, lit);
            }
        }
    }
}

// Issue 6, time and output options: --around, --reverse, --fields, CSV, tallies, context.

#[test]
fn around_takes_the_window_on_both_sides() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "");
    req.around = Some(Around {
        time: "2026-11-28T14:00:03Z".into(),
        window: "2s".into(),
    });
    assert_eq!(count(&req), 5, "14:00:01 to 14:00:05, both included");
    req.since = Some("2026-11-28T14:00:02Z".into());
    assert_eq!(count(&req), 4, "intersected with --since");
    let mut bad = request(dir.path(), "");
    bad.around = Some(Around {
        time: "2026-11-28T14:00:03Z".into(),
        window: "0m".into(),
    });
    let err = run(&bad, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("--window"), "{err}");
    bad.around = Some(Around {
        time: "soon".into(),
        window: "5m".into(),
    });
    let err = run(&bad, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("--around"), "{err}");
}

#[test]
fn reverse_prints_the_same_newest_events_newest_first() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "service:app");
    req.limit = Some(2);
    let forward = raws(&req);
    req.view.reverse = true;
    let mut backward = raws(&req);
    backward.reverse();
    assert_eq!(forward.len(), 2);
    assert_eq!(forward, backward);
}

#[test]
fn fields_and_csv_print_the_chosen_columns() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "service:app");
    req.view.fields = ["service", "req.url", "res.statusCode", "queue"]
        .map(String::from)
        .to_vec();
    let (_, out) = lines(&req);
    assert_eq!(
        out,
        [
            "app /api/campaigns 200 -",
            "app /api/health 503 -",
            "app /api/campaigns 200 -"
        ]
    );
    req.view.csv = true;
    req.view.fields = vec!["level".into(), "raw".into()];
    let (_, out) = lines(&req);
    assert_eq!(out[0], "level,raw");
    assert_eq!(out.len(), 4);
    assert!(out[1].starts_with(r#"info,"{""level"":30,"#), "{}", out[1]);
    req.view.fields = vec![];
    let (_, out) = lines(&req);
    assert_eq!(out[0], "ts,service,level,raw", "the text line's columns");
    req.view.fields = vec!["a".into(), String::new()];
    assert!(matches!(
        run(&req, &mut Vec::new()),
        Err(QueryError::EmptyColumn(_))
    ));
}

#[test]
fn count_by_ranks_values_by_count_then_value() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "");
    req.view.count_by = Some("service".into());
    let (outcome, out) = lines(&req);
    assert_eq!(out, ["3 app", "3 worker", "2 postgres"]);
    assert_eq!(outcome.matched, 8);
    assert_eq!(outcome.cut, None);

    // an inexact plan (a substring the stored text decides) reads the documents
    let mut req = request(dir.path(), "request");
    req.view.count_by = Some("service".into());
    let (_, out) = lines(&req);
    assert_eq!(out, ["3 app", "1 worker"]);

    // a JSON path; events without it count as (none); --top cuts and says so
    let mut req = request(dir.path(), "");
    req.view.count_by = Some("req.url".into());
    let (_, out) = lines(&req);
    assert_eq!(out, ["5 (none)", "2 /api/campaigns", "1 /api/health"]);
    req.view.top = Some(2);
    let (outcome, out) = lines(&req);
    assert_eq!(out, ["5 (none)", "2 /api/campaigns"]);
    assert_eq!(
        outcome.cut,
        Some(Cut {
            shown: 2,
            of: Some(3),
            what: CutWhat::Values
        })
    );
    req.json = true;
    let (_, out) = lines(&req);
    assert_eq!(out[1], r#"{"req.url":"/api/campaigns","count":2}"#);

    // nothing matched: no rows, and the outcome says so (exit status 1)
    let mut none = request(dir.path(), "no-such-text");
    none.view.count_by = Some("service".into());
    let (outcome, out) = lines(&none);
    assert_eq!((outcome.matched, out.len()), (0, 0));
}

#[test]
fn histograms_show_aligned_buckets_including_empty_ones() {
    let (dir, _) = stack();
    let mut req = request(dir.path(), "service:app");
    req.view.histogram = Some("2s".into());
    let (outcome, out) = lines(&req);
    assert_eq!(outcome.matched, 3);
    let heads: Vec<String> = out
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        heads,
        [
            "2026-11-28T14:00:00Z 2",
            "2026-11-28T14:00:02Z 0",
            "2026-11-28T14:00:04Z 0",
            "2026-11-28T14:00:06Z 1"
        ]
    );
    assert!(out.iter().all(|l| l.chars().count() <= tally::WIDTH));
    assert!(
        !out.concat().contains('█'),
        "plain text when not a terminal"
    );
    req.view.histogram = Some("0s".into());
    let err = run(&req, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("--histogram"), "{err}");
}

/// Two files: `a` (20 events, hits at 3, 5, 15, 16, committed in two segments) and `b` (10
/// events, hits at 0 and 9); events are "a03", "a05 HIT", …
fn two_files() -> TempDir {
    let dir = TempDir::new().unwrap();
    let file = |name: &str, fp: u64, n: u64, hits: &[u64], t: i64| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let raw = if hits.contains(&i) {
                    format!("{name}{i:02} HIT")
                } else {
                    format!("{name}{i:02}")
                };
                let mut e = ev(i * 10, t + i as i64 * 1000, name, Level::Info, &raw);
                e.id.fingerprint = fp;
                e
            })
            .collect()
    };
    let a = file("a", 0xa, 20, &[3, 5, 15, 16], T0);
    let b = file("b", 0xb, 10, &[0, 9], T0 + 500);
    build(dir.path(), a[..9].to_vec());
    let mut rest = a[9..].to_vec();
    rest.extend(b);
    build(dir.path(), rest);
    dir
}

fn with_context(dir: &Path, before: usize, after: usize) -> Vec<String> {
    let mut req = request(dir, "HIT");
    req.view.fields = vec!["raw".into()];
    req.view.context = Some(context::ContextLines { before, after });
    lines(&req).1
}

#[test]
fn context_groups_neighbours_from_the_same_file_as_grep_does() {
    let dir = two_files();
    // groups come in the time order of their first hit; overlapping ones merge; `--` between
    assert_eq!(
        with_context(dir.path(), 1, 1),
        [
            "b00 HIT", "b01", "--", "a02", "a03 HIT", "a04", "a05 HIT", "a06", "--", "b08",
            "b09 HIT", "--", "a14", "a15 HIT", "a16 HIT", "a17"
        ]
    );
    assert_eq!(
        with_context(dir.path(), 2, 0),
        [
            "b00 HIT", "--", "a01", "a02", "a03 HIT", "a04", "a05 HIT", "--", "b07", "b08",
            "b09 HIT", "--", "a13", "a14", "a15 HIT", "a16 HIT"
        ]
    );
    // -C 0: separators between hits that are not adjacent in their file, as grep prints them
    assert_eq!(
        with_context(dir.path(), 0, 0),
        [
            "b00 HIT", "--", "a03 HIT", "--", "a05 HIT", "--", "b09 HIT", "--", "a15 HIT",
            "a16 HIT"
        ]
    );
    // a gap of exactly before + after events joins the groups (a05 … a15: 9 events between)
    // (b00 … b09: 8 between), so each file is one group
    let wide = with_context(dir.path(), 5, 4);
    let a_part: Vec<&String> = wide.iter().filter(|l| l.starts_with('a')).collect();
    assert_eq!(a_part.len(), 20, "{wide:?}");
    assert_eq!(wide.iter().filter(|l| *l == "--").count(), 1, "{wide:?}");
}

#[test]
fn context_only_prints_text() {
    let dir = two_files();
    let mut req = request(dir.path(), "HIT");
    req.view.context = Some(context::ContextLines {
        before: 1,
        after: 1,
    });
    req.view.csv = true;
    assert!(matches!(
        run(&req, &mut Vec::new()),
        Err(QueryError::Options(_))
    ));
}

#[test]
fn count_by_from_the_fast_columns_equals_count_by_from_the_documents() {
    let (dir, _) = stack();
    for field in [
        "service",
        "level",
        "req.url",
        "res.statusCode",
        "responseTime",
        "duration_ms",
        "queue",
        "host",
        "err.name",
        "req",
        "no.such.path",
    ] {
        let mut exact = request(dir.path(), "");
        exact.view.count_by = Some(field.into());
        // a query the index cannot decide: every event is read and judged
        let mut read = request(dir.path(), r#"NOT "zzzz-not-there""#);
        read.view.count_by = Some(field.into());
        let (a, from_columns) = lines(&exact);
        let (b, from_documents) = lines(&read);
        assert_eq!(from_columns, from_documents, "--count-by {field}");
        assert_eq!((a.matched, b.matched), (8, 8), "--count-by {field}");
    }
}

#[test]
fn histogram_from_the_time_column_equals_histogram_from_the_documents() {
    let (dir, _) = stack();
    for width in ["1s", "2s", "3s", "1m"] {
        let mut exact = request(dir.path(), "");
        exact.view.histogram = Some(width.into());
        let mut read = request(dir.path(), r#"NOT "zzzz-not-there""#);
        read.view.histogram = Some(width.into());
        let (a, from_column) = lines(&exact);
        let (b, from_documents) = lines(&read);
        assert_eq!(from_column, from_documents, "--histogram {width}");
        assert_eq!((a.matched, b.matched), (8, 8));
    }
}

/// What `grep -B before -A after` prints for a file whose lines `hits` marks: line numbers, and
/// `None` for each `--`.
fn grep_model(hits: &[bool], before: usize, after: usize) -> Vec<Option<usize>> {
    let mut printed = vec![false; hits.len()];
    for (i, _) in hits.iter().enumerate().filter(|(_, h)| **h) {
        let lo = i.saturating_sub(before);
        let hi = (i + after).min(hits.len() - 1);
        for p in &mut printed[lo..=hi] {
            *p = true;
        }
    }
    let mut out = Vec::new();
    let mut last: Option<usize> = None;
    for (i, _) in printed.iter().enumerate().filter(|(_, p)| **p) {
        if last.is_some_and(|l| l + 1 != i) {
            out.push(None);
        }
        out.push(Some(i));
        last = Some(i);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Context lines of one file, whatever the hits, sizes and segment split, are grep's.
    #[test]
    fn context_lines_agree_with_a_grep_model(
        hits in proptest::collection::vec(proptest::bool::weighted(0.2), 1..40),
        before in 0usize..4,
        after in 0usize..4,
        split in any::<prop::sample::Index>(),
    ) {
        prop_assume!(hits.iter().any(|h| *h));
        let dir = TempDir::new().unwrap();
        let events: Vec<Event> = hits
            .iter()
            .enumerate()
            .map(|(i, hit)| {
                let raw = if *hit { format!("l{i} HIT") } else { format!("l{i}") };
                ev(i as u64 * 7, T0 + i as i64 * 1000, "app", Level::Info, &raw)
            })
            .collect();
        let at = split.index(events.len() + 1);
        if at > 0 {
            build(dir.path(), events[..at].to_vec());
        }
        if at < events.len() {
            build(dir.path(), events[at..].to_vec());
        }
        let want: Vec<String> = grep_model(&hits, before, after)
            .into_iter()
            .map(|l| match l {
                Some(i) if hits[i] => format!("l{i} HIT"),
                Some(i) => format!("l{i}"),
                None => "--".to_string(),
            })
            .collect();
        prop_assert_eq!(with_context(dir.path(), before, after), want);
    }
}

/// A limited listing the index decides alone keeps only the newest `limit` keys per segment: the
/// same hits, in the same order, and the same total as the unlimited listing's tail, whatever
/// segment each event sits in.
#[test]
fn a_limited_listing_keeps_the_newest_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Three commits (three segments) whose times interleave; `ECONNREFUSED` in every other event.
    for segment in 0..3i64 {
        let events = (0..40i64)
            .map(|i| {
                let n = i * 3 + segment;
                let raw = if n % 2 == 0 {
                    format!("connect ECONNREFUSED number {n}")
                } else {
                    format!("healthy number {n}")
                };
                ev(n as u64 * 100, T0 + n * 1000, "app", Level::Error, &raw)
            })
            .collect();
        build(dir.path(), events);
    }
    // Every event and a lowercase word (decided by the index alone), and a literal checked on the
    // stored text (smart case: upper case is case-sensitive).
    for (query, total) in [("", 120), ("econnrefused", 60), ("ECONNREFUSED", 60)] {
        let all = request(dir.path(), query);
        let (whole, every) = lines(&all);
        assert_eq!(whole.matched, total, "`{query}`");
        for limit in [1, 7, 59, 60, 119, 120, 200] {
            let mut req = all.clone();
            req.limit = Some(limit);
            let (outcome, got) = lines(&req);
            let cut = outcome.cut.map(|c| c.of);
            if limit >= total as usize {
                assert_eq!((outcome.matched, cut), (total, None), "`{query}` {limit}");
            } else if query != "ECONNREFUSED" {
                // the index decides: the total is known
                assert_eq!(cut, Some(Some(total)), "`{query}` limit {limit}");
            } else {
                // decided on the stored text, newest first, until one past the limit
                assert_eq!(outcome.matched, limit as u64 + 1, "`{query}` limit {limit}");
                assert_eq!(cut, Some(None), "`{query}` limit {limit}");
            }
            let want = &every[every.len().saturating_sub(limit)..];
            assert_eq!(got, want, "`{query}` limit {limit}");
        }
    }
}

/// A literal whose candidates mostly fail the stored-text check walks them in bounded rounds
/// (1024, then 2048 keys): every match comes back, in time order, across the rounds' seams, for
/// a listing without limit, a limited one and the count.
#[test]
fn a_listing_walks_the_candidates_in_bounded_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    for segment in 0..3i64 {
        let events = (0..1100i64)
            .map(|i| {
                let n = i * 3 + segment;
                // smart case: `ECONNREFUSED` matches only the upper-case ones, but every event
                // holds the (folded) term, so all 3300 are candidates
                let raw = if n % 10 == 0 {
                    format!("connect ECONNREFUSED {n}")
                } else {
                    format!("connect econnrefused {n}")
                };
                if n % 10 == 0 {
                    want.push((n, raw.clone()));
                }
                ev(n as u64 * 100, T0 + n * 1000, "app", Level::Error, &raw)
            })
            .collect();
        build(dir.path(), events);
    }
    want.sort();
    let want: Vec<String> = want.into_iter().map(|(_, raw)| raw).collect();
    let mut all = request(dir.path(), "ECONNREFUSED");
    all.limit = None;
    assert_eq!(raws(&all), want);
    assert_eq!(count(&all), want.len() as u64);
    let mut limited = all.clone();
    limited.limit = Some(250);
    assert_eq!(raws(&limited), want[want.len() - 250..]);
    let (outcome, _) = lines(&limited);
    assert_eq!(outcome.cut.map(|c| c.of), Some(None));
}

/// A lowercase word is decided by the index only when the terms holding it are ASCII: `İ` folds
/// (lowercases) to `i` + U+0307, a term that holds `i` where the stored-text check (simple case
/// folding, as ripgrep's) finds none.
#[test]
fn a_word_in_a_non_ascii_term_is_left_to_the_check() {
    let dir = TempDir::new().unwrap();
    build(
        dir.path(),
        vec![
            ev(10, T0 + 1000, "app", Level::Info, "İnfo here"),
            ev(20, T0 + 2000, "app", Level::Info, "plain text"),
            ev(30, T0 + 3000, "app", Level::Info, "INFO upper"),
        ],
    );
    assert_eq!(
        raws(&request(dir.path(), "i")),
        ["plain text", "INFO upper"]
    );
    assert_eq!(count(&request(dir.path(), "i")), 2);
    // all-ASCII terms: decided by the index, same answer as the check would give
    assert_eq!(raws(&request(dir.path(), "info")), ["INFO upper"]);
    assert_eq!(
        raws(&request(dir.path(), "nfo")),
        ["İnfo here", "INFO upper"]
    );
}
