//! Issue 9: the secrets the newsletter stack really has (Resend and OpenAI keys, R2/AWS access
//! key ids and secret keys, bearer and basic credentials, passwords in `postgres://` and
//! `redis://` URLs, JWTs, `password` in JSON fields, query strings and logfmt) go in by every way
//! logwarden reads (a tailed file, the push API, standard input) and come out of none of the
//! places events go: the index (search terms, `loggrep --json`, the search API), the feed,
//! webhooks, the incidents' evidence (API and CLI), and logwarden's own logs at debug level.
//! ClickHouse rows are checked in clickhouse_sink.rs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use logwarden::incident::ChangeKind;
use logwarden::store::incidents::IncidentLog;
use serde_json::Value;

use crate::support::secrets::{Secret, assert_no_secret, catalogue, leak_rules, lines};
use crate::support::{loggrep, logwarden, run, stderr, stdout, terminate, wait_until};

/// What the webhook receiver got: every body, as text.
#[derive(Clone, Default)]
struct Bodies(Arc<Mutex<Vec<String>>>);

fn receive(runtime: &tokio::runtime::Runtime, bodies: Bodies) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let record = |State(b): State<Bodies>, body: String| async move {
        b.0.lock().unwrap().push(body);
    };
    let app = Router::new()
        .route("/json", post(record))
        .route("/alertmanager", post(record))
        .with_state(bodies);
    runtime.spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `logwarden run` over `app.log` with the test rule, serving on an ephemeral port, sending
/// webhooks to `receiver`, logging at debug level.
fn start_run(dir: &Path, receiver: SocketAddr) -> (Child, Arc<Mutex<String>>, SocketAddr) {
    let rules = leak_rules(dir);
    std::fs::write(dir.join("app.log"), "").unwrap();
    let profile = dir.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            r#"[[source]]
service = "app"
format = "pino"
path = "app.log"

[[webhook]]
name = "bot"
url = "http://{receiver}/json"
kind = "json"

[[webhook]]
name = "pager"
url = "http://{receiver}/alertmanager"
kind = "alertmanager"

# A receiver that is down, whose URL carries its secret (as chat webhooks do): retried, and
# logged, without the path.
[[webhook]]
name = "chat"
url = "http://127.0.0.1:1/services/T0/B0/whsecDown9Path"
kind = "json"

# The team's own token format, not in the built-in catalogue.
[[redact]]
name = "newsletter-internal"
pattern = 'nlint_[0-9a-f]{{16}}'
literals = ["nlint_"]
"#
        ),
    )
    .unwrap();
    let mut child = logwarden()
        .arg("run")
        .arg("--profile")
        .arg(&profile)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--patterns")
        .arg(&rules)
        .args(["--listen", "127.0.0.1:0", "--lateness", "1s"])
        .env("RUST_LOG", "logwarden=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = crate::support::collect(child.stderr.take().unwrap());
    let text = || said.lock().unwrap().clone();
    assert!(
        wait_until(30, || text().contains("serving http://")),
        "no `serving` line: {}",
        text()
    );
    let addr = text()
        .split("serving http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {}", text()));
    (child, said, addr)
}

fn opened(data: &Path) -> Vec<String> {
    IncidentLog::read_after(&data.join("incidents.jsonl"), 0)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Opened)
        .map(|c| c.incident.id.to_string())
        .collect()
}

/// `loggrep --json` of every test line in `data`: it must find `n` events, each redacted.
fn assert_index_is_clean(secrets: &[Secret], data: &Path, n: usize) {
    let out = run(loggrep().arg("--data-dir").arg(data).args([
        "--json",
        "--limit",
        "1000",
        "tag:leakcheck",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), n, "{text}");
    assert_no_secret(secrets, "loggrep --json", &text);
    for line in text.lines() {
        assert!(line.contains("***"), "a line not redacted: {line}");
    }
    for s in secrets {
        let out = run(loggrep().arg("--data-dir").arg(data).args([
            "--count",
            "--",
            &format!("\"{}\"", s.secret),
        ]));
        assert_eq!(
            stdout(&out).trim(),
            "0",
            "the {} secret is a term of the index: {}",
            s.kind,
            stderr(&out)
        );
    }
    // The incidents' evidence, as the CLI shows it.
    for id in opened(data) {
        let out = run(logwarden()
            .args(["incident", &id, "--json", "--data-dir"])
            .arg(data));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_no_secret(secrets, &format!("incident {id} (CLI)"), &stdout(&out));
    }
}

#[test]
fn no_secret_of_the_catalogue_comes_out_of_any_face_by_any_way_in() {
    let mut secrets = catalogue();
    // A pattern of the profile's own `[[redact]]` (the stdin run has no profile: left out there).
    secrets.push(Secret {
        kind: "profile-pattern",
        secret: "nlint_5e1f0c3a9b7d2468".into(),
        msg: "internal API refused nlint_5e1f0c3a9b7d2468".into(),
        fields: String::new(),
    });
    let kinds = secrets.len();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bodies = Bodies::default();
    let receiver = receive(&runtime, bodies.clone());
    let (child, said, addr) = start_run(dir.path(), receiver);
    let data = dir.path().join("data");
    let http = crate::support::http_client();
    let url = |path: &str| format!("http://{addr}{path}");

    // A feed client from the start, keeping every byte it is sent.
    let feed = Arc::new(Mutex::new(String::new()));
    let response = runtime
        .block_on(http.get(url("/api/v1/feed")).send())
        .unwrap();
    assert_eq!(response.status(), 200);
    {
        let feed = Arc::clone(&feed);
        let mut response = response;
        runtime.spawn(async move {
            while let Ok(Some(chunk)) = response.chunk().await {
                feed.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        });
    }

    // In by a tailed file and by the push API.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("app.log"))
        .unwrap()
        .write_all(lines(&secrets, "").as_bytes())
        .unwrap();
    // 503 while the pipeline is starting (nothing taken: resend, as the API says).
    let body = lines(&secrets, "-pushed");
    let push = || {
        runtime
            .block_on(
                http.post(url("/api/v1/ingest?source=edge&format=pino"))
                    .body(body.clone())
                    .send(),
            )
            .unwrap()
            .status()
    };
    let mut status = push();
    assert!(
        wait_until(30, || {
            if status == 503 {
                status = push();
            }
            status != 503
        }),
        "the push API never took the batch"
    );
    assert_eq!(status, 202);

    let stderr_text = || said.lock().unwrap().clone();
    assert!(
        wait_until(60, || opened(&data).len() >= 2 * kinds),
        "{} of {} incidents opened; stderr: {}",
        opened(&data).len(),
        2 * kinds,
        stderr_text()
    );
    // Every opening reached the feed and both webhooks.
    assert!(
        wait_until(60, || feed.lock().unwrap().matches("event: opened").count()
            >= 2 * kinds),
        "the feed got {}",
        feed.lock().unwrap()
    );
    assert!(
        wait_until(60, || bodies.0.lock().unwrap().len() >= 4 * kinds),
        "the webhooks got {} bodies",
        bodies.0.lock().unwrap().len()
    );

    assert_no_secret(&secrets, "the feed", &feed.lock().unwrap());
    assert_no_secret(&secrets, "webhooks", &bodies.0.lock().unwrap().join("\n"));
    let get = |path: &str| {
        runtime
            .block_on(async { http.get(url(path)).send().await?.text().await })
            .unwrap()
    };
    // The incidents can be out before the commit that makes their lines searchable.
    assert!(
        wait_until(30, || {
            serde_json::from_str::<Value>(&get("/api/v1/count?q=tag%3Aleakcheck"))
                .ok()
                .and_then(|v| v["count"].as_u64())
                == Some(2 * kinds as u64)
        }),
        "the lines never all searchable: {}",
        get("/api/v1/count?q=tag%3Aleakcheck")
    );
    let search = get("/api/v1/search?q=tag%3Aleakcheck&limit=1000");
    let found: Value = serde_json::from_str(&search).unwrap();
    assert_eq!(
        found["hits"].as_array().map(Vec::len),
        Some(2 * kinds),
        "{search}"
    );
    assert_no_secret(&secrets, "the search API", &search);
    let list = get("/api/v1/incidents");
    assert_no_secret(&secrets, "the incident list", &list);
    for id in opened(&data) {
        let one = get(&format!("/api/v1/incidents/{id}"));
        assert!(one.contains("***"), "{one}");
        assert_no_secret(&secrets, &format!("incident {id} (API)"), &one);
    }
    assert!(
        wait_until(30, || stderr_text().contains("webhook delivery failed")),
        "the chat webhook's failures are not logged: {}",
        stderr_text()
    );
    terminate(child);
    assert_no_secret(&secrets, "logwarden's own log", &stderr_text());
    assert!(
        !stderr_text().contains("whsecDown9Path"),
        "a webhook URL's path reached the log: {}",
        stderr_text()
    );
    assert_index_is_clean(&secrets, &data, 2 * kinds);

    // In by standard input.
    secrets.pop();
    let kinds = secrets.len();
    let piped = dir.path().join("piped");
    let mut child = logwarden()
        .args(["run", "--stdin", "--source", "app:pino", "--patterns"])
        .arg(dir.path().join("rules"))
        .arg("--data-dir")
        .arg(&piped)
        .env("RUST_LOG", "logwarden=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = crate::support::collect(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(lines(&secrets, "-stdin").as_bytes())
        .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let text = said.lock().unwrap().clone();
    assert!(status.success(), "{text}");
    assert_no_secret(&secrets, "logwarden's own log (stdin)", &text);
    assert_eq!(opened(&piped).len(), kinds, "{text}");
    assert_index_is_clean(&secrets, &piped, kinds);
}
