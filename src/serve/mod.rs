//! serve: the HTTP face of a live run, axum on a tokio runtime of its own.
//!
//! Owns the listening socket, the router, the state the handlers share and the limits every
//! request meets: where it listens (loopback by default; any other address only with an API
//! token, see [`auth`]), a 1 MiB cap on request bodies (413), a 4 KiB cap on query strings (414),
//! and no CORS headers unless `--cors-origin` names origins, so a page of another origin cannot
//! read the API. Takes a [`Config`]; gives
//! a running [`Server`] whose [`Feed`] the pipeline's `on_change` callback publishes every
//! incident change to.
//!
//! The pipeline stays synchronous: the server runs on its own two worker threads, and the one thing
//! that crosses over from the pipeline is [`Feed::publish`], which never blocks (see [`feed`]).
//! Handlers read the durable incident log (`store::incidents`), never the pipeline's memory, so
//! the API says what a restart would say, and a feed client that reconnects misses nothing.
//!
//! - [`api`]: `/api/v1/incidents`, `/api/v1/incidents/{id}`, `/api/v1/health`, and the JSON errors.
//! - [`feed`]: `/api/v1/feed` and `/api/v1/feed/ws`, incident changes with replay, as server-sent
//!   events or WebSocket messages.
//! - [`metrics`]: `/metrics`, the run's counters as Prometheus text; the [`Metrics`] the pipeline
//!   adds to (through `Settings::metrics`) and which `/api/v1/health` judges readiness by.
//! - [`search`]: `/api/v1/search` and `/api/v1/count`, loggrep's questions over the index.
//! - [`loggrep`]: `/api/v1/loggrep`, a `loggrep` process's question answered from the index the
//!   server keeps open; the server writes its address in the data dir (`serve.addr`) so that
//!   `loggrep` finds it (see `query::remote`).
//! - [`ingest`]: `/api/v1/ingest`, lines pushed into the pipeline through its [`Push`] handle.
//! - [`operator`]: `/api/v1/incidents/{id}/ack` (to the pipeline's engine, through its
//!   [`Operator`] handle) and `/api/v1/silences` (the data dir's silences file).
//! - [`auth`]: the bearer token and the listen policy.
//! - [`page`]: the live incident board at `/`, served from the binary without a token.
//! - [`webhook`]: the profile's webhooks, sent from the incident log by tasks of their own (they
//!   run without the server too).
//!
//! This module must not parse logs, match rules or change incidents: it serves what the store holds
//! and what the pipeline publishes, and hands pushed lines and operators' acknowledgements to the
//! pipeline, which owns ingestion and the engine.

pub mod api;
pub mod auth;
pub mod feed;
pub mod ingest;
pub mod loggrep;
pub mod metrics;
pub mod operator;
pub mod page;
pub mod search;
pub mod webhook;

use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::serve::IncomingStream;
use tower_http::limit::RequestBodyLimitLayer;

pub use auth::Token;
pub use feed::Feed;
pub use metrics::Metrics;

use crate::source::operator::Operator;
use crate::source::push::Push;

/// The address `run` and `demo` serve on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;
/// Query strings longer than this are refused with 414.
pub const QUERY_LIMIT: usize = 4 << 10;
/// How long, at most, a feed stays silent: then it sends a comment, so that proxies keep the
/// connection and clients can tell a quiet feed from a dead one.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How many changes a feed client may have waiting before it is dropped as not reading.
pub const CLIENT_BUFFER: usize = 4096;
/// A source more bytes than this behind the end of its files makes the run not ready.
pub const MAX_LAG: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    // The I/O errors are part of the message, not a `source`: anyhow's `{:#}` would say them twice.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(
        "refusing to listen on {addr} without an API token: a non-loopback address needs \
         --token-file FILE (or listen on 127.0.0.1)"
    )]
    NeedsToken { addr: SocketAddr },
    #[error("token file {path}: {error}")]
    TokenFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("token file {path} holds no token")]
    EmptyToken { path: PathBuf },
    #[error("cannot start the HTTP server's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Where to listen: an address, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = String;

    /// `off`, `IP:PORT` (`127.0.0.1:7878`, `[::1]:7878`, `0.0.0.0:7878`) or `localhost:PORT`.
    fn from_str(s: &str) -> Result<Listen, String> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Listen::At(addr));
        }
        let wrong = || format!("`{s}` is not IP:PORT (127.0.0.1:7878, [::1]:7878) nor `off`");
        let (host, _) = text.rsplit_once(':').ok_or_else(wrong)?;
        if !host.eq_ignore_ascii_case("localhost") {
            return Err(wrong());
        }
        // localhost: its loopback address, never a name resolved to something else.
        text.to_socket_addrs()
            .map_err(|_| wrong())?
            .find(|a| a.ip().is_loopback())
            .map(Listen::At)
            .ok_or_else(wrong)
    }
}

/// What the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Every `/api/` request must carry it (required for a non-loopback address).
    pub token: Option<Token>,
    /// The data dir whose incident log the API reads.
    pub data_dir: PathBuf,
    /// Longest silence on a feed before a heartbeat comment.
    pub heartbeat: Duration,
    /// Changes a feed client may have waiting before it is dropped.
    pub client_buffer: usize,
    /// `/api/v1/health` says not ready while a source is more bytes than this behind.
    pub max_lag: u64,
    /// Web origins whose pages may read the API (CORS); none by default.
    pub cors: Vec<auth::Origin>,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            token: None,
            data_dir,
            heartbeat: HEARTBEAT,
            client_buffer: CLIENT_BUFFER,
            max_lag: MAX_LAG,
            cors: Vec::new(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) data_dir: PathBuf,
    pub(crate) feed: Feed,
    pub(crate) token: Option<Arc<Token>>,
    pub(crate) heartbeat: Duration,
    /// Where `/api/v1/ingest` hands lines to the pipeline.
    pub(crate) push: Push,
    /// Where acknowledgements go to the pipeline, and silence changes are announced.
    pub(crate) operator: Operator,
    /// The event index, kept open between questions.
    pub(crate) index: loggrep::OpenIndex,
    /// What `/metrics` renders and readiness is judged by.
    pub(crate) metrics: Arc<Metrics>,
    /// Readiness: the most bytes a source may be behind.
    pub(crate) max_lag: u64,
}

impl Shared {
    pub(crate) fn incident_log(&self) -> PathBuf {
        self.data_dir.join(crate::store::incidents::LOG_FILE)
    }
}

/// The running server. Dropping it (or [`Server::shutdown`]) stops it and closes every connection.
pub struct Server {
    addr: SocketAddr,
    feed: Feed,
    push: Push,
    operator: Operator,
    metrics: Arc<Metrics>,
    runtime: Option<tokio::runtime::Runtime>,
    /// `serve.addr`, removed when the server stops.
    addr_file: Option<PathBuf>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

/// Check the listen policy, bind, and serve on a runtime of the server's own. Binding happens
/// before this returns, so a taken port is an error here, not later.
pub fn start(config: Config) -> Result<Server, ServeError> {
    auth::check_listen(config.listen, config.token.as_ref())?;
    let bind_err = |error| ServeError::Bind {
        addr: config.listen,
        error,
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(bind_err)?
    };
    let feed = Feed::new(config.client_buffer);
    let push = Push::new();
    let operator = Operator::new();
    let addr_file = advertise(&config.data_dir, addr);
    let metrics = Arc::new(Metrics::new());
    let shared = Shared {
        metrics: Arc::clone(&metrics),
        max_lag: config.max_lag,
        push: push.clone(),
        operator: operator.clone(),
        index: loggrep::OpenIndex::default(),
        data_dir: config.data_dir,
        feed: feed.clone(),
        token: config.token.map(Arc::new),
        heartbeat: config.heartbeat,
    };
    let mut app = router(shared);
    if let Some(cors) = auth::cors(&config.cors) {
        // Outermost: a preflight (no token, by the browser's rules) is answered here.
        app = app.layer(cors);
    }
    let app = app.into_make_service_with_connect_info::<Conn>();
    runtime.spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the HTTP server stopped");
        }
    });
    tracing::info!(%addr, "serving HTTP");
    Ok(Server {
        addr,
        feed,
        push,
        operator,
        metrics,
        runtime: Some(runtime),
        addr_file,
    })
}

/// Write `addr` to the data dir's `serve.addr` (for `loggrep` to find this server); the file's
/// path when written. A data dir that cannot take it only costs loggrep the shortcut.
fn advertise(data_dir: &std::path::Path, addr: SocketAddr) -> Option<PathBuf> {
    let path = data_dir.join(crate::query::remote::ADDR_FILE);
    let temp = data_dir.join(format!("{}.tmp", crate::query::remote::ADDR_FILE));
    let written = std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&temp, format!("{addr}\n")))
        .and_then(|()| std::fs::rename(&temp, &path));
    match written {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot write the server's address for loggrep");
            None
        }
    }
}

impl Server {
    /// The address bound (the actual port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the pipeline publishes incident changes.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Where a live pipeline takes the lines pushed to `/api/v1/ingest` (`Settings::push`); until
    /// one is connected, a push is answered 503.
    pub fn push(&self) -> &Push {
        &self.push
    }

    /// Where a live pipeline takes acknowledgements and hears of silence changes
    /// (`Settings::operator`); until one is connected, an acknowledgement is answered 503.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// The counters `/metrics` shows: the pipeline adds to them (`Settings::metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stop serving: open connections (feeds included) are closed.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(path) = self.addr_file.take() {
            // Only this server's address: another one may have taken the data dir since.
            let ours = std::fs::read_to_string(&path)
                .is_ok_and(|text| text.trim() == self.addr.to_string());
            if ours && let Err(error) = std::fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), %error, "cannot remove the server's address file");
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}", get(api::incident))
        .route("/api/v1/incidents/{id}/ack", post(operator::ack))
        .route("/api/v1/silences", get(operator::list).post(operator::add))
        .route("/api/v1/silences/{id}", delete(operator::expire))
        .route("/api/v1/feed", get(feed::sse))
        .route("/api/v1/feed/ws", get(feed::ws))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/count", get(search::count))
        .route("/api/v1/ingest", post(ingest::ingest))
        .route(crate::query::remote::PATH, post(loggrep::loggrep))
        .route("/metrics", get(metrics::metrics))
        .merge(page::routes())
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            metrics::time_request,
        ))
        .fallback(api::not_found)
        // Layers run from the last added to the first: caps, then the Host, then the token, then
        // the route.
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            auth::require_local_host,
        ))
        .layer(middleware::from_fn(cap_query))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .with_state(shared)
}

async fn cap_query(request: Request, next: Next) -> Response {
    let length = request.uri().query().map_or(0, str::len);
    if length > QUERY_LIMIT {
        return api::ApiError::new(
            axum::http::StatusCode::URI_TOO_LONG,
            format!("the query string is {length} bytes; at most {QUERY_LIMIT} are accepted"),
        )
        .into_response();
    }
    next.run(request).await
}

/// A connection as the handlers see it: the peer, and a second descriptor of the accepted socket
/// for the handlers that must act on the connection itself (the feed bounds its send buffer and
/// cuts a client that stopped reading, which hyper, blocked on the full socket, cannot notice).
#[derive(Clone, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    socket: Option<Arc<std::net::TcpStream>>,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Conn {
        let io = stream.io();
        let peer = *stream.remote_addr();
        // Events are small and must not wait for Nagle's algorithm.
        if let Err(error) = io.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let socket = match io.as_fd().try_clone_to_owned() {
            Ok(fd) => Some(Arc::new(std::net::TcpStream::from(fd))),
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot duplicate a connection's socket; a feed on it cannot be cut if it stops reading");
                None
            }
        };
        Conn { peer, socket }
    }
}

impl Conn {
    /// Bound the kernel's send buffer of this connection (it otherwise grows to megabytes on a
    /// client that does not read, hiding that it does not).
    pub(crate) fn limit_send_buffer(&self, bytes: usize) {
        if let Some(socket) = &self.socket
            && let Err(error) = socket2::SockRef::from(socket.as_ref()).set_send_buffer_size(bytes)
        {
            tracing::debug!(peer = %self.peer, %error, "cannot set SO_SNDBUF");
        }
    }

    /// Close the connection now, discarding what it has not sent (a reset, not a FIN queued
    /// behind data the peer will never read).
    pub(crate) fn cut(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket2::SockRef::from(socket.as_ref()).set_linger(Some(Duration::ZERO));
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_address_localhost_or_off() {
        assert_eq!("off".parse::<Listen>(), Ok(Listen::Off));
        assert_eq!(
            "127.0.0.1:7878".parse::<Listen>(),
            Ok(Listen::At("127.0.0.1:7878".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:0".parse::<Listen>(),
            Ok(Listen::At("[::1]:0".parse().unwrap()))
        );
        match "localhost:7000".parse::<Listen>() {
            Ok(Listen::At(addr)) => {
                assert!(addr.ip().is_loopback());
                assert_eq!(addr.port(), 7000);
            }
            other => panic!("{other:?}"),
        }
        for bad in ["7878", "example.org:80", "127.0.0.1", ""] {
            let err = bad.parse::<Listen>().unwrap_err();
            assert!(err.contains("IP:PORT"), "{bad}: {err}");
        }
    }
}
