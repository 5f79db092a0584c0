//! `GET /api/v1/search` and `GET /api/v1/count`: loggrep's questions over HTTP.
//!
//! Owns the request side only: the query parameters (`q`, `since`, `until`, `service`, `level`,
//! `limit`; unknown ones are a 400 naming them) become a [`query::Request`], which
//! [`query::run`] answers on the runtime's blocking threads, as `loggrep --json` (or `--count`)
//! would on the same data dir. The hits are the NDJSON objects `loggrep --json` prints, spliced
//! as they are into one JSON object: there is one rendering of a hit, in `query::output`.
//!
//! Errors: a query, time or option the query layer refuses is a 400 with the message loggrep
//! prints (and the query column when there is one); no index yet is a 503; anything else a 500.
//! The index is the one the server keeps open (`loggrep::OpenIndex`): its files stay mapped
//! between questions. `limit` is at most [`MAX_LIMIT`] (the body is built in memory), at most
//! [`MAX_RUNNING`] questions run at once (the others wait their turn), and the query string is capped with every
//! other (4 KiB, see `serve`).
//!
//! This module must not plan, search or render events itself: `query` does.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Shared;
use super::api::ApiError;
use super::loggrep::OpenIndex;
use crate::event::{Level, Timestamp};
use crate::query::{self, QueryError, Request};
use crate::store::index::IndexError;

/// Most hits one search returns.
pub const MAX_LIMIT: usize = 10_000;
/// Hits a search returns when `limit` is not given (as loggrep's `--limit`).
pub const DEFAULT_LIMIT: usize = 1000;
/// Searches and counts running at once, in this process; more wait for a turn. Each may hold
/// up to [`MAX_LIMIT`] hits in memory and keeps a core busy.
pub const MAX_RUNNING: usize = 4;

static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_RUNNING);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// The loggrep query (empty: every event).
    #[serde(default)]
    q: String,
    since: Option<String>,
    until: Option<String>,
    /// Comma-separated services (any of them).
    service: Option<String>,
    /// This level and more severe, as loggrep's `--level`.
    level: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CountQuery {
    #[serde(default)]
    q: String,
    since: Option<String>,
    until: Option<String>,
    service: Option<String>,
    level: Option<String>,
}

/// The answer of a search, but its hits (spliced in after).
#[derive(Debug, Serialize)]
struct Head {
    /// Matching events: all of them, or (when `exact` is false) at least this many.
    matched: u64,
    /// Whether `matched` is the exact number (a cut listing may stop counting early).
    exact: bool,
    /// True when `limit` cut the hits: they are the newest `limit` matches.
    truncated: bool,
    limit: usize,
}

/// `GET /api/v1/search?q=&since=&until=&service=&level=&limit=`.
pub(crate) async fn search(
    State(shared): State<Shared>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit: {limit} is not from 1 to {MAX_LIMIT}"),
        ));
    }
    let filters = Filters::parse(query.service.as_deref(), query.level.as_deref())?;
    let mut req = request(&shared.data_dir, query.q, query.since, query.until, filters);
    req.json = true;
    req.limit = Some(limit);
    let (outcome, ndjson) = answer(shared.index.clone(), req).await?;
    let exact = !matches!(outcome.cut, Some(query::Cut { of: None, .. }));
    let head = Head {
        matched: outcome.matched,
        exact,
        truncated: outcome.truncated,
        limit,
    };
    let body = splice(&head, &ndjson)
        .map_err(|error| ApiError::internal("cannot write the search answer", error))?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(body),
    )
        .into_response())
}

/// `GET /api/v1/count?q=&since=&until=&service=&level=` → `{"count": N}`.
pub(crate) async fn count(
    State(shared): State<Shared>,
    query: Result<Query<CountQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let filters = Filters::parse(query.service.as_deref(), query.level.as_deref())?;
    let mut req = request(&shared.data_dir, query.q, query.since, query.until, filters);
    req.count = true;
    let (outcome, _) = answer(shared.index.clone(), req).await?;
    Ok(axum::Json(serde_json::json!({ "count": outcome.matched })).into_response())
}

/// The `service` and `level` parameters.
struct Filters {
    services: Vec<String>,
    levels: Vec<Level>,
}

impl Filters {
    fn parse(service: Option<&str>, level: Option<&str>) -> Result<Filters, ApiError> {
        let services = service
            .into_iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut given = Vec::new();
        for name in level
            .into_iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let level = name
                .parse::<Level>()
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("level: {e}")))?;
            given.push(level);
        }
        Ok(Filters {
            services,
            levels: query::at_least(&given),
        })
    }
}

fn request(
    data_dir: &std::path::Path,
    q: String,
    since: Option<String>,
    until: Option<String>,
    filters: Filters,
) -> Request {
    Request {
        data_dir: data_dir.to_path_buf(),
        query: q,
        since,
        until,
        services: filters.services,
        levels: filters.levels,
        json: false,
        count: false,
        limit: None,
        color: false,
        now: Timestamp::now(),
        incident: None,
        follow: None,
        around: None,
        view: query::View::default(),
    }
}

/// A turn to run a question: at most [`MAX_RUNNING`] run at once (searches, counts and
/// loggrep's questions together); the turn ends when the permit is dropped.
pub(crate) async fn turn() -> Result<tokio::sync::SemaphorePermit<'static>, ApiError> {
    RUNNING
        .acquire()
        .await
        .map_err(|error| ApiError::internal("the search queue is closed", error))
}

/// Run `req` on a blocking thread over the server's open index: its outcome and what it wrote.
async fn answer(index: OpenIndex, req: Request) -> Result<(query::Outcome, Vec<u8>), ApiError> {
    let text = req.query.clone();
    let turn = turn().await?;
    let ran = tokio::task::spawn_blocking(move || {
        // The turn ends with the work, also when the client has gone away meanwhile.
        let _turn = turn;
        let mut out = Vec::new();
        index.run(&req, &mut out).map(|outcome| (outcome, out))
    })
    .await;
    match ran {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(refused(&text, error)),
        Err(error) => Err(ApiError::internal("the search failed", error)),
    }
}

/// The status and message of a query error: the text loggrep prints.
fn refused(text: &str, error: QueryError) -> ApiError {
    let status = match &error {
        QueryError::Syntax(_)
        | QueryError::Plan(_)
        | QueryError::Time { .. }
        | QueryError::Duration { .. }
        | QueryError::Options(_)
        | QueryError::EmptyColumn(_)
        | QueryError::TooManyValues { .. }
        | QueryError::TooManyBuckets { .. } => StatusCode::BAD_REQUEST,
        QueryError::Index(IndexError::Missing { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        _ => return ApiError::internal("the search failed", error),
    };
    let api = ApiError::new(status, error.to_string());
    match error.column() {
        Some(column) => api.at_column(column, text),
        None => api,
    }
}

/// `head` with a `hits` array of the NDJSON objects `ndjson` holds, as they are.
fn splice(head: &Head, ndjson: &[u8]) -> serde_json::Result<Vec<u8>> {
    let mut body = serde_json::to_vec(head)?;
    // `{…}` → `{…,"hits":[…]}`
    body.pop();
    body.extend_from_slice(b",\"hits\":[");
    let hits = ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    for (i, hit) in hits.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(hit);
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_index_is_503_and_a_bad_query_400_at_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let filters = || Filters {
            services: vec![],
            levels: vec![],
        };
        let req = request(dir.path(), "x".into(), None, None, filters());
        let missing = query::run(&req, &mut Vec::new()).unwrap_err();
        assert_eq!(
            refused("x", missing).into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let req = request(dir.path(), "a (b".into(), None, None, filters());
        let bad = query::run(&req, &mut Vec::new()).unwrap_err();
        assert!(bad.column().is_some(), "{bad}");
        assert_eq!(
            refused("a (b", bad).into_response().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn hits_are_spliced_into_one_object_as_printed() {
        let head = Head {
            matched: 3,
            exact: false,
            truncated: true,
            limit: 2,
        };
        let body = splice(&head, b"{\"a\":1}\n{\"b\":\"x\\ny\"}\n").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"matched":3,"exact":false,"truncated":true,"limit":2,
                               "hits":[{"a":1},{"b":"x\ny"}]})
        );
        let empty: serde_json::Value =
            serde_json::from_slice(&splice(&head, b"").unwrap()).unwrap();
        assert_eq!(empty["hits"], serde_json::json!([]));
    }
}
