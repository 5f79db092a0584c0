//! A pipe as a source: `docker-compose logs -f | logwarden run --stdin --source auto`.
//!
//! Reads standard input (or any reader) in large chunks on its own thread and hands the pipeline
//! the same inputs a tailed file gives: `Opened`, `Chunk`s, `Idle` after a quiet spell, and at the
//! end of the pipe (or when asked to stop) `Closed`, so a last line without its newline becomes an
//! event flagged partial instead of being lost, then `Done`. A pipe has no identity to resume from:
//! each run is a new stream (its fingerprint is drawn from the process id and start time) and
//! nothing of it is checkpointed. It must not parse.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use crate::source::{Chunk, Disconnected, FileInfo, Input, READ_SIZE, Stats, fingerprint, send};

/// The path a stdin source reports (`-`, as in most tools).
pub const STDIN_PATH: &str = "-";

/// Read `reader` until it ends or `stop` is set, as source 0; then `Closed` and `Done`.
pub fn follow(
    reader: impl Read + Send + 'static,
    idle_after: Duration,
    tx: &SyncSender<Input>,
    stop: &AtomicBool,
) -> io::Result<Stats> {
    let mut stats = Stats::default();
    match pump(reader, idle_after, tx, stop, &mut stats) {
        Ok(()) | Err(PumpError::Disconnected) => Ok(stats),
        Err(PumpError::Io(e)) => Err(e),
    }
}

enum PumpError {
    Io(io::Error),
    Disconnected,
}

impl From<Disconnected> for PumpError {
    fn from(_: Disconnected) -> Self {
        PumpError::Disconnected
    }
}

fn pump(
    mut reader: impl Read + Send + 'static,
    idle_after: Duration,
    tx: &SyncSender<Input>,
    stop: &AtomicBool,
    stats: &mut Stats,
) -> Result<(), PumpError> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let identity = format!("stdin {} {started}", std::process::id());
    let fp = fingerprint::of_head(identity.as_bytes(), true).unwrap_or(0);
    send(
        tx,
        Input::Opened(FileInfo {
            source: 0,
            fingerprint: fp,
            path: PathBuf::from(STDIN_PATH),
            start: 0,
        }),
    )?;
    stats.files += 1;

    // Blocking reads on their own thread, so quiet spells and stop requests are noticed. The
    // small bound keeps memory flat when the pipeline is slower than the pipe.
    let (bytes_tx, bytes_rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut buf = vec![0u8; READ_SIZE];
            loop {
                let got = match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(buf[..n].to_vec()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = got.is_err();
                if bytes_tx.send(got).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(PumpError::Io)?;

    let mut offset = 0u64;
    let mut idle_sent = false;
    while !stop.load(Ordering::SeqCst) {
        match bytes_rx.recv_timeout(idle_after) {
            Ok(Ok(bytes)) => {
                let n = bytes.len() as u64;
                stats.chunks += 1;
                stats.bytes_read += n;
                send(
                    tx,
                    Input::Chunk(Chunk {
                        source: 0,
                        fingerprint: fp,
                        offset,
                        bytes,
                        eof: false,
                    }),
                )?;
                offset += n;
                idle_sent = false;
            }
            Ok(Err(e)) => return Err(PumpError::Io(e)),
            Err(RecvTimeoutError::Timeout) => {
                if !idle_sent {
                    send(tx, Input::Idle { fingerprint: fp })?;
                    idle_sent = true;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break, // end of the pipe
        }
    }
    send(tx, Input::Closed { fingerprint: fp })?;
    send(tx, Input::Done)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_becomes_opened_chunks_closed_and_done() {
        let (tx, rx) = sync_channel(64);
        let stop = AtomicBool::new(false);
        let input: &'static [u8] = b"one\ntwo\nno newline";
        let stats = follow(input, Duration::from_millis(50), &tx, &stop).unwrap();
        drop(tx);
        let inputs: Vec<Input> = rx.iter().collect();
        assert!(
            matches!(&inputs[0], Input::Opened(info) if info.path == std::path::Path::new("-"))
        );
        let bytes: Vec<u8> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Chunk(c) => Some(c.bytes.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(bytes, input);
        assert_eq!(stats.bytes_read, input.len() as u64);
        let n = inputs.len();
        assert!(matches!(inputs[n - 2], Input::Closed { .. }));
        assert!(matches!(inputs[n - 1], Input::Done));
    }
}
