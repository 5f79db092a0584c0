//! Silences and acknowledgements: what keeps a known incident from paging.
//!
//! A [`Silence`] is a set of [`Matcher`]s (`class=db-down service=postgres`, all must hold) and an
//! event-time span `[starts, ends)`. An incident that opens (or reopens) while a silence that
//! matches it holds is recorded as usual but marked with the silence's id, and its change is of
//! kind `silenced`, not `opened`: it neither notifies nor escalates. An open incident a silence
//! starts to cover is marked the same way. When the silence ends (its time passes, or it is
//! expired) a still-open incident it covered notifies once (`unsilenced`) and escalates from
//! there. Times are event times, so a backfill of last night's logs marks the same incidents as
//! the live run did.
//!
//! An [`Ack`] (who, when, a note) is an operator's word that someone is on an incident: it stays
//! open but never escalates again; a reopening after it resolved pages afresh.
//!
//! Owns: the matcher language and its errors, a silence's identity and time span, and matching
//! an incident. Must not: store silences (`store::silences`), decide what a change notifies (the
//! engine marks changes; the feed and webhooks read the marks), or read the clock.

use serde::{Deserialize, Serialize};

use crate::detect::{Class, Severity};
use crate::event::Timestamp;
use crate::incident::Incident;

/// Stable silence id (`sil-<16 hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(pub String);

impl std::fmt::Display for SilenceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Class,
    Severity,
    /// Any of the incident's services.
    Service,
    /// The rule that opened it.
    Rule,
    /// The incident's id.
    Incident,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Class,
        Field::Severity,
        Field::Service,
        Field::Rule,
        Field::Incident,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Class => "class",
            Field::Severity => "severity",
            Field::Service => "service",
            Field::Rule => "rule",
            Field::Incident => "incident",
        }
    }
}

/// One condition of a silence: `field=a,b` (one of the values) or `field!=a,b` (none of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub field: Field,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
    pub values: Vec<String>,
}

/// Why a matcher text was refused; `at` is the byte offset of the offending term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at `{term}`)")]
pub struct MatchError {
    pub at: usize,
    pub term: String,
    pub message: String,
}

impl Matcher {
    /// The incident's value(s) of the field.
    fn holds(&self, incident: &Incident) -> bool {
        let any = |candidate: &str| self.values.iter().any(|v| v == candidate);
        let found = match self.field {
            Field::Class => any(incident.class.as_str()),
            Field::Severity => any(incident.severity.as_str()),
            Field::Service => incident.services.iter().any(|s| any(s)),
            Field::Rule => any(&incident.rule),
            Field::Incident => any(&incident.id.0),
        };
        found != self.negated
    }

    /// The matcher as written (`service!=redis,postgres`).
    pub fn render(&self) -> String {
        format!(
            "{}{}{}",
            self.field.as_str(),
            if self.negated { "!=" } else { "=" },
            self.values.join(",")
        )
    }
}

/// Parse `class=db-down service=postgres,redis severity!=info`: terms separated by blanks, each
/// `field=values` or `field!=values`, values separated by commas. A class or severity must be
/// one logwarden knows; an empty text, an unknown field, or an empty value is refused.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatchError> {
    let mut matchers = Vec::new();
    let mut offset = 0;
    for term in text.split(char::is_whitespace) {
        let at = offset;
        offset += term.len() + 1;
        if term.is_empty() {
            continue;
        }
        let error = |message: String| MatchError {
            at,
            term: term.to_string(),
            message,
        };
        let (name, negated, values) = match term.split_once('=') {
            Some((name, values)) => match name.strip_suffix('!') {
                Some(name) => (name, true, values),
                None => (name, false, values),
            },
            None => {
                return Err(error(
                    "a matcher is `field=value` or `field!=value`".to_string(),
                ));
            }
        };
        let field = Field::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| {
                error(format!(
                    "unknown field `{name}`: a silence matches on {}",
                    Field::ALL.map(Field::as_str).join(", ")
                ))
            })?;
        let values: Vec<String> = values.split(',').map(str::to_string).collect();
        if values.iter().any(String::is_empty) {
            return Err(error(format!("`{name}` needs a value")));
        }
        for value in &values {
            let known = |names: &[&str]| -> Result<(), MatchError> {
                if names.contains(&value.as_str()) {
                    Ok(())
                } else {
                    Err(error(format!(
                        "unknown {name} `{value}`: one of {}",
                        names.join(", ")
                    )))
                }
            };
            match field {
                Field::Class => known(&Class::ALL.map(Class::as_str))?,
                Field::Severity => known(&Severity::ALL.map(Severity::as_str))?,
                Field::Service | Field::Rule | Field::Incident => {}
            }
        }
        matchers.push(Matcher {
            field,
            negated,
            values,
        });
    }
    if matchers.is_empty() {
        return Err(MatchError {
            at: 0,
            term: text.to_string(),
            message: "a silence must match something (`class=db-down service=postgres`)"
                .to_string(),
        });
    }
    Ok(matchers)
}

/// A silence: while it holds, the incidents it matches are recorded but do not page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: SilenceId,
    pub matchers: Vec<Matcher>,
    /// Event time from which it holds.
    pub starts: Timestamp,
    /// Event time at which it ends (exclusive); an expired silence ends when it was expired.
    pub ends: Timestamp,
    pub reason: String,
    pub by: String,
    /// Wall-clock time it was made.
    pub created: Timestamp,
    /// Wall-clock time an operator ended it early, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<Timestamp>,
}

impl Silence {
    /// A new silence; its id is derived from what it is, so the same request twice is one id.
    pub fn new(
        matchers: Vec<Matcher>,
        starts: Timestamp,
        ends: Timestamp,
        reason: String,
        by: String,
        created: Timestamp,
    ) -> Silence {
        let mut hasher = twox_hash::XxHash64::with_seed(0x5117);
        let rendered: Vec<String> = matchers.iter().map(Matcher::render).collect();
        std::hash::Hasher::write(
            &mut hasher,
            format!(
                "{}\u{0}{}\u{0}{}\u{0}{reason}\u{0}{by}\u{0}{}",
                rendered.join(" "),
                starts.as_micros(),
                ends.as_micros(),
                created.as_micros()
            )
            .as_bytes(),
        );
        let id = SilenceId(format!("sil-{:016x}", std::hash::Hasher::finish(&hasher)));
        Silence {
            id,
            matchers,
            starts,
            ends,
            reason,
            by,
            created,
            expired: None,
        }
    }

    /// Holds at event time `at`.
    pub fn holds_at(&self, at: Timestamp) -> bool {
        self.starts <= at && at < self.ends
    }

    /// Every matcher holds for `incident`.
    pub fn matches(&self, incident: &Incident) -> bool {
        self.matchers.iter().all(|m| m.holds(incident))
    }

    /// The matchers as written.
    pub fn render_matchers(&self) -> String {
        self.matchers
            .iter()
            .map(Matcher::render)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What an operator asks for: the matchers as written, when (`starts`, default now) and until
/// when (`ends`, or `for_secs` after the start), why and who.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub matchers: String,
    pub starts: Option<Timestamp>,
    pub ends: Option<Timestamp>,
    pub for_secs: Option<i64>,
    pub reason: String,
    pub by: String,
}

/// Why a silence request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("match: {0}")]
    Match(#[from] MatchError),
    #[error("a silence needs an end: a duration (`for`, such as 30m) or an end time, not both")]
    Span,
    #[error("a silence must end after it starts ({starts} is not before {ends})")]
    Backwards { starts: String, ends: String },
    #[error("a silence needs a reason (it is kept with the silence: why nobody was paged)")]
    NoReason,
    #[error("a silence needs the name of who makes it")]
    NoAuthor,
}

impl Request {
    /// The silence asked for, made at wall-clock time `now`.
    pub fn make(&self, now: Timestamp) -> Result<Silence, RequestError> {
        let matchers = parse_matchers(&self.matchers)?;
        let starts = self.starts.unwrap_or(now);
        let ends = match (self.ends, self.for_secs) {
            (Some(ends), None) => ends,
            (None, Some(secs)) if secs > 0 => starts.plus_secs(secs),
            _ => return Err(RequestError::Span),
        };
        if ends <= starts {
            return Err(RequestError::Backwards {
                starts: starts.rfc3339(),
                ends: ends.rfc3339(),
            });
        }
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(RequestError::NoReason);
        }
        let by = self.by.trim();
        if by.is_empty() {
            return Err(RequestError::NoAuthor);
        }
        Ok(Silence::new(
            matchers,
            starts,
            ends,
            reason.to_string(),
            by.to_string(),
            now,
        ))
    }
}

/// A silence as the CLI's `--json` and the API show it: the stored silence and its state now.
#[derive(Debug, Serialize)]
pub struct Shown<'a> {
    #[serde(flatten)]
    pub silence: &'a Silence,
    pub state: &'static str,
}

impl Silence {
    /// It holds now or will (`pending` or `active`): what `silence list` shows without `--all`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        matches!(self.state_at(now), "pending" | "active")
    }

    /// Itself with its state at `now`, to show.
    pub fn shown(&self, now: Timestamp) -> Shown<'_> {
        Shown {
            silence: self,
            state: self.state_at(now),
        }
    }

    /// Where it stands at wall-clock time `now`: `pending`, `active`, `ended`, or `expired` (ended
    /// early by an operator).
    pub fn state_at(&self, now: Timestamp) -> &'static str {
        if self.expired.is_some() {
            "expired"
        } else if self.ends <= now {
            "ended"
        } else if self.starts > now {
            "pending"
        } else {
            "active"
        }
    }
}

/// The silence over an incident, as its changes carry it: which, who made it, why, and until
/// when (the audit trail in the incident log itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRef {
    pub id: SilenceId,
    pub by: String,
    pub reason: String,
    pub ends: Timestamp,
}

impl Silence {
    /// What an incident it covers carries of it.
    pub fn reference(&self) -> SilenceRef {
        SilenceRef {
            id: self.id.clone(),
            by: self.by.clone(),
            reason: self.reason.clone(),
            ends: self.ends,
        }
    }
}

/// An acknowledgement: someone is on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    /// Wall-clock time of the acknowledgement.
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_with_lists_and_negation() {
        let m = parse_matchers("class=db-down  service=postgres,redis severity!=info").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].field, Field::Class);
        assert_eq!(m[1].values, ["postgres", "redis"]);
        assert!(m[2].negated);
        let rendered: Vec<String> = m.iter().map(Matcher::render).collect();
        assert_eq!(
            rendered.join(" "),
            "class=db-down service=postgres,redis severity!=info"
        );
    }

    #[test]
    fn a_request_needs_a_span_forward_a_reason_and_an_author() {
        let now = Timestamp::from_secs(1_000);
        let ok = Request {
            matchers: "class=db-down service=postgres".into(),
            for_secs: Some(1800),
            reason: " monthly VACUUM FULL ".into(),
            by: "alice".into(),
            ..Request::default()
        };
        let silence = ok.make(now).unwrap();
        assert_eq!((silence.starts, silence.ends), (now, now.plus_secs(1800)));
        assert_eq!(silence.reason, "monthly VACUUM FULL");
        assert_eq!(silence.state_at(now), "active");
        assert_eq!(silence.state_at(now.plus_secs(-1)), "pending");
        assert_eq!(silence.state_at(now.plus_secs(1800)), "ended");
        // The same request at another time is another silence.
        assert_ne!(ok.make(now.plus_secs(1)).unwrap().id, silence.id);
        let refused = |r: Request| r.make(now).unwrap_err();
        assert_eq!(
            refused(Request {
                for_secs: None,
                ..ok.clone()
            }),
            RequestError::Span
        );
        assert_eq!(
            refused(Request {
                ends: Some(now.plus_secs(60)),
                ..ok.clone()
            }),
            RequestError::Span
        );
        assert!(matches!(
            refused(Request {
                for_secs: None,
                ends: Some(now),
                ..ok.clone()
            }),
            RequestError::Backwards { .. }
        ));
        assert_eq!(
            refused(Request {
                reason: "  ".into(),
                ..ok.clone()
            }),
            RequestError::NoReason
        );
        assert_eq!(
            refused(Request {
                by: String::new(),
                ..ok.clone()
            }),
            RequestError::NoAuthor
        );
        assert!(matches!(
            refused(Request {
                matchers: "klass=db-down".into(),
                ..ok
            }),
            RequestError::Match(_)
        ));
    }

    #[test]
    fn unknown_fields_classes_and_empty_matches_are_refused_where_they_are() {
        let e = parse_matchers("class=db-down host=db1").unwrap_err();
        assert_eq!((e.at, e.term.as_str()), (14, "host=db1"));
        assert!(e.message.contains("unknown field `host`"), "{e}");
        assert!(e.message.contains("class, severity, service"), "{e}");
        let e = parse_matchers("class=db-dwn").unwrap_err();
        assert!(e.message.contains("unknown class `db-dwn`"), "{e}");
        assert!(e.message.contains("db-down"), "{e}");
        let e = parse_matchers("severity=urgent").unwrap_err();
        assert!(e.message.contains("unknown severity"), "{e}");
        for text in ["", "   ", "service=", "service=a,,b", "postgres"] {
            assert!(parse_matchers(text).is_err(), "{text:?}");
        }
    }
}
