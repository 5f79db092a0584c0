//! `loggrep --backend clickhouse://HOST:PORT/DB`: the loggrep questions asked of the ClickHouse
//! tables every agent writes (issue 8), answered with the same bytes as the local index gives.
//!
//! Owns: reading the backend URL (`backend`), connecting (`session`: the server's version decides
//! the `Features` the SQL may use), running the SQL that [`sql`] makes of a checked [`Request`]
//! (`question`; `re2` translates regexes), and turning the rows back into `Hit`s, counts and
//! buckets for the *shared* output code (`answer::write_hits`, `write_count_by`,
//! `write_histogram`, `write_groups`; `forensic::run_on`): no byte is formatted here.
//!
//! Semantics are the local backend's (see `query`): event-time order (`ts`, then the event id as
//! fingerprint then *numeric* offset — the id text's offset is not zero-padded, so the SQL sorts
//! on `toUInt64(substring(id, 18))`), the newest `limit` matches, a cut said as the local one says
//! it. Rows written twice (a retried batch) collapse with `FINAL` on the ReplacingMergeTree.
//! Where [`sql`] can only narrow (attribute terms, prefixes), rows are streamed newest first and
//! decided by the same `plan::Pred` the local index uses, exactly as it decides its candidates.
//!
//! `-A/-B/-C` (`context`) reads the hits' source files by fingerprint (`substring(id, 1, 16)`),
//! and `--incident` (`timeline`) the `incidents` table; both hand their events to the local code
//! that groups and prints them (`context::assemble`, `forensic::run_on`).
//!
//! Must not: write to the server (no DDL: a reader must not create a database that a typo
//! named), format a user value into SQL (everything is bound), or decide exit codes.

mod backend;
mod context;
mod question;
mod re2;
mod session;
pub mod sql;
mod timeline;

use std::io::Write;

use crate::query::{Outcome, QueryError, Request, answer, check};
use crate::store::clickhouse::{Features, Version};

pub use backend::{Backend, BackendError, DEFAULT_PORT};
pub use session::bound;

use question::Question;
use session::Session;
use sql::Where;

/// Answer `req` from the ClickHouse database `backend` names.
pub fn run(req: &Request, backend: &Backend, out: &mut dyn Write) -> Result<Outcome, QueryError> {
    if req.follow.is_some() {
        return Err(BackendError::LocalOnly("--follow").into());
    }
    if let Some(t) = &req.incident {
        return timeline::incident(req, t, backend, out);
    }
    // A bad question is refused before the server is asked (the SQL of any server version
    // refuses the same questions).
    let checked = check(req)?;
    sql::translate(checked.expr.as_ref(), before_asking())?;
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BackendError::Runtime)
}

/// The SQL of an 18.16 server: what checks a question before any server is asked (every
/// version refuses the same questions).
fn before_asking() -> sql::Context<'static> {
    sql::Context {
        features: Features::of(Version {
            major: 18,
            minor: 16,
        }),
        incidents: None,
    }
}
