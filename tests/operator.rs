//! Issue 10: acknowledgements and silences, from the CLI and the API, against a real `logwarden
//! run` (the server of `serve.rs`): what the feed carries, what the incident API and CLI show,
//! and that both survive a restart.

use std::time::{Duration, Instant};

use logwarden::incident::{Change, ChangeKind};
use serde_json::Value;

use crate::serve::{Served, Sse, SseEvent, get_json, http, runtime};
use crate::support::{logwarden, run, stderr, stdout, wait_until};

fn change_of(event: &SseEvent) -> Change {
    serde_json::from_str(&event.data).unwrap()
}

/// The key (`k0`, …) an incident of the test rule is about, from its group.
fn key_of(change: &Change) -> String {
    change
        .incident
        .group
        .split("key=")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The next change on the feed, failing with what the log holds if none comes.
async fn next_change(feed: &mut Sse, served: &Served) -> Change {
    let deadline = Instant::now() + Duration::from_secs(30);
    match feed.next_event(deadline).await {
        Some(event) => {
            let change = change_of(&event);
            assert_eq!(event.event, change.kind.as_str());
            change
        }
        None => panic!(
            "no change on the feed; the log: {:?}; stderr: {}",
            served
                .changes()
                .iter()
                .map(|c| (c.seq, c.kind, key_of(c)))
                .collect::<Vec<_>>(),
            served.stderr()
        ),
    }
}

fn silence_cli(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    run(logwarden()
        .arg("silence")
        .args(args)
        .arg("--data-dir")
        .arg(data))
}

#[test]
fn silences_and_acknowledgements_keep_incidents_from_paging_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = Served::data_in(dir.path());
    // A match naming an unknown field or class is refused, naming it.
    for (matchers, says) in [
        ("class=db-connection host=db1", "unknown field `host`"),
        ("class=db-dwn", "unknown class `db-dwn`"),
    ] {
        let out = silence_cli(
            &data,
            &["add", "--match", matchers, "--for", "1h", "--reason", "x"],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = silence_cli(
        &data,
        &[
            "add",
            "--match",
            "class=db-connection service=app",
            "--for",
            "1h",
            "--reason",
            "monthly VACUUM FULL",
            "--by",
            "alice",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let vacuum = stdout(&out).split_whitespace().next().unwrap().to_string();
    assert!(vacuum.starts_with("sil-"), "{}", stdout(&out));
    let listed = stdout(&silence_cli(&data, &["list"]));
    assert!(
        listed.contains(&vacuum) && listed.contains("active") && listed.contains("alice"),
        "{listed}"
    );

    let served = Served::start_in(dir, &[]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let mut feed = Sse::connect(&http, &served.url("/api/v1/feed"), None).await;

        // Under the silence: recorded and shown, marked, but never `opened`.
        served.inject(0..1);
        let first = next_change(&mut feed, &served).await;
        assert_eq!(
            (first.kind, key_of(&first)),
            (ChangeKind::Silenced, "k0".into())
        );
        assert_eq!(
            first.incident.silenced_by.as_ref().map(|s| s.id.0.as_str()),
            Some(vacuum.as_str())
        );
        let id = first.incident.id.0.clone();
        let (status, shown) = get_json(&http, &served, &format!("/api/v1/incidents/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(shown["silenced_by"]["id"], vacuum.as_str());
        assert_eq!(shown["silenced_by"]["by"], "alice");
        assert_eq!(shown["silenced_by"]["reason"], "monthly VACUUM FULL");
        assert_eq!(shown["state"], "open");

        // Acknowledged from the CLI, through the running agent.
        let out = run(logwarden()
            .args([
                "ack",
                &id[..10],
                "--by",
                "bob",
                "--note",
                "restarting pgbouncer",
            ])
            .arg("--data-dir")
            .arg(served.data()));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("ACK"), "{}", stdout(&out));
        let acked = next_change(&mut feed, &served).await;
        assert_eq!(acked.kind, ChangeKind::Acknowledged);
        let ack = acked.incident.acknowledged.clone().unwrap();
        assert_eq!(
            (ack.by.as_str(), ack.note.as_str()),
            ("bob", "restarting pgbouncer")
        );
        let out = run(logwarden()
            .arg("incidents")
            .arg("--data-dir")
            .arg(served.data()));
        let table = stdout(&out);
        assert!(
            table.contains("[acknowledged by bob")
                && table.contains(&format!("[silenced by {vacuum} until"))
                && table.contains("(alice: monthly VACUUM FULL)]"),
            "{table}"
        );
        // An unknown incident is refused, saying so.
        let out = run(logwarden()
            .args(["ack", "inc-ffffffffffffffff"])
            .arg("--data-dir")
            .arg(served.data()));
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no incident"), "{}", stderr(&out));

        // Expired over the API: the incident it covered notifies, once.
        let response = http
            .delete(served.url(&format!("/api/v1/silences/{}", &vacuum[..12])))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let expired: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(expired["state"], "expired");
        let notified = next_change(&mut feed, &served).await;
        assert_eq!(
            (notified.kind, key_of(&notified)),
            (ChangeKind::Unsilenced, "k0".into())
        );
        assert_eq!(notified.incident.silenced_by, None);
        assert_eq!(notified.incident.acknowledged, Some(ack.clone()));

        // Nothing silences the next one: it opens.
        served.inject(1..2);
        let opened = next_change(&mut feed, &served).await;
        assert_eq!(
            (opened.kind, key_of(&opened)),
            (ChangeKind::Opened, "k1".into())
        );
        // Acknowledged over the API with no body: by `api`. An unknown id is a 404.
        let response = http
            .post(served.url(&format!("/api/v1/incidents/{}/ack", opened.incident.id)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let acked: Change = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(acked.incident.acknowledged.unwrap().by, "api");
        assert_eq!(
            next_change(&mut feed, &served).await.kind,
            ChangeKind::Acknowledged
        );
        let response = http
            .post(served.url("/api/v1/incidents/inc-ffffffffffffffff/ack"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);

        // A silence made over the API covers what is open at once.
        let response = http
            .post(served.url("/api/v1/silences"))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "match": "class=db-connection", "for": "2h",
                    "reason": "redis restart", "by": "carol"
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let restart: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let restart_id = restart["id"].as_str().unwrap().to_string();
        assert_eq!(restart["state"], "active");
        let mut covered: Vec<(&str, String)> = Vec::new();
        for _ in 0..2 {
            let c = next_change(&mut feed, &served).await;
            assert_eq!(
                c.incident.silenced_by.as_ref().map(|s| s.id.0.clone()),
                Some(restart_id.clone())
            );
            covered.push((c.kind.as_str(), key_of(&c)));
        }
        covered.sort();
        assert_eq!(
            covered,
            [
                ("silenced", "k0".to_string()),
                ("silenced", "k1".to_string())
            ]
        );
        // Bad requests name what is wrong.
        for (body, says) in [
            (
                serde_json::json!({"match": "klass=x", "for": "1h", "reason": "r"}),
                "unknown field `klass`",
            ),
            (
                serde_json::json!({"match": "class=db-down", "reason": "r"}),
                "an end",
            ),
            (
                serde_json::json!({"match": "class=db-down", "for": "1h"}),
                "reason",
            ),
        ] {
            let response = http
                .post(served.url("/api/v1/silences"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
            let error: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert!(error["error"].as_str().unwrap().contains(says), "{error}");
        }
        let (_, listed) = get_json(&http, &served, "/api/v1/silences").await;
        let ids: Vec<&str> = listed["silences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [restart_id.as_str()]);
        let (_, all) = get_json(&http, &served, "/api/v1/silences?all=true").await;
        assert_eq!(all["silences"].as_array().unwrap().len(), 2);
    });

    // Both survive a restart: the acknowledgement, the silence and what it covers.
    let served = served.restart(&[]);
    rt.block_on(async {
        let (_, list) = get_json(&http, &served, "/api/v1/incidents?open=true").await;
        let incidents = list["incidents"].as_array().unwrap();
        assert_eq!(incidents.len(), 2, "{list}");
        for incident in incidents {
            assert!(
                incident["silenced_by"]["id"].as_str().is_some(),
                "{incident}"
            );
        }
        assert!(
            incidents.iter().any(|i| i["acknowledged"]["by"] == "bob"),
            "{list}"
        );
        served.inject(2..3);
        assert!(
            wait_until(30, || served
                .changes()
                .iter()
                .any(|c| key_of(c) == "k2" && c.kind == ChangeKind::Silenced)),
            "{:?}",
            served.changes()
        );
    });
    let log = served.changes();
    for key in ["k0", "k2"] {
        assert!(
            !log.iter().any(|c| key_of(c) == key
                && matches!(c.kind, ChangeKind::Opened | ChangeKind::Escalated)),
            "{key} paged: {log:?}"
        );
    }
    assert_eq!(
        log.iter()
            .filter(|c| c.kind == ChangeKind::Unsilenced)
            .count(),
        1
    );
    served.stop();
}

/// A profile's maintenance window, as cron, silences what opens in it on a live run.
#[test]
fn a_maintenance_window_of_the_profile_silences_incidents_while_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    // A window that started at the current minute (UTC) and lasts two hours.
    let now = jiff::Timestamp::now();
    let (hour, minute) = {
        let civil = jiff::tz::TimeZone::UTC.to_datetime(now);
        (civil.hour(), civil.minute())
    };
    let quiet = dir.path().join("quiet.log");
    std::fs::write(&quiet, "").unwrap();
    let profile = dir.path().join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            "[[source]]\nservice = \"quiet\"\npath = \"{}\"\n\n\
             [[maintenance]]\nname = \"nightly\"\ncron = \"{minute} {hour} * * *\"\nfor = \"2h\"\n\
             match = \"class=db-connection\"\nreason = \"nightly restart\"\n",
            quiet.display()
        ),
    )
    .unwrap();
    let served = Served::start_in(dir, &["--profile", profile.to_str().unwrap()]);
    served.inject(0..1);
    assert!(
        wait_until(30, || !served.changes().is_empty()),
        "no change; stderr: {}",
        served.stderr()
    );
    let first = &served.changes()[0];
    assert_eq!(first.kind, ChangeKind::Silenced, "{first:?}");
    let silence = first.incident.silenced_by.as_ref().unwrap();
    assert_eq!(silence.reason, "nightly restart");
    let window = silence.id.0.clone();
    assert!(
        window.starts_with("mnt-nightly-") && window.ends_with(&format!("T{hour:02}{minute:02}Z")),
        "{window}"
    );
    served.stop();
}

/// Silences are read on event time: a backfill of the night's log marks the incidents the silence
/// covered, and a live run over the same log marks the same ones.
#[test]
fn a_backfill_and_a_live_run_mark_the_same_incidents_silenced() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("feed.toml"), crate::serve::RULE).unwrap();
    let log = dir.path().join("app.log");
    let at = |t: &str| jiff::Timestamp::from_str(t).unwrap().as_millisecond();
    use std::str::FromStr;
    let mut text = String::new();
    for (key, time) in [
        ("k0", "2026-12-01T02:50:00Z"),
        ("k1", "2026-12-01T03:10:00Z"),
        ("k2", "2026-12-01T04:20:00Z"),
    ] {
        text.push_str(&format!(
            "{{\"level\":50,\"time\":{},\"msg\":\"feedfault\",\"key\":\"{key}\"}}\n",
            at(time)
        ));
    }
    std::fs::write(&log, text).unwrap();
    // The changes up to the last line's time (a live run goes on to resolve by the clock), but
    // the `updated` ones (a backfill ends with a snapshot of each open incident): key, kind and
    // the silence it carries.
    let last = logwarden::event::Timestamp::from_millis(at("2026-12-01T04:20:00Z"));
    let changes = |data: &std::path::Path| -> Vec<(String, ChangeKind, Option<String>)> {
        logwarden::store::incidents::IncidentLog::read_after(&data.join("incidents.jsonl"), 0)
            .unwrap()
            .into_iter()
            .filter(|c| c.kind != ChangeKind::Updated && c.at <= last)
            .map(|c| {
                let silence = c.incident.silenced_by.as_ref().map(|s| s.id.0.clone());
                (key_of(&c), c.kind, silence)
            })
            .collect()
    };
    let silence = |data: &std::path::Path| {
        let out = silence_cli(
            data,
            &[
                "add",
                "--match",
                "class=db-connection",
                "--start",
                "2026-12-01T03:00:00Z",
                "--end",
                "2026-12-01T04:00:00Z",
                "--reason",
                "monthly VACUUM FULL",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).split_whitespace().next().unwrap().to_string()
    };

    let backfilled = dir.path().join("backfilled");
    let id = silence(&backfilled);
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&backfilled)
        .arg("--patterns")
        .arg(&rules)
        .arg("--source")
        .arg(format!("app:pino={}", log.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    let backfill = changes(&backfilled);
    let of = |key: &str| -> Vec<(ChangeKind, Option<String>)> {
        backfill
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, kind, silence)| (*kind, silence.clone()))
            .collect()
    };
    // k1 opens under the silence, is released when it ends at 04:00, resolves at 04:10; k0 and
    // k2 page.
    assert_eq!(
        of("k1"),
        [
            (ChangeKind::Silenced, Some(id.clone())),
            (ChangeKind::Unsilenced, None),
            (ChangeKind::Resolved, None)
        ]
    );
    assert_eq!(of("k0")[0], (ChangeKind::Opened, None));
    assert_eq!(of("k2"), [(ChangeKind::Opened, None)]);

    let live = dir.path().join("live");
    silence(&live);
    let child = logwarden()
        .arg("run")
        .args(["--listen", "off"])
        .arg("--data-dir")
        .arg(&live)
        .arg("--patterns")
        .arg(&rules)
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let live_log = live.join("incidents.jsonl");
    assert!(
        wait_until(30, || {
            logwarden::store::incidents::IncidentLog::read_after(&live_log, 0)
                .map(|c| {
                    c.iter()
                        .map(key_of)
                        .collect::<std::collections::BTreeSet<_>>()
                        .len()
                        == 3
                })
                .unwrap_or(false)
        }),
        "the live run did not raise the three incidents"
    );
    crate::support::terminate(child);
    let same_silence = |list: Vec<(String, ChangeKind, Option<String>)>| {
        list.into_iter()
            .map(|(k, kind, s)| (k, kind, s.is_some()))
            .collect::<Vec<_>>()
    };
    assert_eq!(same_silence(changes(&live)), same_silence(backfill));
}

/// The operator's routes are the API's: with a token set, nothing without it.
#[test]
fn silences_and_acknowledgements_need_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "operator-s3cret\n").unwrap();
    let served = Served::start(&["--token-file", token.to_str().unwrap()]);
    let rt = runtime();
    let http = http();
    rt.block_on(async {
        let body = serde_json::json!({"match": "class=db-down", "for": "1h", "reason": "r"});
        for bearer in [None, Some("wrong")] {
            let mut request = http
                .post(served.url("/api/v1/silences"))
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(b) = bearer {
                request = request.bearer_auth(b);
            }
            assert_eq!(request.send().await.unwrap().status(), 401);
            let mut ack = http.post(served.url("/api/v1/incidents/inc-0/ack"));
            if let Some(b) = bearer {
                ack = ack.bearer_auth(b);
            }
            assert_eq!(ack.send().await.unwrap().status(), 401);
        }
        let response = http
            .post(served.url("/api/v1/silences"))
            .bearer_auth("operator-s3cret")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    });
    served.stop();
}
