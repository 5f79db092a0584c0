//! The operator's API: acknowledge an incident, and make, list and expire silences.
//!
//! - `POST /api/v1/incidents/{id}/ack` with `{"by": NAME, "note": TEXT}` (both optional): the
//!   full id or a unique prefix. 200 with the `acknowledged` change as the incident log holds
//!   it; 404 for no such incident, 409 when the engine refuses (resolved, or no longer
//!   tracked), 503 when no pipeline runs.
//! - `GET /api/v1/silences[?all=true]`: `{"silences": […]}`, each with its `state` now
//!   (`pending`, `active`; with `all`, also `ended` and `expired`).
//! - `POST /api/v1/silences` with `{"match": "class=db-down service=postgres", "for": "30m"}`
//!   (or `"start"`/`"end"` times), `"reason"` and optionally `"by"`: 201 with the silence; a bad
//!   match, span or missing reason is a 400 naming it.
//! - `DELETE /api/v1/silences/{id}`: expire it now (a unique prefix is enough); 200 with it.
//!
//! Silences go to the data dir's silences file (`store::silences`, as the CLI writes them) and
//! the running pipeline is told at once; acknowledgements go to the pipeline's engine through
//! the [`crate::source::operator::Operator`] handle. Both run on the runtime's blocking threads.
//! Must not: decide what a silence or an acknowledgement does (the engine does).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Shared;
use super::api::{ApiError, read_log};
use crate::event::Timestamp;
use crate::incident::silence::Request;
use crate::incident::{Ack, IncidentId};
use crate::source::operator::OperatorError;
use crate::store::incidents;
use crate::store::silences::{SilenceStore, SilenceStoreError};

/// Who an API request is by when it does not say (a token is shared, not a person's).
const API_AUTHOR: &str = "api";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckBody {
    by: Option<String>,
    #[serde(default)]
    note: String,
}

/// `POST /api/v1/incidents/{id}/ack`.
pub(crate) async fn ack(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<AckBody>>,
) -> Result<Response, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let changes = read_log(shared.incident_log(), 0).await?;
    let current = incidents::current(&changes);
    let Some(incident) = incidents::find(&current, &id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no incident `{id}` (or the prefix names several)"),
        ));
    };
    let ack = Ack {
        by: body
            .by
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| API_AUTHOR.to_string()),
        at: Timestamp::now(),
        note: body.note,
    };
    let operator = shared.operator.clone();
    let id = IncidentId(incident.id.0.clone());
    let answer = tokio::task::spawn_blocking(move || operator.acknowledge(id, ack)).await;
    match answer {
        Ok(Ok(change)) => Ok(Json(change).into_response()),
        Ok(Err(error)) => {
            let status = match error {
                OperatorError::Refused(_) => StatusCode::CONFLICT,
                OperatorError::NotRunning | OperatorError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            };
            Err(ApiError::new(status, error.to_string()))
        }
        Err(error) => Err(ApiError::internal("the acknowledgement failed", error)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    all: bool,
}

/// Run a silences file operation on a blocking thread.
async fn with_store<T: Send + 'static>(
    shared: &Shared,
    op: impl FnOnce(&SilenceStore) -> Result<T, SilenceStoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = SilenceStore::new(&shared.data_dir);
    match tokio::task::spawn_blocking(move || op(&store)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            let status = match error {
                SilenceStoreError::Unknown(_) => StatusCode::NOT_FOUND,
                SilenceStoreError::Ambiguous { .. } => StatusCode::BAD_REQUEST,
                SilenceStoreError::Ended { .. } => StatusCode::CONFLICT,
                _ => return Err(ApiError::internal("the silences file", error)),
            };
            Err(ApiError::new(status, error.to_string()))
        }
        Err(error) => Err(ApiError::internal("the silences file", error)),
    }
}

/// `GET /api/v1/silences[?all=true]`.
pub(crate) async fn list(
    State(shared): State<Shared>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let now = Timestamp::now();
    let silences = with_store(&shared, SilenceStore::load).await?;
    let silences: Vec<_> = silences
        .iter()
        .filter(|s| query.all || s.in_force(now))
        .map(|s| s.shown(now))
        .collect();
    Ok(Json(serde_json::json!({ "silences": silences })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddBody {
    #[serde(rename = "match")]
    matchers: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    reason: String,
    by: Option<String>,
}

/// `POST /api/v1/silences`.
pub(crate) async fn add(
    State(shared): State<Shared>,
    body: Result<Json<AddBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let now = Timestamp::now();
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    let time = |field: &str, text: Option<&str>| {
        text.map(|t| crate::query::time::parse(t, now).map_err(|e| bad(format!("{field}: {e}"))))
            .transpose()
    };
    let request = Request {
        matchers: body.matchers,
        starts: time("start", body.start.as_deref())?,
        ends: time("end", body.end.as_deref())?,
        for_secs: body
            .for_
            .as_deref()
            .map(|d| crate::query::time::parse_duration(d).map_err(|e| bad(format!("for: {e}"))))
            .transpose()?,
        reason: body.reason,
        by: body.by.unwrap_or_else(|| API_AUTHOR.to_string()),
    };
    let silence = request.make(now).map_err(|e| bad(e.to_string()))?;
    let silence = with_store(&shared, move |store| store.add(silence)).await?;
    tracing::info!(silence = %silence.id, by = %silence.by, matchers = %silence.render_matchers(), reason = %silence.reason, "silence added");
    shared.operator.silences_changed();
    Ok((StatusCode::CREATED, Json(silence.shown(now))).into_response())
}

/// `DELETE /api/v1/silences/{id}`.
pub(crate) async fn expire(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = Timestamp::now();
    let silence = with_store(&shared, move |store| store.expire(&id, now)).await?;
    tracing::info!(silence = %silence.id, "silence expired");
    shared.operator.silences_changed();
    Ok(Json(silence.shown(now)).into_response())
}
