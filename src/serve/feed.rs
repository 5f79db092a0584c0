//! `GET /api/v1/feed` and `GET /api/v1/feed/ws`: incident changes as server-sent events or
//! WebSocket messages, live, with replay.
//!
//! Owns the live fan-out ([`Feed`]) and each client's stream. Both transports share one request
//! ([`FeedRequest`]: filter and replay point) and one stream of changes (`open`: subscribe, replay,
//! live); only the framing differs. Every change the pipeline stores
//! reaches [`Feed::publish`] (from its `on_change` callback, after the incident log made it
//! durable) and goes to each client whose [`Filter`] admits it, as one event: `id:` the change's
//! sequence number in the incident log, `event:` its kind (`opened`, `updated`, `escalated`,
//! `resolved`, `reopened`), `data:` the change as JSON (`seq`, `kind`, `at`, and the `incident` as
//! `logwarden incident --json` shows it). A comment (`: heartbeat`) is sent when the feed has been
//! silent for the heartbeat interval.
//!
//! WebSocket: each change is one text frame, `{"id": N, "event": KIND, "data": CHANGE}` (the SSE
//! event's three fields, `data` the same JSON object); a ping frame is the heartbeat. The client
//! may offer the subprotocol [`WS_PROTOCOL`], which the server then selects (a browser, which
//! cannot set `Authorization` on a WebSocket, offers it beside `bearer.TOKEN`: see `auth`).
//! Replay is `?last_event_id=N` (or the `Last-Event-ID` header, which wins), as for SSE.
//!
//! Replay: a client that sends `Last-Event-ID: N` (browsers do on reconnecting; `?last_event_id=N`
//! does the same for a first connection) first gets every change after N from the durable log, in
//! order, then the live stream. It is subscribed to the live stream *before* the log is read, and
//! live changes up to the last one read from the log are skipped: a change stored while the log
//! was being read arrives once, either from the log or live, never twice and never not at all.
//!
//! Slow clients: `publish` never waits. Each client has a bounded queue of changes (shared, not
//! copied: one serialisation per change); a client whose queue is full is not reading (its socket,
//! whose send buffer the feed bounds, is full too), so it is dropped with a warning giving the
//! reason, and its connection is cut. It loses nothing by it: reconnecting with `Last-Event-ID`
//! replays what it missed. A burst larger than the queue (a run catching up on old logs) drops
//! clients the same way, and they catch up from the log.
//!
//! This module must not read the log other than for replay, nor block the pipeline's thread.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::api::{ApiError, Filter, read_log};
use super::{Conn, Shared};
use crate::incident::Change;

/// The kernel send buffer of a feed connection: a few events' worth, so that a client that stops
/// reading shows as a full queue soon (and costs little memory meanwhile).
const SEND_BUFFER: usize = 64 << 10;

/// The largest message a WebSocket feed client may send: it has nothing to say but pongs and its
/// close, so anything bigger is refused rather than buffered.
const WS_CLIENT_MESSAGE: usize = 4 << 10;

/// The WebSocket subprotocol the feed speaks (selected when the client offers it).
pub const WS_PROTOCOL: &str = "logwarden-feed";

/// How a client reads the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Server-sent events, `GET /api/v1/feed`.
    Sse,
    /// WebSocket, `GET /api/v1/feed/ws`.
    Ws,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
        }
    }
}

/// One change, ready to send to every client that wants it.
#[derive(Debug)]
struct Item {
    seq: u64,
    kind: &'static str,
    json: String,
}

impl Item {
    fn of(change: &Change) -> Result<Item, serde_json::Error> {
        Ok(Item {
            seq: change.seq,
            kind: change.kind.as_str(),
            json: serde_json::to_string(change)?,
        })
    }

    fn event(&self) -> Event {
        Event::default()
            .id(self.seq.to_string())
            .event(self.kind)
            .data(&self.json)
    }

    /// The WebSocket frame: the SSE event's fields as one JSON object (`json` is JSON already,
    /// `kind` a fixed lowercase word).
    fn ws_text(&self) -> String {
        format!(
            r#"{{"id":{},"event":"{}","data":{}}}"#,
            self.seq, self.kind, self.json
        )
    }
}

/// The live fan-out of incident changes to feed clients. Cloning gives another handle to it.
#[derive(Clone, Debug)]
pub struct Feed {
    hub: Arc<Hub>,
}

#[derive(Debug)]
struct Hub {
    /// Changes a client may have waiting.
    buffer: usize,
    clients: Mutex<Clients>,
}

#[derive(Debug, Default)]
struct Clients {
    next_id: u64,
    list: Vec<Client>,
}

#[derive(Debug)]
struct Client {
    id: u64,
    transport: Transport,
    filter: Filter,
    tx: mpsc::Sender<Arc<Item>>,
    conn: Conn,
}

impl Hub {
    fn clients(&self) -> MutexGuard<'_, Clients> {
        // A panic while holding the lock leaves a consistent list (every step is one Vec call).
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client's place in the feed; leaving it (dropping) removes the client.
struct Subscription {
    rx: mpsc::Receiver<Arc<Item>>,
    id: u64,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.clients().list.retain(|c| c.id != self.id);
    }
}

impl Feed {
    /// A feed whose clients may each have `buffer` changes waiting (at least 1).
    pub fn new(buffer: usize) -> Feed {
        Feed {
            hub: Arc::new(Hub {
                buffer: buffer.max(1),
                clients: Mutex::default(),
            }),
        }
    }

    /// Send a stored change (its `seq` set by the incident log) to every client that wants it.
    /// Never blocks: a client without room for it is dropped (see the module doc).
    pub fn publish(&self, change: &Change) {
        let mut clients = self.hub.clients();
        if clients.list.is_empty() {
            return;
        }
        let item = match Item::of(change) {
            Ok(item) => Arc::new(item),
            Err(error) => {
                tracing::error!(seq = change.seq, %error, "cannot encode a change for the feed");
                return;
            }
        };
        let buffer = self.hub.buffer;
        clients.list.retain(|client| {
            if !client.filter.admits(&change.incident) {
                return true;
            }
            match client.tx.try_send(Arc::clone(&item)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        peer = %client.conn.peer,
                        client = client.id,
                        transport = client.transport.as_str(),
                        seq = change.seq,
                        "feed client dropped: it has not read its last {buffer} changes \
                         (it can reconnect with Last-Event-ID and miss nothing)"
                    );
                    client.conn.cut();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.hub.clients().list.len()
    }

    /// How many clients of one transport are connected.
    pub fn clients_of(&self, transport: Transport) -> usize {
        self.hub
            .clients()
            .list
            .iter()
            .filter(|c| c.transport == transport)
            .count()
    }

    fn subscribe(&self, filter: Filter, conn: Conn, transport: Transport) -> Subscription {
        let (tx, rx) = mpsc::channel(self.hub.buffer);
        let mut clients = self.hub.clients();
        clients.next_id += 1;
        let id = clients.next_id;
        clients.list.push(Client {
            id,
            transport,
            filter,
            tx,
            conn,
        });
        Subscription {
            rx,
            id,
            hub: Arc::clone(&self.hub),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    class: Option<String>,
    severity: Option<String>,
    service: Option<String>,
    /// For a first connection, as the `Last-Event-ID` header (which wins when both are given).
    last_event_id: Option<String>,
}

/// What a feed client asks for, whatever the transport: which changes, and after which one.
#[derive(Debug)]
pub(crate) struct FeedRequest {
    filter: Filter,
    /// Replay the changes after this sequence number first.
    after: Option<u64>,
}

impl FeedRequest {
    /// From `?class=&severity=&service=&last_event_id=` and the `Last-Event-ID` header (which
    /// wins over the parameter).
    fn parse(
        headers: &HeaderMap,
        query: Result<Query<FeedQuery>, QueryRejection>,
    ) -> Result<FeedRequest, ApiError> {
        let Query(query) = query.map_err(ApiError::from_query)?;
        let filter = Filter::parse(
            query.class.as_deref(),
            query.severity.as_deref(),
            query.service.as_deref(),
        )
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
        let last_event_id = match headers.get("last-event-id") {
            Some(value) => Some(
                value
                    .to_str()
                    .map_err(|_| bad_last_event_id("Last-Event-ID"))?
                    .to_string(),
            ),
            None => query.last_event_id,
        };
        let after = match last_event_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<u64>()
                    .map_err(|_| bad_last_event_id("Last-Event-ID"))?,
            ),
        };
        Ok(FeedRequest { filter, after })
    }
}

/// A client's stream of changes: subscribed to the live feed first, then the log read for the
/// replay: nothing stored in between is missed (see the module doc).
async fn open(
    shared: &Shared,
    conn: Conn,
    request: FeedRequest,
    transport: Transport,
) -> Result<impl futures_util::Stream<Item = Arc<Item>> + Send + 'static, ApiError> {
    let FeedRequest { filter, after } = request;
    conn.limit_send_buffer(SEND_BUFFER);
    let subscription = shared.feed.subscribe(filter.clone(), conn, transport);
    let mut seam = 0;
    let mut replayed = Vec::new();
    if let Some(after) = after {
        let changes = read_log(shared.incident_log(), after).await?;
        seam = changes.last().map_or(after, |c| c.seq);
        for change in changes.iter().filter(|c| filter.admits(&c.incident)) {
            let item = Item::of(change).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode change {}: {e}", change.seq),
                )
            })?;
            replayed.push(Arc::new(item));
        }
        tracing::debug!(
            after,
            replayed = replayed.len(),
            transport = transport.as_str(),
            "feed replay"
        );
    }
    Ok(replay_then_live(replayed, seam, subscription))
}

/// `GET /api/v1/feed[?class=&severity=&service=&last_event_id=]`.
pub(crate) async fn sse(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let request = FeedRequest::parse(&headers, query)?;
    let items = open(&shared, conn, request, Transport::Sse).await?;
    let events = items.map(|item| Ok::<Event, Infallible>(item.event()));
    let keep_alive = KeepAlive::new()
        .interval(shared.heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// `GET /api/v1/feed/ws[?class=&severity=&service=&last_event_id=]`: the same stream over a
/// WebSocket. The request is checked (and the client subscribed) before the upgrade, so a bad
/// filter is a 400 like the SSE feed's, not a socket closed without a reason.
pub(crate) async fn ws(
    State(shared): State<Shared>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let request = FeedRequest::parse(&headers, query)?;
    let items = open(&shared, conn.clone(), request, Transport::Ws).await?;
    let heartbeat = shared.heartbeat;
    Ok(upgrade
        .max_message_size(WS_CLIENT_MESSAGE)
        .max_frame_size(WS_CLIENT_MESSAGE)
        .protocols([WS_PROTOCOL])
        .on_upgrade(move |socket| send_ws(socket, items, heartbeat, conn)))
}

/// Write the stream to the socket, a ping after each silence of `heartbeat`, until either side
/// ends. What the client sends is read (so its pongs and its close are seen) and otherwise ignored.
async fn send_ws(
    mut socket: WebSocket,
    items: impl futures_util::Stream<Item = Arc<Item>> + Send + 'static,
    heartbeat: Duration,
    conn: Conn,
) {
    let mut items = std::pin::pin!(items);
    let quiet = tokio::time::sleep(heartbeat);
    let mut quiet = std::pin::pin!(quiet);
    let why = loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else {
                    break "the feed ended";
                };
                if socket.send(Message::text(item.ws_text())).await.is_err() {
                    break "the connection failed or was cut";
                }
                quiet.as_mut().reset(tokio::time::Instant::now() + heartbeat);
            }
            () = &mut quiet => {
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    break "the connection failed or was cut";
                }
                quiet.as_mut().reset(tokio::time::Instant::now() + heartbeat);
            }
            message = socket.recv() => match message {
                None | Some(Err(_)) => break "the connection failed or was cut",
                Some(Ok(Message::Close(_))) => break "the client closed it",
                Some(Ok(_)) => {}
            }
        }
    };
    tracing::debug!(peer = %conn.peer, reason = why, "WebSocket feed client gone");
}

/// The replayed changes, then the live ones after `seam` (the last sequence number the replay
/// read from the log: live changes up to it were replayed already, or filtered out there).
fn replay_then_live(
    replayed: Vec<Arc<Item>>,
    seam: u64,
    subscription: Subscription,
) -> impl futures_util::Stream<Item = Arc<Item>> {
    let live = futures_util::stream::unfold(subscription, |mut sub| async move {
        let item = sub.rx.recv().await?;
        Some((item, sub))
    })
    .filter(move |item| std::future::ready(item.seq > seam));
    futures_util::stream::iter(replayed).chain(live)
}

fn bad_last_event_id(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("{name} must be a change's sequence number (the `id:` of an event)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::ChangeKind;

    fn item(seq: u64) -> Arc<Item> {
        Arc::new(Item {
            seq,
            kind: "opened",
            json: String::new(),
        })
    }

    fn conn() -> Conn {
        Conn {
            peer: "127.0.0.1:1".parse().unwrap(),
            socket: None,
        }
    }

    /// The seam between replay and live: a change stored while the log was read is in both the
    /// replay and the live queue, or in the live queue alone; either way it is sent once.
    #[test]
    fn replay_then_live_sends_each_change_once_in_order() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let sent = |replayed: &[u64], seam: u64, live: &[u64]| -> Vec<u64> {
            let feed = Feed::new(16);
            let subscription = feed.subscribe(Filter::default(), conn(), Transport::Sse);
            for &seq in live {
                feed.hub.clients().list[0].tx.try_send(item(seq)).unwrap();
            }
            // The server goes away: the live stream ends after what was queued.
            feed.hub.clients().list.clear();
            let replayed = replayed.iter().map(|&s| item(s)).collect();
            let stream = replay_then_live(replayed, seam, subscription);
            runtime.block_on(stream.map(|i| i.seq).collect())
        };
        // Change 5 was stored before the read: replayed, and skipped live.
        assert_eq!(sent(&[3, 4, 5], 5, &[4, 5, 6]), [3, 4, 5, 6]);
        // Change 5 was stored after the read: live only.
        assert_eq!(sent(&[3, 4], 4, &[5, 6]), [3, 4, 5, 6]);
        // Nothing to replay past the client's id: live after it.
        assert_eq!(sent(&[], 7, &[6, 7, 8]), [8]);
        // No Last-Event-ID: everything live.
        assert_eq!(sent(&[], 0, &[1, 2]), [1, 2]);
    }

    #[test]
    fn a_full_queue_drops_its_client_and_only_it() {
        let feed = Feed::new(2);
        let change = |seq: u64| {
            let mut c: Change = serde_json::from_str(CHANGE).unwrap();
            c.seq = seq;
            c
        };
        let mut reader = feed.subscribe(Filter::default(), conn(), Transport::Sse);
        let _sleeper = feed.subscribe(Filter::default(), conn(), Transport::Ws);
        let other_class = Filter::parse(Some("security"), None, None).unwrap();
        let _elsewhere = feed.subscribe(other_class, conn(), Transport::Sse);
        assert_eq!(feed.clients_of(Transport::Ws), 1);
        assert_eq!(feed.clients_of(Transport::Sse), 2);
        for seq in 1..=4 {
            feed.publish(&change(seq));
            assert_eq!(reader.rx.try_recv().unwrap().seq, seq);
        }
        // The sleeper had room for two; the client filtering them out was never full.
        assert_eq!(feed.clients(), 2);
        assert_eq!(feed.clients_of(Transport::Ws), 0);
        drop(reader);
        assert_eq!(feed.clients(), 1);
    }

    const CHANGE: &str = r#"{"seq":0,"kind":"opened","at":"2026-11-28T14:00:00Z","incident":{
        "id":"inc-0000000000000001","class":"db-connection","severity":"critical","state":"open",
        "title":"t","rule":"r","group":"g","services":["postgres"],
        "first_seen":"2026-11-28T14:00:00Z","opened_at":"2026-11-28T14:00:00Z",
        "last_seen":"2026-11-28T14:00:00Z","resolved_at":null,"count":1,"escalation_level":1,
        "caused_by":[],"consequence":false,
        "runbook":{"title":"t","anchor":"a","steps":[]},"evidence":[]}}"#;

    #[test]
    fn event_names_are_the_change_kinds_as_the_log_spells_them() {
        for kind in ChangeKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }
}
