//! `POST /api/v1/loggrep`: a `loggrep` process's question, answered by the running agent.
//!
//! Owns the server side of [`query::remote`]'s wire: the [`Question`] body (a 400 when it is not
//! one, a 409 when it is about another data dir than the server's), the turn it waits for (shared with `/api/v1/search`, see [`search::turn`]), and the
//! framed answer: the bytes [`query::run_on`] writes, streamed in [`PIECE`]-sized frames as
//! they come, then the outcome or loggrep's error. The index is the one the server keeps open
//! ([`OpenIndex`]), so a question costs no mapping of files and no cold pages.
//!
//! A client that goes away mid-answer stops the query at its next write (the frames' channel is
//! closed); a slow one holds only its own query (the channel holds [`QUEUED`] frames).
//!
//! This module must not plan, search or render events itself: `query` does.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::Shared;
use super::api::ApiError;
use super::search;
use crate::query::remote::{self, Question, Refusal};
use crate::query::{self, QueryError};
use crate::store::index::{EventIndex, IndexError};

/// Output bytes per frame.
pub const PIECE: usize = 64 << 10;
/// Frames waiting for a slow client before the query waits for it.
const QUEUED: usize = 16;

/// The event index of the data dir, opened by the first question and kept open.
#[derive(Clone, Default)]
pub(crate) struct OpenIndex(Arc<Mutex<Option<Arc<EventIndex>>>>);

impl OpenIndex {
    /// The open index; opens it when no question has yet (none yet: [`IndexError::Missing`]).
    pub(crate) fn get(&self, data_dir: &Path) -> Result<Arc<EventIndex>, IndexError> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = slot.as_ref() {
            return Ok(Arc::clone(index));
        }
        let index = Arc::new(EventIndex::open_existing(&data_dir.join("index"))?);
        *slot = Some(Arc::clone(&index));
        Ok(index)
    }

    /// Answer `req` over the open index: checked first, so a bad question is refused as such
    /// also before there is an index.
    pub(crate) fn run(
        &self,
        req: &query::Request,
        out: &mut dyn Write,
    ) -> Result<query::Outcome, QueryError> {
        let checked = query::check(req)?;
        let index = self.get(&req.data_dir)?;
        query::run_on(req, checked, &index, out)
    }
}

/// `POST /api/v1/loggrep` with a [`Question`] as JSON.
pub(crate) async fn loggrep(
    State(shared): State<Shared>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let question: Question = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a loggrep question: {error}"),
        )
    })?;
    if !question.is_for(&shared.data_dir) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this agent serves another data dir",
        ));
    }
    let req = question.into_request(&shared.data_dir);
    let turn = search::turn().await?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED);
    let index = shared.index.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let mut out = Frames {
            tx: tx.clone(),
            buf: Vec::with_capacity(PIECE),
        };
        let last = match index.run(&req, &mut out).and_then(|outcome| {
            out.flush()?;
            Ok(outcome)
        }) {
            Ok(outcome) => {
                serde_json::to_vec(&outcome).map(|json| remote::frame(remote::DONE, &json))
            }
            Err(error) if error.is_broken_pipe() => return,
            Err(error) => {
                if !matches!(error, QueryError::Syntax(_) | QueryError::Plan(_)) {
                    tracing::debug!(%error, "a loggrep question failed");
                }
                serde_json::to_vec(&Refusal::from(&error))
                    .map(|json| remote::frame(remote::FAILED, &json))
            }
        };
        match last {
            Ok(frame) => {
                // A client that went away needs no last frame.
                let _ = tx.blocking_send(Bytes::from(frame));
            }
            Err(error) => tracing::error!(%error, "cannot write a loggrep answer's last frame"),
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<Bytes, std::io::Error>(frame), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, remote::CONTENT_TYPE)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A writer that sends what it is given as output frames, [`PIECE`] bytes at a time.
struct Frames {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Frames {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let frame = remote::frame(remote::OUTPUT, &self.buf);
        self.buf.clear();
        self.tx
            .blocking_send(Bytes::from(frame))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for Frames {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = PIECE - self.buf.len();
        let taken = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..taken]);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
