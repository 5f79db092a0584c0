//! loggrep's questions asked of a running `logwarden run` instead of the files: the wire and the
//! client.
//!
//! A `loggrep` process that opens the index itself pays, on every run, for mapping its files and
//! faulting in the pages a query touches (most of a rare term's ~15 ms on 10 M events). The
//! agent that writes the index keeps it open; asked over HTTP (`POST /api/v1/loggrep`, served
//! by `serve::loggrep`), it answers from pages already mapped. The answer is the very bytes
//! [`super::run`] would have written, so a remote answer and a local one are identical (the tests
//! hold them equal, byte for byte, exit status and message included).
//!
//! The wire: the request body is a [`Question`] as JSON; the response body a sequence of frames,
//! each a tag byte, a big-endian `u32` length and that many bytes: [`OUTPUT`] (bytes for
//! stdout, streamed as the query writes them), then exactly one of [`DONE`] (the [`Outcome`] as
//! JSON) or [`FAILED`] (a [`Refusal`] as JSON). A response without the [`CONTENT_TYPE`] is not
//! an agent's answer (another program on a stale port).
//!
//! Where the agent is: `--server URL`, or the address a running agent writes in its data dir
//! ([`ADDR_FILE`], see [`discover`]). `--incident` and `--follow` are never sent (they write
//! files here, or run for as long as the user wants).
//!
//! Owns: the wire format and the client. Must not: answer questions itself (`query` does, on
//! the side that has the index), or decide how to fall back (the binary does).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Around, Outcome, QueryError, Request, View};
use crate::event::{Level, Timestamp};

/// The route of the question.
pub const PATH: &str = "/api/v1/loggrep";
/// The media type of an answer (frames).
pub const CONTENT_TYPE: &str = "application/vnd.logwarden.loggrep";
/// The file in a data dir where a running agent writes the address it serves on.
pub const ADDR_FILE: &str = "serve.addr";
/// Frame tags.
pub const OUTPUT: u8 = b'o';
pub const DONE: u8 = b'd';
pub const FAILED: u8 = b'e';
/// Largest frame a client accepts (the server sends output in 64 KiB pieces).
const MAX_FRAME: u32 = 16 << 20;
/// How long a client waits for the connection to an agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`Request`] on the wire: everything but the data dir (the agent answers over its own) and
/// the forensic options (never sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub query: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub services: Vec<String>,
    pub levels: Vec<Level>,
    pub json: bool,
    pub count: bool,
    pub limit: Option<usize>,
    pub color: bool,
    pub now: Timestamp,
    pub around: Option<Around>,
    pub view: View,
    /// The data dir the asker means, when it found the agent through that dir's [`ADDR_FILE`]: an
    /// agent serving another dir (a stale file, a port reused) refuses rather than answer
    /// about other data.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Question {
    /// `req` as a question, `None` when it must run here (`--incident`, `--follow`).
    pub fn of(req: &Request) -> Option<Question> {
        if req.incident.is_some() || req.follow.is_some() {
            return None;
        }
        Some(Question {
            query: req.query.clone(),
            since: req.since.clone(),
            until: req.until.clone(),
            services: req.services.clone(),
            levels: req.levels.clone(),
            json: req.json,
            count: req.count,
            limit: req.limit,
            color: req.color,
            now: req.now,
            around: req.around.clone(),
            view: req.view.clone(),
            data_dir: None,
        })
    }

    /// Whether `data_dir`, the agent's, is the one the asker means (the same directory, however
    /// named); any when the asker named none.
    pub fn is_for(&self, data_dir: &Path) -> bool {
        let Some(meant) = &self.data_dir else {
            return true;
        };
        match (meant.canonicalize(), data_dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    /// The request this question is over `data_dir`.
    pub fn into_request(self, data_dir: &Path) -> Request {
        Request {
            data_dir: data_dir.to_path_buf(),
            query: self.query,
            since: self.since,
            until: self.until,
            services: self.services,
            levels: self.levels,
            json: self.json,
            count: self.count,
            limit: self.limit,
            color: self.color,
            now: self.now,
            incident: None,
            follow: None,
            around: self.around,
            view: self.view,
        }
    }
}

/// A question the agent refused or failed: loggrep's message, and the query column when the
/// message points into the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub message: String,
    pub column: Option<usize>,
}

impl From<&QueryError> for Refusal {
    fn from(error: &QueryError) -> Refusal {
        Refusal {
            message: error.to_string(),
            column: error.column(),
        }
    }
}

/// One frame: tag, length, bytes.
pub fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(tag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
    out
}

#[derive(thiserror::Error, Debug)]
pub enum RemoteError {
    /// Nothing answered at the address (no agent, or it stopped).
    #[error("no logwarden agent answers at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Something answered, but not an agent's loggrep (an old agent, another program).
    #[error("{url} is not a logwarden agent that answers loggrep (HTTP {status})")]
    NotAnAgent { url: String, status: u16 },
    /// An agent answered, but it serves another data dir.
    #[error("the agent at {url} serves another data dir")]
    Elsewhere { url: String },
    /// The agent wants a token this client does not have (or has another one).
    #[error("{url} refused the token (HTTP 401): pass the agent's --token-file")]
    Unauthorized { url: String },
    /// The agent answered the question with loggrep's error.
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// The answer broke off or made no sense.
    #[error("the answer from {url} broke off: {reason}")]
    Broken { url: String, reason: String },
    /// Writing the answer out failed.
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

impl RemoteError {
    /// True when asking the index directly is the right thing to do instead: no agent there, or
    /// not one that can answer (nothing has been written out yet in these cases).
    pub fn try_locally(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::NotAnAgent { .. }
                | RemoteError::Elsewhere { .. }
                | RemoteError::Unauthorized { .. }
        )
    }

    /// The query column, for a refusal that points into the query.
    pub fn column(&self) -> Option<usize> {
        match self {
            RemoteError::Refused(r) => r.column,
            _ => None,
        }
    }

    /// True when stdout went away (a closed pipe): not worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, RemoteError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// The agent serving `data_dir`, as `http://ADDR`, when one says so in [`ADDR_FILE`].
pub fn discover(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(ADDR_FILE)).ok()?;
    let addr: std::net::SocketAddr = text.trim().parse().ok()?;
    Some(format!("http://{addr}"))
}

/// Ask the agent at `base` (`http://host:port`) `question`, writing its answer to `out` as it
/// arrives.
pub fn ask(
    base: &str,
    token: Option<&str>,
    question: &Question,
    out: &mut dyn Write,
) -> Result<Outcome, RemoteError> {
    let url = format!("{}{PATH}", base.trim_end_matches('/'));
    let body = serde_json::to_vec(question).map_err(|e| RemoteError::Broken {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    let mut request = agent.post(&url).content_type("application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request
        .send(&body[..])
        .map_err(|e| RemoteError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = response.status().as_u16();
    let ours = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == CONTENT_TYPE);
    if status == 401 {
        return Err(RemoteError::Unauthorized { url });
    }
    if status == 409 {
        return Err(RemoteError::Elsewhere { url });
    }
    if status != 200 || !ours {
        return Err(RemoteError::NotAnAgent { url, status });
    }
    let mut reader = response.into_body().into_reader();
    read_frames(&mut reader, out).map_err(|e| match e {
        Framed::Output(e) => RemoteError::Output(e),
        Framed::Refused(r) => RemoteError::Refused(r),
        Framed::Broken(reason) => RemoteError::Broken { url, reason },
    })
}

/// Why reading frames stopped without an outcome.
#[derive(Debug)]
enum Framed {
    Output(std::io::Error),
    Refused(Refusal),
    Broken(String),
}

/// Copy the output frames of `reader` to `out` until the closing frame.
fn read_frames(reader: &mut dyn Read, out: &mut dyn Write) -> Result<Outcome, Framed> {
    let broken = |e: &dyn std::fmt::Display| Framed::Broken(e.to_string());
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 5];
        reader.read_exact(&mut head).map_err(|e| broken(&e))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return Err(Framed::Broken(format!("a frame of {len} bytes")));
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload).map_err(|e| broken(&e))?;
        match head[0] {
            OUTPUT => out.write_all(&payload).map_err(Framed::Output)?,
            DONE => {
                out.flush().map_err(Framed::Output)?;
                return serde_json::from_slice(&payload).map_err(|e| broken(&e));
            }
            FAILED => {
                out.flush().map_err(Framed::Output)?;
                let refusal = serde_json::from_slice(&payload).map_err(|e| broken(&e))?;
                return Err(Framed::Refused(refusal));
            }
            tag => return Err(Framed::Broken(format!("a frame tagged {tag}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_output_then_the_outcome_or_the_refusal() {
        let outcome = Outcome {
            matched: 3,
            truncated: true,
            cut: None,
        };
        let mut wire = frame(OUTPUT, b"one\n");
        wire.extend(frame(OUTPUT, b""));
        wire.extend(frame(OUTPUT, b"two\n"));
        wire.extend(frame(DONE, &serde_json::to_vec(&outcome).unwrap()));
        let mut out = Vec::new();
        assert_eq!(read_frames(&mut &wire[..], &mut out).unwrap(), outcome);
        assert_eq!(out, b"one\ntwo\n");

        let refusal = Refusal {
            message: "query syntax error at column 3: …".into(),
            column: Some(3),
        };
        let wire = frame(FAILED, &serde_json::to_vec(&refusal).unwrap());
        match read_frames(&mut &wire[..], &mut Vec::new()) {
            Err(Framed::Refused(r)) => assert_eq!(r, refusal),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cut_or_garbled_answer_is_broken_not_an_outcome() {
        let full = frame(OUTPUT, b"abcdef");
        for cut in 0..full.len() {
            let got = read_frames(&mut &full[..cut], &mut Vec::new());
            assert!(matches!(got, Err(Framed::Broken(_))), "cut at {cut}");
        }
        let garbled = frame(b'?', b"x");
        assert!(matches!(
            read_frames(&mut &garbled[..], &mut Vec::new()),
            Err(Framed::Broken(_))
        ));
        let huge = [OUTPUT, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frames(&mut &huge[..], &mut Vec::new()),
            Err(Framed::Broken(_))
        ));
    }

    #[test]
    fn a_question_is_the_request_without_its_data_dir() {
        let mut req = Request::plain(Path::new("/here"), "a OR \"b c\"", Timestamp(42));
        req.limit = Some(5);
        req.view.reverse = true;
        req.view.context = Some(super::super::context::ContextLines {
            before: 1,
            after: 2,
        });
        let q = Question::of(&req).unwrap();
        let back: Question = serde_json::from_slice(&serde_json::to_vec(&q).unwrap()).unwrap();
        let there = back.into_request(Path::new("/there"));
        assert_eq!(there.data_dir, Path::new("/there"));
        assert_eq!(there.query, req.query);
        assert_eq!(there.limit, Some(5));
        assert_eq!(there.now, Timestamp(42));
        assert_eq!(there.view, req.view);
    }

    #[test]
    fn a_question_for_a_data_dir_is_for_that_dir_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let req = Request::plain(a.path(), "x", Timestamp(0));
        let mut q = Question::of(&req).unwrap();
        assert!(q.is_for(b.path()), "no dir named: any agent");
        q.data_dir = Some(a.path().join(".").join("sub").join(".."));
        assert!(!q.is_for(b.path()));
        std::fs::create_dir(a.path().join("sub")).unwrap();
        assert!(q.is_for(a.path()), "the same dir by another name");
        assert!(!q.is_for(b.path()));
    }

    #[test]
    fn discover_reads_the_agents_address_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(discover(dir.path()), None);
        std::fs::write(dir.path().join(ADDR_FILE), "127.0.0.1:7878\n").unwrap();
        assert_eq!(
            discover(dir.path()).as_deref(),
            Some("http://127.0.0.1:7878")
        );
        std::fs::write(dir.path().join(ADDR_FILE), "not an address").unwrap();
        assert_eq!(discover(dir.path()), None);
    }
}
