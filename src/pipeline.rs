//! The only file that knows every stage: sources → parse → detect → incident → store.
//!
//! A source thread (tail or replay) sends [`Input`]s over a bounded channel; this thread parses each
//! chunk with the file's own [`Parser`], matches the events, feeds the incident engine, adds the
//! events to the index and appends incident changes to the incident log. Every commit stores the
//! offsets reached (the checkpoint) in the same tantivy commit as the events, so a restart resumes
//! exactly where the durable index ends.
//!
//! Live (`run`, `demo`): the engine's watermark is the newest event time seen, so incidents open as
//! their lines arrive. Backfill: every match is buffered and the engine runs once at the end, in
//! event-time order across all files, which gives the same incidents a live run would have.
//!
//! Live, while every source is idle, event time goes on with the wall clock: the engine is told it
//! has reached the newest event time read plus the wall time since that event was read
//! ([`Engine::pass_time`]), so incidents resolve after their quiet period when the logs go
//! silent. That is the only place the wall clock reaches the incidents, and a backfill never
//! does it: its incidents depend on the files alone. Changes it makes are logged and committed at
//! once, with the engine state, so a restart neither loses nor repeats them.
//!
//! Live, over files, a write to the data dir that fails (a full disk) pauses ingestion rather than
//! ending the run: the pipeline is torn down as a crash would tear it down, waits until the data
//! dir takes a probe write, and opens again from the last commit, as a restart does (see
//! [`follow`]). A backfill, and a run over stdin (a pipe cannot be read again), end with the error.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::demo;
use crate::detect::lines::{BlockHits, LineScanner};
use crate::detect::matcher::Matcher;
use crate::detect::pack;
use crate::detect::rules::{RuleError, RuleSet};
use crate::event::{Events, Timestamp};
use crate::incident::engine::{Engine, EngineConfig, EngineState};
use crate::incident::group::GroupKey;
use crate::incident::{Change, ChangeKind};
use crate::parse::{Format, ParseError, Parser};
use crate::runbook::Runbook;
use crate::serve::metrics::{Metrics, SourceCounters};
use crate::source::blocks::Blocks;
use crate::source::checkpoint::{Checkpoints, DecodeError};
use crate::source::operator::{Operator, OperatorError};
use crate::source::push::Push;
use crate::source::replay::{self, ReplayError};
use crate::source::tail::{self, TailConfig, TailError};
use crate::source::{Input, SourceSpec, stdin};
use crate::store::clickhouse_sink::{SinkConfig, SinkError, Spool};
use crate::store::incidents::{IncidentLog, IncidentLogError};
use crate::store::index::{EventIndex, IndexError, IndexSink, RuleTag};
use crate::store::silences::{SilenceStore, SilenceStoreError, Stamp};
use crate::store::snapshot::{SnapshotError, Snapshots};
use crate::store::vocab::Vocab;

/// Bound of the source → pipeline channel (in chunks of up to 256 KiB).
const CHANNEL_BOUND: usize = 64;
/// Live: how often, at most, an idle pipeline looks at the wall clock (see [`Pipeline::pass_idle_time`]).
const IDLE_TICK: Duration = Duration::from_millis(500);
/// A quiet file makes what was read searchable at once, but no sooner than this after the last
/// commit: with several files streaming, one or another goes quiet many times a second, and
/// each commit writes the engine's state (megabytes under a busy rate rule). The soak measured
/// 9 commits a second without it.
const QUIET_COMMIT_GAP: Duration = Duration::from_millis(250);
/// Live: how often, at most, the sources' lag is measured (a `stat` per file followed).
const LAG_EVERY: Duration = Duration::from_secs(1);
/// Live: how often, at most, the silences file is looked at (a `stat`) for a new version.
const SILENCES_EVERY: Duration = Duration::from_secs(1);
/// tantivy writer memory budget, by default.
pub const INDEX_HEAP: usize = 128 * 1024 * 1024;

/// Documents per segment a backfill compacts to (~220 MB of index for logs like the demo's).
pub const COMPACT_DOCS: u32 = 2_000_000;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("runbook {path}: {source}")]
    Runbook {
        path: String,
        source: std::io::Error,
    },
    #[error("index: {0}")]
    Index(#[from] IndexError),
    #[error("incident log: {0}")]
    IncidentLog(#[from] IncidentLogError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] DecodeError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("commit payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    Tail(#[from] TailError),
    #[error("source {service}: {source}")]
    Parse { service: String, source: ParseError },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the source thread stopped unexpectedly")]
    SourceThread,
    #[error(transparent)]
    ClickHouse(#[from] SinkError),
    #[error("silences: {0}")]
    Silences(#[from] SilenceStoreError),
    /// A storage error with the OS error behind it, which tantivy does not report.
    #[error("data dir {dir}: {io}")]
    DataDir {
        dir: String,
        io: std::io::Error,
        source: Box<PipelineError>,
    },
}

impl PipelineError {
    /// A write to the data dir failed (a full disk, a quota, an I/O error): a live run pauses and
    /// goes on from its last commit once the data dir can be written, rather than stopping.
    fn is_storage(&self) -> bool {
        matches!(
            self,
            PipelineError::Index(_)
                | PipelineError::IncidentLog(
                    IncidentLogError::Write { .. } | IncidentLogError::Open { .. }
                )
                | PipelineError::Snapshot(SnapshotError::Io { .. })
                | PipelineError::ClickHouse(SinkError::Io { .. })
                | PipelineError::DataDir { .. }
        )
    }

    /// A storage error that ends a command, with the OS error a probe write to the data dir
    /// meets now (a full disk), when it meets one.
    fn explained(self, data_dir: &Path) -> PipelineError {
        if !self.is_storage() || matches!(self, PipelineError::DataDir { .. }) {
            return self;
        }
        match probe(data_dir) {
            Err(io) => PipelineError::DataDir {
                dir: data_dir.display().to_string(),
                io,
                source: Box::new(self),
            },
            Ok(()) => self,
        }
    }
}

/// What a pipeline run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub sources: Vec<SourceSpec>,
    /// A folder of rule files replacing the embedded pack.
    pub rules_dir: Option<PathBuf>,
    /// A runbook replacing the embedded one.
    pub runbook: Option<PathBuf>,
    /// How often a live run commits the index (and its checkpoint).
    /// The index writer's memory budget in bytes (at least 15 MB; one writer thread per 15 MB).
    pub index_heap: usize,
    pub commit_every: Duration,
    pub engine: EngineConfig,
    /// Show a progress bar on a terminal (backfill).
    pub progress: bool,
    /// Scan: the size of the blocks read, searched and parsed in parallel.
    pub scan_block: usize,
    /// Live runs: delete old events periodically (a profile's `[retention]`).
    pub retention: Option<crate::store::retention::Policy>,
    /// Live runs: take pushed lines (`POST /api/v1/ingest`) from this handle as further sources.
    pub push: Option<Push>,
    /// Live runs: take operators' acknowledgements and silence changes (the API) from this handle.
    pub operator: Option<Operator>,
    /// The profile's maintenance windows (`[[maintenance]]`).
    pub maintenance: Vec<crate::incident::maintenance::Maintenance>,
    /// Live runs: the counters `/metrics` shows (events, bytes and lag per source, matches per
    /// rule, open incidents, commit latency), added to per batch.
    pub metrics: Option<Arc<Metrics>>,
    /// Also write every event and incident change to ClickHouse (through the spool in
    /// `<data_dir>/clickhouse`).
    pub clickhouse: Option<SinkConfig>,
    /// Add the events to the local index (false: `--no-local-index`, ClickHouse holds them; the
    /// index then keeps only its commits' checkpoints).
    pub local_index: bool,
}

impl Settings {
    pub fn new(data_dir: PathBuf, sources: Vec<SourceSpec>) -> Settings {
        Settings {
            data_dir,
            sources,
            rules_dir: None,
            runbook: None,
            commit_every: Duration::from_secs(2),
            index_heap: INDEX_HEAP,
            engine: EngineConfig::default(),
            progress: false,
            scan_block: SCAN_BLOCK,
            retention: None,
            push: None,
            operator: None,
            maintenance: Vec::new(),
            clickhouse: None,
            local_index: true,
            metrics: None,
        }
    }
    pub fn index_dir(&self) -> PathBuf {
        index_dir(&self.data_dir)
    }
    /// The ClickHouse sink's spool.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("clickhouse")
    }
    pub fn incident_log(&self) -> PathBuf {
        incident_log(&self.data_dir)
    }
}

/// Where the tantivy index of a data dir lives.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

/// Where the incident log of a data dir lives.
pub fn incident_log(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::store::incidents::LOG_FILE)
}

/// What a run did, stage by stage. `lines` = lines in events; `events` = events indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    pub flagged: u64,
    pub redacted: u64,
    pub matches: u64,
    /// Scan: lines the pack's text patterns match (what `rg -c -f` counts).
    pub matching_lines: u64,
    /// Scan: events parsed whole (the others were skimmed over).
    pub parsed: u64,
    pub opened: u64,
    pub resolved: u64,
    pub open_at_end: u64,
    pub commits: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{} files, {} bytes, {} lines → {} events ({} flagged, {} redacted), {} matches, \
             {} incidents opened, {} resolved, {} open; {:.1} s ({:.1} MB/s)",
            self.files,
            self.bytes,
            self.lines,
            self.events,
            self.flagged,
            self.redacted,
            self.matches,
            self.opened,
            self.resolved,
            self.open_at_end,
            secs,
            self.bytes as f64 / secs / 1e6
        )?;
        if self.matching_lines > 0 || self.parsed > 0 {
            write!(
                f,
                "; {} lines match the rules' patterns, {} events parsed whole",
                self.matching_lines, self.parsed
            )?;
        }
        Ok(())
    }
}

/// Load the rules and the runbook the settings name (or the embedded ones).
pub fn load_rules(settings: &Settings) -> Result<(Arc<RuleSet>, Arc<Runbook>), PipelineError> {
    let rules = pack::rules_from(settings.rules_dir.as_deref())?;
    let runbook = pack::runbook_from(settings.runbook.as_deref()).map_err(|source| {
        PipelineError::Runbook {
            path: settings
                .runbook
                .as_deref()
                .map_or_else(String::new, |p| p.display().to_string()),
            source,
        }
    })?;
    for problem in rules.link_errors(&runbook) {
        tracing::warn!("{problem} (incidents of this rule carry no runbook steps)");
    }
    Ok((Arc::new(rules), Arc::new(runbook)))
}

/// What each index commit stores beside its events (tantivy's commit payload), all as of the same
/// moment: the files' offsets, the incident log's last sequence number and the engine's state (in
/// the numbered snapshot the payload names, see `store::snapshot`). A restart (after a clean stop
/// or a `kill -9`) reads the files from those offsets, cuts the incident log back to that number
/// and goes on from that engine state, so every line is indexed once and every match counted
/// once, whenever the previous run stopped.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Payload {
    #[serde(flatten)]
    checkpoints: Checkpoints,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incident_seq: Option<u64>,
    /// The engine state's snapshot number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine_snapshot: Option<u64>,
    /// The engine state itself, as indexes written before snapshots stored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    engine: Option<EngineState>,
}

/// [`Payload`] by reference, for writing.
#[derive(serde::Serialize)]
struct PayloadRef<'a> {
    #[serde(flatten)]
    checkpoints: &'a Checkpoints,
    incident_seq: Option<u64>,
    engine_snapshot: Option<u64>,
}

impl Payload {
    fn of(index: &EventIndex) -> Result<Payload, PipelineError> {
        Ok(match index.last_payload()? {
            Some(text) if !text.trim().is_empty() => serde_json::from_str(&text)?,
            _ => Payload::default(),
        })
    }

    /// The engine state the commit stands for: its snapshot, or the inline state of older indexes.
    fn engine_state(
        &mut self,
        snapshots: &Snapshots,
    ) -> Result<Option<EngineState>, PipelineError> {
        match self.engine_snapshot {
            Some(seq) => Ok(Some(snapshots.read(seq)?)),
            None => Ok(self.engine.take()),
        }
    }
}

/// The checkpoints stored with the index's last commit (none before the first commit).
pub fn stored_checkpoints(index: &EventIndex) -> Result<Checkpoints, PipelineError> {
    Ok(match index.last_payload()? {
        Some(payload) => Checkpoints::decode(&payload)?,
        None => Checkpoints::default(),
    })
}

/// Per-file state while it is read.
struct OpenFile {
    parser: Parser,
    /// The configured source it belongs to; `None`: a pushed stream (never checkpointed).
    source: Option<usize>,
    path: PathBuf,
    size: u64,
    last_event: Option<Timestamp>,
    /// The source said the file has no new bytes: it does not hold the watermark back.
    idle: bool,
    /// Its source's counters, when the run keeps metrics.
    counters: Option<SourceCounters>,
}

/// The stages wired together, fed one [`Input`] at a time.
struct Pipeline<'a> {
    settings: &'a Settings,
    live: bool,
    matcher: Matcher,
    engine: Engine,
    sink: IndexSink,
    log: IncidentLog,
    checkpoints: Checkpoints,
    /// Where commits put the engine's state, and the number of the last one committed.
    snapshots: Snapshots,
    engine_snapshot: u64,
    files: HashMap<u64, OpenFile>,
    max_ts: Timestamp,
    /// Live: the event time known to be reached (the newest read, or what the engine had reached
    /// before a restart) and the wall-clock instant it was; idle time counts on from there.
    clock: (Timestamp, Instant),
    summary: Summary,
    last_commit: Instant,
    /// A file went quiet within [`QUIET_COMMIT_GAP`] of the last commit: commit once the gap has
    /// passed.
    commit_soon: bool,
    uncommitted: bool,
    /// When retention last ran (live runs with a policy); `None`: not yet in this run.
    last_retention: Option<Instant>,
    on_change: &'a mut dyn FnMut(&Change),
    progress: Option<ProgressBar>,
    /// The match counter of each rule, by rule index (empty without metrics).
    rule_matches: Vec<prometheus_client::metrics::counter::Counter>,
    /// When the lag was last measured.
    lag_measured: Option<Instant>,
    /// The ClickHouse sink, when configured.
    spool: Option<Spool>,
    /// The run's stop flag and the reader's: the reader of an attempt that failed to write is
    /// stopped alone (see [`follow`]), so the pipeline passes the run's stop on to it.
    stops: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>,
    /// Live runs: the inputs of pushed streams since the last commit, after the opening of every
    /// pushed stream still open. Nothing can read them again, so an attempt that fails to write
    /// hands them to the next one.
    unsaved: Vec<Input>,
    /// The opening input of each pushed stream, by fingerprint.
    pushed: HashMap<u64, Input>,
    /// Since when ingestion has been paused on a data dir that could not be written: the next
    /// commit that succeeds ends the pause (and says so).
    paused_since: Option<Instant>,
    /// A commit succeeded in this attempt.
    committed_once: bool,
    /// The silences file, the version the engine has, and when it was last looked at.
    silences: SilenceStore,
    silences_stamp: Option<Stamp>,
    silences_seen: Instant,
}

impl<'a> Pipeline<'a> {
    fn open(
        settings: &'a Settings,
        live: bool,
        on_change: &'a mut dyn FnMut(&Change),
    ) -> Result<(Pipeline<'a>, Checkpoints), PipelineError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| PipelineError::Io {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
        let (rules, runbook) = load_rules(settings)?;
        let matcher = Matcher::new(Arc::clone(&rules))?;
        let mut engine = Engine::new(rules, runbook, settings.engine.clone());
        let index = EventIndex::open_or_create(&settings.index_dir())?;
        let mut payload = Payload::of(&index)?;
        let snapshots = Snapshots::new(&settings.data_dir);
        let engine_state = payload.engine_state(&snapshots)?;
        let checkpoints = payload.checkpoints;
        let sink = index.writer(settings.index_heap)?;
        if !live {
            sink.merge_only_when_told();
        }
        // Incidents of earlier runs continue: same ids, counts, windows and deadlines.
        let (log, known) =
            IncidentLog::open_at_commit(&settings.incident_log(), payload.incident_seq)?;
        let restored = match engine_state {
            Some(state) => engine.restore_state(state),
            // An index written before engine states were stored: the log's snapshots.
            None => engine.restore(&known),
        };
        tracing::debug!(restored, "incident groups taken back");
        engine.set_maintenance(settings.maintenance.clone());
        let reached = engine.time_reached().unwrap_or_default();
        let rule_matches = match &settings.metrics {
            Some(metrics) => matcher
                .rules()
                .rules
                .iter()
                .map(|rule| metrics.rule(&rule.id))
                .collect(),
            None => Vec::new(),
        };
        if let Some(metrics) = &settings.metrics {
            metrics.set_open(engine.open_kinds());
        }
        let spool = match &settings.clickhouse {
            Some(config) => Some(Spool::open(&settings.spool_dir(), config.clone())?),
            None => None,
        };
        if let (Some(metrics), Some(spool)) = (&settings.metrics, &spool) {
            metrics.watch_clickhouse(spool.watch_handle());
        }
        let pipeline = Pipeline {
            settings,
            live,
            matcher,
            engine,
            sink,
            log,
            checkpoints: checkpoints.clone(),
            snapshots,
            engine_snapshot: payload.engine_snapshot.unwrap_or(0),
            files: HashMap::new(),
            max_ts: Timestamp::default(),
            clock: (reached, Instant::now()),
            summary: Summary::default(),
            last_commit: Instant::now(),
            commit_soon: false,
            uncommitted: false,
            last_retention: None,
            on_change,
            progress: None,
            rule_matches,
            lag_measured: None,
            spool,
            stops: None,
            unsaved: Vec::new(),
            pushed: HashMap::new(),
            paused_since: None,
            committed_once: false,
            silences: SilenceStore::new(&settings.data_dir),
            silences_stamp: None,
            silences_seen: Instant::now(),
        };
        Ok((pipeline, checkpoints))
    }

    /// Consume inputs until `Done` (or the source hangs up).
    fn drive(&mut self, rx: &Receiver<Input>) -> Result<(), PipelineError> {
        self.reload_silences(true)?;
        let tick = if self.live {
            self.settings.commit_every.min(IDLE_TICK)
        } else {
            self.settings.commit_every
        };
        loop {
            self.pass_stop_on();
            let wait = if self.commit_soon {
                QUIET_COMMIT_GAP
                    .saturating_sub(self.last_commit.elapsed())
                    .max(Duration::from_millis(1))
                    .min(tick)
            } else {
                tick
            };
            let input = match rx.recv_timeout(wait) {
                Ok(input) => input,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.pass_idle_time()?;
                    self.maybe_reload_silences()?;
                    self.maybe_commit()?;
                    self.maybe_measure_lag();
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if self.handle(input)? {
                break;
            }
            self.maybe_reload_silences()?;
            self.maybe_commit()?;
            self.maybe_measure_lag();
        }
        self.close_push(rx)?;
        self.finish()
    }

    /// Live: at most every [`SILENCES_EVERY`], take a new version of the silences file.
    fn maybe_reload_silences(&mut self) -> Result<(), PipelineError> {
        if self.live && self.silences_seen.elapsed() >= SILENCES_EVERY {
            self.reload_silences(false)?;
        }
        Ok(())
    }

    /// Hand the engine the silences file's silences when it changed since the engine last had
    /// them (`first`: at the start, whatever it is; a file that cannot be read then stops the
    /// command, naming it). Later, an unreadable version is said and the silences in force
    /// are kept: an operator's typo must not stop ingestion.
    fn reload_silences(&mut self, first: bool) -> Result<(), PipelineError> {
        self.silences_seen = Instant::now();
        let stamp = self.silences.stamp();
        if !first && stamp == self.silences_stamp {
            return Ok(());
        }
        let silences = match self.silences.load() {
            Ok(silences) => silences,
            Err(error) if !first => {
                tracing::error!(%error, "the silences file changed but cannot be read: the silences in force are kept");
                self.silences_stamp = stamp;
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        self.silences_stamp = stamp;
        tracing::debug!(silences = silences.len(), "silences taken");
        // Live, an operator's silence and its expiry are in wall-clock time and take effect
        // now; a backfill applies them on its events' time alone.
        let now = self.live.then(Timestamp::now);
        let changes = self.engine.set_silences(silences, now);
        if !changes.is_empty() {
            self.emit(changes)?;
            self.uncommitted = true;
        }
        Ok(())
    }

    /// An operator's acknowledgement: the engine's change, logged and committed at once (an
    /// acknowledgement lost in a crash would let the incident page again), answered on `reply`.
    fn acknowledge(
        &mut self,
        id: crate::incident::IncidentId,
        ack: crate::incident::Ack,
        reply: &std::sync::mpsc::SyncSender<crate::source::operator::AckReply>,
    ) -> Result<(), PipelineError> {
        let change = match self.engine.acknowledge(&id, ack) {
            Ok(change) => change,
            Err(refused) => {
                let _ = reply.send(Err(OperatorError::Refused(refused.to_string())));
                return Ok(());
            }
        };
        let logged = self.emit(vec![change]);
        let logged = logged.and_then(|logged| {
            self.uncommitted = true;
            self.commit().map(|()| logged)
        });
        match logged {
            Ok(mut logged) => {
                if let Some(change) = logged.pop() {
                    let _ = reply.send(Ok(change));
                }
                Ok(())
            }
            Err(error) => {
                let _ = reply.send(Err(OperatorError::Refused(error.to_string())));
                Err(error)
            }
        }
    }

    /// Stop the reader when the run is stopped.
    fn pass_stop_on(&self) {
        if let Some((run, reader)) = &self.stops
            && run.load(Ordering::SeqCst)
        {
            reader.store(true, Ordering::SeqCst);
        }
    }

    /// Live runs: remember `input` if it belongs to a pushed stream (see [`Pipeline::unsaved`]).
    fn keep_unsaved(&mut self, input: &Input) {
        if !self.live {
            return;
        }
        let fingerprint = match input {
            Input::Pushed { fingerprint, .. } => {
                self.pushed.insert(*fingerprint, input.clone());
                *fingerprint
            }
            Input::Chunk(chunk) => chunk.fingerprint,
            Input::Idle { fingerprint }
            | Input::Stale { fingerprint }
            | Input::Closed { fingerprint } => *fingerprint,
            Input::Opened(_) | Input::Done | Input::Acknowledge { .. } | Input::SilencesChanged => {
                return;
            }
        };
        if self.pushed.contains_key(&fingerprint) {
            self.unsaved.push(input.clone());
        }
        if matches!(input, Input::Closed { .. }) {
            self.pushed.remove(&fingerprint);
        }
    }

    /// After a failed write: stop taking pushes and give back every pushed input not committed,
    /// those still in `rx` included (the files' inputs there are dropped: they are read again
    /// from the last commit).
    fn hand_over(&mut self, rx: &Receiver<Input>) -> Vec<Input> {
        if let Some(operator) = &self.settings.operator {
            operator.close();
        }
        if let Some(push) = self.settings.push.clone() {
            while !push.close() {
                if let Ok(input) = rx.recv_timeout(Duration::from_millis(10)) {
                    self.keep_unsaved(&input);
                }
            }
            // Every push is in the channel now, within its bound; what a reader still draining
            // its files sends behind them is not wanted.
            for _ in 0..CHANNEL_BOUND {
                let Ok(input) = rx.try_recv() else { break };
                self.keep_unsaved(&input);
            }
        }
        std::mem::take(&mut self.unsaved)
    }

    /// Live runs taking pushes: stop taking them, and apply every pushed input already handed
    /// over (each was acknowledged to its client, so each must be indexed). A push in the middle of
    /// handing a batch over may be waiting for room in `rx`: keep reading until it is through.
    fn close_push(&mut self, rx: &Receiver<Input>) -> Result<(), PipelineError> {
        if let Some(operator) = self.settings.operator.as_ref().filter(|_| self.live) {
            operator.close();
        }
        let Some(push) = self.settings.push.clone().filter(|_| self.live) else {
            return Ok(());
        };
        while !push.close() {
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok(input) => {
                    self.handle(input)?;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Anything after the source's `Done` is a push's (a second `Done` changes nothing).
        while let Ok(input) = rx.try_recv() {
            self.handle(input)?;
        }
        Ok(())
    }

    /// Apply one input; true when it was `Done`.
    /// Start reading a file (or a pushed stream: `source` None) of `service` in `format`, at byte
    /// `start` when it is known (a pushed stream's parser takes its first chunk's offset).
    fn open_file(
        &mut self,
        fingerprint: u64,
        service: &str,
        format: Format,
        source: Option<usize>,
        path: PathBuf,
        start: Option<u64>,
    ) -> Result<(), PipelineError> {
        let mut parser =
            Parser::new(service, format, fingerprint).map_err(|source| PipelineError::Parse {
                service: service.to_string(),
                source,
            })?;
        if let Some(start) = start {
            parser = parser.starting_at(start);
        }
        self.summary.files += 1;
        let counters = self.settings.metrics.as_ref().map(|m| m.source(service));
        self.files.insert(
            fingerprint,
            OpenFile {
                parser,
                source,
                path,
                size: start.unwrap_or(0),
                last_event: None,
                idle: false,
                counters,
            },
        );
        Ok(())
    }

    fn handle(&mut self, input: Input) -> Result<bool, PipelineError> {
        self.keep_unsaved(&input);
        match input {
            Input::Opened(info) => {
                let settings = self.settings;
                let spec = &settings.sources[info.source];
                self.open_file(
                    info.fingerprint,
                    &spec.service,
                    spec.format.clone(),
                    Some(info.source),
                    info.path,
                    Some(info.start),
                )?;
                // A file just found is measured at once: its whole unread length is its lag.
                self.lag_measured = None;
                // Record the file at once: if it is rotated away and logwarden is killed before
                // the next periodic commit, a restart still knows it and reads its rotated copy.
                if self.live {
                    self.commit()?;
                }
            }
            Input::Pushed { fingerprint, spec } => {
                tracing::info!(source = %spec.service, format = %spec.format, "pushed source opened");
                self.open_file(
                    fingerprint,
                    &spec.service,
                    spec.format,
                    None,
                    spec.path,
                    None,
                )?;
            }
            Input::Chunk(chunk) => {
                let Some(file) = self.files.get_mut(&chunk.fingerprint) else {
                    tracing::error!(
                        fingerprint = chunk.fingerprint,
                        "chunk of a file never opened"
                    );
                    return Ok(false);
                };
                file.size = file.size.max(chunk.end());
                file.idle = false;
                self.summary.bytes += chunk.bytes.len() as u64;
                if let Some(counters) = &file.counters {
                    counters.bytes(chunk.bytes.len());
                }
                if let Some(bar) = &self.progress {
                    bar.inc(chunk.bytes.len() as u64);
                }
                // A chunk flagged eof also finishes the parser.
                let events = file.parser.parse(&chunk);
                self.process(chunk.fingerprint, events)?;
            }
            Input::Idle { fingerprint } => {
                if let Some(file) = self.files.get_mut(&fingerprint) {
                    file.idle = true;
                    let events = file.parser.flush();
                    self.process(fingerprint, events)?;
                }
                // A quiet moment: make what was read searchable now rather than at the next tick
                // (or as soon as the last commit is QUIET_COMMIT_GAP old).
                if self.uncommitted {
                    self.advance_live()?;
                    if self.last_commit.elapsed() >= QUIET_COMMIT_GAP {
                        self.commit()?;
                    } else {
                        self.commit_soon = true;
                    }
                }
            }
            Input::Stale { fingerprint } => {
                if let Some(file) = self.files.get_mut(&fingerprint) {
                    let events = file.parser.finish();
                    if !events.events.is_empty() {
                        self.process(fingerprint, events)?;
                        self.advance_live()?;
                        self.commit()?;
                    }
                }
            }
            Input::Closed { fingerprint } => {
                if let Some(file) = self.files.get_mut(&fingerprint) {
                    let events = file.parser.finish();
                    self.process(fingerprint, events)?;
                }
                self.record_checkpoint(fingerprint);
                self.files.remove(&fingerprint);
            }
            Input::Done => return Ok(true),
            Input::Acknowledge { id, ack, reply } => self.acknowledge(id, ack, &reply)?,
            Input::SilencesChanged => self.reload_silences(false)?,
        }
        self.advance_live()?;
        self.pass_idle_time()?;
        Ok(false)
    }

    fn process(&mut self, fingerprint: u64, events: Events) -> Result<(), PipelineError> {
        if events.is_empty() {
            return Ok(());
        }
        let matches = self.matcher.scan(&events);
        self.summary.matches += matches.len() as u64;
        for m in &matches {
            if let Some(counter) = self.rule_matches.get(m.rule) {
                counter.inc();
            }
        }
        let rules = &self.matcher.rules().rules;
        let tags: Vec<RuleTag> = matches
            .iter()
            .filter_map(|m| {
                let rule = rules.get(m.rule)?;
                Some(RuleTag {
                    event: m.event,
                    rule: rule.id.clone(),
                    class: rule.class.as_str(),
                    group: GroupKey::of(rule, m).render(),
                })
            })
            .collect();
        self.engine.push(matches);
        for ev in &events {
            self.summary.lines += u64::from(ev.lines);
            if !ev.flags.is_empty() {
                self.summary.flagged += 1;
            }
            if ev.flags.contains(crate::event::Flags::REDACTED) {
                self.summary.redacted += 1;
            }
            self.max_ts = self.max_ts.max(ev.ts);
        }
        self.clock = (self.clock.0.max(self.max_ts), Instant::now());
        if let Some(file) = self.files.get_mut(&fingerprint) {
            let newest = events.iter().map(|e| e.ts).max();
            file.last_event = newest.max(file.last_event);
            if let Some(counters) = &file.counters {
                counters.events(events.len());
            }
        }
        self.summary.events += events.len() as u64;
        if let Some(spool) = &mut self.spool {
            spool.add_events(&events, &tags)?;
        }
        if self.settings.local_index {
            self.sink.add_tagged(&events, &tags)?;
        }
        self.uncommitted = true;
        Ok(())
    }

    /// Live runs raise incidents as soon as the watermark allows; once every file is caught up
    /// (idle), at once.
    fn advance_live(&mut self) -> Result<(), PipelineError> {
        if self.live {
            let changes = if self.files.values().all(|f| f.idle) {
                self.engine.catch_up(self.max_ts)
            } else if let Some(watermark) = self.watermark() {
                self.engine.advance(watermark)
            } else {
                Vec::new()
            };
            self.emit(changes)?;
        }
        Ok(())
    }

    /// Live, every source idle (nothing in flight): tell the engine the event time the wall clock
    /// says has been reached, so quiet incidents resolve though no line comes to say so. What it
    /// changes is logged and committed at once (with the engine state that made it), so a restart
    /// neither loses a resolution nor makes it twice.
    fn pass_idle_time(&mut self) -> Result<(), PipelineError> {
        if !self.live || !self.files.values().all(|f| f.idle) {
            return Ok(());
        }
        let (reached, at) = self.clock;
        let idle = i64::try_from(at.elapsed().as_micros()).unwrap_or(i64::MAX);
        let now = Timestamp(reached.0.saturating_add(idle));
        let changes = self.engine.pass_time(now);
        if changes.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            changes = changes.len(),
            %now,
            "idle sources: event time passed by the wall clock"
        );
        self.emit(changes)?;
        self.commit()
    }

    /// Event time up to which every file still being written has been read: the oldest "newest
    /// event" among files with bytes still coming. Files that went idle do not hold it back, so one
    /// fast file cannot push the watermark past lines another file has not delivered yet. A file
    /// being read that has given no event yet holds it back entirely (`None`): its first lines may
    /// be older than anything seen.
    fn watermark(&self) -> Option<Timestamp> {
        self.files
            .values()
            .filter(|f| !f.idle)
            .map(|f| f.last_event)
            .try_fold(self.max_ts, |low, last| Some(low.min(last?)))
    }

    /// Log, spool and publish `changes`; gives them back numbered as logged.
    fn emit(&mut self, mut changes: Vec<Change>) -> Result<Vec<Change>, PipelineError> {
        if changes.is_empty() {
            return Ok(changes);
        }
        self.log.append(&mut changes)?;
        if let Some(spool) = &mut self.spool {
            spool.add_changes(&changes)?;
        }
        for change in &changes {
            match change.kind {
                ChangeKind::Opened | ChangeKind::Reopened => self.summary.opened += 1,
                ChangeKind::Resolved => self.summary.resolved += 1,
                ChangeKind::Updated
                | ChangeKind::Escalated
                | ChangeKind::Silenced
                | ChangeKind::Unsilenced
                | ChangeKind::Acknowledged => {}
            }
            if let Some(bar) = &self.progress {
                bar.suspend(|| (self.on_change)(change));
            } else {
                (self.on_change)(change);
            }
        }
        if let Some(metrics) = &self.settings.metrics {
            metrics.set_open(self.engine.open_kinds());
        }
        Ok(changes)
    }

    /// Live runs with metrics: at most every [`LAG_EVERY`], how many bytes of each source's files
    /// are on disk but not read yet (the file's length now less the offset read). A file rotated
    /// away or truncated is shorter than what was read and counts as nothing behind. A source
    /// none of whose files is open yet is not measured (absent, not 0: nothing is known of it).
    /// Pushed streams and stdin have no end to measure against.
    fn maybe_measure_lag(&mut self) {
        let Some(metrics) = self.settings.metrics.as_ref().filter(|_| self.live) else {
            return;
        };
        if self.lag_measured.is_some_and(|at| at.elapsed() < LAG_EVERY) {
            return;
        }
        self.lag_measured = Some(Instant::now());
        let mut lag: BTreeMap<String, u64> = BTreeMap::new();
        for file in self.files.values() {
            let Some(source) = file.source else {
                continue;
            };
            if file.path.as_os_str() == stdin::STDIN_PATH {
                continue;
            }
            let on_disk = match std::fs::metadata(&file.path) {
                Ok(meta) => meta.len(),
                Err(error) => {
                    tracing::debug!(path = %file.path.display(), %error, "lag not measured");
                    continue;
                }
            };
            let service = &self.settings.sources[source].service;
            *lag.entry(service.clone()).or_default() += on_disk.saturating_sub(file.size);
        }
        metrics.set_lag(lag);
    }

    fn record_checkpoint(&mut self, fingerprint: u64) {
        if let Some(file) = self.files.get(&fingerprint) {
            let Some(source) = file.source else {
                return; // a pushed stream cannot be resumed: nothing to remember
            };
            if file.path.as_os_str() == stdin::STDIN_PATH {
                return; // a pipe cannot be resumed: nothing to remember
            }
            let spec = &self.settings.sources[source];
            self.checkpoints.advance(
                fingerprint,
                file.path.clone(),
                &spec.service,
                file.parser.checkpoint(),
                file.size,
                file.last_event,
            );
        }
    }

    fn commit(&mut self) -> Result<(), PipelineError> {
        let fingerprints: Vec<u64> = self.files.keys().copied().collect();
        for fp in fingerprints {
            self.record_checkpoint(fp);
        }
        // What ClickHouse is to get is durable before the checkpoint moves past it.
        if let Some(spool) = &mut self.spool {
            spool.seal()?;
        }
        let snapshot = self.engine_snapshot + 1;
        self.snapshots.write(snapshot, &self.engine.state_view())?;
        let payload = serde_json::to_string(&PayloadRef {
            checkpoints: &self.checkpoints,
            incident_seq: Some(self.log.last_seq()),
            engine_snapshot: Some(snapshot),
        })?;
        let started = Instant::now();
        let committed = self.sink.commit(&payload);
        if let Some(metrics) = &self.settings.metrics {
            let error = committed.as_ref().err().map(ToString::to_string);
            metrics.committed(started.elapsed(), error);
        }
        committed?;
        self.committed_once = true;
        self.unsaved = self.pushed.values().cloned().collect();
        if let Some(since) = self.paused_since.take() {
            tracing::warn!(
                data_dir = %self.settings.data_dir.display(),
                paused_secs = since.elapsed().as_secs(),
                "ingestion resumed: the data dir can be written again; reading goes on from the last commit"
            );
            if let Some(metrics) = &self.settings.metrics {
                metrics.storage_paused(None);
            }
        }
        self.engine_snapshot = snapshot;
        self.snapshots.prune(snapshot);
        self.summary.commits += 1;
        self.uncommitted = false;
        self.commit_soon = false;
        self.last_commit = Instant::now();
        tracing::debug!(events = self.summary.events, "committed");
        Ok(())
    }

    /// Live runs commit every `commit_every`. A backfill commits once, at the end: its incidents
    /// need every file's matches in event-time order, so until then every match waits in the
    /// engine, and a commit would have to store them all (the exactly-once payload) each time —
    /// quadratic work and memory on a big backfill. A backfill that is killed starts again from
    /// the last commit, which the index and the incident log agree on.
    fn maybe_commit(&mut self) -> Result<(), PipelineError> {
        self.maybe_apply_retention()?;
        let since = self.last_commit.elapsed();
        if self.live
            && self.uncommitted
            && (since >= self.settings.commit_every
                || (self.commit_soon && since >= QUIET_COMMIT_GAP))
        {
            self.commit()?;
        }
        Ok(())
    }

    /// Live runs with a retention policy: at the first chance and then every `policy.every`,
    /// delete the events older than the policy allows in a commit of their own (the checkpoint
    /// rides along as always), then merge the segments that held them.
    fn maybe_apply_retention(&mut self) -> Result<(), PipelineError> {
        let Some(policy) = self.settings.retention.filter(|_| self.live) else {
            return Ok(());
        };
        if self
            .last_retention
            .is_some_and(|at| at.elapsed() < policy.every)
        {
            return Ok(());
        }
        self.last_retention = Some(Instant::now());
        let cutoff = Timestamp::now().plus_secs(-policy.older_than_secs);
        self.sink.delete_before(cutoff)?;
        self.commit()?;
        let merged = self.sink.merge_deleted()?;
        tracing::info!(%cutoff, merged, "retention applied");
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PipelineError> {
        let fingerprints: Vec<u64> = self.files.keys().copied().collect();
        for fp in fingerprints {
            let Some(file) = self.files.get_mut(&fp) else {
                continue;
            };
            // A live file may still be written: keep its partial last line for the next run.
            let events = if self.live {
                file.parser.flush()
            } else {
                file.parser.finish()
            };
            self.process(fp, events)?;
        }
        let changes = self.engine.finish();
        self.emit(changes)?;
        self.commit()?;
        self.summary.open_at_end = self.engine.open_incidents().len() as u64;
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        Ok(())
    }
}

/// Ingest existing files once: every source whole (rotated `.gz` included), skipping what the
/// index already holds; incidents are computed in event-time order across all files. A write to
/// the data dir that fails ends it (with the OS error: a full disk); run it again once there is
/// space, and it goes on from its last commit.
pub fn backfill(
    settings: &Settings,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Summary, PipelineError> {
    backfill_files(settings, on_change).map_err(|error| error.explained(&settings.data_dir))
}

fn backfill_files(
    settings: &Settings,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let (mut pipeline, checkpoints) = Pipeline::open(settings, false, on_change)?;
    if settings.progress && std::io::stderr().is_terminal() {
        let total: u64 = settings
            .sources
            .iter()
            .flat_map(|s| crate::source::discover::expand(&s.path).unwrap_or_default())
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ) {
            bar.set_style(style);
        }
        pipeline.progress = Some(bar);
    }
    let sources = settings.sources.clone();
    let stop = Arc::new(AtomicBool::new(false));
    drive_from(
        pipeline,
        checkpoints,
        started,
        "replay",
        &stop,
        move |checkpoints, tx, _| {
            replay::replay(&sources, &checkpoints, &tx)?;
            Ok(())
        },
        &mut Carry::default(),
    )
}

/// Follow the sources until `stop` is set; then read what is left, commit and return.
///
/// A write to the data dir that fails (a full disk) pauses ingestion instead of ending the run:
/// see [`follow`].
pub fn run(
    settings: &Settings,
    tail_cfg: TailConfig,
    stop: Arc<AtomicBool>,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Summary, PipelineError> {
    let sources = settings.sources.clone();
    follow(
        settings,
        stop,
        on_change,
        "tail",
        true,
        move |checkpoints, tx, stop| {
            tail::tail(&sources, &checkpoints, &tail_cfg, &tx, &stop)?;
            Ok(())
        },
    )
}

/// Read standard input as the one source `settings` names (its path is `-`) until the pipe ends
/// or `stop` is set; then commit and return. A pipe cannot be read again, so a failed write to
/// the data dir ends this run (with the error).
pub fn run_stdin(
    settings: &Settings,
    idle_after: Duration,
    stop: Arc<AtomicBool>,
    on_change: &mut dyn FnMut(&Change),
) -> Result<Summary, PipelineError> {
    follow(
        settings,
        stop,
        on_change,
        "stdin",
        false,
        move |_, tx, stop| {
            stdin::follow(std::io::stdin(), idle_after, &tx, &stop).map_err(|source| {
                PipelineError::Io {
                    path: stdin::STDIN_PATH.into(),
                    source,
                }
            })?;
            Ok(())
        },
    )
}

/// What an attempt of a live run that failed to write hands to the next one.
#[derive(Default)]
struct Carry {
    /// Pushed inputs not committed (see [`Pipeline::unsaved`]): applied first by the next attempt.
    inputs: Vec<Input>,
    /// The attempt committed at least once (a pause it was started in is over).
    committed: bool,
}

/// A live run: `read` feeds the pipeline from its own thread until it sends `Done`.
///
/// When `resumable` (the sources are files, read again from a checkpoint), a write to the data
/// dir that fails — the index, the incident log, a state snapshot, the ClickHouse spool; a full
/// disk most often — does not end the run. Ingestion pauses: the attempt is torn down as a crash
/// would be (nothing after the last commit is durable), the reader stops, the error is logged
/// once (with the data dir and the OS error) and `/api/v1/health` says so, and once a probe write
/// to the data dir succeeds (retried with backoff) the pipeline opens again from the last
/// commit — offsets, incident log, engine state — exactly as a restart does, so nothing is lost
/// or indexed twice. Pushed batches not committed are kept in memory and applied again;
/// changes the feed was already given are not given again.
fn follow(
    settings: &Settings,
    stop: Arc<AtomicBool>,
    on_change: &mut dyn FnMut(&Change),
    name: &str,
    resumable: bool,
    read: impl Fn(Checkpoints, SyncSender<Input>, Arc<AtomicBool>) -> Result<(), PipelineError>
    + Send
    + Clone
    + 'static,
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    // An attempt after a failed write derives again the changes made since the last commit,
    // with the same sequence numbers: the feed has had them already.
    let mut published = 0u64;
    let mut publish_once = |change: &Change| {
        if change.seq > published {
            published = change.seq;
            on_change(change);
        }
    };
    let mut outage: Option<Outage> = None;
    let mut carry = Carry::default();
    loop {
        let stopped = stop.load(Ordering::SeqCst);
        let error = match Pipeline::open(settings, true, &mut publish_once) {
            Ok((mut pipeline, checkpoints)) => {
                pipeline.paused_since = outage.as_ref().map(|o| o.since);
                let attempt = drive_from(
                    pipeline,
                    checkpoints,
                    started,
                    name,
                    &stop,
                    read.clone(),
                    &mut carry,
                );
                match attempt {
                    Err(error)
                        if resumable && error.is_storage() && !stop.load(Ordering::SeqCst) =>
                    {
                        error
                    }
                    done => return done.map_err(|error| error.explained(&settings.data_dir)),
                }
            }
            // Opening again fails as the attempt did while the data dir cannot be written (a
            // first opening that fails ends the run: the index may be another's, say).
            Err(error) if outage.is_some() && error.is_storage() && !stopped => error,
            Err(error) => return Err(error.explained(&settings.data_dir)),
        };
        if std::mem::take(&mut carry.committed) {
            outage = None;
        }
        let pause = outage.get_or_insert_with(|| Outage::new(settings));
        if !pause.wait(&error, &stop) {
            return Err(error.explained(&settings.data_dir));
        }
    }
}

/// The first wait after a failed write, and the longest.
const PAUSE_FIRST: Duration = Duration::from_millis(250);
const PAUSE_MAX: Duration = Duration::from_secs(5);
/// What a probe writes (and syncs) to the data dir to see whether it can be written again.
const PROBE_BYTES: usize = 64 << 10;

/// A live run's pause on a data dir that cannot be written (see [`follow`]).
struct Outage<'s> {
    settings: &'s Settings,
    since: Instant,
    /// The causes already logged (each is logged once).
    said: Vec<String>,
    delay: Duration,
}

impl<'s> Outage<'s> {
    fn new(settings: &'s Settings) -> Outage<'s> {
        Outage {
            settings,
            since: Instant::now(),
            said: Vec::new(),
            delay: PAUSE_FIRST,
        }
    }

    /// Say why ingestion is paused (once per distinct cause) and wait until the data dir takes a
    /// probe write, with backoff; false when the run is stopped meanwhile.
    fn wait(&mut self, error: &PipelineError, stop: &AtomicBool) -> bool {
        let dir = &self.settings.data_dir;
        // tantivy reports a failed write as a killed writer, without the OS error: the probe
        // finds it.
        let (cause, reason) = match probe(dir) {
            Err(io) => {
                let full = matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                );
                let reason = if full {
                    format!(
                        "the disk of the data dir {} is full ({io}): ingestion is paused and resumes, losing nothing, once there is space",
                        dir.display()
                    )
                } else {
                    format!(
                        "the data dir {} cannot be written ({io}): ingestion is paused and resumes, losing nothing, once it can",
                        dir.display()
                    )
                };
                (format!("data dir {}: {io}", dir.display()), reason)
            }
            Ok(()) => (
                format!("data dir {}: {error}", dir.display()),
                format!(
                    "a write to the data dir {} failed ({error}): ingestion is paused and resumes, losing nothing, once it succeeds",
                    dir.display()
                ),
            ),
        };
        if !self.said.contains(&cause) {
            tracing::error!(
                data_dir = %dir.display(),
                %error,
                "ingestion paused: {cause}; files stay unread past the last commit, nothing is lost, and reading goes on from there once the data dir can be written"
            );
            self.said.push(cause);
        }
        if let Some(metrics) = &self.settings.metrics {
            metrics.storage_paused(Some(reason));
        }
        loop {
            let until = Instant::now() + self.delay;
            while Instant::now() < until {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                #[allow(clippy::disallowed_methods)] // backing off while the data dir is full
                std::thread::sleep(Duration::from_millis(50));
            }
            self.delay = (self.delay * 2).min(PAUSE_MAX);
            match probe(dir) {
                Ok(()) => return true,
                Err(io) => tracing::debug!(data_dir = %dir.display(), error = %io, "still paused"),
            }
        }
    }
}

/// Write, sync and remove a small file in `dir`: whether the data dir can take writes again.
fn probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".logwarden-space-probe");
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[0u8; PROBE_BYTES])?;
        file.sync_all()
    });
    let removed = std::fs::remove_file(&path);
    written?;
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Drive an opened pipeline from `read`, run on its own thread, until it sends `Done`. An
/// attempt of a live run that fails to write puts what the next attempt needs in `carry`.
#[allow(clippy::too_many_arguments)]
fn drive_from(
    mut pipeline: Pipeline<'_>,
    checkpoints: Checkpoints,
    started: Instant,
    name: &str,
    stop: &Arc<AtomicBool>,
    read: impl FnOnce(Checkpoints, SyncSender<Input>, Arc<AtomicBool>) -> Result<(), PipelineError>
    + Send
    + 'static,
    carry: &mut Carry,
) -> Result<Summary, PipelineError> {
    let (tx, rx) = sync_channel(CHANNEL_BOUND);
    if let Some(spool) = &mut pipeline.spool {
        spool.watch(Arc::clone(stop));
    }
    // The reader has a stop of its own, so that it can be stopped alone after a failed write.
    let stop_reader = Arc::new(AtomicBool::new(stop.load(Ordering::SeqCst)));
    pipeline.stops = Some((Arc::clone(stop), Arc::clone(&stop_reader)));
    // Pushes hold a sender too, so the channel does not disconnect when the reader ends: a reader
    // that ends without `Done` (an error, a panic) says it on its way out.
    let push = pipeline.settings.push.clone().filter(|_| pipeline.live);
    let operator = pipeline.settings.operator.clone().filter(|_| pipeline.live);
    let done_on_exit = (push.is_some() || operator.is_some()).then(|| DoneOnDrop(tx.clone()));
    if let Some(push) = &push {
        push.connect(tx.clone());
    }
    if let Some(operator) = &operator {
        operator.connect(tx.clone());
    }
    let reader_stop = Arc::clone(&stop_reader);
    let reader = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _done = done_on_exit;
            read(checkpoints, tx, reader_stop)
        })
        .map_err(|source| PipelineError::Io {
            path: format!("{name} thread"),
            source,
        })?;
    // Pushed batches an earlier attempt took but could not commit come first.
    let mut driven = Ok(());
    for input in std::mem::take(&mut carry.inputs) {
        driven = pipeline.handle(input).map(|_| ());
        if driven.is_err() {
            break;
        }
    }
    if driven.is_ok() {
        driven = pipeline.drive(&rx);
    }
    carry.committed = pipeline.committed_once;
    if driven.is_err() {
        // Let the reader notice and end.
        stop_reader.store(true, Ordering::SeqCst);
        if pipeline.live {
            carry.inputs = pipeline.hand_over(&rx);
        }
    }
    drop(rx);
    let read = reader.join().map_err(|_| PipelineError::SourceThread)?;
    driven?;
    read?;
    pipeline.summary.elapsed = started.elapsed();
    let (settings, summary) = (pipeline.settings, std::mem::take(&mut pipeline.summary));
    // Everything but the writer and the ClickHouse sink goes now (the engine's memory is free
    // for the merges below).
    let (live, sink, spool) = {
        let p = pipeline;
        (p.live, p.sink, p.spool)
    };
    if let Some(spool) = spool {
        close_spool(spool, live)?;
    }
    if live {
        // A stopping run does not wait: merges in flight stop, the last commit's segments stay.
        drop(sink);
    } else {
        // A backfill ends compacted: fewer, larger segments make every later query open, plan
        // and tear down less (tantivy keeps the commit's payload across a merge).
        sink.compact(COMPACT_DOCS)?;
    }
    refresh_vocab(settings);
    Ok(summary)
}

/// How long a stopping live run waits for ClickHouse to take what the spool holds (the rest is
/// sent by the next run). A backfill waits until everything is delivered.
const CLICKHOUSE_GRACE: Duration = Duration::from_secs(10);

fn close_spool(spool: Spool, live: bool) -> Result<(), PipelineError> {
    let waiting = spool.watch_handle().status();
    if !live && waiting.batches > 0 {
        tracing::info!(
            batches = waiting.batches,
            bytes = waiting.bytes,
            failing = waiting.failing.as_deref().unwrap_or(""),
            "waiting for ClickHouse to take the spool"
        );
    }
    let closed = spool.close(live.then_some(CLICKHOUSE_GRACE))?;
    if closed.left_batches > 0 {
        tracing::warn!(
            batches = closed.left_batches,
            bytes = closed.left_bytes,
            "ClickHouse did not take everything in time: the rest waits in the spool for the next run"
        );
    }
    Ok(())
}

/// Sends `Done` when dropped (a second `Done` is harmless; a pipeline gone is ignored).
struct DoneOnDrop(SyncSender<Input>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Input::Done);
    }
}

/// Write the query vocabularies of the index's segments and remove stale ones, so that the first
/// query after a backfill does not pay for them. Not fatal: a query writes a missing one itself.
fn refresh_vocab(settings: &Settings) {
    let refreshed = EventIndex::open_existing(&settings.index_dir())
        .map_err(|e| e.to_string())
        .and_then(|index| {
            let searcher = index.searcher().map_err(|e| e.to_string())?;
            Vocab::new(&settings.data_dir, index.fields().raw)
                .refresh(&searcher)
                .map_err(|e| e.to_string())
        });
    if let Err(error) = refreshed {
        tracing::warn!(%error, "query vocabularies not written; queries will write them");
    }
}

/// Scan read size: big enough that the literal search runs long, small enough to stay in cache.
pub const SCAN_BLOCK: usize = 2 << 20;

/// Parse, match and raise incidents over files without indexing them (a runbook-aware grep),
/// streaming: memory stays bounded whatever the file size.
///
/// Each file is read in blocks cut at line ends. The line stage ([`LineScanner`]) searches every
/// block for the rules' literals (and the level probe's) on all cores; the parser then skims the
/// block in order, parsing only the entries that hold such a line or whose level may matter, while
/// the next blocks are being searched. The parsed entries go through the same [`Matcher`] and
/// engine as `backfill`, so a scan raises the incidents a backfill of the same files raises.
/// `on_match` sees every match with its event.
pub fn scan(
    settings: &Settings,
    on_match: &mut dyn FnMut(&crate::event::Event, &crate::detect::Match),
    on_change: &mut dyn FnMut(&Change),
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let (rules, runbook) = load_rules(settings)?;
    let matcher = Matcher::new(Arc::clone(&rules))?;
    let lines = LineScanner::new(Arc::clone(&rules)).map_err(RuleError::from)?;
    let mut engine = Engine::new(rules, runbook, settings.engine.clone());
    let mut summary = Summary::default();
    for spec in &settings.sources {
        for path in
            crate::source::discover::expand(&spec.path).map_err(|source| PipelineError::Io {
                path: spec.path.display().to_string(),
                source,
            })?
        {
            scan_file(
                settings.scan_block,
                spec,
                &path,
                &matcher,
                &lines,
                &mut engine,
                &mut summary,
                on_match,
            )?;
        }
    }
    for change in engine.finish() {
        match change.kind {
            ChangeKind::Opened | ChangeKind::Reopened => summary.opened += 1,
            ChangeKind::Resolved => summary.resolved += 1,
            _ => {}
        }
        on_change(&change);
    }
    summary.open_at_end = engine.open_incidents().len() as u64;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A scan's batch: blocks of one file with what the line stage found in each.
type ScanBatch = Vec<((u64, Vec<u8>), BlockHits)>;

#[allow(clippy::too_many_arguments)]
fn scan_file(
    block_size: usize,
    spec: &SourceSpec,
    path: &Path,
    matcher: &Matcher,
    lines: &LineScanner,
    engine: &mut Engine,
    summary: &mut Summary,
    on_match: &mut dyn FnMut(&crate::event::Event, &crate::detect::Match),
) -> Result<(), PipelineError> {
    let io_err = |source| PipelineError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut blocks = Blocks::new(
        crate::source::fingerprint::open_decoded(path).map_err(io_err)?,
        block_size,
    );
    // Enough blocks per batch to keep every core busy: the blocks of one batch are parsed while
    // those of the next are searched and those of the one after are read.
    let per_batch = 2 * rayon::current_num_threads().max(1);
    let read_batch = |blocks: &mut Blocks<_>| -> Result<Vec<(u64, Vec<u8>)>, PipelineError> {
        let mut batch = Vec::with_capacity(per_batch);
        while batch.len() < per_batch {
            match blocks.next_block().map_err(io_err)? {
                Some(block) => batch.push(block),
                None => break,
            }
        }
        Ok(batch)
    };
    let search = |batch: Vec<(u64, Vec<u8>)>| -> ScanBatch {
        batch
            .into_par_iter()
            .map(|(offset, bytes)| {
                let hits = lines.scan(offset, &bytes);
                ((offset, bytes), hits)
            })
            .collect()
    };
    let first = read_batch(&mut blocks)?;
    let Some((_, head)) = first.first() else {
        summary.files += 1;
        return Ok(());
    };
    let fingerprint = crate::source::fingerprint::of_head(head, true).unwrap_or(0);
    let mut parser =
        Parser::new(&spec.service, spec.format.clone(), fingerprint).map_err(|source| {
            PipelineError::Parse {
                service: spec.service.clone(),
                source,
            }
        })?;
    if !matcher.tries_everything() {
        parser = parser.skimming(matcher.min_level_alone());
    }
    let mut searched = search(first);
    let mut unsearched = read_batch(&mut blocks)?;
    loop {
        let last = unsearched.is_empty();
        // Parse and confirm this batch while the next one is searched and the one after read.
        let (read, (parsed, next_searched)) = std::thread::scope(|scope| {
            let reader = (!last).then(|| scope.spawn(|| read_batch(&mut blocks)));
            let work = rayon::join(
                || skim_batch(&mut parser, matcher, &searched, last),
                || search(std::mem::take(&mut unsearched)),
            );
            (reader.map(|r| r.join()), work)
        });
        for ((_, bytes), hits) in &searched {
            summary.bytes += bytes.len() as u64;
            summary.matching_lines += hits.matching_lines;
        }
        for (events, matches) in parsed {
            // Matches come in event order: walk both once.
            let mut at = events.iter().peekable();
            for m in &matches {
                while at.next_if(|e| e.id != m.event).is_some() {}
                if let Some(event) = at.peek() {
                    on_match(event, m);
                }
            }
            summary.matches += matches.len() as u64;
            engine.push(matches);
        }
        for ((_, bytes), _) in searched {
            blocks.recycle(bytes);
        }
        if last {
            break;
        }
        searched = next_searched;
        unsearched = match read {
            Some(Ok(batch)) => batch?,
            Some(Err(_)) => return Err(PipelineError::SourceThread),
            None => Vec::new(),
        };
    }
    let stats = parser.stats();
    summary.files += 1;
    summary.lines += stats.lines;
    summary.events += stats.events;
    summary.flagged += stats.flagged;
    summary.redacted += stats.redacted;
    summary.parsed += stats.events - parser.skipped();
    Ok(())
}

/// Parse and confirm one batch of searched blocks, in file order. Once the file's format is known,
/// the blocks are read by forks of `parser` on every core and joined in order; a block whose fork
/// may have read differently (see [`Parser::join`]) is read again by `parser` itself.
fn skim_batch(
    parser: &mut Parser,
    matcher: &Matcher,
    batch: &ScanBatch,
    last: bool,
) -> Vec<(crate::event::Events, Vec<crate::detect::Match>)> {
    let mut out = Vec::new();
    let mut blocks = batch.iter().peekable();
    while !parser.can_fork() {
        let Some(((offset, bytes), hits)) = blocks.next() else {
            break;
        };
        let events = parser.feed_skim(*offset, bytes, &hits.lines);
        let matches = matcher.scan(&events);
        out.push((events, matches));
    }
    let rest: Vec<_> = blocks.collect();
    let leader: &Parser = parser;
    let forked: Vec<_> = rest
        .par_iter()
        .map(|((offset, bytes), hits)| {
            let mut fork = leader.fork()?;
            let events = fork.feed_skim(*offset, bytes, &hits.lines);
            let matches = matcher.scan(&events);
            Some((fork, events, matches))
        })
        .collect();
    for (((offset, bytes), hits), forked) in rest.into_iter().zip(forked) {
        let first_line = &bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())];
        let joined = forked.and_then(|(fork, events, matches)| {
            let ended = parser.join(fork, first_line)?;
            Some((ended, events, matches))
        });
        match joined {
            Some((ended, events, matches)) => {
                let ended_matches = matcher.scan(&ended);
                out.push((ended, ended_matches));
                out.push((events, matches));
            }
            None => {
                let events = parser.feed_skim(*offset, bytes, &hits.lines);
                let matches = matcher.scan(&events);
                out.push((events, matches));
            }
        }
    }
    if last {
        let events = parser.finish();
        let matches = matcher.scan(&events);
        out.push((events, matches));
    }
    out
}

/// How the demo plays.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    /// Event time of the timeline's first line; `None`: so that the timeline ends about now.
    pub start: Option<Timestamp>,
    /// Event time runs this many times faster than the wall clock.
    pub speed: f64,
    /// Keep following the files after the timeline is written, until `stop` is set.
    pub stay: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 42,
            start: None,
            speed: demo::DEFAULT_SPEED,
            stay: false,
        }
    }
}

/// Remove what a previous demo left in `data_dir`: its logs, index, state snapshots, incident log
/// and the webhooks' cursors (positions in that log). `demo` calls it first; `logwarden demo`
/// also calls it before its webhooks start, so that they never read the old log.
pub fn clear_demo_data(data_dir: &Path) -> Result<(), PipelineError> {
    for stale in [
        data_dir.join("logs"),
        index_dir(data_dir),
        data_dir.join(crate::store::snapshot::DIR),
        data_dir.join(crate::serve::webhook::DIR),
    ] {
        match std::fs::remove_dir_all(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PipelineError::Io {
                    path: stale.display().to_string(),
                    source,
                });
            }
        }
    }
    let log = incident_log(data_dir);
    match std::fs::remove_file(&log) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PipelineError::Io {
            path: log.display().to_string(),
            source,
        }),
    }
}

/// The sources of the demo's files under `<data-dir>/logs`.
pub fn demo_sources(data_dir: &Path) -> Vec<SourceSpec> {
    let logs = data_dir.join("logs");
    demo::DemoFile::ALL
        .iter()
        .map(|f| SourceSpec {
            service: f.service().to_string(),
            format: f.format(),
            path: logs.join(f.file_name()),
        })
        .collect()
}

/// Write the seeded timeline live into `<data-dir>/logs` while following those files as `run`
/// does; return once the timeline is written and everything read (or `stop` is set).
///
/// The demo owns its data dir: the previous demo's data is removed first ([`clear_demo_data`]).
pub fn demo(
    settings: &Settings,
    opts: &DemoOptions,
    stop: Arc<AtomicBool>,
    on_change: &mut dyn FnMut(&Change),
) -> Result<(Summary, demo::Timeline), PipelineError> {
    let data_dir = &settings.data_dir;
    let logs = data_dir.join("logs");
    clear_demo_data(data_dir)?;
    std::fs::create_dir_all(&logs).map_err(|source| PipelineError::Io {
        path: logs.display().to_string(),
        source,
    })?;
    let span = demo::Timeline::generate(&demo::DemoConfig {
        seed: opts.seed,
        start: Timestamp(0),
    });
    let start = opts.start.unwrap_or_else(|| {
        // End the timeline about now, on a whole minute, so `--since 2h` finds it.
        let length = span.end.0 - span.start.0;
        let now = Timestamp::now().0;
        Timestamp((now - length).div_euclid(60_000_000) * 60_000_000)
    });
    let timeline = demo::Timeline::generate(&demo::DemoConfig {
        seed: opts.seed,
        start,
    });

    let writer_timeline = timeline.clone();
    let writer_stop = Arc::clone(&stop);
    let pipeline_stop = Arc::clone(&stop);
    let stay = opts.stay;
    let speed = opts.speed;
    let writer_logs = logs.clone();
    let writer = std::thread::Builder::new()
        .name("demo-writer".into())
        .spawn(move || {
            let written = demo::write_live(
                &writer_logs,
                &writer_timeline,
                speed,
                &writer_stop,
                &mut |_| {},
            );
            if !stay {
                pipeline_stop.store(true, Ordering::SeqCst);
            }
            written
        })
        .map_err(|source| PipelineError::Io {
            path: "demo writer thread".into(),
            source,
        })?;
    let tail_cfg = TailConfig {
        poll: Duration::from_millis(100),
        ..TailConfig::default()
    };
    let summary = run(settings, tail_cfg, Arc::clone(&stop), on_change);
    // The pipeline ended (done or failed): make sure the writer ends too.
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().map_err(|_| PipelineError::SourceThread)?;
    written.map_err(|source| PipelineError::Io {
        path: logs.display().to_string(),
        source,
    })?;
    Ok((summary?, timeline))
}
