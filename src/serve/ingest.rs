//! `POST /api/v1/ingest?source=NAME[&format=FMT]`: lines pushed by hosts that cannot be tailed.
//!
//! Owns the request side of a push: the parameters (`source`, the service the lines are of;
//! `format`, as `--source SERVICE:FORMAT` takes it, `auto` by default; unknown ones are a 400),
//! the body (NDJSON or plain lines, at most the 1 MiB every body may be, else 413), and the
//! answer. The lines go to [`crate::source::push`], which hands them to the running pipeline as
//! one more source: parsed, redacted, matched and indexed like a tailed file's lines, once.
//!
//! The answer is 202 with `{"source", "lines", "bytes"}` once the whole batch is in the
//! pipeline's channel (it is indexed at the next commit, at once); 503 when no pipeline takes
//! pushes (starting or stopping: nothing of the batch was taken, resend it). The hand-over may
//! wait for room in that channel, so it runs on the runtime's blocking threads.
//!
//! This module must not parse, buffer or index lines itself.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::Shared;
use super::api::ApiError;
use crate::parse::Format;
use crate::source::push::PushError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestQuery {
    /// The service the lines are of (letters, digits, `-`, `_`, `.`).
    source: String,
    /// The lines' format (`pino`, `plain`, `postgres`, …); `auto` when not given.
    format: Option<String>,
}

/// `POST /api/v1/ingest?source=NAME[&format=FMT]` with the lines as the body.
pub(crate) async fn ingest(
    State(shared): State<Shared>,
    query: Result<Query<IngestQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let format = match query.format.as_deref() {
        None => Format::Auto,
        Some(name) => name
            .parse::<Format>()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("format: {e}")))?,
    };
    let push = shared.push.clone();
    let source = query.source;
    let name = source.clone();
    let pushed = tokio::task::spawn_blocking(move || push.push(&name, format, &body)).await;
    match pushed {
        Ok(Ok(accepted)) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "source": source,
                "lines": accepted.lines,
                "bytes": accepted.bytes,
            })),
        )
            .into_response()),
        Ok(Err(error)) => {
            let status = match error {
                PushError::BadName(_) | PushError::TooManySources => StatusCode::BAD_REQUEST,
                PushError::OtherFormat { .. } => StatusCode::CONFLICT,
                PushError::NotRunning => StatusCode::SERVICE_UNAVAILABLE,
            };
            Err(ApiError::new(status, error.to_string()))
        }
        Err(error) => Err(ApiError::internal("the push failed", error)),
    }
}
