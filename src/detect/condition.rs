//! The language of a rule's `condition` (and `critical_when`): when its matches become an incident.
//!
//! ```text
//! immediate                                   one match opens (OOM killer, PANIC, corruption)
//! never                                       opens nothing: the rule only feeds others' rates
//! count >= 20 within 1m                       matches of one group in a sliding window
//! distinct(user) >= 10 within 5m [min N]      distinct values of a captured field
//! p95(duration_ms) > 1000 within 5m [min N]   p50…p99, max, avg of a captured number; > or >=
//! rate >= 5% of resend-sends within 5m [min N]   matches over the base rule's matches (N: base)
//! rate > 5x baseline(1h) within 1m [min N]    matches per window over the median window of the
//!                                             trailing period (N: fewest matches that can open)
//! absent for 60s                              the rule's matches (a heartbeat) stop for 60 s
//! ```
//!
//! Owns the syntax and its error messages (what the rule loader puts after `file:line: field`).
//! Must not evaluate anything over time: that is `incident::condition`.

use crate::detect::rules::parse_duration;

/// A comparison of a condition: only "above" comparisons, since a condition raises on too much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Ge,
}

impl Cmp {
    fn parse(text: &str) -> Option<Cmp> {
        match text {
            ">" => Some(Cmp::Gt),
            ">=" => Some(Cmp::Ge),
            _ => None,
        }
    }

    /// `value <op> threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Gt => value > threshold,
            Cmp::Ge => value >= threshold,
        }
    }
}

/// What an aggregate condition computes over the captured numbers in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Max,
    Avg,
    /// The nearest-rank percentile (`p95` → 95).
    Percentile(u8),
}

/// When a rule's matches become an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The first match opens an incident.
    Immediate,
    /// Nothing opens: the rule's matches are counted by other rules (a rate's base).
    Never,
    /// `count >= n within W`: at least `n` matches of the same group within a sliding event-time
    /// window of `within_secs`.
    Count { n: u32, within_secs: i64 },
    /// `distinct(field) >= n within W`: at least `n` distinct values of `field`.
    Distinct {
        field: String,
        n: u32,
        within_secs: i64,
        min: u64,
    },
    /// `p95(field) > value within W`: an aggregate of the numbers captured as `field`.
    Aggregate {
        func: Aggregate,
        field: String,
        cmp: Cmp,
        value: f64,
        within_secs: i64,
        min: u64,
    },
    /// `rate >= P% of BASE within W`: the rule's matches over the base rule's matches (of the
    /// same group), once the base has at least `min` matches in the window.
    Ratio {
        cmp: Cmp,
        percent: f64,
        base: String,
        within_secs: i64,
        min: u64,
    },
    /// `rate > Kx baseline(P) within W`: matches in the window against `multiple` times the
    /// median of the per-window counts over the trailing `period_secs`, once at least `min`.
    Baseline {
        cmp: Cmp,
        multiple: f64,
        period_secs: i64,
        within_secs: i64,
        min: u64,
    },
    /// `absent for D`: the rule's matches were seen, then none for `after_secs`.
    Absent { after_secs: i64 },
}

pub(crate) const FORMS: &str = "\"immediate\", \"never\", \"count >= N within D\", \"distinct(FIELD) >= N within D\", \
\"p95(FIELD) > X within D\" (p50…p99, max, avg), \"rate >= P% of RULE within D\", \
\"rate > Kx baseline(D) within D\" or \"absent for D\"";

/// Most trailing windows a baseline looks at (a day of minutes).
pub const MAX_BASELINE_WINDOWS: i64 = 1440;

impl Condition {
    /// Read a condition; the error says what was expected.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = |why: &str| {
            let sep = if why.is_empty() { "" } else { ": " };
            format!("expected {FORMS}, got \"{text}\"{sep}{why}")
        };
        // An optional trailing `min N`.
        let (words, min) = match words.as_slice() {
            [head @ .., "min", n] if head.len() > 1 => {
                let n: u64 = n.parse().map_err(|_| bad("`min` takes a whole number"))?;
                (head, Some(n))
            }
            all => (all, None),
        };
        let within = |d: &str| parse_duration(d).map_err(|e| bad(&e));
        let whole = |n: &str| {
            n.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("N must be a whole number ≥ 1"))
        };
        let no_min = |c: Condition| match min {
            Some(_) => Err(bad("`min` only goes with distinct, aggregates and rates")),
            None => Ok(c),
        };
        match words {
            ["immediate"] => no_min(Condition::Immediate),
            ["never"] => no_min(Condition::Never),
            ["count", ">=", n, "within", d] => no_min(Condition::Count {
                n: whole(n)?,
                within_secs: within(d)?,
            }),
            ["absent", "for", d] => no_min(Condition::Absent {
                after_secs: within(d)?,
            }),
            ["rate", op, amount, "of", base, "within", d] => {
                let cmp = Cmp::parse(op).ok_or_else(|| bad("use > or >="))?;
                let percent = amount
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| bad("the rate is a percentage such as 5%"))?;
                Ok(Condition::Ratio {
                    cmp,
                    percent,
                    base: base.to_string(),
                    within_secs: within(d)?,
                    min: min.unwrap_or(1).max(1),
                })
            }
            ["rate", op, multiple, baseline, "within", d] => {
                let cmp = Cmp::parse(op).ok_or_else(|| bad("use > or >="))?;
                let multiple = multiple
                    .strip_suffix('x')
                    .and_then(|k| k.parse::<f64>().ok())
                    .filter(|k| k.is_finite() && *k > 0.0)
                    .ok_or_else(|| bad("the multiple is written like 5x"))?;
                let period = baseline
                    .strip_prefix("baseline(")
                    .and_then(|p| p.strip_suffix(')'))
                    .ok_or_else(|| bad("the trailing period is written baseline(1h)"))?;
                let period_secs = within(period)?;
                let within_secs = within(d)?;
                let windows = period_secs / within_secs;
                if windows < 1 || period_secs % within_secs != 0 {
                    return Err(bad("the baseline period must be a whole number of windows"));
                }
                if windows > MAX_BASELINE_WINDOWS {
                    return Err(bad(&format!(
                        "the baseline period spans more than {MAX_BASELINE_WINDOWS} windows"
                    )));
                }
                Ok(Condition::Baseline {
                    cmp,
                    multiple,
                    period_secs,
                    within_secs,
                    min: min.unwrap_or(1).max(1),
                })
            }
            [call, op, amount, "within", d] => {
                let (func, field) = call
                    .strip_suffix(')')
                    .and_then(|c| c.split_once('('))
                    .filter(|(_, f)| !f.is_empty())
                    .ok_or_else(|| bad(""))?;
                let field = field.to_string();
                let within_secs = within(d)?;
                let min = min.unwrap_or(1).max(1);
                if func == "distinct" {
                    if *op != ">=" {
                        return Err(bad("distinct counts with >="));
                    }
                    return Ok(Condition::Distinct {
                        field,
                        n: whole(amount)?,
                        within_secs,
                        min,
                    });
                }
                let func = match func {
                    "max" => Aggregate::Max,
                    "avg" => Aggregate::Avg,
                    p => p
                        .strip_prefix('p')
                        .and_then(|n| n.parse::<u8>().ok())
                        .filter(|n| (1..=99).contains(n))
                        .map(Aggregate::Percentile)
                        .ok_or_else(|| {
                            bad(&format!("`{p}` is not distinct, max, avg or p1…p99"))
                        })?,
                };
                let cmp = Cmp::parse(op).ok_or_else(|| bad("use > or >="))?;
                let value = amount
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad("the threshold must be a number"))?;
                Ok(Condition::Aggregate {
                    func,
                    field,
                    cmp,
                    value,
                    within_secs,
                    min,
                })
            }
            _ => Err(bad("")),
        }
    }

    /// The captured field the condition reads (distinct and aggregates), if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Condition::Distinct { field, .. } | Condition::Aggregate { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The rule whose matches are the base of a ratio, if any.
    pub fn base(&self) -> Option<&str> {
        match self {
            Condition::Ratio { base, .. } => Some(base),
            _ => None,
        }
    }

    /// True for conditions that can raise a severity while an incident is open (`critical_when`):
    /// those that count matches over a window.
    pub fn is_windowed(&self) -> bool {
        !matches!(
            self,
            Condition::Immediate | Condition::Never | Condition::Absent { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads() {
        assert_eq!(Condition::parse("immediate"), Ok(Condition::Immediate));
        assert_eq!(Condition::parse("never"), Ok(Condition::Never));
        assert_eq!(
            Condition::parse("count >= 3 within 10m"),
            Ok(Condition::Count {
                n: 3,
                within_secs: 600
            })
        );
        assert_eq!(
            Condition::parse("distinct(user) >= 10 within 5m"),
            Ok(Condition::Distinct {
                field: "user".into(),
                n: 10,
                within_secs: 300,
                min: 1
            })
        );
        assert_eq!(
            Condition::parse("p95(duration_ms) > 1000 within 5m min 20"),
            Ok(Condition::Aggregate {
                func: Aggregate::Percentile(95),
                field: "duration_ms".into(),
                cmp: Cmp::Gt,
                value: 1000.0,
                within_secs: 300,
                min: 20
            })
        );
        assert!(matches!(
            Condition::parse("max(res.responseTime) >= 2.5 within 1m"),
            Ok(Condition::Aggregate {
                func: Aggregate::Max,
                cmp: Cmp::Ge,
                ..
            })
        ));
        assert!(matches!(
            Condition::parse("avg(x) > 1 within 1m"),
            Ok(Condition::Aggregate {
                func: Aggregate::Avg,
                ..
            })
        ));
        assert_eq!(
            Condition::parse("rate >= 5% of resend-sends within 5m min 20"),
            Ok(Condition::Ratio {
                cmp: Cmp::Ge,
                percent: 5.0,
                base: "resend-sends".into(),
                within_secs: 300,
                min: 20
            })
        );
        assert_eq!(
            Condition::parse("rate > 5x baseline(1h) within 1m min 10"),
            Ok(Condition::Baseline {
                cmp: Cmp::Gt,
                multiple: 5.0,
                period_secs: 3600,
                within_secs: 60,
                min: 10
            })
        );
        assert_eq!(
            Condition::parse("absent for 60s"),
            Ok(Condition::Absent { after_secs: 60 })
        );
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (text, why) in [
            ("count > 5", "got \"count > 5\""),
            ("count >= 0 within 10m", "N must be a whole number"),
            ("count >= 3 within 10m min 2", "`min` only goes with"),
            ("distinct(user) > 3 within 1m", "distinct counts with >="),
            ("p100(x) > 3 within 1m", "`p100` is not"),
            ("p95(x) < 3 within 1m", "use > or >="),
            ("p95(x) > fast within 1m", "must be a number"),
            ("rate >= 5 of base within 1m", "percentage"),
            ("rate >= 120% of base within 1m", "percentage"),
            ("rate > 5 baseline(1h) within 1m", "like 5x"),
            (
                "rate > 5x baseline(90s) within 1m",
                "whole number of windows",
            ),
            ("rate > 5x baseline(2d) within 1m", "more than 1440"),
            ("absent for 60", "duration `60`"),
            ("p95() > 1 within 1m", "got"),
        ] {
            let err = Condition::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.starts_with("expected \"immediate\""), "{err}");
        }
    }
}
