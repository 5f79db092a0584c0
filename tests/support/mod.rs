//! What the integration tests share: the binaries, temp dirs, the corpora folder.
#![allow(clippy::unwrap_used, dead_code)]

pub mod secrets;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

pub fn logwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logwarden"))
}

pub fn loggrep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loggrep"))
}

/// Run a command and return its output, failing the test with its stderr if it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The shared corpora folder: `$LOGWARDEN_CORPORA` (set by tests/run), else `../shared/corpora`.
pub fn corpora() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOGWARDEN_CORPORA") {
        return Some(PathBuf::from(dir));
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
    std::fs::metadata(&beside).ok().map(|_| beside)
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Stop a `logwarden run` (or any child) with SIGTERM; it must exit 0.
pub fn terminate(child: Child) {
    terminate_explained(child, String::new);
}

/// [`terminate`], with `context` (the child's stderr, say) in the message when it fails.
pub fn terminate_explained(mut child: Child, context: impl Fn() -> String) {
    let out = run(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string()));
    assert!(out.status.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "run did not exit 0 on SIGTERM: {status:?}; {}",
        context()
    );
}

/// What a child writes to `pipe` (its stdout or stderr), collected by a thread as it comes and
/// readable while the child runs.
pub fn collect(
    mut pipe: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// Poll `cond` until it holds or `secs` pass; true when it held.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        #[allow(clippy::disallowed_methods)] // polling a condition with a deadline
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cond()
}

/// The number `loggrep --count QUERY` prints for a data dir (0 while there is no index yet).
pub fn loggrep_count(data_dir: &Path, query: &str) -> u64 {
    let out = run(loggrep()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--count", "--", query]));
    stdout(&out).trim().parse().unwrap_or(0)
}

/// `logwarden backfill` of the demo's five files in `logs` into `data_dir`; panics on failure.
pub fn backfill_demo(data_dir: &Path, logs: &Path) {
    backfill_demo_sources(data_dir, logs, false);
}

/// `logwarden run` following one pino file as service `app` into `data` (output discarded); stop
/// it with [`terminate`].
pub fn run_following(data: &Path, log: &Path) -> Child {
    logwarden()
        .arg("run")
        .args(["--listen", "off"])
        .arg("--data-dir")
        .arg(data)
        .arg("--source")
        .arg(format!("app:pino={}", log.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// One backfilled copy of the demo's files (seed 11), built once and shared by every test that
/// only reads it (loggrep's and the forensic tests).
pub fn demo_index() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let logs = write_demo_logs(dir.path(), 11);
        backfill_demo(dir.path(), &logs);
        dir
    })
    .path()
}

/// The demo's five files of timeline `seed` (from 2026-12-02T12:00Z) written into `dir/logs`;
/// returns that folder.
pub fn write_demo_logs(dir: &Path, seed: u64) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let tl = logwarden::demo::Timeline::generate(&logwarden::demo::DemoConfig {
        seed,
        start: logwarden::event::Timestamp::from_secs(1_796_212_800),
    });
    logwarden::demo::write_all(&logs, &tl).unwrap();
    logs
}

/// [`backfill_demo`] with the `--source` arguments in reverse order when `reversed`.
pub fn backfill_demo_sources(data_dir: &Path, logs: &Path, reversed: bool) {
    let out = run(&mut demo_backfill(data_dir, logs, reversed));
    assert!(out.status.success(), "backfill failed: {}", stderr(&out));
}

/// The `logwarden backfill` command of the demo's five files in `logs` into `data_dir` (the
/// `--source` arguments reversed when `reversed`), for more arguments to be added.
pub fn demo_backfill(data_dir: &Path, logs: &Path, reversed: bool) -> Command {
    let mut cmd = logwarden();
    cmd.arg("backfill").arg("--data-dir").arg(data_dir);
    let mut files = logwarden::demo::DemoFile::ALL.to_vec();
    if reversed {
        files.reverse();
    }
    for f in files {
        cmd.arg("--source").arg(format!(
            "{}:{}={}",
            f.service(),
            f.format().name(),
            logs.join(f.file_name()).display()
        ));
    }
    cmd.args(["--pg-prefix", "%m [%p] %q%u@%d "]);
    cmd
}

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read, then released, for a
/// server the test starts itself.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A ClickHouse server of its own (Debian's `clickhouse-server`, installed by tests/run) in a
/// temporary directory on free loopback ports, as ../shared/CLICKHOUSE.md starts it; stopped
/// (SIGTERM, waited for) when dropped. It can be stopped and started again on the same ports and
/// data (a server that goes away and comes back).
pub struct ClickHouseServer {
    child: Option<Child>,
    pub url: String,
    config_file: PathBuf,
    dir: tempfile::TempDir,
}

impl ClickHouseServer {
    pub fn start() -> ClickHouseServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let (http, tcp) = (free_port(), free_port());
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <mark_cache_size>268435456</mark_cache_size>
  <timezone>UTC</timezone>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <profiles><default/></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default/></quotas>
</yandex>
"#
        );
        let config_file = dir.path().join("config.xml");
        std::fs::write(&config_file, config).unwrap();
        let mut server = ClickHouseServer {
            child: None,
            url: format!("http://127.0.0.1:{http}"),
            config_file,
            dir,
        };
        server.start_again();
        server
    }

    /// Start the (stopped) server on its ports and data; returns once it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stdout.log"))
            .unwrap();
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let binary = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("clickhouse-server");
        let mut child = Command::new(binary)
            .arg(format!("--config-file={}", self.config_file.display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("the ClickHouse tests need Debian's clickhouse-server (tests/run installs it): {e}")
            });
        let ping = format!("{}/?query=SELECT%201", self.url);
        let up = wait_until(60, || {
            ureq::get(&ping)
                .call()
                .ok()
                .and_then(|r| r.into_body().read_to_string().ok())
                .is_some_and(|body| body.trim() == "1")
                || child.try_wait().ok().flatten().is_some()
        });
        let exited = child.try_wait().unwrap();
        if !up || exited.is_some() {
            let said =
                std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
            let err =
                std::fs::read_to_string(self.dir.path().join("server.err.log")).unwrap_or_default();
            let _ = child.kill();
            panic!("clickhouse-server did not start ({exited:?}):\n{said}\n{err}");
        }
        self.child = Some(child);
    }

    /// Stop the server (SIGTERM) and wait until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// The one value `sql` selects, as text (over HTTP, like curl would).
    pub fn query(&self, sql: &str) -> String {
        let mut answer = ureq::post(&self.url)
            .send(sql)
            .unwrap_or_else(|e| panic!("ClickHouse query `{sql}`: {e}"));
        answer
            .body_mut()
            .read_to_string()
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A reqwest client for the tests' plain-http calls. reqwest is built without a TLS provider of
/// its own (logwarden gives its webhook clients ring's, per client), so one is installed for the
/// test process first.
pub fn http_client() -> reqwest::Client {
    // An error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}
