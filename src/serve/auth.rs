//! Who may talk to the server: the listen policy and the API token.
//!
//! Owns two decisions. Where the server may listen: a loopback address needs nothing, any other
//! address (`0.0.0.0` included) is refused unless a token is configured ([`check_listen`]), so the
//! incident data is never an open door on the network by accident. And which requests pass: with a
//! token, every request under `/api/` and to `/metrics` must carry `Authorization: Bearer <token>`,
//! compared in constant time (`subtle`), else 401 with `WWW-Authenticate: Bearer`
//! ([`require_token`]).
//!
//! A browser cannot set headers on a WebSocket, so the WebSocket feed (`/api/v1/feed/ws`, and only
//! it) also takes the token as a `Sec-WebSocket-Protocol` value `bearer.<token>`, compared the same
//! way ([`Token::admits_protocols`]); the client offers `logwarden-feed` beside it, which is the
//! protocol the server selects (the token is never echoed). Such a token must consist of the
//! characters a subprotocol may hold (letters, digits and `!#$%&'*+-.^_`|~`).
//!
//! The token is read from a file (`--token-file`), never from the command line where `ps` shows
//! it; surrounding whitespace (the file's newline) is not part of it. It is never logged or
//! printed: its `Debug` shows only its length.
//!
//! CORS only for the origins `--cors-origin` names ([`cors`]); by default none, so no page of
//! another origin can read an answer.
//!
//! Without a token, a third check: the `Host` header must name this machine
//! ([`require_local_host`]), so a web page cannot reach a loopback server through DNS rebinding.
//!
//! This module must not decide anything else about a request (caps, routes: `serve`).

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{ServeError, Shared, api::ApiError};

/// The API token.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} bytes)", self.0.len())
    }
}

impl Token {
    /// Read the token from a file: its content without surrounding whitespace, not empty.
    pub fn from_file(path: &Path) -> Result<Token, ServeError> {
        let text = std::fs::read(path).map_err(|error| ServeError::TokenFile {
            path: path.to_path_buf(),
            error,
        })?;
        let token = text.trim_ascii();
        if token.is_empty() {
            return Err(ServeError::EmptyToken {
                path: path.to_path_buf(),
            });
        }
        Ok(Token(token.to_vec()))
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>`. The token bytes
    /// are compared in constant time (only the length can show through timing).
    pub fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let bytes = value.as_bytes();
        let Some(scheme_end) = bytes.iter().position(|b| *b == b' ') else {
            return false;
        };
        let (scheme, rest) = bytes.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        let given = rest.trim_ascii();
        bool::from(given.ct_eq(self.0.as_slice()))
    }
}

/// What a WebSocket client offers as `Sec-WebSocket-Protocol` to carry the token.
pub const BEARER_PROTOCOL: &str = "bearer.";

impl Token {
    /// Whether one of the `Sec-WebSocket-Protocol` values (each a comma-separated list) is
    /// `bearer.<token>`. Every offered value is compared, in constant time, whatever matched before.
    pub fn admits_protocols<'a>(&self, values: impl Iterator<Item = &'a HeaderValue>) -> bool {
        let mut admitted = subtle::Choice::from(0);
        for value in values {
            for offered in value.as_bytes().split(|b| *b == b',') {
                if let Some(given) = offered
                    .trim_ascii()
                    .strip_prefix(BEARER_PROTOCOL.as_bytes())
                {
                    admitted |= given.ct_eq(self.0.as_slice());
                }
            }
        }
        bool::from(admitted)
    }
}

/// The one route that takes the token as a WebSocket subprotocol.
const WS_FEED: &str = "/api/v1/feed/ws";

/// Refuse a non-loopback address unless there is a token.
pub fn check_listen(addr: SocketAddr, token: Option<&Token>) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(ServeError::NeedsToken { addr })
    }
}

/// Middleware: with a token configured, a request under `/api/` or to `/metrics` without it gets
/// 401.
pub(crate) async fn require_token(
    State(shared): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &shared.token else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let guarded = path.starts_with("/api/") || path == "/metrics";
    let headers = request.headers();
    if !guarded
        || token.admits(headers.get(header::AUTHORIZATION))
        || (path == WS_FEED
            && token.admits_protocols(headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter()))
    {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this server needs `Authorization: Bearer <token>` (the content of its --token-file)",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Middleware: without a token, a request must name this machine in its `Host` header
/// (`localhost`, a loopback address), else 403. A page of another site can make a browser send
/// requests here by pointing its own name at 127.0.0.1 (DNS rebinding) and then read the answers
/// as its own; such requests carry that site's name as their Host. With a token, the token guards
/// (such a page cannot know it). A request without Host (HTTP/1.0; never a browser's) passes.
pub(crate) async fn require_local_host(
    State(shared): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    if shared.token.is_some() {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match host {
        Some(host) if !is_local_host(&host) => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host `{host}` is not this machine: without --token-file this server answers \
                 only requests for localhost or a loopback address"
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

/// Whether a Host header (`name[:port]`, `[v6]:port`) names this machine: `localhost` (any case,
/// a trailing dot allowed) or a loopback IP address.
fn is_local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || after.starts_with(':') => inside,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A web origin allowed to read the API from its pages (`--cors-origin`): `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl std::str::FromStr for Origin {
    type Err = String;

    /// `http://host[:port]` or `https://…`, nothing after the authority but an optional `/`.
    fn from_str(text: &str) -> Result<Origin, String> {
        let wrong =
            |why: &str| format!("`{text}` is not a web origin (scheme://host[:port]): {why}");
        let url = reqwest::Url::parse(text.trim()).map_err(|e| wrong(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(wrong("the scheme must be http or https"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(wrong("an origin has no path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(wrong("an origin has no user or password"));
        }
        Ok(Origin(url.origin().ascii_serialization()))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// CORS for the given origins (none: no layer, so no CORS header is ever sent): pages of those
/// origins may read the API (`GET`, `POST`, with `Authorization`, `Content-Type` and
/// `Last-Event-ID`); every other origin gets no CORS header, so its pages still cannot.
pub(crate) fn cors(origins: &[Origin]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    if origins.is_empty() {
        return None;
    }
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(&o.0).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> Token {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, text).unwrap();
        Token::from_file(&path).unwrap()
    }

    #[test]
    fn the_token_is_the_file_without_its_newline_and_a_bearer_must_match_it() {
        let t = token("s3cret-token\n");
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(t.admits(Some(&header("Bearer s3cret-token"))));
        assert!(t.admits(Some(&header("bearer  s3cret-token"))));
        assert!(!t.admits(None));
        assert!(!t.admits(Some(&header("Bearer s3cret-toke"))));
        assert!(!t.admits(Some(&header("Bearer s3cret-token2"))));
        assert!(!t.admits(Some(&header("Basic s3cret-token"))));
        assert!(!t.admits(Some(&header("s3cret-token"))));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn a_websocket_may_offer_the_token_as_a_subprotocol() {
        let t = token("s3cret-token\n");
        let admits = |values: &[&str]| {
            let values: Vec<HeaderValue> = values
                .iter()
                .map(|v| HeaderValue::from_str(v).unwrap())
                .collect();
            t.admits_protocols(values.iter())
        };
        assert!(admits(&["logwarden-feed, bearer.s3cret-token"]));
        assert!(admits(&["logwarden-feed", "bearer.s3cret-token"]));
        assert!(admits(&["bearer.wrong, bearer.s3cret-token"]));
        assert!(!admits(&["logwarden-feed, bearer.s3cret-toke"]));
        assert!(!admits(&["s3cret-token"]));
        assert!(!admits(&[]));
    }

    #[test]
    fn an_empty_or_missing_token_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        assert!(matches!(
            Token::from_file(&empty),
            Err(ServeError::EmptyToken { .. })
        ));
        assert!(matches!(
            Token::from_file(&dir.path().join("none")),
            Err(ServeError::TokenFile { .. })
        ));
    }

    #[test]
    fn a_cors_origin_is_scheme_host_and_port_only() {
        let ok = |t: &str| t.parse::<Origin>().unwrap().to_string();
        assert_eq!(ok("https://dash.example"), "https://dash.example");
        assert_eq!(ok("http://Dash.Example:3000/"), "http://dash.example:3000");
        assert_eq!(ok("https://dash.example:443"), "https://dash.example");
        for bad in [
            "dash.example",
            "ftp://dash.example",
            "https://dash.example/app",
            "https://dash.example?x=1",
            "https://user:pw@dash.example",
            "*",
            "",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_this_machines_names_pass_as_host() {
        for ok in [
            "localhost",
            "localhost:7878",
            "LOCALHOST.:80",
            "127.0.0.1:7878",
            "127.0.0.2",
            "[::1]:7878",
            "[::1]",
        ] {
            assert!(is_local_host(ok), "{ok}");
        }
        for not in [
            "evil.example:7878",
            "localhost.evil.example",
            "evil.localhost.example",
            "192.0.2.1:7878",
            "[2001:db8::1]:7878",
            "[::1]x",
            "",
            "0.0.0.0:7878",
        ] {
            assert!(!is_local_host(not), "{not}");
        }
    }

    #[test]
    fn only_loopback_may_listen_without_a_token() {
        let t = token("x");
        for ok in ["127.0.0.1:7878", "[::1]:7878", "127.0.0.2:1"] {
            assert!(check_listen(ok.parse().unwrap(), None).is_ok(), "{ok}");
        }
        for open in ["0.0.0.0:7878", "[::]:7878", "192.0.2.1:80"] {
            let err = check_listen(open.parse().unwrap(), None).unwrap_err();
            assert!(err.to_string().contains("--token-file"), "{err}");
            assert!(check_listen(open.parse().unwrap(), Some(&t)).is_ok());
        }
    }
}
