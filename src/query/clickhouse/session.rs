//! A connection to one ClickHouse database: opening it (version, the `events` table), binding
//! values, reading rows back as [`Hit`]s, the incidents, and the check of attribute paths.

use serde::Deserialize;

use crate::event::{EventId, Flags, Level, Timestamp};
use crate::query::search::Hit;
use crate::query::{QueryError, plan};
use crate::store::clickhouse::{Features, Version};

use super::backend::{Backend, BackendError};
use super::sql::{self, Bind};

/// `sql` on `client` with `binds` bound to its `?`s in order (client-side binding: 18.16 has no
/// server-side parameters).
pub fn bound(client: &clickhouse::Client, sql: &str, binds: &[Bind]) -> clickhouse::query::Query {
    let mut query = client.query(sql);
    for bind in binds {
        query = match bind {
            Bind::Str(s) => query.bind(s.as_str()),
            Bind::U64(n) => query.bind(*n),
            Bind::U32(n) => query.bind(*n),
            Bind::U64s(v) => query.bind(v.as_slice()),
        };
    }
    query
}

/// A connected client and what its server can do.
pub(super) struct Session {
    pub(super) client: clickhouse::Client,
    pub(super) url: String,
    pub(super) features: Features,
}

impl Session {
    pub(super) async fn open(backend: &Backend) -> Result<Session, BackendError> {
        let client = backend.client();
        let url = backend.shown.clone();
        let text: String =
            client
                .query("SELECT version()")
                .fetch_one()
                .await
                .map_err(|source| match source {
                    clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                        BackendError::Unreachable {
                            url: url.clone(),
                            source,
                        }
                    }
                    // It answered, with an error: a wrong user or password, say.
                    source => BackendError::Query {
                        url: url.clone(),
                        source,
                    },
                })?;
        let version: Version = text.parse().map_err(|()| BackendError::Version {
            url: url.clone(),
            text: text.clone(),
        })?;
        let tables: u64 = client
            .query("SELECT count() FROM system.tables WHERE database = ? AND name = 'events'")
            .bind(backend.database.as_str())
            .fetch_one()
            .await
            .map_err(|source| BackendError::Query {
                url: url.clone(),
                source,
            })?;
        if tables == 0 {
            return Err(BackendError::NoEvents {
                url,
                database: backend.database.clone(),
            });
        }
        tracing::debug!(%url, %text, "asking ClickHouse");
        Ok(Session {
            client,
            url,
            features: Features::of(version),
        })
    }

    /// Refuse an attribute path that no event has, as the local index does (`unknown field`,
    /// with a did-you-mean over the built-in fields and the keys of some events). The rows
    /// whose JSON text holds the path's last key are read until one has a value at the path.
    pub(super) async fn check_path(&self, path: &str, column: usize) -> Result<(), QueryError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Fields {
            fields: String,
        }
        let present = sql::key_present(path);
        let text = format!(
            "SELECT fields FROM events WHERE {} LIMIT {PATH_ROWS}",
            present.sql
        );
        let mut cursor = self
            .query(&text, &present.binds)
            .fetch::<Fields>()
            .map_err(|e| self.failed(e))?;
        while let Some(row) = cursor.next().await.map_err(|e| self.failed(e))? {
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&row.fields) else {
                continue;
            };
            if plan::attribute_values(&map, path)
                .iter()
                .any(|v| !v.is_null())
            {
                return Ok(());
            }
        }
        // Did-you-mean candidates: the attribute paths of some events.
        let text = format!("SELECT fields FROM events LIMIT {SUGGESTION_ROWS}");
        let mut cursor = self
            .client
            .query(&text)
            .fetch::<Fields>()
            .map_err(|e| self.failed(e))?;
        let mut keys = std::collections::BTreeSet::new();
        while let Some(row) = cursor.next().await.map_err(|e| self.failed(e))? {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&row.fields) {
                collect_paths(&value, "", &mut keys);
            }
        }
        let candidates = plan::BUILTIN_FIELDS
            .iter()
            .copied()
            .chain(keys.iter().map(String::as_str));
        let suggestion = crate::config::did_you_mean(path, candidates).map(str::to_string);
        Err(plan::PlanError::UnknownField {
            name: path.to_string(),
            column,
            suggestion,
        }
        .into())
    }

    /// Every incident as it stands now: the latest change of each (by event time, then the
    /// change's number), as the incident log folds its changes.
    pub(super) async fn incidents(&self) -> Result<Vec<crate::incident::Incident>, QueryError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Latest {
            incident: String,
        }
        let rows: Vec<Latest> = self
            .client
            .query(
                "SELECT argMax(incident, tuple(at_ns, seq)) AS incident FROM incidents FINAL GROUP BY incident_id ORDER BY incident_id",
            )
            .fetch_all()
            .await
            .map_err(|e| self.failed(e))?;
        let mut incidents = Vec::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_str(&row.incident) {
                Ok(incident) => incidents.push(incident),
                Err(e) => tracing::warn!(error = %e, "an incident row that is not an incident"),
            }
        }
        Ok(incidents)
    }

    /// `sql` with `binds` bound to its `?`s in order.
    pub(super) fn query(&self, sql: &str, binds: &[Bind]) -> clickhouse::query::Query {
        bound(&self.client, sql, binds)
    }

    pub(super) fn failed(&self, source: clickhouse::error::Error) -> BackendError {
        BackendError::Query {
            url: self.url.clone(),
            source,
        }
    }
}

/// The columns a [`Hit`] is made of (`SELECT ?fields` lists them in this order).
#[derive(Debug, Deserialize, clickhouse::Row)]
pub(super) struct HitRow {
    ts_ns: u64,
    id: String,
    service: String,
    level: String,
    message: String,
    raw: String,
    fields: String,
    flags: Vec<String>,
    rules: Vec<String>,
    classes: Vec<String>,
    groups: Vec<String>,
}

impl HitRow {
    /// The hit the local index would load for this event: rules once each (with their class),
    /// in the order they were written, and every incident group a match went to.
    pub(super) fn into_hit(self) -> Hit {
        let id = self.id.parse().unwrap_or(EventId {
            fingerprint: 0,
            offset: 0,
        });
        let fields = match serde_json::from_str(&self.fields) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let mut flags = Flags::default();
        for name in &self.flags {
            if let Some(flag) = Flags::from_name(name) {
                flags.insert(flag);
            }
        }
        let mut rules = Vec::new();
        let mut classes = Vec::new();
        for (rule, class) in self.rules.into_iter().zip(self.classes) {
            if !rules.contains(&rule) {
                rules.push(rule);
                classes.push(class);
            }
        }
        Hit {
            id,
            ts: Timestamp(i64::try_from(self.ts_ns / 1000).unwrap_or(i64::MAX)),
            service: self.service,
            level: self.level.parse().unwrap_or(Level::Unknown),
            message: self.message,
            raw: self.raw,
            fields,
            flags,
            rules,
            classes,
            groups: self.groups,
        }
    }
}

/// Every dotted path to a value of `value` (arrays looked through), prefixed by `prefix`.
fn collect_paths(
    value: &serde_json::Value,
    prefix: &str,
    out: &mut std::collections::BTreeSet<String>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect_paths(inner, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_paths(item, prefix, out);
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix.to_string());
        }
        _ => {}
    }
}

/// Rows read to find a value at an attribute path before calling it unknown.
const PATH_ROWS: u64 = 100_000;
/// Rows whose attribute paths are the did-you-mean candidates of an unknown one.
const SUGGESTION_ROWS: u64 = 10_000;
