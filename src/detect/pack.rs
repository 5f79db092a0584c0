//! The default rule pack: `patterns/*.toml` and `patterns/runbook.md`, embedded at build time.
//!
//! The binary works from any directory because the pack travels inside it; a user directory
//! (`--patterns DIR`) replaces it as a whole. Embedded data is trusted only because the tests below
//! load all of it and run `rules check` against it: nothing here may panic on it.
//!
//! It must not hold rule logic: adding a rule file means adding one line to [`FILES`].

use std::path::Path;

use crate::detect::rules::{RuleError, RuleSet};

/// Every rule file of the default pack, sorted by name as `load_dir` would read them.
const FILES: [(&str, &str); 9] = [
    ("patterns/app.toml", include_str!("../../patterns/app.toml")),
    (
        "patterns/database.toml",
        include_str!("../../patterns/database.toml"),
    ),
    (
        "patterns/email.toml",
        include_str!("../../patterns/email.toml"),
    ),
    (
        "patterns/errors.toml",
        include_str!("../../patterns/errors.toml"),
    ),
    (
        "patterns/memory.toml",
        include_str!("../../patterns/memory.toml"),
    ),
    (
        "patterns/performance.toml",
        include_str!("../../patterns/performance.toml"),
    ),
    (
        "patterns/queue.toml",
        include_str!("../../patterns/queue.toml"),
    ),
    (
        "patterns/security.toml",
        include_str!("../../patterns/security.toml"),
    ),
    (
        "patterns/storage.toml",
        include_str!("../../patterns/storage.toml"),
    ),
];

const RUNBOOK: &str = include_str!("../../patterns/runbook.md");

/// The embedded pack, compiled.
pub fn default_rules() -> Result<RuleSet, RuleError> {
    let files: Vec<(String, String)> = FILES
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    RuleSet::from_files(&files)
}

/// The embedded runbook's markdown.
pub fn default_runbook() -> &'static str {
    RUNBOOK
}

/// The runbook at `path` when given, else the embedded one.
pub fn runbook_from(path: Option<&Path>) -> std::io::Result<crate::runbook::Runbook> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)?,
        None => RUNBOOK.to_string(),
    };
    Ok(crate::runbook::Runbook::parse(&text))
}

/// The rules of a user directory when given, else the embedded pack.
pub fn rules_from(dir: Option<&Path>) -> Result<RuleSet, RuleError> {
    match dir {
        Some(dir) => RuleSet::load_dir(dir),
        None => default_rules(),
    }
}

/// The pack's text patterns for `rg -f`: one line per rule, its regex (capture names dropped, as
/// ripgrep joins the lines into one regex) or, without one, the alternation of its literals. A line
/// matches one of them exactly when the scan counts it among the lines the rules' patterns match
/// (see [`crate::detect::lines`]): a literal of the rule on the line and its regex, if any. Rules
/// with no literal (level alone) have no text pattern; their ids come back in the second list.
pub fn rg_patterns(rules: &RuleSet) -> (Vec<String>, Vec<String>) {
    let mut patterns = Vec::new();
    let mut left_out = Vec::new();
    for rule in &rules.rules {
        if rule.literals.is_empty() {
            left_out.push(rule.id.clone());
            continue;
        }
        let pattern = match &rule.regex {
            Some(re) => unname_groups(re.as_str()),
            None => rule
                .literals
                .iter()
                .map(|l| regex::escape(l))
                .collect::<Vec<_>>()
                .join("|"),
        };
        // A pattern file holds one pattern per line.
        if pattern.contains('\n') {
            left_out.push(rule.id.clone());
            continue;
        }
        patterns.push(pattern);
    }
    (patterns, left_out)
}

/// `(?P<name>…)` and `(?<name>…)` become `(?:…)`; escaped parentheses are left alone.
fn unname_groups(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let bytes = re.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        let rest = &re[i..];
        if !escaped && (rest.starts_with("(?P<") || rest.starts_with("(?<")) {
            let open = if rest.starts_with("(?P<") { 4 } else { 3 };
            if let Some(close) = rest[open..].find('>') {
                let name = &rest[open..open + close];
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    out.push_str("(?:");
                    i += open + close + 1;
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        escaped = !escaped && c == '\\';
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Class;

    #[test]
    fn rg_patterns_drop_capture_names_and_escape_literals() {
        assert_eq!(
            unname_groups(r"FATAL:\s+(?P<reason>a|b) \(?P<x>\) (?<ip>[0-9.]+)"),
            r"FATAL:\s+(?:a|b) \(?P<x>\) (?:[0-9.]+)"
        );
        let rules = default_rules().unwrap();
        let (patterns, left_out) = rg_patterns(&rules);
        assert!(left_out.contains(&"error-burst".to_string()));
        assert_eq!(patterns.len() + left_out.len(), rules.len());
        // Every pattern compiles as one regex together, as ripgrep joins them.
        let joined = patterns
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        let re = regex::Regex::new(&joined).unwrap();
        assert!(
            re.is_match("2026-11-28 14:02:03.123 UTC [1] FATAL:  sorry, too many clients already")
        );
        assert!(
            patterns
                .iter()
                .any(|p| p == r"email\.bounced|Email bounced")
        );
        assert!(!re.is_match("a quiet line"));
    }

    #[test]
    fn the_embedded_pack_lists_every_file_of_patterns() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .map(|n| format!("patterns/{n}"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
        let from_dir = rules_from(Some(&dir)).unwrap();
        assert_eq!(from_dir.len(), default_rules().unwrap().len());
    }

    #[test]
    fn the_default_pack_covers_every_incident_class() {
        let rules = rules_from(None).unwrap();
        for class in Class::ALL {
            assert!(
                rules.rules.iter().any(|r| r.class == class),
                "no rule raises {class}"
            );
        }
    }
}

/// The brief's canonical lines of the newsletter stack: what each incident class must see, and the
/// healthy baseline that must match nothing.
#[cfg(test)]
mod canonical {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::detect::Class;
    use crate::detect::check::example_event;
    use crate::detect::matcher::Matcher;
    use crate::detect::rules::Condition;
    use crate::event::Events;

    const PG: &str = "2026-11-28 14:02:03.123 UTC [4301] newsletter@newsletter";

    fn classes_of(matcher: &Matcher, service: &str, line: &str) -> BTreeSet<Class> {
        let events = Events::new(vec![example_event(line, service)]);
        matcher
            .scan(&events)
            .iter()
            .map(|m| matcher.rules().rules[m.rule].class)
            .collect()
    }

    #[test]
    fn every_class_sees_its_canonical_lines() {
        let matcher = Matcher::new(Arc::new(default_rules().unwrap())).unwrap();
        let cases: Vec<(Class, &str, String)> = vec![
            (Class::AppDown, "app", r#"{"level":50,"time":1,"req":{"method":"GET","url":"/api/health"},"res":{"statusCode":503},"responseTime":3,"msg":"request completed"}"#.into()),
            (Class::AppDown, "worker", r#"{"level":50,"time":1,"err":{"type":"Error","message":"connect ECONNREFUSED 172.18.0.5:3000","code":"ECONNREFUSED"},"msg":"App callback failed"}"#.into()),
            (Class::AppDown, "app", r#"{"level":60,"time":1,"msg":"Uncaught exception, process exiting","code":1}"#.into()),
            (Class::DbConnection, "postgres", format!("{PG} FATAL:  sorry, too many clients already")),
            (Class::DbConnection, "postgres", format!("{PG} FATAL:  remaining connection slots are reserved for non-replication superuser connections")),
            (Class::DbConnection, "app", r#"{"level":50,"time":1,"err":{"type":"Error","message":"timeout exceeded when trying to connect"},"msg":"Database query failed"}"#.into()),
            (Class::DbConnection, "app", r#"{"level":50,"time":1,"err":{"message":"connect ECONNREFUSED 172.18.0.2:5432"},"msg":"Database query failed"}"#.into()),
            (Class::DbConnection, "postgres", "2026-11-28 14:10:00.001 UTC [57] LOG:  received fast shutdown request".into()),
            (Class::DbDown, "postgres", format!("{PG} FATAL:  the database system is shutting down")),
            (Class::DbDown, "postgres", format!("{PG} FATAL:  the database system is starting up")),
            (Class::DbDown, "postgres", r#"2026-11-28 14:11:00.123 UTC [57] PANIC:  could not write to file "pg_wal/xlogtemp.57": No space left on device"#.into()),
            (Class::DbDown, "postgres", format!("{PG} ERROR:  invalid page in block 4242 of relation base/16384/16402")),
            (Class::HighMemory, "kernel", "Nov 28 14:20:01 newsletter-host kernel: [123456.789012] Out of memory: Killed process 2345 (node) total-vm:2345678kB, anon-rss:1234567kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:0".into()),
            (Class::HighMemory, "kernel", "Nov 28 14:20:01 newsletter-host kernel: [123456.789012] node invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0".into()),
            (Class::HighMemory, "worker", "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory".into()),
            (Class::HighMemory, "postgres", format!("{PG} ERROR:  out of memory\n{PG} DETAIL:  Failed on request of size 8192.")),
            (Class::EmailDelivery, "worker", r#"{"level":50,"time":1,"queue":"campaign-emails","jobId":"9001","err":{"statusCode":429,"name":"rate_limit_exceeded","message":"Too many requests. You can only make 10 requests per second."},"msg":"Resend API error"}"#.into()),
            (Class::EmailDelivery, "worker", r#"{"level":50,"time":1,"err":{"statusCode":500,"name":"internal_server_error"},"msg":"Resend API error"}"#.into()),
            (Class::EmailDelivery, "worker", r#"{"level":40,"time":1,"type":"email.bounced","msg":"Email bounced"}"#.into()),
            (Class::EmailDelivery, "worker", r#"{"level":40,"time":1,"type":"email.complained","msg":"Spam complaint received"}"#.into()),
            (Class::EmailDelivery, "worker", r#"{"level":50,"time":1,"msg":"Email delivery failed","jobId":"9003"}"#.into()),
            (Class::QueueBacklog, "worker", r#"{"level":40,"time":1,"queue":"campaign-emails","jobId":"9100","msg":"job stalled more than allowable limit"}"#.into()),
            (Class::QueueBacklog, "worker", r#"{"level":50,"time":1,"queue":"campaign-emails","jobId":"9101","failedReason":"job stalled more than allowable limit","msg":"Job failed"}"#.into()),
            (Class::QueueBacklog, "worker", r#"{"level":40,"time":1,"queue":"campaign-emails","waiting":5234,"active":5,"msg":"Queue backlog growing"}"#.into()),
            (Class::SlowQueries, "postgres", format!("{PG} LOG:  duration: 5234.123 ms  statement: SELECT * FROM email_events")),
            (Class::SlowQueries, "postgres", format!("{PG} ERROR:  canceling statement due to statement timeout\n{PG} STATEMENT:  SELECT 1")),
            (Class::HighCpu, "app", r#"{"level":40,"time":1,"eventLoopLagMs":850,"cpu":0.97,"msg":"Event loop lag high"}"#.into()),
            (Class::Storage, "worker", r#"{"level":50,"time":1,"bucket":"newsletter-assets","err":{"name":"S3ServiceException","message":"We encountered an internal error. Please try again.","$metadata":{"httpStatusCode":500}},"msg":"R2 upload failed"}"#.into()),
            (Class::Storage, "app", r#"{"level":50,"time":1,"msg":"File upload failed","err":{"message":"R2 connection error: getaddrinfo ENOTFOUND 42abc.r2.cloudflarestorage.com"}}"#.into()),
            (Class::Storage, "app", r#"{"level":50,"time":1,"check":"storage","msg":"Storage health check failing"}"#.into()),
            (Class::Redis, "app", r#"{"level":50,"time":1,"err":{"message":"connect ECONNREFUSED 172.18.0.4:6379","code":"ECONNREFUSED"},"msg":"Redis connection error"}"#.into()),
            (Class::Redis, "app", r#"{"level":50,"time":1,"err":{"message":"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk."},"msg":"Redis command failed"}"#.into()),
            (Class::Redis, "worker", r#"{"level":50,"time":1,"err":{"message":"OOM command not allowed when used memory > 'maxmemory'."},"msg":"Redis command failed"}"#.into()),
            (Class::Redis, "redis", "1:M 28 Nov 2026 14:50:01.123 # Background saving error".into()),
            (Class::Redis, "redis", "1:M 28 Nov 2026 14:50:01.123 # Can't save in background: fork: Cannot allocate memory".into()),
            (Class::HighErrorRate, "app", r#"{"level":50,"time":1,"err":{"type":"TypeError","message":"Cannot read properties of undefined (reading 'id')"},"msg":"Unhandled error in /api/campaigns/:id"}"#.into()),
            (Class::HighLatency, "app", r#"{"level":40,"time":1,"req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":4200,"msg":"slow request"}"#.into()),
            (Class::HighLatency, "app", r#"{"level":50,"time":1,"msg":"request timeout","responseTime":30000}"#.into()),
            (Class::Security, "app", r#"{"level":40,"time":1,"ip":"203.0.113.9","email":"admin@example.com","msg":"failed login"}"#.into()),
            (Class::Security, "app", r#"{"level":40,"time":1,"ip":"203.0.113.9","msg":"rate limit exceeded"}"#.into()),
            (Class::Security, "app", r#"{"level":40,"time":1,"msg":"suspicious activity detected","ip":"203.0.113.9"}"#.into()),
            (Class::Security, "postgres", format!("{PG} FATAL:  password authentication failed for user \"newsletter\"\n{PG} DETAIL:  Connection matched pg_hba.conf line 99: \"host all all all scram-sha-256\"")),
        ];
        for (class, service, line) in &cases {
            let found = classes_of(&matcher, service, line);
            assert!(
                found.contains(class),
                "{class} not raised by {service}: {line}\n(found {found:?})"
            );
        }
        let covered: BTreeSet<Class> = cases.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(covered.len(), Class::ALL.len());
    }

    #[test]
    fn the_healthy_baseline_matches_nothing() {
        let matcher = Matcher::new(Arc::new(default_rules().unwrap())).unwrap();
        for (service, line) in [
            (
                "app",
                r#"{"level":30,"time":1796220000123,"pid":23,"hostname":"newsletter-app-1","reqId":"req-1a2b","req":{"method":"GET","url":"/api/campaigns"},"res":{"statusCode":200},"responseTime":42,"msg":"request completed"}"#,
            ),
            (
                "app",
                r#"{"level":30,"time":1796220000123,"pid":23,"hostname":"newsletter-app-1","req":{"method":"GET","url":"/api/health"},"res":{"statusCode":200},"responseTime":2,"msg":"request completed"}"#,
            ),
            (
                "worker",
                r#"{"level":30,"time":1796220000456,"pid":41,"hostname":"newsletter-worker-1","queue":"campaign-emails","jobId":"8812","msg":"Job completed","durationMs":310}"#,
            ),
            (
                "worker",
                r#"{"level":30,"time":1796220000456,"queue":"campaign-emails","jobId":"8813","emailId":"4f1c","to":"r***@example.com","msg":"Email sent via Resend"}"#,
            ),
            (
                "worker",
                r#"{"level":30,"time":1796220000456,"queue":"ai-insights","jobId":"77","model":"gpt-4o-mini","tokens":812,"msg":"OpenAI completion finished"}"#,
            ),
            (
                "worker",
                r#"{"level":30,"time":1796220000456,"bucket":"newsletter-assets","key":"uploads/t_42/img.png","bytes":48211,"msg":"R2 upload complete"}"#,
            ),
            (
                "postgres",
                "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT * FROM campaigns WHERE tenant_id = $1",
            ),
            (
                "postgres",
                "2026-11-28 14:00:02.001 UTC [57] LOG:  checkpoint starting: time",
            ),
            (
                "redis",
                "1:M 28 Nov 2026 14:00:03.123 * 100 changes in 300 seconds. Saving...",
            ),
            (
                "kernel",
                "Nov 28 14:00:04 newsletter-host kernel: [123456.789012] eth0: link up",
            ),
        ] {
            let events = Events::new(vec![example_event(line, service)]);
            // Heartbeats (`absent`) and rate bases (`never`) are healthy lines by design.
            let found: Vec<_> = matcher
                .scan(&events)
                .into_iter()
                .filter(|m| {
                    !matches!(
                        matcher.rules().rules[m.rule].condition,
                        Condition::Never | Condition::Absent { .. }
                    )
                })
                .collect();
            assert!(
                found.is_empty(),
                "baseline line matched {:?}: {line}",
                found
                    .iter()
                    .map(|m| &matcher.rules().rules[m.rule].id)
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn thresholds_leave_room_for_a_healthy_baseline() {
        let rules = default_rules().unwrap();
        let count = |id: &str| match rules.get(id).unwrap().condition {
            Condition::Count { n, within_secs } => (n, within_secs),
            Condition::Immediate => (1, 0),
            ref other => panic!("{id}: {other:?}"),
        };
        assert_eq!(count("error-burst"), (30, 60));
        assert_eq!(count("pg-slow-statements"), (3, 600));
        assert_eq!(count("app-failed-logins"), (5, 300));
        assert_eq!(count("app-health-503"), (3, 60));
        for id in ["pg-corruption", "pg-statement-timeout", "app-uncaught-exit"] {
            assert_eq!(
                rules.get(id).unwrap().condition,
                Condition::Immediate,
                "{id}"
            );
        }
        assert_eq!(
            rules.get("pg-corruption").unwrap().severity,
            crate::detect::Severity::Critical
        );
    }
}

/// The pack against the real public logs of `../shared/corpora/`, read in place (never copied). Each
/// line stands in for an event as the example builder reads it; the real parser is tested elsewhere.
#[cfg(test)]
mod corpus {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::detect::check::example_event;
    use crate::detect::matcher::Matcher;
    use crate::event::Events;

    fn corpora() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("LOGWARDEN_CORPORA") {
            return Some(PathBuf::from(dir));
        }
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
        [beside, PathBuf::from("/work/shared/corpora")]
            .into_iter()
            .find(|p| p.is_dir())
    }

    /// Rule id → the captures of each of its matches over a file.
    type Found = BTreeMap<String, Vec<Vec<(String, String)>>>;

    /// Scan a corpus file, one line per event.
    fn scan(file: &str, service: &str) -> Option<Found> {
        let Some(dir) = corpora() else {
            eprintln!("skipped: no corpora folder");
            return None;
        };
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let events: Vec<_> = text
            .lines()
            .map(|l| example_event(l.trim_end_matches('\r'), service))
            .collect();
        let matcher = Matcher::new(Arc::new(default_rules().unwrap())).unwrap();
        let mut out = Found::new();
        for m in matcher.scan(&Events::new(events)) {
            let id = matcher.rules().rules[m.rule].id.clone();
            out.entry(id).or_default().push(m.captures);
        }
        Some(out)
    }

    fn count(found: &Found, id: &str) -> usize {
        found.get(id).map_or(0, Vec::len)
    }

    #[test]
    fn openssh_brute_force_is_grouped_by_its_source() {
        let Some(found) = scan("loghub/OpenSSH/OpenSSH_2k.log", "sshd") else {
            return;
        };
        // 520 Failed password + 113 Invalid user + 507 pam authentication failure lines.
        assert!(count(&found, "ssh-auth-failures") >= 1100, "{found:?}");
        assert_eq!(count(&found, "ssh-break-in-attempt"), 85);
        let mut by_ip: BTreeMap<&str, usize> = BTreeMap::new();
        for captures in &found["ssh-auth-failures"] {
            for (name, value) in captures {
                if name == "ip" {
                    *by_ip.entry(value.as_str()).or_default() += 1;
                }
            }
        }
        let top = by_ip.iter().max_by_key(|(_, n)| **n).unwrap();
        assert_eq!(*top.0, "183.62.140.253");
        assert!(
            !found
                .keys()
                .any(|id| id.starts_with("error-") || id == "kernel-oom-kill")
        );
    }

    #[test]
    fn linux_syslog_has_auth_failures_and_no_oom() {
        let Some(found) = scan("loghub/Linux/Linux_2k.log", "syslog") else {
            return;
        };
        assert!(count(&found, "ssh-auth-failures") >= 489);
        assert!(count(&found, "ftp-connection-flood") >= 900);
        assert_eq!(count(&found, "kernel-oom-kill"), 0);
    }

    #[test]
    fn postgres_corpora_raise_what_the_readme_expects() {
        let Some(light) = scan("pgbadger/stderr/light.postgres.log", "postgres") else {
            return;
        };
        assert_eq!(count(&light, "pg-slow-statements"), 0, "{light:?}");

        let tempfile = scan("pgbadger/stderr/tempfile_only.log", "postgres").unwrap();
        assert_eq!(count(&tempfile, "pg-slow-statements"), 65);

        let queryid = scan("pgbadger/stderr/queryid.log", "postgres").unwrap();
        assert_eq!(count(&queryid, "pg-lock-wait"), 1);
        assert_eq!(count(&queryid, "pg-slow-statements"), 1);

        let logplex = scan("pgbadger/syslog/logplex.log", "postgres").unwrap();
        assert_eq!(count(&logplex, "pg-deadlock"), 1);
        assert_eq!(count(&logplex, "pg-very-slow-statement"), 1);

        let cloudsql = scan("pgbadger/cloud/cloudsql.log", "postgres").unwrap();
        assert!(
            count(&cloudsql, "pg-restart-terminating") >= 4,
            "{cloudsql:?}"
        );
        assert_eq!(count(&cloudsql, "pg-starting-up"), 1);

        let failed_start = scan("pgbadger/stderr/pg_rawcsv.log", "postgres").unwrap();
        assert_eq!(count(&failed_start, "pg-failed-start"), 2);

        let rds = scan("pgbadger/stderr/rds_head3000.log", "postgres").unwrap();
        assert_eq!(count(&rds, "pg-no-hba-entry"), 2);
        assert_eq!(count(&rds, "pg-slow-statements"), 0);
    }
}
