//! Pushed lines as a source: the receiving end of `POST /api/v1/ingest`, for hosts that cannot be
//! tailed.
//!
//! Owns the [`Push`] handle that `serve` writes into and a live pipeline reads from. The pipeline
//! connects its own bounded input channel to the handle ([`Push::connect`]) while it runs and
//! closes it ([`Push::close`]) before it stops, so a push is handed to the same parse → detect →
//! index path as a tailed file's bytes (redaction included), exactly once: each named source is a
//! stream of its own (`Input::Pushed`, then `Chunk`s at increasing offsets, then `Idle` after each
//! batch, since a batch is complete lines and nothing more of it will come). [`Push::push`]
//! returns only once every input of the batch is in the pipeline's channel; it blocks while that
//! channel is full (backpressure reaches the HTTP client), so call it off the async runtime.
//!
//! A stream has no identity to resume from: its fingerprint is drawn from the source name, the
//! process id and the start time, and nothing of it is checkpointed. An accepted batch is indexed
//! at the pipeline's next commit (at once: the `Idle` that ends it asks for one); if the process
//! dies before that, the batch is lost, and the client, which saw no error, will not resend it.
//!
//! It must not parse, and must not buffer batches itself: the pipeline's channel is the one bound.

use std::collections::HashMap;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::parse::Format;
use crate::source::{Chunk, Input, READ_SIZE, SourceSpec, fingerprint, send};

/// The path a pushed stream reports (`push:NAME`); it is never a file.
pub const PATH_PREFIX: &str = "push:";

/// Longest source name accepted.
pub const MAX_NAME: usize = 128;
/// Most pushed sources one run takes (each holds a parser while the run lasts).
pub const MAX_SOURCES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    #[error(
        "source name `{0}` is not 1 to {MAX_NAME} characters of letters, digits, `-`, `_` and `.`"
    )]
    BadName(String),
    #[error("source `{name}` is pushed as {was} in this run, not {asked}")]
    OtherFormat {
        name: String,
        was: String,
        asked: String,
    },
    #[error("this run already takes {MAX_SOURCES} pushed sources; push as one of them")]
    TooManySources,
    #[error("the pipeline is not running (starting or stopping): nothing was accepted; retry")]
    NotRunning,
}

/// What a push handed to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Lines in the batch (a last line without its newline counts: one is added).
    pub lines: u64,
    pub bytes: u64,
}

/// One pushed source's stream in this run.
#[derive(Debug)]
struct Stream {
    fingerprint: u64,
    format: Format,
    /// Offset of the stream's next byte.
    offset: u64,
}

#[derive(Debug, Default)]
struct State {
    /// The running pipeline's input channel; `None` before it connects and after it closes.
    tx: Option<SyncSender<Input>>,
    streams: HashMap<String, Stream>,
}

/// The handle `serve` pushes into and a live pipeline reads from. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Push {
    state: Arc<Mutex<State>>,
}

impl Push {
    pub fn new() -> Push {
        Push::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A push that panicked mid-batch leaves nothing half-done that matters: offsets only grow.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pipeline starts taking pushes on `tx`. Streams of an earlier connection are forgotten.
    /// Public for the fuzz target of the ingest body, which reads the channel as the pipeline does.
    pub fn connect(&self, tx: SyncSender<Input>) {
        let mut state = self.lock();
        state.tx = Some(tx);
        state.streams.clear();
    }

    /// The pipeline stops taking pushes. Returns false, changing nothing, while a push is handing
    /// a batch over (it may be waiting for room in the channel the caller must keep reading);
    /// once it returns true, no input of a push follows.
    pub(crate) fn close(&self) -> bool {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        state.tx = None;
        true
    }

    /// Hand `bytes` (whole lines; a missing last newline is added) to the pipeline as source
    /// `name` in `format`. Blocks while the pipeline's channel is full.
    pub fn push(&self, name: &str, format: Format, bytes: &[u8]) -> Result<Accepted, PushError> {
        check_name(name)?;
        let mut state = self.lock();
        let Some(tx) = state.tx.clone() else {
            return Err(PushError::NotRunning);
        };
        let mut body = bytes.to_vec();
        if body.last().is_some_and(|b| *b != b'\n') {
            body.push(b'\n');
        }
        let accepted = Accepted {
            lines: memchr::memchr_iter(b'\n', &body).count() as u64,
            bytes: body.len() as u64,
        };
        if body.is_empty() {
            return Ok(accepted);
        }
        let known = state.streams.get(name).map(|s| s.format.clone());
        match known {
            Some(was) if was != format => {
                return Err(PushError::OtherFormat {
                    name: name.to_string(),
                    was: was.to_string(),
                    asked: format.to_string(),
                });
            }
            Some(_) => {}
            None if state.streams.len() >= MAX_SOURCES => {
                return Err(PushError::TooManySources);
            }
            None => {
                let fingerprint = stream_fingerprint(name);
                let spec = SourceSpec {
                    service: name.to_string(),
                    format: format.clone(),
                    path: format!("{PATH_PREFIX}{name}").into(),
                };
                send(&tx, Input::Pushed { fingerprint, spec })
                    .map_err(|_| PushError::NotRunning)?;
                let stream = Stream {
                    fingerprint,
                    format,
                    offset: 0,
                };
                state.streams.insert(name.to_string(), stream);
            }
        }
        let stream = state.streams.get_mut(name).ok_or(PushError::NotRunning)?;
        let fingerprint = stream.fingerprint;
        for piece in body.chunks(READ_SIZE) {
            let chunk = Chunk {
                source: 0,
                fingerprint,
                offset: stream.offset,
                bytes: piece.to_vec(),
                eof: false,
            };
            if send(&tx, Input::Chunk(chunk)).is_err() {
                // The pipeline is gone: what it took of this batch is lost with it.
                return Err(PushError::NotRunning);
            }
            stream.offset += piece.len() as u64;
        }
        // The batch is complete: entries held for continuation lines may go, and the watermark
        // need not wait for this stream.
        send(&tx, Input::Idle { fingerprint }).map_err(|_| PushError::NotRunning)?;
        tracing::debug!(source = name, lines = accepted.lines, "push accepted");
        Ok(accepted)
    }
}

fn check_name(name: &str) -> Result<(), PushError> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(PushError::BadName(name.chars().take(MAX_NAME).collect()))
    }
}

/// A fingerprint no other stream of any run has: the name, the process and the instant.
fn stream_fingerprint(name: &str) -> u64 {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let identity = format!("push {name} {} {started}", std::process::id());
    fingerprint::of_head(identity.as_bytes(), true).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    #[test]
    fn a_push_is_opened_once_then_chunks_at_growing_offsets_then_idle() {
        let push = Push::new();
        assert_eq!(
            push.push("edge", Format::Plain, b"x\n"),
            Err(PushError::NotRunning)
        );
        let (tx, rx) = sync_channel(64);
        push.connect(tx);
        let got = push.push("edge", Format::Plain, b"one\ntwo").unwrap();
        assert_eq!(got, Accepted { lines: 2, bytes: 8 });
        push.push("edge", Format::Plain, b"three\n").unwrap();
        assert!(matches!(
            push.push("edge", Format::Pino, b"x\n"),
            Err(PushError::OtherFormat { .. })
        ));
        assert!(matches!(
            push.push("no/slash", Format::Plain, b"x\n"),
            Err(PushError::BadName(_))
        ));
        assert!(push.close());
        assert_eq!(
            push.push("edge", Format::Plain, b"x\n"),
            Err(PushError::NotRunning)
        );
        let inputs: Vec<Input> = rx.try_iter().collect();
        let fp = match &inputs[0] {
            Input::Pushed { fingerprint, spec } => {
                assert_eq!(spec.service, "edge");
                assert_eq!(spec.path, std::path::Path::new("push:edge"));
                *fingerprint
            }
            other => panic!("{other:?}"),
        };
        let shape: Vec<String> = inputs[1..]
            .iter()
            .map(|i| match i {
                Input::Chunk(c) if c.fingerprint == fp => {
                    format!("{}:{}", c.offset, String::from_utf8_lossy(&c.bytes))
                }
                Input::Idle { fingerprint } if *fingerprint == fp => "idle".into(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(shape, ["0:one\ntwo\n", "idle", "8:three\n", "idle"]);
    }
}
