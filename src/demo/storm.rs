//! An incident storm: `n` PostgreSQL lines that all match a rule, in one minute of event time.
//!
//! Refused connections from many backends, failed logins for twenty users, slow statements and
//! statement timeouts, interleaved as a database under siege writes them (`log_line_prefix =
//! '%m [%p] %q%u@%d '`). A correct engine folds them into a handful of incidents: one per rule and
//! group, not one per line. For the storm test and the engine's bench; deterministic, no clock.

use crate::event::Timestamp;

use super::render::{pg, pg_entry};

/// Users whose logins fail (the security rule groups by user).
pub const STORM_USERS: u32 = 20;

/// `n` matching lines (a failed login is an entry of two: FATAL and DETAIL) spread evenly over the
/// minute from `start`, newline-terminated.
pub fn storm(n: usize, start: Timestamp) -> String {
    let mut out = String::with_capacity(n * 130);
    let step = 60_000_000 / i64::try_from(n.max(1)).unwrap_or(i64::MAX);
    for i in 0..n {
        let ts = Timestamp(start.0 + i64::try_from(i).unwrap_or(0) * step);
        let pid = 4000 + u32::try_from(i % 997).unwrap_or(0);
        let line = match i % 4 {
            0 => pg(ts, pid, true, "FATAL", "sorry, too many clients already"),
            1 => {
                let user = format!("user{}", (i / 4) % STORM_USERS as usize);
                let fatal = format!("password authentication failed for user \"{user}\"");
                pg_entry(
                    ts,
                    pid,
                    true,
                    &[
                        ("FATAL", &fatal),
                        (
                            "DETAIL",
                            "Connection matched pg_hba.conf line 2: \"host all all 0.0.0.0/0 scram-sha-256\"",
                        ),
                    ],
                )
            }
            2 => pg(
                ts,
                pid,
                true,
                "LOG",
                &format!(
                    "duration: {}.{:03} ms  statement: SELECT * FROM subscribers WHERE list_id = $1",
                    1000 + i % 4000,
                    i % 1000
                ),
            ),
            _ => pg(
                ts,
                pid,
                true,
                "ERROR",
                "canceling statement due to statement timeout",
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
