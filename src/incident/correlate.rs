//! "Explains" links between incidents of different classes: cause → consequence.
//!
//! When a cause and its consequence are open at the same event time, the consequence's
//! `caused_by` names the cause. Neither is suppressed: the on-call engineer sees both, and the
//! link says where to start. The table is the runbook's reading of the stack (a database that is
//! down refuses connections; refused connections take the app down; …) and stays small on purpose.
//!
//! This module must not hide, merge or reorder incidents.

use crate::detect::Class;

/// Documented cause → consequence pairs. `HighErrorRate` as a consequence of every other class is
/// handled by [`explains`], not listed here.
pub const LINKS: [(Class, Class); 6] = [
    (Class::DbDown, Class::DbConnection),
    (Class::DbConnection, Class::AppDown),
    (Class::Redis, Class::AppDown),
    (Class::HighMemory, Class::AppDown),
    (Class::DbConnection, Class::HighLatency),
    (Class::SlowQueries, Class::HighLatency),
];

/// True when an open incident of class `cause` explains an open incident of class `consequence`.
pub fn explains(cause: Class, consequence: Class) -> bool {
    if consequence == Class::HighErrorRate {
        return cause != Class::HighErrorRate;
    }
    LINKS.contains(&(cause, consequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_pairs_explain_and_nothing_else_does() {
        assert!(explains(Class::DbDown, Class::DbConnection));
        assert!(explains(Class::Redis, Class::AppDown));
        assert!(explains(Class::SlowQueries, Class::HighLatency));
        assert!(explains(Class::Storage, Class::HighErrorRate));
        assert!(!explains(Class::HighErrorRate, Class::HighErrorRate));
        assert!(!explains(Class::AppDown, Class::DbDown));
        assert!(!explains(Class::DbConnection, Class::DbDown));
    }
}
