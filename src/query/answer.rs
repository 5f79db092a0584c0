//! The three answers to a planned query: the listing (hits, with context when asked, as text,
//! columns, CSV or NDJSON), `--count-by` and `--histogram`; and the check of which view options
//! go together.
//!
//! Takes the request, the searcher and the combined query; gives the [`Outcome`] and writes to
//! `out`. Each tally first asks the fast columns (when the index decides the query alone) and
//! falls back to reading the matching events. Must not: parse queries or times, or decide exit
//! codes.

use std::io::Write;

use tantivy::Searcher;
use tantivy::query::Query;

use crate::event::Timestamp;
use crate::query::{
    Cut, CutWhat, Outcome, QueryError, Request, View, context, output, plan, search, tally, time,
};
use crate::store::schema::{self, Fields};

/// Refuse combinations the view cannot print.
pub(super) fn check_view(view: &View) -> Result<(), QueryError> {
    if view.fields.iter().any(|f| f.trim().is_empty()) {
        return Err(QueryError::EmptyColumn(view.fields.join(",")));
    }
    if view.count_by.is_some() && view.histogram.is_some() {
        return Err(QueryError::Options(
            "--count-by and --histogram cannot be combined",
        ));
    }
    if view.context.is_some() && (view.csv || view.count_by.is_some() || view.histogram.is_some()) {
        return Err(QueryError::Options(
            "context lines (-A/-B/-C) print text lines only",
        ));
    }
    if view
        .count_by
        .as_deref()
        .is_some_and(|f| f.trim().is_empty())
    {
        return Err(QueryError::Options("--count-by needs a field name"));
    }
    Ok(())
}

/// The listing: the newest `limit` hits (with context when asked), or their count.
pub(super) fn list(
    req: &Request,
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    planned: &plan::Plan,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let keep = search::Keep {
        limit: req.limit,
        count_only: req.count,
    };
    let mut found = search::search(searcher, fields, query, planned, keep)?;
    let outcome = listing_outcome(req, &found);
    if req.count {
        writeln!(out, "{}", found.matched)?;
        return Ok(outcome);
    }
    if req.view.reverse {
        found.hits.reverse();
    }
    let highlights = planned.pred.highlights();
    let view = &req.view;
    if let Some(lines) = view.context {
        if req.json {
            return Err(QueryError::Options(
                "context lines (-A/-B/-C) print text lines only",
            ));
        }
        let groups = context::groups(searcher, fields, &found.hits, lines)?;
        write_groups(req, &groups, &highlights, out)?;
        return Ok(outcome);
    }
    write_hits(req, &found.hits, &highlights, out)?;
    Ok(outcome)
}

/// Context groups (`-A`/`-B`/`-C`), `--` between them: every backend's context listing.
pub(super) fn write_groups(
    req: &Request,
    groups: &[context::Group],
    highlights: &[&dyn plan::Highlight],
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    let view = &req.view;
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            if req.color {
                writeln!(out, "\x1b[36m--\x1b[0m")?;
            } else {
                writeln!(out, "--")?;
            }
        }
        for line in group {
            if !view.fields.is_empty() {
                output::write_columns(out, &line.hit, &view.fields)?;
            } else if line.is_match {
                output::write_line(out, &line.hit, highlights, req.color)?;
            } else {
                output::write_line(out, &line.hit, &[], req.color)?;
            }
        }
    }
    Ok(())
}

/// What a listing of `found` tells: how many matched, and whether `limit` cut it.
pub(super) fn listing_outcome(req: &Request, found: &search::Found) -> Outcome {
    let truncated = !req.count && (found.hits.len() as u64) < found.matched;
    let cut = truncated.then_some(Cut {
        shown: found.hits.len() as u64,
        of: found.exact.then_some(found.matched),
        what: CutWhat::Events,
    });
    Outcome {
        matched: found.matched,
        truncated,
        cut,
    }
}

/// The hits (in the order to print) as CSV, NDJSON, chosen columns or terminal lines: every
/// backend's listing goes through here, so the bytes are the same for the same events.
pub(super) fn write_hits(
    req: &Request,
    hits: &[search::Hit],
    highlights: &[&dyn plan::Highlight],
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    let view = &req.view;
    if view.csv {
        let columns = csv_columns(&view.fields);
        output::write_csv_record(out, columns.iter().map(String::as_str))?;
        for hit in hits {
            output::write_csv_row(out, hit, &columns)?;
        }
        return Ok(());
    }
    for hit in hits {
        if req.json && view.fields.is_empty() {
            output::write_json(out, hit)?;
        } else if req.json {
            output::write_json_columns(out, hit, &view.fields)?;
        } else if !view.fields.is_empty() {
            output::write_columns(out, hit, &view.fields)?;
        } else {
            output::write_line(out, hit, highlights, req.color)?;
        }
    }
    Ok(())
}

/// CSV columns: the chosen ones, else those of the text line.
fn csv_columns(chosen: &[String]) -> Vec<String> {
    if chosen.is_empty() {
        ["ts", "service", "level", "raw"].map(String::from).to_vec()
    } else {
        chosen.to_vec()
    }
}

/// `--count-by FIELD [--top N]`. For an exact plan, `service` and `level` are counted from their
/// fast columns and attribute paths from the JSON fast columns, without loading an event;
/// otherwise (an inexact plan, or an attribute the columns cannot answer) each matching event
/// is read.
#[allow(clippy::too_many_arguments)]
pub(super) fn count_by(
    req: &Request,
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    planned: &plan::Plan,
    field: &str,
    style: tally::Style,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let column = match field {
        "service" => Some(schema::SERVICE),
        "level" => Some(schema::LEVEL),
        _ => None,
    };
    let attribute_paths: Vec<String> = match field {
        "host" => vec!["host".to_string(), "hostname".to_string()],
        path => vec![path.to_string()],
    }
    .into_iter()
    .map(|p| format!("{}.{p}", schema::FIELDS))
    .collect();
    let from_columns = match column {
        Some(column) if planned.exact => Some(search::count_by_column(searcher, query, column)?),
        None if planned.exact && !output::is_builtin_column(field) => {
            search::count_by_attribute(searcher, query, &attribute_paths)?
        }
        _ => None,
    };
    let counts = match from_columns {
        Some(map) => tally::ValueCounts::from_map(map),
        None => {
            let mut counts = tally::ValueCounts::default();
            search::each_match(searcher, fields, query, planned, true, &mut |_, hit| {
                if let Some(hit) = hit {
                    counts.add(output::column_value(hit, field).map(|v| v.into_owned()));
                }
            })?;
            counts
        }
    };
    write_count_by(req, field, &counts, style, out)
}

/// Print `--count-by` counts (most frequent first, `--top` of them): every backend's tally.
pub(super) fn write_count_by(
    req: &Request,
    field: &str,
    counts: &tally::ValueCounts,
    style: tally::Style,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    if counts.overflowed() {
        return Err(QueryError::TooManyValues {
            field: field.to_string(),
        });
    }
    let rows = counts.ranked(req.view.top);
    let matched = counts.ranked(None).iter().map(|(_, n)| n).sum();
    tally::write_counts(out, field, &rows, style)?;
    let cut = (rows.len() < counts.len()).then_some(Cut {
        shown: rows.len() as u64,
        of: Some(counts.len() as u64),
        what: CutWhat::Values,
    });
    Ok(Outcome {
        matched,
        truncated: false,
        cut,
    })
}

/// `--histogram W`: matches per aligned bucket of width W over the query's time range.
#[allow(clippy::too_many_arguments)]
pub(super) fn histogram(
    searcher: &Searcher,
    fields: Fields,
    query: &dyn Query,
    planned: &plan::Plan,
    width: &str,
    (since, until): (Option<Timestamp>, Option<Timestamp>),
    style: tally::Style,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let secs = histogram_width(width)?;
    // Distinct buckets beyond this many can never be printed (the span would be wider still).
    let max_buckets = tally::MAX_BUCKETS as usize;
    let from_column = if planned.exact {
        search::count_by_bucket(searcher, query, secs, max_buckets)?
    } else {
        None
    };
    let (histogram, matched) = match from_column {
        Some(counts) => {
            let matched = counts.values().sum();
            (tally::Histogram::from_counts(secs, counts), matched)
        }
        None => {
            let mut histogram = tally::Histogram::new(secs);
            let matched =
                search::each_match(searcher, fields, query, planned, false, &mut |ts, _| {
                    histogram.add(ts)
                })?;
            (histogram, matched)
        }
    };
    write_histogram(&histogram, matched, width, (since, until), style, out)
}

/// `--histogram W`'s width in seconds.
pub(super) fn histogram_width(width: &str) -> Result<i64, QueryError> {
    time::parse_duration(width).map_err(|source| QueryError::Duration {
        flag: "--histogram",
        source,
    })
}

/// Print a histogram of `matched` matches over the query's range: every backend's chart.
pub(super) fn write_histogram(
    histogram: &tally::Histogram,
    matched: u64,
    width: &str,
    (since, until): (Option<Timestamp>, Option<Timestamp>),
    style: tally::Style,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let rows = histogram
        .rows_within(since, until)
        .map_err(|e| QueryError::TooManyBuckets {
            width: width.to_string(),
            buckets: e.buckets,
            from: e.from,
            to: e.to,
        })?;
    histogram.write(out, &rows, style)?;
    Ok(Outcome {
        matched,
        truncated: false,
        cut: None,
    })
}
