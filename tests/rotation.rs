//! Issue 3: `logwarden run` follows a file through real `logrotate` rotations (create,
//! copytruncate, compress + delaycompress), deletion, truncation, symlink repointing, late glob
//! matches and SIGKILL restarts; at the end the index holds every written line exactly once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::support::{loggrep, logwarden, run, stdout, wait_until};

/// A data dir, a `logwarden run` process over one source, and its stderr in a file.
struct Daemon {
    data: PathBuf,
    sources: Vec<String>,
    stderr: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn new(dir: &Path, sources: &[String]) -> Daemon {
        Daemon {
            data: dir.join("data"),
            sources: sources.to_vec(),
            stderr: dir.join("logwarden.stderr"),
            child: None,
        }
    }

    fn start(&mut self) {
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let mut cmd = logwarden();
        cmd.args(["run", "--listen", "off", "--data-dir"])
            .arg(&self.data);
        for source in &self.sources {
            cmd.arg("--source").arg(source);
        }
        let child = cmd
            .env("RUST_LOG", "logwarden=info")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let out = run(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string()));
        assert!(out.status.success());
        child.wait().unwrap()
    }

    /// SIGSTOP or SIGCONT: a follower that falls behind (descheduled, busy) for a while.
    fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id();
        let sig = if frozen { "-STOP" } else { "-CONT" };
        let out = run(Command::new("kill").arg(sig).arg(pid.to_string()));
        assert!(out.status.success());
    }

    fn kill9(&mut self) {
        self.signal("KILL");
    }

    fn stop(&mut self) {
        let status = self.signal("TERM");
        assert!(
            status.success(),
            "run did not exit 0 on SIGTERM: {status:?}\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The sequence numbers of every indexed `seqmarker` line, sorted.
    fn indexed(&self) -> Vec<u64> {
        let out = run(loggrep().arg("--data-dir").arg(&self.data).args([
            "--json",
            "--limit",
            "0",
            "seqmarker",
        ]));
        let mut seqs: Vec<u64> = stdout(&out)
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                // `seqmarker N`, with `: <err.message>` after it on error lines.
                let rest = v["message"].as_str()?.strip_prefix("seqmarker ")?;
                rest.split(':').next()?.parse().ok()
            })
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Wait until lines 1..=n are indexed, then stop and assert each is there exactly once.
    fn assert_exactly_once(&mut self, n: u64) {
        let all = wait_until(60, || self.indexed().len() as u64 >= n);
        self.stop();
        let seqs = self.indexed();
        let want: Vec<u64> = (1..=n).collect();
        if seqs != want {
            let have: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
            // Missing lines as ranges: `a..=b`.
            let mut missing: Vec<String> = Vec::new();
            let mut run_start = None;
            for s in 1..=n + 1 {
                match (have.contains(&s) || s > n, run_start) {
                    (false, None) => run_start = Some(s),
                    (true, Some(a)) => {
                        missing.push(format!("{a}..={}", s - 1));
                        run_start = None;
                    }
                    _ => {}
                }
            }
            let mut dups = seqs.clone();
            dups.dedup();
            panic!(
                "indexed {} lines for {n} written (waited: {all}); missing {:?}; {} duplicates\n{}",
                seqs.len(),
                &missing[..missing.len().min(20)],
                seqs.len() - dups.len(),
                self.log()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Line `seq`: every tenth is a Redis connection error (the `redis` incident class), the rest
/// are info lines.
fn line(seq: u64) -> String {
    let time = 1_796_220_000_000u64 + seq * 10;
    if seq.is_multiple_of(10) {
        format!(
            "{{\"level\":50,\"time\":{time},\"err\":{{\"message\":\"connect ECONNREFUSED 172.18.0.4:6379\",\"code\":\"ECONNREFUSED\"}},\"msg\":\"seqmarker {seq}\"}}\n"
        )
    } else {
        format!("{{\"level\":30,\"time\":{time},\"msg\":\"seqmarker {seq}\"}}\n")
    }
}

/// Writes lines 1..=n to `path` at a steady pace on its own thread, as an app would: one handle in
/// append mode, reopened when the path names another file (after a `create` rotation). Writing
/// pauses while `gate` is held, so a rotation can happen between two lines.
struct Writer {
    written: Arc<AtomicU64>,
    gate: Arc<Mutex<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// `pace`: (lines, milliseconds): a pause of that many ms after every that many lines.
    fn start(path: &Path, n: u64, pace: (u64, u64)) -> Writer {
        let (pause_every, pause_ms) = pace;
        let written = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Mutex::new(()));
        let (path, w, g) = (path.to_path_buf(), Arc::clone(&written), Arc::clone(&gate));
        let handle = std::thread::spawn(move || {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap()
            };
            let mut file = open();
            for seq in 1..=n {
                let _held = g.lock().unwrap();
                if let Ok(meta) = std::fs::metadata(&path)
                    && meta.ino() != file.metadata().unwrap().ino()
                {
                    file = open();
                }
                file.write_all(line(seq).as_bytes()).unwrap();
                w.store(seq, Ordering::SeqCst);
                drop(_held);
                if seq % pause_every == 0 {
                    #[allow(clippy::disallowed_methods)]
                    // pacing the writer, not waiting on a result
                    std::thread::sleep(std::time::Duration::from_millis(pause_ms));
                }
            }
        });
        Writer {
            written,
            gate,
            handle: Some(handle),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    fn join(mut self) {
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

/// Real logrotate over `log` with the given directives, forced, with its own state file.
fn logrotate(dir: &Path, log: &Path, directives: &str) {
    let conf = dir.join("logrotate.conf");
    if !conf.try_exists().unwrap() {
        std::fs::write(
            &conf,
            format!(
                "{} {{\n  rotate 1000\n  missingok\n  {directives}\n}}\n",
                log.display()
            ),
        )
        .unwrap();
    }
    let bin = ["logrotate", "/usr/sbin/logrotate"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("logrotate is installed (tests/run installs it)");
    let out = run(Command::new(bin)
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf));
    assert!(
        out.status.success(),
        "logrotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write `n` lines while logrotate rotates every `every` lines, with `directives`.
/// Returns the temp dir and the (stopped) daemon for further checks.
fn rotate_while_writing(
    directives: &str,
    n: u64,
    every: u64,
    pace: (u64, u64),
) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let mut daemon = Daemon::new(dir.path(), &[format!("app:pino={}", log.display())]);
    daemon.start();
    let writer = Writer::start(&log, n, pace);
    let mut next = every;
    while next < n {
        assert!(wait_until(60, || writer.written() >= next));
        if directives.contains("dateext") {
            // dateext names generations by the second: two rotations in one second would collide.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        // The follower falls behind: lines are written that it has not read when the file is
        // rotated, so they must come from the rotated generation (a copy, or the renamed file).
        daemon.freeze(true);
        let behind = writer.written() + 20;
        assert!(wait_until(60, || writer.written() >= behind.min(n)));
        let paused = writer.gate.lock().unwrap();
        logrotate(dir.path(), &log, directives);
        drop(paused);
        daemon.freeze(false);
        next += every;
    }
    writer.join();
    daemon.assert_exactly_once(n);
    let rotated = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("app.log.") || name.starts_with("app.log-")
        })
        .count();
    let rotations = (n - 1) / every;
    assert!(
        rotated >= rotations as usize,
        "logrotate made {rotated} generations for {rotations} rotations"
    );
    (dir, daemon)
}

/// Append the lines `seqs` to `log` (opened anew: after a rename rotation, the new file).
fn append(log: &Path, seqs: std::ops::RangeInclusive<u64>) {
    let text: String = seqs.map(line).collect();
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// The follower is stopped across two rotations and the writer is done before the second, so
/// the file at the path stays empty: no new file ever comes there to say generations went by.
/// The one in between is still read, from its copy, and nothing twice.
fn two_rotations_unseen_the_last_leaving_the_path_empty(directives: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, 1..=100);
    let mut daemon = Daemon::new(dir.path(), &[format!("app:pino={}", log.display())]);
    daemon.start();
    assert!(
        wait_until(60, || daemon.indexed().len() == 100),
        "{}",
        daemon.log()
    );
    daemon.freeze(true);
    append(&log, 101..=200);
    logrotate(dir.path(), &log, directives);
    append(&log, 201..=300);
    logrotate(dir.path(), &log, directives);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    daemon.freeze(false);
    daemon.assert_exactly_once(300);
}

#[test]
fn copytruncate_twice_unseen_with_the_file_left_empty_loses_nothing() {
    two_rotations_unseen_the_last_leaving_the_path_empty("copytruncate\n  compress");
}

#[test]
fn create_twice_unseen_with_the_file_left_empty_loses_nothing() {
    two_rotations_unseen_the_last_leaving_the_path_empty("create");
}

#[test]
fn logrotate_create_loses_and_duplicates_nothing() {
    rotate_while_writing("create", 3000, 300, (2, 1));
}

#[test]
fn logrotate_copytruncate_loses_and_duplicates_nothing() {
    rotate_while_writing("copytruncate", 3000, 300, (2, 1));
}

/// copytruncate with the copy compressed at once: unread bytes come from `app.log.N.gz`.
#[test]
fn logrotate_copytruncate_compress_loses_and_duplicates_nothing() {
    rotate_while_writing("copytruncate\n  compress", 3000, 300, (2, 1));
}

/// dateext names the generations `app.log-<date>`.
#[test]
fn logrotate_dateext_loses_and_duplicates_nothing() {
    // Slow enough that the writer is still going when each second-named rotation comes.
    rotate_while_writing(
        "copytruncate\n  dateext\n  dateformat -%s",
        1500,
        500,
        (1, 3),
    );
}

#[test]
fn logrotate_compress_delaycompress_loses_and_duplicates_nothing() {
    let n = 3000;
    let (dir, daemon) = rotate_while_writing("create\n  compress\n  delaycompress", n, 300, (2, 1));

    // A backfill of every generation (.gz included) after the live run adds nothing: the
    // archives have the fingerprints and offsets `run` stored.
    let gz = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".gz")
        })
        .count();
    assert!(gz >= 2, "only {gz} compressed generations");
    let out = run(logwarden()
        .arg("backfill")
        .arg("--data-dir")
        .arg(&daemon.data)
        .arg("--source")
        .arg(format!(
            "app:pino={}",
            dir.path().join("app.log*").display()
        )));
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    assert_eq!(daemon.indexed(), (1..=n).collect::<Vec<u64>>());
}

/// Kill -9 at moments spread over the writing (a fixed seed per run, printed on failure), restart,
/// with copytruncate rotations on the way: every line exactly once.
#[test]
fn sigkill_restarts_during_rotation_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    File::create(&log).unwrap();
    let mut daemon = Daemon::new(dir.path(), &[format!("app:pino={}", log.display())]);
    daemon.start();
    let n = 4000;
    let writer = Writer::start(&log, n, (1, 1));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rng = seed | 1;
    let mut kills = 0;
    for round in 1..=6u64 {
        // The next kill lands somewhere in this sixth of the lines.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = (round - 1) * n / 6 + rng % (n / 6);
        assert!(wait_until(60, || writer.written() >= at), "seed {seed}");
        if round % 2 == 0 {
            let _paused = writer.gate.lock().unwrap();
            logrotate(dir.path(), &log, "copytruncate");
        }
        daemon.kill9();
        eprintln!(
            "kill {round} at line {at}: {} indexed",
            daemon.indexed().len()
        );
        kills += 1;
        daemon.start();
    }
    writer.join();
    assert!(kills >= 5);
    daemon.assert_exactly_once(n);

    // Every tenth line is a Redis connection error, 10 ms apart: one incident that counted each
    // of them once, opened once, whatever the kills interrupted.
    let out = run(logwarden()
        .arg("incidents")
        .arg("--data-dir")
        .arg(&daemon.data)
        .arg("--json"));
    let redis: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["class"] == "redis")
        .collect();
    assert_eq!(redis.len(), 1, "{redis:?}");
    assert_eq!(redis[0]["count"], n / 10, "seed {seed}\n{}", daemon.log());
    let log = std::fs::read_to_string(daemon.data.join("incidents.jsonl")).unwrap();
    let opened = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|c| c["incident"]["class"] == "redis" && c["kind"] == "opened")
        .count();
    assert_eq!(opened, 1, "the redis incident was opened {opened} times");
}

/// Deleted and recreated, truncated in place, a repointed symlink, a glob that matches a file
/// created after start: all followed, every line once.
#[test]
fn deletion_truncation_symlinks_and_late_glob_matches_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let append = |path: &Path, from: u64, to: u64| {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for seq in from..=to {
            f.write_all(line(seq).as_bytes()).unwrap();
        }
    };
    // A glob source over the directory, and a symlink source beside it.
    let target_a = dir.path().join("a.log");
    let target_b = dir.path().join("b.log");
    let link = dir.path().join("current.log");
    append(&target_a, 1, 100);
    std::os::unix::fs::symlink(&target_a, &link).unwrap();
    let mut daemon = Daemon::new(
        dir.path(),
        &[
            format!("app:pino={}", logs.join("*.log").display()),
            format!("app:pino={}", link.display()),
        ],
    );
    daemon.start();
    let count = |d: &Daemon| d.indexed().len() as u64;
    assert!(wait_until(60, || count(&daemon) == 100), "{}", daemon.log());

    // A file appears under the glob after start.
    append(&logs.join("late.log"), 101, 200);
    assert!(wait_until(60, || count(&daemon) == 200), "{}", daemon.log());
    // Deleted, then recreated with new lines.
    std::fs::remove_file(logs.join("late.log")).unwrap();
    append(&logs.join("late.log"), 201, 300);
    assert!(wait_until(60, || count(&daemon) == 300), "{}", daemon.log());
    // Truncated in place, then written again.
    std::fs::write(logs.join("late.log"), line(301)).unwrap();
    append(&logs.join("late.log"), 302, 400);
    assert!(wait_until(60, || count(&daemon) == 400), "{}", daemon.log());
    // The symlink repointed to another file.
    append(&target_b, 401, 500);
    let tmp_link = dir.path().join("current.log.tmp");
    std::os::unix::fs::symlink(&target_b, &tmp_link).unwrap();
    std::fs::rename(&tmp_link, &link).unwrap();
    assert!(wait_until(60, || count(&daemon) == 500), "{}", daemon.log());
    daemon.assert_exactly_once(500);
}
