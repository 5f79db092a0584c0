//! page: the live incident board at `GET /`, plain HTML, CSS and JS compiled into the binary.
//!
//! Owns the board's routes: `/` and `/incidents/{id}` (the same page; the script shows the
//! incident), `/assets/board.css` and `/assets/board.js`. The files live in `serve/assets/` and
//! are taken in with `include_str!`: no build step, nothing fetched from another origin (no CDN, no
//! fonts), so the board works on an air-gapped host and its CSP can forbid everything but this
//! server.
//!
//! The page holds no data, so it is served without the API token; the script reads the data
//! endpoints, which keep their token policy (on a 401 it asks for the token, keeps it in the tab's
//! sessionStorage and sends it as `Authorization: Bearer`; that is why it reads the feed with
//! `fetch`, not `EventSource`, which cannot send headers). The script puts incident and log text
//! into the DOM as text only (`textContent`), never as HTML.
//!
//! This module must not read the incident log nor answer any `/api/` path: data goes through
//! [`super::api`] and [`super::feed`] only.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Shared;

const BOARD_HTML: &str = include_str!("assets/board.html");
const BOARD_CSS: &str = include_str!("assets/board.css");
const BOARD_JS: &str = include_str!("assets/board.js");

/// Only this server's own files and API: no inline script or style, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The board's routes, merged into the server's router.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(board))
        .route("/incidents/{id}", get(board))
        .route("/assets/board.css", get(css))
        .route("/assets/board.js", get(js))
}

async fn board() -> Response {
    asset(BOARD_HTML, "text/html; charset=utf-8")
}

async fn css() -> Response {
    asset(BOARD_CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(BOARD_JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The files change with the binary; a restarted server must not leave an old script
            // running against a new API.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for line in BOARD_HTML.lines() {
            for attr in ["src=", "href="] {
                if let Some(at) = line.find(attr) {
                    let value = &line[at + attr.len()..];
                    assert!(
                        value.starts_with("\"/assets/") || value.starts_with("\"#"),
                        "a page asset from elsewhere: {line}"
                    );
                }
            }
        }
        assert!(BOARD_HTML.contains("/assets/board.js"));
        assert!(BOARD_HTML.contains("/assets/board.css"));
    }

    #[test]
    fn the_script_never_puts_data_into_html() {
        // Text goes in with textContent / text nodes; these sinks would parse it as HTML.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!BOARD_JS.contains(sink), "board.js uses {sink}");
        }
        // Nor EventSource: it cannot send the bearer token.
        assert!(!BOARD_JS.contains("new EventSource"));
    }
}
