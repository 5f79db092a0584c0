//! `auto`: choose a file's format from its first non-empty lines.
//!
//! Takes up to the first 20 non-empty lines (the parser buffers them) and gives a [`Format`]. Each
//! line is classified on its own, cheaply and without regexes (JSON by its first and last bytes, a
//! syslog header, a Redis header, a compose prefix, a csvlog record, a PostgreSQL severity word such
//! as `LOG:  `), and the most frequent class wins (ties go to the more specific format), so a few
//! stray lines (pg_ctl's messages inside a PostgreSQL log) do not change the decision. For PostgreSQL
//! stderr the `log_line_prefix` is detected from the same lines. This module only decides; it must
//! not parse entries.

use crate::event::Timestamp;
use crate::parse::Format;
use crate::parse::compose;
use crate::parse::multiline;
use crate::parse::parser::is_json_object_line;
use crate::parse::postgres;
use crate::parse::syslog;
use crate::parse::timestamp;

/// A line's class, in order of precedence on ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    PostgresJson,
    Pino,
    Compose,
    Syslog,
    Redis,
    PostgresCsv,
    Postgres,
    Plain,
}

/// Year reference for BSD dates while sniffing: any date of a leap year parses.
const SNIFF_NOW: Timestamp = Timestamp(1_735_603_200_000_000); // 2024-12-31

/// The format of a file whose first non-empty lines are `lines`.
pub fn sniff(lines: &[&str]) -> Format {
    let mut counts = [0usize; 8];
    let kinds = [
        Kind::PostgresJson,
        Kind::Pino,
        Kind::Compose,
        Kind::Syslog,
        Kind::Redis,
        Kind::PostgresCsv,
        Kind::Postgres,
        Kind::Plain,
    ];
    // Continuation-like lines (stack frames, `Error: …` reports) appear in any format: not evidence.
    let evidence = |l: &&&str| {
        !l.trim().is_empty() && !l.starts_with([' ', '\t']) && !multiline::is_error_start(l)
    };
    for line in lines.iter().filter(evidence) {
        let k = classify(line);
        if let Some(i) = kinds.iter().position(|x| *x == k) {
            counts[i] += 1;
        }
    }
    let mut best = Kind::Plain;
    let mut best_count = 0;
    for (k, c) in kinds.iter().zip(counts) {
        if c > best_count {
            best = *k;
            best_count = c;
        }
    }
    match best {
        Kind::PostgresJson => Format::PostgresJson,
        Kind::Pino => Format::Pino,
        Kind::Compose => Format::Compose,
        Kind::Syslog => Format::Syslog,
        Kind::Redis => Format::Redis,
        Kind::PostgresCsv => Format::PostgresCsv,
        Kind::Postgres => match detect_pg_prefix(lines) {
            Some(prefix) => Format::Postgres {
                prefix: Some(prefix),
            },
            None => Format::Plain,
        },
        Kind::Plain => Format::Plain,
    }
}

/// PostgreSQL stderr with the `log_line_prefix` that fits `lines` (`None` if none fits).
pub fn postgres_format(lines: &[&str]) -> Format {
    Format::Postgres {
        prefix: detect_pg_prefix(lines),
    }
}

fn detect_pg_prefix(lines: &[&str]) -> Option<String> {
    postgres::detect_prefix(lines)
}

fn classify(line: &str) -> Kind {
    let t = line.trim();
    if t.starts_with('{') {
        let pg = t.contains("\"error_severity\"") && !t.contains("\"record\":{");
        if pg {
            return Kind::PostgresJson;
        }
        if is_json_object_line(t) || t.contains("\":") {
            return Kind::Pino;
        }
    }
    if compose::split_prefix(line).is_some() {
        return Kind::Compose;
    }
    if syslog::header(line, SNIFF_NOW).is_some_and(|h| h.program.is_some()) {
        return Kind::Syslog;
    }
    if syslog::is_redis_line(line) {
        return Kind::Redis;
    }
    if let Some((_, n)) = timestamp::parse_iso(line)
        && line[n..].starts_with(',')
        && line.matches(',').count() >= 10
    {
        return Kind::PostgresCsv;
    }
    if syslog::pg_severity_at(line).is_some() {
        return Kind::Postgres;
    }
    Kind::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_line() {
        assert_eq!(
            sniff(&[r#"{"level":30,"time":1796220000123,"msg":"request completed"}"#]),
            Format::Pino
        );
        assert_eq!(
            sniff(&[
                r#"{"timestamp":"2024-06-27 00:00:07.369 CEST","pid":58151,"error_severity":"LOG","message":"x"}"#
            ]),
            Format::PostgresJson
        );
        assert_eq!(
            sniff(&["Nov 28 14:00:04 newsletter-host kernel: [123456.789012] eth0: link up"]),
            Format::Syslog
        );
        assert_eq!(
            sniff(&[
                "2019-03-14T00:22:56+00:00 app[postgres.4882]: [GREEN] [15-1]  sql_error_code = 00000 LOG:  x"
            ]),
            Format::Syslog
        );
        assert_eq!(
            sniff(&["1:M 28 Nov 2026 14:00:03.123 * 100 changes in 300 seconds. Saving..."]),
            Format::Redis
        );
        assert_eq!(
            sniff(&["newsletter-app  | {\"level\":30}"]),
            Format::Compose
        );
        assert_eq!(
            sniff(&[
                r#"2021-01-22 10:03:22.785 CET,"aaaa","aaaa",1486,"127.0.0.1:52306",6009c305.5ce,32878,"SELECT",2021-01-21 19:08:05 CET,14/10903,0,LOG,00000,"duration: 26.120 ms""#
            ]),
            Format::PostgresCsv
        );
        assert!(matches!(
            sniff(&["2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time"]),
            Format::Postgres { .. }
        ));
        assert_eq!(
            sniff(&["2015-07-29 17:41:44,747 - INFO  [QuorumPeer] - Notification time out: 3200"]),
            Format::Plain
        );
        assert_eq!(
            sniff(&["[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok"]),
            Format::Plain
        );
    }

    #[test]
    fn the_majority_wins_over_stray_lines() {
        let lines = [
            "2025-01-21 18:32:48.288 CET [77898] LOG:  invalid value",
            "2025-01-21 18:32:48.288 CET [77898] FATAL:  configuration file contains errors",
            "pg_ctl: could not start server",
            "Examine the log output.",
            "2025-01-21 18:37:49.288 CET [77899] LOG:  starting PostgreSQL 17",
        ];
        assert!(matches!(sniff(&lines), Format::Postgres { .. }));
    }
}
