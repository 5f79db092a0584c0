//! `loggrep`: search the logwarden event index.
//!
//! Flags become a [`query::Request`] here and go no further; exit codes are decided in one
//! place ([`main`]): 0 when something matched, 1 when nothing did, 2 on error. A closed stdout
//! (`loggrep … | head`) ends the run quietly. The question is answered by a running agent when
//! one serves the data dir (`query::remote`; the same bytes, faster), else from the index files;
//! with `--backend clickhouse://…` by the ClickHouse database the agents write to
//! (`query::clickhouse`; the same bytes again).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, ValueEnum};

use logwarden::event::{Level, Timestamp};
use logwarden::query;
use logwarden::query::remote::{self, RemoteError};

/// Search the events logwarden indexed, in event-time order.
///
/// QUERY: bare words and "quoted phrases" match the raw event text as substrings (like
/// `grep -F`; all-lowercase text ignores case, any uppercase letter makes it case-sensitive);
/// `/regex/` matches each line of the raw event like `rg` (same smart case); `stem*` a token
/// starting with `stem`; `field:value` (service, level, host, source, rule, class, incident,
/// message, flags, or any attribute path such as `res.statusCode:503`, `queue:campaign-emails`);
/// comparisons `duration_ms:>1000`, `responseTime:>=2000`, `level:>=warn`; AND (implicit), OR,
/// NOT or -term, parentheses.
#[derive(Parser, Debug)]
#[command(name = "loggrep", version)]
struct Args {
    /// The query (empty: every event, narrowed by the flags)
    #[arg(default_value = "")]
    query: String,
    /// Data directory (holds index/)
    #[arg(long, env = "LOGWARDEN_DATA", default_value = "./.logwarden")]
    data_dir: PathBuf,
    /// Events at or after T: a duration back from now (2h, 30m, 1d), RFC 3339, or `2026-11-28 14:00` (UTC)
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Events before T (same forms as --since)
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Only this service (repeatable: any of them)
    #[arg(long, value_name = "S")]
    service: Vec<String>,
    /// This level and more severe: `error` includes fatal and panic (as `level:>=error` in the
    /// query; use `level:error` there for exactly one level). Repeated: the least severe counts
    #[arg(long, value_name = "L", value_parser = parse_level)]
    level: Vec<Level>,
    /// Print NDJSON (ts, service, level, message, raw, fields, flags, rules, classes, id)
    #[arg(long)]
    json: bool,
    /// Print only the number of matching events
    #[arg(long)]
    count: bool,
    /// Print at most N events: the newest N, in time order (0: no limit)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    limit: usize,
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,

    // Time window, order, output shape and tallies (issue 6); they become `query::View`.
    /// Events within --window of T (from T − W to T + W); T takes the forms of --since
    #[arg(long, value_name = "T", conflicts_with_all = ["since", "until"])]
    around: Option<String>,
    /// Half-width of the --around window (default 5m)
    #[arg(long, value_name = "W", requires = "around")]
    window: Option<String>,
    /// Print newest first (still the newest --limit events)
    #[arg(long)]
    reverse: bool,
    /// Print these columns, comma-separated: ts, service, level, message, raw, id, flags, host,
    /// or any JSON attribute path (req.url); as text they are space-separated, `-` when missing
    #[arg(long, value_name = "A,B,…", value_delimiter = ',')]
    fields: Vec<String>,
    /// Output format: text, csv (RFC 4180, with a header row), json (NDJSON, as --json)
    #[arg(long, value_enum, conflicts_with = "json")]
    format: Option<Format>,
    /// Print N events after each hit, from the same source file (as grep -A)
    #[arg(short = 'A', long, value_name = "N")]
    after_context: Option<usize>,
    /// Print N events before each hit, from the same source file (as grep -B)
    #[arg(short = 'B', long, value_name = "N")]
    before_context: Option<usize>,
    /// Print N events before and after each hit, `--` between groups (as grep -C)
    #[arg(short = 'C', long, value_name = "N")]
    context: Option<usize>,
    /// Print the number of matches per value of FIELD (service, level, host, any JSON path), most
    /// frequent first
    #[arg(long, value_name = "FIELD", conflicts_with_all = ["count", "histogram"])]
    count_by: Option<String>,
    /// With --count-by: only the N most frequent values (0: all)
    #[arg(long, value_name = "N", requires = "count_by")]
    top: Option<usize>,
    /// Draw the number of matches per time bucket of width W (1m, 1h) as a bar chart
    #[arg(long, value_name = "W", conflicts_with = "count")]
    histogram: Option<String>,
    #[command(flatten)]
    forensic: Forensic,
    #[command(flatten)]
    agent: Agent,
    #[command(flatten)]
    backend: Backend,
}

/// Asking the ClickHouse database every agent writes to (issue 8) instead of a local index.
#[derive(clap::Args, Debug)]
struct Backend {
    /// Ask the ClickHouse database at URL (clickhouse://HOST:PORT/DB or http://HOST:PORT/DB, the
    /// port defaulting to 8123) instead of the index files or an agent (--data-dir and --server
    /// are then not used): same query language, same output
    #[arg(long, value_name = "URL", env = "LOGWARDEN_BACKEND")]
    backend: Option<String>,
    /// With --backend: the ClickHouse user
    #[arg(long, value_name = "USER", requires = "backend")]
    clickhouse_user: Option<String>,
    /// With --backend: a file holding the ClickHouse user's password
    #[arg(long, value_name = "FILE", requires = "backend")]
    clickhouse_password_file: Option<PathBuf>,
}

impl Backend {
    fn open(&self) -> Result<Option<query::clickhouse::Backend>, String> {
        let Some(url) = &self.backend else {
            return Ok(None);
        };
        let password = match &self.clickhouse_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--clickhouse-password-file {}: {e}", path.display()))?;
                Some(text.trim_end_matches(['\n', '\r']).to_string())
            }
            None => None,
        };
        query::clickhouse::Backend::parse(url, self.clickhouse_user.clone(), password)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Asking a running agent (`logwarden run`) instead of reading the index files.
#[derive(clap::Args, Debug)]
struct Agent {
    /// Ask the agent at URL (`http://127.0.0.1:7878`) about its data; an agent that cannot be
    /// asked is an error. Without it, loggrep asks the agent that serves --data-dir when one
    /// runs (it writes `serve.addr` there) and reads the index itself otherwise. --incident and
    /// --follow always read the index here
    #[arg(
        long,
        value_name = "URL",
        env = "LOGWARDEN_SERVER",
        conflicts_with = "no_server"
    )]
    server: Option<String>,
    /// Read the index files here, never asking a running agent
    #[arg(long)]
    no_server: bool,
    /// The agent's API token (as its --token-file)
    #[arg(long, value_name = "FILE", env = "LOGWARDEN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

/// Why loggrep stopped: one message (and the query column it points at) from either side.
struct Failure {
    message: String,
    column: Option<usize>,
    broken_pipe: bool,
}

impl From<query::QueryError> for Failure {
    fn from(e: query::QueryError) -> Failure {
        Failure {
            message: e.to_string(),
            column: e.column(),
            broken_pipe: e.is_broken_pipe(),
        }
    }
}

impl From<RemoteError> for Failure {
    fn from(e: RemoteError) -> Failure {
        Failure {
            message: e.to_string(),
            column: e.column(),
            broken_pipe: e.is_broken_pipe(),
        }
    }
}

/// Answer `req`: from the agent `--server` names or the data dir advertises, else from the index.
fn answer(
    agent: &Agent,
    req: &query::Request,
    out: &mut dyn Write,
) -> Result<query::Outcome, Failure> {
    let asked = if agent.no_server {
        None
    } else if let Some(url) = &agent.server {
        Some((url.clone(), true))
    } else {
        remote::discover(&req.data_dir).map(|url| (url, false))
    };
    let question = remote::Question::of(req);
    let (Some((url, named)), Some(mut question)) = (asked, question) else {
        return Ok(query::run(req, out)?);
    };
    let token = match &agent.token_file {
        Some(path) => Some(read_token(path).map_err(|message| Failure {
            message,
            column: None,
            broken_pipe: false,
        })?),
        None => None,
    };
    if !named {
        question.data_dir = Some(req.data_dir.clone());
    }
    match remote::ask(&url, token.as_deref(), &question, out) {
        Err(e) if !named && e.try_locally() => {
            // A stale address file, an agent without this route or wanting a token: the index
            // files answer the same question.
            tracing::info!("not asking the agent: {e}; reading the index files");
            Ok(query::run(req, out)?)
        }
        Ok(outcome) => {
            tracing::info!("answered by the agent at {url}");
            Ok(outcome)
        }
        Err(e) => Err(e.into()),
    }
}

fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("--token-file {}: holds no token", path.display()));
    }
    Ok(token.to_string())
}

/// Forensic flags (issue 6): one incident's timeline, its export, following the index.
#[derive(clap::Args, Debug)]
struct Forensic {
    /// Print incident ID (a unique prefix is enough) and the timeline of every service from
    /// --lead before it started to its resolution, its own events marked `>`
    #[arg(long, value_name = "ID", conflicts_with_all = ["since", "until", "count", "follow"])]
    incident: Option<String>,
    /// With --incident: how much of the timeline before the incident's first event (30s, 10m, 2h)
    #[arg(long, value_name = "DURATION", requires = "incident",
          value_parser = logwarden::detect::rules::parse_duration)]
    lead: Option<i64>,
    /// With --incident: write DIR/timeline.ndjson (every event of the timeline, as --json, with
    /// `marked`) and DIR/incident.json (the incident and its runbook procedure)
    #[arg(long, value_name = "DIR", requires = "incident")]
    export: Option<PathBuf>,
    /// Keep printing new matching events as `logwarden run` indexes them (Ctrl-C to stop); with
    /// --since, first the matches since then. Waits for an index that does not exist yet
    #[arg(long, short = 'f', conflicts_with_all = ["until", "count"])]
    follow: bool,
}

impl Forensic {
    fn incident(&self) -> Option<query::forensic::IncidentTimeline> {
        let id = self.incident.clone()?;
        Some(query::forensic::IncidentTimeline {
            id,
            lead_secs: self.lead.unwrap_or(query::forensic::DEFAULT_LEAD_SECS),
            export: self.export.clone(),
        })
    }

    fn follow(&self) -> Result<Option<query::follow::Follow>, String> {
        if !self.follow {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handler_stop = Arc::clone(&stop);
        ctrlc::set_handler(move || handler_stop.store(true, Ordering::SeqCst))
            .map_err(|e| format!("installing the Ctrl-C/SIGTERM handler: {e}"))?;
        Ok(Some(query::follow::Follow {
            stop,
            poll: query::follow::DEFAULT_POLL,
            note: |note| eprintln!("loggrep: {note}"),
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// `-A`/`-B` override `-C` for their side, as in grep; none given: no context.
fn context_lines(args: &Args) -> Option<query::context::ContextLines> {
    if args.after_context.is_none() && args.before_context.is_none() && args.context.is_none() {
        return None;
    }
    Some(query::context::ContextLines {
        before: args.before_context.or(args.context).unwrap_or(0),
        after: args.after_context.or(args.context).unwrap_or(0),
    })
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

fn main() -> ExitCode {
    let args = Args::parse();
    // loggrep's own log (which agent answered, why it was not asked) only when RUST_LOG asks.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let stdout = std::io::stdout();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let follow = match args.forensic.follow() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("loggrep: {e}");
            return ExitCode::from(2);
        }
    };
    let around = args.around.clone().map(|time| query::Around {
        time,
        window: args.window.clone().unwrap_or_else(|| "5m".to_string()),
    });
    let view = query::View {
        reverse: args.reverse,
        fields: args.fields.clone(),
        csv: args.format == Some(Format::Csv),
        context: context_lines(&args),
        count_by: args.count_by.clone(),
        top: args.top.filter(|n| *n > 0),
        histogram: args.histogram.clone(),
    };
    let req = query::Request {
        data_dir: args.data_dir,
        query: args.query.clone(),
        since: args.since,
        until: args.until,
        services: args.service,
        levels: query::at_least(&args.level),
        json: args.json || args.format == Some(Format::Json),
        count: args.count,
        limit: (args.limit > 0).then_some(args.limit),
        color,
        now: Timestamp::now(),
        incident: args.forensic.incident(),
        follow,
        around,
        view,
    };
    let backend = match args.backend.open() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("loggrep: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::BufWriter::new(stdout.lock());
    let answered = match &backend {
        Some(backend) => query::clickhouse::run(&req, backend, &mut out).map_err(Failure::from),
        None => answer(&args.agent, &req, &mut out),
    };
    match answered {
        Ok(outcome) => {
            if outcome.truncated && args.forensic.incident.is_some() {
                eprintln!(
                    "loggrep: showing the first {} of the timeline's {} events (--limit 0 for all of them, --export DIR to save them)",
                    args.limit, outcome.matched
                );
            }
            match outcome.cut {
                Some(query::Cut {
                    shown,
                    of: Some(of),
                    what: query::CutWhat::Events,
                }) => eprintln!(
                    "loggrep: showing the newest {shown} of {of} matching events; use --limit 0 for all (or --since, a narrower query)"
                ),
                Some(query::Cut {
                    shown,
                    of: None,
                    what: query::CutWhat::Events,
                }) => eprintln!(
                    "loggrep: showing the newest {shown} matching events; more match: use --limit 0 for all, --count for how many"
                ),
                Some(query::Cut {
                    shown,
                    of,
                    what: query::CutWhat::Values,
                }) => eprintln!(
                    "loggrep: showing the top {shown} of {} values; leave out --top for all",
                    of.unwrap_or(shown)
                ),
                None if outcome.truncated && args.forensic.incident.is_none() => eprintln!(
                    "loggrep: showing the newest {} matching events; use --limit 0 for all",
                    args.limit
                ),
                None => {}
            }
            if outcome.matched > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) if e.broken_pipe => ExitCode::SUCCESS,
        Err(e) => {
            // Drop what was buffered only after reporting; a flush error here changes nothing.
            let _ = out.flush();
            eprintln!("loggrep: {}", e.message);
            if let Some(column) = e.column {
                eprintln!("  {}", args.query);
                eprintln!("  {}^", " ".repeat(column.saturating_sub(1)));
            }
            ExitCode::from(2)
        }
    }
}
