//! The scale-out store (issue 8): ClickHouse tables for the events and incidents of many agents.
//!
//! Owns the schema (which DDL a server gets, by its `SELECT version()`), the row type an event is
//! written as, and the client calls that create the tables and insert rows. The only server that
//! runs here is Debian's 18.16.1 (see ../shared/CLICKHOUSE.md): its schema is plain (`DateTime`
//! seconds plus `ts_ns UInt64` for the exact time, `String`s, no skip index, no TTL: retention drops
//! partitions); a server from 21.8 on also gets a `DateTime64(6)` column computed from `ts_ns`, `LowCardinality` for the few-valued
//! columns, a `tokenbf_v1` skip index on the raw text and a `TTL` when a retention is set. Both kinds
//! of DDL are unit-tested; the 18.16 one also runs against the real server in tests/clickhouse.rs.
//!
//! Idempotent writes: the events table is a `ReplacingMergeTree` ordered by
//! `(service, ts, agent, id)`; an event written twice (a retried batch, a restart after a kill)
//! has the same key and collapses into one row at merge time, and `FINAL` (or `uniqExact(id)`)
//! counts it once before that.
//!
//! Client rules for 18.16 (CLICKHOUSE.md): validation off (no `RowBinaryWithNamesAndTypes`),
//! client-side `?` binding (no server-side parameters), settings per query (no sessions).
//!
//! This module must not decide when to write (batching, retries and the disk buffer are the
//! sink's, a later slice) nor parse or match anything.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::incident::Change;
use crate::store::index::RuleTag;

#[derive(thiserror::Error, Debug)]
pub enum ClickHouseError {
    #[error("ClickHouse at {url}: {source}")]
    Server {
        url: String,
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse at {url} says its version is `{text}`, which is not MAJOR.MINOR[.…]")]
    Version { url: String, text: String },
}

/// A server version, as `SELECT version()` says it (`18.16.1`, `24.8.4.13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl std::str::FromStr for Version {
    type Err = ();

    fn from_str(text: &str) -> Result<Version, ()> {
        let mut parts = text.trim().split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or(())?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or(())?;
        Ok(Version { major, minor })
    }
}

/// What the server's DDL may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `DateTime64(6)` for `ts`.
    pub datetime64: bool,
    /// `LowCardinality(String)` without an experimental setting.
    pub low_cardinality: bool,
    /// Data-skipping indexes (`tokenbf_v1`) without an experimental setting.
    pub skip_indexes: bool,
    /// Table `TTL`.
    pub ttl: bool,
}

impl Features {
    /// From this version on all of them are generally available (21.8, an LTS release, with
    /// margin: an older server gets the plain schema, which every server takes).
    pub const MODERN: Version = Version {
        major: 21,
        minor: 8,
    };

    pub fn of(version: Version) -> Features {
        let modern = version >= Self::MODERN;
        Features {
            datetime64: modern,
            low_cardinality: modern,
            skip_indexes: modern,
            ttl: modern,
        }
    }
}

/// The tables' DDL for a server with `features`, in order; `retention_days` adds a TTL where the
/// server has TTL (elsewhere retention drops partitions).
pub fn schema(features: Features, retention_days: Option<u32>) -> Vec<String> {
    let few = if features.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    };
    // The exact time as a DateTime64 where there is one, computed by the server from `ts_ns`,
    // so that every server takes the same rows.
    let ts64 = if features.datetime64 {
        ",\n    ts64 DateTime64(6, 'UTC') MATERIALIZED fromUnixTimestamp64Micro(toInt64(intDiv(ts_ns, 1000)), 'UTC')"
    } else {
        ""
    };
    let index = if features.skip_indexes {
        ",\n    INDEX raw_tokens lower(raw) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 4"
    } else {
        ""
    };
    let ttl = match (features.ttl, retention_days) {
        (true, Some(days)) => format!("\nTTL toDateTime(ts) + INTERVAL {days} DAY"),
        _ => String::new(),
    };
    let events = format!(
        "CREATE TABLE IF NOT EXISTS events (
    ts DateTime('UTC'),
    ts_ns UInt64,
    id String,
    agent {few},
    service {few},
    level {few},
    host {few},
    source String,
    message String,
    raw String,
    fields String,
    flags Array(String),
    rules Array(String),
    classes Array(String),
    groups Array(String){ts64}{index}
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (service, ts, agent, id){ttl}
SETTINGS index_granularity = 8192"
    );
    let incidents = format!(
        "CREATE TABLE IF NOT EXISTS incidents (
    seq UInt64,
    agent {few},
    incident_id String,
    kind {few},
    at_ns UInt64,
    class {few},
    severity {few},
    service {few},
    incident String
) ENGINE = ReplacingMergeTree
ORDER BY (agent, seq)"
    );
    vec![events, incidents]
}

/// Columns of `events` added after its first release, with their types, in the order added.
const ADDED_COLUMNS: [(&str, &str); 1] = [("groups", "Array(String)")];

/// The `ALTER TABLE` statements that bring an `events` table holding the columns `present` up to
/// date (none for a table this version made).
pub fn migrations(present: &[String]) -> Vec<String> {
    ADDED_COLUMNS
        .iter()
        .filter(|(name, _)| !present.iter().any(|p| p == name))
        .map(|(name, kind)| format!("ALTER TABLE events ADD COLUMN {name} {kind}"))
        .collect()
}

/// One event as a row of `events` (column names are the field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct EventRow {
    /// Seconds since the epoch (`ts DateTime`, every server; a newer one computes `ts64` from
    /// `ts_ns` itself).
    pub ts: u32,
    pub ts_ns: u64,
    pub id: String,
    pub agent: String,
    pub service: String,
    pub level: String,
    pub host: String,
    pub source: String,
    pub message: String,
    pub raw: String,
    pub fields: String,
    pub flags: Vec<String>,
    pub rules: Vec<String>,
    pub classes: Vec<String>,
    /// The incident groups the matches went to (`GroupKey::render`), one per rule: what
    /// `loggrep --incident` marks an incident's own events by. (Default: a spool line written
    /// before the column existed still reads.)
    #[serde(default)]
    pub groups: Vec<String>,
}

impl EventRow {
    /// The row of `event` written by `agent`, with the rules that matched it. Its `host` is the
    /// host the event names (syslog's, a JSON `host`/`hostname`), else the agent's.
    pub fn new(agent: &str, event: &Event, matched: &[RuleTag]) -> EventRow {
        let micros = event.ts.0.max(0);
        let host = event
            .field("host")
            .or_else(|| event.field("hostname"))
            .and_then(|v| v.as_str())
            .unwrap_or(agent)
            .to_string();
        let source = event
            .field("source")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        EventRow {
            ts: u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX),
            ts_ns: u64::try_from(micros).unwrap_or(0).saturating_mul(1000),
            id: event.id.to_string(),
            agent: agent.to_string(),
            service: event.service.clone(),
            level: event.level.as_str().to_string(),
            host,
            source,
            message: event.message.clone(),
            raw: event.raw.clone(),
            fields: serde_json::Value::Object(event.fields.clone()).to_string(),
            flags: event.flags.names().iter().map(|s| s.to_string()).collect(),
            rules: matched.iter().map(|m| m.rule.clone()).collect(),
            classes: matched.iter().map(|m| m.class.to_string()).collect(),
            groups: matched.iter().map(|m| m.group.clone()).collect(),
        }
    }
}

/// One incident change as a row of `incidents`: keyed by the agent and the change's sequence
/// number in that agent's incident log, so a change written twice collapses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct IncidentRow {
    pub seq: u64,
    pub agent: String,
    pub incident_id: String,
    /// `opened`, `updated`, `escalated`, `resolved`, `reopened`.
    pub kind: String,
    /// Event time of the change, ns since the epoch.
    pub at_ns: u64,
    pub class: String,
    pub severity: String,
    /// The first service the incident touches (all of them are in `incident`).
    pub service: String,
    /// The incident after the change, as JSON (the incident log's and the feed's shape).
    pub incident: String,
}

impl IncidentRow {
    pub fn new(agent: &str, change: &Change) -> Result<IncidentRow, serde_json::Error> {
        let incident = &change.incident;
        let kind = serde_json::to_value(change.kind)?;
        Ok(IncidentRow {
            seq: change.seq,
            agent: agent.to_string(),
            incident_id: incident.id.to_string(),
            kind: kind.as_str().unwrap_or_default().to_string(),
            at_ns: u64::try_from(change.at.0.max(0))
                .unwrap_or(0)
                .saturating_mul(1000),
            class: incident.class.as_str().to_string(),
            severity: serde_json::to_value(incident.severity)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            service: incident.services.first().cloned().unwrap_or_default(),
            incident: serde_json::to_string(incident)?,
        })
    }
}

/// A ClickHouse database (`http://host:8123`, a database), its version read and its tables made.
#[derive(Clone)]
pub struct ClickHouse {
    url: String,
    client: clickhouse::Client,
    pub version: Version,
    pub features: Features,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse")
            .field("url", &self.url)
            .field("version", &self.version)
            .finish()
    }
}

impl ClickHouse {
    /// Connect, read the version, create the database and the tables when missing.
    pub async fn connect(
        url: &str,
        database: &str,
        user: Option<&str>,
        password: Option<&str>,
        retention_days: Option<u32>,
    ) -> Result<ClickHouse, ClickHouseError> {
        let failed = |source| ClickHouseError::Server {
            url: url.to_string(),
            source,
        };
        let mut client = clickhouse::Client::default()
            .with_url(url)
            .with_validation(false);
        if let Some(user) = user {
            client = client.with_user(user);
        }
        if let Some(password) = password {
            client = client.with_password(password);
        }
        let text: String = client
            .query("SELECT version()")
            .fetch_one()
            .await
            .map_err(failed)?;
        let version = text.parse().map_err(|()| ClickHouseError::Version {
            url: url.to_string(),
            text: text.clone(),
        })?;
        client
            .query(&format!(
                "CREATE DATABASE IF NOT EXISTS `{}`",
                ident(database)
            ))
            .execute()
            .await
            .map_err(failed)?;
        let client = client.with_database(database);
        let features = Features::of(version);
        for ddl in schema(features, retention_days) {
            client.query(&ddl).execute().await.map_err(failed)?;
        }
        // Tables made by an earlier version lack the columns added since: add them.
        let present: Vec<String> = client
            .query(
                "SELECT name FROM system.columns \
                 WHERE database = currentDatabase() AND table = 'events'",
            )
            .fetch_all()
            .await
            .map_err(failed)?;
        for ddl in migrations(&present) {
            tracing::info!(%ddl, "ClickHouse: migrating the events table");
            client.query(&ddl).execute().await.map_err(failed)?;
        }
        Ok(ClickHouse {
            url: url.to_string(),
            client,
            version,
            features,
        })
    }

    /// Insert `rows` into `events` as one batch.
    pub async fn insert_events(&self, rows: &[EventRow]) -> Result<(), ClickHouseError> {
        self.insert("events", rows).await
    }

    /// Insert `rows` into `incidents` as one batch.
    pub async fn insert_incidents(&self, rows: &[IncidentRow]) -> Result<(), ClickHouseError> {
        self.insert("incidents", rows).await
    }

    /// One INSERT of `rows` into `table` (nothing for no rows).
    async fn insert<T>(&self, table: &str, rows: &[T]) -> Result<(), ClickHouseError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let failed = |source| ClickHouseError::Server {
            url: self.url.clone(),
            source,
        };
        let mut insert = self.client.insert::<T>(table).await.map_err(failed)?;
        for row in rows {
            insert.write(row).await.map_err(failed)?;
        }
        insert.end().await.map_err(failed)
    }

    /// The client, for queries (bind values with `?`, never format them in).
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// Retention: drop every day partition of `events` wholly before `cutoff_secs` (the
    /// cutoff's own day stays: it holds newer events too). Returns the days dropped, oldest
    /// first. `DROP PARTITION` is synchronous and frees the disk at once, on every server.
    pub async fn drop_days_before(&self, cutoff_secs: i64) -> Result<Vec<u32>, ClickHouseError> {
        let failed = |source| ClickHouseError::Server {
            url: self.url.clone(),
            source,
        };
        let cutoff_day = day_of(cutoff_secs);
        let partitions: Vec<String> = self
            .client
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = 'events' AND active \
                 ORDER BY partition",
            )
            .fetch_all()
            .await
            .map_err(failed)?;
        let mut dropped = Vec::new();
        // The server's own partition names, each checked to be a YYYYMMDD number before it is
        // written into the statement (a partition expression cannot be a bound string).
        for day in partitions.iter().filter_map(|p| p.parse::<u32>().ok()) {
            if day >= cutoff_day {
                continue;
            }
            self.client
                .query(&format!("ALTER TABLE events DROP PARTITION {day}"))
                .execute()
                .await
                .map_err(failed)?;
            dropped.push(day);
        }
        Ok(dropped)
    }
}

/// The `toYYYYMMDD` (UTC) of a time in seconds.
fn day_of(secs: i64) -> u32 {
    let at = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let date = jiff::tz::TimeZone::UTC.to_datetime(at).date();
    let (y, m, d) = (
        u32::try_from(date.year()).unwrap_or(0),
        u32::from(date.month().unsigned_abs()),
        u32::from(date.day().unsigned_abs()),
    );
    y * 10_000 + m * 100 + d
}

/// A database name as a quoted identifier's content: backquotes and backslashes escaped.
fn ident(name: &str) -> String {
    name.replace('\\', "\\\\").replace('`', "\\`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decide_the_features() {
        let v = |t: &str| t.parse::<Version>().unwrap();
        assert_eq!(
            v("18.16.1"),
            Version {
                major: 18,
                minor: 16
            }
        );
        assert_eq!(
            v(" 24.8.4.13\n"),
            Version {
                major: 24,
                minor: 8
            }
        );
        assert!("eighteen".parse::<Version>().is_err());
        assert!("18".parse::<Version>().is_err());
        let old = Features::of(v("18.16.1"));
        assert!(!old.datetime64 && !old.low_cardinality && !old.skip_indexes && !old.ttl);
        assert_eq!(Features::of(v("21.3.20")), old);
        let new = Features::of(v("21.8.1"));
        assert!(new.datetime64 && new.low_cardinality && new.skip_indexes && new.ttl);
        assert_eq!(Features::of(v("24.8.4.13")), new);
    }

    #[test]
    fn the_old_schema_uses_only_what_18_16_has() {
        let ddl = schema(Features::of("18.16.1".parse().unwrap()), Some(730)).join("\n");
        for absent in [
            "DateTime64",
            "LowCardinality",
            "INDEX",
            "TTL",
            "CODEC",
            "JSON",
        ] {
            assert!(!ddl.contains(absent), "{absent} in\n{ddl}");
        }
        assert!(ddl.contains("ts DateTime('UTC')"), "{ddl}");
        assert!(ddl.contains("ReplacingMergeTree"), "{ddl}");
        assert!(ddl.contains("PARTITION BY toYYYYMMDD(ts)"), "{ddl}");
        assert!(ddl.contains("ORDER BY (service, ts, agent, id)"), "{ddl}");
    }

    #[test]
    fn a_modern_schema_uses_datetime64_skip_indexes_ttl_and_low_cardinality() {
        let features = Features::of("24.8.4.13".parse().unwrap());
        let ddl = schema(features, Some(730)).join("\n");
        assert!(
            ddl.contains("ts64 DateTime64(6, 'UTC') MATERIALIZED"),
            "{ddl}"
        );
        assert!(ddl.contains("ts DateTime('UTC')"), "{ddl}");
        assert!(ddl.contains("service LowCardinality(String)"), "{ddl}");
        assert!(ddl.contains("TYPE tokenbf_v1("), "{ddl}");
        assert!(
            ddl.contains("TTL toDateTime(ts) + INTERVAL 730 DAY"),
            "{ddl}"
        );
        let without = schema(features, None).join("\n");
        assert!(!without.contains("TTL"), "{without}");
    }

    #[test]
    fn a_table_of_the_first_release_gains_the_columns_added_since() {
        let first: Vec<String> = ["ts", "ts_ns", "id", "raw", "classes"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            migrations(&first),
            vec!["ALTER TABLE events ADD COLUMN groups Array(String)".to_string()]
        );
        let mut now = first;
        now.push("groups".into());
        assert!(migrations(&now).is_empty());
        // Every added column is in the schema a new table gets.
        let ddl = schema(Features::of("18.16.1".parse().unwrap()), None).join("\n");
        for (name, kind) in ADDED_COLUMNS {
            assert!(ddl.contains(&format!("{name} {kind}")), "{name}");
        }
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), 19_700_101);
        assert_eq!(day_of(1_796_212_800), 20_261_202);
        assert_eq!(day_of(1_796_169_600), 20_261_202);
        assert_eq!(day_of(1_796_169_600 - 1), 20_261_201);
    }

    #[test]
    fn a_database_name_cannot_leave_its_quotes() {
        assert_eq!(ident("logs"), "logs");
        assert_eq!(ident("a`; DROP TABLE x; `"), "a\\`; DROP TABLE x; \\`");
        assert_eq!(ident("a\\`"), "a\\\\\\`");
    }
}
