//! Webhooks: each profile `[[webhook]]` gets every incident change its filters admit, as an
//! Alertmanager webhook payload or as the feed's change object, once each, in order.
//!
//! Owns the delivery tasks (one per webhook, on a small runtime of their own, so that they run
//! with or without the HTTP server), the payloads ([`alertmanager`], [`json`]) and each webhook's
//! cursor file, `<data-dir>/webhooks/<name>.cursor`: the sequence number of the last change of the
//! incident log that the webhook is done with (delivered with a 2xx answer, or not admitted by its
//! filters). There is no outbox besides the incident log: a task reads the log from its cursor,
//! so a change stored while the receiver is down, or while logwarden is stopped, is sent when
//! it is back, and a change answered 2xx is not sent again after a restart. The cursor is written
//! atomically (temporary file, fsync, rename) after each 2xx.
//!
//! Order and retries: a webhook sends one change at a time, in log order; a failed attempt
//! (refused, timed out, any status but 2xx) is logged with its reason and tried again after 1 s,
//! 2 s, 4 s, … at most 30 s, until it succeeds. One webhook's wait delays no other webhook, nor the
//! pipeline ([`Webhooks::publish`] only wakes the tasks), nor the feed.
//!
//! Which log: the cursor also holds a digest of the log's first change. When the log at hand
//! starts with another change, it was replaced (the demo deletes it), and the webhook starts from
//! its beginning. When it starts with the same change but ends before the cursor, a run crashed
//! after logging changes it had not committed: they are derived again with the same numbers, and
//! the ones up to the cursor were sent already. A cursor without a digest beyond the log's end is
//! taken as a replaced log too (start from the beginning rather than skip).
//!
//! A webhook seen for the first time (no cursor file) starts at the log's end: it is sent what is
//! stored from then on, not the history.
//!
//! At least once, exactly once in practice: a change is sent again only when logwarden stops (or
//! the cursor cannot be written) between a receiver's 2xx and the cursor's rename.
//!
//! https: rustls with ring's crypto, chosen here for each client (no process-wide provider, no
//! OpenSSL). A receiver's certificate must chain to the system's roots (rustls-platform-verifier,
//! which reads the system's trust store, `/etc/ssl/certs` on Debian) or to a CA of the webhook's
//! `ca_file`. A certificate that does not verify fails the attempt like a refused connection:
//! logged with its reason and retried.
//!
//! This module must not change the incident log or read the index, and must never block the
//! pipeline's thread: the log is read on the runtime's blocking threads.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::{Webhook, WebhookKind};
use crate::incident::{Change, ChangeKind, State};
use crate::store::incidents::{IncidentLog, Position};

/// The folder of the cursors inside a data dir.
pub const DIR: &str = "webhooks";
/// The first wait after a failed attempt; doubled after each further failure.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a caught-up task looks at the log when nothing woke it.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot start the webhooks' runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
    #[error(
        "webhook `{name}`: cannot verify https receivers: {error}; install the system's CA \
         certificates (Debian: ca-certificates) or give the webhook a `ca_file`"
    )]
    Tls { name: String, error: rustls::Error },
    #[error("webhook cursor {path}: {error}")]
    Cursor {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The running webhooks. Dropping it (or [`Webhooks::shutdown`]) stops them; a change not yet
/// delivered then is delivered by the next run.
pub struct Webhooks {
    wake: watch::Sender<u64>,
    /// Each task's cursor, as far as it got.
    done: Vec<Arc<AtomicU64>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

/// What every delivery task is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data dir whose incident log is sent and where the cursors live.
    pub data_dir: PathBuf,
    /// The Alertmanager payload's `externalURL` (the server's address, when it serves).
    pub external_url: String,
    /// The first wait after a failed attempt (tests make it short).
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl Options {
    pub fn new(data_dir: PathBuf) -> Options {
        Options {
            data_dir,
            external_url: String::new(),
            backoff_first: BACKOFF_FIRST,
            backoff_max: BACKOFF_MAX,
        }
    }
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The TLS settings of a webhook client: ring's crypto; a receiver's certificate must chain to
/// the system's roots or to one of `extra`.
pub fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra.iter().cloned(),
        Arc::clone(&provider),
    )?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// TLS settings that trust no certificate (for http:// receivers on a system without roots).
fn tls_without_roots() -> Result<rustls::ClientConfig, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Client(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

fn http_client(tls: rustls::ClientConfig) -> Result<reqwest::Client, WebhookError> {
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| WebhookError::Client(error_chain(&e)))
}

/// Start one delivery task per webhook. With no webhook, nothing is started.
pub fn start(hooks: Vec<Webhook>, options: Options) -> Result<Option<Webhooks>, WebhookError> {
    if hooks.is_empty() {
        return Ok(None);
    }
    let dir = options.data_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(|error| WebhookError::Cursor {
        path: dir.clone(),
        error,
    })?;
    // The client of the webhooks without a `ca_file`, once it could be built.
    let mut system_client: Option<reqwest::Client> = None;
    let mut clients = Vec::with_capacity(hooks.len());
    for hook in &hooks {
        let client = match (&hook.ca, &system_client) {
            (None, Some(client)) => client.clone(),
            (Some(ca), _) => {
                http_client(tls_config(&ca.certs).map_err(|error| WebhookError::Tls {
                    name: hook.name.clone(),
                    error,
                })?)?
            }
            (None, None) => match tls_config(&[]) {
                Ok(tls) => {
                    let client = http_client(tls)?;
                    system_client = Some(client.clone());
                    client
                }
                Err(error) if is_https(&hook.url) => {
                    return Err(WebhookError::Tls {
                        name: hook.name.clone(),
                        error,
                    });
                }
                // No system roots, and an http:// receiver: TLS would only matter on a redirect
                // to https, which then fails to verify.
                Err(_) => http_client(tls_without_roots()?)?,
            },
        };
        clients.push(client);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .thread_name("webhook")
        .enable_all()
        .build()
        .map_err(WebhookError::Runtime)?;
    let (wake, _) = watch::channel(0u64);
    let mut done = Vec::with_capacity(hooks.len());
    for (hook, client) in hooks.into_iter().zip(clients) {
        let reached = Arc::new(AtomicU64::new(0));
        done.push(Arc::clone(&reached));
        let task = Task {
            reached,
            cursor_path: dir.join(format!("{}.cursor", hook.name)),
            log_path: options.data_dir.join(crate::store::incidents::LOG_FILE),
            hook,
            client,
            options: options.clone(),
        };
        tracing::info!(webhook = %task.hook.name, origin = %origin(&task.hook.url), "webhook started");
        runtime.spawn(task.run(wake.subscribe()));
    }
    Ok(Some(Webhooks {
        wake,
        done,
        runtime: Some(runtime),
    }))
}

impl Webhooks {
    /// A change was stored: the tasks read the log. Never blocks.
    pub fn publish(&self, change: &Change) {
        self.wake.send_replace(change.seq);
    }

    /// Stop the tasks, after waiting up to `grace` for them to be done with every change
    /// published (a dead receiver is not waited for longer). What is left, an attempt in flight
    /// included, is sent by the next run.
    pub fn shutdown(mut self, grace: Duration) {
        let last = *self.wake.borrow();
        let deadline = Instant::now() + grace;
        if let Some(runtime) = &self.runtime {
            while Instant::now() < deadline
                && self.done.iter().any(|d| d.load(Ordering::Acquire) < last)
            {
                // The sleep is made inside the runtime: its timer is the runtime's.
                runtime.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A webhook's cursor file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last sequence number the webhook is done with.
    pub seq: u64,
    /// [`digest`] of the log's first change when the cursor was written.
    #[serde(default)]
    pub first: Option<String>,
}

impl Cursor {
    /// The cursor at `path`, if there is one.
    pub fn load(path: &Path) -> Result<Option<Cursor>, std::io::Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write the cursor atomically: a temporary file, fsync'd, renamed over the old one.
    pub fn store(&self, path: &Path) -> Result<(), std::io::Error> {
        if let Some(dir) = path.parent() {
            // The demo removes the folder with the incident log.
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("cursor.tmp");
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// What identifies a change across logs: its number, kind, time and incident.
pub fn digest(change: &Change) -> String {
    let text = format!(
        "{} {} {} {}",
        change.seq,
        change.kind.as_str(),
        change.at.as_micros(),
        change.incident.id
    );
    format!("{:016x}", twox_hash::XxHash64::oneshot(0, text.as_bytes()))
}

/// Where to start in a log whose changes are `changes` (read whole, from its start), for
/// `cursor`; gives the cursor to keep (reset when the log was replaced).
pub fn resume(cursor: &Cursor, changes: &[Change]) -> Cursor {
    let Some(first) = changes.first() else {
        // An empty log: nothing to send yet; keep the cursor until there is a first change.
        return cursor.clone();
    };
    let first_digest = digest(first);
    let last_seq = changes.last().map_or(0, |c| c.seq);
    let replaced = match &cursor.first {
        Some(d) => *d != first_digest,
        None => cursor.seq > last_seq,
    };
    if replaced && cursor.seq > 0 {
        tracing::warn!(
            cursor = cursor.seq,
            last = last_seq,
            "the incident log was replaced since this webhook's cursor: sending it from the start"
        );
        return Cursor {
            seq: 0,
            first: Some(first_digest),
        };
    }
    Cursor {
        seq: cursor.seq,
        first: Some(first_digest),
    }
}

/// The body POSTed for `change`.
pub fn payload(hook: &Webhook, change: &Change, external_url: &str) -> Value {
    match hook.kind {
        WebhookKind::Json => json(change),
        WebhookKind::Alertmanager => alertmanager(&hook.name, change, external_url),
    }
}

/// The feed's change object (`seq`, `kind`, `at`, `incident`).
pub fn json(change: &Change) -> Value {
    serde_json::to_value(change).unwrap_or(Value::Null)
}

/// Alertmanager's webhook payload (version 4) with one alert: the incident.
pub fn alertmanager(receiver: &str, change: &Change, external_url: &str) -> Value {
    let incident = &change.incident;
    let resolved = change.kind == ChangeKind::Resolved || incident.state == State::Resolved;
    let status = if resolved { "resolved" } else { "firing" };
    let labels = json!({
        "alertname": incident.rule,
        "severity": incident.severity.as_str(),
        "class": incident.class.as_str(),
        "service": incident.services.join(","),
        "incident": incident.id.0,
    });
    let mut procedure = String::new();
    for (n, step) in incident.runbook.steps.iter().enumerate() {
        procedure.push_str(&format!("{}. {}\n", n + 1, step.text));
        for command in &step.commands {
            procedure.push_str(&format!("   $ {command}\n"));
        }
    }
    let annotations = json!({
        "summary": incident.title,
        "description": format!(
            "{} {}: {} matches on {} from {} to {}, escalation level {}",
            incident.id,
            change.kind.as_str(),
            incident.count,
            incident.services.join(", "),
            incident.first_seen,
            incident.last_seen,
            incident.escalation_level
        ),
        "change": change.kind.as_str(),
        "runbook": incident.runbook.title,
        "runbook_anchor": incident.runbook.anchor,
        "procedure": procedure,
    });
    let ends_at = match (resolved, incident.resolved_at) {
        (true, Some(t)) => t.rfc3339(),
        (true, None) => change.at.rfc3339(),
        // Alertmanager's "no end" time.
        (false, _) => "0001-01-01T00:00:00Z".to_string(),
    };
    let generator = if external_url.is_empty() {
        String::new()
    } else {
        format!(
            "{}/api/v1/incidents/{}",
            external_url.trim_end_matches('/'),
            incident.id
        )
    };
    let fingerprint = incident
        .id
        .0
        .strip_prefix("inc-")
        .unwrap_or(&incident.id.0)
        .to_string();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{incident=\"{}\"}}", incident.id),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": { "incident": incident.id.0 },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": incident.opened_at.rfc3339(),
            "endsAt": ends_at,
            "generatorURL": generator,
            "fingerprint": fingerprint,
        }],
    })
}

/// One webhook's delivery task.
struct Task {
    hook: Webhook,
    /// The cursor's sequence number, for [`Webhooks::shutdown`] to see.
    reached: Arc<AtomicU64>,
    client: reqwest::Client,
    options: Options,
    cursor_path: PathBuf,
    log_path: PathBuf,
}

impl Task {
    async fn run(self, mut wake: watch::Receiver<u64>) {
        let name = self.hook.name.clone();
        let loaded = blocking({
            let path = self.cursor_path.clone();
            move || Cursor::load(&path)
        })
        .await;
        // A webhook without a cursor is new: it sends what is stored from now on, not the history.
        let mut new = false;
        let mut cursor = match loaded {
            Ok(Some(cursor)) => cursor,
            Ok(None) => {
                new = true;
                Cursor::default()
            }
            Err(error) => {
                tracing::error!(webhook = %name, path = %self.cursor_path.display(), %error,
                    "cannot read the webhook's cursor; this webhook sends nothing until it is fixed or removed");
                return;
            }
        };
        // Where the log was last read to; `None`: read it from the start (and check its identity).
        let mut position: Option<Position> = None;
        loop {
            let from = position.unwrap_or_default();
            let read = blocking({
                let path = self.log_path.clone();
                move || IncidentLog::read_from(&path, from)
            })
            .await;
            let changes = match read {
                Ok(Some((changes, end))) => {
                    if from.offset == 0 {
                        // Read from its start: is it the log the cursor is about?
                        cursor = resume(&cursor, &changes);
                    }
                    if new {
                        new = false;
                        cursor.seq = end.seq;
                        tracing::info!(webhook = %name, after = end.seq,
                            "a new webhook: it sends the changes stored after this one");
                        self.save(&cursor).await;
                    }
                    position = Some(end);
                    changes
                }
                Ok(None) => {
                    // Cut back or replaced under us: read it whole, from the start.
                    position = None;
                    continue;
                }
                Err(error) => {
                    tracing::error!(webhook = %name, %error, "cannot read the incident log");
                    position = None;
                    Vec::new()
                }
            };
            let mut skipped = false;
            let done_with = cursor.seq;
            for change in changes.iter().filter(|c| c.seq > done_with) {
                if self.hook.admits(change) {
                    self.deliver(change).await;
                    cursor.seq = change.seq;
                    self.save(&cursor).await;
                    skipped = false;
                } else {
                    cursor.seq = change.seq;
                    skipped = true;
                }
            }
            if skipped {
                self.save(&cursor).await;
            }
            self.reached.store(cursor.seq, Ordering::Release);
            // Wait for the next stored change, or look again after a while.
            if let Ok(Err(_)) = tokio::time::timeout(POLL, wake.changed()).await {
                // The run is over.
                return;
            }
        }
    }

    /// Send `change` until the receiver answers 2xx.
    async fn deliver(&self, change: &Change) {
        let body = payload(&self.hook, change, &self.options.external_url);
        let bytes = match serde_json::to_vec(&body) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(webhook = %self.hook.name, seq = change.seq, %error,
                    "cannot encode a change for the webhook; it is skipped");
                return;
            }
        };
        let mut wait = self.options.backoff_first;
        let mut attempt = 1u32;
        loop {
            match self.attempt(&bytes).await {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(webhook = %self.hook.name, seq = change.seq, attempt,
                            "webhook delivered after retrying");
                    } else {
                        tracing::debug!(webhook = %self.hook.name, seq = change.seq, "webhook delivered");
                    }
                    return;
                }
                Err(reason) => {
                    tracing::warn!(webhook = %self.hook.name, origin = %origin(&self.hook.url), seq = change.seq,
                        attempt, retry_in = ?wait, "webhook delivery failed: {reason}");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.options.backoff_max);
            attempt = attempt.saturating_add(1);
        }
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), String> {
        let mut request = self
            .client
            .post(&self.hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::USER_AGENT,
                concat!("logwarden/", env!("CARGO_PKG_VERSION")),
            )
            .timeout(self.hook.timeout)
            .body(body.to_vec());
        if let Some(token) = &self.hook.token {
            request = request.bearer_auth(&token.0);
        }
        // Without the URL: a chat webhook's path is its secret.
        let response = request
            .send()
            .await
            .map_err(|e| error_chain(&e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(format!("the receiver answered {status}: {}", text.trim()))
    }

    async fn save(&self, cursor: &Cursor) {
        self.reached.store(cursor.seq, Ordering::Release);
        let path = self.cursor_path.clone();
        let to_store = cursor.clone();
        if let Err(error) = blocking(move || to_store.store(&path)).await {
            tracing::error!(webhook = %self.hook.name, path = %self.cursor_path.display(), %error,
                "cannot write the webhook's cursor: a restart may send its last changes again");
        }
    }
}

/// What logs may say of a webhook's URL: scheme, host and port. Chat webhooks (Slack, Discord)
/// carry their secret in the path, so the path and query never reach a log.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "(unparsable URL)".to_string(),
        |u| u.origin().ascii_serialization(),
    )
}

/// An error and its causes, on one line ("error sending request: … : connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Run blocking file work on the runtime's blocking threads.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(join) => Err(join.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGE: &str = r#"{"seq":7,"kind":"resolved","at":"2026-11-28T14:05:00Z","incident":{
        "id":"inc-00000000000000c1","class":"db-connection","severity":"critical","state":"resolved",
        "title":"Too many clients on postgres","rule":"pg-too-many-clients","group":"g",
        "services":["postgres"],
        "first_seen":"2026-11-28T14:00:00Z","opened_at":"2026-11-28T14:00:10Z",
        "last_seen":"2026-11-28T14:01:00Z","resolved_at":"2026-11-28T14:05:00Z","count":3,
        "escalation_level":1,"caused_by":[],"consequence":false,
        "runbook":{"title":"Database Connection Issues","anchor":"database-connection-issues",
          "steps":[{"text":"Check database status","commands":["pg_isready"]}]},
        "evidence":[]}}"#;

    fn change(seq: u64, id: &str) -> Change {
        let mut c: Change = serde_json::from_str(CHANGE).unwrap();
        c.seq = seq;
        c.incident.id.0 = id.into();
        c
    }

    #[test]
    fn the_alertmanager_payload_has_alertmanagers_fields() {
        let c = change(7, "inc-00000000000000c1");
        let p = alertmanager("pager", &c, "http://127.0.0.1:7878");
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "resolved");
        assert_eq!(p["receiver"], "pager");
        assert_eq!(p["groupKey"], "{}:{incident=\"inc-00000000000000c1\"}");
        assert_eq!(p["externalURL"], "http://127.0.0.1:7878");
        assert_eq!(p["groupLabels"]["incident"], "inc-00000000000000c1");
        let alert = &p["alerts"][0];
        assert_eq!(alert["status"], "resolved");
        assert_eq!(alert["labels"]["alertname"], "pg-too-many-clients");
        assert_eq!(alert["labels"]["severity"], "critical");
        assert_eq!(alert["labels"]["class"], "db-connection");
        assert_eq!(alert["labels"]["service"], "postgres");
        assert_eq!(alert["labels"]["incident"], "inc-00000000000000c1");
        assert_eq!(
            alert["annotations"]["summary"],
            "Too many clients on postgres"
        );
        assert_eq!(
            alert["annotations"]["runbook"],
            "Database Connection Issues"
        );
        assert_eq!(
            alert["annotations"]["procedure"],
            "1. Check database status\n   $ pg_isready\n"
        );
        assert_eq!(alert["startsAt"], "2026-11-28T14:00:10.000Z");
        assert_eq!(alert["endsAt"], "2026-11-28T14:05:00.000Z");
        assert_eq!(alert["fingerprint"], "00000000000000c1");
        assert_eq!(
            alert["generatorURL"],
            "http://127.0.0.1:7878/api/v1/incidents/inc-00000000000000c1"
        );
        assert_eq!(p["commonLabels"], alert["labels"]);

        let mut open = c.clone();
        open.kind = ChangeKind::Opened;
        open.incident.state = State::Open;
        open.incident.resolved_at = None;
        let p = alertmanager("pager", &open, "");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    }

    #[test]
    fn the_json_payload_is_the_feeds_change_object() {
        let c = change(7, "inc-00000000000000c1");
        assert_eq!(json(&c), serde_json::to_value(&c).unwrap());
        let back: Change = serde_json::from_value(json(&c)).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_cursor_is_kept_for_its_log_and_reset_for_another() {
        let log = [change(1, "inc-a"), change(2, "inc-b"), change(3, "inc-c")];
        let first = Some(digest(&log[0]));
        // A new webhook starts at the start.
        assert_eq!(resume(&Cursor::default(), &log).seq, 0);
        // Its own log: where it was.
        let at2 = Cursor {
            seq: 2,
            first: first.clone(),
        };
        assert_eq!(resume(&at2, &log), at2);
        // Its own log, cut back after a crash: the cursor stays (those changes come again).
        let at5 = Cursor {
            seq: 5,
            first: first.clone(),
        };
        assert_eq!(resume(&at5, &log), at5);
        // Another log (deleted and written anew): from the start.
        let other = [change(1, "inc-x"), change(2, "inc-y")];
        assert_eq!(resume(&at2, &other).seq, 0);
        // No digest, beyond the end: taken as another log.
        let bare = Cursor {
            seq: 9,
            first: None,
        };
        assert_eq!(resume(&bare, &log).seq, 0);
        // An empty log: nothing to decide yet.
        assert_eq!(resume(&at2, &[]), at2);
    }

    fn hook(name: &str) -> Webhook {
        Webhook {
            name: name.into(),
            url: "http://127.0.0.1:9/".into(),
            kind: WebhookKind::Json,
            classes: vec![],
            severities: vec![],
            services: vec![],
            changes: vec![],
            token: None,
            timeout: Duration::from_secs(1),
            ca: None,
        }
    }

    /// Silenced means nobody is paged, whatever a webhook's filters say; an acknowledgement and
    /// the end of a silence are sent.
    #[test]
    fn no_change_of_a_silenced_incident_is_sent() {
        let everything = hook("all");
        let mut c = change(1, "inc-a");
        for kind in ChangeKind::ALL {
            c.kind = kind;
            c.incident.silenced_by = None;
            assert!(everything.admits(&c), "{kind:?}");
            c.incident.silenced_by = Some(crate::incident::SilenceRef {
                id: crate::incident::SilenceId("sil-1".into()),
                by: "ops".into(),
                reason: "maintenance".into(),
                ends: c.at,
            });
            assert!(!everything.admits(&c), "{kind:?}");
        }
        let mut acks = hook("acks");
        acks.changes = vec![ChangeKind::Acknowledged, ChangeKind::Unsilenced];
        c.incident.silenced_by = None;
        for kind in ChangeKind::ALL {
            c.kind = kind;
            assert_eq!(acks.admits(&c), acks.changes.contains(&kind), "{kind:?}");
        }
    }

    /// A stop waits at most its grace for a webhook that is behind (its receiver is dead here).
    #[test]
    fn shutdown_waits_its_grace_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = start(vec![hook("dead")], Options::new(dir.path().to_path_buf()))
            .unwrap()
            .unwrap();
        hooks.publish(&change(1, "inc-a"));
        let started = Instant::now();
        hooks.shutdown(Duration::from_millis(200));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn a_cursor_is_stored_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pager.cursor");
        assert_eq!(Cursor::load(&path).unwrap(), None);
        let c = Cursor {
            seq: 42,
            first: Some("00ff".into()),
        };
        c.store(&path).unwrap();
        assert_eq!(Cursor::load(&path).unwrap(), Some(c));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pager.cursor"]);
    }
}
