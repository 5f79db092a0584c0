//! The `/api/v1` answers other than the feed, search and ingest: incidents, one incident, health
//! (liveness and readiness);
//! and the JSON shape of every error (`{"error": "…"}` with the status, and `column` when the error
//! is at a column of a query).
//!
//! Owns the request side of the incident API: query parameters (unknown ones are a 400 naming
//! them, so a typo is not silently ignored), the class/severity/service [`Filter`] the feed shares,
//! and the mapping of store errors to statuses. An incident is the incident log's latest snapshot
//! of it, serialised as `logwarden incident ID --json` prints it (the same serde types: there is
//! one JSON rendering of an incident). The log is read on the runtime's blocking threads.
//!
//! This module must not write anything (but health's probe file, created and removed at once in the
//! index folder), nor keep incidents in memory between requests: the
//! durable log is the one source, so the API agrees with the CLI and with a restart.

use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::detect::{Class, Severity};
use crate::incident::{Change, Incident, State as IncidentState};
use crate::store::incidents::{self, IncidentLog};

/// An error answer: the status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// The 1-based column of a query the error is about.
    column: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            column: None,
        }
    }

    /// An error at `column` of the query `text`: the message goes on as loggrep prints it, the
    /// query and a caret under the column, and the body says the column.
    pub(crate) fn at_column(mut self, column: usize, text: &str) -> ApiError {
        let caret = " ".repeat(column.saturating_sub(1));
        self.message = format!("{}\n  {text}\n  {caret}^", self.message);
        self.column = Some(column);
        self
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn from_query(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }

    /// The server's own failure (the log unreadable): logged, and told to the client.
    pub(crate) fn internal(what: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what}: {error}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            column: Option<usize>,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
                column: self.column,
            }),
        )
            .into_response()
    }
}

/// Which incidents (and changes of incidents) a client wants: each list given is a set of
/// accepted values (`?class=db-connection,db-down`); an incident passes when its class, its
/// severity and one of its services are accepted. Nothing given: everything passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    classes: Vec<Class>,
    severities: Vec<Severity>,
    services: Vec<String>,
}

impl Filter {
    /// From the `class`, `severity` and `service` parameters (comma-separated lists).
    pub fn parse(
        class: Option<&str>,
        severity: Option<&str>,
        service: Option<&str>,
    ) -> Result<Filter, String> {
        fn items(list: Option<&str>) -> impl Iterator<Item = &str> {
            list.into_iter()
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        }
        let mut filter = Filter::default();
        for name in items(class) {
            let class = name.parse::<Class>().map_err(|e| {
                let known: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
                format!("class: {e} (known: {})", known.join(", "))
            })?;
            filter.classes.push(class);
        }
        for name in items(severity) {
            let severity = name.parse::<Severity>().map_err(|e| {
                let known: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
                format!("severity: {e} (known: {})", known.join(", "))
            })?;
            filter.severities.push(severity);
        }
        filter.services = items(service).map(str::to_string).collect();
        Ok(filter)
    }

    pub fn admits(&self, incident: &Incident) -> bool {
        (self.classes.is_empty() || self.classes.contains(&incident.class))
            && (self.severities.is_empty() || self.severities.contains(&incident.severity))
            && (self.services.is_empty()
                || incident.services.iter().any(|s| self.services.contains(s)))
    }
}

/// `GET /api/v1/health`: liveness and readiness. The server answering at all is liveness
/// (`status: ok`); ready is the index writable (a file can be created in the index folder, and
/// the last commit did not fail) and no source more than `max_lag` bytes behind the end of its
/// files. 200 when ready; 503 with the reasons when not (a load balancer or an orchestrator
/// reads the status, a person the reasons).
pub(crate) async fn health(State(shared): State<Shared>) -> Response {
    let mut readiness = shared.metrics.readiness(shared.max_lag);
    // The folder `pipeline::index_dir` names (serve does not depend on the pipeline).
    let index = shared.data_dir.join("index");
    let probe = tokio::task::spawn_blocking(move || index_writable(&index)).await;
    match probe {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => readiness.reasons.insert(0, reason),
        Err(error) => readiness
            .reasons
            .insert(0, format!("the index probe failed: {error}")),
    }
    let ready = readiness.reasons.is_empty();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "feed_clients": shared.feed.clients(),
        "ready": ready,
        "reasons": readiness.reasons,
        "lag_bytes": readiness.lag,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Whether a file can be created, written and removed in the index folder, as a commit does.
fn index_writable(index: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    let probe = index.join(".logwarden-ready-probe");
    let unwritable = |error: std::io::Error| {
        format!("the index at {} is not writable: {error}", index.display())
    };
    let mut file = match std::fs::File::create(&probe) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "there is no index at {} yet (the pipeline has not opened it)",
                index.display()
            ));
        }
        Err(error) => return Err(unwritable(error)),
    };
    file.write_all(b"ready?\n").map_err(unwritable)?;
    drop(file);
    std::fs::remove_file(&probe).map_err(unwritable)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentsQuery {
    /// Only open incidents.
    #[serde(default)]
    open: bool,
    class: Option<String>,
    severity: Option<String>,
    service: Option<String>,
}

/// The answer of `GET /api/v1/incidents`.
#[derive(Debug, Serialize)]
struct IncidentList {
    /// The incident log's last sequence number as of this list: a feed opened with
    /// `Last-Event-ID: seq` continues exactly after it.
    seq: u64,
    /// Latest state of each incident, oldest first (as `logwarden incidents --json`).
    incidents: Vec<Incident>,
}

/// `GET /api/v1/incidents[?open=true&class=&severity=&service=]`.
pub(crate) async fn incidents(
    State(shared): State<Shared>,
    query: Result<Query<IncidentsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let filter = Filter::parse(
        query.class.as_deref(),
        query.severity.as_deref(),
        query.service.as_deref(),
    )
    .map_err(ApiError::bad_request)?;
    let changes = read_log(shared.incident_log(), 0).await?;
    let seq = changes.last().map_or(0, |c| c.seq);
    let mut list = incidents::current(&changes);
    list.retain(|i| (!query.open || i.state == IncidentState::Open) && filter.admits(i));
    Ok(Json(IncidentList {
        seq,
        incidents: list,
    })
    .into_response())
}

/// `GET /api/v1/incidents/{id}`: the full id or a unique prefix, as `logwarden incident` takes.
pub(crate) async fn incident(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Incident>, ApiError> {
    let changes = read_log(shared.incident_log(), 0).await?;
    let current = incidents::current(&changes);
    match incidents::find(&current, &id) {
        Some(incident) => Ok(Json(incident.clone())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no incident `{id}` (or the prefix names several)"),
        )),
    }
}

/// Anything else.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint `{}`: the API is /api/v1/incidents, /api/v1/incidents/{{id}}, \
             /api/v1/incidents/{{id}}/ack, /api/v1/silences, /api/v1/feed, /api/v1/feed/ws, \
             /api/v1/search, /api/v1/count, /api/v1/ingest, /api/v1/health and /metrics",
            uri.path()
        ),
    )
}

/// The changes of the incident log after `after`, read on a blocking thread.
pub(crate) async fn read_log(path: PathBuf, after: u64) -> Result<Vec<Change>, ApiError> {
    match tokio::task::spawn_blocking(move || IncidentLog::read_after(&path, after)).await {
        Ok(Ok(changes)) => Ok(changes),
        Ok(Err(error)) => Err(ApiError::internal("cannot read the incident log", error)),
        Err(error) => Err(ApiError::internal("the incident log reader failed", error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_takes_comma_lists_and_names_what_it_does_not_know() {
        let f = Filter::parse(Some("db-connection, db-down"), Some("critical"), None).unwrap();
        assert_eq!(f.classes, vec![Class::DbConnection, Class::DbDown]);
        assert_eq!(f.severities, vec![Severity::Critical]);
        assert!(f.services.is_empty());
        assert_eq!(Filter::parse(Some(""), None, None), Ok(Filter::default()));
        let err = Filter::parse(Some("db-conection"), None, None).unwrap_err();
        assert!(
            err.contains("db-conection") && err.contains("db-connection"),
            "{err}"
        );
        let err = Filter::parse(None, Some("fatal"), None).unwrap_err();
        assert!(err.contains("critical"), "{err}");
    }
}
