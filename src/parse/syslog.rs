//! Syslog-shaped lines: BSD (RFC 3164), RFC 3339-stamped and RFC 5424 syslog, kernel lines, the
//! PostgreSQL lines syslog carries, and Redis's own log format.
//!
//! Syslog: `Mon dd hh:mm:ss host prog[pid]: msg` (the year from the reference `now`), or an ISO/RFC
//! 3339 stamp with or without a host (Heroku's logplex drain has none), optionally after a `<PRI>`.
//! Gives `host`, `program`, `pid` fields and the message after the tag; kernel lines
//! (`kernel: [123.456] …`) add `kernel_time`. PostgreSQL lines inside syslog (`postgres[10808]: [1-1]
//! …`, logplex `app[postgres.4882]: [GREEN] [15-1] …`) join their continuation lines by the syslog
//! sequence numbers (`[1-2]` continues `[1-1]` of the same pid) and read the level, message and
//! PostgreSQL fields from the body after the prefix. Redis: `1:M 28 Nov 2026 14:00:03.123 * msg`
//! (`.` debug, `-` verbose, `*` notice, `#` warning) with `pid` and `role`. This module must not
//! guess formats: `sniff.rs` decides which reader a file gets.

use memchr::memmem;
use serde_json::Value;

use crate::event::{Level, Timestamp};
use crate::parse::plain::{self, first_line};
use crate::parse::timestamp;
use crate::parse::{EntryFormat, Parsed};
use crate::parse::{pg_prefix, postgres};

/// The syslog reader; `now` gives BSD dates their year.
#[derive(Debug, Clone)]
pub struct Syslog {
    pub now: Timestamp,
}

/// A syslog line taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<'a> {
    pub ts: Timestamp,
    pub pri: Option<u8>,
    pub host: Option<&'a str>,
    pub program: Option<&'a str>,
    pub pid: Option<&'a str>,
    /// PostgreSQL's syslog sequence numbers `[n-m]`: message n, line m.
    pub seq: Option<(u64, u64)>,
    /// The text after the tag (and after the sequence numbers, if any).
    pub body: &'a str,
}

/// Read the syslog header of a line; `None` when the line does not start with one.
pub fn header(line: &str, now: Timestamp) -> Option<Header<'_>> {
    let mut rest = line;
    let mut pri = None;
    if let Some(after) = rest.strip_prefix('<') {
        let end = after.find('>')?;
        pri = after[..end].parse::<u8>().ok();
        rest = &after[end + 1..];
        if let Some(r) = rest.strip_prefix("1 ") {
            return rfc5424(r, pri);
        }
    }
    let (ts, n) = timestamp::parse_iso(rest).or_else(|| timestamp::parse_bsd(rest, now))?;
    rest = rest[n..].trim_start_matches(' ');
    let (tok1, after1) = split_token(rest);
    let (host, tag, after_tag) = if is_tag(tok1) {
        (None, Some(tok1), after1)
    } else if !is_host(tok1) {
        (None, None, rest)
    } else {
        let (tok2, after2) = split_token(after1);
        if is_tag(tok2) {
            (Some(tok1), Some(tok2), after2)
        } else {
            (Some(tok1), None, after1)
        }
    };
    let (program, pid) = match tag {
        Some(t) => split_tag(t),
        None => (None, None),
    };
    let (seq, body) = sequence(after_tag);
    Some(Header {
        ts,
        pri,
        host: host.filter(|h| !h.is_empty()),
        program,
        pid,
        seq,
        body,
    })
}

/// RFC 5424 after `<PRI>1 `: `TIMESTAMP HOST APP PROCID MSGID SD MSG`.
fn rfc5424(s: &str, pri: Option<u8>) -> Option<Header<'_>> {
    let (ts_tok, rest) = split_token(s);
    let (ts, _) = timestamp::parse_iso(ts_tok)?;
    let (host, rest) = split_token(rest);
    let (app, rest) = split_token(rest);
    let (procid, rest) = split_token(rest);
    let (_msgid, rest) = split_token(rest);
    let body = if rest.starts_with('[') {
        // Structured data: skip bracketed elements (quotes may hold `]`).
        let mut in_quotes = false;
        let mut depth = 0;
        let mut end = rest.len();
        let mut prev = ' ';
        for (i, c) in rest.char_indices() {
            match c {
                '"' if prev != '\\' => in_quotes = !in_quotes,
                '[' if !in_quotes => depth += 1,
                ']' if !in_quotes => {
                    depth -= 1;
                    if depth == 0 && !rest[i + 1..].starts_with('[') {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
            prev = c;
        }
        rest[end..].trim_start()
    } else {
        rest.strip_prefix("- ").unwrap_or(rest)
    };
    let nil = |v: &'_ str| v != "-";
    Some(Header {
        ts,
        pri,
        host: Some(host).filter(|h| nil(h)),
        program: Some(app).filter(|a| nil(a)),
        pid: Some(procid).filter(|p| nil(p)),
        seq: None,
        body: body.strip_prefix('\u{feff}').unwrap_or(body),
    })
}

/// The next space-separated token and the text after its separator.
fn split_token(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], s[i + 1..].trim_start_matches(' ')),
        None => (s, ""),
    }
}

/// A host name or address (not a bracketed pid, not PostgreSQL's `user@db`).
fn is_host(tok: &str) -> bool {
    tok.starts_with(|c: char| c.is_ascii_alphanumeric())
        && tok
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
}

/// `prog:`, `prog[pid]:`, `prog[pid]` (logplex), `sshd(pam_unix)[1]:`.
fn is_tag(tok: &str) -> bool {
    if tok.len() < 2 || !tok.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return false;
    }
    let t = tok.strip_suffix(':').unwrap_or(tok);
    if pg_prefix::is_keyword(t) {
        return false;
    }
    let bracketed = t.ends_with(']') && t.find('[').is_some_and(|i| i > 0);
    bracketed || (tok.ends_with(':') && !t.is_empty() && !t.contains(':'))
}

fn split_tag(tag: &str) -> (Option<&str>, Option<&str>) {
    let t = tag.strip_suffix(':').unwrap_or(tag);
    match t.find('[') {
        Some(i) if t.ends_with(']') => (Some(&t[..i]), Some(&t[i + 1..t.len() - 1])),
        _ => (Some(t), None),
    }
}

/// Optional `[COLOR] ` (logplex) then `[n-m]`: the sequence numbers and the body after them.
fn sequence(body: &str) -> (Option<(u64, u64)>, &str) {
    let mut rest = body;
    if let Some(after) = rest.strip_prefix('[')
        && let Some(end) = after.find("] ")
    {
        let word = &after[..end];
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase()) {
            rest = &after[end + 2..];
        }
    }
    let Some(after) = rest.strip_prefix('[') else {
        return (None, body);
    };
    let Some(end) = after.find(']') else {
        return (None, body);
    };
    let Some((n, m)) = after[..end].split_once('-') else {
        return (None, body);
    };
    match (n.parse::<u64>(), m.parse::<u64>()) {
        (Ok(n), Ok(m)) => {
            let text = &after[end + 1..];
            (Some((n, m)), text.strip_prefix(' ').unwrap_or(text))
        }
        _ => (None, body),
    }
}

impl EntryFormat for Syslog {
    fn continues(&self, entry: &str, line: &str) -> bool {
        if let Some(h) = header(line, self.now) {
            let Some((n, m)) = h.seq.filter(|(_, m)| *m > 1) else {
                return false;
            };
            return header(first_line(entry), self.now)
                .is_some_and(|e| e.pid == h.pid && e.seq.is_some_and(|(en, _)| en == n) && m > 1);
        }
        line.starts_with([' ', '\t'])
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let mut lines = entry.split('\n');
        let first = lines.next().unwrap_or("");
        let h = header(first, self.now).ok_or("no syslog header")?;
        let mut parsed = Parsed {
            ts: Some(h.ts),
            ..Parsed::default()
        };
        let f = &mut parsed.fields;
        if let Some(host) = h.host {
            f.insert("host".into(), Value::from(host));
        }
        if let Some(program) = h.program {
            f.insert("program".into(), Value::from(program));
        }
        if let Some(pid) = h.pid {
            let v = pid
                .parse::<u64>()
                .map_or_else(|_| Value::from(pid), Value::from);
            f.insert("pid".into(), v);
        }
        let mut body = h.body;
        if h.program == Some("kernel")
            && let Some((secs, rest)) = kernel_time(body)
        {
            if let Some(n) = serde_json::Number::from_f64(secs) {
                parsed.fields.insert("kernel_time".into(), Value::Number(n));
            }
            body = rest;
        }
        let postgres = h.seq.is_some() || h.program.is_some_and(|p| p.starts_with("postgres"));
        let mut pg = None;
        if postgres && pg_severity_at(body).is_some() {
            // The entry's PostgreSQL text: this body, then each continuation's body.
            let mut text = body.to_string();
            for line in lines.clone() {
                text.push('\n');
                match header(line, self.now) {
                    Some(c) => text.push_str(&pg_continuation(c.body)),
                    None => text.push_str(line),
                }
            }
            pg = pg_body(&text);
        }
        match pg {
            Some(pg) => {
                parsed.level = pg.level;
                parsed.message = pg.message;
                parsed.fields.extend(pg.fields);
            }
            None => {
                let text = plain::parse_text(body, self.now);
                parsed.level = text.level.or(h.pri.map(severity_level));
                parsed.message = body.to_string();
                for line in lines {
                    parsed.message.push('\n');
                    match header(line, self.now) {
                        Some(c) => parsed.message.push_str(c.body),
                        None => parsed.message.push_str(line),
                    }
                }
            }
        }
        Ok(parsed)
    }
}

/// `[123456.789012] rest` at the start of a kernel message.
fn kernel_time(body: &str) -> Option<(f64, &str)> {
    let inner = body.strip_prefix('[')?;
    let end = inner.find(']')?;
    let secs = inner[..end].trim().parse::<f64>().ok()?;
    Some((secs, inner[end + 1..].trim_start()))
}

/// Syslog severity (PRI mod 8) → level.
fn severity_level(pri: u8) -> Level {
    match pri % 8 {
        0 => Level::Panic,
        1 | 2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 => Level::Notice,
        6 => Level::Info,
        _ => Level::Debug,
    }
}

/// Where a PostgreSQL severity word (`LOG:  `, `FATAL:  `, `DETAIL:  `) starts in `text`.
pub fn pg_severity_at(text: &str) -> Option<(usize, &str)> {
    static COLON_SPACES: std::sync::LazyLock<memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memmem::Finder::new(b":  "));
    for colon in COLON_SPACES.find_iter(text.as_bytes()) {
        let before = &text[..colon];
        // Bytes, not chars: every byte after the last non-[A-Z0-9] one is ASCII, so `i + 1` is
        // a char boundary even when that byte ends a multi-byte character.
        let start = before
            .bytes()
            .rposition(|b| !b.is_ascii_uppercase() && !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if pg_prefix::is_keyword(word) {
            return Some((start, word));
        }
    }
    None
}

/// The PostgreSQL part of a continuation line: from its severity word on, else the text itself
/// with rsyslog's `#011` escape turned back into the tab it stands for.
fn pg_continuation(body: &str) -> std::borrow::Cow<'_, str> {
    match pg_severity_at(body) {
        Some((start, _)) => std::borrow::Cow::Borrowed(&body[start..]),
        None => match body.strip_prefix("#011") {
            Some(rest) => std::borrow::Cow::Owned(format!("\t{rest}")),
            None => std::borrow::Cow::Borrowed(body),
        },
    }
}

/// Read a PostgreSQL entry found inside another format (syslog, a Cloud Logging `textPayload`):
/// the prefix's `key=value` pairs (`db`, `user`, `app`, `client`, `host`), a leading `[pid]`,
/// logplex's `sql_error_code = …`, then everything from the severity word on (the first line's
/// rest and the continuation lines that follow it, prefixes already removed) through
/// [`postgres::parse_body`]: level, message, `duration_ms`, `sqlstate`, `detail`, `statement`, ….
/// `None` when the first line has no severity word.
pub fn pg_body(text: &str) -> Option<Parsed> {
    let first = first_line(text);
    let (start, _) = pg_severity_at(first)?;
    let mut parsed = Parsed::default();
    let prefix = &text[..start];
    if let Some(pid) = prefix
        .strip_prefix('[')
        .and_then(|p| p.split_once(']'))
        .and_then(|(p, _)| p.parse::<u64>().ok())
    {
        parsed.fields.insert("pid".into(), Value::from(pid));
    }
    for pair in prefix.split([',', ' ']) {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let key = match k {
            "db" | "database" => "db",
            "user" | "usr" => "user",
            "app" | "appli" | "application" => "app",
            "client" | "host" => "client",
            _ => continue,
        };
        if !v.is_empty() {
            parsed.fields.insert(key.into(), Value::from(v));
        }
    }
    // logplex writes `sql_error_code = 00000 LOG:`.
    if let Some(i) = prefix.find("sql_error_code = ") {
        let code: String = prefix[i + 17..].chars().take(5).collect();
        parsed.fields.insert("sqlstate".into(), Value::from(code));
    }
    postgres::parse_body(&text[start..], &mut parsed);
    Some(parsed)
}

/// Redis's own log format; `now` gives the year to Redis < 6 dates.
#[derive(Debug, Clone)]
pub struct Redis {
    pub now: Timestamp,
}

/// A Redis log line: pid, role, time, level and message.
struct RedisLine<'a> {
    pid: u64,
    role: Option<&'static str>,
    ts: Timestamp,
    level: Level,
    message: &'a str,
}

fn redis_line(line: &str, now: Timestamp) -> Option<RedisLine<'_>> {
    let (pid, role, rest) = if let Some(after) = line.strip_prefix('[') {
        let (pid, rest) = after.split_once("] ")?;
        (pid.parse::<u64>().ok()?, None, rest)
    } else {
        let (pid, rest) = line.split_once(':')?;
        let pid = pid.parse::<u64>().ok()?;
        // Lines written from a signal handler: `1:signal-handler (1764338295) Received SIGTERM …`,
        // the time in epoch seconds, always at warning level.
        if let Some(after) = rest.strip_prefix("signal-handler (") {
            let (epoch, message) = after.split_once(") ")?;
            return Some(RedisLine {
                pid,
                role: Some("signal-handler"),
                ts: Timestamp::from_secs(epoch.parse::<i64>().ok()?),
                level: Level::Warn,
                message,
            });
        }
        let mut chars = rest.chars();
        let role = match chars.next()? {
            'M' => "master",
            'S' => "replica",
            'C' => "child",
            'X' => "sentinel",
            _ => return None,
        };
        (pid, Some(role), rest.get(1..)?.strip_prefix(' ')?)
    };
    let (ts, n) = timestamp::parse_day_month(rest, now)?;
    let rest = rest[n..].strip_prefix(' ')?;
    let mut chars = rest.chars();
    let level = match chars.next()? {
        '.' => Level::Debug,
        '-' => Level::Debug,
        '*' => Level::Info,
        '#' => Level::Warn,
        _ => return None,
    };
    let message = chars.as_str().strip_prefix(' ').unwrap_or(chars.as_str());
    Some(RedisLine {
        pid,
        role,
        ts,
        level,
        message,
    })
}

/// True for a line in Redis's log format.
pub fn is_redis_line(line: &str) -> bool {
    // Any leap year will do as the reference: only the shape matters here.
    redis_line(line, Timestamp(1_735_603_200_000_000)).is_some()
}

impl EntryFormat for Redis {
    fn continues(&self, _entry: &str, line: &str) -> bool {
        // The ASCII-art banner of older versions: indented or blank lines under a real line.
        (line.starts_with([' ', '\t']) || line.trim().is_empty())
            && redis_line(line, self.now).is_none()
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let first = first_line(entry);
        let Some(r) = redis_line(first, self.now) else {
            if entry.trim().is_empty() {
                return Ok(Parsed::default());
            }
            return Err("not a redis log line".into());
        };
        let mut parsed = Parsed {
            ts: Some(r.ts),
            level: Some(r.level),
            message: r.message.to_string(),
            ..Parsed::default()
        };
        parsed.message.push_str(&entry[first.len()..]);
        parsed.fields.insert("pid".into(), Value::from(r.pid));
        if let Some(role) = r.role {
            parsed.fields.insert("role".into(), Value::from(role));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_jiff("2026-11-28T17:00:00Z".parse().unwrap())
    }
    fn at(s: &str) -> Timestamp {
        Timestamp::from_jiff(s.parse().unwrap())
    }
    fn syslog() -> Syslog {
        Syslog { now: now() }
    }

    #[test]
    fn severity_search_survives_multibyte_text_before_a_colon() {
        assert_eq!(pg_severity_at("Größe:  x"), None);
        assert_eq!(pg_severity_at("ü FATAL:  x"), Some((3, "FATAL")));
        assert_eq!(pg_severity_at("éLOG:  x"), Some((2, "LOG")));
    }

    #[test]
    fn kernel_oom_killer_line() {
        let p = syslog()
            .parse("Nov 28 14:20:01 newsletter-host kernel: [123456.789012] Out of memory: Killed process 2345 (node) total-vm:2345678kB, anon-rss:1234567kB")
            .unwrap();
        assert_eq!(p.ts, Some(at("2026-11-28T14:20:01Z")));
        assert_eq!(p.fields["host"], "newsletter-host");
        assert_eq!(p.fields["program"], "kernel");
        assert_eq!(p.fields["kernel_time"], 123456.789012);
        assert!(p.message.starts_with("Out of memory: Killed process 2345"));
    }

    #[test]
    fn sshd_and_pam_tags() {
        let p = syslog()
            .parse("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186")
            .unwrap();
        assert_eq!(p.fields["program"], "sshd");
        assert_eq!(p.fields["pid"], 24200);
        assert_eq!(p.message, "Invalid user webmaster from 173.234.31.186");
        assert_eq!(p.ts, Some(at("2025-12-10T06:55:46Z")));
        let p = syslog()
            .parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0")
            .unwrap();
        assert_eq!(p.fields["program"], "sshd(pam_unix)");
        assert_eq!(p.fields["host"], "combo");
    }

    #[test]
    fn rfc3339_and_rfc5424() {
        let p = syslog()
            .parse("2026-11-28T14:00:04.5+01:00 web-1 nginx[12]: upstream timed out")
            .unwrap();
        assert_eq!(p.ts, Some(at("2026-11-28T13:00:04.5Z")));
        assert_eq!(p.fields["host"], "web-1");
        assert_eq!(p.message, "upstream timed out");
        let p = syslog()
            .parse("<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed")
            .unwrap();
        assert_eq!(p.level, Some(Level::Fatal));
        assert_eq!(p.fields["program"], "su");
        assert_eq!(p.message, "'su root' failed");
    }

    #[test]
    fn postgres_in_syslog_joins_on_sequence_numbers() {
        let s = syslog();
        let first = "Feb 11 13:15:39 test-pc postgres[10808]: [3-1] db=,user=,app=,client= LOG:  ending log output to stderr";
        let second = "Feb 11 13:15:39 test-pc postgres[10808]: [3-2] db=,user=,app=,client= HINT:  Future log output will go to log destination \"syslog\".";
        let other = "Feb 11 13:15:39 test-pc postgres[10808]: [4-1] db=,user=,app=,client= LOG:  x";
        assert!(s.continues(first, second));
        assert!(!s.continues(first, other));
        let p = s.parse(&format!("{first}\n{second}")).unwrap();
        assert_eq!(p.level, Some(Level::Info));
        assert_eq!(p.message, "ending log output to stderr");
        assert_eq!(
            p.fields["hint"],
            "Future log output will go to log destination \"syslog\"."
        );
        let p = s
            .parse("Feb 11 13:16:00 test-pc postgres[10900]: [5-1] db=bench,user=postgres,app=pgbench,client=[local] LOG:  duration: 12.345 ms  statement: END;")
            .unwrap();
        assert_eq!(p.fields["duration_ms"], 12.345);
        assert_eq!(p.fields["db"], "bench");
        assert_eq!(p.fields["user"], "postgres");
    }

    #[test]
    fn logplex_lines_have_no_host() {
        let s = syslog();
        let a = "2019-03-14T00:23:00+00:00 app[postgres.4849]: [GREEN] [19-1]  sql_error_code = 40P01 ERROR:  deadlock detected";
        let b = "2019-03-14T00:23:00+00:00 app[postgres.4849]: [GREEN] [19-3] \tProcess 4821 waits for ShareLock";
        let c = "2019-03-14T00:23:00+00:00 app[postgres.4821]: [GREEN] [19-2]  sql_error_code = 00000 CONTEXT:  x";
        assert!(s.continues(a, b));
        assert!(!s.continues(a, c));
        let p = s.parse(a).unwrap();
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.message, "deadlock detected");
        assert_eq!(p.fields["sqlstate"], "40P01");
        assert_eq!(p.fields["pid"], "postgres.4849");
        assert!(!p.fields.contains_key("host"));
        let h = header(
            "2021-09-07T04:01:27+00:00 d.af28 app[postgres.5925] [AQUA] [921320-2]         (",
            now(),
        )
        .unwrap();
        assert_eq!(h.host, Some("d.af28"));
        assert_eq!(h.seq, Some((921320, 2)));
    }

    #[test]
    fn redis_lines() {
        let r = Redis { now: now() };
        let p = r
            .parse("1:M 28 Nov 2026 14:50:01.123 # Background saving error")
            .unwrap();
        assert_eq!(p.level, Some(Level::Warn));
        assert_eq!(p.message, "Background saving error");
        assert_eq!(p.ts, Some(at("2026-11-28T14:50:01.123Z")));
        assert_eq!(p.fields["role"], "master");
        assert_eq!(p.fields["pid"], 1);
        let p = r
            .parse("1:M 28 Nov 2026 14:00:03.123 * 100 changes in 300 seconds. Saving...")
            .unwrap();
        assert_eq!(p.level, Some(Level::Info));
        let p = r
            .parse("1:signal-handler (1795887520) Received SIGTERM scheduling shutdown...")
            .unwrap();
        assert_eq!(p.level, Some(Level::Warn));
        assert_eq!(p.ts, Some(Timestamp::from_secs(1_795_887_520)));
        assert_eq!(p.message, "Received SIGTERM scheduling shutdown...");
        let p = r.parse("[4018] 14 Nov 07:07:00 . DB 0: 2 keys").unwrap();
        assert_eq!(p.level, Some(Level::Debug));
        assert!(r.parse("not redis").is_err());
        assert!(r.continues(
            "1:M 28 Nov 2026 14:00:03.123 * Running",
            "           _.-``__ ''-._"
        ));
    }
}
