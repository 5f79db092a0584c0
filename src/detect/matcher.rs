//! Scan a batch of events against a rule pack: prefilter, then confirm.
//!
//! Takes `&Events`, gives `Vec<Match>` in event order (and, for one event, in rule order). An event
//! becomes a candidate for a rule when one of the rule's literals occurs in its raw text
//! ([`Prefilter`]), or, for a rule without literals, when its level reaches the rule's minimum level
//! (the level is the prefilter: that is how `high-error-rate` sees pino level-50 lines that contain
//! no `ERROR` word). A rule with neither is tried on every event, and `rules check` reports it.
//! Candidates are confirmed cheapest test first: services, level, field predicates, then the regex,
//! whose named captures travel with the match. Large batches are split over rayon.
//!
//! It must not count, window or group matches over time: that is the incident engine's job.

use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use crate::detect::prefilter::Prefilter;
use crate::detect::rules::{Rule, RuleError, RuleSet};
use crate::detect::{Match, Stats};
use crate::event::{Event, Events, Level};

/// Batches at least this long are confirmed in parallel, in chunks of this size.
const PARALLEL_CHUNK: usize = 1024;

/// Longest excerpt kept in a match, in bytes.
const EXCERPT_BYTES: usize = 300;

/// A compiled pack, ready to scan batches. Build it once; it is `Sync`.
#[derive(Debug)]
pub struct Matcher {
    rules: Arc<RuleSet>,
    prefilter: Prefilter,
    /// Rules without literals that have a minimum level: candidates by level alone.
    by_level: Vec<(usize, Level)>,
    /// Rules with neither literal nor level: candidates everywhere.
    always: Vec<usize>,
}

impl Matcher {
    /// Build the prefilter once for `rules`.
    pub fn new(rules: Arc<RuleSet>) -> Result<Matcher, RuleError> {
        let prefilter = Prefilter::new(&rules)?;
        let mut by_level = Vec::new();
        let mut always = Vec::new();
        for (i, rule) in rules.rules.iter().enumerate() {
            if rule.literals.is_empty() {
                match rule.min_level {
                    Some(level) => by_level.push((i, level)),
                    None => always.push(i),
                }
            }
        }
        Ok(Matcher {
            rules,
            prefilter,
            by_level,
            always,
        })
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The lowest level a rule without literals asks for (`None`: no such rule): events without a
    /// literal below it can match nothing.
    pub fn min_level_alone(&self) -> Option<Level> {
        self.by_level.iter().map(|&(_, level)| level).min()
    }

    /// True when some rule has neither literals nor a level, so every event is its candidate.
    pub fn tries_everything(&self) -> bool {
        !self.always.is_empty()
    }

    /// Every match of every rule in the batch.
    pub fn scan(&self, events: &Events) -> Vec<Match> {
        let mut stats = Stats::default();
        self.scan_counted(events, &mut stats)
    }

    /// [`Matcher::scan`], adding to the stage counters.
    pub fn scan_counted(&self, events: &Events, stats: &mut Stats) -> Vec<Match> {
        let (matches, candidates) = if events.len() >= 2 * PARALLEL_CHUNK {
            let parts: Vec<(Vec<Match>, u64)> = events
                .events
                .par_chunks(PARALLEL_CHUNK)
                .map(|chunk| self.scan_slice(chunk))
                .collect();
            let mut all = Vec::new();
            let mut candidates = 0;
            for (part, c) in parts {
                all.extend(part);
                candidates += c;
            }
            (all, candidates)
        } else {
            self.scan_slice(&events.events)
        };
        stats.events += events.len() as u64;
        stats.candidates += candidates;
        stats.matches += matches.len() as u64;
        matches
    }

    fn scan_slice(&self, events: &[Event]) -> (Vec<Match>, u64) {
        let n = self.rules.rules.len();
        let mut hit = vec![false; n];
        let mut matches = Vec::new();
        let mut candidates = 0u64;
        for event in events {
            hit.fill(false);
            let mut any = self.prefilter.candidates(&event.raw, &mut hit) > 0;
            for &(rule, min) in &self.by_level {
                if level_reaches(event.level, min) {
                    hit[rule] = true;
                    any = true;
                }
            }
            for &rule in &self.always {
                hit[rule] = true;
                any = true;
            }
            if !any {
                continue;
            }
            for (idx, rule) in self.rules.rules.iter().enumerate() {
                if !hit[idx] {
                    continue;
                }
                candidates += 1;
                if let Some(captures) = confirm(rule, event) {
                    matches.push(Match {
                        event: event.id,
                        ts: event.ts,
                        rule: idx,
                        service: event.service.clone(),
                        captures,
                        excerpt: excerpt(&event.raw),
                    });
                }
            }
        }
        (matches, candidates)
    }
}

/// `level >= min`, where an unknown level reaches nothing.
fn level_reaches(level: Level, min: Level) -> bool {
    level != Level::Unknown && level >= min
}

/// Stage 2: does a candidate event really fit the rule? Gives the captures when it does.
pub(crate) fn confirm(rule: &Rule, event: &Event) -> Option<Vec<(String, String)>> {
    if !rule.applies_to(&event.service) {
        return None;
    }
    if rule
        .min_level
        .is_some_and(|min| !level_reaches(event.level, min))
    {
        return None;
    }
    if !rule.predicates.iter().all(|p| p.eval(event)) {
        return None;
    }
    let mut captures = Vec::new();
    if let Some(re) = &rule.regex {
        let caps = re.captures(&event.raw)?;
        for name in re.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                captures.push((name.to_string(), m.as_str().to_string()));
            }
        }
    }
    for key in &rule.capture_fields {
        if captures.iter().any(|(name, _)| name == key) {
            continue;
        }
        let value = match key.as_str() {
            "service" => event.service.clone(),
            "level" => event.level.as_str().to_string(),
            path => match event.field(path) {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Null) | None => String::new(),
                Some(other) => other.to_string(),
            },
        };
        captures.push((key.clone(), value));
    }
    Some(captures)
}

/// The first line of the raw text, cut at a char boundary.
fn excerpt(raw: &str) -> String {
    let first = raw.split('\n').next().unwrap_or("");
    if first.len() <= EXCERPT_BYTES {
        return first.to_string();
    }
    let mut end = EXCERPT_BYTES;
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &first[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::check::example_event;

    const RULES: &str = r#"
[[rule]]
id = "pg-too-many-clients"
class = "db-connection"
severity = "critical"
title = "too many clients"
services = ["postgres"]
literals = ["too many clients already", "remaining connection slots are reserved"]
regex = 'FATAL:\s+(?P<reason>sorry, too many clients already|remaining connection slots are reserved)'
runbook = "database-connection-issues"

[[rule]]
id = "health-503"
class = "app-down"
severity = "critical"
title = "health 503"
literals = ["/api/health"]
where = ["res.statusCode >= 500"]
group_by = ["req.url", "hostname"]
runbook = "application-down"

[[rule]]
id = "errors"
class = "high-error-rate"
severity = "warning"
title = "errors"
level = "error"
condition = "count >= 30 within 1m"
runbook = "warning-alerts:high-error-rate"
"#;

    fn matcher() -> Matcher {
        let set = RuleSet::from_files(&[("t.toml".into(), RULES.into())]).unwrap();
        Matcher::new(Arc::new(set)).unwrap()
    }

    fn ids(m: &Matcher, matches: &[Match]) -> Vec<String> {
        matches
            .iter()
            .map(|x| m.rules().rules[x.rule].id.clone())
            .collect()
    }

    #[test]
    fn literal_regex_and_services_confirm() {
        let m = matcher();
        let line = "2026-11-28 14:02:03.123 UTC [4301] newsletter@newsletter FATAL:  sorry, too many clients already";
        let found = m.scan(&Events::new(vec![example_event(line, "postgres")]));
        assert_eq!(ids(&m, &found), vec!["pg-too-many-clients", "errors"]);
        assert_eq!(
            found[0].captures,
            vec![(
                "reason".to_string(),
                "sorry, too many clients already".to_string()
            )]
        );
        assert_eq!(found[0].excerpt, line);
        // The same text from another service is not PostgreSQL refusing connections.
        let found = m.scan(&Events::new(vec![example_event(line, "app")]));
        assert_eq!(ids(&m, &found), vec!["errors"]);
    }

    #[test]
    fn compose_service_names_match_the_rules_services_by_word() {
        let m = matcher();
        let line = "2026-11-28 14:02:03.123 UTC [4301] newsletter@newsletter FATAL:  sorry, too many clients already";
        for service in [
            "postgres",
            "postgres-1",
            "newsletter_postgres",
            "postgres.replica",
        ] {
            let found = m.scan(&Events::new(vec![example_event(line, service)]));
            assert_eq!(
                ids(&m, &found),
                vec!["pg-too-many-clients", "errors"],
                "{service}"
            );
        }
        for service in ["postgresql", "mypostgres", "app"] {
            let found = m.scan(&Events::new(vec![example_event(line, service)]));
            assert_eq!(ids(&m, &found), vec!["errors"], "{service}");
        }
    }

    #[test]
    fn predicates_and_group_by_fields() {
        let m = matcher();
        let bad = r#"{"level":50,"time":1,"hostname":"app-1","req":{"method":"GET","url":"/api/health"},"res":{"statusCode":503},"msg":"request completed"}"#;
        let good = r#"{"level":30,"time":1,"hostname":"app-1","req":{"method":"GET","url":"/api/health"},"res":{"statusCode":200},"msg":"request completed"}"#;
        let found = m.scan(&Events::new(vec![
            example_event(good, "app"),
            example_event(bad, "app"),
        ]));
        assert_eq!(ids(&m, &found), vec!["health-503", "errors"]);
        assert_eq!(
            found[0].captures,
            vec![
                ("req.url".to_string(), "/api/health".to_string()),
                ("hostname".to_string(), "app-1".to_string())
            ]
        );
    }

    #[test]
    fn level_alone_makes_a_candidate_and_stats_add_up() {
        let m = matcher();
        let events = Events::new(vec![
            example_event(r#"{"level":50,"msg":"Unhandled error"}"#, "app"),
            example_event(r#"{"level":40,"msg":"slow"}"#, "app"),
            example_event("no level here", "app"),
        ]);
        let mut stats = Stats::default();
        let found = m.scan_counted(&events, &mut stats);
        assert_eq!(ids(&m, &found), vec!["errors"]);
        assert_eq!(
            stats,
            Stats {
                events: 3,
                candidates: 1,
                matches: 1
            }
        );
    }

    #[test]
    fn large_batches_keep_event_order() {
        let m = matcher();
        let line = r#"{"level":50,"msg":"boom"}"#;
        let mut events = Vec::new();
        for i in 0..5000u64 {
            let mut ev = example_event(line, "app");
            ev.id.offset = i;
            events.push(ev);
        }
        let found = m.scan(&Events::new(events));
        assert_eq!(found.len(), 5000);
        assert!(
            found
                .windows(2)
                .all(|w| w[0].event.offset < w[1].event.offset)
        );
    }

    #[test]
    fn long_first_lines_are_cut_for_the_excerpt() {
        let long = format!("{}é\nsecond", "x".repeat(299));
        let cut = excerpt(&long);
        assert!(cut.len() <= EXCERPT_BYTES + "…".len());
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("a\nb"), "a");
    }

    /// The two-stage scan must give exactly what trying every rule on every event would.
    fn naive(rules: &RuleSet, events: &[Event]) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        for event in events {
            for (idx, rule) in rules.rules.iter().enumerate() {
                let level_ok = rule
                    .min_level
                    .is_none_or(|min| event.level != Level::Unknown && event.level >= min);
                let literal_ok = rule.literals.is_empty()
                    || rule.literals.iter().any(|l| event.raw.contains(l.as_str()));
                let service_ok = rule.applies_to(&event.service);
                let regex_ok = rule.regex.as_ref().is_none_or(|re| re.is_match(&event.raw));
                let where_ok = rule.predicates.iter().all(|p| p.eval(event));
                if level_ok && literal_ok && service_ok && regex_ok && where_ok {
                    out.push((event.id.offset, idx));
                }
            }
        }
        out
    }

    fn pool() -> Vec<String> {
        let rules = crate::detect::pack::default_rules().unwrap();
        let mut lines: Vec<String> = rules
            .rules
            .iter()
            .flat_map(|r| r.examples.iter().chain(&r.counter_examples).cloned())
            .collect();
        lines.extend(
            [
                "plain text with no literal",
                "duration: 9999 ms",
                "ECONNREFUSED",
                "FATAL:  sorry, too many clients already remaining connection slots are reserved",
                "PANIC:",
                "ERROR something",
                "",
            ]
            .map(String::from),
        );
        lines
    }

    proptest::proptest! {
        #[test]
        fn two_stage_scan_equals_the_naive_scan(
            picks in proptest::collection::vec((0usize..1000, 0usize..1000, 0usize..7, 0usize..3), 0..40)
        ) {
            let rules = Arc::new(crate::detect::pack::default_rules().unwrap());
            let matcher = Matcher::new(rules.clone()).unwrap();
            let pool = pool();
            let services = ["app", "worker", "postgres", "redis", "kernel", "sshd", "apache"];
            let mut events = Vec::new();
            for (i, (a, b, service, join)) in picks.iter().enumerate() {
                let first = &pool[a % pool.len()];
                let second = &pool[b % pool.len()];
                let line = match join {
                    0 => first.clone(),
                    1 => format!("{first} {second}"),
                    _ => format!("{first}\n{second}"),
                };
                let mut ev = example_event(&line, services[*service]);
                ev.id.offset = i as u64;
                events.push(ev);
            }
            let got: Vec<(u64, usize)> = matcher
                .scan(&Events::new(events.clone()))
                .iter()
                .map(|m| (m.event.offset, m.rule))
                .collect();
            proptest::prop_assert_eq!(got, naive(&rules, &events));
        }

        #[test]
        fn the_prefilter_finds_every_literal_that_occurs(
            literals in proptest::collection::vec("[ab]{1,4}", 1..100),
            text in "[abc]{0,40}",
        ) {
            let mut toml = String::new();
            for (i, lit) in literals.iter().enumerate() {
                toml.push_str(&format!(
                    "[[rule]]\nid = \"r{i}\"\nclass = \"security\"\nseverity = \"info\"\ntitle = \"t\"\nliterals = [\"{lit}\"]\nrunbook = \"log-analysis\"\n"
                ));
            }
            let rules = RuleSet::from_files(&[("p.toml".into(), toml)]).unwrap();
            let prefilter = crate::detect::prefilter::Prefilter::new(&rules).unwrap();
            let mut hit = vec![false; literals.len()];
            prefilter.candidates(&text, &mut hit);
            let want: Vec<bool> = literals.iter().map(|l| text.contains(l.as_str())).collect();
            proptest::prop_assert_eq!(hit, want);
        }
    }
}
