//! "Explains" links between incidents: cause → consequence, as the rules declare them.
//!
//! A rule may say that its incidents explain incidents of other classes (`explains`), on some
//! services (`explains_in`, by default its own incident's services) and within a time of it
//! (`explains_within`): `db-connection` explains `app-down` on the app within five minutes. The
//! consequence's `caused_by` names the cause and it is marked a consequence, which stops it from
//! paging on its own (Alertmanager's inhibition), but nothing is hidden: the on-call engineer sees
//! both, and the link says where to start.
//!
//! This module must not hide, merge or reorder incidents; it only answers "does this explain that".

use crate::detect::rules::Rule;
use crate::incident::Incident;

/// True when `cause` (an incident of `cause_rule`) explains `consequence`: the rule names the
/// consequence's class, the consequence is on one of the services in scope, and it opened within
/// `explains_within` of the cause's matches (from `W` before its first to `W` after its last; the
/// quiet period before a resolution is not part of it).
pub fn explains(cause_rule: &Rule, cause: &Incident, consequence: &Incident) -> bool {
    if cause.id == consequence.id || !cause_rule.explains.contains(&consequence.class) {
        return false;
    }
    let scope: &[String] = if cause_rule.explains_in.is_empty() {
        &cause.services
    } else {
        &cause_rule.explains_in
    };
    let in_scope = consequence
        .services
        .iter()
        .any(|service| scope.iter().any(|s| same_service(s, service)));
    if !in_scope {
        return false;
    }
    let within = cause_rule.explains_within_secs;
    let opened = consequence.opened_at;
    let from = cause.first_seen.plus_secs(within.saturating_neg());
    let until = cause.last_seen.plus_secs(within);
    from <= opened && opened <= until
}

/// `name` names `service` as [`Rule::applies_to`] reads a rule's services: equal, or one of its
/// words (`app` is `newsletter-app`).
fn same_service(name: &str, service: &str) -> bool {
    name == service || service.split(['-', '_', '.']).any(|word| word == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Class;
    use crate::detect::rules::tests_support::rule;
    use crate::event::Timestamp;
    use crate::incident::{IncidentId, RunbookLink, State};

    fn incident(id: &str, class: Class, service: &str, first: i64, last: i64) -> Incident {
        Incident {
            id: IncidentId(id.into()),
            class,
            severity: crate::detect::Severity::Error,
            state: State::Open,
            title: String::new(),
            rule: String::new(),
            group: String::new(),
            services: vec![service.into()],
            first_seen: Timestamp::from_secs(first),
            opened_at: Timestamp::from_secs(first),
            last_seen: Timestamp::from_secs(last),
            resolved_at: None,
            count: 1,
            escalation_level: 1,
            caused_by: vec![],
            consequence: false,
            runbook: RunbookLink {
                title: String::new(),
                anchor: String::new(),
                steps: vec![],
            },
            evidence: vec![],
            silenced_by: None,
            acknowledged: None,
        }
    }

    #[test]
    fn declared_classes_on_services_in_scope_within_the_time() {
        let mut db = rule("pg-too-many-clients");
        db.explains = vec![Class::AppDown, Class::HighErrorRate];
        db.explains_in = vec!["app".into(), "worker".into()];
        db.explains_within_secs = 600;
        let cause = incident("c", Class::DbConnection, "postgres", 1000, 1100);
        let app = |service: &str, at: i64| incident("a", Class::AppDown, service, at, at);
        assert!(explains(&db, &cause, &app("newsletter-app", 1050)));
        assert!(explains(&db, &cause, &app("worker", 500)), "up to W before");
        assert!(
            !explains(&db, &cause, &app("worker", 399)),
            "more than W before"
        );
        assert!(!explains(&db, &cause, &app("redis", 1050)), "out of scope");
        let latency = incident("l", Class::HighLatency, "app", 1050, 1050);
        assert!(!explains(&db, &cause, &latency), "class not declared");

        // Up to W after its last match, resolved or not.
        assert!(explains(&db, &cause, &app("app", 1700)));
        let mut resolved = cause.clone();
        resolved.resolved_at = Some(Timestamp::from_secs(1400));
        assert!(!explains(&db, &resolved, &app("app", 1701)));

        // Without explains_in, the cause's own services.
        db.explains_in.clear();
        assert!(!explains(&db, &cause, &app("app", 1050)));
        assert!(explains(&db, &cause, &app("postgres", 1050)));
        assert!(!explains(&db, &cause, &cause), "never itself");
    }
}
