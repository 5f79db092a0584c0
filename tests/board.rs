//! Issue 7: the live incident board in a real browser. Headless Chromium (Debian's `chromium`,
//! which `tests/run` installs) opens the board of a real `logwarden run`, the test appends a fault
//! line to the tailed log, and the incident's card must appear within 5 s, brought by the feed.
//!
//! Chromium is driven over the DevTools protocol: it is started with `--remote-debugging-port=0`,
//! writes the port it chose to `DevToolsActivePort` in its profile folder, the test finds the
//! page's websocket at `/json/list` and sends `Runtime.evaluate` and `Page.captureScreenshot`
//! itself (JSON over tokio-tungstenite; a CDP crate would add minutes of build for three calls).
//! The screenshots are saved in `target/test-output/` and their paths printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::serve::Served;
use crate::support::wait_until;

/// How soon the card must show after the line is written.
const CARD_DEADLINE: Duration = Duration::from_secs(5);

/// Where Chromium is: `$LOGWARDEN_CHROMIUM`, else `chromium` on the PATH. Missing, the test fails
/// saying so: a browser test that passes without a browser would prove nothing.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("LOGWARDEN_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the board test needs Chromium and found no `chromium` on the PATH: install Debian's \
             `chromium` (tests/run does) or set LOGWARDEN_CHROMIUM to the browser"
        )
    })
}

/// Where the tests leave files for a person to look at.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium of the test's own, in its own process group (its helpers die with it).
struct Browser {
    child: Option<Child>,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(url: &str) -> Browser {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox", // the tests may run as root; the page is the test's own
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-breakpad", // no crash handler: it would outlive the process group
                "--window-size=1200,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium().display()));
        let mut browser = Browser {
            child: Some(child),
            port: 0,
            _profile: profile,
        };
        let active = browser._profile.path().join("DevToolsActivePort");
        let port = || {
            std::fs::read_to_string(&active)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()))
        };
        assert!(
            wait_until(30, || port().is_some()),
            "Chromium wrote no DevToolsActivePort in 30 s"
        );
        browser.port = port().unwrap();
        browser
    }

    /// The DevTools websocket of the page showing `url`.
    async fn page(&self, http: &reqwest::Client, url: &str) -> Page {
        let list = format!("http://127.0.0.1:{}/json/list", self.port);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let targets: Value = match http.get(&list).send().await {
                Ok(r) => serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let ws = targets.as_array().into_iter().flatten().find_map(|t| {
                (t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url)))
                    .then(|| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
                    .flatten()
            });
            if let Some(ws) = ws {
                let (socket, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
                return Page { socket, next_id: 0 };
            }
            assert!(
                Instant::now() < deadline,
                "no page at {url} among Chromium's targets: {targets}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: the browser and the helpers it started.
            // (`-s KILL --`: procps' kill takes a bare `-PGID` after a signal for an option.)
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--"])
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.wait();
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One page's DevTools connection.
struct Page {
    socket: Socket,
    next_id: u64,
}

impl Page {
    /// Send a command and wait for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::Text(request.into()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(message) = self.socket.next().await {
                if let Message::Text(text) = message.unwrap() {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["id"] == id {
                        return value;
                    }
                }
            }
            panic!("the DevTools connection closed during {method}")
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} in 20 s"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// The value of a JS expression in the page (null when it threw).
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Poll an expression until it is truthy; its value, or None at the deadline.
    async fn wait_for(&mut self, expression: &str, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = output_dir().join(name);
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

/// Open the board of `served` in a browser of its own and run `test` on its page (on a runtime
/// of its own); the browser is closed after.
fn on_board(served: &Served, test: impl AsyncFnOnce(&mut Page)) {
    let board = served.url("/");
    let browser = Browser::start(&board);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = crate::support::http_client();
        let mut page = browser.page(&http, &board).await;
        test(&mut page).await;
    });
    drop(browser);
}

#[test]
fn the_board_shows_a_new_incident_within_five_seconds() {
    let served = Served::start(&[]);
    on_board(&served, async |page| {
        // The board has loaded the (empty) listing and opened the feed.
        let status = "document.getElementById('status')?.textContent";
        let live = page
            .wait_for(&format!("{status} === 'live'"), Duration::from_secs(20))
            .await;
        assert!(
            live.is_some(),
            "the board never went live: status {:?}; server stderr: {}",
            page.eval(status).await,
            served.stderr()
        );
        assert_eq!(
            page.eval("document.querySelectorAll('.card').length").await,
            json!(0)
        );

        let written = Instant::now();
        served.inject(0..1);
        let card = "(() => { const c = document.querySelector('#board .card'); \
                    return c && [c.dataset.id, c.closest('[data-severity]').dataset.severity, \
                    c.textContent]; })()";
        let found = page.wait_for(card, CARD_DEADLINE).await;
        let took = written.elapsed();
        let Some(found) = found else {
            page.screenshot("board-timeout.png").await;
            panic!(
                "no incident card {CARD_DEADLINE:?} after the fault line; server stderr: {}",
                served.stderr()
            );
        };
        println!("the card appeared {took:?} after the fault line was written");
        let opened = served.wait_opened(1);
        assert_eq!(opened.len(), 1, "one change in the log");
        let id = served.changes()[0].incident.id.to_string();
        assert_eq!(found[0], json!(id), "{found}");
        assert_eq!(
            found[1],
            json!("error"),
            "grouped under its severity: {found}"
        );
        let text = found[2].as_str().unwrap();
        assert!(text.contains("A fault for the feed"), "{text}");

        // Log text is text on the page, never markup: a key that is an HTML tag shows as written.
        let markup = "<img src=x id=injected onerror=alert(1)>";
        let now = logwarden::event::Timestamp::now().as_millis();
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&served.log)
            .unwrap();
        writeln!(
            log,
            "{{\"level\":50,\"time\":{now},\"msg\":\"feedfault\",\"key\":\"{markup}\"}}"
        )
        .unwrap();
        let shown = page
            .wait_for(
                "document.querySelectorAll('#board .card').length === 2 && \
                 [...document.querySelectorAll('#board .card .title')].map(t => t.textContent)",
                CARD_DEADLINE,
            )
            .await
            .expect("no card for the second incident");
        assert!(
            shown
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().contains(markup)),
            "{shown}"
        );
        assert_eq!(
            page.eval("document.getElementById('injected') === null && document.querySelectorAll('#board img').length").await,
            json!(0),
            "the key became an element"
        );
        page.screenshot("board.png").await;

        // On a phone-sized screen: nothing wider than the screen.
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
        let fits = page
            .wait_for(
                "innerWidth === 390 && document.documentElement.scrollWidth <= innerWidth",
                Duration::from_secs(5),
            )
            .await;
        page.screenshot("board-phone.png").await;
        assert!(
            fits.is_some(),
            "the board is wider than a phone: {}",
            page.eval("[document.documentElement.scrollWidth, [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right).join('; ')]").await
        );
        page.call("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;

        // The incident's page: its runbook checklist, its evidence and its timeline command.
        page.eval(&format!("location.hash = '#/incidents/{id}'"))
            .await;
        let detail = page
            .wait_for(
                "(() => { const d = document.querySelector('#incident .detail'); \
                 return d && !d.closest('[hidden]') && \
                 [document.querySelectorAll('#incident .steps li').length, \
                  document.querySelectorAll('#incident .evidence li').length, d.textContent, \
                  document.querySelectorAll('#incident .steps .cmd code').length]; })()",
                Duration::from_secs(5),
            )
            .await
            .expect("the incident view did not show");
        assert!(
            detail[0].as_u64().unwrap() > 0,
            "no runbook steps: {detail}"
        );
        assert!(detail[1].as_u64().unwrap() > 0, "no evidence: {detail}");
        assert!(
            detail[3].as_u64().unwrap() > 0,
            "no step commands: {detail}"
        );
        let text = detail[2].as_str().unwrap();
        assert!(text.contains(&format!("loggrep --incident {id}")), "{text}");
        assert!(text.contains("feedfault in the test"), "{text}");
        page.screenshot("board-incident.png").await;

        // Search: the box runs a loggrep query through /api/v1/search; both fault lines match
        // once both are indexed (a card comes with the incident, the commit may follow it).
        let http = crate::support::http_client();
        let indexed = crate::serve::eventually(10, || async {
            crate::serve::get_json(&http, &served, "/api/v1/count?q=feedfault")
                .await
                .1["count"]
                == 2
        })
        .await;
        assert!(indexed, "the two fault lines were not indexed within 10 s");
        page.eval("location.hash = '#/search?q=feedfault'").await;
        let found = page
            .wait_for(
                "(() => { const t = document.getElementById('search-info').textContent; \
                 return t !== 'searching…' && [t, [...document.querySelectorAll('#search-hits li')] \
                 .map(li => li.textContent)]; })()",
                Duration::from_secs(5),
            )
            .await
            .expect("the search said nothing");
        assert_eq!(found[0], json!("2 shown of 2 matched"), "{found}");
        let hits = found[1].as_array().unwrap();
        assert!(
            hits.iter()
                .any(|h| h.as_str().unwrap().contains("feedfault in the test")),
            "the hits show the lines' messages: {found}"
        );
    });
    served.stop();
}

#[test]
fn the_board_asks_for_the_token_and_follows_the_feed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "board-test-token\n").unwrap();
    let served = Served::start(&["--token-file", token_file.to_str().unwrap()]);
    on_board(&served, async |page| {
        // The page came without a token; the API answered 401, so the page asks for one.
        page.wait_for(
            "!document.getElementById('token-form').hidden",
            Duration::from_secs(20),
        )
        .await
        .expect("the board did not ask for the token");
        // A wrong token is refused and asked again.
        page.eval(
            "document.getElementById('token-input').value = 'wrong'; \
             document.getElementById('token-form').requestSubmit()",
        )
        .await;
        page.wait_for(
            "document.getElementById('token-error').textContent.includes('refused')",
            Duration::from_secs(5),
        )
        .await
        .expect("a wrong token was not reported");
        page.eval(
            "document.getElementById('token-input').value = 'board-test-token'; \
             document.getElementById('token-form').requestSubmit()",
        )
        .await;
        page.wait_for(
            "document.getElementById('status').textContent === 'live' && \
             document.getElementById('token-form').hidden",
            Duration::from_secs(10),
        )
        .await
        .expect("the board did not go live with the token");
        assert_eq!(
            page.eval("sessionStorage.getItem('logwarden-token')").await,
            json!("board-test-token")
        );

        // The feed, read with the token, brings the incident.
        served.inject(0..1);
        page.wait_for(
            "document.querySelector('#board .card')?.textContent",
            CARD_DEADLINE,
        )
        .await
        .expect("no card through the token-protected feed");
    });
    served.stop();
}

/// Issue 10 on the page: an incident's view acknowledges it (the feed brings the badge to the
/// board), and the silences view makes a silence (the open incident shows it at once) and
/// expires it.
#[test]
fn the_board_acknowledges_incidents_and_makes_and_expires_silences() {
    let served = Served::start(&[]);
    on_board(&served, async |page| {
        page.wait_for(
            "document.getElementById('status')?.textContent === 'live'",
            Duration::from_secs(20),
        )
        .await
        .expect("the board never went live");
        served.inject(0..1);
        let id = served.wait_opened(1);
        assert_eq!(id.len(), 1);
        let id = served.changes()[0].incident.id.to_string();

        page.eval(&format!("location.hash = '#/incidents/{id}'"))
            .await;
        page.wait_for(
            "!!document.getElementById('ack-form') && !document.getElementById('incident-view').hidden",
            Duration::from_secs(5),
        )
        .await
        .expect("no Acknowledge form on an open incident");
        page.eval(
            "document.getElementById('ack-by').value = 'tester'; \
             document.getElementById('ack-note').value = 'on it'; \
             document.getElementById('ack-form').requestSubmit()",
        )
        .await;
        let said = page
            .wait_for(
                "document.querySelector('#incident .ack-said')?.textContent",
                Duration::from_secs(5),
            )
            .await;
        let Some(said) = said else {
            let error = page
                .eval("document.getElementById('ack-error')?.textContent")
                .await;
            panic!("the acknowledgement did not show; the form says {error}");
        };
        assert!(
            said.as_str().unwrap().contains("Acknowledged by tester"),
            "{said}"
        );
        assert_eq!(
            page.eval("!!document.getElementById('ack-form')").await,
            json!(false),
            "an acknowledged incident still offers the form"
        );
        let acked = served
            .changes()
            .into_iter()
            .find(|c| c.kind == logwarden::incident::ChangeKind::Acknowledged)
            .expect("no acknowledged change in the log");
        assert_eq!(acked.incident.acknowledged.unwrap().by, "tester");
        page.eval("location.hash = '#/'").await;
        page.wait_for(
            "document.querySelector('#board .card .badge.acked')?.textContent === 'acked by tester'",
            Duration::from_secs(5),
        )
        .await
        .expect("no acked badge on the card");

        // A silence from the page covers the open incident at once; expiring it lifts it.
        page.eval("location.hash = '#/silences'").await;
        page.wait_for(
            "!document.getElementById('silences-view').hidden && \
             document.getElementById('silence-by').value === 'tester'",
            Duration::from_secs(5),
        )
        .await
        .expect("the silences view did not show (or forgot the name)");
        page.eval(
            "document.getElementById('silence-match').value = 'class=db-connection'; \
             document.getElementById('silence-reason').value = 'monthly VACUUM FULL'; \
             document.getElementById('silence-form').requestSubmit()",
        )
        .await;
        let listed = page
            .wait_for(
                "[...document.querySelectorAll('#silences li')].map(li => li.textContent).join('|')",
                Duration::from_secs(5),
            )
            .await
            .expect("the new silence is not listed");
        let listed = listed.as_str().unwrap().to_string();
        assert!(
            listed.contains("class=db-connection")
                && listed.contains("active")
                && listed.contains("monthly VACUUM FULL")
                && listed.contains("tester"),
            "{listed}"
        );
        page.screenshot("board-silences.png").await;
        page.eval("location.hash = '#/'").await;
        page.wait_for(
            "!!document.querySelector('#board .card .badge.silenced')",
            Duration::from_secs(5),
        )
        .await
        .expect("the silenced incident shows no badge");
        page.screenshot("board-silenced.png").await;
        page.eval("location.hash = '#/silences'").await;
        page.wait_for(
            "!!document.querySelector('#silences li .expire')",
            Duration::from_secs(5),
        )
        .await
        .expect("no Expire button");
        page.eval("document.querySelector('#silences li .expire').click()")
            .await;
        page.wait_for(
            "document.querySelectorAll('#silences li').length === 0 && \
             document.getElementById('silences-info').textContent.includes('No silence')",
            Duration::from_secs(5),
        )
        .await
        .expect("the expired silence is still listed");
        assert!(
            wait_until(10, || served
                .changes()
                .iter()
                .any(|c| c.kind == logwarden::incident::ChangeKind::Unsilenced)),
            "expiring did not lift the silence: {:?}",
            served.changes()
        );
        page.eval("location.hash = '#/'").await;
        page.wait_for(
            "!!document.querySelector('#board .card') && !document.querySelector('#board .card .badge.silenced')",
            Duration::from_secs(5),
        )
        .await
        .expect("the card still says silenced");
    });
    served.stop();
}
