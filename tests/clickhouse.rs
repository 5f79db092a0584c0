//! The scale-out store against a real ClickHouse server (Debian's 18.16.1, started per test):
//! the schema is created, rows round-trip unchanged, and a batch written twice counts once;
//! `loggrep --backend clickhouse://…` prints what the local index prints for the same events
//! (tests/cases/clickhouse_parity.txt), hostile query text is data, a bad URL is exit 2.

use std::path::Path;

use logwarden::store::clickhouse::{ClickHouse, EventRow};

use crate::support::{self, ClickHouseServer, loggrep, run, stderr, stdout};

fn row(i: u64, raw: &str) -> EventRow {
    let secs = 1_796_212_800 + i * 61;
    EventRow {
        ts: u32::try_from(secs).unwrap(),
        ts_ns: secs * 1_000_000_000 + 123_456_000,
        id: format!("{:016x}:{}", 0xfeed_u64, i * 100),
        agent: "host-a".into(),
        service: if i.is_multiple_of(2) {
            "app"
        } else {
            "postgres"
        }
        .into(),
        level: "error".into(),
        host: "newsletter-app-1".into(),
        source: "/var/log/app.log".into(),
        message: raw.lines().next().unwrap_or("").into(),
        raw: raw.into(),
        fields: format!(r#"{{"n":{i},"q":"it's \"quoted\" ? \\ done"}}"#),
        flags: if i == 1 {
            vec!["partial".into()]
        } else {
            vec![]
        },
        rules: vec!["db-connection-refused".into()],
        classes: vec!["db-connection".into()],
        groups: vec!["db-connection-refused|postgres".into()],
    }
}

/// The one number `sql` selects, with `binds` bound to its `?`s in order.
async fn count(client: &clickhouse::Client, sql: &str, binds: &[&str]) -> u64 {
    let mut query = client.query(sql);
    for value in binds {
        query = query.bind(*value);
    }
    query.fetch_one().await.unwrap()
}

#[test]
fn tables_are_created_rows_round_trip_and_a_batch_written_twice_counts_once() {
    let server = ClickHouseServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ClickHouse::connect(&server.url, "logwarden_test", None, None, Some(730))
            .await
            .unwrap();
        // Connecting again finds the tables there and changes nothing.
        let ch = {
            drop(ch);
            ClickHouse::connect(&server.url, "logwarden_test", None, None, Some(730))
                .await
                .unwrap()
        };
        let rows = vec![
            row(0, "connect ECONNREFUSED 127.0.0.1:5432"),
            row(1, "ERROR:  syntax error at or near \"?\"\nLINE 1: SELECT '; DROP TABLE events; --"),
            row(2, "ünïcödé ✓ and a tab\there, a backslash \\ and a NUL-free end"),
        ];
        ch.insert_events(&rows).await.unwrap();
        // The same batch again: a retry after a lost answer, or a restart after a kill.
        ch.insert_events(&rows).await.unwrap();

        let client = ch.client();
        let once = count(client, "SELECT count() FROM events FINAL", &[]).await;
        assert_eq!(once, 3);
        let distinct = count(client, "SELECT uniqExact(id) FROM events", &[]).await;
        assert_eq!(distinct, 3);

        let back: Vec<EventRow> = client
            .query("SELECT ?fields FROM events FINAL ORDER BY ts_ns")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(back, rows);

        // A bound value is data, whatever it holds.
        let hostile = "'; DROP TABLE events; -- ? \\";
        let found = count(client, "SELECT count() FROM events FINAL WHERE position(raw, ?) > 0", &["DROP TABLE events"]).await;
        assert_eq!(found, 1);
        let none = count(client, "SELECT count() FROM events FINAL WHERE raw = ?", &[hostile]).await;
        assert_eq!(none, 0);
        let still = count(client, "SELECT count() FROM events FINAL", &[]).await;
        assert_eq!(still, 3);

        // Partitions are days: retention drops whole partitions.
        let days: Vec<String> = client
            .query("SELECT DISTINCT partition FROM system.parts WHERE database = 'logwarden_test' AND table = 'events' AND active ORDER BY partition")
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(days, vec!["20261202".to_string()]);
    });
}

// loggrep --backend clickhouse://… (issue 8)

/// The database the loggrep tests fill.
const DB: &str = "parity";

/// The demo's logs (seed 11, from 2026-12-02T12:00Z) backfilled by one `logwarden backfill
/// --clickhouse` into a local index (the returned dir) and into `DB` at `server`; then half the
/// events are written to ClickHouse again (as a retried batch would), which every answer must
/// count once.
fn backfill_both(server: &ClickHouseServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let logs = support::write_demo_logs(dir.path(), 11);
    let mut cmd = support::demo_backfill(dir.path(), &logs, false);
    cmd.args(["--clickhouse", &format!("{}/{DB}", server.url)]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "backfill failed: {}", stderr(&out));
    let rows = |table: &str| -> u64 {
        server
            .query(&format!("SELECT count() FROM {DB}.{table}"))
            .parse()
            .unwrap()
    };
    let before = rows("events");
    assert!(before > 10_000, "{before}");
    server.query(&format!(
        "INSERT INTO {DB}.events SELECT * FROM {DB}.events WHERE cityHash64(id) % 2 = 0"
    ));
    assert!(rows("events") > before);
    assert!(rows("incidents") > 10);
    dir
}

/// `URL/DB` as loggrep's `--backend` takes it.
fn backend(server: &ClickHouseServer) -> String {
    format!(
        "{}/{DB}",
        server.url.replacen("http://", "clickhouse://", 1)
    )
}

/// A line of the cases file as arguments: split at spaces, `'…'` and `"…"` one argument each.
fn split_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '\'' | '"' => args.push(chars.by_ref().take_while(|n| *n != c).collect()),
            _ => {
                let mut word = c.to_string();
                while let Some(n) = chars.next_if(|n| *n != ' ') {
                    word.push(n);
                }
                args.push(word);
            }
        }
    }
    args
}

/// loggrep over the local index at `data_dir` and over ClickHouse, for `args`: both outputs.
fn both(
    data_dir: &Path,
    backend: &str,
    args: &[String],
) -> (std::process::Output, std::process::Output) {
    // No colour unless the case asks for it (then both highlight the same matches).
    let color: &[&str] = if args.iter().any(|a| a == "--color") {
        &[]
    } else {
        &["--color", "never"]
    };
    let local = run(loggrep()
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--no-server")
        .args(color)
        .args(args));
    let remote = run(loggrep()
        .args(["--backend", backend])
        .args(color)
        .env_remove("LOGWARDEN_DATA")
        .env_remove("LOGWARDEN_SERVER")
        .args(args));
    (local, remote)
}

fn assert_same(args: &[String], local: &std::process::Output, remote: &std::process::Output) {
    assert_eq!(
        local.status.code(),
        remote.status.code(),
        "{args:?}: exit codes differ; local said {:?}, ClickHouse said {:?}",
        stderr(local),
        stderr(remote)
    );
    assert!(
        local.stdout == remote.stdout,
        "{args:?}: outputs differ\n--- local ({} lines)\n{}\n--- clickhouse ({} lines)\n{}\n{}",
        stdout(local).lines().count(),
        stdout(local)
            .lines()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
        stdout(remote).lines().count(),
        stdout(remote)
            .lines()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n"),
        stderr(remote)
    );
}

#[test]
fn loggrep_over_clickhouse_prints_what_the_local_index_prints() {
    let server = ClickHouseServer::start();
    let data = backfill_both(&server);
    let data_dir = data.path();
    let backend = backend(&server);
    let cases =
        std::fs::read_to_string(support::repo().join("tests/cases/clickhouse_parity.txt")).unwrap();
    let mut asked = 0;
    let mut unanswered = Vec::new();
    for line in cases.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args = split_args(line);
        let (local, remote) = both(data_dir, &backend, &args);
        assert_same(&args, &local, &remote);
        asked += 1;
        if local.status.code() == Some(1) {
            unanswered.push(line.to_string());
        }
    }
    // `--incident ID`: the incident and its timeline, its own events marked.
    let log = std::fs::read_to_string(logwarden::pipeline::incident_log(data_dir)).unwrap();
    let mut ids: Vec<String> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["incident"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert!(ids.len() >= 5, "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        let prefix = id.trim_start_matches("inc-")[..6].to_string();
        let term = format!("incident:{id}");
        let either = format!("incident:{id} OR service:redis");
        let modes: [&[&str]; 8] = [
            &["--incident", id],
            &["--incident", id, "--json", "--lead", "1m"],
            &["--incident", &prefix, "--limit", "5"],
            &["--incident", id, "--limit", "0", "level:>=warn"],
            &[
                "--incident",
                id,
                "--service",
                "postgres",
                "--limit",
                "0",
                "--",
                "-level:info",
            ],
            &["--limit", "0", &term],
            &["--count-by", "service", &either],
            &["--count", "--", &format!("-{term}")],
        ];
        // Every mode for a few incidents, the plain timeline for the rest.
        let chosen = if i < 3 { &modes[..] } else { &modes[..1] };
        for mode in chosen {
            let args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
            let (local, remote) = both(data_dir, &backend, &args);
            assert_same(&args, &local, &remote);
            assert_ne!(local.status.code(), Some(2), "{args:?}: {}", stderr(&local));
            asked += 1;
        }
        // The plain timeline marks the incident's own events.
        let all: Vec<String> = vec![
            "--incident".into(),
            id.clone(),
            "--limit".into(),
            "0".into(),
        ];
        let (local, _) = both(data_dir, &backend, &all);
        assert!(stdout(&local).contains("\n> "), "{id}: {}", stdout(&local));
    }
    for args in [["--incident", "inc-0000"], ["--count", "incident:inc-0000"]] {
        let args: Vec<String> = args.map(String::from).to_vec();
        let (local, remote) = both(data_dir, &backend, &args);
        assert_eq!(remote.status.code(), Some(2), "{}", stderr(&remote));
        assert_same(&args, &local, &remote);
    }
    assert!(asked >= 20, "only {asked} cases");
    // The cases must find something to compare: nearly all of them match events.
    assert!(
        unanswered.len() <= 2,
        "{} of {asked} cases match nothing: {unanswered:#?}",
        unanswered.len()
    );
}

#[test]
fn hostile_query_text_is_data_and_changes_nothing() {
    let server = ClickHouseServer::start();
    let data = backfill_both(&server);
    let data_dir = data.path();
    let backend = backend(&server);
    let count_all = || {
        let out = run(loggrep().args(["--backend", &backend, "--count", ""]));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let tables = || {
        let url = format!("{}/?query=SHOW%20TABLES%20FROM%20{DB}", server.url);
        ureq::get(&url)
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap()
    };
    let before = (count_all(), tables());
    let hostile = [
        r#""'; DROP TABLE events; --""#,
        r#"'); DROP TABLE events; --"#,
        r#""\\'" OR "\\" OR "\\\\"#,
        r#""?" OR "??" OR "a ? b" OR ?fields"#,
        r#""' OR 1=1 --" OR "UNION SELECT" OR "\\x27""#,
        r#"service:"app' OR '1'='1" OR level:error"#,
        r#"req.url:"'; --" OR queue:"?""#,
        r#"/'[?]\\/ OR /\?/"#,
        r#"message:"%" OR "_" OR "\\%""#,
        r#"SELECT FROM WHERE AND DROP"#,
    ];
    for query in hostile {
        for mode in [
            &["--limit", "0"][..],
            &["--count"],
            &["--count-by", "service"],
        ] {
            let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
            args.push("--".into());
            args.push(query.into());
            let (local, remote) = both(data_dir, &backend, &args);
            assert_same(&args, &local, &remote);
        }
    }
    assert_eq!((count_all(), tables()), before);
}

#[test]
fn a_server_that_cannot_be_reached_or_a_wrong_database_is_exit_2_naming_the_url() {
    let port = support::free_port();
    let url = format!("clickhouse://127.0.0.1:{port}/logs");
    let out = run(loggrep().args(["--backend", &url, "error"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));

    let server = ClickHouseServer::start();
    let wrong = format!("{}/nosuchdb", server.url);
    let out = run(loggrep().args(["--backend", &wrong, "--count", "error"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&wrong) && stderr(&out).contains("nosuchdb"),
        "{}",
        stderr(&out)
    );
    // A user the server does not know: its refusal, naming the URL.
    let pass = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pass.path(), "secret\n").unwrap();
    let out = run(loggrep()
        .args(["--backend", &wrong, "--clickhouse-user", "nobody"])
        .arg("--clickhouse-password-file")
        .arg(pass.path())
        .arg("x"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&wrong) && stderr(&out).contains("nobody"),
        "{}",
        stderr(&out)
    );
    let out = run(loggrep()
        .args([
            "--backend",
            &wrong,
            "--clickhouse-password-file",
            "/nonexistent/pass",
        ])
        .arg("x"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/pass"),
        "{}",
        stderr(&out)
    );
    // A query error keeps its column, before the server is asked.
    let out = run(loggrep().args(["--backend", &wrong, "x (y"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("column 3"), "{}", stderr(&out));
    let out = run(loggrep().args(["--backend", &url, r"x /\bword/"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("column 4") && stderr(&out).contains("Unicode-aware"),
        "{}",
        stderr(&out)
    );
    let out = run(loggrep().args(["--backend", "ftp://x/y", "x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("clickhouse://HOST"),
        "{}",
        stderr(&out)
    );
}

/// The event `raw` alone, as the query face sees it.
fn hit_of_raw(raw: &str) -> logwarden::query::search::Hit {
    logwarden::query::search::Hit {
        id: logwarden::event::EventId {
            fingerprint: 1,
            offset: 0,
        },
        ts: logwarden::event::Timestamp(0),
        service: "app".into(),
        level: logwarden::event::Level::Info,
        message: raw.lines().next().unwrap_or("").into(),
        raw: raw.into(),
        fields: serde_json::Map::new(),
        flags: logwarden::event::Flags::default(),
        rules: vec![],
        classes: vec![],
        groups: vec![],
    }
}

/// What SQL says of literals and regexes is what the local index says, case folding, Unicode
/// classes, line anchors and line breaks included: each question's SQL is run by the server on
/// each text alone and compared with the predicate the local index decides by.
#[test]
fn literals_and_regexes_mean_in_clickhouse_what_they_mean_here() {
    use logwarden::query::clickhouse::sql::{self, Bind};
    use logwarden::query::lang;
    use logwarden::store::clickhouse::Features;

    let texts = [
        "timeout after 30ms",
        "TIMEOUT AFTER 5MS",
        "Kelvin: 5\u{212A} DISK full",
        "\u{17F}ecret \u{17F}tuff",
        "line one\nline two",
        "a\nb",
        "naïve café ÜNÏCODE",
        "tab\there\r",
        "",
        "x.y*z? [brackets] {braces} (parens) |pipe| ^caret$",
        "\u{FB01}le İstanbul",
        "ΣΊΣΥΦΟΣ σίσυφος ς",
        "123 \u{663} digits",
        "word_boundary test-case",
        "back\\slash quote's \"double\" 100% a_b",
        "👍 emoji 👍👍",
    ];
    let queries = [
        "timeout",
        "Timeout",
        "TIMEOUT",
        "disk",
        "5k",
        "secret",
        "stuff",
        "ünïcode",
        "ÜNÏCODE",
        "σίσυφος",
        "file",
        "istanbul",
        r#""line one line""#,
        r#""one\nline""#,
        r#""back\\slash""#,
        r#""quote's \"double\"""#,
        r#""100%" OR "a_b""#,
        "x.y*z?",
        r"/timeout after \d+ms/",
        r"/^line two$/",
        r"/one.line/",
        r"/[^x]b/",
        r"/^$/",
        r"/\d \d/",
        r"/\w+ \w+/",
        r"/(?i)STANBUL/",
        r"/café|naive/",
        r"/a{2,3}|👍{2}/",
        r"/(?-u:\b)test(?-u:\b)/",
        r"/\.y\*z\?/",
        r"/\p{Greek}+ \p{Greek}/",
        r"/[[:upper:]]{3}/",
        r"/\S+\s\S+/",
        r"/\\s/",
        r"/[\^$|{}()\[\]]/",
        r"/(?s:.)b/",
        r"/ς$/",
        r"/k\b/",
    ];
    let server = ClickHouseServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = clickhouse::Client::default()
        .with_url(&server.url)
        .with_validation(false);
    let features = Features::of("18.16.1".parse().unwrap());
    for query in queries {
        let expr = lang::parse(query).unwrap();
        let ctx = sql::Context {
            features,
            incidents: Some(&[]),
        };
        let (condition, pred) = match sql::translate(expr.as_ref(), ctx) {
            Ok(t) => t,
            Err(e) => {
                // Refused, with a column: only what RE2 cannot say the same way.
                assert!(e.to_string().contains("Unicode-aware"), "{query}: {e}");
                continue;
            }
        };
        assert!(condition.exact, "{query}");
        for text in texts {
            let want = pred.eval(&hit_of_raw(text));
            let mut binds = vec![Bind::Str(text.into())];
            binds.extend(condition.binds.iter().cloned());
            let sql = format!(
                "SELECT count() FROM (SELECT ? AS raw) WHERE {}",
                condition.sql
            );
            let q = logwarden::query::clickhouse::bound(&client, &sql, &binds);
            let got: u64 = rt.block_on(q.fetch_one()).unwrap();
            assert_eq!(got == 1, want, "{query} on {text:?}: SQL {condition:?}");
        }
    }
}

/// A time range prunes partitions: with `force_index_by_date=1` the server refuses a query that
/// cannot use the partition key, and accepts loggrep's.
#[test]
fn time_ranges_prune_day_partitions() {
    use logwarden::event::Timestamp;
    use logwarden::query::clickhouse::{bound, sql};

    let server = ClickHouseServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ClickHouse::connect(&server.url, "pruned", None, None, None)
            .await
            .unwrap();
        ch.insert_events(&[row(0, "a"), row(1, "b")]).await.unwrap();
        let since = Timestamp::from_secs(1_796_212_800);
        let until = Timestamp::from_secs(1_796_212_800 + 61);
        let range = sql::time_range(Some(since), Some(until));
        let text = format!("SELECT count() FROM events FINAL WHERE {}", range.sql);
        let n: u64 = bound(ch.client(), &text, &range.binds)
            .with_setting("force_index_by_date", "1")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(n, 1);
        let unpruned = ch
            .client()
            .query("SELECT count() FROM events FINAL WHERE ts_ns > 0")
            .with_setting("force_index_by_date", "1")
            .fetch_one::<u64>()
            .await;
        assert!(unpruned.is_err(), "{unpruned:?}");
    });
}
