//! `GET /metrics`: the run's counters in the Prometheus (OpenMetrics) text format, and the
//! [`Metrics`] the pipeline and the server update.
//!
//! Owns the registry and every series in it:
//!
//! | series | type | labels | updated by |
//! |---|---|---|---|
//! | `logwarden_events_total` | counter | `source` | the pipeline, once per parsed batch |
//! | `logwarden_bytes_total` | counter | `source` | the pipeline, once per chunk read |
//! | `logwarden_source_lag_bytes` | gauge | `source` | the pipeline, at most once a second: bytes of the source's files on disk not read yet |
//! | `logwarden_rule_matches_total` | counter | `rule` | the pipeline, per match (matches are rare next to lines) |
//! | `logwarden_incidents_open` | gauge | `class`, `severity` | the pipeline, after each batch of incident changes |
//! | `logwarden_index_commit_duration_seconds` | histogram | | the pipeline, per index commit |
//! | `logwarden_index_commit_failures_total` | counter | | the pipeline, per failed commit |
//! | `logwarden_storage_paused` | gauge | | the pipeline: 1 while ingestion is paused because the data dir cannot be written (a full disk), else 0 |
//! | `logwarden_feed_clients` | gauge | `transport` (`sse`, `ws`) | the feed, read at each scrape |
//! | `logwarden_http_request_duration_seconds` | histogram | `route` | the server, per request (for the feeds: until the response starts) |
//! | `logwarden_clickhouse_spool_bytes`, `…_spool_batches` | gauge | | read from the ClickHouse sink at each scrape: what waits on disk |
//! | `logwarden_clickhouse_rows_delivered_total`, `…_insert_failures_total` | counter | | the same: rows ClickHouse acknowledged, failed attempts |
//! | `logwarden_heap_allocated_bytes`, `…_heap_resident_bytes` | gauge | | read from jemalloc at each scrape, when the binary runs on it ([`report_jemalloc_heap`]): bytes the program holds, and the allocator's resident pages (what it holds plus what it has not given back yet) |
//!
//! The pipeline is synchronous and must not slow down for this: it holds clones of the counters
//! it needs (a counter is an atomic behind an `Arc`), looked up once per source and per rule, and
//! adds to them per batch. The lag per source and the last commit's failure are also kept for
//! `/api/v1/health`'s readiness ([`Metrics::readiness`]).
//!
//! This module must not read the index or the incident log, nor decide anything: it counts what
//! the others tell it and renders it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::Shared;
use super::feed::Transport;
use crate::detect::{Class, Severity};
use crate::store::clickhouse_sink::SpoolWatch;

/// Whether the process allocates through jemalloc (the binary's global allocator), so its
/// figures are the process's own: a library user on another allocator gets no heap series.
static JEMALLOC_HEAP: AtomicBool = AtomicBool::new(false);

/// Say that this process's global allocator is jemalloc: `/metrics` then has the heap series.
pub fn report_jemalloc_heap() {
    JEMALLOC_HEAP.store(true, Ordering::Relaxed);
}

/// The content type of the exposition (Prometheus scrapes OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IncidentLabels {
    class: &'static str,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The counters of a run, shared by the pipeline (which adds to them) and the server (which
/// renders them). Clone the `Arc` it comes in; every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    events: Family<SourceLabel, Counter>,
    bytes: Family<SourceLabel, Counter>,
    lag: Family<SourceLabel, Gauge>,
    matches: Family<RuleLabel, Counter>,
    open: Family<IncidentLabels, Gauge>,
    feed_clients: Family<TransportLabel, Gauge>,
    http: Family<RouteLabel, Histogram>,
    commit: Histogram,
    commit_failures: Counter,
    storage_paused: Gauge,
    heap: HeapSeries,
    health: Mutex<HealthState>,
    clickhouse: ClickHouseSeries,
}

/// The allocator's figures, refreshed from jemalloc when read (registered only when the process
/// runs on it).
#[derive(Default)]
struct HeapSeries {
    enabled: bool,
    allocated: Gauge,
    resident: Gauge,
}

impl HeapSeries {
    fn register(registry: &mut Registry) -> HeapSeries {
        let series = HeapSeries {
            enabled: JEMALLOC_HEAP.load(Ordering::Relaxed),
            ..HeapSeries::default()
        };
        if series.enabled {
            registry.register_with_unit(
                "heap_allocated",
                "Bytes of memory the program holds (jemalloc's stats.allocated)",
                Unit::Bytes,
                series.allocated.clone(),
            );
            registry.register_with_unit(
                "heap_resident",
                "Bytes of memory jemalloc holds resident: what the program holds, the \
                 allocator's own structures and freed pages not yet given back to the system",
                Unit::Bytes,
                series.resident.clone(),
            );
        }
        series
    }

    /// Bring the gauges up to date (jemalloc's statistics are a snapshot taken at each epoch).
    #[cfg(feature = "jemalloc")]
    fn refresh(&self) {
        if !self.enabled {
            return;
        }
        if let Err(error) = tikv_jemalloc_ctl::epoch::advance() {
            tracing::debug!(%error, "cannot refresh jemalloc's statistics");
            return;
        }
        let gauge = |value: Result<usize, tikv_jemalloc_ctl::Error>, gauge: &Gauge| {
            if let Ok(bytes) = value {
                gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        };
        gauge(tikv_jemalloc_ctl::stats::allocated::read(), &self.allocated);
        gauge(tikv_jemalloc_ctl::stats::resident::read(), &self.resident);
    }

    /// Built without jemalloc: nothing to read (and [`report_jemalloc_heap`] is never called).
    #[cfg(not(feature = "jemalloc"))]
    fn refresh(&self) {}
}

/// The ClickHouse sink's series, refreshed from its spool when read.
#[derive(Default)]
struct ClickHouseSeries {
    watch: Mutex<Option<SpoolWatch>>,
    bytes: Gauge,
    batches: Gauge,
    delivered: Counter,
    failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct HealthState {
    /// Bytes behind the end of the files, per source, as last measured.
    lag: BTreeMap<String, u64>,
    /// The last index commit's error, until a commit succeeds.
    commit_error: Option<String>,
    /// Why ingestion is paused (the data dir cannot be written), until a commit succeeds again.
    storage: Option<String>,
}

/// A source's two counters, held by the pipeline for each file it reads.
#[derive(Debug, Clone)]
pub struct SourceCounters {
    events: Counter,
    bytes: Counter,
}

impl SourceCounters {
    /// A parsed batch of `n` events.
    pub fn events(&self, n: usize) {
        self.events.inc_by(n as u64);
    }

    /// A chunk of `n` bytes read.
    pub fn bytes(&self, n: usize) {
        self.bytes.inc_by(n as u64);
    }
}

/// What readiness depends on besides the server answering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Why the run is not ready; empty: ready.
    pub reasons: Vec<String>,
    /// Bytes behind, per source, as last measured.
    pub lag: BTreeMap<String, u64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logwarden");
        let events = Family::<SourceLabel, Counter>::default();
        registry.register(
            "events",
            "Events parsed and indexed, per source",
            events.clone(),
        );
        let bytes = Family::<SourceLabel, Counter>::default();
        registry.register_with_unit(
            "read",
            "Bytes read from each source",
            Unit::Bytes,
            bytes.clone(),
        );
        let lag = Family::<SourceLabel, Gauge>::default();
        registry.register_with_unit(
            "source_lag",
            "Bytes of a source's files on disk not read yet (measured about once a second)",
            Unit::Bytes,
            lag.clone(),
        );
        let matches = Family::<RuleLabel, Counter>::default();
        registry.register("rule_matches", "Events each rule matched", matches.clone());
        let open = Family::<IncidentLabels, Gauge>::default();
        registry.register(
            "incidents_open",
            "Open incidents per class and severity",
            open.clone(),
        );
        let feed_clients = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "feed_clients",
            "Clients connected to the incident feed (SSE and WebSocket)",
            feed_clients.clone(),
        );
        let http: Family<RouteLabel, Histogram> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request per route (for the feeds: until the stream starts)",
            Unit::Seconds,
            http.clone(),
        );
        let commit = latency_histogram();
        registry.register_with_unit(
            "index_commit_duration",
            "Time of each index commit (events, checkpoint and engine state)",
            Unit::Seconds,
            commit.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "index_commit_failures",
            "Index commits that failed",
            commit_failures.clone(),
        );
        let storage_paused = Gauge::default();
        registry.register(
            "storage_paused",
            "1 while ingestion is paused because the data dir cannot be written (a full disk)",
            storage_paused.clone(),
        );
        let heap = HeapSeries::register(&mut registry);
        let clickhouse = ClickHouseSeries::default();
        registry.register_with_unit(
            "clickhouse_spool",
            "Rows waiting on disk for ClickHouse (the sink's spool)",
            Unit::Bytes,
            clickhouse.bytes.clone(),
        );
        registry.register(
            "clickhouse_spool_batches",
            "Sealed batches waiting for ClickHouse",
            clickhouse.batches.clone(),
        );
        registry.register(
            "clickhouse_rows_delivered",
            "Rows (events and incident changes) ClickHouse acknowledged",
            clickhouse.delivered.clone(),
        );
        registry.register(
            "clickhouse_insert_failures",
            "ClickHouse inserts that failed (each is retried)",
            clickhouse.failures.clone(),
        );
        // Every class and severity shows, zero or not, so a dashboard sees the series exist.
        for class in Class::ALL {
            for severity in Severity::ALL {
                open.get_or_create(&IncidentLabels {
                    class: class.as_str(),
                    severity: severity.as_str(),
                })
                .set(0);
            }
        }
        for transport in [Transport::Sse, Transport::Ws] {
            feed_clients
                .get_or_create(&TransportLabel {
                    transport: transport.as_str(),
                })
                .set(0);
        }
        Metrics {
            registry,
            events,
            bytes,
            lag,
            matches,
            open,
            feed_clients,
            http,
            commit,
            commit_failures,
            storage_paused,
            heap,
            health: Mutex::default(),
            clickhouse,
        }
    }

    /// Read the ClickHouse sink's state from this spool from now on.
    pub fn watch_clickhouse(&self, watch: SpoolWatch) {
        *self
            .clickhouse
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(watch);
    }

    /// The ClickHouse sink's state now (none without a sink), its series brought up to date.
    fn clickhouse_status(&self) -> Option<crate::store::clickhouse_sink::SpoolStatus> {
        let series = &self.clickhouse;
        let status = series
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()?
            .status();
        series
            .bytes
            .set(i64::try_from(status.bytes).unwrap_or(i64::MAX));
        series
            .batches
            .set(i64::try_from(status.batches).unwrap_or(i64::MAX));
        // Counters only go up: add what is new since the last read.
        series
            .delivered
            .inc_by(status.delivered.saturating_sub(series.delivered.get()));
        series
            .failures
            .inc_by(status.failures.saturating_sub(series.failures.get()));
        Some(status)
    }

    fn health(&self) -> MutexGuard<'_, HealthState> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The counters of a source (look them up once, add to them per batch).
    pub fn source(&self, service: &str) -> SourceCounters {
        let label = SourceLabel {
            source: service.to_string(),
        };
        SourceCounters {
            events: self.events.get_or_create_owned(&label),
            bytes: self.bytes.get_or_create_owned(&label),
        }
    }

    /// The match counter of a rule (look it up once).
    pub fn rule(&self, rule: &str) -> Counter {
        self.matches.get_or_create_owned(&RuleLabel {
            rule: rule.to_string(),
        })
    }

    /// The bytes each source is behind, measured now: replaces the previous measurement (a
    /// source no longer measured shows 0 lag).
    pub fn set_lag(&self, lag: BTreeMap<String, u64>) {
        let mut health = self.health();
        for gone in health.lag.keys().filter(|s| !lag.contains_key(*s)) {
            self.lag
                .get_or_create(&SourceLabel {
                    source: gone.clone(),
                })
                .set(0);
        }
        for (source, bytes) in &lag {
            self.lag
                .get_or_create(&SourceLabel {
                    source: source.clone(),
                })
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
        health.lag = lag;
    }

    /// The class and severity of every incident open now (every class × severity is set,
    /// absent ones to 0).
    pub fn set_open(&self, open: impl IntoIterator<Item = (Class, Severity)>) {
        let mut counts: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
        for (class, severity) in open {
            *counts
                .entry((class.as_str(), severity.as_str()))
                .or_default() += 1;
        }
        for class in Class::ALL {
            for severity in Severity::ALL {
                let key = (class.as_str(), severity.as_str());
                self.open
                    .get_or_create(&IncidentLabels {
                        class: key.0,
                        severity: key.1,
                    })
                    .set(counts.get(&key).copied().unwrap_or(0));
            }
        }
    }

    /// An index commit that took `took`, and whether it failed (with what).
    pub fn committed(&self, took: Duration, error: Option<String>) {
        self.commit.observe(took.as_secs_f64());
        if error.is_some() {
            self.commit_failures.inc();
        }
        self.health().commit_error = error;
    }

    /// Ingestion is paused because the data dir cannot be written (`reason` says why and what
    /// happens), or (`None`) it goes on again.
    pub fn storage_paused(&self, reason: Option<String>) {
        self.storage_paused.set(i64::from(reason.is_some()));
        self.health().storage = reason;
    }

    pub(crate) fn request(&self, route: &str, took: Duration) {
        self.http
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    fn set_feed_clients(&self, transport: Transport, clients: usize) {
        self.feed_clients
            .get_or_create(&TransportLabel {
                transport: transport.as_str(),
            })
            .set(i64::try_from(clients).unwrap_or(i64::MAX));
    }

    /// What stands between the run and ready, from what the pipeline last reported: ingestion
    /// paused on a data dir that cannot be written, a failed commit, a source more than `max_lag`
    /// bytes behind.
    pub fn readiness(&self, max_lag: u64) -> Readiness {
        let health = self.health();
        let mut reasons = Vec::new();
        if let Some(paused) = &health.storage {
            reasons.push(paused.clone());
        }
        if let Some(error) = &health.commit_error {
            reasons.push(format!("the last index commit failed: {error}"));
        }
        for (source, lag) in &health.lag {
            if *lag > max_lag {
                reasons.push(format!(
                    "source {source} is {lag} bytes behind the end of its files (more than {max_lag})"
                ));
            }
        }
        if let Some(status) = self.clickhouse_status().filter(|s| s.full()) {
            reasons.push(format!(
                "the ClickHouse spool is full ({} bytes, more than {}): ingestion waits for ClickHouse ({})",
                status.bytes,
                status.buffer_max,
                status.failing.as_deref().unwrap_or("slow")
            ));
        }
        Readiness {
            reasons,
            lag: health.lag.clone(),
        }
    }

    /// The exposition text.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.clickhouse_status();
        self.heap.refresh();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(shared): State<Shared>) -> Response {
    for transport in [Transport::Sse, Transport::Ws] {
        shared
            .metrics
            .set_feed_clients(transport, shared.feed.clients_of(transport));
    }
    match shared.metrics.render() {
        Ok(text) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(error) => {
            super::api::ApiError::internal("cannot render the metrics", error).into_response()
        }
    }
}

/// Middleware (on matched routes): time each request under its route's pattern.
pub(crate) async fn time_request(
    State(shared): State<Shared>,
    route: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    shared.metrics.request(route, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_a_failed_commit_and_each_source_too_far_behind() {
        let metrics = Metrics::new();
        assert_eq!(metrics.readiness(10).reasons, Vec::<String>::new());
        metrics.set_lag(BTreeMap::from([("app".into(), 11), ("db".into(), 10)]));
        let ready = metrics.readiness(10);
        assert_eq!(ready.reasons.len(), 1, "{:?}", ready.reasons);
        assert!(ready.reasons[0].contains("source app is 11 bytes behind"));
        metrics.committed(Duration::from_millis(3), Some("disk full".into()));
        let ready = metrics.readiness(100);
        assert_eq!(
            ready.reasons,
            ["the last index commit failed: disk full".to_string()]
        );
        metrics.committed(Duration::from_millis(3), None);
        assert!(metrics.readiness(100).reasons.is_empty());
    }

    #[test]
    fn a_paused_ingestion_is_a_reason_and_a_gauge_until_it_resumes() {
        let metrics = Metrics::new();
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("logwarden_storage_paused 0")
        );
        metrics.storage_paused(Some("the disk of the data dir /d is full".into()));
        assert_eq!(
            metrics.readiness(10).reasons,
            ["the disk of the data dir /d is full".to_string()]
        );
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("logwarden_storage_paused 1")
        );
        metrics.storage_paused(None);
        assert!(metrics.readiness(10).reasons.is_empty());
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("logwarden_storage_paused 0")
        );
    }

    #[test]
    fn the_text_has_every_series_and_counts_what_it_was_told() {
        let metrics = Metrics::new();
        let app = metrics.source("app");
        app.events(3);
        app.events(4);
        app.bytes(100);
        metrics.rule("pg-too-many-clients").inc();
        metrics.set_open([(Class::DbDown, Severity::Critical); 2]);
        metrics.committed(Duration::from_millis(5), None);
        metrics.request("/api/v1/health", Duration::from_millis(1));
        let text = metrics.render().unwrap();
        for line in [
            "logwarden_events_total{source=\"app\"} 7",
            "logwarden_read_bytes_total{source=\"app\"} 100",
            "logwarden_rule_matches_total{rule=\"pg-too-many-clients\"} 1",
            "logwarden_incidents_open{class=\"db-down\",severity=\"critical\"} 2",
            "logwarden_incidents_open{class=\"db-down\",severity=\"error\"} 0",
            "logwarden_feed_clients{transport=\"ws\"} 0",
            "logwarden_index_commit_duration_seconds_count 1",
            "logwarden_index_commit_failures_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            text.lines().any(|l| l
                == "logwarden_http_request_duration_seconds_count{route=\"/api/v1/health\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
