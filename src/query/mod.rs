//! Questions over the store: the loggrep face.
//!
//! A [`Request`] (a plain struct; the binary's flags never travel further) goes through
//! `lang` (query text → AST), `time` (`--since`/`--until`), `plan` (AST → a narrowing tantivy
//! query plus a deciding predicate), `search` (candidates in event-time order, decided, limited)
//! and `output` (terminal lines or NDJSON). [`run`] wires them and returns an [`Outcome`]; the
//! binary turns that into an exit code.
//!
//! Semantics users rely on: literal text matches exactly the events whose raw text contains it
//! (what `grep -F` finds in the files), with smart case; results come in event-time order (ts,
//! then event id); `--count` agrees with the listing; `--limit` keeps the newest N.

pub mod follow;
pub mod forensic;
pub mod incidents;
pub mod lang;
pub mod output;
pub mod pattern;
pub mod plan;
pub mod search;
pub mod time;

use std::io::Write;
use std::ops::Bound;
use std::path::PathBuf;

use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::{DateTime, Term};

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
}

/// What a run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Number of matching events (all of them, not only the printed ones).
    pub matched: u64,
    /// True when `limit` cut the listing.
    pub truncated: bool,
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
    #[error(transparent)]
    Index(#[from] IndexError),
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

/// Answer `req`, writing the result to `out`.
pub fn run(req: &Request, out: &mut dyn Write) -> Result<Outcome, QueryError> {
    if let Some(t) = &req.incident {
        return forensic::run(req, t, out);
    }
    if let Some(f) = &req.follow {
        return follow::run(req, f, out);
    }
    let expr = lang::parse(&req.query)?;
    let since = req
        .since
        .as_deref()
        .map(|s| time::parse(s, req.now))
        .transpose()
        .map_err(|source| QueryError::Time {
            flag: "--since",
            source,
        })?;
    let until = req
        .until
        .as_deref()
        .map(|s| time::parse(s, req.now))
        .transpose()
        .map_err(|source| QueryError::Time {
            flag: "--until",
            source,
        })?;

    let index = EventIndex::open_existing(&req.data_dir.join("index"))?;
    let searcher = index.searcher()?;
    let fields = index.fields();
    let vocab = Vocab::new(&req.data_dir, fields.raw);
    let ctx = plan::Context {
        fields,
        searcher: &searcher,
        vocab: Some(&vocab),
        data_dir: Some(&req.data_dir),
        sources: indexed_sources(&index)?,
    };
    let planned = plan::plan(expr.as_ref(), &ctx)?;

    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, planned.query.box_clone())];
    if !req.services.is_empty() {
        clauses.push((Occur::Must, plan::filter_services(&req.services, fields)));
    }
    if !req.levels.is_empty() {
        clauses.push((Occur::Must, plan::filter_levels(&req.levels, fields)));
    }
    if since.is_some() || until.is_some() {
        let term = |t: Timestamp| {
            Term::from_field_date(fields.ts, DateTime::from_timestamp_micros(t.as_micros()))
        };
        let lo = since.map_or(Bound::Unbounded, |t| Bound::Included(term(t)));
        let hi = until.map_or(Bound::Unbounded, |t| Bound::Excluded(term(t)));
        clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
    }
    let query = BooleanQuery::new(clauses);

    let keep = search::Keep {
        limit: req.limit,
        count_only: req.count,
    };
    let found = search::search(&searcher, fields, &query, &planned, keep)?;
    let truncated = !req.count && (found.hits.len() as u64) < found.matched;

    if req.count {
        writeln!(out, "{}", found.matched)?;
    } else {
        let highlights = planned.pred.highlights();
        for hit in &found.hits {
            if req.json {
                output::write_json(out, hit)?;
            } else {
                output::write_line(out, hit, &highlights, req.color)?;
            }
        }
    }
    out.flush()?;
    Ok(Outcome {
        matched: found.matched,
        truncated,
    })
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
