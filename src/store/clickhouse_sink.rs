//! The ClickHouse sink (issue 8): every event and incident change a `run` or `backfill` stores also
//! goes to ClickHouse, through a write-ahead spool on local disk (`D/clickhouse/`).
//!
//! The pipeline thread appends rows to the spool's open batch file ([`Spool`]) and seals it (flush,
//! fsync, rename to `NNNNNNNNNNNN.batch`) whenever it holds `batch_rows` rows and before every
//! index commit, so the commit that advances the sources' checkpoints never runs ahead of the
//! spool. A sender thread inserts the sealed batches in order (coalescing small ones up to
//! `batch_rows`) and deletes each once ClickHouse has acknowledged it. ClickHouse down or slow
//! means retries with backoff (1 s doubling to 30 s) while batches wait on disk, up to
//! `buffer_max` bytes; past that the pipeline waits (the sources stay unread where they are: no
//! line is dropped) until the sender catches up.
//!
//! Exactly once: rows carry the event id (`fingerprint:offset`), and the tables are
//! `ReplacingMergeTree`s keyed by it (incident changes by agent and sequence number). A batch
//! resent after a lost answer collapses into the rows already there; after a `kill -9` the open
//! batch file (rows after the last commit) is discarded and the sources are read again from the
//! committed checkpoint, which writes the same rows again, and those collapse too.
//!
//! This module must not decide what an event is (parse, match) nor block the pipeline on the
//! network: the pipeline only ever waits for room in the spool.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::event::Events;
use crate::incident::Change;
use crate::store::clickhouse::{ClickHouse, ClickHouseError, EventRow, IncidentRow};
use crate::store::index::{RuleTag, tags_by_event};

/// Rows per batch unless configured.
pub const BATCH_ROWS: usize = 50_000;
/// Spool bytes on disk before the pipeline waits, unless configured.
pub const BUFFER_MAX: u64 = 1 << 30;
/// First and longest wait between failed attempts.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long one insert attempt (a batch of up to `batch_rows`, twice that coalesced) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of sealed batches (as written) whose rows stay in memory for the sender as well.
const FRESH_MAX: u64 = 64 << 20;
/// The file rows are appended to until it is sealed.
const OPEN_FILE: &str = "open.part";
const BATCH_EXT: &str = "batch";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(
        "--clickhouse `{url}`: {reason} (expected http://HOST:PORT/DATABASE or clickhouse://HOST:PORT/DATABASE)"
    )]
    Url { url: String, reason: &'static str },
    #[error("ClickHouse spool {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("ClickHouse spool: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Server(#[from] ClickHouseError),
    #[error("ClickHouse at {url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where and how the sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// The server's HTTP address (`http://host:8123`).
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// This agent's name (the `agent` column; an event's `host` when it names none): the
    /// machine's host name unless given.
    pub agent: String,
    /// Rows per batch (per file sealed, per INSERT at most).
    pub batch_rows: usize,
    /// Spool bytes on disk before the pipeline waits for the sender.
    pub buffer_max: u64,
    /// Days events are kept: a `TTL` on servers that have it.
    pub retention_days: Option<u32>,
}

impl SinkConfig {
    /// From `http://host:port/db` (also `https://`, and `clickhouse://` meaning `http://`); the
    /// database defaults to `logwarden`.
    pub fn new(url: &str, agent: String) -> Result<SinkConfig, SinkError> {
        let (url_base, database) = split_url(url)?;
        Ok(SinkConfig {
            url: url_base,
            database,
            user: None,
            password: None,
            agent,
            batch_rows: BATCH_ROWS,
            buffer_max: BUFFER_MAX,
            retention_days: None,
        })
    }

    pub async fn connect(&self) -> Result<ClickHouse, ClickHouseError> {
        ClickHouse::connect(
            &self.url,
            &self.database,
            self.user.as_deref(),
            self.password.as_deref(),
            self.retention_days,
        )
        .await
    }
}

/// Connect once (reading the version, making the tables), giving up after `timeout`: whether the
/// sink will find its server.
pub fn probe(config: &SinkConfig, timeout: Duration) -> Result<ClickHouse, SinkError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| SinkError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        match tokio::time::timeout(timeout, config.connect()).await {
            Ok(connected) => Ok(connected?),
            Err(_) => Err(SinkError::Timeout {
                url: config.url.clone(),
                after: timeout,
            }),
        }
    })
}

/// `scheme://host[:port][/database]` → (`http[s]://host[:port]`, database).
pub fn split_url(url: &str) -> Result<(String, String), SinkError> {
    let bad = |reason| SinkError::Url {
        url: without_credentials(url),
        reason,
    };
    let (scheme, rest) = url.split_once("://").ok_or(bad("no scheme"))?;
    let scheme = match scheme {
        "http" | "clickhouse" => "http",
        "https" => "https",
        _ => return Err(bad("the scheme is not http, https or clickhouse")),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad(
            "credentials in the URL: use --clickhouse-user and --clickhouse-password-file",
        ));
    }
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_matches('/');
    let database = if path.is_empty() { "logwarden" } else { path };
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(bad(
            "the database name may hold only letters, digits and `_`",
        ));
    }
    Ok((format!("{scheme}://{authority}"), database.to_string()))
}

/// `url` with any `user:password@` cut out (error messages must not carry a password).
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let mut out = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    if host.len() != authority.len() {
        out.push_str("…@");
    }
    out.push_str(host);
    if let Some(path) = path {
        out.push('/');
        out.push_str(path);
    }
    out
}

/// One spooled row.
#[derive(Serialize, Deserialize)]
enum Row {
    E(EventRow),
    I(IncidentRow),
}

/// What the pipeline and the sender share.
#[derive(Default)]
struct State {
    /// Sealed batches waiting, and their bytes.
    batches: u64,
    bytes: u64,
    /// Rows ClickHouse acknowledged in this run.
    delivered: u64,
    /// Failed attempts in this run.
    failures: u64,
    /// The last failure, while failing.
    failing: Option<String>,
    /// The pipeline is done: drain and stop (at this deadline at the latest, if any).
    closing: Option<Option<Instant>>,
    /// The rows of recently sealed batches, by batch number, so that the sender need not read
    /// and decode the files it was just handed (up to [`FRESH_MAX`] bytes of files; the rest
    /// it reads back).
    fresh: std::collections::BTreeMap<u64, Vec<Row>>,
    fresh_bytes: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The open batch file, and its rows.
struct Open {
    out: BufWriter<File>,
    rows: Vec<Row>,
    bytes: u64,
}

/// Reads a spool's state: what waits, what was delivered, what fails.
#[derive(Clone)]
pub struct SpoolWatch {
    shared: Arc<Shared>,
    buffer_max: u64,
}

impl std::fmt::Debug for SpoolWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolWatch").finish_non_exhaustive()
    }
}

/// A spool's state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Sealed batches waiting to be sent, and their bytes.
    pub batches: u64,
    pub bytes: u64,
    /// The bytes past which ingestion waits.
    pub buffer_max: u64,
    /// Rows ClickHouse acknowledged, and failed attempts, in this run.
    pub delivered: u64,
    pub failures: u64,
    /// The last failure, while inserts fail.
    pub failing: Option<String>,
}

impl SpoolStatus {
    /// Ingestion is waiting for ClickHouse (the spool is over its size).
    pub fn full(&self) -> bool {
        self.bytes > self.buffer_max
    }
}

impl SpoolWatch {
    pub fn status(&self) -> SpoolStatus {
        let state = self.shared.lock();
        SpoolStatus {
            batches: state.batches,
            bytes: state.bytes,
            buffer_max: self.buffer_max,
            delivered: state.delivered,
            failures: state.failures,
            failing: state.failing.clone(),
        }
    }
}

/// What was left in the spool when the sink closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    pub delivered: u64,
    pub left_batches: u64,
    pub left_bytes: u64,
}

/// The pipeline's end of the sink: rows go into the spool; a thread of its own sends them.
pub struct Spool {
    dir: PathBuf,
    config: SinkConfig,
    open: Option<Open>,
    next: u64,
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
    /// Set when the run is told to stop: a full spool no longer holds the pipeline back.
    stop: Option<Arc<AtomicBool>>,
    warned_full: bool,
    /// One row's JSON, reused.
    line: Vec<u8>,
}

impl Spool {
    /// The spool in `dir` (made when missing) and its sender. Sealed batches of an earlier run
    /// are sent first; its open batch file is discarded (its rows are after the last commit and
    /// come again from the sources).
    pub fn open(dir: &Path, config: SinkConfig) -> Result<Spool, SinkError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let open_file = dir.join(OPEN_FILE);
        if fs::exists(&open_file).map_err(io(&open_file))? {
            fs::remove_file(&open_file).map_err(io(&open_file))?;
        }
        let mut state = State::default();
        let mut next = 1;
        for (seq, path) in sealed(dir)? {
            state.batches += 1;
            state.bytes += fs::metadata(&path).map_err(io(&path))?.len();
            next = next.max(seq + 1);
        }
        if state.batches > 0 {
            tracing::info!(
                batches = state.batches,
                bytes = state.bytes,
                "ClickHouse: sending what an earlier run left in the spool first"
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
        });
        let sender = {
            let (owned, config, shared) = (dir.to_path_buf(), config.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("clickhouse".into())
                .spawn(move || send(&owned, &config, &shared))
                .map_err(io(dir))?
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            config,
            open: None,
            next,
            shared,
            sender: Some(sender),
            stop: None,
            warned_full: false,
            line: Vec::new(),
        })
    }

    /// The run's stop flag: once set, a full spool no longer makes the pipeline wait.
    pub fn watch(&mut self, stop: Arc<AtomicBool>) {
        self.stop = Some(stop);
    }

    /// Add `events` with the rules that matched them.
    pub fn add_events(&mut self, events: &Events, tags: &[RuleTag]) -> Result<(), SinkError> {
        let by_event = tags_by_event(tags);
        for event in events {
            let matched: Vec<RuleTag> = by_event
                .get(&event.id)
                .map(|t| t.iter().map(|&t| t.clone()).collect())
                .unwrap_or_default();
            let row = EventRow::new(&self.config.agent, event, &matched);
            self.write(Row::E(row))?;
        }
        Ok(())
    }

    /// Add incident changes (already numbered by the incident log).
    pub fn add_changes(&mut self, changes: &[Change]) -> Result<(), SinkError> {
        for change in changes {
            let row = IncidentRow::new(&self.config.agent, change)?;
            self.write(Row::I(row))?;
        }
        Ok(())
    }

    fn write(&mut self, row: Row) -> Result<(), SinkError> {
        let path = self.dir.join(OPEN_FILE);
        if self.open.is_none() {
            let file = File::create(&path).map_err(io(&path))?;
            self.open = Some(Open {
                out: BufWriter::with_capacity(1 << 20, file),
                rows: Vec::new(),
                bytes: 0,
            });
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &row)?;
        self.line.push(b'\n');
        open.out.write_all(&self.line).map_err(io(&path))?;
        open.bytes += self.line.len() as u64;
        open.rows.push(row);
        if open.rows.len() >= self.config.batch_rows {
            self.seal()?;
        }
        Ok(())
    }

    /// Make the open batch durable and hand it to the sender (before every index commit). Waits
    /// while the spool is over `buffer_max`, unless the run is stopping.
    pub fn seal(&mut self) -> Result<(), SinkError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let part = self.dir.join(OPEN_FILE);
        let file = open.out.into_inner().map_err(|e| SinkError::Io {
            path: part.display().to_string(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io(&part))?;
        drop(file);
        // Counted (and its rows put in memory) before the file gets its name: a sender that
        // sees the file finds them there and its delivery subtracts what was added.
        let seq = self.next;
        {
            let mut state = self.shared.lock();
            state.batches += 1;
            state.bytes += open.bytes;
            if state.fresh_bytes + open.bytes <= FRESH_MAX {
                state.fresh_bytes += open.bytes;
                state.fresh.insert(seq, open.rows);
            }
        }
        let sealed = self.dir.join(format!("{seq:012}.{BATCH_EXT}"));
        fs::rename(&part, &sealed).map_err(io(&sealed))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        self.next += 1;
        let mut state = self.shared.lock();
        self.shared.changed.notify_all();
        while state.bytes > self.config.buffer_max
            && !self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
        {
            if !self.warned_full {
                tracing::warn!(
                    bytes = state.bytes,
                    max = self.config.buffer_max,
                    failing = state.failing.as_deref().unwrap_or("slow"),
                    "ClickHouse spool full: ingestion waits until ClickHouse takes the buffered rows"
                );
                self.warned_full = true;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(500))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if state.bytes <= self.config.buffer_max {
            self.warned_full = false;
        }
        Ok(())
    }

    /// A handle that reads the spool's state from elsewhere (metrics, health).
    pub fn watch_handle(&self) -> SpoolWatch {
        SpoolWatch {
            shared: Arc::clone(&self.shared),
            buffer_max: self.config.buffer_max,
        }
    }

    /// Seal what is open and let the sender deliver it: until the spool is empty, or until
    /// `grace` has passed (`None`: no limit). What is left stays for the next run.
    pub fn close(mut self, grace: Option<Duration>) -> Result<Closed, SinkError> {
        self.seal()?;
        {
            let mut state = self.shared.lock();
            state.closing = Some(grace.map(|g| Instant::now() + g));
            self.shared.changed.notify_all();
        }
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
        let state = self.shared.lock();
        Ok(Closed {
            delivered: state.delivered,
            left_batches: state.batches,
            left_bytes: state.bytes,
        })
    }
}

impl Drop for Spool {
    /// An error path: stop the sender at once (what is sealed stays for the next run).
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            {
                let mut state = self.shared.lock();
                state.closing = Some(Some(Instant::now()));
                self.shared.changed.notify_all();
            }
            let _ = sender.join();
        }
    }
}

/// The sealed batches in `dir`, oldest first.
fn sealed(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SinkError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(BATCH_EXT) {
            continue;
        }
        if let Some(seq) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((seq, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Rows read back from sealed batches.
#[derive(Default)]
struct Batch {
    files: Vec<(PathBuf, u64)>,
    events: Vec<EventRow>,
    incidents: Vec<IncidentRow>,
}

impl Batch {
    fn rows(&self) -> usize {
        self.events.len() + self.incidents.len()
    }

    fn push(&mut self, row: Row) {
        match row {
            Row::E(row) => self.events.push(row),
            Row::I(row) => self.incidents.push(row),
        }
    }

    /// Take batch `seq` (the file `path`) into the batch: its rows from memory when the spool
    /// still holds them there, else read back from the file. A file that does not decode (the
    /// disk corrupted it: a sealed file was fsynced whole) is moved to `bad/` and logged, never
    /// sent half or dropped quietly.
    fn take(&mut self, seq: u64, path: &Path, shared: &Shared) -> Result<(), SinkError> {
        let len = fs::metadata(path).map_err(io(path))?.len();
        let fresh = {
            let mut state = shared.lock();
            let rows = state.fresh.remove(&seq);
            if rows.is_some() {
                state.fresh_bytes = state.fresh_bytes.saturating_sub(len);
            }
            rows
        };
        if let Some(rows) = fresh {
            for row in rows {
                self.push(row);
            }
            self.files.push((path.to_path_buf(), len));
            return Ok(());
        }
        let file = File::open(path).map_err(io(path))?;
        let (mut events, mut incidents) = (Vec::new(), Vec::new());
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io(path))?;
            match serde_json::from_str::<Row>(&line) {
                Ok(Row::E(row)) => events.push(row),
                Ok(Row::I(row)) => incidents.push(row),
                Err(error) => {
                    let bad = path.with_file_name("bad");
                    fs::create_dir_all(&bad).map_err(io(&bad))?;
                    let to = bad.join(path.file_name().unwrap_or_default());
                    fs::rename(path, &to).map_err(io(&to))?;
                    let mut state = shared.lock();
                    state.batches = state.batches.saturating_sub(1);
                    state.bytes = state.bytes.saturating_sub(len);
                    tracing::error!(
                        path = %to.display(),
                        line = n + 1,
                        %error,
                        "ClickHouse spool: a batch file does not decode; moved aside, not sent"
                    );
                    return Ok(());
                }
            }
        }
        self.events.append(&mut events);
        self.incidents.append(&mut incidents);
        self.files.push((path.to_path_buf(), len));
        Ok(())
    }
}

/// The sender thread: deliver sealed batches in order until closed.
fn send(dir: &Path, config: &SinkConfig, shared: &Shared) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "ClickHouse sender: no runtime; rows stay in the spool");
            return;
        }
    };
    let mut server: Option<ClickHouse> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let pending = match sealed(dir) {
            Ok(p) => p,
            Err(error) => {
                tracing::error!(%error, "ClickHouse sender: cannot list the spool");
                Vec::new()
            }
        };
        {
            let state = shared.lock();
            match state.closing {
                Some(_) if pending.is_empty() => return,
                Some(Some(deadline)) if Instant::now() >= deadline => return,
                _ => {}
            }
            if pending.is_empty() {
                let _ = shared.changed.wait_timeout(state, Duration::from_secs(1));
                continue;
            }
        }
        let attempt = runtime.block_on(async {
            if server.is_none() {
                server = Some(config.connect().await?);
            }
            let mut batch = Batch::default();
            for (seq, path) in &pending {
                if batch.rows() > 0 && batch.rows() >= config.batch_rows {
                    break;
                }
                batch.take(*seq, path, shared)?;
            }
            if let Some(server) = &server {
                // A server that accepts the connection and then hangs is a failure too.
                let inserts = async {
                    server.insert_events(&batch.events).await?;
                    server.insert_incidents(&batch.incidents).await
                };
                tokio::time::timeout(ATTEMPT_TIMEOUT, inserts)
                    .await
                    .map_err(|_| SinkError::Timeout {
                        url: config.url.clone(),
                        after: ATTEMPT_TIMEOUT,
                    })??;
            }
            Ok::<Batch, SinkError>(batch)
        });
        match attempt {
            Ok(batch) => {
                let mut removed = 0;
                for (path, _) in &batch.files {
                    if let Err(error) = fs::remove_file(path) {
                        tracing::error!(path = %path.display(), %error, "ClickHouse spool: a delivered batch stays (it will be sent again, harmlessly)");
                    } else {
                        removed += 1;
                    }
                }
                let mut state = shared.lock();
                if let Some(failure) = state.failing.take() {
                    tracing::warn!(was = %failure, "ClickHouse is reachable again: sending the spool");
                }
                state.batches = state.batches.saturating_sub(removed);
                state.bytes = state
                    .bytes
                    .saturating_sub(batch.files.iter().map(|(_, len)| len).sum());
                state.delivered += batch.rows() as u64;
                shared.changed.notify_all();
                backoff = BACKOFF_MIN;
            }
            Err(error) => {
                let text = error.to_string();
                let mut state = shared.lock();
                if state.failing.as_deref() != Some(text.as_str()) {
                    tracing::warn!(
                        error = %text,
                        batches = state.batches,
                        bytes = state.bytes,
                        retry_in = ?backoff,
                        "ClickHouse: insert failed; rows stay in the spool and are retried"
                    );
                }
                state.failing = Some(text);
                state.failures += 1;
                // A connection that failed is made again (the server may have restarted).
                server = None;
                let wait = match state.closing {
                    Some(Some(deadline)) => deadline.saturating_duration_since(Instant::now()),
                    _ => backoff,
                }
                .min(backoff);
                let _ = shared.changed.wait_timeout(state, wait);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spool whose server refuses connections (port 1): nothing leaves it.
    fn unreachable(dir: &Path, batch_rows: usize) -> Spool {
        let mut config = SinkConfig::new("http://127.0.0.1:1/db", "a".into()).unwrap();
        config.batch_rows = batch_rows;
        Spool::open(dir, config).unwrap()
    }

    #[test]
    fn sealed_batches_wait_on_disk_counted_and_a_restart_finds_them_and_drops_the_open_one() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..25)
            .map(|i| {
                format!(
                    "{{\"level\":30,\"time\":{},\"msg\":\"m{i}\"}}\n",
                    1_796_212_800_000u64 + i
                )
            })
            .collect();
        let events =
            crate::parse::parse_all("app", crate::parse::Format::Pino, 7, text.as_bytes()).unwrap();
        let mut spool = unreachable(dir.path(), 10);
        spool.add_events(&events, &[]).unwrap();
        // 25 rows in batches of 10: two sealed, five rows open.
        let status = spool.watch_handle().status();
        assert_eq!(status.batches, 2);
        let on_disk: u64 = sealed(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(status.bytes, on_disk);
        assert!(fs::exists(dir.path().join(OPEN_FILE)).unwrap());
        drop(spool); // as a kill would leave it, the open batch unsealed
        let spool = unreachable(dir.path(), 10);
        assert!(!fs::exists(dir.path().join(OPEN_FILE)).unwrap());
        assert_eq!(spool.watch_handle().status().bytes, on_disk);
        let closed = spool.close(Some(Duration::ZERO)).unwrap();
        assert_eq!((closed.delivered, closed.left_batches), (0, 2));
        // Every sealed row reads back whole.
        let mut batch = Batch::default();
        let shared = Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        };
        for (seq, path) in sealed(dir.path()).unwrap() {
            batch.take(seq, &path, &shared).unwrap();
        }
        let messages: Vec<&str> = batch.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn urls_name_the_server_and_the_database() {
        let ok = |u: &str| split_url(u).unwrap();
        assert_eq!(
            ok("http://127.0.0.1:8123/logs"),
            ("http://127.0.0.1:8123".into(), "logs".into())
        );
        assert_eq!(
            ok("clickhouse://ch.internal:8123/"),
            ("http://ch.internal:8123".into(), "logwarden".into())
        );
        assert_eq!(
            ok("https://ch:8443/db_1?x=1"),
            ("https://ch:8443".into(), "db_1".into())
        );
        for bad in [
            "127.0.0.1:8123",
            "ftp://h/db",
            "http:///db",
            "http://u:p@h:8123/db",
            "http://h:8123/a-b",
            "http://h:8123/a;DROP",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
        let said = split_url("http://u:s3cret@h:8123/db")
            .unwrap_err()
            .to_string();
        assert!(
            !said.contains("s3cret") && said.contains("http://…@h:8123/db"),
            "{said}"
        );
    }
}
