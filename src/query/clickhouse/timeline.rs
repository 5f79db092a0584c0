//! `--incident ID` over ClickHouse: the incident from `incidents`, its timeline from `events`,
//! printed by `forensic` exactly as for the local index.

use std::io::Write;

use crate::event::Timestamp;
use crate::query::search::Hit;
use crate::query::{Outcome, QueryError, Request, forensic, lang, plan};

use super::backend::{Backend, BackendError};
use super::question::{Order, Question};
use super::session::Session;
use super::sql::{self, Where};

/// `--incident ID`: the incident as the `incidents` table has it now (its latest change), and
/// its timeline from `events`, printed by `forensic` as for the local index.
pub(super) fn incident(
    req: &Request,
    t: &forensic::IncidentTimeline,
    backend: &Backend,
    out: &mut dyn Write,
) -> Result<Outcome, QueryError> {
    let query = lang::parse(&req.query)?;
    sql::translate(query.as_ref(), super::before_asking())?;
    let runtime = super::runtime()?;
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
