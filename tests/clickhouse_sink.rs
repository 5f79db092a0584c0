//! The ClickHouse sink against a real server (Debian's 18.16.1, one per test): `backfill` and
//! `run --clickhouse` write every event and incident change exactly once — also when the server
//! is down for 30 s mid-ingestion, and when the agent is killed with SIGKILL mid-batch.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::support::{
    ClickHouseServer, backfill_demo, collect, demo_backfill, loggrep_count, logwarden, run, stderr,
    terminate, wait_until, write_demo_logs,
};

/// Pino line `seq` of host `agent-a`: every tenth a Redis connection error (an incident), the
/// rest info lines.
fn line(seq: u64) -> String {
    line_on("agent-a", seq)
}

/// [`line`] as written on `host` (pino writes the host name into every line).
fn line_on(host: &str, seq: u64) -> String {
    let time = 1_796_220_000_000u64 + seq * 10;
    if seq.is_multiple_of(10) {
        format!(
            "{{\"level\":50,\"time\":{time},\"hostname\":\"{host}\",\"err\":{{\"message\":\"connect ECONNREFUSED 172.18.0.4:6379\",\"code\":\"ECONNREFUSED\"}},\"msg\":\"sinkline {seq}\"}}\n"
        )
    } else {
        format!(
            "{{\"level\":30,\"time\":{time},\"hostname\":\"{host}\",\"msg\":\"sinkline {seq}\"}}\n"
        )
    }
}

/// Rows in `db.events` after deduplication, distinct ids, and rows once merged to the end.
fn exactly(server: &ClickHouseServer, db: &str) -> (u64, u64, u64) {
    let n = |sql: &str| -> u64 { server.query(sql).parse().unwrap() };
    let once = n(&format!("SELECT count() FROM {db}.events FINAL"));
    let ids = n(&format!("SELECT uniqExact(id) FROM {db}.events"));
    server.query(&format!("OPTIMIZE TABLE {db}.events FINAL"));
    let merged = n(&format!("SELECT count() FROM {db}.events"));
    (once, ids, merged)
}

/// Rows ClickHouse holds for `db` so far (0 while it is down or has no table yet).
fn rows_now(server: &ClickHouseServer, db: &str) -> u64 {
    ureq::post(&server.url)
        .send(format!("SELECT uniqExact(id) FROM {db}.events"))
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// `logwarden run` following `log` into `data`, writing to ClickHouse `url` as agent `host`
/// (serving no HTTP unless `extra` says `--listen`).
fn agent(data: &Path, log: &Path, url: &str, host: &str, extra: &[&str]) -> Child {
    let listen: &[&str] = if extra.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "off"]
    };
    logwarden()
        .arg("run")
        .args(listen)
        .arg("--data-dir")
        .arg(data)
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .args(["--clickhouse", url, "--host", host])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Appends lines 0..total to `log` in steps of `step` lines every `pause`, on a thread; the
/// counter says how many are written.
fn writer(
    log: &Path,
    total: u64,
    step: u64,
    pause: Duration,
) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    let log = log.to_path_buf();
    let handle = std::thread::spawn(move || {
        let mut file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut seq = 0;
        while seq < total {
            let mut text = String::new();
            for _ in 0..step.min(total - seq) {
                text.push_str(&line(seq));
                seq += 1;
            }
            file.write_all(text.as_bytes()).unwrap();
            counter.store(seq, Ordering::SeqCst);
            #[allow(clippy::disallowed_methods)] // the writer's pace, not a wait for a result
            std::thread::sleep(pause);
        }
    });
    (written, handle)
}

/// `logwarden backfill` of one pino file `log` as service `app` into `data`, writing to ClickHouse
/// at `url`.
fn backfill_pino(data: &Path, log: &Path, url: &str) -> std::process::Output {
    run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(data)
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .args(["--clickhouse", url]))
}

#[test]
fn backfill_writes_every_event_and_incident_change_once_and_again_nothing() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = write_demo_logs(dir.path(), 5);
    let backfill = |data: &Path, extra: &[&str]| {
        let out = run(demo_backfill(data, &logs, false).args(extra));
        assert!(out.status.success(), "backfill failed: {}", stderr(&out));
    };
    // The local index of the same files says how many events and changes there are.
    let local = dir.path().join("local");
    backfill_demo(&local, &logs);
    let events = loggrep_count(&local, "");
    assert!(events > 10_000, "{events}");
    let changes = std::fs::read_to_string(logwarden::pipeline::incident_log(&local))
        .unwrap()
        .lines()
        .count() as u64;
    assert!(changes > 10, "{changes}");

    let url = format!("{}/shipped", server.url);
    let data = dir.path().join("both");
    backfill(
        &data,
        &["--clickhouse", &url, "--clickhouse-batch-rows", "7000"],
    );
    assert_eq!(loggrep_count(&data, ""), events, "the local index as well");
    let (once, ids, merged) = exactly(&server, "shipped");
    assert_eq!((once, ids, merged), (events, events, events));
    let incident_rows = |db: &str| -> u64 {
        server
            .query(&format!("SELECT count() FROM {db}.incidents FINAL"))
            .parse()
            .unwrap()
    };
    assert_eq!(incident_rows("shipped"), changes);
    // Every event of an incident's evidence is there, under the incident's class.
    let classes: u64 = server
        .query("SELECT count() FROM shipped.events FINAL WHERE has(classes, 'db-connection') OR has(classes, 'redis')")
        .parse()
        .unwrap();
    assert!(classes > 0);
    // The spool is empty once the backfill has returned.
    let left: Vec<_> = std::fs::read_dir(data.join("clickhouse"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Again: the checkpoints say everything was read; nothing new goes out.
    backfill(&data, &["--clickhouse", &url]);
    assert_eq!(exactly(&server, "shipped"), (events, events, events));

    // ClickHouse alone: the local index holds no event, ClickHouse all of them.
    let alone = dir.path().join("alone");
    let url = format!("{}/alone", server.url);
    backfill(&alone, &["--clickhouse", &url, "--no-local-index"]);
    assert_eq!(loggrep_count(&alone, ""), 0);
    assert_eq!(exactly(&server, "alone"), (events, events, events));
    assert_eq!(incident_rows("alone"), changes);
}

#[test]
fn backfill_against_an_unreachable_clickhouse_fails_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, line(1)).unwrap();
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}/db");
    let out = backfill_pino(&dir.path().join("d"), &log, &url);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
    // And a URL that is not one is refused before anything is read.
    let out = backfill_pino(
        &dir.path().join("d"),
        &log,
        "http://user:secret@127.0.0.1:8123/db",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--clickhouse-password-file"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("secret"), "{}", stderr(&out));
}

#[test]
fn clickhouse_down_for_30s_during_ingestion_loses_and_duplicates_nothing() {
    let mut server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let data = dir.path().join("data");
    let url = format!("{}/down", server.url);
    let total = 60_000;
    // ~45 s of writing: 500 lines every 350 ms.
    let (written, writing) = writer(&log, total, 500, Duration::from_millis(350));
    let listen = format!("127.0.0.1:{}", crate::support::free_port());
    let mut child = agent(
        &data,
        &log,
        &url,
        "agent-a",
        &["--clickhouse-batch-rows", "4000", "--listen", &listen],
    );
    let said = collect(child.stderr.take().unwrap());
    assert!(
        wait_until(60, || rows_now(&server, "down") > 2_000),
        "no rows arrived: {}",
        said.lock().unwrap()
    );
    server.stop();
    let stopped_at = written.load(Ordering::SeqCst);
    // Meanwhile the agent keeps reading and spools what ClickHouse cannot take.
    let spooled = || {
        std::fs::read_dir(data.join("clickhouse"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.path().extension().is_some_and(|x| x == "batch"))
            })
            .unwrap_or(false)
    };
    assert!(
        wait_until(30, spooled),
        "nothing spooled while ClickHouse was down"
    );
    // /metrics says so: failed inserts, bytes waiting.
    let metric = |name: &str| -> f64 {
        let text = ureq::get(&format!("http://{listen}/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(wait_until(30, || metric(
        "logwarden_clickhouse_insert_failures_total"
    ) > 0.0));
    assert!(metric("logwarden_clickhouse_spool_bytes") > 0.0);
    #[allow(clippy::disallowed_methods)] // the outage itself: ClickHouse stays down for 30 s
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        written.load(Ordering::SeqCst) > stopped_at,
        "lines were written during the outage"
    );
    server.start_again();
    writing.join().unwrap();
    assert!(
        wait_until(120, || rows_now(&server, "down") == total),
        "after the outage: {} of {total}; agent said: {}",
        rows_now(&server, "down"),
        said.lock().unwrap()
    );
    let text = said.lock().unwrap().clone();
    assert!(
        text.contains("insert failed"),
        "the outage was logged: {text}"
    );
    // The sender counts a batch once its incidents are in too and its file is gone: a moment
    // after its events show in ClickHouse.
    assert!(wait_until(10, || metric(
        "logwarden_clickhouse_rows_delivered_total"
    ) >= total as f64));
    assert!(wait_until(10, || metric(
        "logwarden_clickhouse_spool_bytes"
    ) == 0.0));
    terminate(child);
    assert_eq!(exactly(&server, "down"), (total, total, total));
    // Incident changes came through too, once each.
    let log_changes = std::fs::read_to_string(logwarden::pipeline::incident_log(&data))
        .unwrap()
        .lines()
        .count() as u64;
    let rows: u64 = server
        .query("SELECT count() FROM down.incidents FINAL")
        .parse()
        .unwrap();
    assert_eq!(rows, log_changes);
}

#[test]
fn an_agent_killed_mid_batch_leaves_every_line_once_and_two_agents_share_one_database() {
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/shared", server.url);
    let total = 40_000;
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&log_a, "").unwrap();
    let data_a = dir.path().join("a");
    let (written, writing) = writer(&log_a, total, 400, Duration::from_millis(100));
    let extra = ["--clickhouse-batch-rows", "3000"];
    let mut first = agent(&data_a, &log_a, &url, "agent-a", &extra);
    assert!(wait_until(60, || rows_now(&server, "shared") > 5_000));
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = rows_now(&server, "shared");
    assert!(
        at_kill < total && written.load(Ordering::SeqCst) < total,
        "killed mid-ingestion"
    );

    // A second agent on another host writes into the same database meanwhile.
    let total_b = 7_000;
    let text: String = (0..total_b)
        .map(|s| line_on("agent-b", 1_000_000 + s))
        .collect();
    std::fs::write(&log_b, text).unwrap();
    let data_b = dir.path().join("b");
    let second = agent(&data_b, &log_b, &url, "agent-b", &[]);

    let again = agent(&data_a, &log_a, &url, "agent-a", &extra);
    writing.join().unwrap();
    assert!(
        wait_until(120, || rows_now(&server, "shared") == total + total_b),
        "{} rows of {}",
        rows_now(&server, "shared"),
        total + total_b
    );
    terminate(again);
    terminate(second);
    let all = total + total_b;
    assert_eq!(exactly(&server, "shared"), (all, all, all));
    // loggrep over ClickHouse sees both agents, each with its exact count.
    let out = run(crate::support::loggrep().args([
        "--backend",
        &format!(
            "clickhouse://{}/shared",
            server.url.trim_start_matches("http://")
        ),
        "--count-by",
        "host",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let tally: Vec<(String, String)> = crate::support::stdout(&out)
        .lines()
        .map(|l| {
            let (n, host) = l.trim_start().split_once(' ').unwrap();
            (host.to_string(), n.to_string())
        })
        .collect();
    assert_eq!(
        tally,
        vec![
            ("agent-a".to_string(), total.to_string()),
            ("agent-b".to_string(), total_b.to_string())
        ]
    );
    let per_agent = server.query(
        "SELECT arrayStringConcat(groupArray(concat(agent, '=', toString(n))), ' ') FROM (SELECT agent, count() AS n FROM shared.events FINAL GROUP BY agent ORDER BY agent)",
    );
    assert_eq!(per_agent, format!("agent-a={total} agent-b={total_b}"));
}

#[test]
fn retention_drops_the_whole_days_older_than_the_cutoff_and_keeps_the_rest() {
    use logwarden::store::clickhouse::{ClickHouse, EventRow};
    let server = ClickHouseServer::start();
    let now = u64::try_from(logwarden::event::Timestamp::now().0 / 1_000_000).unwrap();
    let day = 86_400;
    // Three and two years ago (two days each), and an hour ago.
    let times = [
        now - 3 * 365 * day,
        now - 3 * 365 * day + day,
        now - 2 * 365 * day - 2 * day,
        now - 3600,
    ];
    let rows: Vec<EventRow> = times
        .iter()
        .enumerate()
        .map(|(i, &secs)| EventRow {
            ts: u32::try_from(secs).unwrap(),
            ts_ns: secs * 1_000_000_000,
            id: format!("{:016x}:{i}", 7),
            agent: "a".into(),
            service: "app".into(),
            level: "info".into(),
            host: "a".into(),
            source: String::new(),
            message: format!("m{i}"),
            raw: format!("m{i}"),
            fields: "{}".into(),
            flags: vec![],
            rules: vec![],
            classes: vec![],
            groups: vec![],
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = ClickHouse::connect(&server.url, "kept", None, None, None)
            .await
            .unwrap();
        ch.insert_events(&rows).await.unwrap();
    });
    let url = format!("{}/kept", server.url);
    let out = run(logwarden().args(["retention", "--older-than", "730d", "--clickhouse", &url]));
    assert!(out.status.success(), "{}", stderr(&out));
    let said = crate::support::stdout(&out);
    assert!(
        said.contains("dropped 3 day partition(s) of kept.events"),
        "{said}"
    );
    assert_eq!(server.query("SELECT count() FROM kept.events"), "1");
    assert_eq!(server.query("SELECT message FROM kept.events"), "m3");
    // Again: nothing left to drop.
    let out = run(logwarden().args(["retention", "--older-than", "730d", "--clickhouse", &url]));
    assert!(crate::support::stdout(&out).contains("nothing to drop"));
}

#[test]
fn an_events_table_of_the_first_release_is_migrated_at_start() {
    use logwarden::store::clickhouse::ClickHouse;
    let server = ClickHouseServer::start();
    server.query("CREATE DATABASE old");
    // The first slice's table: no `groups` column.
    server.query(
        "CREATE TABLE old.events (ts DateTime('UTC'), ts_ns UInt64, id String, agent String, \
         service String, level String, host String, source String, message String, raw String, \
         fields String, flags Array(String), rules Array(String), classes Array(String)) \
         ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (service, ts, agent, id)",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        ClickHouse::connect(&server.url, "old", None, None, None)
            .await
            .unwrap();
    });
    assert_eq!(
        server.query("SELECT type FROM system.columns WHERE database = 'old' AND table = 'events' AND name = 'groups'"),
        "Array(String)"
    );
}

#[test]
fn secrets_never_reach_clickhouse_rows_or_incidents() {
    use crate::support::secrets::{assert_no_secret, catalogue, leak_rules, lines};
    let server = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secrets = catalogue();
    let log = dir.path().join("app.log");
    std::fs::write(&log, lines(&secrets, "")).unwrap();
    let url = format!("{}/secrets", server.url);
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .arg("--patterns")
        .arg(leak_rules(dir.path()))
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .args(["--clickhouse", &url]));
    assert!(out.status.success(), "{}", stderr(&out));
    let n = secrets.len().to_string();
    assert_eq!(server.query("SELECT count() FROM secrets.events FINAL"), n);
    // Each line opened an incident of its own, whose evidence holds it.
    assert_eq!(
        server.query("SELECT count() FROM secrets.incidents WHERE kind = 'opened'"),
        n
    );
    let everything = server.query(
        "SELECT concat(raw, message, fields, host) FROM secrets.events \
         UNION ALL SELECT incident FROM secrets.incidents",
    );
    assert_no_secret(&secrets, "ClickHouse", &everything);
    // And the lines are there, redacted where the secrets were.
    assert_eq!(
        server.query("SELECT count() FROM secrets.events FINAL WHERE position(raw, '***') > 0"),
        n
    );
}
