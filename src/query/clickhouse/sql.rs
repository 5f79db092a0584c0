//! The loggrep AST, time range and filters → one parameterized `WHERE` for the `events` table,
//! plus the [`Pred`] that decides what SQL can only narrow.
//!
//! Every user value goes into [`Where::binds`] and is bound with the crate's `.bind()`; the SQL
//! text holds only column names, function names, operators and `?` placeholders (no literal `?`
//! is ever written, so none needs `??`). The unit tests below check that for hostile values.
//!
//! Exact translations (SQL decides, counts and tallies run in the server):
//! * literal text (words, phrases, `raw:`, `message:`) with smart case: a literal with an
//!   uppercase letter is `position(col, ?) > 0` (bytes, as `grep -F`); an all-lowercase one is
//!   `positionCaseInsensitive` when it is ASCII without `k`/`s` (the only ASCII letters whose
//!   Unicode case-fold class holds a non-ASCII character: `K` U+212A, `ſ` U+017F), else an RE2
//!   `match` of the literal folded into explicit classes (see [`super::re2`]);
//! * `/regex/`: `match(raw, ?)` with the RE2 form of the regex's HIR, or a located refusal;
//! * `service:`, `level:` (and comparisons), `flags:`, `rule:`, `class:` on their columns.
//!
//! Narrowing only (the server returns a superset, each row is decided by [`Pred::eval`] as the
//! local index decides its candidates): attribute terms (`res.statusCode:503`, `host:`,
//! comparisons), whose JSON paths `visitParam*` cannot follow faithfully (it finds a key at any
//! depth, and dotted paths may be nested objects or dotted keys), and `stem*` prefix terms.
//! `NOT` of a narrowing part narrows nothing.
//!
//! Refused with a located error: `source:` (it names the local index's files by fingerprint,
//! which the `events` table does not hold) and `incident:`.
//!
//! Must not: talk to the server, or format a user value into SQL text.

use crate::detect::Class;
use crate::event::{Flags, Level, Timestamp};
use crate::incident::Incident;
use crate::query::lang::{Cmp, Expr, FieldValue};
use crate::query::pattern::Pattern;
use crate::query::plan::{Literal, PlanError, Pred};
use crate::store::clickhouse::Features;

use super::re2;

/// A value bound to a `?` of the SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Str(String),
    U64(u64),
    U32(u32),
    /// An `Array(UInt64)`.
    U64s(Vec<u64>),
}

/// A parameterized condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    /// SQL with one `?` per bind, in order.
    pub sql: String,
    pub binds: Vec<Bind>,
    /// True when the SQL alone decides (no row needs [`Pred::eval`]).
    pub exact: bool,
}

impl Where {
    fn always() -> Where {
        Where {
            sql: "1".into(),
            binds: vec![],
            exact: true,
        }
    }

    /// A narrowing condition that keeps every row.
    fn narrows_nothing() -> Where {
        Where {
            exact: false,
            ..Where::always()
        }
    }

    fn exact(sql: impl Into<String>, binds: Vec<Bind>) -> Where {
        Where {
            sql: sql.into(),
            binds,
            exact: true,
        }
    }

    fn join(items: Vec<Where>, op: &str) -> Where {
        let mut sql = String::from("(");
        let mut binds = Vec::new();
        let mut exact = true;
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(op);
            }
            sql.push_str(&item.sql);
            binds.extend(item.binds);
            exact &= item.exact;
        }
        sql.push(')');
        Where { sql, binds, exact }
    }

    /// All of `items` (none: every row).
    pub fn all(items: Vec<Where>) -> Where {
        if items.is_empty() {
            return Where::always();
        }
        Where::join(items, " AND ")
    }

    fn any(items: Vec<Where>) -> Where {
        if items.is_empty() {
            return Where::exact("0", vec![]);
        }
        Where::join(items, " OR ")
    }
}

/// What a translation reads besides the query.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub features: Features,
    /// The incidents `incident:ID` may name (see [`mentions_incident`]); `None`: not read yet,
    /// so `incident:` terms are only checked for their syntax (a translation made to refuse a
    /// bad question before the server is asked).
    pub incidents: Option<&'a [Incident]>,
}

/// The query's condition and its deciding predicate (`None` query: every event).
pub fn translate(expr: Option<&Expr>, ctx: Context<'_>) -> Result<(Where, Pred), PlanError> {
    let Some(expr) = expr else {
        return Ok((Where::always(), Pred::All));
    };
    translate_expr(expr, ctx)
}

/// Does the query name an incident (`incident:ID`), so that the incidents must be read first?
pub fn mentions_incident(expr: Option<&Expr>) -> bool {
    match expr {
        Some(Expr::And(items) | Expr::Or(items)) => {
            items.iter().any(|e| mentions_incident(Some(e)))
        }
        Some(Expr::Not(inner)) => mentions_incident(Some(inner)),
        Some(Expr::Field { name, .. }) => name == "incident",
        _ => false,
    }
}

fn translate_expr(expr: &Expr, ctx: Context<'_>) -> Result<(Where, Pred), PlanError> {
    let features = ctx.features;
    Ok(match expr {
        Expr::Text { text, .. } => {
            literal("raw", text, features).map(|(w, lit)| (w, Pred::Raw(lit)))?
        }
        Expr::Regex { pattern, column } => regex(pattern, *column)?,
        Expr::Prefix { stem, .. } => prefix(stem),
        Expr::And(items) => {
            let (wheres, preds) = translate_all(items, ctx)?;
            (Where::all(wheres), Pred::And(preds))
        }
        Expr::Or(items) => {
            let (wheres, preds) = translate_all(items, ctx)?;
            (Where::any(wheres), Pred::Or(preds))
        }
        Expr::Not(inner) => {
            let (w, p) = translate_expr(inner, ctx)?;
            let negated = if w.exact {
                Where {
                    sql: format!("NOT {}", w.sql),
                    ..w
                }
            } else {
                Where::narrows_nothing()
            };
            (negated, Pred::Not(Box::new(p)))
        }
        Expr::Field {
            name,
            value,
            column,
        } => field(name, value, *column, ctx)?,
    })
}

fn translate_all(items: &[Expr], ctx: Context<'_>) -> Result<(Vec<Where>, Vec<Pred>), PlanError> {
    let mut wheres = Vec::with_capacity(items.len());
    let mut preds = Vec::with_capacity(items.len());
    for item in items {
        let (w, p) = translate_expr(item, ctx)?;
        wheres.push(w);
        preds.push(p);
    }
    Ok((wheres, preds))
}

/// Literal text in `column`, with smart case (exact).
fn literal(column: &str, text: &str, features: Features) -> Result<(Where, Literal), PlanError> {
    let lit = Literal::new(text);
    let sql = literal_sql(column, &lit, features);
    Ok((sql, lit))
}

fn literal_sql(column: &str, lit: &Literal, features: Features) -> Where {
    let text = lit.text.as_str();
    if !lit.case_insensitive {
        return Where::exact(
            format!("position({column}, ?) > 0"),
            vec![Bind::Str(text.into())],
        );
    }
    let ascii_fold_is_unicode_fold =
        text.is_ascii() && !text.bytes().any(|b| matches!(b, b'k' | b'K' | b's' | b'S'));
    if ascii_fold_is_unicode_fold {
        // On a modern server the raw text has a token bloom filter over lower(raw), which
        // `LIKE` can use (tokens wholly inside the literal): the same ASCII case-insensitive
        // test, written so that the index may skip granules.
        if features.skip_indexes && column == "raw" {
            return Where::exact(
                "lower(raw) LIKE ?",
                vec![Bind::Str(format!(
                    "%{}%",
                    like_escaped(&text.to_ascii_lowercase())
                ))],
            );
        }
        return Where::exact(
            format!("positionCaseInsensitive({column}, ?) > 0"),
            vec![Bind::Str(text.into())],
        );
    }
    match re2::folded_literal(text) {
        Ok(pattern) => Where::exact(format!("match({column}, ?)"), vec![Bind::Str(pattern)]),
        // Cannot happen for an escaped literal; narrowing nothing keeps the answer right.
        Err(_) => Where::narrows_nothing(),
    }
}

/// `text` matched literally by `LIKE` (its `%`, `_` and `\\` escaped).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn regex(source: &str, column: usize) -> Result<(Where, Pred), PlanError> {
    let bad = |offset: usize, message: String| PlanError::BadValue {
        column: column + 1 + offset,
        message,
    };
    let compiled = Pattern::new(source).map_err(|e| bad(e.offset, e.message))?;
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(compiled.case_insensitive)
        .nest_limit(64)
        .build()
        .parse(source)
        .map_err(|e| bad(0, format!("invalid regex: {e}")))?;
    let pattern = re2::translate(&hir, re2::Mode::Lines).map_err(|e| {
        bad(
            0,
            format!(
                "this regex cannot be run by ClickHouse with the same meaning: {} (the local index can run it)",
                e.0
            ),
        )
    })?;
    Ok((
        Where::exact("match(raw, ?)", vec![Bind::Str(pattern)]),
        Pred::Regex(Box::new(compiled)),
    ))
}

/// `stem*`: a token of the raw text starts with the folded stem. Narrowed by the stem anywhere
/// in the text (any case), or any non-ASCII character (whose lowercase may spell it).
fn prefix(stem: &str) -> (Where, Pred) {
    let mut folded = String::new();
    crate::store::schema::fold_chars_into(stem, &mut folded);
    let narrowing = if folded.is_ascii() {
        Where {
            sql: "(positionCaseInsensitive(raw, ?) > 0 OR match(raw, ?))".into(),
            binds: vec![
                Bind::Str(folded.clone()),
                Bind::Str("[\\x{80}-\\x{10ffff}]".into()),
            ],
            exact: false,
        }
    } else {
        Where::narrows_nothing()
    };
    (narrowing, Pred::Prefix(folded))
}

fn field(
    name: &str,
    value: &FieldValue,
    column: usize,
    ctx: Context<'_>,
) -> Result<(Where, Pred), PlanError> {
    let features = ctx.features;
    let value_column = column + name.chars().count() + 1;
    let bad = |message: String| PlanError::BadValue {
        column: value_column,
        message,
    };
    let str_in = |column: &str, values: Vec<String>| {
        let marks = vec!["?"; values.len()].join(", ");
        Where::exact(
            format!("{column} IN ({marks})"),
            values.into_iter().map(Bind::Str).collect(),
        )
    };
    let has = |column: &str, value: &str| {
        Where::exact(format!("has({column}, ?)"), vec![Bind::Str(value.into())])
    };
    Ok(match (name, value) {
        ("raw", FieldValue::Text(t)) => {
            let (w, lit) = literal("raw", t, features)?;
            (w, Pred::Raw(lit))
        }
        ("message", FieldValue::Text(t)) => {
            let (w, lit) = literal("message", t, features)?;
            (w, Pred::Message(lit))
        }
        ("service", FieldValue::Text(t)) => {
            (str_in("service", vec![t.clone()]), Pred::Service(t.clone()))
        }
        ("host", FieldValue::Text(t)) => {
            let mut wheres = Vec::new();
            let mut preds = Vec::new();
            for path in crate::query::plan::HOST_PATHS {
                let (w, p) = attribute_text(path, t, features);
                wheres.push(w);
                preds.push(p);
            }
            (Where::any(wheres), Pred::Or(preds))
        }
        ("rule", FieldValue::Text(t)) => (has("rules", t), Pred::Rule(t.clone())),
        ("class", FieldValue::Text(t)) => {
            let class = t.parse::<Class>().map_err(|e| {
                let names = Class::ALL.map(Class::as_str);
                match crate::config::did_you_mean(t, names) {
                    Some(s) => bad(format!("{e} (did you mean `{s}`?)")),
                    None => bad(format!("{e} (one of {})", names.join(", "))),
                }
            })?;
            (has("classes", class.as_str()), Pred::Class(class))
        }
        ("flags", FieldValue::Text(t)) => {
            let flag = Flags::from_name(t).ok_or_else(|| {
                bad(format!(
                    "unknown flag `{t}` (one of {})",
                    Flags::all_names().join(", ")
                ))
            })?;
            let name = flag.names().first().copied().unwrap_or_default();
            (has("flags", name), Pred::Flag(flag))
        }
        ("level", FieldValue::Text(t)) => {
            let level: Level = t.parse().map_err(bad)?;
            (
                str_in("level", vec![level.as_str().into()]),
                Pred::Levels(vec![level]),
            )
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
            let names = levels.iter().map(|l| l.as_str().to_string()).collect();
            (str_in("level", names), Pred::Levels(levels))
        }
        ("incident", FieldValue::Text(t)) => match ctx.incidents {
            Some(incidents) => incident(t, incidents).map_err(bad)?,
            None => (Where::narrows_nothing(), Pred::All),
        },
        ("source", FieldValue::Text(_)) => {
            return Err(PlanError::BadValue {
                column,
                message: "`source:` needs the local index (it names the files the index read, which the ClickHouse tables do not hold); leave out --backend".to_string(),
            });
        }
        ("raw" | "message" | "service" | "flags" | "host" | "source", FieldValue::Compare(..)) => {
            return Err(bad(format!(
                "`{name}` cannot be compared; comparisons work on numeric attributes and level"
            )));
        }
        (path, FieldValue::Text(t)) => attribute_text(path, t, features),
        (path, FieldValue::Compare(cmp, t)) => {
            let value = t
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| bad(format!("`{t}` is not a number")))?;
            attribute_compare(path, *cmp, value)
        }
    })
}

/// `incident:ID`: the events whose matches went to the incident's group during its lifetime
/// ([`crate::query::plan::incident_events`], as the local index reads it).
fn incident(id: &str, incidents: &[Incident]) -> Result<(Where, Pred), String> {
    let Some(found) = incidents.iter().find(|i| i.id.0 == id) else {
        let ids = incidents.iter().map(|i| i.id.0.as_str());
        return Err(match crate::config::did_you_mean(id, ids) {
            Some(s) => format!("no incident `{id}` (did you mean `{s}`?)"),
            None => format!("no incident `{id}` (logwarden incidents lists them)"),
        });
    };
    let pred = crate::query::plan::incident_events(found);
    let Pred::And(parts) = &pred else {
        return Err(format!("incident `{id}`: unexpected predicate"));
    };
    let mut wheres = Vec::new();
    for part in parts {
        match part {
            Pred::Group(key) => {
                wheres.push(Where::exact("has(groups, ?)", vec![Bind::Str(key.clone())]));
            }
            Pred::During { from, to } => {
                let ns = |t: Timestamp| u64::try_from(t.0.max(0)).unwrap_or(0).saturating_mul(1000);
                wheres.push(Where::exact(
                    "ts_ns >= ? AND ts_ns <= ?",
                    vec![Bind::U64(ns(*from)), Bind::U64(ns(*to))],
                ));
            }
            _ => return Err(format!("incident `{id}`: unexpected predicate")),
        }
    }
    Ok((Where::all(wheres), pred))
}

/// The attribute paths `expr` names (with their terms' columns), in query order: the local index
/// refuses a path no event has, and so must the server.
pub fn attribute_paths(expr: Option<&Expr>) -> Vec<(String, usize)> {
    fn walk(expr: &Expr, out: &mut Vec<(String, usize)>) {
        match expr {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| walk(e, out)),
            Expr::Not(inner) => walk(inner, out),
            Expr::Field { name, column, .. }
                if !crate::query::plan::BUILTIN_FIELDS.contains(&name.as_str()) =>
            {
                out.push((name.clone(), *column));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(expr) = expr {
        walk(expr, &mut out);
    }
    out
}

/// The JSON text of `fields` holds a key ending the path (`"statusCode":` for
/// `res.statusCode`, whether `res` is an object or the key is dotted). Field names are letters,
/// digits and `_ . $ @ -`, which JSON never escapes.
pub fn key_present(path: &str) -> Where {
    let last = path.rsplit('.').next().unwrap_or(path);
    Where {
        sql: "position(fields, ?) > 0".into(),
        binds: vec![Bind::Str(format!("{last}\":"))],
        exact: false,
    }
}

/// `path:text`: a string value holding the literal, or a number / boolean equal to it.
fn attribute_text(path: &str, text: &str, features: Features) -> (Where, Pred) {
    let literal = Literal::new(text);
    let number = text.parse::<f64>().ok().filter(|n| n.is_finite());
    let boolean = text.parse::<bool>().ok();
    let mut narrowing = vec![key_present(path)];
    if number.is_none() && boolean.is_none() {
        // A string value holding the literal holds it JSON-escaped in the `fields` text
        // (escaping maps characters one by one, and touches no letter).
        let escaped = serde_json::to_string(text).unwrap_or_default();
        let inner = escaped
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or("");
        let mut w = literal_sql("fields", &Literal::new(inner), features);
        // `Literal::new` of the escaped text keeps the original's case choice only when the
        // escapes add no uppercase letter, which they never do (`\n`, `\u001f`).
        w.exact = false;
        narrowing.push(w);
    }
    let mut w = Where::all(narrowing);
    w.exact = false;
    (
        w,
        Pred::Attr {
            path: path.to_string(),
            literal,
            number,
            boolean,
        },
    )
}

fn attribute_compare(path: &str, cmp: Cmp, value: f64) -> (Where, Pred) {
    (
        key_present(path),
        Pred::AttrCmp {
            path: path.to_string(),
            cmp,
            value,
        },
    )
}

/// `[since, until)` as a partition-pruning `ts` range plus the exact `ts_ns` bounds.
pub fn time_range(since: Option<Timestamp>, until: Option<Timestamp>) -> Where {
    let mut parts = Vec::new();
    if let Some(since) = since {
        let micros = since.0.max(0);
        let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
        let ns = u64::try_from(micros).unwrap_or(0).saturating_mul(1000);
        parts.push(Where::exact(
            "ts >= toDateTime(?) AND ts_ns >= ?",
            vec![Bind::U32(secs), Bind::U64(ns)],
        ));
    }
    if let Some(until) = until {
        if until.0 <= 0 {
            // No event is stored before 1970 (their time is clamped to 0 on insert).
            parts.push(Where::exact("0", vec![]));
        } else {
            let ns = u64::try_from(until.0)
                .unwrap_or(u64::MAX)
                .saturating_mul(1000);
            // An event before `until` has `ts` ≤ the second of `until − 1ns`.
            let last_secs = u32::try_from((ns - 1) / 1_000_000_000).unwrap_or(u32::MAX - 1);
            parts.push(Where::exact(
                "ts < toDateTime(?) AND ts_ns < ?",
                vec![Bind::U32(last_secs.saturating_add(1)), Bind::U64(ns)],
            ));
        }
    }
    Where::all(parts)
}

/// `--service` (any of them) and `--level` (exactly these) filters.
pub fn filters(services: &[String], levels: &[Level]) -> Where {
    let mut parts = Vec::new();
    if !services.is_empty() {
        let marks = vec!["?"; services.len()].join(", ");
        parts.push(Where::exact(
            format!("service IN ({marks})"),
            services.iter().cloned().map(Bind::Str).collect(),
        ));
    }
    if !levels.is_empty() {
        let marks = vec!["?"; levels.len()].join(", ");
        parts.push(Where::exact(
            format!("level IN ({marks})"),
            levels
                .iter()
                .map(|l| Bind::Str(l.as_str().into()))
                .collect(),
        ));
    }
    Where::all(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::lang;
    use crate::store::clickhouse::Version;

    fn old() -> Features {
        Features::of("18.16.1".parse::<Version>().unwrap())
    }

    fn modern() -> Features {
        Features::of("24.8.4.13".parse::<Version>().unwrap())
    }

    fn ctx(features: Features) -> Context<'static> {
        Context {
            features,
            incidents: Some(&[]),
        }
    }

    fn sql(query: &str, features: Features) -> Where {
        let expr = lang::parse(query).unwrap();
        translate(expr.as_ref(), ctx(features)).unwrap().0
    }

    fn strs(w: &Where) -> Vec<&str> {
        w.binds
            .iter()
            .filter_map(|b| match b {
                Bind::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn literals_follow_smart_case_on_both_servers() {
        let w = sql(r#"Timeout "timeout after""#, old());
        assert_eq!(
            w.sql,
            "(position(raw, ?) > 0 AND positionCaseInsensitive(raw, ?) > 0)"
        );
        assert_eq!(strs(&w), ["Timeout", "timeout after"]);
        assert!(w.exact);
        let w = sql(r#""timeout: 50%_""#, modern());
        assert_eq!(w.sql, "lower(raw) LIKE ?");
        assert_eq!(strs(&w), [r"%timeout: 50\%\_%"]);
        assert_eq!(
            sql("timeout", old()).sql,
            "positionCaseInsensitive(raw, ?) > 0"
        );
        // `k` and `s` fold to non-ASCII letters too: an RE2 class says so, on every server.
        let w = sql("disk", old());
        assert_eq!(w.sql, "match(raw, ?)");
        assert!(strs(&w)[0].contains("\\x{212a}"), "{w:?}");
        assert_eq!(
            sql("message:\"Disk full\"", old()).sql,
            "position(message, ?) > 0"
        );
    }

    #[test]
    fn regexes_columns_and_levels() {
        let w = sql(r"/timeout after \d+ms/ service:app level:>=error", old());
        assert_eq!(
            w.sql,
            "(match(raw, ?) AND service IN (?) AND level IN (?, ?, ?))"
        );
        assert_eq!(strs(&w)[1..], ["app", "error", "fatal", "panic"]);
        assert!(w.exact);
        let w = sql(
            "rule:db-connection-refused OR class:db-down OR flags:partial",
            old(),
        );
        assert_eq!(w.sql, "(has(rules, ?) OR has(classes, ?) OR has(flags, ?))");
        let w = sql("-service:redis", old());
        assert_eq!(w.sql, "NOT service IN (?)");
        assert!(w.exact);
    }

    #[test]
    fn attributes_narrow_and_the_predicate_decides() {
        let w = sql("res.statusCode:>=500", old());
        assert_eq!(w.sql, "position(fields, ?) > 0");
        assert_eq!(strs(&w), ["statusCode\":"]);
        assert!(!w.exact);
        let w = sql("queue:campaign-email", old());
        assert_eq!(
            w.sql,
            "(position(fields, ?) > 0 AND positionCaseInsensitive(fields, ?) > 0)"
        );
        // A string value is found JSON-escaped in the fields text.
        let w = sql(r#"msg:"hi \"there\"""#, old());
        assert_eq!(strs(&w)[1], r#"hi \"there\""#);
        assert!(!w.exact);
        // NOT of a narrowing part narrows nothing.
        let w = sql("-queue:x service:app", old());
        assert_eq!(w.sql, "(1 AND service IN (?))");
        assert!(!w.exact);
    }

    #[test]
    fn user_values_are_never_in_the_sql_text() {
        let hostile = [
            r#"'; DROP TABLE events; --"#,
            r#"a?b"#,
            r#"back\slash"#,
            r#"SELECT * FROM system.tables"#,
            r#"`x`"#,
        ];
        for features in [old(), modern()] {
            for value in hostile {
                let quoted = serde_json::to_string(value).unwrap();
                for query in [
                    quoted.clone(),
                    format!("message:{quoted}"),
                    format!("service:{quoted}"),
                    format!("queue:{quoted}"),
                    format!("rule:{quoted}"),
                ] {
                    let w = sql(&query, features);
                    assert!(!w.sql.contains(value), "{query}: {}", w.sql);
                    assert!(!w.sql.contains('\''), "{query}: {}", w.sql);
                    assert_eq!(
                        w.sql.matches('?').count(),
                        w.binds.len(),
                        "{query}: {}",
                        w.sql
                    );
                }
            }
        }
    }

    #[test]
    fn untranslatable_terms_are_refused_where_they_stand() {
        let expr = lang::parse(r"error /\bword/").unwrap();
        let e = translate(expr.as_ref(), ctx(old())).unwrap_err();
        assert_eq!(e.column(), 8);
        assert!(e.to_string().contains("Unicode-aware"), "{e}");
        let expr = lang::parse("x source:app.log").unwrap();
        let e = translate(expr.as_ref(), ctx(old())).unwrap_err();
        assert_eq!(e.column(), 3);
        let expr = lang::parse("x duration_ms:>abc").unwrap();
        assert!(translate(expr.as_ref(), ctx(old())).is_err());
    }

    #[test]
    fn only_literals_on_raw_change_with_a_modern_server() {
        // Everything but a case-insensitive ASCII literal on `raw` is the same SQL on both: the
        // skip index is only there to be used by `LIKE` over lower(raw).
        for query in [
            r"Timeout /\d+ms/ service:app level:>=warn -flags:partial",
            "res.statusCode:>=500 OR queue:emails",
            "message:timeout disk* class:db-down rule:x",
        ] {
            assert_eq!(sql(query, old()), sql(query, modern()), "{query}");
        }
        assert_ne!(sql("timeout", old()).sql, sql("timeout", modern()).sql);
        assert_eq!(sql("disk", old()), sql("disk", modern()));
    }

    #[test]
    fn an_incident_is_its_group_during_its_lifetime() {
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "id": "inc-0123456789abcdef", "class": "db-connection", "severity": "error",
            "state": "resolved", "title": "t", "rule": "pg-refused", "group": "pg-refused service=app",
            "services": ["app"], "first_seen": "2026-12-02T12:00:00Z",
            "opened_at": "2026-12-02T12:00:00Z", "last_seen": "2026-12-02T12:01:00Z",
            "resolved_at": "2026-12-02T12:06:00Z", "count": 3, "escalation_level": 1,
            "caused_by": [], "consequence": false,
            "runbook": {"title": "r", "anchor": "a", "steps": []}, "evidence": []
        }))
        .unwrap();
        let incidents = [incident];
        let ctx = Context {
            features: old(),
            incidents: Some(&incidents),
        };
        let expr = lang::parse("incident:inc-0123456789abcdef").unwrap();
        let (w, _) = translate(expr.as_ref(), ctx).unwrap();
        assert_eq!(w.sql, "(has(groups, ?) AND ts_ns >= ? AND ts_ns <= ?)");
        assert_eq!(
            w.binds,
            [
                Bind::Str("pg-refused service=app".into()),
                Bind::U64(1_796_212_800_000_000_000),
                Bind::U64(1_796_213_160_000_000_000)
            ]
        );
        let expr = lang::parse("x incident:inc-0123456789abcdeg").unwrap();
        let e = translate(expr.as_ref(), ctx).unwrap_err();
        assert_eq!(e.column(), 12);
        assert!(e.to_string().contains("did you mean"), "{e}");
        // Before the incidents are read, only the syntax is checked.
        let unread = Context {
            incidents: None,
            ..ctx
        };
        assert!(translate(expr.as_ref(), unread).is_ok());
    }

    #[test]
    fn time_ranges_prune_partitions_and_bound_exactly() {
        let w = time_range(Some(Timestamp(1_500_000)), Some(Timestamp(3_000_000)));
        assert_eq!(
            w.sql,
            "(ts >= toDateTime(?) AND ts_ns >= ? AND ts < toDateTime(?) AND ts_ns < ?)"
        );
        assert_eq!(
            w.binds,
            [
                Bind::U32(1),
                Bind::U64(1_500_000_000),
                Bind::U32(3),
                Bind::U64(3_000_000_000)
            ]
        );
        let w = time_range(None, Some(Timestamp(3_000_001)));
        assert_eq!(w.binds[0], Bind::U32(4));
        assert_eq!(time_range(None, None).sql, "1");
    }
}
