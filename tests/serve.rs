//! Issue 7, first slice: the HTTP face of `logwarden run` — the incident API, the SSE feed (replay
//! after a reconnect, 200 clients, a client that never reads) and the token — against the real
//! server process on an ephemeral loopback port, with real HTTP clients (reqwest; a raw socket
//! for the client that never reads). Second slice: search and count against the `loggrep`
//! binary's answers on the same data dir, and pushed lines (token, body cap, redaction, incidents).
//! Third slice: the WebSocket feed (replay, filter, token), `/metrics` against a file of known
//! content, and `/api/v1/health`'s readiness.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logwarden::incident::{Change, ChangeKind};
use logwarden::store::incidents::IncidentLog;
use serde_json::Value;

use crate::support::{logwarden, run, stderr, stdout, terminate, wait_until};

/// The one rule of these tests: every `feedfault` line opens an incident of its own `key`.
pub(crate) const RULE: &str = r#"
[[rule]]
id = "test-feed-fault"
class = "db-connection"
severity = "error"
title = "A fault for the feed"
literals = ["feedfault"]
group_by = ["key"]
resolve_after = "1h"
runbook = ["database-connection-issues"]
examples = ['{"level":50,"time":1796220000000,"msg":"feedfault","key":"k1"}']
"#;

/// A `logwarden run` following one pino file, serving on an ephemeral port (also the server of
/// `board.rs`, the browser test).
pub(crate) struct Served {
    child: Option<Child>,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    data: PathBuf,
    pub(crate) log: PathBuf,
    /// Where everything is (kept across [`Served::restart`]).
    dir: Option<tempfile::TempDir>,
}

impl Served {
    pub(crate) fn start(extra: &[&str]) -> Served {
        Served::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// The data dir a server started in `dir` uses (`dir/data`), to prepare before it starts.
    pub(crate) fn data_in(dir: &std::path::Path) -> PathBuf {
        dir.join("data")
    }

    /// Start in `dir` (whose `data` folder may be prepared already, see [`Served::data_in`]).
    pub(crate) fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Served {
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(rules.join("feed.toml"), RULE).unwrap();
        let log = dir.path().join("app.log");
        let data = Served::data_in(dir.path());
        if !log.try_exists().unwrap() {
            std::fs::write(
                &log,
                format!(
                    "{{\"level\":30,\"time\":{},\"msg\":\"started\"}}\n",
                    logwarden::event::Timestamp::now().as_millis()
                ),
            )
            .unwrap();
        }
        let mut child = logwarden()
            .arg("run")
            .arg("--data-dir")
            .arg(&data)
            .arg("--patterns")
            .arg(&rules)
            .args(["--listen", "127.0.0.1:0", "--heartbeat", "1s", "--source"])
            .arg(format!("app:pino={}", log.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = crate::support::collect(child.stderr.take().unwrap());
        let said = || stderr.lock().unwrap().clone();
        assert!(
            wait_until(30, || said().contains("serving http://")),
            "no `serving` line: {}",
            said()
        );
        let text = said();
        let addr = text
            .split("serving http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {text}"));
        Served {
            child: Some(child),
            addr,
            stderr,
            data,
            log,
            dir: Some(dir),
        }
    }

    pub(crate) fn data(&self) -> &std::path::Path {
        &self.data
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Append one fault line for each key number, in one write.
    pub(crate) fn inject(&self, keys: std::ops::Range<u32>) {
        let now = logwarden::event::Timestamp::now().as_millis();
        let mut text = String::new();
        for k in keys {
            text.push_str(&format!(
                "{{\"level\":50,\"time\":{now},\"msg\":\"feedfault in the test\",\"key\":\"k{k}\"}}\n"
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Every change the incident log holds (complete lines only: it may be being written).
    pub(crate) fn changes(&self) -> Vec<Change> {
        IncidentLog::read_after(&self.data.join("incidents.jsonl"), 0).unwrap()
    }

    /// The stored changes up to sequence number `end`, included.
    fn changes_through(&self, end: u64) -> Vec<Change> {
        let mut changes = self.changes();
        changes.retain(|c| c.seq <= end);
        changes
    }

    fn opened(&self) -> usize {
        self.changes()
            .iter()
            .filter(|c| c.kind == ChangeKind::Opened)
            .count()
    }

    /// Wait until `n` incidents have opened; the log's sequence numbers then.
    pub(crate) fn wait_opened(&self, n: usize) -> Vec<u64> {
        assert!(
            wait_until(30, || self.opened() >= n),
            "{} of {n} incidents opened; stderr: {}",
            self.opened(),
            self.stderr()
        );
        self.changes().iter().map(|c| c.seq).collect()
    }

    pub(crate) fn stop(mut self) {
        terminate(self.child.take().unwrap());
    }

    /// Stop (SIGTERM) and start again on the same files and data dir.
    pub(crate) fn restart(mut self, extra: &[&str]) -> Served {
        terminate(self.child.take().unwrap());
        let dir = self.dir.take().unwrap();
        Served::start_in(dir, extra)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn http() -> reqwest::Client {
    crate::support::http_client()
}

/// One server-sent event (comments are not events).
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) id: u64,
    pub(crate) event: String,
    pub(crate) data: String,
}

/// What an SSE stream gave next.
#[derive(Debug)]
enum Frame {
    Event(SseEvent),
    Comment(String),
}

/// A minimal text/event-stream reader over a reqwest response.
pub(crate) struct Sse {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl Sse {
    pub(crate) async fn connect(
        http: &reqwest::Client,
        url: &str,
        last_event_id: Option<u64>,
    ) -> Sse {
        let mut request = http.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{url}"
        );
        Sse {
            response,
            buf: Vec::new(),
        }
    }

    /// The next frame, or None when the stream ends or the deadline passes.
    async fn next(&mut self, deadline: Instant) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).unwrap();
                return Some(parse_block(text.trim_end()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
                Ok(Ok(None) | Err(_)) | Err(_) => return None,
            }
        }
    }

    pub(crate) async fn next_event(&mut self, deadline: Instant) -> Option<SseEvent> {
        loop {
            match self.next(deadline).await? {
                Frame::Event(e) => return Some(e),
                Frame::Comment(_) => {}
            }
        }
    }
}

fn parse_block(text: &str) -> Frame {
    let mut fields: HashMap<&str, String> = HashMap::new();
    let mut comment = None;
    for line in text.lines() {
        if let Some(c) = line.strip_prefix(':') {
            comment = Some(c.trim().to_string());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        fields.entry(name).or_default().push_str(value);
    }
    match (comment, fields.is_empty()) {
        (Some(c), true) => Frame::Comment(c),
        _ => Frame::Event(SseEvent {
            id: fields["id"].parse().unwrap(),
            event: fields["event"].clone(),
            data: fields["data"].clone(),
        }),
    }
}

/// Each event is the logged change: its id is the change's sequence number, its name the kind,
/// its data the change as the log holds it.
fn assert_events_are_the_log(events: &[SseEvent], log: &[Change]) {
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let seqs: Vec<u64> = log.iter().map(|c| c.seq).collect();
    assert_eq!(ids, seqs, "every change exactly once, in order");
    for (event, change) in events.iter().zip(log) {
        assert_eq!(event.event, change.kind.as_str());
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data, serde_json::to_value(change).unwrap());
    }
}

async fn feed_clients(http: &reqwest::Client, served: &Served) -> u64 {
    let health: Value = serde_json::from_str(
        &http
            .get(served.url("/api/v1/health"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(health["status"], "ok");
    health["feed_clients"].as_u64().unwrap()
}

/// Poll an async condition until it holds or `secs` pass.
pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut cond: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}

/// A client killed mid-stream reconnects with Last-Event-ID and gets every change it missed from
/// the log, then the live ones: the union is the incident log, each change once, in order.
#[test]
fn feed_replay_after_a_reconnect_misses_nothing_and_repeats_nothing() {
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    let feed = served.url("/api/v1/feed");
    rt.block_on(async {
        let deadline = || Instant::now() + Duration::from_secs(30);
        let mut first = Sse::connect(&http, &feed, None).await;
        served.inject(0..4);
        // Take two of the four changes, then die with the rest possibly unread in the socket.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(first.next_event(deadline()).await.expect("live events"));
        }
        drop(first);
        assert!(
            eventually(10, || async { feed_clients(&http, &served).await == 0 }).await,
            "the server keeps a client that went away"
        );

        served.inject(4..8);
        let stored = served.wait_opened(8);
        let last_seen = seen.last().unwrap().id;
        let mut again = Sse::connect(&http, &feed, Some(last_seen)).await;
        // Replayed from the log, then live: two more after the reconnect.
        served.inject(8..10);
        let stored_end = *served.wait_opened(10).last().unwrap();
        assert!(stored_end > *stored.last().unwrap());
        while seen.last().unwrap().id < stored_end {
            seen.push(
                again
                    .next_event(deadline())
                    .await
                    .expect("replay, then live"),
            );
        }
        assert_events_are_the_log(&seen, &served.changes_through(stored_end));
    });
    served.stop();
}

/// 200 clients on the feed at once all get every change.
#[test]
fn two_hundred_feed_clients_all_get_every_change() {
    const CLIENTS: usize = 200;
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    let feed = served.url("/api/v1/feed");
    let clients: Vec<Sse> = rt.block_on(async {
        let connects: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (http, feed) = (http.clone(), feed.clone());
                tokio::spawn(async move { Sse::connect(&http, &feed, None).await })
            })
            .collect();
        let mut clients = Vec::new();
        for c in connects {
            clients.push(c.await.unwrap());
        }
        assert_eq!(feed_clients(&http, &served).await, CLIENTS as u64);
        clients
    });
    served.inject(0..5);
    let stored = served.wait_opened(5);
    let last = *stored.last().unwrap();
    let received: Vec<Vec<SseEvent>> = rt.block_on(async {
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    let mut got: Vec<SseEvent> = Vec::new();
                    while got.last().is_none_or(|e| e.id < last) {
                        match client.next_event(deadline).await {
                            Some(e) => got.push(e),
                            None => break,
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for r in readers {
            all.push(r.await.unwrap());
        }
        all
    });
    let log = served.changes();
    let log = &log[..log.iter().position(|c| c.seq == last).unwrap() + 1];
    for got in &received {
        assert_events_are_the_log(got, log);
    }
    served.stop();
}

/// A client that never reads fills its socket and then its queue; it is dropped, with the reason
/// logged, and its connection cut, while the clients that read get every change in time.
#[test]
fn a_feed_client_that_never_reads_is_dropped_and_delays_no_one() {
    let served = Served::start(&["--feed-buffer", "16"]);
    let rt = runtime();
    let http = http();
    let feed = served.url("/api/v1/feed");

    // The client that never reads: a raw socket with a small receive window.
    let sleeper = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sleeper.set_recv_buffer_size(4096).unwrap();
    sleeper.connect(&served.addr.into()).unwrap();
    let mut sleeper = std::net::TcpStream::from(sleeper);
    let sleeper_port = sleeper.local_addr().unwrap().port();
    write!(
        sleeper,
        "GET /api/v1/feed HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        served.addr
    )
    .unwrap();

    // Three clients that read, each collecting what it gets.
    let got: Vec<Arc<Mutex<Vec<u64>>>> = (0..3).map(|_| Arc::default()).collect();
    for sink in &got {
        let sink = Arc::clone(sink);
        let (http, feed) = (http.clone(), feed.clone());
        let mut client = rt.block_on(async move { Sse::connect(&http, &feed, None).await });
        rt.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while let Some(e) = client.next_event(deadline).await {
                sink.lock().unwrap().push(e.id);
            }
        });
    }
    assert!(rt.block_on(eventually(10, || async {
        feed_clients(&http, &served).await == 4
    })));

    // Batches of ten incidents, each waited for by the readers within the deadline, until the
    // sleeper's socket and queue are full and it is dropped.
    let dropped = |s: &Served| s.stderr().contains("feed client dropped");
    let mut next = 0;
    while !dropped(&served) {
        assert!(next < 1000, "never dropped: {}", served.stderr());
        served.inject(next..next + 10);
        next += 10;
        let stored = served.wait_opened(next as usize);
        let all_there = || got.iter().all(|g| g.lock().unwrap().starts_with(&stored));
        assert!(
            wait_until(10, all_there),
            "a reading client fell behind at {next} incidents"
        );
    }
    let said = served.stderr();
    let line = said
        .lines()
        .find(|l| l.contains("feed client dropped"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!(":{sleeper_port}")), "{line}");
    assert!(line.contains("has not read its last 16 changes"), "{line}");
    assert!(rt.block_on(eventually(10, || async {
        feed_clients(&http, &served).await == 3
    })));

    // Its connection is cut: reading it now ends (what was in flight, then a reset or EOF).
    sleeper
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = [0u8; 65536];
    loop {
        match sleeper.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the dropped client's connection is still open: {e}"),
        }
    }

    // The readers go on: one more batch reaches them.
    served.inject(next..next + 3);
    let stored = served.wait_opened(next as usize + 3);
    assert!(wait_until(10, || got
        .iter()
        .all(|g| g.lock().unwrap().starts_with(&stored))));
    served.stop();
}

/// Only loopback without a token; a taken port is named; with a token, /api needs the bearer.
#[test]
fn the_listen_policy_and_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let refused = |listen: &str| {
        let out = run(logwarden()
            .args(["run", "--listen", listen, "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--source")
            .arg(format!("app:pino={}", log.display())));
        assert_eq!(out.status.code(), Some(2), "{listen}: {}", stderr(&out));
        stderr(&out)
    };
    let said = refused("0.0.0.0:0");
    assert!(
        said.contains("refusing to listen on 0.0.0.0:0 without an API token")
            && said.contains("--token-file"),
        "{said}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let said = refused(&addr);
    assert!(said.contains(&format!("cannot listen on {addr}")), "{said}");

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "feed-me-a-long-random-token\n").unwrap();
    let served = Served::start(&["--token-file", token_file.to_str().unwrap()]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        for path in [
            "/api/v1/health",
            "/api/v1/incidents",
            "/api/v1/feed",
            "/metrics",
        ] {
            let url = served.url(path);
            let none = http.get(&url).send().await.unwrap();
            assert_eq!(none.status(), 401, "{path}");
            assert_eq!(none.headers()["www-authenticate"], "Bearer");
            let body: Value = serde_json::from_str(&none.text().await.unwrap()).unwrap();
            assert!(body["error"].as_str().unwrap().contains("Bearer"));
            let wrong = http.get(&url).bearer_auth("feed-me-a-long-random-tokem");
            assert_eq!(wrong.send().await.unwrap().status(), 401, "{path}");
            let right = http.get(&url).bearer_auth("feed-me-a-long-random-token");
            assert_eq!(right.send().await.unwrap().status(), 200, "{path}");
        }
    });
    served.stop();
}

/// Without a token, a request whose Host is not this machine is refused: a page of another site
/// that points its name at 127.0.0.1 (DNS rebinding) cannot read the board or the API.
#[test]
fn requests_for_another_host_name_are_refused_without_a_token() {
    let served = Served::start(&[]);
    let status = |host: &str, path: &str| {
        let mut raw = std::net::TcpStream::connect(served.addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            raw,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        raw.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head[9..12]).into_owned()
    };
    let port = served.addr.port();
    for path in ["/", "/api/v1/incidents", "/api/v1/health"] {
        assert_eq!(
            status(&format!("evil.example:{port}"), path),
            "403",
            "{path}"
        );
        assert_eq!(
            status(&format!("localhost.evil.example:{port}"), path),
            "403"
        );
        assert_eq!(status(&format!("localhost:{port}"), path), "200", "{path}");
        assert_eq!(status(&served.addr.to_string(), path), "200", "{path}");
    }
    served.stop();
}

/// CORS: none by default; with `--cors-origin`, that origin's pages may read the API (the
/// preflight is answered without a token), and other origins still get no CORS header.
#[test]
fn cors_headers_only_for_the_origins_named() {
    let rt = runtime();
    let http = http();
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let plain = Served::start(&[]);
    rt.block_on(async {
        let r = http
            .get(plain.url("/api/v1/incidents"))
            .header("Origin", "http://dash.example:3000")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(allow(&r), None);
    });
    plain.stop();

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "cors-token\n").unwrap();
    let served = Served::start(&[
        "--cors-origin",
        "http://dash.example:3000",
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    rt.block_on(async {
        let url = served.url("/api/v1/incidents");
        let preflight = http
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", "http://dash.example:3000")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{}", preflight.status());
        assert_eq!(
            allow(&preflight).as_deref(),
            Some("http://dash.example:3000")
        );
        let allowed = preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        let read = http
            .get(&url)
            .header("Origin", "http://dash.example:3000")
            .bearer_auth("cors-token")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        assert_eq!(allow(&read).as_deref(), Some("http://dash.example:3000"));
        let other = http
            .get(&url)
            .header("Origin", "http://evil.example")
            .bearer_auth("cors-token")
            .send()
            .await
            .unwrap();
        assert_eq!(allow(&other), None);
    });
    served.stop();

    let out = run(logwarden()
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--cors-origin",
            "http://dash.example/app",
        ])
        .args(["--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--source", "app:pino=/dev/null"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a web origin"),
        "{}",
        stderr(&out)
    );
}

/// `/api/v1/incidents` and `/api/v1/incidents/{id}` give the incidents as `logwarden incidents
/// --json` and `logwarden incident ID --json` do, with the contract's fields; filters, errors and
/// caps answer as documented.
#[test]
fn the_incident_api_gives_the_incident_json_of_the_cli() {
    let served = Served::start(&[]);
    served.inject(0..3);
    let stored = served.wait_opened(3);
    let rt = runtime();
    let http = http();
    let cli = |args: &[&str]| -> String {
        let out = run(logwarden().args(args).arg("--data-dir").arg(&served.data));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    rt.block_on(async {
        let get = |path: &str| {
            let request = http.get(served.url(path));
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let cors = response
                    .headers()
                    .get("access-control-allow-origin")
                    .cloned();
                assert_eq!(cors, None, "no CORS");
                let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
                (status, body)
            }
        };
        let (status, list) = get("/api/v1/incidents").await;
        assert_eq!(status, 200);
        assert_eq!(list["seq"], *stored.last().unwrap());
        let listed: Vec<Value> = cli(&["incidents", "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(list["incidents"], Value::Array(listed.clone()));
        assert_eq!(listed.len(), 3);

        let id = listed[0]["id"].as_str().unwrap();
        let (status, one) = get(&format!("/api/v1/incidents/{id}")).await;
        assert_eq!(status, 200);
        let printed: Value = serde_json::from_str(&cli(&["incident", id, "--json"])).unwrap();
        assert_eq!(one, printed);
        for field in [
            "id",
            "class",
            "severity",
            "state",
            "services",
            "first_seen",
            "last_seen",
            "count",
            "escalation_level",
            "caused_by",
            "runbook",
            "evidence",
        ] {
            assert!(one.get(field).is_some(), "no `{field}` in {one}");
        }
        assert_eq!(one["class"], "db-connection");
        assert!(one["first_seen"].as_str().unwrap().ends_with('Z'), "{one}");
        let steps = one["runbook"]["steps"].as_array().unwrap();
        assert!(
            !steps.is_empty() && steps[0]["text"].is_string() && steps[0]["commands"].is_array()
        );
        assert!(one["runbook"]["title"].is_string() && one["runbook"]["anchor"].is_string());
        assert!(
            one["evidence"][0]["text"]
                .as_str()
                .unwrap()
                .contains("feedfault")
        );
        // A unique prefix works as on the command line.
        let (_, by_prefix) = get(&format!("/api/v1/incidents/{}", &id[..12])).await;
        assert_eq!(by_prefix["id"], id);

        let count = |v: &Value| v["incidents"].as_array().unwrap().len();
        assert_eq!(count(&get("/api/v1/incidents?open=true").await.1), 3);
        assert_eq!(
            count(
                &get("/api/v1/incidents?class=db-connection,security&service=app")
                    .await
                    .1
            ),
            3
        );
        assert_eq!(
            count(&get("/api/v1/incidents?severity=critical").await.1),
            0
        );

        for (path, status, says) in [
            ("/api/v1/incidents/inc-ffffffffffffffff", 404, "no incident"),
            ("/api/v1/incidents?class=db-conection", 400, "db-connection"),
            ("/api/v1/incidents?opne=true", 400, "opne"),
            ("/api/v1/feed?last_event_id=x", 400, "sequence number"),
            ("/api/v2/incidents", 404, "/api/v1/incidents"),
        ] {
            let (got, body) = get(path).await;
            assert_eq!(got, status, "{path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains(says),
                "{path}: {body}"
            );
        }
        let long = format!("/api/v1/incidents?service={}", "a".repeat(5000));
        assert_eq!(get(&long).await.0, 414);
        // A body over the cap is refused on its Content-Length, before a byte of it is read (a
        // raw request: an HTTP client sending the 2 MiB could meet the closed connection first).
        let mut raw = std::net::TcpStream::connect(served.addr).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            raw,
            "POST /api/v1/incidents HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            served.addr,
            2 << 20
        )
        .unwrap();
        let mut head = [0u8; 12];
        raw.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");

        // A first connection replays from `?last_event_id=`; a filter that admits nothing still
        // gets the heartbeat.
        let deadline = || Instant::now() + Duration::from_secs(10);
        let mut replay =
            Sse::connect(&http, &served.url("/api/v1/feed?last_event_id=0"), None).await;
        let mut events = Vec::new();
        while events.len() < stored.len() {
            events.push(replay.next_event(deadline()).await.expect("replayed"));
        }
        assert_events_are_the_log(&events, &served.changes()[..stored.len()]);
        let mut none = Sse::connect(
            &http,
            &served.url("/api/v1/feed?last_event_id=0&service=nothere"),
            None,
        )
        .await;
        match none.next(deadline()).await {
            Some(Frame::Comment(c)) => assert_eq!(c, "heartbeat"),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    });
    served.stop();
}

/// A query parameter's value, percent-encoded (every byte but letters and digits).
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET `path`: the status and the body as JSON.
pub(crate) async fn get_json(http: &reqwest::Client, served: &Served, path: &str) -> (u16, Value) {
    let response = http.get(served.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, body)
}

/// POST `body` to `/api/v1/ingest?{query}`, with the bearer when given: status and JSON body.
async fn push(
    http: &reqwest::Client,
    served: &Served,
    query: &str,
    body: &str,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = http
        .post(served.url(&format!("/api/v1/ingest?{query}")))
        .body(body.to_string());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{query}: {e}: {text}"));
    (status, body)
}

/// What the `loggrep` binary says on the same data dir: exit code, stdout, stderr.
fn loggrep_says(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = run(crate::support::loggrep()
        .arg("--data-dir")
        .arg(data)
        .args(["--color", "never"])
        .args(args));
    (out.status.code(), stdout(&out), stderr(&out))
}

/// `/api/v1/search` gives the events `loggrep --json` prints (the same objects, same order, same
/// cut) and `/api/v1/count` the number `loggrep --count` prints, for the same query, filters and
/// times; a bad query is a 400 with loggrep's message and the column; limits are checked.
#[test]
fn search_and_count_answer_as_loggrep_does() {
    let served = Served::start(&[]);
    served.inject(0..7);
    assert!(
        wait_until(30, || crate::support::loggrep_count(
            &served.data,
            "feedfault"
        ) == 7),
        "the faults were not indexed; stderr: {}",
        served.stderr()
    );
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        // (query, filter parameters and the same as loggrep flags, limit)
        let cases: [(&str, &str, &[&str], Option<usize>); 9] = [
            ("feedfault", "", &[], None),
            ("feedfault", "", &[], Some(3)),
            ("", "", &[], Some(2)),
            ("key:k3 OR key:k5", "", &[], None),
            ("/feed\\w+ in/", "&service=app", &["--service", "app"], None),
            ("", "&level=error", &["--level", "error"], None),
            ("feedfault", "&since=1h", &["--since", "1h"], None),
            ("feedfault", "&until=1h", &["--until", "1h"], None),
            ("nothing-like-this", "", &[], None),
        ];
        for (q, params, flags, limit) in cases {
            let limited = limit.map_or(String::new(), |n| format!("&limit={n}"));
            let path = format!("/api/v1/search?q={}{params}{limited}", enc(q));
            let (status, body) = get_json(&http, &served, &path).await;
            assert_eq!(status, 200, "{path}: {body}");
            let limit_flag = limit.map(|n| n.to_string());
            let mut args = vec!["--json"];
            if let Some(n) = &limit_flag {
                args.extend(["--limit", n.as_str()]);
            }
            args.extend_from_slice(flags);
            args.extend(["--", q]);
            let (code, printed, said) = loggrep_says(&served.data, &args);
            assert!(matches!(code, Some(0 | 1)), "{args:?}: {said}");
            let expected: Vec<Value> = printed
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(body["hits"], Value::Array(expected), "{path}");
            assert_eq!(
                body["truncated"].as_bool().unwrap(),
                said.contains("showing the newest"),
                "{path}: {said}"
            );

            let count_path = format!("/api/v1/count?q={}{params}", enc(q));
            let (status, counted) = get_json(&http, &served, &count_path).await;
            assert_eq!(status, 200, "{count_path}: {counted}");
            let mut args = vec!["--count"];
            args.extend_from_slice(flags);
            args.extend(["--", q]);
            let (_, printed, said) = loggrep_says(&served.data, &args);
            let n: u64 = printed.trim().parse().unwrap_or_else(|_| panic!("{said}"));
            assert_eq!(counted, serde_json::json!({ "count": n }), "{count_path}");
            if !body["truncated"].as_bool().unwrap() {
                assert_eq!(body["matched"], n, "{path}");
                assert_eq!(body["exact"], true, "{path}");
                assert_eq!(body["hits"].as_array().unwrap().len() as u64, n, "{path}");
            }
        }
        // The cases above are not all alike: some find the faults, one nothing, two are cut.
        let (_, cut) = get_json(&http, &served, "/api/v1/search?q=feedfault&limit=3").await;
        assert_eq!(cut["truncated"], true);
        assert_eq!(cut["hits"].as_array().unwrap().len(), 3);
        assert_eq!(
            get_json(&http, &served, "/api/v1/count?q=feedfault")
                .await
                .1["count"],
            7
        );

        // A bad query: 400, loggrep's own message, the column.
        let bad = "feedfault AND (key:k1";
        let (status, body) =
            get_json(&http, &served, &format!("/api/v1/search?q={}", enc(bad))).await;
        assert_eq!(status, 400, "{body}");
        let (code, _, said) = loggrep_says(&served.data, &["--", bad]);
        assert_eq!(code, Some(2));
        let message = body["error"].as_str().unwrap();
        let first = message.lines().next().unwrap();
        assert!(first.contains("column"), "{message}");
        assert!(
            said.contains(first),
            "loggrep says {said}, the API {message}"
        );
        let column = body["column"].as_u64().unwrap();
        assert!(first.contains(&format!("column {column}")), "{message}");
        let (status, body) =
            get_json(&http, &served, &format!("/api/v1/count?q={}", enc(bad))).await;
        assert_eq!((status, body["column"].as_u64()), (400, Some(column)));

        for (path, says) in [
            ("/api/v1/search?q=x&limit=0", "limit"),
            ("/api/v1/search?q=x&limit=10001", "10000"),
            ("/api/v1/search?q=x&since=yesterdayish", "--since"),
            ("/api/v1/search?q=x&level=loud", "level"),
            ("/api/v1/search?query=x", "query"),
            ("/api/v1/count?q=x&limit=3", "limit"),
        ] {
            let (status, body) = get_json(&http, &served, path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains(says),
                "{path}: {body}"
            );
        }
        let long = format!("/api/v1/search?q={}", "a".repeat(5000));
        assert_eq!(
            http.get(served.url(&long)).send().await.unwrap().status(),
            414
        );
    });
    served.stop();
}

/// Lines pushed to `/api/v1/ingest` go through the pipeline as a source of their own: indexed
/// once each (a second batch continues the stream), redacted before anything stores them, and
/// matched, so a pushed fault opens an incident of the pushed service.
#[test]
fn pushed_lines_are_indexed_once_redacted_and_raise_incidents() {
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    let now = logwarden::event::Timestamp::now().as_millis();
    let batch = format!(
        "{{\"level\":50,\"time\":{now},\"msg\":\"feedfault pushed from the edge\",\"key\":\"edge1\"}}\n\
         {{\"level\":40,\"time\":{now},\"msg\":\"connect postgres://user:s3cret@host/db failed\"}}\n\
         {{\"level\":30,\"time\":{now},\"msg\":\"hello from the edge\"}}"
    );
    rt.block_on(async {
        let (status, body) = push(&http, &served, "source=edge&format=pino", &batch, None).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["lines"], 3, "{body}");
        assert_eq!(body["source"], "edge");

        let count = |q: &'static str| {
            let http = http.clone();
            let url = served.url(&format!("/api/v1/count?q={}", enc(q)));
            async move {
                let v: Value = serde_json::from_str(
                    &http.get(url).send().await.unwrap().text().await.unwrap(),
                )
                .unwrap();
                v["count"].as_u64().unwrap()
            }
        };
        assert!(
            eventually(30, || async { count("service:edge").await >= 3 }).await,
            "pushed lines never searchable; stderr: {}",
            served.stderr()
        );
        assert!(
            eventually(30, || async {
                let (_, list) = get_json(&http, &served, "/api/v1/incidents?service=edge").await;
                list["incidents"].as_array().unwrap().len() == 1
            })
            .await,
            "no incident of the pushed fault; stderr: {}",
            served.stderr()
        );
        let (_, list) = get_json(&http, &served, "/api/v1/incidents?service=edge").await;
        assert_eq!(list["incidents"][0]["class"], "db-connection");

        // The secret was scrubbed before indexing: no search finds it or shows it.
        assert_eq!(count("s3cret").await, 0);
        let response = http
            .get(served.url("/api/v1/search?q=service%3Aedge"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!response.contains("s3cret"), "{response}");
        assert!(
            response.contains("postgres://user:***@host/db"),
            "{response}"
        );

        // A second batch continues the stream: nothing of the first is indexed again.
        let more = format!("{{\"level\":30,\"time\":{now},\"msg\":\"second batch\"}}\n");
        let (status, body) = push(&http, &served, "source=edge&format=pino", &more, None).await;
        assert_eq!((status, body["lines"].as_u64()), (202, Some(1)), "{body}");
        assert!(eventually(30, || async { count("service:edge").await >= 4 }).await);
        assert_eq!(count("service:edge").await, 4);
        assert_eq!(count("\"hello from the edge\"").await, 1);

        // Another format for the same source in the same run is a conflict; a plain push of
        // another source is fine.
        let (status, _) = push(&http, &served, "source=edge&format=plain", "x\n", None).await;
        assert_eq!(status, 409);
        let (status, _) = push(&http, &served, "source=box.1", "plain words\n", None).await;
        assert_eq!(status, 202);
        assert!(eventually(30, || async { count("service:box.1").await == 1 }).await);
    });
    // After a clean stop (the data dir is still there), the index holds every pushed line once.
    let mut served = served;
    terminate(served.child.take().unwrap());
    assert_eq!(
        crate::support::loggrep_count(&served.data, "service:edge"),
        4
    );
}

/// With a token, a push needs the bearer (401 without); bodies over 1 MiB get 413; bad
/// parameters are named.
#[test]
fn ingest_needs_the_token_when_one_is_set_and_caps_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = "push-me-a-long-random-token";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let served = Served::start(&["--token-file", token_file.to_str().unwrap()]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let line = "tokenised line\n";
        let (status, body) = push(&http, &served, "source=edge", line, None).await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = push(
            &http,
            &served,
            "source=edge",
            line,
            Some("push-me-a-wrong-token"),
        )
        .await;
        assert_eq!(status, 401);
        let (status, body) = push(&http, &served, "source=edge", line, Some(token)).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["lines"], 1);

        for (query, status, says) in [
            ("format=pino", 400, "source"),
            ("source=a/b", 400, "source name"),
            ("source=edge2&format=nonsense", 400, "format"),
            ("source=edge&fromat=pino", 400, "fromat"),
        ] {
            let (got, body) = push(&http, &served, query, line, Some(token)).await;
            assert_eq!(got, status, "{query}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains(says),
                "{query}: {body}"
            );
        }

        // Only the accepted line was indexed (the refused pushes took nothing).
        let count = || async {
            let (_, v) = {
                let response = http
                    .get(served.url("/api/v1/count?q=tokenised"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.text().await.unwrap())
            };
            serde_json::from_str::<Value>(&v).unwrap()["count"]
                .as_u64()
                .unwrap()
        };
        assert!(eventually(30, || async { count().await >= 1 }).await);
        assert_eq!(count().await, 1);
    });
    // Over the cap: refused on its Content-Length (a raw request, as in the incident test).
    let mut raw = std::net::TcpStream::connect(served.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        raw,
        "POST /api/v1/ingest?source=edge HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\n\r\n",
        served.addr,
        (1 << 20) + 1
    )
    .unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    served.stop();
}

/// Many clients pushing to the same source at once: every accepted line is indexed once (the
/// batches are handed over one at a time, at growing offsets of the source's stream).
#[test]
fn concurrent_pushes_to_one_source_are_each_indexed_once() {
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..16 {
            let http = http.clone();
            let url = served.url("/api/v1/ingest?source=many&format=plain");
            tasks.push(tokio::spawn(async move {
                let body: String = (0..50)
                    .map(|i| format!("2026-11-29T10:00:00Z INFO crowdline c{client} n{i}\n"))
                    .collect();
                let response = http.post(url).body(body).send().await.unwrap();
                assert_eq!(response.status(), 202);
                let v: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
                v["lines"].as_u64().unwrap()
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += task.await.unwrap();
        }
        assert_eq!(accepted, 800);
        let count = || async {
            get_json(&http, &served, "/api/v1/count?q=crowdline")
                .await
                .1["count"]
                .as_u64()
                .unwrap()
        };
        assert!(
            eventually(30, || async { count().await >= 800 }).await,
            "{} of 800 indexed; stderr: {}",
            count().await,
            served.stderr()
        );
        assert_eq!(count().await, 800);
        let (_, one) = get_json(&http, &served, "/api/v1/count?q=c7%20n49").await;
        assert_eq!(one["count"], 1);
    });
    served.stop();
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open the WebSocket feed at `path` (with its query), with extra request headers.
async fn ws_connect(
    served: &Served,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", served.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

/// What a WebSocket feed gave next.
#[derive(Debug)]
enum WsFrame {
    Change(SseEvent),
    Ping,
}

/// The next frame of the feed, or None when it ends or the deadline passes. A change frame is
/// read into the SSE event's shape (`data` re-serialised from the frame's `data` object).
async fn ws_next(socket: &mut Ws, deadline: Instant) -> Option<WsFrame> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame.as_object().unwrap().len(), 3, "{frame}");
                assert!(frame["data"].is_object(), "{frame}");
                return Some(WsFrame::Change(SseEvent {
                    id: frame["id"].as_u64().unwrap(),
                    event: frame["event"].as_str().unwrap().to_string(),
                    data: frame["data"].to_string(),
                }));
            }
            Ok(Some(Ok(Message::Ping(_)))) => return Some(WsFrame::Ping),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

async fn ws_next_change(socket: &mut Ws, deadline: Instant) -> Option<SseEvent> {
    loop {
        match ws_next(socket, deadline).await? {
            WsFrame::Change(event) => return Some(event),
            WsFrame::Ping => {}
        }
    }
}

async fn metrics_text(http: &reqwest::Client, served: &Served) -> String {
    let response = http.get(served.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.headers()
    );
    response.text().await.unwrap()
}

/// The value of the sample line `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Every line is a `# HELP`/`# TYPE`/`# UNIT` comment, a sample (`name{label="value",…} number`)
/// or the final `# EOF`.
fn assert_exposition_format(text: &str) {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap();
            let name = words.next().unwrap_or_default();
            assert!(
                ["HELP", "TYPE", "UNIT"].contains(&kind) && is_name(name),
                "comment line: {line}"
            );
            if kind == "TYPE" {
                let t = words.next().unwrap_or_default();
                assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "value of {line}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                Some(rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"))),
            ),
            None => (series, None),
        };
        assert!(is_name(name), "name of {line}");
        if let Some(labels) = labels {
            // label="value" pairs; values here hold no quotes or commas.
            for pair in labels.split(',') {
                let (label, value) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                assert!(is_name(label), "label of {line}");
                assert!(
                    value.len() >= 2 && value.starts_with('"') && value.ends_with('"'),
                    "label value of {line}"
                );
            }
        }
    }
}

/// The WebSocket feed: a client killed mid-stream reconnects with `?last_event_id=` and gets
/// every change it missed, then the live ones — the union is the incident log, each change once;
/// a silent feed pings; `/metrics` counts the WebSocket client.
#[test]
fn ws_feed_replay_after_a_reconnect_misses_nothing() {
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let deadline = || Instant::now() + Duration::from_secs(30);
        let (mut first, response) = ws_connect(
            &served,
            "/api/v1/feed/ws",
            &[("sec-websocket-protocol", "logwarden-feed")],
        )
        .await
        .unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "logwarden-feed"
        );
        assert!(
            eventually(10, || async {
                sample(
                    &metrics_text(&http, &served).await,
                    "logwarden_feed_clients{transport=\"ws\"}",
                ) == Some(1.0)
            })
            .await,
            "the metrics do not count the WebSocket client"
        );
        // Quiet: a ping comes within the heartbeat (1 s here).
        assert!(matches!(
            ws_next(&mut first, deadline()).await,
            Some(WsFrame::Ping)
        ));
        served.inject(0..4);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(
                ws_next_change(&mut first, deadline())
                    .await
                    .expect("live changes"),
            );
        }
        drop(first);
        assert!(
            eventually(10, || async { feed_clients(&http, &served).await == 0 }).await,
            "the server keeps a WebSocket client that went away"
        );

        served.inject(4..8);
        let stored = served.wait_opened(8);
        let last_seen = seen.last().unwrap().id;
        let (mut again, _) = ws_connect(
            &served,
            &format!("/api/v1/feed/ws?last_event_id={last_seen}"),
            &[],
        )
        .await
        .unwrap();
        served.inject(8..10);
        let stored_end = *served.wait_opened(10).last().unwrap();
        assert!(stored_end > *stored.last().unwrap());
        while seen.last().unwrap().id < stored_end {
            seen.push(
                ws_next_change(&mut again, deadline())
                    .await
                    .expect("replay, then live"),
            );
        }
        assert_events_are_the_log(&seen, &served.changes_through(stored_end));
    });
    served.stop();
}

/// The WebSocket feed takes the SSE feed's filters (a bad one is a 400 before any upgrade) and,
/// with a token set, needs it: as `Authorization: Bearer` or as the subprotocol `bearer.TOKEN`.
/// A client that sends more than a small message is cut off.
#[test]
fn ws_feed_filters_and_needs_the_token() {
    use tokio_tungstenite::tungstenite::Error as WsError;
    const TOKEN: &str = "ws-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let served = Served::start(&["--token-file", token_file.to_str().unwrap()]);
    let rt = runtime();
    rt.block_on(async {
        let deadline = || Instant::now() + Duration::from_secs(30);
        let bearer = format!("Bearer {TOKEN}");
        let offered = format!("logwarden-feed, bearer.{TOKEN}");
        let status = |result: Result<_, WsError>| match result {
            Ok(_) => 101,
            Err(WsError::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("{other}"),
        };
        let path = "/api/v1/feed/ws";
        assert_eq!(status(ws_connect(&served, path, &[]).await), 401);
        let wrong = format!("logwarden-feed, bearer.{TOKEN}x");
        assert_eq!(
            status(ws_connect(&served, path, &[("sec-websocket-protocol", &wrong)]).await),
            401
        );
        // The subprotocol carries the token only on this route.
        let response = http()
            .get(served.url("/api/v1/incidents"))
            .header("sec-websocket-protocol", &offered)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            status(
                ws_connect(
                    &served,
                    "/api/v1/feed/ws?class=db-conection",
                    &[("authorization", &bearer)]
                )
                .await
            ),
            400
        );

        let (mut wanted, response) = ws_connect(
            &served,
            "/api/v1/feed/ws?class=db-connection&service=app",
            &[("authorization", &bearer)],
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 101);
        let (mut elsewhere, response) = ws_connect(
            &served,
            "/api/v1/feed/ws?class=security",
            &[("sec-websocket-protocol", &offered)],
        )
        .await
        .unwrap();
        // The token is never echoed: the feed's protocol is selected.
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "logwarden-feed"
        );

        served.inject(0..3);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(
                ws_next_change(&mut wanted, deadline())
                    .await
                    .expect("changes"),
            );
        }
        assert!(got.iter().all(|e| e.event == "opened"));
        // Each change was queued to every client at once; the filtered-out client's next frame
        // is its heartbeat, nothing before it.
        match ws_next(&mut elsewhere, deadline()).await {
            Some(WsFrame::Ping) => {}
            other => panic!("the security-only client got {other:?}"),
        }

        // A client has nothing to say but pongs and its close: a big message ends its feed.
        use futures_util::SinkExt;
        let big = tokio_tungstenite::tungstenite::Message::text("x".repeat(64 << 10));
        let _ = wanted.send(big).await;
        let until = deadline();
        while let Some(frame) = ws_next(&mut wanted, until).await {
            assert!(matches!(frame, WsFrame::Ping), "{frame:?}");
        }
        assert!(Instant::now() < until, "the feed stayed open");
    });
    served.stop();
}

/// `/metrics` after following a file of known content: that source's exact event and byte
/// counts, the rule's matches, open incidents, a request latency histogram, the heap; and every
/// line is exposition text.
#[test]
fn metrics_count_a_known_file_exactly() {
    const LINES: u64 = 37;
    const FAULTS: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known.log");
    let now = logwarden::event::Timestamp::now().as_millis();
    let mut text = String::new();
    for i in 0..LINES {
        if i % 7 == 3 {
            text.push_str(&format!(
                "{{\"level\":50,\"time\":{now},\"msg\":\"feedfault known\",\"key\":\"known{i}\"}}\n"
            ));
        } else {
            text.push_str(&format!(
                "{{\"level\":30,\"time\":{now},\"msg\":\"line {i}\"}}\n"
            ));
        }
    }
    assert_eq!(text.matches("feedfault").count() as u64, FAULTS);
    std::fs::write(&known, &text).unwrap();
    let source = format!("known:pino={}", known.display());
    let served = Served::start(&["--source", &source]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let events = "logwarden_events_total{source=\"known\"}";
        assert!(
            eventually(30, || async {
                sample(&metrics_text(&http, &served).await, events) == Some(LINES as f64)
            })
            .await,
            "{}",
            metrics_text(&http, &served).await
        );
        served.wait_opened(FAULTS as usize);
        // The incidents are open once the log holds them; the gauge follows the same batch.
        assert!(
            eventually(10, || async {
                sample(
                    &metrics_text(&http, &served).await,
                    "logwarden_incidents_open{class=\"db-connection\",severity=\"error\"}",
                ) == Some(FAULTS as f64)
            })
            .await
        );
        // Lag is measured about once a second: the file read to its end shows as 0.
        assert!(
            eventually(10, || async {
                sample(
                    &metrics_text(&http, &served).await,
                    "logwarden_source_lag_bytes{source=\"known\"}",
                ) == Some(0.0)
            })
            .await
        );
        let _ = get_json(&http, &served, "/api/v1/health").await;
        let text = metrics_text(&http, &served).await;
        assert_exposition_format(&text);
        assert_eq!(sample(&text, events), Some(LINES as f64), "{text}");
        assert_eq!(
            sample(&text, "logwarden_read_bytes_total{source=\"known\"}"),
            Some(text_len(&known) as f64)
        );
        assert_eq!(
            sample(
                &text,
                "logwarden_rule_matches_total{rule=\"test-feed-fault\"}"
            ),
            Some(FAULTS as f64),
            "{text}"
        );
        assert!(
            sample(&text, "logwarden_index_commit_duration_seconds_count").unwrap() >= 1.0,
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with(
                "logwarden_http_request_duration_seconds_count{route=\"/api/v1/health\"}"
            )),
            "{text}"
        );
        // The binary runs on jemalloc, whose figures are the process's: what it holds (an index
        // writer and the engine, well over a MiB) within what the allocator keeps resident.
        let allocated = sample(&text, "logwarden_heap_allocated_bytes").expect("heap series");
        let resident = sample(&text, "logwarden_heap_resident_bytes").expect("heap series");
        assert!(allocated > f64::from(1u32 << 20), "{text}");
        assert!(resident >= allocated, "{text}");
    });
    served.stop();
}

fn text_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// `/api/v1/health` is ready (200) while the index can be written, not ready (503, with the
/// reason) while it cannot, and ready again once it can.
#[test]
fn health_is_not_ready_while_the_index_is_not_writable() {
    let served = Served::start(&[]);
    let rt = runtime();
    let http = http();
    let index = served.data.join("index");
    let away = served.data.join("index.away");
    rt.block_on(async {
        // Ready once the index exists and the lag was measured (at most a second apart).
        assert!(
            eventually(30, || async {
                let (status, body) = get_json(&http, &served, "/api/v1/health").await;
                status == 200 && body["lag_bytes"]["app"] == 0
            })
            .await,
            "{:?}",
            get_json(&http, &served, "/api/v1/health").await
        );
        let (_, ready) = get_json(&http, &served, "/api/v1/health").await;
        assert_eq!(ready["ready"], true, "{ready}");
        assert_eq!(ready["status"], "ok");
        assert_eq!(ready["reasons"], serde_json::json!([]));
        assert_eq!(ready["lag_bytes"]["app"], 0, "{ready}");

        // Nothing is written to the log meanwhile, so the pipeline does not commit.
        std::fs::rename(&index, &away).unwrap();
        std::fs::write(&index, "not a folder").unwrap();
        let (status, unready) = get_json(&http, &served, "/api/v1/health").await;
        std::fs::remove_file(&index).unwrap();
        std::fs::rename(&away, &index).unwrap();
        assert_eq!(status, 503, "{unready}");
        assert_eq!(unready["ready"], false);
        assert_eq!(unready["status"], "ok", "alive, not ready");
        let reasons = unready["reasons"].as_array().unwrap();
        assert!(
            reasons.len() == 1 && reasons[0].as_str().unwrap().contains("is not writable"),
            "{unready}"
        );

        let (status, again) = get_json(&http, &served, "/api/v1/health").await;
        assert_eq!(status, 200, "{again}");
    });
    served.stop();
}

/// A WebSocket client that never reads is dropped as an SSE one is (the same queue, the same
/// logged reason, naming the transport), while a WebSocket client that reads gets every change.
#[test]
fn a_ws_feed_client_that_never_reads_is_dropped() {
    let served = Served::start(&["--feed-buffer", "16"]);
    let rt = runtime();
    let http = http();

    let sleeper = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sleeper.set_recv_buffer_size(4096).unwrap();
    sleeper.connect(&served.addr.into()).unwrap();
    let mut sleeper = std::net::TcpStream::from(sleeper);
    let sleeper_port = sleeper.local_addr().unwrap().port();
    write!(
        sleeper,
        "GET /api/v1/feed/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        served.addr
    )
    .unwrap();

    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (mut reader, _) = rt
        .block_on(ws_connect(&served, "/api/v1/feed/ws", &[]))
        .unwrap();
    let sink = Arc::clone(&got);
    rt.spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Some(e) = ws_next_change(&mut reader, deadline).await {
            sink.lock().unwrap().push(e.id);
        }
    });
    assert!(rt.block_on(eventually(10, || async {
        feed_clients(&http, &served).await == 2
    })));

    let dropped = |s: &Served| s.stderr().contains("feed client dropped");
    let mut next = 0;
    while !dropped(&served) {
        assert!(next < 1000, "never dropped: {}", served.stderr());
        served.inject(next..next + 10);
        next += 10;
        let stored = served.wait_opened(next as usize);
        assert!(
            wait_until(10, || got.lock().unwrap().starts_with(&stored)),
            "the reading client fell behind at {next} incidents"
        );
    }
    let said = served.stderr();
    let line = said
        .lines()
        .find(|l| l.contains("feed client dropped"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!(":{sleeper_port}")), "{line}");
    assert!(line.contains("transport") && line.contains("ws"), "{line}");
    assert!(rt.block_on(eventually(10, || async {
        feed_clients(&http, &served).await == 1
    })));
    served.inject(next..next + 3);
    let stored = served.wait_opened(next as usize + 3);
    assert!(wait_until(10, || got.lock().unwrap().starts_with(&stored)));
    served.stop();
}

/// `/api/v1/health` is not ready (503, naming the source) while a source is more than
/// `--ready-max-lag` bytes behind the end of its file, and ready once it has caught up. The file
/// (~16 MB) is measured as soon as it is opened, all of it unread, and not again for a second:
/// for at least that second, and as long as reading it takes, health says so.
#[test]
fn health_is_not_ready_while_a_source_lags() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.log");
    let now = logwarden::event::Timestamp::now().as_millis();
    let mut text = String::with_capacity(17 << 20);
    let mut i = 0u64;
    while text.len() < 16 << 20 {
        text.push_str(&format!(
            "{{\"level\":30,\"time\":{now},\"msg\":\"bulk line {i} of the lagging source\"}}\n"
        ));
        i += 1;
    }
    std::fs::write(&big, &text).unwrap();
    let source = format!("big:pino={}", big.display());
    let served = Served::start(&["--ready-max-lag", "4096", "--source", &source]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (status, body) = loop {
            let (status, body) = get_json(&http, &served, "/api/v1/health").await;
            if status == 503 && body["lag_bytes"]["big"].as_u64().unwrap_or(0) > 4096 {
                break (status, body);
            }
            assert!(
                body["lag_bytes"]["big"] != 0 || status != 200,
                "ready before the lag was seen: {body}"
            );
            assert!(Instant::now() < deadline, "never lagging: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status, 503);
        assert_eq!(body["ready"], false);
        let reasons = body["reasons"].as_array().unwrap();
        assert!(
            reasons
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("source big is ")),
            "{body}"
        );
        // Caught up: ready, and (measured again about a second later) nothing behind.
        assert!(
            eventually(120, || async {
                let (status, body) = get_json(&http, &served, "/api/v1/health").await;
                status == 200 && body["lag_bytes"]["big"] == 0
            })
            .await,
            "{:?}",
            get_json(&http, &served, "/api/v1/health").await
        );
    });
    served.stop();
}
