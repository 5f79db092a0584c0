//! The exact text shapes of the stack's logs: pino JSON, PostgreSQL stderr, Redis and kernel syslog.
//!
//! Everything here is a pure function of its arguments (no randomness, no clock), so the baseline and
//! the episodes differ only in *what* they say, never in *how* a line of a file looks. Times are
//! rendered in UTC exactly as each program prints them.

use std::fmt::Write as _;

use jiff::tz::Offset;

use crate::event::Timestamp;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The user and database PostgreSQL prints for the app's sessions (`%u@%d`).
pub(super) const PG_SESSION: &str = "newsletter@newsletter";
/// PostgreSQL's postmaster (pid 1 in the container) and checkpointer.
pub(super) const PG_POSTMASTER: u32 = 1;
pub(super) const PG_CHECKPOINTER: u32 = 57;

/// A Node process of the stack: its pid and hostname as pino prints them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Host {
    pub pid: u32,
    pub name: &'static str,
}

pub(super) const APP: Host = Host {
    pid: 23,
    name: "newsletter-app-1",
};
pub(super) const WORKER: Host = Host {
    pid: 41,
    name: "newsletter-worker-1",
};

/// A JSON object written field by field, in the order given (pino's order: level, time, pid,
/// hostname, the bindings, msg last).
#[derive(Debug)]
pub(super) struct Json {
    buf: String,
}

impl Json {
    pub fn obj() -> Json {
        Json {
            buf: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        push_json_str(&mut self.buf, key);
        self.buf.push(':');
    }

    /// A string field.
    pub fn s(mut self, key: &str, value: &str) -> Json {
        self.key(key);
        push_json_str(&mut self.buf, value);
        self
    }

    /// An integer field.
    pub fn n(mut self, key: &str, value: i64) -> Json {
        self.key(key);
        let _ = write!(self.buf, "{value}");
        self
    }

    /// A number with a fixed count of decimals (`0.97`).
    pub fn f(mut self, key: &str, value: f64, decimals: usize) -> Json {
        self.key(key);
        let _ = write!(self.buf, "{value:.decimals$}");
        self
    }

    /// A nested object.
    pub fn o(mut self, key: &str, value: Json) -> Json {
        self.key(key);
        self.buf.push_str(&value.end());
        self
    }

    /// Already-rendered JSON (an array).
    pub fn raw(mut self, key: &str, json: &str) -> Json {
        self.key(key);
        self.buf.push_str(json);
        self
    }

    /// The pino message, last as pino writes it, closing the object.
    pub fn msg(self, msg: &str) -> String {
        self.s("msg", msg).end()
    }

    pub fn end(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

fn push_json_str(buf: &mut String, s: &str) {
    // serde_json's Display of a string value is its escaped JSON form and cannot fail.
    let _ = write!(buf, "{}", serde_json::Value::from(s));
}

/// The opening of a pino line: `{"level":30,"time":…,"pid":…,"hostname":"…"`.
pub(super) fn pino(level: u8, ts: Timestamp, host: Host) -> Json {
    Json::obj()
        .n("level", i64::from(level))
        .n("time", ts.as_millis())
        .n("pid", i64::from(host.pid))
        .s("hostname", host.name)
}

/// `{"method":…,"url":…}`
pub(super) fn req(method: &str, url: &str) -> Json {
    Json::obj().s("method", method).s("url", url)
}

/// `{"statusCode":…}`
pub(super) fn res(status: u16) -> Json {
    Json::obj().n("statusCode", i64::from(status))
}

struct Civil {
    year: i16,
    month: usize,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    millis: i16,
}

fn civil(ts: Timestamp) -> Civil {
    let dt = Offset::UTC.to_datetime(ts.to_jiff());
    Civil {
        year: dt.year(),
        month: usize::try_from(dt.month() - 1).unwrap_or(0),
        day: dt.day(),
        hour: dt.hour(),
        minute: dt.minute(),
        second: dt.second(),
        millis: dt.millisecond(),
    }
}

/// PostgreSQL's `%m`: `2026-11-28 14:00:01.123 UTC`.
pub(super) fn pg_time(ts: Timestamp) -> String {
    let c = civil(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        c.year,
        c.month + 1,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.millis
    )
}

/// One physical PostgreSQL stderr line under `log_line_prefix = '%m [%p] %q%u@%d '`: the session
/// part (`user@db `) only for backends (`%q` ends the prefix for background processes).
pub(super) fn pg(ts: Timestamp, pid: u32, session: bool, severity: &str, msg: &str) -> String {
    let who = if session {
        format!("{PG_SESSION} ")
    } else {
        String::new()
    };
    format!("{} [{pid}] {who}{severity}:  {msg}", pg_time(ts))
}

/// A multi-line PostgreSQL entry: the first line and its DETAIL/HINT/STATEMENT lines, each with
/// the prefix, as PostgreSQL writes them.
pub(super) fn pg_entry(ts: Timestamp, pid: u32, session: bool, parts: &[(&str, &str)]) -> String {
    parts
        .iter()
        .map(|(severity, msg)| pg(ts, pid, session, severity, msg))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Redis's own format: `1:M 28 Nov 2026 14:00:03.123 * msg` (`role` M/C/S, `mark` `.`, `-`, `*`, `#`).
pub(super) fn redis(ts: Timestamp, pid: u32, role: char, mark: char, msg: &str) -> String {
    let c = civil(ts);
    format!(
        "{pid}:{role} {:02} {} {} {:02}:{:02}:{:02}.{:03} {mark} {msg}",
        c.day, MONTHS[c.month], c.year, c.hour, c.minute, c.second, c.millis
    )
}

/// A kernel line as rsyslog writes kern.log: `Nov 28 14:00:04 newsletter-host kernel: [123456.789012] msg`;
/// `uptime` is the time since boot.
pub(super) fn kern(ts: Timestamp, uptime: Timestamp, msg: &str) -> String {
    let c = civil(ts);
    let up = uptime.as_micros().max(0);
    format!(
        "{} {:>2} {:02}:{:02}:{:02} newsletter-host kernel: [{:>5}.{:06}] {msg}",
        MONTHS[c.month],
        c.day,
        c.hour,
        c.minute,
        c.second,
        up / 1_000_000,
        up % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28 14:00:01.123 UTC
    const TS: Timestamp = Timestamp(1_795_874_401_123_456);

    #[test]
    fn pino_lines_have_the_stack_shape_and_order() {
        let line = pino(30, TS, APP)
            .s("reqId", "req-1a2b")
            .o("req", req("GET", "/api/campaigns"))
            .o("res", res(200))
            .n("responseTime", 42)
            .msg("request completed");
        assert_eq!(
            line,
            r#"{"level":30,"time":1795874401123,"pid":23,"hostname":"newsletter-app-1","reqId":"req-1a2b","req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":42,"msg":"request completed"}"#
        );
        let escaped = pino(50, TS, WORKER).msg("a \"quoted\"\nline");
        let v: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(v["msg"], "a \"quoted\"\nline");
    }

    #[test]
    fn postgres_lines_follow_the_prefix_with_and_without_session() {
        assert_eq!(
            pg(
                TS,
                4242,
                true,
                "LOG",
                "duration: 12.345 ms  statement: SELECT 1"
            ),
            "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT 1"
        );
        assert_eq!(
            pg(TS, 57, false, "LOG", "checkpoint starting: time"),
            "2026-11-28 14:00:01.123 UTC [57] LOG:  checkpoint starting: time"
        );
        let entry = pg_entry(TS, 7, true, &[("ERROR", "boom"), ("STATEMENT", "SELECT 1")]);
        assert_eq!(entry.lines().count(), 2);
        assert!(
            entry
                .lines()
                .all(|l| l.starts_with("2026-11-28 14:00:01.123 UTC [7] "))
        );
    }

    #[test]
    fn redis_and_kernel_lines_print_their_own_clocks() {
        assert_eq!(
            redis(TS, 1, 'M', '*', "Ready to accept connections tcp"),
            "1:M 28 Nov 2026 14:00:01.123 * Ready to accept connections tcp"
        );
        assert_eq!(
            kern(TS, Timestamp(123_456_789_012), "eth0: link up"),
            "Nov 28 14:00:01 newsletter-host kernel: [123456.789012] eth0: link up"
        );
        let early = Timestamp(TS.0 - 27 * 86_400_000_000);
        assert!(kern(early, Timestamp(5_000_001), "x").starts_with("Nov  1 14:00:01 "));
        assert!(kern(early, Timestamp(5_000_001), "x").contains("[    5.000001]"));
    }
}
