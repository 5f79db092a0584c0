//! Maintenance windows: silences that come back on a schedule, for the runbook's recurring tasks
//! (the weekly container restart, the monthly `VACUUM FULL ANALYZE`).
//!
//! A [`Maintenance`] is a profile's `[[maintenance]]`: a name, a [`Cron`] schedule (five fields,
//! UTC, as crontab reads them), a length, matchers and a reason. Each time the schedule fires, a
//! window of that length opens; the engine makes each window a silence of its own
//! ([`Maintenance::window_at`], id `mnt-NAME-YYYYMMDDTHHMMZ`), so a window covers and releases
//! incidents exactly as an operator's silence does, on event time (a backfill of last month's
//! logs finds the windows the live run found).
//!
//! Owns the cron language (`*`, `N`, `N-M`, lists, `/STEP`, month and weekday names, `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly`; when both the day of month and the day of week are
//! restricted, either may match, as in cron) and finding occurrences. Must not: read the clock or
//! hold incidents.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use crate::event::Timestamp;
use crate::incident::silence::{Matcher, Silence, SilenceId};

/// A five-field cron schedule, in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// The day-of-month field was `*` (the day of week alone decides), and the other way round.
    any_day: bool,
    any_weekday: bool,
}

/// How far a search for an occurrence goes (a 29 February on a Monday comes back every 28 years).
const SEARCH_DAYS: i32 = 366 * 29;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parse `0 3 1 * *` (minute, hour, day of month, month, day of week) or a macro.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown schedule `{other}`: @hourly, @daily, @weekly, @monthly or @yearly"
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "`{text}` has {} fields; a schedule has five: minute hour day-of-month month \
                 day-of-week (`0 3 1 * *`: 03:00 UTC on the 1st of each month)",
                fields.len()
            ));
        };
        let mut weekdays = field(weekday, "day of week", 0, 7, &WEEKDAYS)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays & !(1 << 7)) | 1;
        }
        Ok(Cron {
            text: text.trim().to_string(),
            minutes: field(minute, "minute", 0, 59, &[])?,
            hours: field(hour, "hour", 0, 23, &[])?,
            days: field(day, "day of month", 1, 31, &[])?,
            months: field(month, "month", 1, 12, &MONTHS)?,
            weekdays,
            any_day: day == "*",
            any_weekday: weekday == "*",
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, date: Date) -> bool {
        let month = u32::try_from(date.month()).unwrap_or(0);
        if self.months & (1 << month) == 0 {
            return false;
        }
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => day,
            (true, false) => weekday,
            (false, false) => day || weekday,
        }
    }

    /// The times of day it fires at, in order.
    fn times(&self) -> impl DoubleEndedIterator<Item = (i8, i8)> + Clone + '_ {
        (0..24i8)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(|h| {
                (0..60i8)
                    .filter(|m| self.minutes & (1 << m) != 0)
                    .map(move |m| (h, m))
            })
    }

    /// The first time it fires strictly after `t`; `None` when it never does (`0 0 30 2 *`).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let start = civil(t)?;
        let mut date = start.date();
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                for (h, m) in self.times() {
                    let at = instant(date, h, m)?;
                    if at > t {
                        return Some(at);
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The last time it fired at or before `t`.
    pub fn last_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let start = civil(t)?;
        let mut date = start.date();
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                for (h, m) in self.times().rev() {
                    let at = instant(date, h, m)?;
                    if at <= t {
                        return Some(at);
                    }
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }
}

fn civil(t: Timestamp) -> Option<DateTime> {
    let at = jiff::Timestamp::from_microsecond(t.as_micros()).ok()?;
    Some(TimeZone::UTC.to_datetime(at))
}

fn instant(date: Date, hour: i8, minute: i8) -> Option<Timestamp> {
    let time = Time::new(hour, minute, 0, 0).ok()?;
    let at = TimeZone::UTC.to_timestamp(date.to_datetime(time)).ok()?;
    Some(Timestamp::from_jiff(at))
}

/// One cron field → a bit set of the values it allows (bit `v` for value `v`).
fn field(text: &str, what: &str, low: u32, high: u32, names: &[&str]) -> Result<u64, String> {
    let value = |v: &str| -> Result<u32, String> {
        let lower = v.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Names count from the field's low end: January is 1, Sunday 0.
            return Ok(u32::try_from(i).unwrap_or(0) + low);
        }
        let n: u32 = v
            .parse()
            .map_err(|_| format!("{what} `{v}` is not a number from {low} to {high}"))?;
        if n < low || n > high {
            return Err(format!("{what} {n} is out of range: {low} to {high}"));
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: step `{step}` is not a positive number"))?;
                (range, step)
            }
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `N/STEP` runs from N to the end.
                None if step > 1 => (value(range)?, high),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("{what}: `{range}` runs backwards"));
        }
        for v in (from..=to).step_by(usize::try_from(step).unwrap_or(1)) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// A recurring maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Unique in the profile; one word (it names the windows' silence ids).
    pub name: String,
    pub cron: Cron,
    /// How long each window lasts.
    pub for_secs: i64,
    pub matchers: Vec<Matcher>,
    pub reason: String,
}

impl Maintenance {
    /// The window that holds at `t` (it started at or before `t` and has not ended), if any.
    pub fn window_at(&self, t: Timestamp) -> Option<Silence> {
        let start = self.cron.last_at_or_before(t)?;
        (t < start.plus_secs(self.for_secs)).then(|| self.window(start))
    }

    /// The first window starting strictly after `t`.
    pub fn window_after(&self, t: Timestamp) -> Option<Silence> {
        self.cron.next_after(t).map(|start| self.window(start))
    }

    /// The window starting at `start`, as a silence.
    fn window(&self, start: Timestamp) -> Silence {
        let stamp = start.to_jiff().strftime("%Y%m%dT%H%MZ");
        Silence {
            id: SilenceId(format!("mnt-{}-{stamp}", self.name)),
            matchers: self.matchers.clone(),
            starts: start,
            ends: start.plus_secs(self.for_secs),
            reason: self.reason.clone(),
            by: format!("maintenance {} ({})", self.name, self.cron.as_str()),
            created: start,
            expired: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::from_jiff(text.parse().unwrap())
    }

    #[test]
    fn a_monthly_window_fires_on_the_first_across_month_and_year_boundaries() {
        let monthly = Cron::parse("0 3 1 * *").unwrap();
        assert_eq!(
            monthly.next_after(at("2026-11-28T12:00:00Z")),
            Some(at("2026-12-01T03:00:00Z"))
        );
        assert_eq!(
            monthly.next_after(at("2026-12-01T03:00:00Z")),
            Some(at("2027-01-01T03:00:00Z"))
        );
        assert_eq!(
            monthly.last_at_or_before(at("2027-01-01T02:59:59Z")),
            Some(at("2026-12-01T03:00:00Z"))
        );
        assert_eq!(
            monthly.last_at_or_before(at("2027-01-01T03:00:00Z")),
            Some(at("2027-01-01T03:00:00Z"))
        );
    }

    #[test]
    fn fields_take_lists_ranges_steps_names_and_macros() {
        let c = Cron::parse("*/15 9-17 * jan,JUL mon-fri").unwrap();
        // Friday 2027-01-01 10:07 → 10:15 the same day; Saturday → Monday 09:00.
        assert_eq!(
            c.next_after(at("2027-01-01T10:07:00Z")),
            Some(at("2027-01-01T10:15:00Z"))
        );
        assert_eq!(
            c.next_after(at("2027-01-01T17:45:00Z")),
            Some(at("2027-01-04T09:00:00Z"))
        );
        // Sunday as 0 or 7; a day of month or a weekday when both are given.
        let sunday = Cron::parse("30 2 * * 7").unwrap();
        assert_eq!(
            sunday.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-06T02:30:00Z"))
        );
        let either = Cron::parse("0 0 15 * sun").unwrap();
        assert_eq!(
            either.next_after(at("2026-12-07T00:00:00Z")),
            Some(at("2026-12-13T00:00:00Z"))
        );
        assert_eq!(
            either.next_after(at("2026-12-13T00:00:00Z")),
            Some(at("2026-12-15T00:00:00Z"))
        );
        assert_eq!(
            Cron::parse("@weekly")
                .unwrap()
                .next_after(at("2026-12-07T00:00:00Z")),
            Some(at("2026-12-13T00:00:00Z"))
        );
        assert_eq!(
            Cron::parse("0 0 30 2 *")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
        for bad in [
            "0 3 1 *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@sometimes",
            "0 3 first * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_holds_from_its_start_for_its_length_and_names_itself() {
        let vacuum = Maintenance {
            name: "vacuum".into(),
            cron: Cron::parse("0 3 1 * *").unwrap(),
            for_secs: 3600,
            matchers: crate::incident::silence::parse_matchers("class=db-down").unwrap(),
            reason: "monthly VACUUM FULL".into(),
        };
        assert_eq!(vacuum.window_at(at("2026-12-01T02:59:59Z")), None);
        let window = vacuum.window_at(at("2026-12-01T03:30:00Z")).unwrap();
        assert_eq!(window.id.0, "mnt-vacuum-20261201T0300Z");
        assert_eq!(
            (window.starts, window.ends),
            (at("2026-12-01T03:00:00Z"), at("2026-12-01T04:00:00Z"))
        );
        assert_eq!(vacuum.window_at(at("2026-12-01T04:00:00Z")), None);
        assert_eq!(
            vacuum
                .window_after(at("2026-12-01T03:30:00Z"))
                .unwrap()
                .starts,
            at("2027-01-01T03:00:00Z")
        );
    }
}
