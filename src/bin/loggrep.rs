//! `loggrep`: search the logwarden event index.
//!
//! Flags become a [`query::Request`] here and go no further; exit codes are decided in one
//! place ([`main`]): 0 when something matched, 1 when nothing did, 2 on error. A closed stdout
//! (`loggrep … | head`) ends the run quietly.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use logwarden::event::{Level, Timestamp};
use logwarden::query;

/// Search the events logwarden indexed, in event-time order.
///
/// QUERY: bare words and "quoted phrases" match the raw event text as substrings (like
/// `grep -F`; all-lowercase text ignores case, any uppercase letter makes it case-sensitive);
/// `field:value` (service, level, message, flags, or any attribute path such as
/// `res.statusCode:503`, `queue:campaign-emails`); comparisons `duration_ms:>1000`,
/// `responseTime:>=2000`, `level:>=warn`; AND (implicit), OR, NOT or -term, parentheses.
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
    /// Print NDJSON (ts, service, level, message, raw, fields, flags, id)
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

/// Every level at least as severe as the least severe one given (none given: no filter).
fn at_least(given: &[Level]) -> Vec<Level> {
    let Some(min) = given.iter().copied().filter(|l| *l != Level::Unknown).min() else {
        return given.to_vec();
    };
    Level::ALL
        .into_iter()
        .filter(|l| *l != Level::Unknown && *l >= min)
        .collect()
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
    let stdout = std::io::stdout();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
        levels: at_least(&args.level),
        json: args.json || args.format == Some(Format::Json),
        count: args.count,
        limit: (args.limit > 0).then_some(args.limit),
        color,
        now: Timestamp::now(),
        around,
        view,
    };
    let mut out = std::io::BufWriter::new(stdout.lock());
    match query::run(&req, &mut out) {
        Ok(outcome) => {
            match outcome.cut {
                Some(query::Cut {
                    shown,
                    of,
                    what: query::CutWhat::Events,
                }) => eprintln!(
                    "loggrep: showing the newest {shown} of {of} matching events; use --limit 0 for all (or --since, a narrower query)"
                ),
                Some(query::Cut {
                    shown,
                    of,
                    what: query::CutWhat::Values,
                }) => eprintln!(
                    "loggrep: showing the top {shown} of {of} values; leave out --top for all"
                ),
                None => {}
            }
            if outcome.matched > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            // Drop what was buffered only after reporting; a flush error here changes nothing.
            let _ = out.flush();
            eprintln!("loggrep: {e}");
            if let Some(column) = e.column() {
                eprintln!("  {}", args.query);
                eprintln!("  {}^", " ".repeat(column.saturating_sub(1)));
            }
            ExitCode::from(2)
        }
    }
}
