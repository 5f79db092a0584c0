//! Questions over the store: the loggrep face.
//!
//! A [`Request`] (a plain struct; the binary's flags never travel further) goes through
//! `lang` (query text → AST), `time` (`--since`/`--until`/`--around`), `plan` (AST → a narrowing
//! tantivy query plus a deciding predicate), `search` (candidates in event-time order, decided,
//! limited), `context` (`-A`/`-B`/`-C` neighbours from the same file), `tally` (`--count-by`,
//! `--histogram`) and `output` (terminal lines, chosen columns, CSV or NDJSON). [`run`] wires
//! them (`answer` holds the three answers: the listing, `--count-by`, `--histogram`) and returns
//! an [`Outcome`]; the binary turns that into an exit code.
//!
//! Semantics users rely on: literal text matches exactly the events whose raw text contains it
//! (what `grep -F` finds in the files), with smart case; results come in event-time order (ts,
//! then event id), newest first with `reverse`; `--count` agrees with the listing; `--limit`
//! keeps the newest N and the [`Outcome`] says when it cut; context lines are those `grep -C`
//! prints around the same match in the same file.

mod answer;
pub mod clickhouse;
pub mod context;
pub mod follow;
pub mod forensic;
pub mod incidents;
pub mod lang;
pub mod output;
pub mod pattern;
pub mod plan;
pub mod remote;
pub mod search;
pub mod tally;
pub mod time;
pub mod timerange;

use std::io::Write;
use std::ops::Bound;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tantivy::Searcher;
use tantivy::query::{BooleanQuery, Occur, Query};

use crate::event::{Level, Timestamp};
use crate::source::checkpoint::Checkpoints;
use crate::store::index::{EventIndex, IndexError};
use crate::store::vocab::Vocab;

/// One loggrep question.
#[derive(Debug, Clone)]
pub struct Request {
    /// The data dir; the index is `<data_dir>/index`.
    pub data_dir: PathBuf,
    /// Query text (empty: every event).
    pub query: String,
    /// Events at or after this time (relative like `2h`, or absolute).
    pub since: Option<String>,
    /// Events strictly before this time.
    pub until: Option<String>,
    /// Only these services (any of them); empty: all.
    pub services: Vec<String>,
    /// Only these levels exactly (any of them); empty: all.
    pub levels: Vec<Level>,
    pub json: bool,
    /// Print only the number of matches.
    pub count: bool,
    /// Keep the newest N matches (`None`: all).
    pub limit: Option<usize>,
    pub color: bool,
    /// "Now" for relative times (tests pass a fixed instant).
    pub now: Timestamp,
    // Forensic (issue 6): `--incident` / `--export`, `--follow`. At most one of them.
    /// Print (or export) one incident's timeline instead of searching.
    pub incident: Option<forensic::IncidentTimeline>,
    /// Keep printing new matches as they are indexed.
    pub follow: Option<follow::Follow>,
    /// `--around T --window W`: only events from T − W to T + W (both included; intersected with
    /// `since`/`until` when those are given too).
    pub around: Option<Around>,
    /// Order, columns, format, context and tallies (issue 6); the default is the plain listing.
    pub view: View,
}

#[cfg(test)]
impl Request {
    /// The plain listing of `query` over `data_dir`: no filter, limit or option; "now" is `now`.
    pub(crate) fn plain(data_dir: &std::path::Path, query: &str, now: Timestamp) -> Request {
        Request {
            data_dir: data_dir.to_path_buf(),
            query: query.into(),
            since: None,
            until: None,
            services: vec![],
            levels: vec![],
            json: false,
            count: false,
            limit: None,
            color: false,
            now,
            incident: None,
            follow: None,
            around: None,
            view: View::default(),
        }
    }
}

/// A time and the half-width of the window around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Around {
    /// Same forms as `since`.
    pub time: String,
    /// A duration (`5m`).
    pub window: String,
}

/// How to present the matches. `Default` is the plain listing in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Newest first (the same newest `limit` events, printed in reverse).
    pub reverse: bool,
    /// Columns to print instead of the `ts service level raw` line (see [`output`]); empty: the
    /// line, or every field with `json`.
    pub fields: Vec<String>,
    /// CSV (RFC 4180) with a header row.
    pub csv: bool,
    /// Events before/after each hit from the same source file, grouped as `grep -C` groups
    /// them, `--` between groups. Text output only.
    pub context: Option<context::ContextLines>,
    /// Print the number of matches per value of this field instead of the events.
    pub count_by: Option<String>,
    /// With `count_by`: only the N most frequent values.
    pub top: Option<usize>,
    /// Print a histogram of matches over time with buckets this wide (`1m`).
    pub histogram: Option<String>,
}

/// What a run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Number of matching events (all of them, not only the printed ones), or at least this many
    /// when a listing's cut says `of: None`.
    pub matched: u64,
    /// True when `limit` cut the listing.
    pub truncated: bool,
    /// What `limit` or `top` left out, for the binary to say.
    pub cut: Option<Cut>,
}

/// The output shows `shown` of `of` things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    pub shown: u64,
    /// Out of how many, when known (a listing cut by `--limit` may stop before knowing).
    pub of: Option<u64>,
    pub what: CutWhat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CutWhat {
    /// `--limit` kept the newest events.
    Events,
    /// `--top` kept the most frequent values.
    Values,
}

#[derive(thiserror::Error, Debug)]
pub enum QueryError {
    #[error(transparent)]
    Forensic(#[from] forensic::ForensicError),
    #[error("query syntax error at {0}")]
    Syntax(#[from] lang::SyntaxError),
    #[error("query error at {0}")]
    Plan(#[from] plan::PlanError),
    #[error("{flag}: {source}")]
    Time {
        flag: &'static str,
        source: time::TimeError,
    },
    #[error("{flag}: {source}")]
    Duration {
        flag: &'static str,
        source: time::DurationError,
    },
    #[error("{0}")]
    Options(&'static str),
    #[error("--fields: empty column name in `{0}`")]
    EmptyColumn(String),
    #[error(
        "--count-by {field}: more than {max} distinct values; count by a field with fewer values or narrow the query",
        max = tally::MAX_VALUES
    )]
    TooManyValues { field: String },
    #[error(
        "--histogram {width}: {buckets} buckets from {from} to {to} (at most {max}); use a wider bucket or narrow the time range",
        max = tally::MAX_BUCKETS
    )]
    TooManyBuckets {
        width: String,
        buckets: i64,
        from: Timestamp,
        to: Timestamp,
    },
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    ClickHouse(#[from] clickhouse::BackendError),
    #[error("search failed: {0}")]
    Search(#[from] tantivy::TantivyError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl QueryError {
    /// The 1-based column in the query text, for errors that have one.
    pub fn column(&self) -> Option<usize> {
        match self {
            QueryError::Syntax(e) => Some(e.column),
            QueryError::Plan(e) => Some(e.column()),
            _ => None,
        }
    }

    /// True when stdout went away (a closed pipe): not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, QueryError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// The request's query, `--service` and `--level` filters and the time range `[lo, hi]`, as one
/// tantivy query (the range is part of it, so the index reads nothing outside it) and the plan.
pub(crate) fn narrowed(
    req: &Request,
    expr: Option<&lang::Expr>,
    index: &EventIndex,
    searcher: &Searcher,
    lo: Bound<Timestamp>,
    hi: Bound<Timestamp>,
) -> Result<(Box<dyn Query>, plan::Plan), QueryError> {
    let fields = index.fields();
    let vocab = Vocab::new(&req.data_dir, fields.raw);
    let ctx = plan::Context {
        fields,
        searcher,
        vocab: Some(&vocab),
        data_dir: Some(&req.data_dir),
        sources: indexed_sources(index)?,
    };
    let planned = plan::plan(expr, &ctx)?;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, planned.query.box_clone())];
    if !req.services.is_empty() {
        clauses.push((Occur::Must, plan::filter_services(&req.services, fields)));
    }
    if !req.levels.is_empty() {
        clauses.push((Occur::Must, plan::filter_levels(&req.levels, fields)));
    }
    if lo != Bound::Unbounded || hi != Bound::Unbounded {
        clauses.push((
            Occur::Must,
            Box::new(timerange::TimeRange::new(fields, lo, hi)),
        ));
    }
    Ok((Box::new(BooleanQuery::new(clauses)), planned))
}

pub fn run(req: &Request, out: &mut dyn Write) -> Result<Outcome, QueryError> {
    if let Some(t) = &req.incident {
        return forensic::run(req, t, out);
    }
    if let Some(f) = &req.follow {
        return follow::run(req, f, out);
    }
    // The question is checked before the index is opened: a bad query is exit 2 with its column
    // also where there is no index yet.
    let checked = check(req)?;
    let index = EventIndex::open_existing(&req.data_dir.join("index"))?;
    run_on(req, checked, &index, out)
}

/// A question whose query, times and view are valid: what [`check`] read of them.
#[derive(Debug)]
pub struct Checked {
    expr: Option<lang::Expr>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

/// The query, times and view of `req`, checked without touching the index: a bad question is
/// refused as such also where there is no index yet.
pub fn check(req: &Request) -> Result<Checked, QueryError> {
    let expr = lang::parse(&req.query)?;
    let (since, until) = time_range(req)?;
    answer::check_view(&req.view)?;
    Ok(Checked { expr, since, until })
}

/// [`run`] on an index that is already open (a long-lived server keeps one; its files stay
/// mapped from one question to the next), `checked` being [`check`]'s reading of `req`.
/// `req.incident` and `req.follow` are not for this.
pub fn run_on(
    req: &Request,
    checked: Checked,
    index: &EventIndex,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let Checked { expr, since, until } = checked;
    let searcher = index.searcher()?;
    let fields = index.fields();
    let lo = since.map_or(Bound::Unbounded, Bound::Included);
    let hi = until.map_or(Bound::Unbounded, Bound::Excluded);
    let (query, planned) = narrowed(req, expr.as_ref(), index, &searcher, lo, hi)?;

    let style = tally_style(req);
    let outcome = if let Some(field) = &req.view.count_by {
        answer::count_by(
            req,
            &searcher,
            fields,
            query.as_ref(),
            &planned,
            field,
            style,
            out,
        )?
    } else if let Some(width) = &req.view.histogram {
        let range = (since, until);
        answer::histogram(
            &searcher,
            fields,
            query.as_ref(),
            &planned,
            width,
            range,
            style,
            out,
        )?
    } else {
        answer::list(req, &searcher, fields, query.as_ref(), &planned, out)?
    };
    out.flush()?;
    Ok(outcome)
}

/// How tallies (`--count-by`, `--histogram`) print for `req`.
fn tally_style(req: &Request) -> tally::Style {
    if req.json {
        tally::Style::Json
    } else if req.view.csv {
        tally::Style::Csv
    } else {
        tally::Style::Text { fancy: req.color }
    }
}

/// Every level at least as severe as the least severe one given (none given: no filter): what
/// loggrep's `--level` (and the API's `level`) ask for.
pub fn at_least(given: &[Level]) -> Vec<Level> {
    let Some(min) = given.iter().copied().filter(|l| *l != Level::Unknown).min() else {
        return given.to_vec();
    };
    Level::ALL
        .into_iter()
        .filter(|l| *l != Level::Unknown && *l >= min)
        .collect()
}

/// `since`/`until`, narrowed by `around` (T − W included, T + W included).
fn time_range(req: &Request) -> Result<(Option<Timestamp>, Option<Timestamp>), QueryError> {
    let at = |flag: &'static str, text: Option<&str>| {
        text.map(|s| time::parse(s, req.now))
            .transpose()
            .map_err(|source| QueryError::Time { flag, source })
    };
    let mut since = at("--since", req.since.as_deref())?;
    let mut until = at("--until", req.until.as_deref())?;
    if let Some(around) = &req.around {
        let center = at("--around", Some(&around.time))?.unwrap_or(req.now);
        let window =
            time::parse_duration(&around.window).map_err(|source| QueryError::Duration {
                flag: "--window",
                source,
            })?;
        let lo = center.plus_secs(-window);
        // `until` is exclusive; one microsecond more includes T + W itself.
        let hi = Timestamp(center.plus_secs(window).0.saturating_add(1));
        since = Some(since.map_or(lo, |s| s.max(lo)));
        until = Some(until.map_or(hi, |u| u.min(hi)));
    }
    Ok((since, until))
}

/// Every source file of the index's last commit, (fingerprint, path); an unreadable payload
/// (an index written by something else) names none.
pub(crate) fn indexed_sources(index: &EventIndex) -> Result<Vec<(u64, PathBuf)>, QueryError> {
    let Some(payload) = index.last_payload()? else {
        return Ok(Vec::new());
    };
    let Ok(checkpoints) = Checkpoints::decode(&payload) else {
        return Ok(Vec::new());
    };
    Ok(checkpoints
        .files
        .iter()
        .filter_map(|(key, file)| {
            let fp = u64::from_str_radix(key, 16).ok()?;
            Some((fp, file.path.clone()))
        })
        .collect())
}

#[cfg(test)]
mod tests;
