//! Field conditions such as `res.statusCode >= 500`: parsed once when a rule loads, evaluated per
//! candidate event.
//!
//! Grammar: `PATH OP VALUE`, `PATH contains "text"`, `PATH ~ "regex"`, or `PATH exists`, where OP is
//! one of `== != > >= < <=` and VALUE a number, a double-quoted string or `true`/`false`. PATH is a
//! dotted field path looked up with [`Event::field`], or one of the pseudo-fields `level`, `service`
//! and `message`. `level` compares by severity order (`level >= "error"`). A field that is absent (or
//! null) makes every comparison false: a rule never fires on what an event does not say.
//!
//! This module must not know rules or files: it reports errors as plain text and `rules` adds the
//! file, line and field.

use std::cmp::Ordering;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;

use crate::event::{Event, Level};

/// Why a predicate text could not be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct PredicateError(String);

/// What a predicate looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Level,
    Service,
    Message,
    Field(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Num(f64),
    Str(String),
    Bool(bool),
    Level(Level),
}

#[derive(Debug, Clone)]
enum Op {
    Cmp(CmpOp, Literal),
    Contains(String),
    Matches(Regex),
    Exists,
}

/// One parsed field condition. Compare and print it by its source text.
#[derive(Debug, Clone)]
pub struct Predicate {
    /// The condition as written in the rule.
    pub text: String,
    target: Target,
    op: Op,
}

impl PartialEq for Predicate {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Regexes in predicates are bounded like rule regexes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Predicate {
    /// Read one condition (`res.statusCode >= 500`, `err.code == "ECONNREFUSED"`, `msg ~ "^Job"`).
    pub fn parse(text: &str) -> Result<Predicate, PredicateError> {
        let trimmed = text.trim();
        let path_end = trimmed
            .find(|c: char| c.is_whitespace() || "=!<>~".contains(c))
            .unwrap_or(trimmed.len());
        let path = &trimmed[..path_end];
        if path.is_empty() {
            return Err(PredicateError(format!(
                "`{trimmed}`: expected a field path before the operator"
            )));
        }
        if !path
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'))
        {
            return Err(PredicateError(format!(
                "`{trimmed}`: field path `{path}` may only hold letters, digits, `.`, `_`, `-` and `$`"
            )));
        }
        let target = match path {
            "level" => Target::Level,
            "service" => Target::Service,
            "message" => Target::Message,
            other => Target::Field(other.to_string()),
        };
        let rest = trimmed[path_end..].trim_start();
        let (op_text, value_text) = split_op(rest).ok_or_else(|| {
            PredicateError(format!(
                "`{trimmed}`: expected an operator (== != > >= < <= contains ~ exists) after `{path}`"
            ))
        })?;
        let value_text = value_text.trim();
        let op = match op_text {
            "exists" => {
                if !value_text.is_empty() {
                    return Err(PredicateError(format!(
                        "`{trimmed}`: `exists` takes no value"
                    )));
                }
                Op::Exists
            }
            "contains" => Op::Contains(quoted(value_text, trimmed)?),
            "~" => {
                let pattern = quoted(value_text, trimmed)?;
                let re = RegexBuilder::new(&pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| PredicateError(format!("`{trimmed}`: bad regex: {e}")))?;
                Op::Matches(re)
            }
            cmp => {
                let cmp_op = match cmp {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    ">" => CmpOp::Gt,
                    ">=" => CmpOp::Ge,
                    "<" => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let mut lit = literal(value_text, trimmed)?;
                if target == Target::Level {
                    let Literal::Str(name) = &lit else {
                        return Err(PredicateError(format!(
                            "`{trimmed}`: compare `level` with a quoted level name such as \"error\""
                        )));
                    };
                    let level: Level = name
                        .parse()
                        .map_err(|e: String| PredicateError(format!("`{trimmed}`: {e}")))?;
                    lit = Literal::Level(level);
                }
                Op::Cmp(cmp_op, lit)
            }
        };
        Ok(Predicate {
            text: trimmed.to_string(),
            target,
            op,
        })
    }

    /// The field path the predicate reads (`level`, `service`, `message` or a dotted path).
    pub fn path(&self) -> &str {
        match &self.target {
            Target::Level => "level",
            Target::Service => "service",
            Target::Message => "message",
            Target::Field(p) => p,
        }
    }

    /// True when the event satisfies the condition.
    pub fn eval(&self, event: &Event) -> bool {
        match &self.target {
            Target::Level => match &self.op {
                Op::Cmp(op, Literal::Level(want)) => {
                    // `unknown` sorts last but is not "worse than panic": only (in)equality applies.
                    if event.level == Level::Unknown || *want == Level::Unknown {
                        match op {
                            CmpOp::Eq => event.level == *want,
                            CmpOp::Ne => event.level != *want,
                            _ => false,
                        }
                    } else {
                        op.holds(event.level.cmp(want))
                    }
                }
                _ => self.eval_text(event.level.as_str()),
            },
            Target::Service => self.eval_text(&event.service),
            Target::Message => self.eval_text(&event.message),
            Target::Field(path) => match event.field(path) {
                None | Some(Json::Null) => false,
                Some(value) => self.eval_json(value),
            },
        }
    }

    fn eval_text(&self, text: &str) -> bool {
        match &self.op {
            Op::Exists => true,
            Op::Contains(needle) => text.contains(needle.as_str()),
            Op::Matches(re) => re.is_match(text),
            Op::Cmp(op, Literal::Str(want)) => op.holds(text.cmp(want.as_str())),
            Op::Cmp(op, Literal::Num(want)) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|n| n.partial_cmp(want))
                .is_some_and(|ord| op.holds(ord)),
            Op::Cmp(op, Literal::Bool(want)) => match text {
                "true" => op.holds(true.cmp(want)),
                "false" => op.holds(false.cmp(want)),
                _ => false,
            },
            Op::Cmp(_, Literal::Level(_)) => false,
        }
    }

    fn eval_json(&self, value: &Json) -> bool {
        match (&self.op, value) {
            (Op::Exists, _) => true,
            (Op::Cmp(op, Literal::Num(want)), Json::Number(n)) => n
                .as_f64()
                .and_then(|n| n.partial_cmp(want))
                .is_some_and(|ord| op.holds(ord)),
            (Op::Cmp(op, Literal::Bool(want)), Json::Bool(b)) => op.holds(b.cmp(want)),
            (_, Json::String(s)) => self.eval_text(s),
            (_, Json::Number(n)) => self.eval_text(&n.to_string()),
            (_, Json::Bool(b)) => self.eval_text(if *b { "true" } else { "false" }),
            (Op::Contains(needle), Json::Array(items)) => items
                .iter()
                .any(|item| item.as_str().is_some_and(|s| s.contains(needle.as_str()))),
            _ => false,
        }
    }
}

/// Split `>= 500` into (`>=`, ` 500`); words (`contains`, `exists`) must stand alone.
fn split_op(rest: &str) -> Option<(&str, &str)> {
    for op in ["==", "!=", ">=", "<=", ">", "<", "~"] {
        if let Some(value) = rest.strip_prefix(op) {
            return Some((op, value));
        }
    }
    for word in ["contains", "exists"] {
        if let Some(value) = rest.strip_prefix(word)
            && (value.is_empty() || value.starts_with(char::is_whitespace))
        {
            return Some((word, value));
        }
    }
    None
}

fn quoted(value: &str, whole: &str) -> Result<String, PredicateError> {
    match literal(value, whole)? {
        Literal::Str(s) => Ok(s),
        _ => Err(PredicateError(format!(
            "`{whole}`: expected a double-quoted string, got `{value}`"
        ))),
    }
}

fn literal(value: &str, whole: &str) -> Result<Literal, PredicateError> {
    if value.is_empty() {
        return Err(PredicateError(format!(
            "`{whole}`: expected a value after the operator"
        )));
    }
    if value.starts_with('"') {
        // A TOML-style basic string: reuse serde_json's reader for the escapes.
        return serde_json::from_str::<String>(value)
            .map(Literal::Str)
            .map_err(|_| {
                PredicateError(format!(
                    "`{whole}`: `{value}` is not a well-formed double-quoted string"
                ))
            });
    }
    match value {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        _ => {}
    }
    value.parse::<f64>().map(Literal::Num).map_err(|_| {
        PredicateError(format!(
            "`{whole}`: expected a number, a double-quoted string or true/false, got `{value}`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, Flags, Timestamp};

    fn event(json: serde_json::Value, level: Level) -> Event {
        Event {
            id: EventId {
                fingerprint: 1,
                offset: 0,
            },
            ts: Timestamp(0),
            service: "app".into(),
            level,
            message: "request completed".into(),
            raw: json.to_string(),
            fields: json.as_object().cloned().unwrap_or_default(),
            flags: Flags::default(),
            len: 0,
            lines: 1,
        }
    }

    fn holds(text: &str, ev: &Event) -> bool {
        Predicate::parse(text).unwrap().eval(ev)
    }

    #[test]
    fn numeric_comparisons_read_nested_fields() {
        let ev = event(
            serde_json::json!({"req": {"url": "/api/health"}, "res": {"statusCode": 503}, "responseTime": 3}),
            Level::Error,
        );
        assert!(holds("res.statusCode >= 500", &ev));
        assert!(holds("res.statusCode == 503", &ev));
        assert!(!holds("res.statusCode < 500", &ev));
        assert!(holds("responseTime<=3", &ev));
        assert!(holds("req.url == \"/api/health\"", &ev));
        assert!(!holds("req.url != \"/api/health\"", &ev));
        assert!(holds("req.url contains \"health\"", &ev));
        assert!(holds("req.url ~ \"^/api/(health|ready)$\"", &ev));
        assert!(holds("res exists", &ev));
    }

    #[test]
    fn absent_fields_make_every_comparison_false() {
        let ev = event(serde_json::json!({"msg": "x", "gone": null}), Level::Info);
        for text in [
            "res.statusCode >= 500",
            "res.statusCode != 200",
            "gone exists",
            "nope exists",
        ] {
            assert!(!holds(text, &ev), "{text}");
        }
    }

    #[test]
    fn pseudo_fields_level_service_and_message() {
        let ev = event(serde_json::json!({}), Level::Fatal);
        assert!(holds("level >= \"error\"", &ev));
        assert!(!holds("level < \"warn\"", &ev));
        assert!(holds("service == \"app\"", &ev));
        assert!(holds("message contains \"completed\"", &ev));
        let unknown = event(serde_json::json!({}), Level::Unknown);
        assert!(!holds("level >= \"error\"", &unknown));
    }

    #[test]
    fn numbers_written_as_strings_still_compare() {
        let ev = event(serde_json::json!({"duration_ms": "1500.5"}), Level::Info);
        assert!(holds("duration_ms >= 1000", &ev));
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        for (text, want) in [
            ("res.statusCode >> 5", "expected a number"),
            ("res.statusCode", "expected an operator"),
            (">= 5", "field path"),
            ("msg ~ \"(\"", "bad regex"),
            ("msg contains 5", "double-quoted"),
            ("level >= 50", "quoted level name"),
            ("level >= \"loud\"", "unknown level"),
            ("x exists 5", "takes no value"),
        ] {
            let err = Predicate::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
