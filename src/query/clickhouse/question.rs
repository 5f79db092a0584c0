//! One question over `events`: its condition and deciding predicate, and its three answers
//! (the listing or count, `--count-by`, `--histogram`) handed to the shared output code.

use std::collections::HashMap;
use std::io::Write;

use serde::Deserialize;

use crate::query::search::{Found, Hit};
use crate::query::{Outcome, QueryError, Request, answer, plan, tally};

use super::backend::BackendError;
use super::session::{HitRow, Session};
use super::sql::{Bind, Where};

/// Event-time order: time, then fingerprint (fixed-width hex), then the offset as a number.
#[derive(Debug, Clone, Copy)]
pub(super) enum Order {
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
pub(super) struct Question<'a> {
    pub(super) session: &'a Session,
    pub(super) condition: Where,
    pub(super) pred: plan::Pred,
}

impl Question<'_> {
    fn decides(&self, hit: &Hit) -> bool {
        self.condition.exact || self.pred.eval(hit)
    }

    /// Candidates in `order`, each decided, handed to `each` until it returns false.
    pub(super) async fn each_in_order<E: From<BackendError>>(
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

    pub(super) async fn count(&self) -> Result<u64, BackendError> {
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
    pub(super) async fn list(
        &self,
        req: &Request,
        out: &mut dyn Write,
    ) -> Result<Outcome, QueryError> {
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
    pub(super) async fn count_by(&self, field: &str) -> Result<tally::ValueCounts, BackendError> {
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
    pub(super) async fn histogram(
        &self,
        secs: i64,
    ) -> Result<(tally::Histogram, u64), BackendError> {
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
