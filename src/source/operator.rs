//! Operators as a source: acknowledgements and changed silences, handed to a live pipeline on
//! its input channel, in order with the lines it reads.
//!
//! Owns the [`Operator`] handle that `serve` (the API) writes into. The pipeline connects its
//! channel while it runs ([`Operator::connect`]) and lets go of it before it stops
//! ([`Operator::close`]); in between, [`Operator::acknowledge`] hands the engine an
//! acknowledgement and waits for the change the pipeline logged (or why it could not), and
//! [`Operator::silences_changed`] asks it to read the silences file again now rather than at its
//! next look. Must not: decide anything about incidents (the engine does) or write files (the
//! silences file is `store::silences`', the incident log the pipeline's).

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::incident::{Ack, Change, IncidentId};
use crate::source::Input;

/// How long an acknowledgement waits for the pipeline (which may be committing, or paused on a
/// full disk) before it is answered with [`OperatorError::Busy`].
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("the pipeline is not running (starting or stopping): retry")]
    NotRunning,
    #[error("the pipeline did not answer within {}s (busy, or paused on a full data dir): retry", ACK_TIMEOUT.as_secs())]
    Busy,
    /// The engine refused (an unknown or resolved incident), or the log could not be written.
    #[error("{0}")]
    Refused(String),
}

/// What the pipeline answers an acknowledgement with.
pub type AckReply = Result<Change, OperatorError>;

/// The handle the API writes into and a live pipeline reads from. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Operator {
    tx: Arc<Mutex<Option<SyncSender<Input>>>>,
}

impl Operator {
    pub fn new() -> Operator {
        Operator::default()
    }

    fn sender(&self) -> Option<SyncSender<Input>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The pipeline starts taking operators' inputs on `tx`.
    pub(crate) fn connect(&self, tx: SyncSender<Input>) {
        *self.tx.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }

    /// The pipeline stops taking them (an acknowledgement already sent is still answered, or
    /// dropped with the channel: its caller then hears [`OperatorError::NotRunning`]).
    pub(crate) fn close(&self) {
        *self.tx.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Acknowledge incident `id`: blocks until the pipeline has logged the change (call it off
    /// the async runtime).
    pub fn acknowledge(&self, id: IncidentId, ack: Ack) -> AckReply {
        let tx = self.sender().ok_or(OperatorError::NotRunning)?;
        let (reply, answer) = sync_channel(1);
        send_within(&tx, Input::Acknowledge { id, ack, reply }, ACK_TIMEOUT)?;
        match answer.recv_timeout(ACK_TIMEOUT) {
            Ok(reply) => reply,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(OperatorError::Busy),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(OperatorError::NotRunning),
        }
    }

    /// Ask a running pipeline to read the silences file again now; without one, nothing to do
    /// (a pipeline reads it when it starts). Never blocks: a full channel means the pipeline is
    /// busy, and it looks at the file by itself at least once a second.
    pub fn silences_changed(&self) {
        if let Some(tx) = self.sender() {
            let _ = tx.try_send(Input::SilencesChanged);
        }
    }
}

/// Send `input`, waiting at most `patience` for room in the pipeline's channel (a blocking send
/// could hang an API request for as long as the pipeline is paused).
fn send_within(
    tx: &SyncSender<Input>,
    mut input: Input,
    patience: Duration,
) -> Result<(), OperatorError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match tx.try_send(input) {
            Ok(()) => return Ok(()),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(OperatorError::NotRunning);
            }
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                if std::time::Instant::now() >= deadline {
                    return Err(OperatorError::Busy);
                }
                input = back;
                #[allow(clippy::disallowed_methods)] // pacing the retries for room in the channel
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
