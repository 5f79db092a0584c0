//! JSON lines: pino and winston, Google Cloud Logging exports, CloudNativePG records, any flat or
//! nested JSON logger.
//!
//! Takes one entry; when it is a JSON object, gives the level (`level` as pino's number or a name,
//! `severity`, `lvl`, `levelname`), the time (`time`, `timestamp`, `ts`, `@timestamp`: epoch number or
//! ISO string), the message (`msg`, `message`, `textPayload`, CloudNativePG's `record.message`, plus
//! `err.message` when an error is attached) and every other key in `fields`, nested objects kept.
//! Text lines inside a JSON file (a Node `FATAL ERROR:` report, a stack trace printed by hand) are
//! read as plain text with the stack-trace continuation rules. A line that starts like JSON but does
//! not parse is rejected (the parser keeps it as a plain event flagged malformed). Detection is by the
//! first and last bytes, never by a regex.

use serde_json::{Map, Value};

use crate::event::{Level, Timestamp};
use crate::parse::multiline;
use crate::parse::plain::{self, first_line};
use crate::parse::syslog;
use crate::parse::timestamp;
use crate::parse::{EntryFormat, Parsed};

/// The deepest nesting of objects and arrays a JSON line may have (serde_json's recursion limit,
/// which keeps parsing off the stack's edge); a deeper line is kept as a plain event flagged
/// malformed.
pub const MAX_JSON_DEPTH: usize = 127;

const LEVEL_KEYS: [&str; 6] = [
    "level",
    "severity",
    "lvl",
    "levelname",
    "log.level",
    "error_severity",
];
const TIME_KEYS: [&str; 6] = ["time", "timestamp", "ts", "@timestamp", "date", "log_time"];
const MESSAGE_KEYS: [&str; 3] = ["msg", "message", "textPayload"];

/// The JSON-lines reader; `now` is for the text lines it meets.
#[derive(Debug, Clone)]
pub struct Json {
    pub now: Timestamp,
}

impl EntryFormat for Json {
    fn continues(&self, entry: &str, line: &str) -> bool {
        let first = first_line(entry);
        !first.trim_start().starts_with('{') && multiline::continues_text(first, line)
    }

    /// pino writes `level` first: `{"level":30,…` with no other `"level"` key bounds the level to
    /// pino's `30`, whatever the rest holds (a later `level` would win in a JSON map, so none may
    /// follow, nor any `\u` escape, which could spell a key; a malformed line falls back to plain
    /// text, whose level words are probe literals).
    fn level_bound(&self, first_line: &str) -> Option<Level> {
        let rest = first_line.trim_start().strip_prefix("{\"level\":")?;
        static ESCAPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\u"));
        if ESCAPE.find(rest.as_bytes()).is_some() {
            return None;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=6).contains(&digits) || rest.as_bytes().get(digits) != Some(&b',') {
            return None;
        }
        static LEVEL_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"level\""));
        if LEVEL_KEY.find(rest.as_bytes()).is_some() {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        Some(Level::from_pino(n))
    }

    fn parse(&self, entry: &str) -> Result<Parsed, String> {
        let first = first_line(entry);
        if !first.trim_start().starts_with('{') {
            return Ok(plain::parse_text(entry, self.now));
        }
        let map: Map<String, Value> =
            serde_json::from_str(first).map_err(|e| format!("invalid JSON: {e}"))?;
        let mut parsed = read_object(map);
        if first.len() < entry.len() {
            parsed.message.push_str(&entry[first.len()..]);
        }
        Ok(parsed)
    }
}

/// Read a JSON log record: level, time and message out, everything else into `fields`.
pub fn read_object(mut map: Map<String, Value>) -> Parsed {
    let mut parsed = Parsed::default();
    for key in LEVEL_KEYS {
        if let Some(level) = map.get(key).and_then(level_of) {
            parsed.level = Some(level);
            map.remove(key);
            break;
        }
    }
    for key in TIME_KEYS {
        if let Some(ts) = map.get(key).and_then(timestamp::from_json) {
            parsed.ts = Some(ts);
            map.remove(key);
            break;
        }
    }
    let mut text_payload = false;
    for key in MESSAGE_KEYS {
        if let Some(Value::String(s)) = map.get(key) {
            parsed.message = s.clone();
            text_payload = key == "textPayload";
            map.remove(key);
            break;
        }
    }
    // Google Cloud: the text may itself be a PostgreSQL line (`[123]: [1-1] db=…,user=… LOG:  …`).
    if text_payload && let Some(body) = syslog::pg_body(&parsed.message) {
        parsed.message = body.message;
        if body.level.is_some() {
            parsed.level = body.level;
        }
        parsed.fields.extend(body.fields);
    }
    // CloudNativePG: `"msg":"record"` with the PostgreSQL record nested in `record`.
    if let Some(Value::Object(record)) = map.get("record")
        && (parsed.message == "record" || parsed.message.is_empty())
    {
        if let Some(Value::String(m)) = record.get("message") {
            parsed.message = m.clone();
        }
        if let Some(level) = record.get("error_severity").and_then(level_of) {
            parsed.level = Some(level);
        }
    }
    if let Some(jp) = map.get("jsonPayload").and_then(Value::as_object)
        && parsed.message.is_empty()
        && let Some(Value::String(m)) = jp.get("message").or_else(|| jp.get("msg"))
    {
        parsed.message = m.clone();
    }
    // An attached error: its message joins the human message.
    let err_message = ["err", "error"]
        .iter()
        .find_map(|k| match map.get(*k) {
            Some(Value::Object(e)) => e.get("message").and_then(Value::as_str),
            Some(Value::String(s)) => Some(s.as_str()),
            _ => None,
        })
        .map(str::to_string);
    if let Some(em) = err_message {
        if parsed.message.is_empty() {
            parsed.message = em;
        } else if !parsed.message.contains(&em) {
            parsed.message.push_str(": ");
            parsed.message.push_str(&em);
        }
    }
    parsed.fields.extend(map);
    parsed
}

fn level_of(v: &Value) -> Option<Level> {
    match v {
        Value::Number(n) => n.as_i64().map(Level::from_pino),
        Value::String(s) => {
            Level::parse_name(s).or_else(|| s.parse::<i64>().ok().map(Level::from_pino))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::parse::LEVEL_PROBE_LITERALS;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The level bound's promise: a line it bounds, holding no probe literal, reads (as JSON,
        /// or as plain text when malformed) at that level or lower, or at none.
        #[test]
        fn the_level_bound_never_hides_a_higher_level(
            level in prop::sample::select(vec!["10", "20", "30", "35", "40", "50", "60", "030", "3e1"]),
            parts in prop::collection::vec(prop::sample::select(vec![
                r#""time":1796220000123"#, r#""msg":"request completed""#, r#""level":50"#,
                r#""\u006cevel":60"#, r#""err":{"level":60,"message":"x"}"#, r#""severity":"error""#,
                r#""textPayload":"[1]: [1-1] db=a,user=b ERROR:  boom""#, r#""record":{"error_severity":"FATAL"}"#,
                r#""msg":"ERROR in job""#, r#""msg":"Exception""#, r#""msg":"TypeError: x""#,
                r#""lvl":"fatal""#, r#""a":"\"level\":50""#, "\"", "\\", ",", "{", "}", " ", "x",
            ]), 0..8),
            close in any::<bool>(),
        ) {
            let mut line = format!("{{\"level\":{level},");
            line.push_str(&parts.join(","));
            if close {
                line.push('}');
            }
            let bound = json().level_bound(&line);
            let probed = LEVEL_PROBE_LITERALS.iter().any(|l| line.contains(l));
            if let (Some(bound), false) = (bound, probed) {
                let parsed = json()
                    .parse(&line)
                    .unwrap_or_else(|_| plain::parse_text(&line, json().now));
                if let Some(level) = parsed.level {
                    prop_assert!(level <= bound || level == Level::Unknown, "{line}: {level:?} > {bound:?}");
                }
            }
        }
    }

    fn json() -> Json {
        Json {
            now: Timestamp::from_millis(1_796_220_000_000),
        }
    }

    #[test]
    fn pino_request_line() {
        let p = json()
            .parse(r#"{"level":30,"time":1796220000123,"pid":23,"hostname":"newsletter-app-1","reqId":"req-1a2b","req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":42,"msg":"request completed"}"#)
            .unwrap();
        assert_eq!(p.level, Some(Level::Info));
        assert_eq!(p.ts, Some(Timestamp::from_millis(1796220000123)));
        assert_eq!(p.message, "request completed");
        assert_eq!(p.fields["res"]["statusCode"], 200);
        assert_eq!(p.fields["responseTime"], 42);
        assert!(!p.fields.contains_key("level"));
        assert!(!p.fields.contains_key("msg"));
    }

    #[test]
    fn nested_err_joins_the_message_and_stays_in_fields() {
        let p = json()
            .parse(r#"{"level":50,"time":1796220000123,"err":{"type":"Error","message":"timeout exceeded when trying to connect","stack":"Error: timeout exceeded when trying to connect\n    at Pool.connect (/app/node_modules/pg-pool/index.js:45:11)"},"msg":"Database query failed"}"#)
            .unwrap();
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(
            p.message,
            "Database query failed: timeout exceeded when trying to connect"
        );
        assert!(
            p.fields["err"]["stack"]
                .as_str()
                .unwrap()
                .contains("    at Pool.connect")
        );
    }

    #[test]
    fn string_levels_iso_times_and_other_keys() {
        let p = json()
            .parse(r#"{"level":"error","timestamp":"2026-11-28T14:00:01.123Z","message":"boom","meta":{"a":[1,2]}}"#)
            .unwrap();
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.ts, Some(Timestamp::from_millis(1_795_874_401_123)));
        assert_eq!(p.message, "boom");
        assert_eq!(p.fields["meta"]["a"][1], 2);
        let p = json()
            .parse(r#"{"severity":"WARNING","@timestamp":"2026-11-28T14:00:01Z","msg":"x"}"#)
            .unwrap();
        assert_eq!(p.level, Some(Level::Warn));
        assert!(p.ts.is_some());
    }

    #[test]
    fn cloudnativepg_records() {
        let p = json()
            .parse(r#"{"level":"info","ts":1669575482.0968924,"logger":"postgres","msg":"record","logging_pod":"p-1","record":{"log_time":"2022-11-27 18:58:02.096 UTC","error_severity":"FATAL","message":"the database system is starting up"}}"#)
            .unwrap();
        assert_eq!(p.message, "the database system is starting up");
        assert_eq!(p.level, Some(Level::Fatal));
        assert_eq!(p.ts, Some(Timestamp(1_669_575_482_096_892)));
        assert_eq!(
            p.fields["record"]["log_time"],
            "2022-11-27 18:58:02.096 UTC"
        );
    }

    #[test]
    fn cloud_logging_text_payload_with_a_postgres_line() {
        let p = json()
            .parse(r#"{"insertId":"x","severity":"INFO","textPayload":"[1234]: [2-1] db=app,user=bob FATAL:  terminating connection due to administrator command","timestamp":"2020-05-02T13:31:41.123Z"}"#)
            .unwrap();
        assert_eq!(p.level, Some(Level::Fatal));
        assert_eq!(
            p.message,
            "terminating connection due to administrator command"
        );
        assert_eq!(p.ts, Some(Timestamp::from_millis(1_588_426_301_123)));
    }

    #[test]
    fn broken_json_is_rejected_and_text_lines_are_plain() {
        assert!(json().parse(r#"{"level":50,"msg":"cut"#).is_err());
        let p = json()
            .parse(
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            )
            .unwrap();
        assert_eq!(p.level, Some(Level::Fatal));
        let j = json();
        assert!(!j.continues(r#"{"level":30}"#, "    at x"));
        assert!(j.continues("Error: boom", "    at f (a.js:1:1)"));
    }
}
