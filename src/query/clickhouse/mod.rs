//! `loggrep --backend clickhouse://HOST:PORT/DB`: the loggrep questions asked of the ClickHouse
//! tables every agent writes (issue 8), answered with the same bytes as the local index gives.
//!
//! Owns: reading the backend URL ([`Backend`]), connecting (the server's version decides the
//! [`Features`] the SQL may use), running the SQL that [`sql`] makes of a checked [`Request`],
//! and turning the rows back into [`Hit`]s, counts and buckets for the *shared* output code
//! (`answer::write_hits`, `write_count_by`, `write_histogram`): no byte is formatted here.
//!
//! Semantics are the local backend's (see `query`): event-time order (`ts`, then the event id as
//! fingerprint then *numeric* offset — the id text's offset is not zero-padded, so the SQL sorts
//! on `toUInt64(substring(id, 18))`), the newest `limit` matches, a cut said as the local one says
//! it. Rows written twice (a retried batch) collapse with `FINAL` on the ReplacingMergeTree.
//! Where [`sql`] can only narrow (attribute terms, prefixes), rows are streamed newest first and
//! decided by the same [`plan::Pred`] the local index uses, exactly as it decides its candidates.
//!
//! `-A/-B/-C` reads the hits' source files by fingerprint (`substring(id, 1, 16)`), and
//! `--incident` the `incidents` table; both hand their events to the local code that groups and
//! prints them (`context::assemble`, `forensic::run_on`).
//!
//! Must not: write to the server (no DDL: a reader must not create a database that a typo
//! named), format a user value into SQL (everything is bound), or decide exit codes.

mod re2;
pub mod sql;

use std::collections::HashMap;
use std::io::Write;

use serde::Deserialize;

use crate::event::{EventId, Flags, Level, Timestamp};
use crate::query::search::{Found, Hit};
use crate::query::{
    Outcome, QueryError, Request, answer, check, context, forensic, lang, plan, tally,
};
use crate::store::clickhouse::{Features, Version};

use sql::{Bind, Where};

/// A ClickHouse database to ask: `clickhouse://HOST[:PORT]/DB` or `http://HOST[:PORT]/DB`.
#[derive(Clone)]
pub struct Backend {
    /// The URL as the user gave it (for messages).
    pub shown: String,
    /// `http://HOST:PORT`.
    url: String,
    database: String,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("url", &self.shown)
            .field("user", &self.user)
            .finish()
    }
}

/// The HTTP port a ClickHouse server listens on by default.
pub const DEFAULT_PORT: u16 = 8123;

#[derive(thiserror::Error, Debug)]
pub enum BackendError {
    #[error(
        "--backend `{0}`: expected clickhouse://HOST[:PORT]/DATABASE or http://HOST[:PORT]/DATABASE"
    )]
    Url(String),
    #[error("cannot reach ClickHouse at {url}: {source}")]
    Unreachable {
        url: String,
        source: clickhouse::error::Error,
    },
    #[error(
        "ClickHouse at {url} has no table `events` in database `{database}` (a wrong database name, or no agent has written there yet)"
    )]
    NoEvents { url: String, database: String },
    #[error("ClickHouse at {url} says its version is `{text}`, which is not MAJOR.MINOR[.…]")]
    Version { url: String, text: String },
    #[error("ClickHouse at {url}: {source}")]
    Query {
        url: String,
        source: clickhouse::error::Error,
    },
    #[error("{0} reads the local index; leave out --backend")]
    LocalOnly(&'static str),
    #[error("starting the ClickHouse client: {0}")]
    Runtime(std::io::Error),
}

impl Backend {
    /// Read `url`; `user` and `password` as given by their flags.
    pub fn parse(
        url: &str,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Backend, BackendError> {
        let bad = || BackendError::Url(url.to_string());
        let rest = url
            .strip_prefix("clickhouse://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let database = path.trim_end_matches('/');
        let host_ok = !authority.is_empty()
            && !authority.contains(['@', '?', '#'])
            && !database.is_empty()
            && !database.contains(['/', '?', '#']);
        if !host_ok {
            return Err(bad());
        }
        let authority = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                authority.to_string()
            }
            Some(_) => return Err(bad()),
            None => format!("{authority}:{DEFAULT_PORT}"),
        };
        Ok(Backend {
            shown: url.to_string(),
            url: format!("http://{authority}"),
            database: database.to_string(),
            user,
            password,
        })
    }

    fn client(&self) -> clickhouse::Client {
        // Validation off: 18.16 has no RowBinaryWithNamesAndTypes (CLICKHOUSE.md).
        let mut client = clickhouse::Client::default()
            .with_url(&self.url)
            .with_database(&self.database)
            .with_validation(false);
        if let Some(user) = &self.user {
            client = client.with_user(user);
        }
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }
}

/// Answer `req` from the ClickHouse database `backend` names.
pub fn run(req: &Request, backend: &Backend, out: &mut dyn Write) -> Result<Outcome, QueryError> {
    if req.follow.is_some() {
        return Err(BackendError::LocalOnly("--follow").into());
    }
    if let Some(t) = &req.incident {
        return incident(req, t, backend, out);
    }
    // A bad question is refused before the server is asked (the SQL of any server version
    // refuses the same questions).
    let checked = check(req)?;
    let before_asking = sql::Context {
        features: Features::of(Version {
            major: 18,
            minor: 16,
        }),
        incidents: None,
    };
    sql::translate(checked.expr.as_ref(), before_asking)?;
    let histogram_secs = req
        .view
        .histogram
        .as_deref()
        .map(answer::histogram_width)
        .transpose()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let session = Session::open(backend).await?;
        for (path, column) in sql::attribute_paths(checked.expr.as_ref()) {
            session.check_path(&path, column).await?;
        }
        let incidents = if sql::mentions_incident(checked.expr.as_ref()) {
            session.incidents().await?
        } else {
            Vec::new()
        };
        let ctx = sql::Context {
            features: session.features,
            incidents: Some(&incidents),
        };
        let (condition, pred) = sql::translate(checked.expr.as_ref(), ctx)?;
        let condition = Where::all(vec![
            sql::time_range(checked.since, checked.until),
            sql::filters(&req.services, &req.levels),
            condition,
        ]);
        let question = Question {
            session: &session,
            condition,
            pred,
        };
        let style = super::tally_style(req);
        let outcome = if let Some(field) = &req.view.count_by {
            let counts = question.count_by(field).await?;
            answer::write_count_by(req, field, &counts, style, out)?
        } else if let (Some(width), Some(secs)) = (&req.view.histogram, histogram_secs) {
            let (histogram, matched) = question.histogram(secs).await?;
            let range = (checked.since, checked.until);
            answer::write_histogram(&histogram, matched, width, range, style, out)?
        } else {
            question.list(req, out).await?
        };
        out.flush()?;
        Ok(outcome)
    })
}

/// `--incident ID`: the incident as the `incidents` table has it now (its latest change), and
/// its timeline from `events`, printed by `forensic` as for the local index.
fn incident(
    req: &Request,
    t: &forensic::IncidentTimeline,
    backend: &Backend,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let query = lang::parse(&req.query)?;
    let before_asking = sql::Context {
        features: Features::of(Version {
            major: 18,
            minor: 16,
        }),
        incidents: None,
    };
    sql::translate(query.as_ref(), before_asking)?;
    let runtime = runtime()?;
    let session = runtime.block_on(Session::open(backend))?;
    let incidents = runtime.block_on(session.incidents())?;
    let inc = forensic::find_in(&incidents, t, std::path::PathBuf::from(&backend.shown))?;
    let mut source = Timeline {
        runtime: &runtime,
        session: &session,
        query,
        incidents: &incidents,
    };
    forensic::run_on(&mut source, req, t, &inc, out)
}

fn runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BackendError::Runtime)
}

/// An incident's timeline read from `events`.
struct Timeline<'a> {
    runtime: &'a tokio::runtime::Runtime,
    session: &'a Session,
    query: Option<lang::Expr>,
    incidents: &'a [crate::incident::Incident],
}

impl forensic::Source for Timeline<'_> {
    fn read(
        &mut self,
        req: &Request,
        window: forensic::Window,
        each: &mut dyn FnMut(Hit, &plan::Pred) -> Result<bool, QueryError>,
    ) -> Result<u64, QueryError> {
        self.runtime.block_on(async {
            let session = self.session;
            for (path, column) in sql::attribute_paths(self.query.as_ref()) {
                session.check_path(&path, column).await?;
            }
            let ctx = sql::Context {
                features: session.features,
                incidents: Some(self.incidents),
            };
            let (condition, pred) = sql::translate(self.query.as_ref(), ctx)?;
            // Both ends of the window are included; `time_range`'s end is not.
            let until = window.to.map(|to| Timestamp(to.0.saturating_add(1)));
            let condition = Where::all(vec![
                sql::time_range(Some(window.from), until),
                sql::filters(&req.services, &req.levels),
                condition,
            ]);
            let question = Question {
                session,
                condition,
                pred,
            };
            let total = if question.condition.exact {
                question.count().await?
            } else {
                let mut n = 0u64;
                question
                    .each_in_order::<BackendError>(Order::Oldest, |_| {
                        n += 1;
                        Ok(true)
                    })
                    .await?;
                n
            };
            question
                .each_in_order::<QueryError>(Order::Oldest, |hit| each(hit, &question.pred))
                .await?;
            Ok(total)
        })
    }
}

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
struct Session {
    client: clickhouse::Client,
    url: String,
    features: Features,
}

impl Session {
    async fn open(backend: &Backend) -> Result<Session, BackendError> {
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
    async fn check_path(&self, path: &str, column: usize) -> Result<(), QueryError> {
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
    async fn incidents(&self) -> Result<Vec<crate::incident::Incident>, QueryError> {
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

    /// `-A`/`-B`/`-C`: the hits' neighbours in their source files (every event of the file,
    /// whatever the query), grouped by `context::assemble` as for the local index. Per file,
    /// one query counts the events of each gap between consecutive hits, two pick the `after`
    /// first and `before` last of each gap (`LIMIT n BY gap`), one loads those.
    async fn context(
        &self,
        hits: &[Hit],
        lines: context::ContextLines,
    ) -> Result<Vec<context::Group>, QueryError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct GapCount {
            gap: u64,
            n: u64,
        }
        #[derive(Deserialize, clickhouse::Row)]
        struct GapEvent {
            gap: u64,
            off: u64,
        }
        // The file's events other than the hits, each with its offset and its gap (the number
        // of hits before it).
        const FILE: &str = "SELECT toUInt64(arrayCount(x -> x < off, ?)) AS gap, off FROM \
             (SELECT toUInt64OrZero(substring(id, 18)) AS off FROM events FINAL \
              WHERE substring(id, 1, 16) = ?) WHERE NOT has(?, off)";
        let per_file = context::files_of(hits);
        // Each picked event as (offset, fingerprint).
        let mut picked: HashMap<context::GapKey, context::Gap<u64>> = HashMap::new();
        for (fp, offsets) in &per_file {
            let file = || {
                vec![
                    Bind::U64s(offsets.clone()),
                    Bind::Str(format!("{fp:016x}")),
                    Bind::U64s(offsets.clone()),
                ]
            };
            let counts: Vec<GapCount> = self
                .query(
                    &format!("SELECT gap, count() AS n FROM ({FILE}) GROUP BY gap"),
                    &file(),
                )
                .fetch_all()
                .await
                .map_err(|e| self.failed(e))?;
            for c in counts {
                picked.entry((*fp, gap_index(c.gap))).or_default().count = c.n;
            }
            let sides = [
                (lines.after, "gap > 0", "ASC", true),
                (lines.before, "gap < ?", "DESC", false),
            ];
            for (n, which, order, after) in sides {
                if n == 0 {
                    continue;
                }
                let mut binds = file();
                if !after {
                    binds.push(Bind::U64(offsets.len() as u64));
                }
                binds.push(Bind::U64(n as u64));
                let events: Vec<GapEvent> = self
                    .query(
                        &format!(
                            "SELECT gap, off FROM ({FILE}) WHERE {which} ORDER BY off {order} LIMIT ? BY gap"
                        ),
                        &binds,
                    )
                    .fetch_all()
                    .await
                    .map_err(|e| self.failed(e))?;
                for e in events {
                    let gap = picked.entry((*fp, gap_index(e.gap))).or_default();
                    let side = if after {
                        &mut gap.after
                    } else {
                        &mut gap.before
                    };
                    side.push((e.off, *fp));
                }
            }
        }
        context::check_size(&picked)?;
        // Load the picked events, file by file.
        let mut loaded: HashMap<(u64, u64), Hit> = HashMap::new();
        for fp in per_file.keys() {
            let mut wanted: Vec<u64> = picked
                .iter()
                .filter(|((f, _), _)| f == fp)
                .flat_map(|(_, g)| g.after.iter().chain(&g.before).map(|(o, _)| *o))
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            if wanted.is_empty() {
                continue;
            }
            let rows: Vec<HitRow> = self
                .query(
                    "SELECT ?fields FROM events FINAL WHERE substring(id, 1, 16) = ? \
                     AND has(?, toUInt64OrZero(substring(id, 18)))",
                    &[Bind::Str(format!("{fp:016x}")), Bind::U64s(wanted)],
                )
                .fetch_all()
                .await
                .map_err(|e| self.failed(e))?;
            for row in rows {
                let hit = row.into_hit();
                loaded.insert((hit.id.fingerprint, hit.id.offset), hit);
            }
        }
        let groups = context::assemble(hits, lines, &per_file, &picked, &mut |(off, fp)| {
            loaded
                .get(&(*fp, *off))
                .cloned()
                .ok_or_else(|| context::ContextError::Gone(format!("{fp:016x}:{off}")))
        })?;
        Ok(groups)
    }

    /// `sql` with `binds` bound to its `?`s in order.
    fn query(&self, sql: &str, binds: &[Bind]) -> clickhouse::query::Query {
        bound(&self.client, sql, binds)
    }

    fn failed(&self, source: clickhouse::error::Error) -> BackendError {
        BackendError::Query {
            url: self.url.clone(),
            source,
        }
    }
}

/// The columns a [`Hit`] is made of (`SELECT ?fields` lists them in this order).
#[derive(Debug, Deserialize, clickhouse::Row)]
struct HitRow {
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
    fn into_hit(self) -> Hit {
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

/// A gap's index as the server counted it.
fn gap_index(gap: u64) -> usize {
    usize::try_from(gap).unwrap_or(usize::MAX)
}

/// Rows read to find a value at an attribute path before calling it unknown.
const PATH_ROWS: u64 = 100_000;
/// Rows whose attribute paths are the did-you-mean candidates of an unknown one.
const SUGGESTION_ROWS: u64 = 10_000;

/// Event-time order: time, then fingerprint (fixed-width hex), then the offset as a number.
#[derive(Debug, Clone, Copy)]
enum Order {
    Newest,
    Oldest,
}

impl Order {
    fn sql(self) -> &'static str {
        match self {
            Order::Newest => NEWEST_FIRST,
            Order::Oldest => {
                "ts_ns ASC, substring(id, 1, 16) ASC, toUInt64OrZero(substring(id, 18)) ASC"
            }
        }
    }
}

const NEWEST_FIRST: &str =
    "ts_ns DESC, substring(id, 1, 16) DESC, toUInt64OrZero(substring(id, 18)) DESC";

/// One question: its condition (with time range and filters) and the predicate that decides
/// what the condition only narrows.
struct Question<'a> {
    session: &'a Session,
    condition: Where,
    pred: plan::Pred,
}

impl Question<'_> {
    fn decides(&self, hit: &Hit) -> bool {
        self.condition.exact || self.pred.eval(hit)
    }

    /// Candidates in `order`, each decided, handed to `each` until it returns false.
    async fn each_in_order<E: From<BackendError>>(
        &self,
        order: Order,
        mut each: impl FnMut(Hit) -> Result<bool, E>,
    ) -> Result<(), E> {
        let text = format!(
            "SELECT ?fields FROM events FINAL WHERE {} ORDER BY {}",
            self.condition.sql,
            order.sql()
        );
        let mut cursor = self
            .session
            .query(&text, &self.condition.binds)
            .fetch::<HitRow>()
            .map_err(|e| self.session.failed(e))?;
        while let Some(row) = cursor.next().await.map_err(|e| self.session.failed(e))? {
            let hit = row.into_hit();
            if self.decides(&hit) && !each(hit)? {
                break;
            }
        }
        Ok(())
    }

    async fn count(&self) -> Result<u64, BackendError> {
        let text = format!(
            "SELECT count() FROM events FINAL WHERE {}",
            self.condition.sql
        );
        self.session
            .query(&text, &self.condition.binds)
            .fetch_one()
            .await
            .map_err(|e| self.session.failed(e))
    }

    /// The listing (or `--count`), as `answer::list` gives it for the local index.
    async fn list(&self, req: &Request, out: &mut dyn Write) -> Result<Outcome, QueryError> {
        let limit = if req.count {
            0
        } else {
            req.limit.unwrap_or(usize::MAX)
        };
        let mut found = Found::default();
        if self.condition.exact {
            found.matched = self.count().await?;
            found.exact = true;
            if limit > 0 && found.matched > 0 {
                let mut text = format!(
                    "SELECT ?fields FROM events FINAL WHERE {} ORDER BY {NEWEST_FIRST}",
                    self.condition.sql
                );
                let mut binds = self.condition.binds.clone();
                if limit != usize::MAX {
                    text.push_str(" LIMIT ?");
                    binds.push(Bind::U64(limit as u64));
                }
                let rows: Vec<HitRow> = self
                    .session
                    .query(&text, &binds)
                    .fetch_all()
                    .await
                    .map_err(|e| self.session.failed(e))?;
                found.hits = rows.into_iter().rev().map(HitRow::into_hit).collect();
            }
        } else {
            // Decide newest first; a listing stops at the first match past its limit, as the
            // local index's does (it then knows the limit cut, not by how much).
            let mut matched = 0u64;
            let mut more = false;
            let mut hits = Vec::new();
            self.each_in_order::<BackendError>(Order::Newest, |hit| {
                if limit == 0 {
                    matched += 1;
                    return Ok(true);
                }
                if hits.len() == limit {
                    more = true;
                    return Ok(false);
                }
                hits.push(hit);
                Ok(true)
            })
            .await?;
            hits.reverse();
            found.matched = if limit == 0 {
                matched
            } else {
                hits.len() as u64 + u64::from(more)
            };
            found.exact = !more;
            found.hits = hits;
        }
        let outcome = answer::listing_outcome(req, &found);
        if req.count {
            writeln!(out, "{}", found.matched)?;
            return Ok(outcome);
        }
        if req.view.reverse {
            found.hits.reverse();
        }
        let highlights = self.pred.highlights();
        if let Some(lines) = req.view.context {
            if req.json {
                return Err(QueryError::Options(
                    "context lines (-A/-B/-C) print text lines only",
                ));
            }
            let groups = self.session.context(&found.hits, lines).await?;
            answer::write_groups(req, &groups, &highlights, out)?;
            return Ok(outcome);
        }
        answer::write_hits(req, &found.hits, &highlights, out)?;
        Ok(outcome)
    }

    /// `--count-by FIELD`: grouped by the server for a column of an exact question, else
    /// counted over the decided rows with the output's own reading of the field.
    async fn count_by(&self, field: &str) -> Result<tally::ValueCounts, BackendError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Group {
            value: String,
            n: u64,
        }
        let column = match field {
            "service" => Some("service"),
            "level" => Some("level"),
            _ => None,
        };
        if let Some(column) = column.filter(|_| self.condition.exact) {
            let text = format!(
                "SELECT {column} AS value, count() AS n FROM events FINAL WHERE {} GROUP BY value",
                self.condition.sql
            );
            let groups: Vec<Group> = self
                .session
                .query(&text, &self.condition.binds)
                .fetch_all()
                .await
                .map_err(|e| self.session.failed(e))?;
            let map: HashMap<Option<String>, u64> =
                groups.into_iter().map(|g| (Some(g.value), g.n)).collect();
            return Ok(tally::ValueCounts::from_map(map));
        }
        let mut counts = tally::ValueCounts::default();
        self.each_in_order::<BackendError>(Order::Newest, |hit| {
            counts.add(crate::query::output::column_value(&hit, field).map(|v| v.into_owned()));
            Ok(!counts.overflowed())
        })
        .await?;
        Ok(counts)
    }

    /// `--histogram`: buckets of `secs` counted by the server for an exact question, else over
    /// the decided rows.
    async fn histogram(&self, secs: i64) -> Result<(tally::Histogram, u64), BackendError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Bucket {
            bucket: u64,
            n: u64,
        }
        let secs = secs.max(1);
        if self.condition.exact {
            let width_ns = u64::try_from(secs)
                .unwrap_or(u64::MAX)
                .saturating_mul(1_000_000_000);
            let text = format!(
                "SELECT intDiv(ts_ns, ?) AS bucket, count() AS n FROM events FINAL WHERE {} GROUP BY bucket",
                self.condition.sql
            );
            let mut binds = vec![Bind::U64(width_ns)];
            binds.extend(self.condition.binds.iter().cloned());
            let buckets: Vec<Bucket> = self
                .session
                .query(&text, &binds)
                .fetch_all()
                .await
                .map_err(|e| self.session.failed(e))?;
            let matched = buckets.iter().map(|b| b.n).sum();
            let counts = buckets.into_iter().map(|b| {
                let start = i64::try_from(b.bucket)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(secs);
                (start, b.n)
            });
            return Ok((tally::Histogram::from_counts(secs, counts), matched));
        }
        let mut histogram = tally::Histogram::new(secs);
        let mut matched = 0u64;
        self.each_in_order::<BackendError>(Order::Newest, |hit| {
            histogram.add(hit.ts);
            matched += 1;
            Ok(true)
        })
        .await?;
        Ok((histogram, matched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls() {
        let b = Backend::parse("clickhouse://ch.internal:8123/logs", None, None).unwrap();
        assert_eq!(b.url, "http://ch.internal:8123");
        assert_eq!(b.database, "logs");
        let b = Backend::parse("http://127.0.0.1/logs/", None, None).unwrap();
        assert_eq!(b.url, "http://127.0.0.1:8123");
        assert_eq!(b.database, "logs");
        for bad in [
            "ch:8123/logs",
            "clickhouse://ch:8123",
            "clickhouse://ch:8123/",
            "clickhouse://ch:port/logs",
            "https://ch:8443/logs",
            "clickhouse://u:p@ch:8123/logs",
        ] {
            assert!(Backend::parse(bad, None, None).is_err(), "{bad}");
        }
    }
}
