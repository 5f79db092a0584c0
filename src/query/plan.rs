//! [`Expr`] → a tantivy query that *narrows* candidates, plus a [`Pred`] that *decides*.
//!
//! The index answers a superset: every event the query means is among the candidates, and the
//! predicate, evaluated on the stored event, keeps exactly the right ones. That split is what lets
//! `loggrep "too many clients"` agree with `grep -F` line for line while still using the index:
//!
//! * literal text (bare words, phrases, `message:`, text values of attributes) is tokenized with
//!   the index tokenizer (see `store::schema`); tokens inside the literal must be terms of the
//!   event, a token touching the literal's start must end a term (`.*tok`), one touching its end
//!   must start one (`tok.*`), one touching both must occur in one (`.*tok.*`) — or the event
//!   holds a token too long to index ([`schema::LONG_TOKEN_MARK`]). The substring is then
//!   checked on the stored text, with smart case: a literal with an uppercase letter is
//!   case-sensitive, an all-lowercase one is not (Unicode simple case folding, like ripgrep).
//!   In case-insensitive mode only ASCII tokens narrow; the others are left to the check.
//!   One exception needs no check: a lowercase literal of ASCII letters and digits (`timeout`,
//!   `econnrefused`) is decided by the index alone when the terms containing it are all ASCII
//!   and no event holds a too-long token ([`TextParts::query_deciding`]): counts and limited
//!   listings of the most common grep then read no stored document.
//! * regex terms narrow through their required literals (regex-syntax's prefix, else suffix,
//!   literal extraction, folded like tokens and planned as literals); with none, every event is
//!   a candidate. The regex decides on each line of the stored text. Prefix terms `stem*` need a
//!   term starting with the folded stem (or a token too long to index).
//! * `service:`, `level:`, `flags:`, `rule:`, `class:`, `source:` (the fingerprints of the
//!   checkpointed paths containing the value), `incident:` (its group and time span, read from
//!   the incident log) and numeric comparisons on attributes are answered exactly by
//!   the index (term and fast-field range queries). `host:` is `hostname:` or `host:`. Only exact parts can be negated in the index;
//!   `NOT <inexact>` narrows nothing and is decided by the predicate.
//!
//! Must not: read documents or print (search and output do).

use std::ops::Bound;

use memchr::memmem;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, Query, RangeQuery, RegexQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::{SimpleTokenizer, TokenStream, Tokenizer};
use tantivy::{Searcher, Term};

use crate::detect::Class;
use crate::event::{Flags, Level, Timestamp};
use crate::query::lang::{Cmp, Expr, FieldValue};
use crate::query::pattern::Pattern;
use crate::query::search::Hit;
use crate::store::schema::{self, Fields};
use crate::store::vocab::Vocab;

/// Why a query cannot be planned.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PlanError {
    #[error("column {column}: unknown field `{name}`{}", did_you_mean(.suggestion))]
    UnknownField {
        name: String,
        column: usize,
        suggestion: Option<String>,
    },
    #[error("column {column}: {message}")]
    BadValue { column: usize, message: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => " (quote the text to search it literally)".to_string(),
    }
}

impl PlanError {
    pub fn column(&self) -> usize {
        match self {
            PlanError::UnknownField { column, .. } | PlanError::BadValue { column, .. } => *column,
        }
    }
}

/// Field names the language knows besides attribute paths.
pub const BUILTIN_FIELDS: [&str; 10] = [
    "service", "level", "message", "raw", "flags", "host", "source", "rule", "class", "incident",
];

/// The attributes `host:` looks in: pino's `hostname`, the syslog header's `host`.
pub const HOST_PATHS: [&str; 2] = ["hostname", "host"];

/// A literal searched as a substring, with smart case.
#[derive(Debug, Clone)]
pub struct Literal {
    pub text: String,
    /// True when the literal has no uppercase letter.
    pub case_insensitive: bool,
    matcher: LiteralMatcher,
}

#[derive(Debug, Clone)]
enum LiteralMatcher {
    Exact(Box<memmem::Finder<'static>>),
    Fold(regex::Regex),
}

impl Literal {
    pub fn new(text: &str) -> Literal {
        let case_insensitive = !text.chars().any(char::is_uppercase);
        let fold = if case_insensitive {
            regex::RegexBuilder::new(&regex::escape(text))
                .case_insensitive(true)
                .size_limit(1 << 24)
                .build()
                .ok()
        } else {
            None
        };
        let matcher = match fold {
            Some(re) => LiteralMatcher::Fold(re),
            // A literal too big for a case-insensitive automaton is matched exactly.
            None => {
                LiteralMatcher::Exact(Box::new(memmem::Finder::new(text.as_bytes()).into_owned()))
            }
        };
        Literal {
            text: text.to_string(),
            case_insensitive: matches!(matcher, LiteralMatcher::Fold(_)),
            matcher,
        }
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        match &self.matcher {
            LiteralMatcher::Exact(f) => f.find(haystack.as_bytes()).is_some(),
            LiteralMatcher::Fold(re) => re.is_match(haystack),
        }
    }

    /// Byte ranges of every (non-overlapping) occurrence, for highlighting.
    pub fn find_all(&self, haystack: &str) -> Vec<(usize, usize)> {
        match &self.matcher {
            LiteralMatcher::Exact(f) => {
                let n = f.needle().len();
                f.find_iter(haystack.as_bytes())
                    .map(|start| (start, start + n))
                    .collect()
            }
            LiteralMatcher::Fold(re) => re
                .find_iter(haystack)
                .map(|m| (m.start(), m.end()))
                .collect(),
        }
    }
}

/// What the terminal output highlights: byte ranges of the matches in a raw text.
pub trait Highlight {
    fn find_all(&self, haystack: &str) -> Vec<(usize, usize)>;
}

impl Highlight for Literal {
    fn find_all(&self, haystack: &str) -> Vec<(usize, usize)> {
        Literal::find_all(self, haystack)
    }
}

impl Highlight for Pattern {
    fn find_all(&self, haystack: &str) -> Vec<(usize, usize)> {
        Pattern::find_all(self, haystack)
    }
}

/// The deciding predicate, evaluated on a stored event.
#[derive(Debug, Clone)]
pub enum Pred {
    All,
    Raw(Literal),
    /// A regex term on the raw event's lines.
    Regex(Box<Pattern>),
    /// A token of the raw event starts with this folded stem.
    Prefix(String),
    Message(Literal),
    Service(String),
    Levels(Vec<Level>),
    Flag(Flags),
    /// The event was read from one of these sources (fingerprints).
    Sources(Vec<u64>),
    /// This rule matched the event.
    Rule(String),
    /// A rule of this incident class matched the event.
    Class(Class),
    /// A match of the event went to this incident group.
    Group(String),
    /// Event time in `[from, to]`.
    During {
        from: Timestamp,
        to: Timestamp,
    },
    /// An attribute's text contains the literal, or equals it as a number / boolean.
    Attr {
        path: String,
        literal: Literal,
        number: Option<f64>,
        boolean: Option<bool>,
    },
    AttrCmp {
        path: String,
        cmp: Cmp,
        value: f64,
    },
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
}

impl Pred {
    pub fn eval(&self, hit: &Hit) -> bool {
        match self {
            Pred::All => true,
            Pred::Raw(lit) => lit.is_match(&hit.raw),
            Pred::Regex(pattern) => pattern.is_match(&hit.raw),
            Pred::Prefix(stem) => has_token_with_prefix(&hit.raw, stem),
            Pred::Message(lit) => lit.is_match(&hit.message),
            Pred::Service(s) => hit.service == *s,
            Pred::Levels(levels) => levels.contains(&hit.level),
            Pred::Flag(f) => hit.flags.contains(*f),
            Pred::Sources(fps) => fps.contains(&hit.id.fingerprint),
            Pred::Rule(id) => hit.rules.contains(id),
            Pred::Class(class) => hit.classes.iter().any(|c| c == class.as_str()),
            Pred::Group(key) => hit.groups.contains(key),
            Pred::During { from, to } => *from <= hit.ts && hit.ts <= *to,
            Pred::Attr {
                path,
                literal,
                number,
                boolean,
            } => attribute_values(&hit.fields, path).iter().any(|v| match v {
                serde_json::Value::String(s) => literal.is_match(s),
                serde_json::Value::Number(n) => number.is_some_and(|want| n.as_f64() == Some(want)),
                serde_json::Value::Bool(b) => *boolean == Some(*b),
                _ => false,
            }),
            Pred::AttrCmp { path, cmp, value } => attribute_values(&hit.fields, path)
                .iter()
                .any(|v| v.as_f64().is_some_and(|n| cmp.holds(n, *value))),
            Pred::And(items) => items.iter().all(|p| p.eval(hit)),
            Pred::Or(items) => items.iter().any(|p| p.eval(hit)),
            Pred::Not(inner) => !inner.eval(hit),
        }
    }

    /// Literals and regexes searched in `raw` outside any NOT: what the terminal output
    /// highlights.
    pub fn highlights(&self) -> Vec<&dyn Highlight> {
        let mut out = Vec::new();
        self.collect_highlights(&mut out);
        out
    }

    fn collect_highlights<'a>(&'a self, out: &mut Vec<&'a dyn Highlight>) {
        match self {
            Pred::Raw(lit) => out.push(lit),
            Pred::Regex(pattern) => out.push(pattern.as_ref()),
            Pred::And(items) | Pred::Or(items) => {
                for p in items {
                    p.collect_highlights(out);
                }
            }
            _ => {}
        }
    }
}

/// Does `text` hold a token (as the index tokenizer cuts and folds them, long ones included)
/// starting with the folded `stem`?
fn has_token_with_prefix(text: &str, stem: &str) -> bool {
    let mut tokenizer = SimpleTokenizer::default();
    let mut stream = tokenizer.token_stream(text);
    let mut folded = String::new();
    while stream.advance() {
        folded.clear();
        schema::fold_chars_into(&stream.token().text, &mut folded);
        if folded.starts_with(stem) {
            return true;
        }
    }
    false
}

/// Every value at a dotted `path` (dots may also be part of a key; arrays are looked through).
pub fn attribute_values<'a>(
    fields: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Vec<&'a serde_json::Value> {
    let mut out = Vec::new();
    lookup_object(fields, path, &mut out);
    out
}

fn lookup_object<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
    out: &mut Vec<&'a serde_json::Value>,
) {
    if let Some(v) = map.get(path) {
        push_leaves(v, out);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(v) = map.get(&path[..i]) {
            lookup_value(v, &path[i + 1..], out);
        }
    }
}

fn lookup_value<'a>(
    value: &'a serde_json::Value,
    path: &str,
    out: &mut Vec<&'a serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => lookup_object(map, path, out),
        serde_json::Value::Array(items) => {
            for item in items {
                lookup_value(item, path, out);
            }
        }
        _ => {}
    }
}

fn push_leaves<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                push_leaves(item, out);
            }
        }
        other => out.push(other),
    }
}

/// What planning needs from the index.
pub struct Context<'a> {
    pub fields: Fields,
    pub searcher: &'a Searcher,
    /// The `raw` vocabularies, when the index has a data dir (suffix and infix tokens are then
    /// found there instead of by a walk of the term dictionary).
    pub vocab: Option<&'a Vocab>,
    /// The data dir (its incident log answers `incident:`); `None`: no incidents.
    pub data_dir: Option<&'a std::path::Path>,
    /// Every source the index has read (fingerprint, path), from the last commit's checkpoints.
    pub sources: Vec<(u64, std::path::PathBuf)>,
}

impl Context<'_> {
    /// Does any segment hold a value at attribute `path` (or below it)?
    fn path_exists(&self, path: &str) -> bool {
        let full = format!("{}.{path}", schema::FIELDS);
        self.searcher.segment_readers().iter().any(|seg| {
            let ff = seg.fast_fields();
            ff.dynamic_column_handles(&full)
                .is_ok_and(|h| !h.is_empty())
                || ff
                    .dynamic_subpath_column_handles(&full)
                    .is_ok_and(|h| !h.is_empty())
        })
    }

    /// Attribute paths present in the index (for did-you-mean; only on the error path).
    fn known_paths(&self) -> Vec<String> {
        let prefix = format!("{}.", schema::FIELDS);
        let mut names: Vec<String> = self
            .searcher
            .space_usage()
            .map(|usage| {
                usage
                    .segments()
                    .iter()
                    .flat_map(|s| s.fast_fields().fields())
                    .filter_map(|f| f.field_name().strip_prefix(&prefix).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }
}

/// The planned query.
pub struct Plan {
    /// Candidates: a superset of the answer (exactly the answer when `exact`).
    pub query: Box<dyn Query>,
    /// The index alone decides (no need to check `pred` on documents).
    pub exact: bool,
    pub pred: Pred,
}

/// Plan `expr` (`None`: every event).
pub fn plan(expr: Option<&Expr>, ctx: &Context<'_>) -> Result<Plan, PlanError> {
    let Some(expr) = expr else {
        return Ok(Plan {
            query: Box::new(AllQuery),
            exact: true,
            pred: Pred::All,
        });
    };
    let pred = predicate(expr, ctx)?;
    let (query, exact) = narrow(&pred, ctx, false);
    Ok(Plan { query, exact, pred })
}

fn predicate(expr: &Expr, ctx: &Context<'_>) -> Result<Pred, PlanError> {
    Ok(match expr {
        Expr::Text { text, .. } => Pred::Raw(Literal::new(text)),
        Expr::Regex { pattern, column } => {
            let compiled = Pattern::new(pattern).map_err(|e| PlanError::BadValue {
                column: column + 1 + e.offset,
                message: e.message,
            })?;
            Pred::Regex(Box::new(compiled))
        }
        Expr::Prefix { stem, .. } => {
            let mut folded = String::new();
            schema::fold_chars_into(stem, &mut folded);
            Pred::Prefix(folded)
        }
        Expr::And(items) => Pred::And(
            items
                .iter()
                .map(|e| predicate(e, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(items) => Pred::Or(
            items
                .iter()
                .map(|e| predicate(e, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Pred::Not(Box::new(predicate(inner, ctx)?)),
        Expr::Field {
            name,
            value,
            column,
        } => field_predicate(name, value, *column, ctx)?,
    })
}

fn field_predicate(
    name: &str,
    value: &FieldValue,
    column: usize,
    ctx: &Context<'_>,
) -> Result<Pred, PlanError> {
    let value_column = column + name.chars().count() + 1;
    let bad = |message: String| PlanError::BadValue {
        column: value_column,
        message,
    };
    match (name, value) {
        ("raw", FieldValue::Text(t)) => Ok(Pred::Raw(Literal::new(t))),
        ("message", FieldValue::Text(t)) => Ok(Pred::Message(Literal::new(t))),
        ("service", FieldValue::Text(t)) => Ok(Pred::Service(t.clone())),
        ("host", FieldValue::Text(t)) => {
            // Either attribute, whichever the index holds (none: nothing matches).
            let alternatives = HOST_PATHS
                .iter()
                .filter(|path| ctx.path_exists(path))
                .map(|path| Pred::Attr {
                    path: path.to_string(),
                    literal: Literal::new(t),
                    number: None,
                    boolean: None,
                })
                .collect();
            Ok(Pred::Or(alternatives))
        }
        ("rule", FieldValue::Text(t)) => Ok(Pred::Rule(t.clone())),
        ("class", FieldValue::Text(t)) => t.parse::<Class>().map(Pred::Class).map_err(|e| {
            let names = Class::ALL.map(Class::as_str);
            match crate::config::did_you_mean(t, names) {
                Some(s) => bad(format!("{e} (did you mean `{s}`?)")),
                None => bad(format!("{e} (one of {})", names.join(", "))),
            }
        }),
        ("incident", FieldValue::Text(t)) => incident_predicate(t, ctx).map_err(bad),
        ("source", FieldValue::Text(t)) => {
            let fingerprints: Vec<u64> = ctx
                .sources
                .iter()
                .filter(|(_, path)| path.to_string_lossy().contains(t.as_str()))
                .map(|(fp, _)| *fp)
                .collect();
            if fingerprints.is_empty() {
                let mut known: Vec<String> = ctx
                    .sources
                    .iter()
                    .map(|(_, p)| p.display().to_string())
                    .collect();
                known.sort();
                let listed = if known.is_empty() {
                    "the index names no source files".to_string()
                } else {
                    format!("sources: {}", known.join(", "))
                };
                return Err(bad(format!("no source path contains `{t}` ({listed})")));
            }
            Ok(Pred::Sources(fingerprints))
        }
        ("flags", FieldValue::Text(t)) => Flags::from_name(t).map(Pred::Flag).ok_or_else(|| {
            bad(format!(
                "unknown flag `{t}` (one of {})",
                Flags::all_names().join(", ")
            ))
        }),
        ("level", FieldValue::Text(t)) => {
            let level: Level = t.parse().map_err(bad)?;
            Ok(Pred::Levels(vec![level]))
        }
        ("level", FieldValue::Compare(cmp, t)) => {
            let level: Level = t.parse().map_err(bad)?;
            let levels: Vec<Level> = Level::ALL
                .into_iter()
                .filter(|l| *l != Level::Unknown && cmp.holds(*l, level))
                .collect();
            if levels.is_empty() {
                return Err(bad(format!("no level is {cmp} {t}: this can never match")));
            }
            Ok(Pred::Levels(levels))
        }
        ("raw" | "message" | "service" | "flags" | "host" | "source", FieldValue::Compare(..)) => {
            Err(bad(format!(
                "`{name}` cannot be compared; comparisons work on numeric attributes and level"
            )))
        }
        (path, value) => {
            if !ctx.path_exists(path) {
                return Err(unknown_field(path, column, ctx));
            }
            match value {
                FieldValue::Text(t) => Ok(Pred::Attr {
                    path: path.to_string(),
                    literal: Literal::new(t),
                    number: t.parse::<f64>().ok().filter(|n| n.is_finite()),
                    boolean: t.parse::<bool>().ok(),
                }),
                FieldValue::Compare(cmp, t) => {
                    let value = t
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite())
                        .ok_or_else(|| bad(format!("`{t}` is not a number")))?;
                    Ok(Pred::AttrCmp {
                        path: path.to_string(),
                        cmp: *cmp,
                        value,
                    })
                }
            }
        }
    }
}

/// `incident:ID`: the events whose matches went to the incident's group (its rule, service and
/// `group_by` values), from its first match to its resolution (or its last match while open).
fn incident_predicate(id: &str, ctx: &Context<'_>) -> Result<Pred, String> {
    let incidents = match ctx.data_dir {
        Some(dir) => crate::query::incidents::load(dir)
            .map_err(|e| format!("cannot read the incident log: {e}"))?,
        None => Vec::new(),
    };
    let Some(incident) = incidents.iter().find(|i| i.id.0 == id) else {
        let ids = incidents.iter().map(|i| i.id.0.as_str());
        return Err(match crate::config::did_you_mean(id, ids) {
            Some(s) => format!("no incident `{id}` (did you mean `{s}`?)"),
            None => format!("no incident `{id}` (logwarden incidents lists them)"),
        });
    };
    Ok(incident_events(incident))
}

/// The predicate of an incident's events: their matches went to its group (the `groups` field
/// indexing stored, [`crate::incident::group::GroupKey::render`] as the incident records it) and
/// they lie between its first match and its resolution (its last match while it is open).
/// `incident:ID` and the marks of `loggrep --incident` both mean this.
pub fn incident_events(incident: &crate::incident::Incident) -> Pred {
    let to = incident
        .resolved_at
        .unwrap_or(incident.last_seen)
        .max(incident.last_seen);
    Pred::And(vec![
        Pred::Group(incident.group.clone()),
        Pred::During {
            from: incident.first_seen,
            to,
        },
    ])
}

fn unknown_field(name: &str, column: usize, ctx: &Context<'_>) -> PlanError {
    let known = ctx.known_paths();
    let candidates = BUILTIN_FIELDS
        .iter()
        .copied()
        .chain(known.iter().map(String::as_str));
    let suggestion = crate::config::did_you_mean(name, candidates).map(str::to_string);
    PlanError::UnknownField {
        name: name.to_string(),
        column,
        suggestion,
    }
}

/// The narrowing query of a predicate, and whether it is exact. `spare`: something beside this
/// predicate (a sibling in an AND) already bounds the candidates to [`CHEAP_ENOUGH`], so literals
/// may leave out their costly clauses.
fn narrow(pred: &Pred, ctx: &Context<'_>, spare: bool) -> (Box<dyn Query>, bool) {
    let f = ctx.fields;
    match pred {
        Pred::All => (Box::new(AllQuery), true),
        Pred::Raw(lit) => text_parts(lit, Target::Text(f.raw), ctx).query_deciding(spare, ctx),
        Pred::Message(lit) => (
            text_parts(lit, Target::Text(f.message), ctx).query(spare, ctx),
            false,
        ),
        Pred::Regex(pattern) => {
            if pattern.narrowing().is_empty() {
                return (Box::new(AllQuery), false);
            }
            let clauses = pattern
                .narrowing()
                .iter()
                .map(|lit| {
                    let q = text_parts(lit, Target::Text(f.raw), ctx).query(spare, ctx);
                    (Occur::Should, q)
                })
                .collect();
            (Box::new(BooleanQuery::new(clauses)), false)
        }
        Pred::Prefix(stem) => (prefix_parts(stem, f.raw, ctx).query(spare, ctx), false),
        Pred::Service(s) => (term_query(Term::from_field_text(f.service, s)), true),
        Pred::Flag(flag) => {
            let name = flag.names().first().copied().unwrap_or_default();
            (term_query(Term::from_field_text(f.flags, name)), true)
        }
        Pred::Levels(levels) => (levels_query(levels, f), true),
        Pred::Rule(id) => (term_query(Term::from_field_text(f.rules, id)), true),
        Pred::Group(key) => (term_query(Term::from_field_text(f.groups, key)), true),
        Pred::Class(class) => (
            term_query(Term::from_field_text(f.classes, class.as_str())),
            true,
        ),
        Pred::During { from, to } => (
            Box::new(crate::query::timerange::TimeRange::new(
                f,
                Bound::Included(*from),
                Bound::Included(*to),
            )),
            true,
        ),
        Pred::Sources(fps) => (
            Box::new(TermSetQuery::new(
                fps.iter()
                    .map(|fp| Term::from_field_u64(f.fingerprint, *fp)),
            )),
            true,
        ),
        Pred::Attr {
            path,
            literal,
            number,
            boolean,
        } => {
            let text = text_parts(literal, Target::Json(f.fields, path), ctx);
            // Partial tokens of an attribute cannot use the term dictionary: require the path.
            let exists: Box<dyn Query> = Box::new(ExistsQuery::new(
                format!("{}.{path}", schema::FIELDS),
                false,
            ));
            let mut any: Vec<(Occur, Box<dyn Query>)> = vec![(
                Occur::Should,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, text.query(spare, ctx)),
                    (Occur::Must, exists),
                ])),
            )];
            if let Some(n) = number {
                any.push((
                    Occur::Should,
                    json_range(f, path, Bound::Included(*n), Bound::Included(*n)),
                ));
            }
            if let Some(b) = boolean {
                let mut t = Term::from_field_json_path(f.fields, path, true);
                t.append_type_and_fast_value(*b);
                any.push((Occur::Should, term_query(t)));
            }
            (Box::new(BooleanQuery::new(any)), false)
        }
        Pred::AttrCmp { path, cmp, value } => {
            let (lo, hi) = match cmp {
                Cmp::Gt => (Bound::Excluded(*value), Bound::Unbounded),
                Cmp::Ge => (Bound::Included(*value), Bound::Unbounded),
                Cmp::Lt => (Bound::Unbounded, Bound::Excluded(*value)),
                Cmp::Le => (Bound::Unbounded, Bound::Included(*value)),
            };
            (json_range(f, path, lo, hi), true)
        }
        Pred::And(items) => {
            let spare = spare || items.iter().any(|p| bound(p, ctx) <= CHEAP_ENOUGH);
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let mut exact = true;
            for item in items {
                let (q, e) = narrow(item, ctx, spare);
                exact &= e;
                clauses.push((Occur::Must, q));
            }
            (Box::new(BooleanQuery::new(clauses)), exact)
        }
        Pred::Or(items) if items.is_empty() => (Box::new(EmptyQuery), true),
        Pred::Or(items) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let mut exact = true;
            for item in items {
                let (q, e) = narrow(item, ctx, spare);
                exact &= e;
                clauses.push((Occur::Should, q));
            }
            (Box::new(BooleanQuery::new(clauses)), exact)
        }
        Pred::Not(inner) => {
            let (q, exact) = narrow(inner, ctx, false);
            if exact {
                let clauses: Vec<(Occur, Box<dyn Query>)> =
                    vec![(Occur::Must, Box::new(AllQuery)), (Occur::MustNot, q)];
                (Box::new(BooleanQuery::new(clauses)), true)
            } else {
                (Box::new(AllQuery), false)
            }
        }
    }
}

/// An upper bound on the documents `pred` matches, from the term dictionary alone (whole terms
/// and prefixes, never a walk of the dictionary); `u64::MAX` when unknown.
fn bound(pred: &Pred, ctx: &Context<'_>) -> u64 {
    let f = ctx.fields;
    let doc_freq = |t: Term| ctx.searcher.doc_freq(&t).unwrap_or(u64::MAX);
    match pred {
        Pred::Raw(lit) => text_parts(lit, Target::Text(f.raw), ctx).fewest,
        Pred::Message(lit) => text_parts(lit, Target::Text(f.message), ctx).fewest,
        Pred::Regex(pattern) if !pattern.narrowing().is_empty() => {
            pattern.narrowing().iter().fold(0u64, |sum, lit| {
                sum.saturating_add(text_parts(lit, Target::Text(f.raw), ctx).fewest)
            })
        }
        Pred::Prefix(stem) => prefix_parts(stem, f.raw, ctx).fewest,
        Pred::Service(s) => doc_freq(Term::from_field_text(f.service, s)),
        Pred::Flag(flag) => {
            let name = flag.names().first().copied().unwrap_or_default();
            doc_freq(Term::from_field_text(f.flags, name))
        }
        Pred::Levels(levels) => levels.iter().fold(0u64, |sum, l| {
            sum.saturating_add(doc_freq(Term::from_field_text(f.level, l.as_str())))
        }),
        Pred::Rule(id) => doc_freq(Term::from_field_text(f.rules, id)),
        Pred::Group(key) => doc_freq(Term::from_field_text(f.groups, key)),
        Pred::Class(class) => doc_freq(Term::from_field_text(f.classes, class.as_str())),
        Pred::Sources(fps) => fps.iter().fold(0u64, |sum, fp| {
            sum.saturating_add(doc_freq(Term::from_field_u64(f.fingerprint, *fp)))
        }),
        Pred::And(items) => items
            .iter()
            .map(|p| bound(p, ctx))
            .min()
            .unwrap_or(u64::MAX),
        Pred::Or(items) => items
            .iter()
            .fold(0u64, |sum, p| sum.saturating_add(bound(p, ctx))),
        Pred::All
        | Pred::Regex(_)
        | Pred::During { .. }
        | Pred::Attr { .. }
        | Pred::AttrCmp { .. }
        | Pred::Not(_) => u64::MAX,
    }
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn levels_query(levels: &[Level], f: Fields) -> Box<dyn Query> {
    if levels.is_empty() {
        return Box::new(EmptyQuery);
    }
    let clauses = levels
        .iter()
        .map(|l| {
            (
                Occur::Should,
                term_query(Term::from_field_text(f.level, l.as_str())),
            )
        })
        .collect();
    Box::new(BooleanQuery::new(clauses))
}

/// `--level`/`--service` style filters: exact queries.
pub fn filter_levels(levels: &[Level], f: Fields) -> Box<dyn Query> {
    levels_query(levels, f)
}

pub fn filter_services(services: &[String], f: Fields) -> Box<dyn Query> {
    let clauses = services
        .iter()
        .map(|s| {
            (
                Occur::Should,
                term_query(Term::from_field_text(f.service, s)),
            )
        })
        .collect();
    Box::new(BooleanQuery::new(clauses))
}

fn json_range(f: Fields, path: &str, lo: Bound<f64>, hi: Bound<f64>) -> Box<dyn Query> {
    let term = |v: f64| {
        let mut t = Term::from_field_json_path(f.fields, path, true);
        t.append_type_and_fast_value(v);
        t
    };
    let map = |b: Bound<f64>| match b {
        Bound::Included(v) => Bound::Included(term(v)),
        Bound::Excluded(v) => Bound::Excluded(term(v)),
        Bound::Unbounded => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(map(lo), map(hi)))
}

/// Documents the cheap clauses of a literal (whole terms, term prefixes) may leave as candidates
/// before the planner adds its costly ones too. A `.*tok` or `.*tok.*` clause walks the field's
/// whole term dictionary (~1 s on 10 M events of logs, whose ids and numbers make millions of
/// distinct terms), while checking a candidate on its stored text costs a few µs.
const CHEAP_ENOUGH: u64 = 20_000;

/// Distinct terms a suffix or infix token may stand for before the planner walks the term
/// dictionary with a regex instead of querying the terms the vocabulary listed.
const VOCAB_TERMS: usize = 4096;

/// A literal's narrowing clauses over one tokenized field, cheap and costly apart.
///
/// Every clause only narrows (the stored text decides), so clauses may be left out. Whole terms
/// (tokens inside the literal) and prefixes (the token at its end) are looked up directly in the
/// term dictionary; suffixes and infixes (the token at its start, a literal of one token) need a
/// walk of the whole dictionary, and are kept only when the cheap clauses leave more than
/// [`CHEAP_ENOUGH`] candidates, or there are none (see [`TextParts::query`]).
struct TextParts<'a> {
    /// Tokens that must be whole terms (inside the literal, or too long to index).
    whole: Vec<String>,
    /// Tokens that must start a term (the literal's last token).
    prefixes: Vec<String>,
    /// Tokens that must end (true: `.*tok`) or occur in (false: `.*tok.*`) a term.
    costly: Vec<(String, bool)>,
    target: Target<'a>,
    /// The fewest documents one cheap clause matches: a bound on the candidates (`u64::MAX` for
    /// attributes, whose partial tokens do not narrow).
    fewest: u64,
    /// The literal is one case-insensitive token of ASCII letters and digits, and no event holds
    /// a token too long to index: the terms that contain it are exactly the events that do (see
    /// [`TextParts::query_deciding`]).
    decidable: bool,
}

/// Where a literal's terms live.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// A tokenized text field (`raw`, `message`): partial tokens narrow too.
    Text(tantivy::schema::Field),
    /// The text values at a JSON path of `fields`: only whole tokens narrow.
    Json(tantivy::schema::Field, &'a str),
}

impl Target<'_> {
    fn term(&self, tok: &str) -> Term {
        match *self {
            Target::Text(field) => Term::from_field_text(field, tok),
            Target::Json(field, path) => {
                let mut t = Term::from_field_json_path(field, path, true);
                t.append_type_and_str(tok);
                t
            }
        }
    }
}

fn text_parts<'a>(lit: &Literal, target: Target<'a>, ctx: &Context<'_>) -> TextParts<'a> {
    let text = lit.text.as_str();
    let mut parts = TextParts {
        whole: Vec::new(),
        prefixes: Vec::new(),
        costly: Vec::new(),
        target,
        fewest: u64::MAX,
        decidable: false,
    };
    let mut tokenizer = SimpleTokenizer::default();
    let mut stream = tokenizer.token_stream(text);
    while stream.advance() {
        let token = stream.token();
        if lit.case_insensitive && !token.text.is_ascii() {
            continue;
        }
        let folded = schema::fold_token(&token.text);
        let open_left = token.offset_from == 0;
        let open_right = token.offset_to == text.len();
        if folded == schema::LONG_TOKEN_MARK || (!open_left && !open_right) {
            parts.whole.push(folded);
        } else if open_left {
            parts.costly.push((folded, !open_right));
        } else {
            parts.prefixes.push(folded);
        }
    }
    let Target::Text(field) = target else {
        return parts;
    };
    let doc_freq = |t: &Term| ctx.searcher.doc_freq(t).unwrap_or(u64::MAX);
    for tok in &parts.whole {
        parts.fewest = parts.fewest.min(doc_freq(&target.term(tok)));
    }
    let long_tokens = doc_freq(&target.term(schema::LONG_TOKEN_MARK));
    parts.decidable = lit.case_insensitive
        && !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_alphanumeric())
        && long_tokens == 0;
    for tok in &parts.prefixes {
        let cap = parts.fewest.min(CHEAP_ENOUGH.saturating_add(1));
        let prefixed = prefix_doc_freq(ctx.searcher, field, tok, cap);
        parts.fewest = parts.fewest.min(prefixed.saturating_add(long_tokens));
    }
    parts
}

/// The clauses of a prefix term: its folded stem must start a term (or the event holds a token
/// too long to index, which the predicate then checks).
fn prefix_parts<'a>(stem: &str, field: tantivy::schema::Field, ctx: &Context<'_>) -> TextParts<'a> {
    let target = Target::Text(field);
    let long_tokens = ctx
        .searcher
        .doc_freq(&target.term(schema::LONG_TOKEN_MARK))
        .unwrap_or(u64::MAX);
    let prefixed = prefix_doc_freq(ctx.searcher, field, stem, CHEAP_ENOUGH.saturating_add(1));
    TextParts {
        whole: Vec::new(),
        prefixes: vec![stem.to_string()],
        costly: Vec::new(),
        target,
        fewest: prefixed.saturating_add(long_tokens),
        decidable: false,
    }
}

impl TextParts<'_> {
    /// The narrowing query; `spare`: leave the costly clauses out even when this literal alone
    /// does not bound the candidates.
    fn query(&self, spare: bool, ctx: &Context<'_>) -> Box<dyn Query> {
        self.query_deciding(spare, ctx).0
    }

    /// The narrowing query, and whether it decides alone. It does for a [`decidable`] literal
    /// whose containing terms the vocabulary lists, all ASCII: a term is a maximal run of
    /// alphanumerics folded char by char, so an event holds such a term exactly when its text
    /// holds the literal in any case, as the stored-text check (Unicode simple case folding, like
    /// ripgrep) would say. (A non-ASCII term may have been folded otherwise than the check folds,
    /// `İ` → `i̇`; those, and a list cut short, leave the check to decide.)
    ///
    /// [`decidable`]: TextParts::decidable
    fn query_deciding(&self, spare: bool, ctx: &Context<'_>) -> (Box<dyn Query>, bool) {
        let mut decided = false;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = self
            .whole
            .iter()
            .map(|tok| (Occur::Must, term_query(self.target.term(tok))))
            .collect();
        if let Target::Text(field) = self.target {
            let partial = |terms: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
                let either: Vec<(Occur, Box<dyn Query>)> = vec![
                    (Occur::Should, terms),
                    (
                        Occur::Should,
                        term_query(self.target.term(schema::LONG_TOKEN_MARK)),
                    ),
                ];
                (Occur::Must, Box::new(BooleanQuery::new(either)))
            };
            let regex = |pattern: String| -> Option<Box<dyn Query>> {
                Some(Box::new(RegexQuery::from_pattern(&pattern, field).ok()?))
            };
            for tok in &self.prefixes {
                clauses.extend(regex(format!("{}.*", regex::escape(tok))).map(partial));
            }
            let bounded = spare || (!clauses.is_empty() && self.fewest <= CHEAP_ENOUGH);
            for (tok, suffix) in self.costly.iter().filter(|_| !bounded) {
                let listed = ctx
                    .vocab
                    .filter(|_| field == ctx.fields.raw)
                    .and_then(|v| v.terms_with(ctx.searcher, tok, *suffix, VOCAB_TERMS));
                decided = self.decidable
                    && self.costly.len() == 1
                    && listed
                        .as_ref()
                        .is_some_and(|terms| terms.iter().all(|t| t.is_ascii()));
                let terms = match listed {
                    Some(terms) => Some(Box::new(TermSetQuery::new(
                        terms.iter().map(|t| Term::from_field_text(field, t)),
                    )) as Box<dyn Query>),
                    None if *suffix => regex(format!(".*{}", regex::escape(tok))),
                    None => regex(format!(".*{}.*", regex::escape(tok))),
                };
                clauses.extend(terms.map(partial));
            }
        }
        if clauses.is_empty() {
            return (Box::new(AllQuery), false);
        }
        (Box::new(BooleanQuery::new(clauses)), decided)
    }
}

/// Documents holding a term of `field` that starts with `prefix`, summed over terms and segments
/// (a document with two such terms counts twice); the count stops once it passes `cap`.
fn prefix_doc_freq(
    searcher: &Searcher,
    field: tantivy::schema::Field,
    prefix: &str,
    cap: u64,
) -> u64 {
    // No UTF-8 text holds byte 0xFF: every term with the prefix sorts below `prefix` + 0xFF.
    let mut upper = prefix.as_bytes().to_vec();
    upper.push(0xFF);
    let mut total = 0u64;
    for segment in searcher.segment_readers() {
        let Ok(inverted) = segment.inverted_index(field) else {
            return u64::MAX;
        };
        let Ok(mut terms) = inverted.terms().range().ge(prefix).lt(&upper).into_stream() else {
            return u64::MAX;
        };
        while terms.advance() {
            total += u64::from(terms.value().doc_freq);
            if total > cap {
                return total;
            }
        }
    }
    total
}
