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
    let req = query::Request {
        data_dir: args.data_dir,
        query: args.query.clone(),
        since: args.since,
        until: args.until,
        services: args.service,
        levels: at_least(&args.level),
        json: args.json,
        count: args.count,
        limit: (args.limit > 0).then_some(args.limit),
        color,
        now: Timestamp::now(),
    };
    let mut out = std::io::BufWriter::new(stdout.lock());
    match query::run(&req, &mut out) {
        Ok(outcome) => {
            if outcome.truncated {
                eprintln!(
                    "loggrep: showing the newest {} of {} matching events (use --limit N, --since or a narrower query)",
                    args.limit, outcome.matched
                );
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
