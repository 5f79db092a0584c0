//! Issue 7, webhooks: a profile's `[[webhook]]` tables against a real receiver (axum in this
//! process, recording every body) and the real `logwarden run` process. The receiver is down for a
//! minute while incidents open and resolve, comes back on the same port, and then receives every
//! change its filters admit, once each, in log order; a restart of logwarden sends nothing twice;
//! a webhook whose receiver never answers delays none of the others; the Alertmanager payload has
//! Alertmanager's fields; a wrong table is an error naming its line. An https receiver (rustls in
//! this process, its certificate from a test CA) gets the changes when the webhook's `ca_file` is
//! that CA, and nothing, with a logged reason and retries, when its certificate is not trusted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use logwarden::incident::{Change, ChangeKind};
use logwarden::store::incidents::IncidentLog;
use serde_json::Value;

use crate::support::{logwarden, run, stderr, wait_until};

/// Every `hookfault` line opens an incident of its own `key`, resolved after 2 s of quiet.
const RULE: &str = r#"
[[rule]]
id = "test-hook-fault"
class = "db-connection"
severity = "critical"
title = "A fault for the webhooks"
literals = ["hookfault"]
group_by = ["key"]
resolve_after = "2s"
runbook = ["database-connection-issues"]
examples = ['{"level":50,"time":1796220000000,"msg":"hookfault","key":"k1"}']
"#;

/// One request the receiver got.
struct Delivery {
    path: String,
    /// The Authorization header.
    auth: Option<String>,
    body: Value,
}

/// What the receiver got, in the order it came.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Delivery>>>);

impl Received {
    fn on(&self, path: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.path == path)
            .map(|d| d.body.clone())
            .collect()
    }

    fn auth(&self, path: &str) -> Vec<Option<String>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.path == path)
            .map(|d| d.auth.clone())
            .collect()
    }
}

async fn record(path: &'static str, received: Received, headers: HeaderMap, body: String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    received.0.lock().unwrap().push(Delivery {
        path: path.to_string(),
        auth,
        body: value,
    });
}

/// The receiver's routes: `/alertmanager` and `/json` record, `/stuck` never answers.
fn app(received: Received) -> Router {
    Router::new()
        .route(
            "/alertmanager",
            post(
                |State(r): State<Received>, h: HeaderMap, body: String| async move {
                    record("/alertmanager", r, h, body).await
                },
            ),
        )
        .route(
            "/json",
            post(
                |State(r): State<Received>, h: HeaderMap, body: String| async move {
                    record("/json", r, h, body).await
                },
            ),
        )
        .route("/stuck", post(std::future::pending::<()>))
        .with_state(received)
}

/// Start the receiver on `addr` (the port it had before it went down).
fn receive(runtime: &tokio::runtime::Runtime, addr: SocketAddr, received: Received) {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .unwrap_or_else(|e| panic!("the receiver cannot have its port {addr} back: {e}"));
    runtime.spawn(async move { axum::serve(listener, app(received)).await });
}

/// A receiver on a free loopback port: its address and what it gets.
fn receiver(runtime: &tokio::runtime::Runtime) -> (SocketAddr, Received) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let received = Received::default();
    receive(runtime, addr, received.clone());
    (addr, received)
}

/// A TCP listener whose connections are TLS, for axum; counts the handshakes that failed.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            match tokio::time::timeout(Duration::from_secs(5), handshake).await {
                Ok(Ok(tls)) => return (tls, addr),
                _ => {
                    self.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A certificate for 127.0.0.1 and localhost: signed by a new test CA (whose PEM comes back
/// too), or self-signed.
struct ServerCert {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    ca_pem: Option<String>,
}

impl ServerCert {
    fn new(with_ca: bool) -> ServerCert {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "logwarden test receiver");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (cert, ca_pem) = if with_ca {
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca_params
                .distinguished_name
                .push(DnType::CommonName, "logwarden test CA");
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = Issuer::new(ca_params, ca_key);
            (params.signed_by(&key, &issuer).unwrap(), Some(ca.pem()))
        } else {
            (params.self_signed(&key).unwrap(), None)
        };
        ServerCert {
            chain: vec![cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            ca_pem,
        }
    }
}

/// Start an https receiver on a free port of 127.0.0.1 with `cert`: its address and the number
/// of handshakes that failed.
fn receive_tls(
    runtime: &tokio::runtime::Runtime,
    cert: &ServerCert,
    received: Received,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .unwrap();
    let tcp = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = tcp.local_addr().unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        failed: Arc::clone(&failed),
    };
    runtime.spawn(async move { axum::serve(listener, app(received)).await });
    (addr, failed)
}

struct Setup {
    _dir: tempfile::TempDir,
    profile: PathBuf,
    log: PathBuf,
    data: PathBuf,
    rules: PathBuf,
}

impl Setup {
    fn new(receiver: SocketAddr) -> Setup {
        Setup::with_webhooks(&format!(
            r#"[[webhook]]
name = "pager"
url = "http://{receiver}/alertmanager"
kind = "alertmanager"
changes = ["opened", "resolved"]
token_file = "pager.token"
timeout = "5s"

[[webhook]]
name = "bot"
url = "http://{receiver}/json"
kind = "json"

# Never answered: its attempts time out, and the others do not wait for it.
[[webhook]]
name = "stuck"
url = "http://{receiver}/stuck"
kind = "json"
timeout = "1s"
"#
        ))
    }

    /// A profile reading `app.log`, with these `[[webhook]]` tables.
    fn with_webhooks(webhooks: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("hook.toml"), RULE).unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "").unwrap();
        std::fs::write(dir.path().join("pager.token"), "pager-s3cret\n").unwrap();
        let profile = dir.path().join("profile.toml");
        std::fs::write(
            &profile,
            format!(
                r#"[[source]]
service = "app"
format = "pino"
path = "app.log"

{webhooks}"#
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        Setup {
            _dir: dir,
            profile,
            log,
            data,
            rules,
        }
    }

    fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    fn start(&self) -> (Child, Arc<Mutex<String>>) {
        self.start_with(&["pager", "bot", "stuck"])
    }

    /// Start `run`; returns once the webhooks `names` have their cursors.
    fn start_with(&self, names: &[&str]) -> (Child, Arc<Mutex<String>>) {
        let mut child = logwarden()
            .arg("run")
            .arg("--profile")
            .arg(&self.profile)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--patterns")
            .arg(&self.rules)
            .args(["--listen", "127.0.0.1:0", "--lateness", "1s"])
            .env("RUST_LOG", "logwarden=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = crate::support::collect(child.stderr.take().unwrap());
        // The webhooks have their cursors (at the log's end) before anything is injected.
        let cursors = self.data.join("webhooks");
        assert!(
            wait_until(30, || names.iter().all(|n| {
                std::fs::metadata(cursors.join(format!("{n}.cursor"))).is_ok()
            })),
            "no webhook cursors; stderr: {}",
            said.lock().unwrap()
        );
        (child, said)
    }

    fn inject(&self, keys: std::ops::Range<u32>) {
        let now = logwarden::event::Timestamp::now().as_millis();
        let mut text = String::new();
        for k in keys {
            text.push_str(&format!(
                "{{\"level\":50,\"time\":{now},\"msg\":\"hookfault in the test\",\"key\":\"k{k}\"}}\n"
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn changes(&self) -> Vec<Change> {
        IncidentLog::read_after(&self.data.join("incidents.jsonl"), 0).unwrap()
    }

    fn count(&self, kind: ChangeKind) -> usize {
        self.changes().iter().filter(|c| c.kind == kind).count()
    }
}

/// The pager's view of a change: (incident, change kind), as the Alertmanager payload says them.
fn pager_key(body: &Value) -> (String, String) {
    let alert = &body["alerts"][0];
    (
        alert["labels"]["incident"].as_str().unwrap().to_string(),
        alert["annotations"]["change"].as_str().unwrap().to_string(),
    )
}

/// The bot got exactly the log's changes, in order, once each; the pager exactly the opened and
/// resolved ones.
fn assert_received_the_log(received: &Received, log: &[Change]) {
    let bot: Vec<u64> = received
        .on("/json")
        .iter()
        .map(|b| b["seq"].as_u64().unwrap())
        .collect();
    let all: Vec<u64> = log.iter().map(|c| c.seq).collect();
    assert_eq!(bot, all, "the json webhook: every change once, in order");
    let bodies: Vec<Value> = received.on("/json");
    for (body, change) in bodies.iter().zip(log) {
        assert_eq!(*body, serde_json::to_value(change).unwrap());
    }
    let pager: Vec<(String, String)> = received.on("/alertmanager").iter().map(pager_key).collect();
    let wanted: Vec<(String, String)> = log
        .iter()
        .filter(|c| matches!(c.kind, ChangeKind::Opened | ChangeKind::Resolved))
        .map(|c| (c.incident.id.0.clone(), c.kind.as_str().to_string()))
        .collect();
    assert_eq!(
        pager, wanted,
        "the alertmanager webhook: its filter, once each, in order"
    );
}

/// SIGTERM `child`, which must exit 0 (its stderr in the message when not).
fn stop(child: Child, said: &Mutex<String>) {
    crate::support::terminate_explained(child, || format!("stderr: {}", said.lock().unwrap()));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The issue's acceptance: a receiver down for a minute, then back, gets every notification once;
/// then logwarden restarts between deliveries and sends none of them again.
#[test]
fn a_receiver_down_for_a_minute_gets_every_change_once_in_order_and_a_restart_resends_nothing() {
    // The receiver's port, taken and given back: connections to it are refused while it is down.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down_since = Instant::now();
    let setup = Setup::new(addr);
    let (child, said) = setup.start();
    let stderr_now = || said.lock().unwrap().clone();

    // While it is down: incidents open and resolve (2 s of quiet, 1 s of lateness).
    setup.inject(0..3);
    assert!(
        wait_until(40, || setup.count(ChangeKind::Resolved) >= 3),
        "3 incidents opened and resolved: {:?}; stderr: {}",
        setup.changes().iter().map(|c| c.kind).collect::<Vec<_>>(),
        stderr_now()
    );
    setup.inject(3..5);
    assert!(wait_until(30, || setup.count(ChangeKind::Opened) >= 5));
    // The failures are logged with their reason.
    assert!(
        wait_until(30, || stderr_now().contains("webhook delivery failed")),
        "{}",
        stderr_now()
    );
    let text = stderr_now();
    assert!(
        text.to_lowercase().contains("refused"),
        "the reason is said: {text}"
    );

    // A minute after it went down, the receiver comes back on the same port.
    let back_at = down_since + Duration::from_secs(60);
    assert!(wait_until(90, || Instant::now() >= back_at));
    let runtime = runtime();
    let received = Received::default();
    receive(&runtime, addr, received.clone());
    // The two incidents opened last resolve meanwhile; then everything stored is delivered (the
    // backoff is at most 30 s).
    assert!(wait_until(40, || setup.count(ChangeKind::Resolved) >= 5));
    let delivered = |n: usize| received.on("/json").len() >= n;
    let stored = setup.changes().len();
    assert!(
        wait_until(60, || delivered(stored)),
        "{} of {stored} changes delivered; stderr: {}",
        received.on("/json").len(),
        stderr_now()
    );
    assert!(wait_until(10, || received.on("/alertmanager").len() >= 10));
    assert_received_the_log(&received, &setup.changes());
    assert!(
        received
            .auth("/alertmanager")
            .iter()
            .all(|a| a.as_deref() == Some("Bearer pager-s3cret")),
        "the pager's token: {:?}",
        received.auth("/alertmanager")
    );
    assert!(received.auth("/json").iter().all(Option::is_none));
    // The stuck webhook is still on its first change, and says why.
    assert!(
        wait_until(30, || stderr_now().contains("timed out")),
        "{}",
        stderr_now()
    );
    assert!(
        std::fs::read_to_string(setup.data.join("webhooks/stuck.cursor"))
            .unwrap()
            .contains("\"seq\":0")
    );

    // The Alertmanager payload.
    let bodies = received.on("/alertmanager");
    let opened = &bodies[0];
    assert_eq!(opened["version"], "4");
    assert_eq!(opened["status"], "firing");
    assert_eq!(opened["receiver"], "pager");
    assert!(opened["groupKey"].as_str().unwrap().contains("inc-"));
    assert!(
        opened["externalURL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    for field in ["groupLabels", "commonLabels", "commonAnnotations"] {
        assert!(opened[field].is_object(), "{field}: {opened}");
    }
    let alert = &opened["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "test-hook-fault");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["class"], "db-connection");
    assert_eq!(alert["labels"]["service"], "app");
    assert!(
        alert["labels"]["incident"]
            .as_str()
            .unwrap()
            .starts_with("inc-")
    );
    assert!(!alert["annotations"]["summary"].as_str().unwrap().is_empty());
    assert!(
        !alert["annotations"]["procedure"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
    assert!(alert["startsAt"].as_str().unwrap().ends_with('Z'));
    let resolved = bodies
        .iter()
        .find(|b| b["status"] == "resolved")
        .expect("a resolved notification");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // Stopped between deliveries: faults written while it is stopped are sent after the restart,
    // and nothing delivered before is sent again.
    stop(child, &said);
    setup.inject(5..7);
    let (child, said) = setup.start();
    assert!(wait_until(30, || setup.count(ChangeKind::Opened) >= 7));
    assert!(wait_until(40, || setup.count(ChangeKind::Resolved) >= 7));
    let stored = setup.changes().len();
    assert!(
        wait_until(30, || delivered(stored)),
        "{} of {stored} changes delivered after the restart; stderr: {}",
        received.on("/json").len(),
        said.lock().unwrap()
    );
    assert!(wait_until(10, || received.on("/alertmanager").len() >= 14));
    stop(child, &said);
    assert_received_the_log(&received, &setup.changes());
}

/// A wrong `[[webhook]]` stops `run` before it starts, naming the file, the line and the field.
#[test]
fn a_wrong_webhook_table_is_an_error_naming_file_line_and_field() {
    let setup = Setup::new("127.0.0.1:9".parse().unwrap());
    let text = std::fs::read_to_string(&setup.profile).unwrap();
    std::fs::write(
        &setup.profile,
        text.replace("kind = \"json\"", "kind = \"jsn\""),
    )
    .unwrap();
    let out = run(logwarden()
        .arg("run")
        .arg("--profile")
        .arg(&setup.profile)
        .arg("--data-dir")
        .arg(&setup.data)
        .args(["--listen", "off"]));
    assert_eq!(out.status.code(), Some(2));
    let msg = stderr(&out);
    let at = format!("{}:17: field `kind`", setup.profile.display());
    assert!(msg.contains(&at), "{at} in: {msg}");
    assert!(msg.contains("did you mean `json`"), "{msg}");
    assert!(std::fs::metadata(setup.data.join("webhooks")).is_err());
}

/// The demo deletes its incident log and writes it anew: its webhooks' cursors go with it, so a
/// second demo sends its whole new log again, once each, in order.
#[test]
fn each_demo_sends_its_own_log_once() {
    let runtime = runtime();
    let (addr, received) = receiver(&runtime);
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks.toml");
    std::fs::write(
        &hooks,
        format!("[[webhook]]\nname = \"bot\"\nurl = \"http://{addr}/json\"\nkind = \"json\"\n"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut sent = 0;
    for round in 0..2 {
        let out = run(logwarden()
            .arg("demo")
            .arg("--data-dir")
            .arg(&data)
            .arg("--webhooks")
            .arg(&hooks)
            .args(["--speed", "4000", "--listen", "off"]));
        assert!(out.status.success(), "demo {round}: {}", stderr(&out));
        let log: Vec<Value> = IncidentLog::read_all(&data.join("incidents.jsonl"))
            .unwrap()
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        assert!(!log.is_empty());
        // The demo waits for its webhooks before it exits.
        let got = received.on("/json");
        assert_eq!(got.len(), sent + log.len(), "demo {round}");
        assert_eq!(
            got[sent..],
            log[..],
            "demo {round}: its log, once each, in order"
        );
        sent = got.len();
    }
}

/// An https receiver whose certificate chains to the webhooks' `ca_file` (by IP address and by
/// name) gets every change, as the plain http one does.
#[test]
fn an_https_receiver_trusted_through_ca_file_gets_every_change() {
    let runtime = runtime();
    let cert = ServerCert::new(true);
    let received = Received::default();
    let (addr, failed) = receive_tls(&runtime, &cert, received.clone());
    let port = addr.port();
    let setup = Setup::with_webhooks(&format!(
        r#"[[webhook]]
name = "pager"
url = "https://localhost:{port}/alertmanager"
kind = "alertmanager"
changes = ["opened", "resolved"]
ca_file = "ca.pem"

[[webhook]]
name = "bot"
url = "https://127.0.0.1:{port}/json"
kind = "json"
ca_file = "ca.pem"
"#
    ));
    std::fs::write(setup.dir().join("ca.pem"), cert.ca_pem.as_deref().unwrap()).unwrap();
    let (child, said) = setup.start_with(&["pager", "bot"]);
    let stderr_now = || said.lock().unwrap().clone();
    setup.inject(0..2);
    assert!(
        wait_until(40, || setup.count(ChangeKind::Resolved) >= 2),
        "2 incidents opened and resolved; stderr: {}",
        stderr_now()
    );
    let stored = setup.changes().len();
    assert!(
        wait_until(30, || received.on("/json").len() >= stored
            && received.on("/alertmanager").len() >= 4),
        "{} of {stored} changes delivered over https; stderr: {}",
        received.on("/json").len(),
        stderr_now()
    );
    stop(child, &said);
    assert_received_the_log(&received, &setup.changes());
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no failed handshake");
    assert!(
        !stderr_now().contains("webhook delivery failed"),
        "{}",
        stderr_now()
    );
}

/// Without a `ca_file`, a receiver's self-signed certificate is not trusted: nothing is sent, each
/// attempt fails with a logged certificate reason and is retried, and `run` keeps running.
#[test]
fn an_https_receiver_with_an_untrusted_certificate_gets_nothing_and_is_retried() {
    let runtime = runtime();
    let cert = ServerCert::new(false);
    let received = Received::default();
    let (addr, failed) = receive_tls(&runtime, &cert, received.clone());
    let setup = Setup::with_webhooks(&format!(
        "[[webhook]]\nname = \"bot\"\nurl = \"https://{addr}/json\"\nkind = \"json\"\n"
    ));
    let (mut child, said) = setup.start_with(&["bot"]);
    let stderr_now = || said.lock().unwrap().clone();
    setup.inject(0..1);
    assert!(
        wait_until(30, || setup.count(ChangeKind::Opened) >= 1),
        "stderr: {}",
        stderr_now()
    );
    // Tried again after 1 s, then 2 s: three failed attempts, each refused by the handshake.
    let failures = || stderr_now().matches("webhook delivery failed").count();
    assert!(
        wait_until(30, || failures() >= 3 && failed.load(Ordering::SeqCst) >= 3),
        "{} failures logged, {} failed handshakes; stderr: {}",
        failures(),
        failed.load(Ordering::SeqCst),
        stderr_now()
    );
    let text = stderr_now();
    assert!(
        text.to_lowercase().contains("certificate"),
        "the reason is said: {text}"
    );
    assert!(received.on("/json").is_empty());
    assert!(child.try_wait().unwrap().is_none(), "run keeps running");
    assert!(
        std::fs::read_to_string(setup.data.join("webhooks/bot.cursor"))
            .unwrap()
            .contains("\"seq\":0")
    );
    stop(child, &said);
}

/// Issue 10: nothing of an incident under a silence reaches a webhook, whatever its filters; the
/// end of the silence (`unsilenced`) and an acknowledgement do, and what opens after it pages.
#[test]
fn a_silenced_incident_sends_no_webhook_until_its_silence_is_expired() {
    let runtime = runtime();
    let (addr, received) = receiver(&runtime);
    let setup = Setup::with_webhooks(&format!(
        "[[webhook]]\nname = \"bot\"\nurl = \"http://{addr}/json\"\nkind = \"json\"\n"
    ));
    let silence = |args: &[&str]| {
        let out = run(logwarden()
            .arg("silence")
            .args(args)
            .arg("--data-dir")
            .arg(&setup.data));
        assert!(out.status.success(), "{}", stderr(&out));
        crate::support::stdout(&out)
    };
    let id = silence(&[
        "add",
        "--match",
        "class=db-connection",
        "--for",
        "1h",
        "--reason",
        "restarting postgres",
    ]);
    let id = id.split_whitespace().next().unwrap().to_string();
    let (child, said) = setup.start_with(&["bot"]);
    // Two incidents open under the silence, and one resolves under it (2 s of quiet).
    setup.inject(0..2);
    assert!(
        wait_until(30, || setup.count(ChangeKind::Silenced) >= 2),
        "{:?}",
        setup.changes()
    );
    assert!(
        wait_until(30, || setup.count(ChangeKind::Resolved) >= 2),
        "{:?}",
        setup.changes()
    );
    // Open again (reopened within the flap window: still silenced), then the silence ends.
    setup.inject(0..1);
    assert!(
        wait_until(30, || setup.count(ChangeKind::Silenced) >= 3),
        "{:?}",
        setup.changes()
    );
    silence(&["expire", &id]);
    assert!(
        wait_until(30, || setup.count(ChangeKind::Unsilenced) == 1),
        "{:?}; stderr: {}",
        setup.changes(),
        said.lock().unwrap()
    );
    setup.inject(5..6);
    assert!(
        wait_until(30, || setup.count(ChangeKind::Opened) == 1),
        "{:?}",
        setup.changes()
    );
    // The webhook sends in log order: once the opening is in, everything before it was decided.
    assert!(
        wait_until(30, || received
            .on("/json")
            .iter()
            .any(|b| b["kind"] == "opened")),
        "no opened delivery: {:?}",
        received.on("/json")
    );
    let sent: Vec<(String, String)> = received
        .on("/json")
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_string(),
                b["incident"]["group"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let sent: Vec<(&str, bool)> = sent
        .iter()
        .map(|(kind, group)| (kind.as_str(), group.ends_with("key=k0")))
        .collect();
    assert_eq!(
        sent[..2],
        [("unsilenced", true), ("opened", false)],
        "only the end of the silence and the new incident: {sent:?}"
    );
    stop(child, &said);
}
