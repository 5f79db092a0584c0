//! `-A`/`-B`/`-C` over ClickHouse: the hits' neighbours in their source files, handed to
//! `context::assemble` (the local index's grouping) so the groups and separators are the same.

use std::collections::HashMap;

use serde::Deserialize;

use crate::query::search::Hit;
use crate::query::{QueryError, context};

use super::session::{HitRow, Session};
use super::sql::Bind;

impl Session {
    /// `-A`/`-B`/`-C`: the hits' neighbours in their source files (every event of the file,
    /// whatever the query), grouped by `context::assemble` as for the local index. Per file,
    /// one query counts the events of each gap between consecutive hits, two pick the `after`
    /// first and `before` last of each gap (`LIMIT n BY gap`), one loads those.
    pub(super) async fn context(
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
            // Only the gaps between two hits are counted (whether one is printed whole): the
            // file's events from its first hit to its last.
            if let (Some(first), Some(last)) = (offsets.first(), offsets.last())
                && offsets.len() > 1
            {
                let mut binds = file();
                binds.extend([Bind::U64(*first), Bind::U64(*last)]);
                let counts: Vec<GapCount> = self
                    .query(
                        &format!(
                            "SELECT gap, count() AS n FROM ({FILE}) WHERE off > ? AND off < ? GROUP BY gap"
                        ),
                        &binds,
                    )
                    .fetch_all()
                    .await
                    .map_err(|e| self.failed(e))?;
                for c in counts {
                    picked.entry((*fp, gap_index(c.gap))).or_default().count = c.n;
                }
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
}

/// A gap's index as the server counted it.
fn gap_index(gap: u64) -> usize {
    usize::try_from(gap).unwrap_or(usize::MAX)
}
