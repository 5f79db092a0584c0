//! Tallies of matches: `--count-by FIELD [--top N]` (matches per value) and `--histogram W`
//! (matches per time bucket, drawn as a bar chart).
//!
//! Takes values and times one match at a time; gives ranked rows and rendered text, CSV or
//! NDJSON. Both tallies are bounded ([`MAX_VALUES`] distinct values, [`MAX_BUCKETS`] buckets) so
//! that no query can exhaust memory; past the bound they refuse with an error naming the remedy.
//! Must not: search or decide exit codes.
//!
//! Histogram buckets are aligned on multiples of the width since the Unix epoch (UTC), so `1m`
//! buckets start on whole minutes and `1h` buckets on whole hours; every bucket from the first
//! match's to the last match's is printed, empty ones included, so gaps in time show as gaps.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use crate::event::Timestamp;
use crate::query::output::{csv_field, write_json_object};

/// At most this many distinct values in a `--count-by` tally.
pub const MAX_VALUES: usize = 1_000_000;
/// At most this many buckets in a histogram.
pub const MAX_BUCKETS: i64 = 10_000;
/// Lines of the histogram fit this many columns.
pub const WIDTH: usize = 80;

/// Matches per value of one field; `None` is "the event has no such field".
#[derive(Debug, Default)]
pub struct ValueCounts {
    counts: HashMap<Option<String>, u64>,
    overflow: bool,
}

impl ValueCounts {
    pub fn from_map(counts: HashMap<Option<String>, u64>) -> Self {
        let overflow = counts.len() > MAX_VALUES;
        ValueCounts { counts, overflow }
    }

    pub fn add(&mut self, value: Option<String>) {
        if let Some(n) = self.counts.get_mut(&value) {
            *n += 1;
        } else if self.counts.len() < MAX_VALUES {
            self.counts.insert(value, 1);
        } else {
            self.overflow = true;
        }
    }

    /// True when more than [`MAX_VALUES`] distinct values were seen.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Number of distinct values.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Rows by count (descending), then value (ascending, "no value" last); the first `top`.
    pub fn ranked(&self, top: Option<usize>) -> Vec<(Option<&str>, u64)> {
        let mut rows: Vec<(Option<&str>, u64)> = self
            .counts
            .iter()
            .map(|(v, n)| (v.as_deref(), *n))
            .collect();
        rows.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.is_none().cmp(&b.0.is_none()))
                .then_with(|| a.0.cmp(&b.0))
        });
        if let Some(top) = top {
            rows.truncate(top);
        }
        rows
    }
}

/// How tallies are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned text; `fancy` draws bars with block characters (a terminal), else with `#`.
    Text { fancy: bool },
    /// CSV with a header row.
    Csv,
    /// NDJSON, one object per row.
    Json,
}

/// `count value` lines (as `uniq -c` prints them), or CSV/NDJSON rows `field,count`.
pub fn write_counts(
    out: &mut dyn Write,
    field: &str,
    rows: &[(Option<&str>, u64)],
    style: Style,
) -> io::Result<()> {
    match style {
        Style::Text { .. } => {
            let width = rows.iter().map(|(_, n)| digits(*n)).max().unwrap_or(1);
            for (value, n) in rows {
                writeln!(out, "{n:>width$} {}", value.unwrap_or("(none)"))?;
            }
        }
        Style::Csv => {
            writeln!(out, "{},count", csv_field(field))?;
            for (value, n) in rows {
                writeln!(out, "{},{n}", csv_field(value.unwrap_or("")))?;
            }
        }
        Style::Json => {
            for (value, n) in rows {
                let value = serde_json::Value::from(*value);
                write_json_object(out, [(field, &value), ("count", &(*n).into())])?;
            }
        }
    }
    Ok(())
}

/// Matches per aligned time bucket.
#[derive(Debug)]
pub struct Histogram {
    width_secs: i64,
    buckets: BTreeMap<i64, u64>,
}

/// The histogram would have more than [`MAX_BUCKETS`] buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyBuckets {
    pub buckets: i64,
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Histogram {
    /// Buckets `width_secs` wide (> 0).
    pub fn new(width_secs: i64) -> Self {
        Histogram {
            width_secs: width_secs.max(1),
            buckets: BTreeMap::new(),
        }
    }

    /// Buckets counted elsewhere (keys: bucket starts in seconds, aligned as [`Histogram::add`]
    /// aligns them).
    pub fn from_counts(width_secs: i64, counts: impl IntoIterator<Item = (i64, u64)>) -> Self {
        let mut histogram = Histogram::new(width_secs);
        for (start, n) in counts {
            *histogram.buckets.entry(start).or_insert(0) += n;
        }
        histogram
    }

    pub fn add(&mut self, ts: Timestamp) {
        *self.buckets.entry(self.bucket_of(ts)).or_insert(0) += 1;
    }

    /// Every bucket from the first to the last non-empty one (bucket start, count).
    pub fn rows(&self) -> Result<Vec<(Timestamp, u64)>, TooManyBuckets> {
        self.rows_within(None, None)
    }

    /// Every bucket of the query's time range `[since, until)`, where it is given, else from the
    /// first or to the last non-empty bucket: `--since 2h` shows the quiet start too. A range
    /// of more than [`MAX_BUCKETS`] falls back to the matches' own span. No match: no rows.
    pub fn rows_within(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<(Timestamp, u64)>, TooManyBuckets> {
        let (Some((first, _)), Some((last, _))) = (
            self.buckets.first_key_value(),
            self.buckets.last_key_value(),
        ) else {
            return Ok(Vec::new());
        };
        let (first, last) = (*first, *last);
        let lo = since.map_or(first, |t| self.bucket_of(t).min(first));
        let hi = until.map_or(last, |t| {
            self.bucket_of(Timestamp(t.0.saturating_sub(1))).max(last)
        });
        if self.count(lo, hi) <= MAX_BUCKETS {
            return Ok(self.fill(lo, hi));
        }
        let buckets = self.count(first, last);
        if buckets > MAX_BUCKETS {
            return Err(TooManyBuckets {
                buckets,
                from: Timestamp::from_secs(first),
                to: Timestamp::from_secs(last.saturating_add(self.width_secs)),
            });
        }
        Ok(self.fill(first, last))
    }

    fn bucket_of(&self, ts: Timestamp) -> i64 {
        ts.as_secs().div_euclid(self.width_secs) * self.width_secs
    }

    /// Buckets from the one starting at `lo` to the one starting at `hi`.
    fn count(&self, lo: i64, hi: i64) -> i64 {
        (hi.saturating_sub(lo) / self.width_secs).saturating_add(1)
    }

    fn fill(&self, lo: i64, hi: i64) -> Vec<(Timestamp, u64)> {
        let mut rows = Vec::with_capacity(self.count(lo, hi).max(0) as usize);
        let mut start = lo;
        while start <= hi {
            let n = self.buckets.get(&start).copied().unwrap_or(0);
            rows.push((Timestamp::from_secs(start), n));
            start += self.width_secs;
        }
        rows
    }

    /// The bucket's label: as precise as the width needs (`2026-11-28`, `…T14:02Z`, `…T14:02:05Z`).
    pub fn label(&self, start: Timestamp) -> String {
        let format = if self.width_secs % 86_400 == 0 {
            "%Y-%m-%d"
        } else if self.width_secs % 60 == 0 {
            "%Y-%m-%dT%H:%MZ"
        } else {
            "%Y-%m-%dT%H:%M:%SZ"
        };
        start.to_jiff().strftime(format).to_string()
    }

    /// `label count bar` lines fitting [`WIDTH`] columns, or CSV/NDJSON `ts,count` rows.
    pub fn write(
        &self,
        out: &mut dyn Write,
        rows: &[(Timestamp, u64)],
        style: Style,
    ) -> io::Result<()> {
        match style {
            Style::Text { fancy } => {
                let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0);
                let count_width = digits(max);
                let label_width = rows
                    .first()
                    .map_or(0, |(start, _)| self.label(*start).len());
                let bar_max = WIDTH.saturating_sub(label_width + count_width + 3).max(10);
                for (start, n) in rows {
                    let bar = bar_length(*n, max, bar_max);
                    let label = self.label(*start);
                    if bar == 0 {
                        writeln!(out, "{label} {n:>count_width$}")?;
                    } else {
                        let glyph = if fancy { "█" } else { "#" };
                        writeln!(out, "{label} {n:>count_width$} {}", glyph.repeat(bar))?;
                    }
                }
            }
            Style::Csv => {
                writeln!(out, "ts,count")?;
                for (start, n) in rows {
                    writeln!(out, "{},{n}", start.to_jiff())?;
                }
            }
            Style::Json => {
                for (start, n) in rows {
                    let row = serde_json::json!({ "ts": start.to_jiff().to_string(), "count": n });
                    serde_json::to_writer(&mut *out, &row).map_err(io::Error::other)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    }
}

/// Bar length for `n` out of `max` on `bar_max` columns: proportional, rounded up so that any
/// non-empty bucket shows at least one mark.
fn bar_length(n: u64, max: u64, bar_max: usize) -> usize {
    if n == 0 || max == 0 {
        return 0;
    }
    let scaled = (u128::from(n) * bar_max as u128).div_ceil(u128::from(max));
    usize::try_from(scaled).unwrap_or(bar_max).min(bar_max)
}

fn digits(n: u64) -> usize {
    n.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().unwrap())
    }

    #[test]
    fn values_rank_by_count_then_value_and_top_cuts() {
        let mut counts = ValueCounts::default();
        for v in ["b", "a", "c", "b", "a", "b"] {
            counts.add(Some(v.to_string()));
        }
        counts.add(None);
        counts.add(Some("d".into()));
        assert_eq!(
            counts.ranked(None),
            [
                (Some("b"), 3),
                (Some("a"), 2),
                (Some("c"), 1),
                (Some("d"), 1),
                (None, 1)
            ]
        );
        assert_eq!(counts.ranked(Some(2)), [(Some("b"), 3), (Some("a"), 2)]);
        let mut out = Vec::new();
        write_counts(&mut out, "service", &counts.ranked(None), Style::Csv).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "service,count\nb,3\na,2\nc,1\nd,1\n,1\n"
        );
        let mut out = Vec::new();
        let rows = [(Some("postgres"), 12), (None, 3)];
        write_counts(&mut out, "service", &rows, Style::Text { fancy: false }).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "12 postgres\n 3 (none)\n");
    }

    #[test]
    fn buckets_are_aligned_and_empty_ones_shown() {
        let mut h = Histogram::new(60);
        for t in [
            "2026-11-28T14:00:59Z",
            "2026-11-28T14:00:00Z",
            "2026-11-28T14:03:30Z",
        ] {
            h.add(at(t));
        }
        let rows = h.rows().unwrap();
        assert_eq!(
            rows,
            [
                (at("2026-11-28T14:00:00Z"), 2),
                (at("2026-11-28T14:01:00Z"), 0),
                (at("2026-11-28T14:02:00Z"), 0),
                (at("2026-11-28T14:03:00Z"), 1)
            ]
        );
        let mut out = Vec::new();
        h.write(&mut out, &rows, Style::Text { fancy: false })
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "2026-11-28T14:01Z 0");
        assert!(lines[0].starts_with("2026-11-28T14:00Z 2 ###"), "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{text}");
        let (half, full) = (lines[3].matches('#').count(), lines[0].matches('#').count());
        assert!((half * 2).abs_diff(full) <= 1, "{text}");
    }

    #[test]
    fn the_query_range_bounds_the_buckets_where_given() {
        let mut h = Histogram::new(60);
        h.add(at("2026-11-28T14:02:10Z"));
        let since = Some(at("2026-11-28T14:00:30Z"));
        let until = Some(at("2026-11-28T14:04:00Z"));
        let starts: Vec<Timestamp> = h
            .rows_within(since, until)
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            starts,
            [
                at("2026-11-28T14:00:00Z"),
                at("2026-11-28T14:01:00Z"),
                at("2026-11-28T14:02:00Z"),
                at("2026-11-28T14:03:00Z")
            ],
            "until is exclusive"
        );
        // a range too long for the bound falls back to the matches' span
        let week = Some(at("2026-11-21T14:00:00Z"));
        assert_eq!(h.rows_within(week, None).unwrap().len(), 1);
        assert!(
            Histogram::new(60)
                .rows_within(since, until)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn buckets_counted_elsewhere_align_as_added_ones() {
        let mut added = Histogram::new(300);
        added.add(at("2026-11-28T14:04:59Z"));
        added.add(at("2026-11-28T14:05:00Z"));
        let counted = Histogram::from_counts(300, [(1_795_874_400, 1), (1_795_874_700, 1)]);
        assert_eq!(added.rows().unwrap(), counted.rows().unwrap());
    }

    #[test]
    fn histograms_are_bounded() {
        let mut h = Histogram::new(1);
        h.add(at("2026-11-28T14:00:00Z"));
        h.add(at("2026-11-29T14:00:00Z"));
        assert!(h.rows().is_err());
        let mut wide = Histogram::new(86_400);
        wide.add(at("2026-11-28T14:00:00Z"));
        assert_eq!(wide.label(wide.rows().unwrap()[0].0), "2026-11-28");
    }

    #[test]
    fn bars_fill_the_width_and_never_vanish() {
        assert_eq!(bar_length(10, 10, 50), 50);
        assert_eq!(bar_length(1, 1_000_000, 50), 1);
        assert_eq!(bar_length(0, 10, 50), 0);
    }
}
