//! `logwarden`: the pipeline's commands. Each arm turns flags into a library request and calls one
//! library function; exit codes are decided here (0 ok, 1 a check failed, 2 an error).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use logwarden::config;
use logwarden::detect::{check, pack};
use logwarden::event::Timestamp;
use logwarden::incident::{Change, State};
use logwarden::parse::Format;
use logwarden::pipeline::{self, DemoOptions, Settings};
use logwarden::query::incidents::{self as views, Style};
use logwarden::serve;
use logwarden::source::tail::TailConfig;
use logwarden::source::{self, SourceSpec, checkpoint};
use logwarden::store::clickhouse_sink;
use logwarden::store::index::EventIndex;

#[derive(Parser, Debug)]
#[command(
    name = "logwarden",
    version,
    about = "Runbook-aware log and incident pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DataDir {
    /// Where the index, the incident log and the demo's logs live.
    #[arg(long, env = "LOGWARDEN_DATA", default_value = ".logwarden")]
    data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
struct Sources {
    /// An ingest profile naming the sources (ingest/newsletter.toml).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// SERVICE[:FORMAT]=PATH (repeatable); FORMAT: pino, postgres, postgres-csv, postgres-json,
    /// syslog, redis, compose, plain, auto (default).
    /// With `run --stdin`: SERVICE[:FORMAT], or just FORMAT (`auto`: compose prefixes name the
    /// services).
    #[arg(long = "source", value_name = "SERVICE[:FORMAT]=PATH")]
    sources: Vec<String>,
    /// log_line_prefix for postgres sources that do not name one (detected otherwise).
    #[arg(long)]
    pg_prefix: Option<String>,
    /// A folder of rule files to use instead of the embedded pack.
    #[arg(long)]
    patterns: Option<PathBuf>,
    /// A runbook to link incidents to instead of the embedded one.
    #[arg(long)]
    runbook: Option<PathBuf>,
    /// Memory of the index writer in MiB (run, backfill; at least 15). Part of the memory bound.
    #[arg(long, value_name = "MIB", default_value_t = (pipeline::INDEX_HEAP >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(15..65536))]
    index_memory: u64,
}

/// A ClickHouse server and database, and who logs in.
#[derive(Args, Debug, Clone)]
struct ClickHouseConn {
    /// ClickHouse at URL (http://HOST:8123/DATABASE or clickhouse://…; `run` and `backfill` also
    /// write every event and incident change there); overrides a profile's [clickhouse] url.
    #[arg(long, value_name = "URL", env = "LOGWARDEN_CLICKHOUSE")]
    clickhouse: Option<String>,
    /// The ClickHouse user (default: the server's `default`).
    #[arg(long, value_name = "USER", requires = "clickhouse")]
    clickhouse_user: Option<String>,
    /// A file holding the ClickHouse user's password.
    #[arg(long, value_name = "FILE", requires = "clickhouse")]
    clickhouse_password_file: Option<PathBuf>,
}

impl ClickHouseConn {
    /// The user and password the flags give, applied over `sink`'s.
    fn apply(&self, sink: &mut clickhouse_sink::SinkConfig) -> Result<()> {
        if let Some(user) = &self.clickhouse_user {
            sink.user = Some(user.clone());
        }
        if let Some(file) = &self.clickhouse_password_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("--clickhouse-password-file {}", file.display()))?;
            sink.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        Ok(())
    }
}

/// Where `run` and `backfill` store events besides (or instead of) the local index.
#[derive(Args, Debug, Clone)]
struct Store {
    #[command(flatten)]
    conn: ClickHouseConn,
    /// Rows per ClickHouse insert (default 50000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    clickhouse_batch_rows: Option<u64>,
    /// How much may wait on disk (in DATA_DIR/clickhouse) while ClickHouse is away or slow before
    /// ingestion waits too (default 1G; nothing is dropped either way).
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    clickhouse_buffer: Option<u64>,
    /// Keep the events in ClickHouse only: the local index then holds just the checkpoints
    /// (loggrep needs --backend clickhouse://…).
    #[arg(long)]
    no_local_index: bool,
    /// This agent's name: the `agent` column, and the `host` of events that name none (default:
    /// the machine's host name).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

/// The HTTP API and live feed of `run` and `demo`.
#[derive(Args, Debug, Clone)]
struct Http {
    /// Serve the HTTP API and the live incident feed on ADDR (IP:PORT, localhost:PORT), or `off`
    /// for no server. An address other than loopback needs --token-file.
    #[arg(long, value_name = "ADDR|off", env = "LOGWARDEN_LISTEN", default_value = serve::DEFAULT_LISTEN)]
    listen: serve::Listen,
    /// A file holding the API token: every /api request must then send
    /// `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Longest silence on the feed before a heartbeat comment (15s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "15s",
          value_parser = parse_heartbeat)]
    heartbeat: u64,
    /// Changes a feed client may have waiting before it is dropped as not reading.
    #[arg(long, value_name = "N", default_value_t = serve::CLIENT_BUFFER as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    feed_buffer: u64,
    /// /api/v1/health answers 503 (not ready) while a source is more than this many bytes behind
    /// the end of its files.
    #[arg(long, value_name = "BYTES", default_value_t = serve::MAX_LAG)]
    ready_max_lag: u64,
    /// Let pages of this web origin (https://dash.example[:port]) read the API (CORS;
    /// repeatable). None by default: no page of another origin can.
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Vec<serve::auth::Origin>,
}

fn parse_heartbeat(text: &str) -> Result<u64, String> {
    let secs = logwarden::detect::rules::parse_duration(text)?;
    u64::try_from(secs)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("`{text}`: the heartbeat must be at least 1s"))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum FromArg {
    Beginning,
    End,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Play the newsletter stack's seeded timeline live and raise its incidents.
    Demo {
        #[command(flatten)]
        data: DataDir,
        /// Event time runs this many times faster than the wall clock.
        #[arg(long, default_value_t = logwarden::demo::DEFAULT_SPEED)]
        speed: f64,
        /// Seed of the timeline (same seed, same logs).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Event time of the first line (RFC 3339); default: the timeline ends now.
        #[arg(long)]
        start: Option<String>,
        /// Keep following the files after the timeline is written (Ctrl-C to stop).
        #[arg(long)]
        stay: bool,
        /// Send the incident changes to the `[[webhook]]` tables of FILE (a profile, or a file of
        /// webhooks alone).
        #[arg(long, value_name = "FILE")]
        webhooks: Option<PathBuf>,
        #[command(flatten)]
        http: Http,
        /// Only write SIZE (1G, 200M, …) of the stack's logs to --out, as fast as possible, and
        /// exit: `docker-compose logs`-shaped, deterministic for a seed (benchmarks, sizing).
        #[arg(long, value_name = "SIZE", value_parser = config::parse_size, requires = "out")]
        generate: Option<u64>,
        /// The file --generate writes (a directory with --split).
        #[arg(long, value_name = "PATH", requires = "generate")]
        out: Option<PathBuf>,
        /// With --generate: write the five per-service files (app.log, worker.log, postgresql.log,
        /// redis.log, kern.log) into the --out directory instead of one compose stream.
        #[arg(long, requires = "generate")]
        split: bool,
    },
    /// Follow the sources as they grow, index them and raise incidents (Ctrl-C to stop).
    Run {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        sources: Sources,
        /// Where a file never seen before starts.
        #[arg(long, value_enum, default_value = "beginning")]
        from: FromArg,
        /// Read standard input instead of files (`docker-compose logs -f | logwarden run --stdin
        /// --source auto`); ends with the pipe.
        #[arg(long)]
        stdin: bool,
        /// How far behind the newest line a line may arrive and still count in event-time order
        /// (30s, 2m; default 60s). Incidents resolve this long after their quiet period ends,
        /// also when the logs go silent and the wall clock moves event time on.
        #[arg(long, value_name = "DURATION", value_parser = logwarden::detect::rules::parse_duration)]
        lateness: Option<i64>,
        #[command(flatten)]
        http: Http,
        #[command(flatten)]
        store: Store,
    },
    /// Ingest existing files once (rotated .gz included) and raise their incidents.
    Backfill {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        sources: Sources,
        #[command(flatten)]
        store: Store,
    },
    /// Match files and print their incidents without indexing them (a runbook-aware grep).
    Scan {
        #[command(flatten)]
        sources: Sources,
        /// Print incidents (and matches) as NDJSON.
        #[arg(long)]
        json: bool,
        /// Also print every matching event: time, service, rule and its first line.
        #[arg(long)]
        matches: bool,
        /// Print only the number of lines the rules' patterns match (as `rg -c` counts them).
        #[arg(long, conflicts_with = "matches")]
        count: bool,
    },
    /// List incidents.
    Incidents {
        #[command(flatten)]
        data: DataDir,
        /// Only open incidents.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one incident with its runbook procedure and evidence.
    Incident {
        /// The incident id (a unique prefix is enough).
        id: String,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Rule pack commands.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Show every tracked file: fingerprint, offset, size, lag, last event.
    Status {
        #[command(flatten)]
        data: DataDir,
    },
    /// Delete the events older than a duration and reclaim their disk space (stop `run` first,
    /// or give its profile a `[retention]` section).
    Retention {
        #[command(flatten)]
        data: DataDir,
        /// Delete events whose time is more than this long before now (730d, 90d, 12h).
        #[arg(long, value_name = "DURATION", value_parser = logwarden::detect::rules::parse_duration)]
        older_than: i64,
        /// Apply it to ClickHouse instead: drop the day partitions wholly older than that.
        #[command(flatten)]
        conn: ClickHouseConn,
    },
    /// Acknowledge an open incident: it stays open but stops escalating and paging (the running
    /// `logwarden run` takes it, over its API).
    Ack {
        /// The incident id (a unique prefix is enough).
        id: String,
        /// Who acknowledges it (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// What is being done about it.
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
        #[command(flatten)]
        agent: Agent,
    },
    /// Silences: matching incidents are recorded but page nobody while one holds.
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
}

/// Where the running agent is, for commands it must carry out.
#[derive(Args, Debug, Clone)]
struct Agent {
    #[command(flatten)]
    data: DataDir,
    /// The agent's URL (default: the address a `logwarden run` on this data dir advertises).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// A file holding the agent's API token (as its --token-file).
    #[arg(long, value_name = "FILE", env = "LOGWARDEN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum SilenceCommand {
    /// Silence the incidents a match names, for a while.
    Add {
        /// What to silence: `field=value` terms, all of which must hold (`class=db-down
        /// service=postgres`); fields: class, severity, service, rule, incident; `!=` for not,
        /// `a,b` for either.
        #[arg(long = "match", value_name = "MATCHERS")]
        matchers: String,
        /// How long it holds from its start (30m, 2h).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_positive_duration,
              conflicts_with = "end")]
        for_secs: Option<i64>,
        /// When it starts (default: now): RFC 3339, or `2026-12-01 03:00` (UTC).
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// When it ends, instead of --for.
        #[arg(long, value_name = "TIME")]
        end: Option<String>,
        /// Why (kept with the silence).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who makes it (default: $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// The silences that hold or will (with --all, the ended ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// End a silence now (its id, or a unique prefix).
    Expire {
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Write the pack's text patterns, one per line, for another tool.
    Export {
        /// As a pattern file for `rg -f` (and `grep -E -f`): each rule's regex, or its literals.
        #[arg(long, required = true)]
        rg: bool,
        /// A folder of rule files (default: the embedded pack).
        #[arg(long)]
        patterns: Option<PathBuf>,
    },
    /// Validate the pack against the runbook: links resolve, every procedure is covered.
    Check {
        /// A folder of rule files (default: the embedded pack).
        #[arg(long)]
        patterns: Option<PathBuf>,
        /// The runbook (default: the embedded patterns/runbook.md).
        #[arg(long)]
        runbook: Option<PathBuf>,
    },
}

/// jemalloc gives freed memory back to the system within seconds (its decay), where glibc's
/// malloc keeps what a tantivy merge or a burst once needed for the rest of a long run.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rustls-platform-verifier logs an ERROR of its own for each certificate a
                // webhook receiver fails with; the webhook says it (WARN, with the reason).
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,rustls_platform_verifier=off")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    #[cfg(feature = "jemalloc")]
    {
        serve::metrics::report_jemalloc_heap();
        // A background thread purges freed pages even while the process is idle.
        if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::debug!(%error, "jemalloc's background thread is not available");
        }
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Who runs this command, for an acknowledgement or a silence that does not say.
fn operator_name(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "cli".to_string())
}

fn parse_positive_duration(text: &str) -> Result<i64, String> {
    logwarden::query::time::parse_duration(text).map_err(|e| e.to_string())
}

/// `logwarden ack`: through the running agent's API (its engine holds the incident).
fn acknowledge(id: &str, by: Option<String>, note: String, agent: &Agent) -> Result<ExitCode> {
    let data_dir = &agent.data.data_dir;
    let Some(base) = agent
        .server
        .clone()
        .or_else(|| logwarden::query::remote::discover(data_dir))
    else {
        bail!(
            "no logwarden run serves {} (it has no serve.addr): the running engine takes an \
             acknowledgement; start `logwarden run`, or name it with --server URL",
            data_dir.display()
        );
    };
    let url = format!("{}/api/v1/incidents/{id}/ack", base.trim_end_matches('/'));
    let body = serde_json::json!({ "by": operator_name(by), "note": note });
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut request = http.post(&url).content_type("application/json");
    if let Some(path) = &agent.token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}", path.display()))?;
        request = request.header("Authorization", format!("Bearer {}", token.trim()));
    }
    let mut response = request
        .send(body.to_string().as_bytes())
        .with_context(|| format!("cannot reach the agent at {base}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    if status != 200 {
        let error = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("{url}: {status}: {error}");
    }
    let change: Change = serde_json::from_str(&text).context("the agent's answer")?;
    println!("{}", views::change_line(&change, style()));
    Ok(ExitCode::SUCCESS)
}

/// `logwarden silence …`: the data dir's silences file (a running agent takes a change within a
/// second).
fn silence(command: SilenceCommand) -> Result<ExitCode> {
    use logwarden::incident::silence::Request;
    use logwarden::store::silences::SilenceStore;
    let now = Timestamp::now();
    match command {
        SilenceCommand::Add {
            matchers,
            for_secs,
            start,
            end,
            reason,
            by,
            data,
        } => {
            let time = |flag: &str, text: Option<String>| -> Result<Option<Timestamp>> {
                text.map(|t| {
                    logwarden::query::time::parse(&t, now).with_context(|| format!("--{flag}"))
                })
                .transpose()
            };
            let request = Request {
                matchers,
                starts: time("start", start)?,
                ends: time("end", end)?,
                for_secs,
                reason,
                by: operator_name(by),
            };
            let silence = request.make(now).map_err(|e| match e {
                logwarden::incident::silence::RequestError::Span => {
                    anyhow::anyhow!("give --for DURATION or --end TIME")
                }
                other => anyhow::anyhow!(other),
            })?;
            let silence = SilenceStore::new(&data.data_dir).add(silence)?;
            println!(
                "{}  {}  from {} to {}  ({})",
                silence.id,
                silence.render_matchers(),
                silence.starts.rfc3339(),
                silence.ends.rfc3339(),
                silence.reason
            );
            Ok(ExitCode::SUCCESS)
        }
        SilenceCommand::List { all, json, data } => {
            let silences: Vec<_> = SilenceStore::new(&data.data_dir)
                .load()?
                .into_iter()
                .filter(|s| all || s.in_force(now))
                .collect();
            let mut out = std::io::stdout().lock();
            if json {
                let shown: Vec<_> = silences.iter().map(|s| s.shown(now)).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&shown)?)?;
            } else {
                write!(out, "{}", views::silences_table(&silences, now))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SilenceCommand::Expire { id, data } => {
            let silence = SilenceStore::new(&data.data_dir).expire(&id, now)?;
            println!(
                "{} expired at {} ({})",
                silence.id,
                now.rfc3339(),
                silence.render_matchers()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn style() -> Style {
    Style {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Set on the first Ctrl-C or SIGTERM; the pipeline then flushes, commits and returns.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_stop = Arc::clone(&stop);
    ctrlc::set_handler(move || handler_stop.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C/SIGTERM handler")?;
    Ok(stop)
}

fn print_change(change: &Change) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop ingestion.
    let _ = writeln!(out, "{}", views::change_line(change, style()));
    let _ = out.flush();
}

/// Start the HTTP server `http` asks for (none with `--listen off`) and say where it listens.
fn start_server(data_dir: &Path, http: &Http) -> Result<Option<serve::Server>> {
    let serve::Listen::At(addr) = http.listen else {
        return Ok(None);
    };
    let mut config = serve::Config::new(addr, data_dir.to_path_buf());
    config.token = http
        .token_file
        .as_deref()
        .map(serve::Token::from_file)
        .transpose()?;
    config.heartbeat = std::time::Duration::from_secs(http.heartbeat);
    config.client_buffer = usize::try_from(http.feed_buffer).unwrap_or(usize::MAX);
    config.max_lag = http.ready_max_lag;
    config.cors = http.cors_origin.clone();
    let server = serve::start(config).context(
        "starting the HTTP server (--listen ADDR for another address, --listen off for none)",
    )?;
    eprintln!(
        "logwarden: serving http://{} (incidents, live feed: /api/v1/)",
        server.addr()
    );
    Ok(Some(server))
}

/// How long a stopping `run` or `demo` waits for its webhooks to deliver what is stored (the rest
/// goes with the next run).
const WEBHOOK_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Start the profile's webhooks (none without `[[webhook]]` tables).
fn start_webhooks(
    data_dir: &Path,
    hooks: Vec<config::Webhook>,
    server: Option<&serve::Server>,
) -> Result<Option<serve::webhook::Webhooks>> {
    let mut options = serve::webhook::Options::new(data_dir.to_path_buf());
    if let Some(server) = server {
        options.external_url = format!("http://{}", server.addr());
    }
    let count = hooks.len();
    let webhooks = serve::webhook::start(hooks, options).context("starting the webhooks")?;
    if webhooks.is_some() {
        eprintln!("logwarden: sending incident changes to {count} webhook(s)");
    }
    Ok(webhooks)
}

/// What `run` and `demo` do with each incident change: print it, publish it to the feed, and wake
/// the webhooks.
fn on_change<'a>(
    server: Option<&serve::Server>,
    webhooks: Option<&'a serve::webhook::Webhooks>,
) -> impl FnMut(&Change) + 'a {
    let feed = server.map(|s| s.feed().clone());
    move |change| {
        print_change(change);
        if let Some(feed) = &feed {
            feed.publish(change);
        }
        if let Some(webhooks) = webhooks {
            webhooks.publish(change);
        }
    }
}

/// The pipeline's settings, and the profile's webhooks.
fn settings_for(data: &DataDir, sources: &Sources) -> Result<(Settings, Vec<config::Webhook>)> {
    let mut specs = Vec::new();
    let mut retention = None;
    let mut webhooks = Vec::new();
    let mut clickhouse = None;
    let mut maintenance = Vec::new();
    if let Some(profile) = &sources.profile {
        let profile = config::load_profile(profile)?;
        logwarden::parse::redact::install(profile.redactions)?;
        maintenance = profile.maintenance;
        retention = profile.retention;
        clickhouse = profile.clickhouse;
        webhooks = profile.webhooks;
        specs.extend(profile.sources);
    }
    for s in &sources.sources {
        specs.push(
            s.parse::<SourceSpec>()
                .map_err(|e| anyhow::anyhow!("--source: {e}"))?,
        );
    }
    if specs.is_empty() {
        bail!("no sources: give --profile FILE or --source SERVICE[:FORMAT]=PATH");
    }
    let mut settings = finish_settings(data, sources, specs)?;
    settings.retention = retention;
    settings.maintenance = maintenance;
    if let Some(ch) = clickhouse {
        settings.local_index = ch.local_index;
        settings.clickhouse = Some(ch.sink);
    }
    Ok((settings, webhooks))
}

/// Apply `run`/`backfill`'s store flags over what the profile said.
fn apply_store(settings: &mut Settings, store: &Store) -> Result<()> {
    use clickhouse_sink::SinkConfig;
    if let Some(url) = &store.conn.clickhouse {
        let mut sink = SinkConfig::new(url, String::new())?;
        if let Some(profile) = settings.clickhouse.take() {
            // The profile's other choices stand unless a flag overrides them.
            sink.user = profile.user;
            sink.password = profile.password;
            sink.agent = profile.agent;
            sink.batch_rows = profile.batch_rows;
            sink.buffer_max = profile.buffer_max;
            sink.retention_days = profile.retention_days;
        }
        settings.clickhouse = Some(sink);
    }
    let Some(sink) = settings.clickhouse.as_mut() else {
        if store.no_local_index {
            bail!(
                "--no-local-index needs --clickhouse URL (or a profile's [clickhouse]): the events must go somewhere"
            );
        }
        return Ok(());
    };
    store.conn.apply(sink)?;
    if let Some(rows) = store.clickhouse_batch_rows {
        sink.batch_rows = usize::try_from(rows).unwrap_or(usize::MAX);
    }
    if let Some(bytes) = store.clickhouse_buffer {
        sink.buffer_max = bytes;
    }
    if let Some(host) = &store.host {
        if host.trim().is_empty() || host.contains(char::is_whitespace) {
            bail!("--host `{host}` must be one word");
        }
        sink.agent = host.clone();
    }
    if sink.agent.is_empty() {
        sink.agent = host_name();
    }
    if store.no_local_index {
        settings.local_index = false;
    }
    Ok(())
}

/// How long `run` and `backfill` wait for ClickHouse's first answer.
const CLICKHOUSE_PROBE: std::time::Duration = std::time::Duration::from_secs(10);

/// A live run starts without its ClickHouse (the spool keeps the rows until it answers), but
/// says so at once.
fn warn_unless_clickhouse_answers(settings: &Settings) {
    if let Some(sink) = &settings.clickhouse
        && let Err(error) = clickhouse_sink::probe(sink, CLICKHOUSE_PROBE)
    {
        eprintln!(
            "logwarden: warning: {error}; events wait in {} until it answers",
            settings.spool_dir().display()
        );
    }
}

/// The machine's host name (`localhost` when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The settings of `run --stdin`: one source, read from the pipe.
fn stdin_settings(data: &DataDir, sources: &Sources) -> Result<Settings> {
    if sources.profile.is_some() {
        bail!("--stdin reads one pipe: give --source SERVICE[:FORMAT], not --profile");
    }
    let spec = match sources.sources.as_slice() {
        [] => SourceSpec::stdin("auto"),
        [one] => SourceSpec::stdin(one),
        _ => bail!("--stdin reads one pipe: give one --source SERVICE[:FORMAT]"),
    }
    .map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    finish_settings(data, sources, vec![spec])
}

fn finish_settings(
    data: &DataDir,
    sources: &Sources,
    mut specs: Vec<SourceSpec>,
) -> Result<Settings> {
    if let Some(prefix) = &sources.pg_prefix {
        for spec in &mut specs {
            if let Format::Postgres { prefix: p @ None } = &mut spec.format {
                *p = Some(prefix.clone());
            }
        }
    }
    let mut settings = Settings::new(data.data_dir.clone(), specs);
    settings.rules_dir = sources.patterns.clone();
    settings.index_heap = (sources.index_memory as usize) << 20;
    settings.runbook = sources.runbook.clone();
    Ok(settings)
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo {
            data,
            speed,
            seed,
            start,
            stay,
            webhooks,
            http,
            generate,
            out,
            split,
        } => {
            if let (Some(size), Some(out)) = (generate, out) {
                return generate_corpus(size, &out, seed, split);
            }
            if !(speed.is_finite() && speed > 0.0) {
                bail!("--speed must be a positive number, got {speed}");
            }
            let start = start
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .map(Timestamp::from_jiff)
                        .with_context(|| format!("--start `{s}` is not an RFC 3339 time"))
                })
                .transpose()?;
            let mut settings = Settings::new(
                data.data_dir.clone(),
                pipeline::demo_sources(&data.data_dir),
            );
            let opts = DemoOptions {
                seed,
                start,
                speed,
                stay,
            };
            println!(
                "logwarden demo: writing the newsletter stack's logs into {} at {speed}× and following them{}",
                data.data_dir.join("logs").display(),
                if stay { " (Ctrl-C to stop)" } else { "" }
            );
            let hooks = match &webhooks {
                Some(file) => config::load_webhooks(file)?,
                None => Vec::new(),
            };
            let stop = stop_flag()?;
            let server = start_server(&data.data_dir, &http)?;
            settings.push = server.as_ref().map(|s| s.push().clone());
            settings.operator = server.as_ref().map(|s| s.operator().clone());
            settings.metrics = server.as_ref().map(|s| std::sync::Arc::clone(s.metrics()));
            // The webhooks must not see the previous demo's incident log.
            pipeline::clear_demo_data(&data.data_dir)?;
            let webhooks = start_webhooks(&data.data_dir, hooks, server.as_ref())?;
            let (summary, timeline) = pipeline::demo(
                &settings,
                &opts,
                stop,
                &mut on_change(server.as_ref(), webhooks.as_ref()),
            )?;
            if let Some(webhooks) = webhooks {
                webhooks.shutdown(WEBHOOK_GRACE);
            }
            if let Some(server) = server {
                server.shutdown();
            }
            println!("\n{summary}");
            let incidents = views::load(&data.data_dir)?;
            println!(
                "{} incidents over {} episodes; list them: logwarden incidents --data-dir {}",
                incidents.len(),
                timeline.episodes.len(),
                data.data_dir.display()
            );
            let dd = data.data_dir.display();
            println!("\nTry:");
            println!("  loggrep --data-dir {dd} \"too many clients\"");
            println!("  loggrep --data-dir {dd} --service app 'res.statusCode:503'");
            println!(
                "  loggrep --data-dir {dd} --level error --count 'ECONNREFUSED OR \"out of memory\"'"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            data,
            sources,
            from: _,
            stdin: true,
            lateness,
            http,
            store,
        } => {
            let mut settings = stdin_settings(&data, &sources)?;
            apply_store(&mut settings, &store)?;
            warn_unless_clickhouse_answers(&settings);
            if let Some(secs) = lateness {
                settings.engine.lateness_secs = secs;
            }
            let idle_after = TailConfig::default().idle_after;
            let stop = stop_flag()?;
            let server = start_server(&data.data_dir, &http)?;
            settings.push = server.as_ref().map(|s| s.push().clone());
            settings.operator = server.as_ref().map(|s| s.operator().clone());
            settings.metrics = server.as_ref().map(|s| std::sync::Arc::clone(s.metrics()));
            let summary = pipeline::run_stdin(
                &settings,
                idle_after,
                stop,
                &mut on_change(server.as_ref(), None),
            )?;
            if let Some(server) = server {
                server.shutdown();
            }
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            data,
            sources,
            from,
            stdin: false,
            lateness,
            http,
            store,
        } => {
            let (mut settings, hooks) = settings_for(&data, &sources)?;
            apply_store(&mut settings, &store)?;
            warn_unless_clickhouse_answers(&settings);
            if let Some(secs) = lateness {
                settings.engine.lateness_secs = secs;
            }
            let tail = TailConfig {
                from: match from {
                    FromArg::Beginning => source::From::Beginning,
                    FromArg::End => source::From::End,
                },
                ..TailConfig::default()
            };
            let stop = stop_flag()?;
            let server = start_server(&data.data_dir, &http)?;
            settings.push = server.as_ref().map(|s| s.push().clone());
            settings.operator = server.as_ref().map(|s| s.operator().clone());
            settings.metrics = server.as_ref().map(|s| std::sync::Arc::clone(s.metrics()));
            let webhooks = start_webhooks(&data.data_dir, hooks, server.as_ref())?;
            let summary = pipeline::run(
                &settings,
                tail,
                stop,
                &mut on_change(server.as_ref(), webhooks.as_ref()),
            )?;
            if let Some(webhooks) = webhooks {
                webhooks.shutdown(WEBHOOK_GRACE);
            }
            if let Some(server) = server {
                server.shutdown();
            }
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill {
            data,
            sources,
            store,
        } => {
            let (mut settings, _webhooks) = settings_for(&data, &sources)?;
            apply_store(&mut settings, &store)?;
            if let Some(sink) = &settings.clickhouse {
                // A batch job fails at once rather than read everything for a server not there.
                let server = clickhouse_sink::probe(sink, CLICKHOUSE_PROBE)?;
                tracing::info!(url = %sink.url, version = ?server.version, "ClickHouse answers");
            }
            settings.progress = true;
            let summary = pipeline::backfill(&settings, &mut print_change)?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan {
            sources,
            json,
            matches,
            count,
        } => {
            let data = DataDir {
                data_dir: PathBuf::from("."),
            };
            let (settings, _webhooks) = settings_for(&data, &sources)?;
            let rules = pack::rules_from(settings.rules_dir.as_deref())?;
            let out = std::cell::RefCell::new(std::io::BufWriter::new(std::io::stdout().lock()));
            let failed: std::cell::RefCell<Option<std::io::Error>> = Default::default();
            let write = |line: std::io::Result<String>| {
                if failed.borrow().is_some() {
                    return;
                }
                if let Err(e) = line.and_then(|l| writeln!(out.borrow_mut(), "{l}")) {
                    *failed.borrow_mut() = Some(e);
                }
            };
            let summary = pipeline::scan(
                &settings,
                &mut |event, m| {
                    if !matches {
                        return;
                    }
                    write(if json {
                        serde_json::to_string(&serde_json::json!({
                            "rule": rules.rules.get(m.rule).map(|r| r.id.as_str()),
                            "match": m,
                            "event": event,
                        }))
                        .map_err(std::io::Error::other)
                    } else {
                        Ok(views::match_line(event, m, &rules, style()))
                    });
                },
                &mut |change| {
                    if count {
                        return;
                    }
                    write(if json {
                        serde_json::to_string(change).map_err(std::io::Error::other)
                    } else {
                        Ok(views::change_line(change, style()))
                    });
                },
            )?;
            if count {
                write(Ok(summary.matching_lines.to_string()));
            }
            if let Some(e) = failed.into_inner() {
                return Err(e.into());
            }
            out.into_inner().flush()?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Incidents { data, open, json } => {
            let mut incidents = views::load(&data.data_dir)?;
            if open {
                incidents.retain(|i| i.state == State::Open);
            }
            let mut out = std::io::stdout().lock();
            if json {
                for inc in &incidents {
                    writeln!(out, "{}", serde_json::to_string(inc)?)?;
                }
            } else if incidents.is_empty() {
                writeln!(out, "no incidents in {}", data.data_dir.display())?;
            } else {
                write!(out, "{}", views::table(&incidents, style()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Incident { id, data, json } => {
            let incidents = views::load(&data.data_dir)?;
            let Some(inc) = logwarden::store::incidents::find(&incidents, &id) else {
                bail!("no incident `{id}` in {}", data.data_dir.display());
            };
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(inc)?)?;
            } else {
                let runbook = logwarden::runbook::Runbook::parse(pack::default_runbook());
                write!(out, "{}", views::detail(inc, &runbook.escalation, style()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command: RulesCommand::Check { patterns, runbook },
        } => rules_check(patterns.as_deref(), runbook.as_deref()),
        Command::Rules {
            command: RulesCommand::Export { rg: _, patterns },
        } => {
            let rules = pack::rules_from(patterns.as_deref())?;
            let (lines, left_out) = pack::rg_patterns(&rules);
            let mut out = std::io::stdout().lock();
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            if !left_out.is_empty() {
                eprintln!(
                    "{} rules have no text pattern (a level alone, or a regex over several lines) \
                     and are left out: {}",
                    left_out.len(),
                    left_out.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { data } => status(&data.data_dir),
        Command::Ack {
            id,
            by,
            note,
            agent,
        } => acknowledge(&id, by, note, &agent),
        Command::Silence { command } => silence(command),
        Command::Retention {
            data,
            older_than,
            conn,
        } => match &conn.clickhouse {
            Some(url) => clickhouse_retention(url, &conn, older_than),
            None => retention(&data.data_dir, older_than),
        },
    }
}

fn retention(data_dir: &Path, older_than_secs: i64) -> Result<ExitCode> {
    let index = EventIndex::open_existing(&data_dir.join("index"))?;
    let cutoff = Timestamp::now().plus_secs(-older_than_secs);
    let report = logwarden::store::retention::apply(&index, cutoff, pipeline::INDEX_HEAP)?;
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    println!(
        "deleted {} events before {} ({} kept); index {:.1} MiB -> {:.1} MiB",
        report.deleted,
        report.cutoff,
        report.kept,
        mib(report.bytes_before),
        mib(report.bytes_after)
    );
    Ok(ExitCode::SUCCESS)
}

/// `retention --clickhouse`: drop ClickHouse's day partitions wholly older than the cutoff.
fn clickhouse_retention(
    url: &str,
    conn: &ClickHouseConn,
    older_than_secs: i64,
) -> Result<ExitCode> {
    let mut sink = clickhouse_sink::SinkConfig::new(url, String::new())?;
    conn.apply(&mut sink)?;
    let server = clickhouse_sink::probe(&sink, CLICKHOUSE_PROBE)?;
    let cutoff = Timestamp::now().plus_secs(-older_than_secs);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dropped = runtime.block_on(server.drop_days_before(cutoff.0.div_euclid(1_000_000)))?;
    match (dropped.first(), dropped.last()) {
        (Some(first), Some(last)) => println!(
            "dropped {} day partition(s) of {}.events before {cutoff} ({first} … {last})",
            dropped.len(),
            sink.database
        ),
        _ => println!(
            "nothing to drop: {}.events holds no whole day before {cutoff}",
            sink.database
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn generate_corpus(size: u64, out: &Path, seed: u64, split: bool) -> Result<ExitCode> {
    let layout = if split {
        logwarden::demo::Layout::Split
    } else {
        logwarden::demo::Layout::Compose
    };
    let started = std::time::Instant::now();
    let stats = logwarden::demo::generate_to(out, size, seed, layout)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {} lines, {} bytes to {} in {:.1} s (seed {seed})",
        stats.lines,
        stats.bytes,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn rules_check(patterns: Option<&Path>, runbook: Option<&Path>) -> Result<ExitCode> {
    let rules = pack::rules_from(patterns)?;
    let runbook = pack::runbook_from(runbook).with_context(|| {
        format!(
            "reading runbook {}",
            runbook.map_or_else(String::new, |p| p.display().to_string())
        )
    })?;
    let report = check::check(&rules, &runbook);
    print!("{}", report.render());
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn status(data_dir: &Path) -> Result<ExitCode> {
    let index = EventIndex::open_existing(&pipeline::index_dir(data_dir))?;
    let checkpoints = pipeline::stored_checkpoints(&index)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} events indexed in {}",
        index.num_docs()?,
        data_dir.display()
    )?;
    writeln!(
        out,
        "{:<16} {:<10} {:>12} {:>12} {:>10} {:>8}  {:<24} PATH",
        "FINGERPRINT", "SERVICE", "OFFSET", "SIZE", "LAG BYTES", "LAG S", "LAST EVENT"
    )?;
    for (fp, state) in &checkpoints.files {
        // The file at the path is this one only while its first line is the same; otherwise it
        // was rotated away and the sizes stored with the last commit are all there is.
        let here = logwarden::source::fingerprint::of_path(&state.path, false)
            .ok()
            .flatten()
            .is_some_and(|now| checkpoint::key(now) == *fp);
        let meta = std::fs::metadata(&state.path).ok().filter(|_| here);
        let size = meta
            .as_ref()
            .map_or(state.size, |m| m.len())
            .max(state.offset);
        let lag_bytes = size.saturating_sub(state.offset);
        // Seconds between the last indexed event and the file's last write, while bytes wait.
        let written = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        let lag_secs = match (state.last_event, written) {
            (Some(last), Some(written)) if lag_bytes > 0 => (written - last.as_secs()).max(0),
            _ => 0,
        };
        let path = if here {
            state.path.display().to_string()
        } else {
            format!("{} (rotated away)", state.path.display())
        };
        writeln!(
            out,
            "{:<16} {:<10} {:>12} {:>12} {:>10} {:>8}  {:<24} {}",
            fp,
            state.service,
            state.offset,
            size,
            lag_bytes,
            lag_secs,
            state.last_event.map_or("-".into(), |t| t.rfc3339()),
            path
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
