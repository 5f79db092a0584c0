//! The post-mortem view of one incident: `loggrep --incident ID [--lead 10m] [--export DIR]`.
//!
//! Owns: finding the incident (id or unique prefix, as `logwarden incident` does), the timeline
//! window (from `lead` before the incident was first seen to its resolution; open: unbounded, so
//! up to the last event indexed), marking the incident's own events in that window, and writing
//! the export (`timeline.ndjson` + `incident.json`).
//!
//! Takes a [`Request`] (its query, `--service` and `--level` narrow the timeline; its
//! `--since`/`--until` are replaced by the window; `--limit N` keeps the *first* N events, the
//! lead-up being what a post-mortem reads first) and gives the same [`Outcome`] as a search.
//! The timeline is streamed (sort keys in memory, events loaded one at a time), so neither the
//! listing nor an export of a long window holds it all in memory.
//! Must not: change the incident log or the index, or decide exit codes.
//!
//! Which events are "the incident's": its evidence events, and every event in the incident's
//! lifetime (first match to resolution) whose matches went *to its group* (same rule, service and
//! `group_by` values), read from the `groups` field indexing stored with each event: exactly what
//! `incident:ID` finds ([`plan::incident_events`]). So the rules of the run that indexed the events
//! decide (the embedded pack or a `--patterns` folder), and no rule is matched again here.

use std::collections::HashSet;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use crate::detect::pack;
use crate::event::{EventId, Timestamp};
use crate::incident::Incident;
use crate::query::incidents::{self as views, Style};
use crate::query::search::{self, Hit, Keep};
use crate::query::{Outcome, QueryError, Request, lang, narrowed, output, plan};
use crate::store::incidents::IncidentLogError;
use crate::store::index::EventIndex;

/// Default lead time before the incident's first event (`--lead`).
pub const DEFAULT_LEAD_SECS: i64 = 600;

/// File names of an export.
pub const TIMELINE_FILE: &str = "timeline.ndjson";
pub const INCIDENT_FILE: &str = "incident.json";

/// `--incident ID [--lead D] [--export DIR]`.
#[derive(Debug, Clone)]
pub struct IncidentTimeline {
    /// Full incident id or a unique prefix (with or without `inc-`).
    pub id: String,
    /// Seconds of timeline before the incident's first event.
    pub lead_secs: i64,
    /// Write the export into this directory (created when missing) instead of printing the
    /// timeline; the export holds every event of the window, whatever the limit.
    pub export: Option<PathBuf>,
}

#[derive(thiserror::Error, Debug)]
pub enum ForensicError {
    #[error(
        "no incident `{id}` in {dir} (an unknown id, or a prefix of several; see `logwarden incidents`)"
    )]
    UnknownIncident { id: String, dir: PathBuf },
    #[error("reading the incident log: {0}")]
    Log(#[from] IncidentLogError),
    #[error("writing the export {path}: {source}")]
    Export {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The window of an incident's timeline: `[from, to]`, `to` unbounded while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Option<Timestamp>,
}

impl Window {
    pub fn of(inc: &Incident, lead_secs: i64) -> Window {
        let start = inc.first_seen.min(inc.opened_at);
        Window {
            from: start.plus_secs(-lead_secs),
            to: inc.resolved_at.map(|r| r.max(inc.last_seen)),
        }
    }
}

/// One event of the timeline and whether it is one of the incident's.
#[derive(Debug, Clone)]
pub struct Entry {
    pub hit: Hit,
    pub marked: bool,
}

/// Which events are the incident's own (see the module doc).
struct Own {
    evidence: HashSet<EventId>,
    /// Its group's events during its lifetime.
    events: plan::Pred,
}

impl Own {
    fn of(inc: &Incident) -> Own {
        Own {
            evidence: inc.evidence.iter().map(|e| e.event).collect(),
            events: plan::incident_events(inc),
        }
    }

    fn contains(&self, hit: &Hit) -> bool {
        self.evidence.contains(&hit.id) || self.events.eval(hit)
    }
}

/// Where a timeline's events are read from: the local index ([`Local`]), or the ClickHouse
/// tables (`query::clickhouse`). Marking the incident's own events, the limit and every byte
/// printed stay here, the same for both.
pub trait Source {
    /// The events of `window` (both ends included) that the request's query and filters keep,
    /// in event-time order, handed to `each` with the query's deciding predicate (for
    /// highlights) until it returns `false`; returns how many there are in all.
    fn read(
        &mut self,
        req: &Request,
        window: Window,
        each: &mut dyn FnMut(Hit, &plan::Pred) -> Result<bool, QueryError>,
    ) -> Result<u64, QueryError>;
}

/// The local index of `req.data_dir`.
pub struct Local;

impl Source for Local {
    fn read(
        &mut self,
        req: &Request,
        window: Window,
        each: &mut dyn FnMut(Hit, &plan::Pred) -> Result<bool, QueryError>,
    ) -> Result<u64, QueryError> {
        let index = EventIndex::open_existing(&req.data_dir.join("index"))?;
        let searcher = index.searcher()?;
        let fields = index.fields();
        let upper = window.to.map_or(Bound::Unbounded, Bound::Included);
        let (query, planned) = narrowed(
            req,
            lang::parse(&req.query)?.as_ref(),
            &index,
            &searcher,
            Bound::Included(window.from),
            upper,
        )?;
        // Counted apart: `each` may stop the reading early (from the fast fields alone when the
        // index decides the query).
        let count = Keep {
            limit: None,
            count_only: true,
        };
        let total = search::search(&searcher, fields, query.as_ref(), &planned, count)?.matched;
        search::each_in_order(&searcher, fields, query.as_ref(), &planned, |hit| {
            each(hit, &planned.pred)
        })?;
        Ok(total)
    }
}

/// The incident `t.id` names among `incidents`, or [`ForensicError::UnknownIncident`] naming
/// `place`.
pub fn find_in(
    incidents: &[Incident],
    t: &IncidentTimeline,
    place: PathBuf,
) -> Result<Incident, ForensicError> {
    crate::store::incidents::find(incidents, &t.id)
        .cloned()
        .ok_or_else(|| ForensicError::UnknownIncident {
            id: t.id.clone(),
            dir: place,
        })
}

/// The incident `t.id` names in the data dir, or [`ForensicError::UnknownIncident`].
pub fn find(req: &Request, t: &IncidentTimeline) -> Result<Incident, ForensicError> {
    let incidents = views::load(&req.data_dir)?;
    find_in(&incidents, t, req.data_dir.clone())
}

/// Read the timeline from its start, handing each event (marked or not) to `each` until it
/// returns `false`; the total number of events in the window comes back. Memory holds sort keys
/// and the evidence ids, never the whole timeline.
pub fn read(
    source: &mut dyn Source,
    req: &Request,
    inc: &Incident,
    window: Window,
    mut each: impl FnMut(Entry, &plan::Pred) -> Result<bool, QueryError>,
) -> Result<u64, QueryError> {
    let own = Own::of(inc);
    source.read(req, window, &mut |hit, pred| {
        let marked = own.contains(&hit);
        each(Entry { hit, marked }, pred)
    })
}

/// `loggrep --incident`: print the incident and the first `--limit` events of its timeline, or
/// write the export.
pub fn run(
    req: &Request,
    t: &IncidentTimeline,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let inc = find(req, t)?;
    run_on(&mut Local, req, t, &inc, out)
}

/// [`run`] over `source`, `inc` being the incident `t` names there.
pub fn run_on(
    source: &mut dyn Source,
    req: &Request,
    t: &IncidentTimeline,
    inc: &Incident,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let inc = inc.clone();
    let window = Window::of(&inc, t.lead_secs);
    if let Some(dir) = &t.export {
        let (events, marked) = export(source, req, &inc, window, dir)?;
        writeln!(
            out,
            "exported {} events of {} ({} marked) to {} and the incident to {}",
            events,
            inc.id,
            marked,
            dir.join(TIMELINE_FILE).display(),
            dir.join(INCIDENT_FILE).display()
        )?;
        out.flush()?;
        return Ok(Outcome {
            matched: events,
            truncated: false,
            cut: None,
        });
    }

    if !req.json {
        let style = Style { color: req.color };
        // As `logwarden incident` shows it: who the escalation level means, from the runbook.
        let runbook = crate::runbook::Runbook::parse(pack::default_runbook());
        write!(out, "{}", views::detail(&inc, &runbook.escalation, style))?;
        let to = window
            .to
            .map_or_else(|| "now (still open)".to_string(), |t| t.to_string());
        writeln!(
            out,
            "\nTimeline: {} to {}; `>` marks the incident's own events",
            window.from, to
        )?;
    }
    let limit = req.limit.unwrap_or(usize::MAX);
    let mut shown = 0usize;
    let total = read(source, req, &inc, window, |e, pred| {
        if shown >= limit {
            return Ok(false);
        }
        shown += 1;
        if req.json {
            write_json(out, &e)?;
        } else {
            out.write_all(if e.marked { b"> " } else { b"  " })?;
            let highlights = pred.highlights();
            output::write_line(out, &e.hit, &highlights, req.color)?;
        }
        Ok(true)
    })?;
    out.flush()?;
    Ok(Outcome {
        matched: total,
        truncated: (shown as u64) < total,
        cut: None,
    })
}

/// Write `timeline.ndjson` (every event of the window, streamed) and `incident.json` into `dir`
/// (created when missing). Returns the number of events written and of those marked.
pub fn export(
    source: &mut dyn Source,
    req: &Request,
    inc: &Incident,
    window: Window,
    dir: &Path,
) -> Result<(u64, u64), QueryError> {
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ForensicError::Export { path, source }
    };
    std::fs::create_dir_all(dir).map_err(fail(dir))?;

    let path = dir.join(TIMELINE_FILE);
    let file = std::fs::File::create(&path).map_err(fail(&path))?;
    let mut w = std::io::BufWriter::new(file);
    let mut marked = 0;
    let events = read(source, req, inc, window, |e, _| {
        marked += u64::from(e.marked);
        write_json(&mut w, &e).map_err(fail(&path))?;
        Ok(true)
    })?;
    w.flush().map_err(fail(&path))?;
    w.get_ref().sync_all().map_err(fail(&path))?;

    let path = dir.join(INCIDENT_FILE);
    let mut text =
        serde_json::to_string_pretty(inc).map_err(|e| fail(&path)(std::io::Error::other(e)))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(fail(&path))?;
    Ok((events, marked))
}

/// One timeline event as `loggrep --json` prints it, with `"marked"` added as the last key.
pub fn write_json(out: &mut dyn Write, e: &Entry) -> std::io::Result<()> {
    let mut line = Vec::new();
    output::write_json(&mut line, &e.hit)?;
    // `write_json` writes one JSON object and a newline: put the key before its closing brace,
    // so the shape stays exactly that of `--json` whatever fields it gains.
    let trimmed = line.trim_ascii_end();
    let body = trimmed.strip_suffix(b"}").ok_or_else(|| {
        std::io::Error::other("an event's JSON line does not end with an object's closing brace")
    })?;
    out.write_all(body)?;
    if body.last() != Some(&b'{') {
        out.write_all(b",")?;
    }
    writeln!(out, "\"marked\":{}}}", e.marked)
}

#[cfg(test)]
mod tests {
    use tantivy::collector::Count;

    use super::*;
    use crate::event::Events;
    use crate::store::index::tests::event;

    fn request(dir: &Path, query: &str) -> Request {
        Request::plain(dir, query, Timestamp::from_secs(0))
    }

    /// The time range is a clause of the tantivy query itself: even a query the index cannot
    /// decide (a substring inside a token) yields no candidate outside the range, so nothing
    /// outside it is loaded or checked.
    #[test]
    fn the_time_range_narrows_the_index_query_itself() {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_or_create(&dir.path().join("index")).unwrap();
        let mut sink = index.writer(15_000_000).unwrap();
        let events = (0..100)
            .map(|i| event(1, i * 100, i as i64 * 1000, "app", "connection refused"))
            .collect();
        sink.add(&Events::new(events)).unwrap();
        sink.commit("{}").unwrap();
        let searcher = index.searcher().unwrap();
        for query in ["", "refused", "onnectio"] {
            let req = request(dir.path(), query);
            let (q, _) = narrowed(
                &req,
                lang::parse(&req.query).unwrap().as_ref(),
                &index,
                &searcher,
                Bound::Included(Timestamp::from_millis(10_000)),
                Bound::Excluded(Timestamp::from_millis(20_000)),
            )
            .unwrap();
            assert_eq!(searcher.search(q.as_ref(), &Count).unwrap(), 10, "{query}");
        }
    }

    #[test]
    fn a_timeline_line_is_the_json_line_with_marked_last() {
        let hit = Hit {
            rules: Vec::new(),
            classes: Vec::new(),
            groups: Vec::new(),
            id: EventId {
                fingerprint: 1,
                offset: 2,
            },
            ts: Timestamp::from_millis(0),
            service: "app".into(),
            level: crate::event::Level::Info,
            message: "m".into(),
            raw: "r}".into(),
            fields: serde_json::Map::new(),
            flags: crate::event::Flags::default(),
        };
        let mut plain = Vec::new();
        output::write_json(&mut plain, &hit).unwrap();
        let mut marked = Vec::new();
        write_json(&mut marked, &Entry { hit, marked: true }).unwrap();
        let mut want: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        want["marked"] = serde_json::Value::Bool(true);
        let got: serde_json::Value = serde_json::from_slice(&marked).unwrap();
        assert_eq!(got, want);
        assert!(marked.ends_with(b",\"marked\":true}\n"));
    }
}
