//! The schedule of a recurring job: a cron expression read in a time zone, and the computation
//! of its ticks (instants in milliseconds since the Unix epoch).
//!
//! # Daylight-saving time
//!
//! Ticks are computed on the wall clock of the time zone, with the rules of croner (the OCPS
//! rules, as in Vixie cron):
//! - a wall-clock time that does not exist (the hour skipped when clocks go forward) runs at the
//!   first real instant after the gap, once: a daily `30 2 * * *` runs at 03:00 on that day;
//! - a wall-clock time that exists twice (the hour repeated when clocks go back) runs once, in its
//!   first occurrence, when the hour field is fixed; a schedule whose hour field is a wildcard,
//!   range or step (e.g. hourly) runs in both occurrences, which are distinct real hours, so an
//!   hourly job still fires exactly once per real hour.

use crate::error::{Error, Result};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use std::fmt;

/// A parsed cron expression and time zone.
#[derive(Clone)]
pub(crate) struct Schedule {
    cron: Cron,
    tz: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("cron", &self.cron.pattern.as_str())
            .field("tz", &self.tz.name())
            .finish()
    }
}

const FIELDS_6: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

/// Parses a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6
/// (seconds first), naming the bad field when it is invalid.
pub(crate) fn parse_cron(expr: &str) -> Result<Cron> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if !(fields.len() == 5 || fields.len() == 6) || expr.contains('@') {
        return Err(Error::config(format!(
            "invalid cron expression `{expr}`: expected 5 fields (minute hour day-of-month month \
             day-of-week) or 6 with seconds first, found {}",
            fields.len()
        )));
    }
    parser().parse(expr).map_err(|whole| {
        // Find the field at fault: parse it alone, with every other field a wildcard.
        let names = &FIELDS_6[6 - fields.len()..];
        for (i, field) in fields.iter().enumerate() {
            let mut probe = vec!["*"; fields.len()];
            probe[i] = field;
            if let Err(e) = parser().parse(&probe.join(" ")) {
                return Error::config(format!(
                    "invalid cron expression `{expr}`: the {} field `{field}` is invalid ({e})",
                    names[i]
                ));
            }
        }
        Error::config(format!("invalid cron expression `{expr}`: {whole}"))
    })
}

/// Parses an IANA time zone name such as `Europe/Berlin` or `UTC`.
pub(crate) fn parse_tz(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| {
        Error::config(format!(
            "unknown time zone `{name}`: use an IANA name such as `UTC`, `Europe/Berlin` or \
             `America/New_York`"
        ))
    })
}

impl Schedule {
    /// Parses both parts; the error names the one at fault.
    pub(crate) fn parse(cron: &str, tz: &str) -> Result<Schedule> {
        Ok(Schedule {
            cron: parse_cron(cron)?,
            tz: parse_tz(tz)?,
        })
    }

    /// The first tick strictly after `after_ms`, or `None` when there is none (a pattern such as
    /// February 30th never matches).
    pub(crate) fn next_after(&self, after_ms: u64) -> Option<u64> {
        let ms = i64::try_from(after_ms).ok()?;
        let at = Utc
            .timestamp_millis_opt(ms)
            .single()?
            .with_timezone(&self.tz);
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        u64::try_from(next.timestamp_millis()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
        let local = NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap();
        // The earlier instant when ambiguous.
        let dt = tz.from_local_datetime(&local).earliest().unwrap();
        u64::try_from(dt.timestamp_millis()).unwrap()
    }

    fn utc(ms: u64) -> String {
        Utc.timestamp_millis_opt(i64::try_from(ms).unwrap())
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string()
    }

    /// Every tick in `[from, to)`.
    fn ticks(s: &Schedule, from: u64, to: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut t = from - 1;
        while let Some(next) = s.next_after(t) {
            if next >= to {
                break;
            }
            assert!(next > t, "ticks go forward");
            out.push(next);
            t = next;
        }
        out
    }

    #[test]
    fn five_and_six_fields_in_utc() {
        let every_second = Schedule::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(every_second.next_after(1_000), Some(2_000));
        assert_eq!(every_second.next_after(1_500), Some(2_000));
        let nightly = Schedule::parse("0 3 * * *", "UTC").unwrap();
        let t = nightly.next_after(at(Tz::UTC, 2026, 5, 1, 12, 0)).unwrap();
        assert_eq!(utc(t), "2026-05-02 03:00:00 UTC");
        let with_seconds = Schedule::parse("15 0 3 * * *", "UTC").unwrap();
        let t = with_seconds.next_after(t).unwrap();
        assert_eq!(utc(t), "2026-05-02 03:00:15 UTC");
    }

    #[test]
    fn time_zone_shifts_the_ticks() {
        let s = Schedule::parse("0 0 3 * * *", "Europe/Berlin").unwrap();
        let t = s.next_after(at(Tz::UTC, 2026, 7, 1, 12, 0)).unwrap();
        assert_eq!(utc(t), "2026-07-02 01:00:00 UTC", "03:00 CEST is 01:00 UTC");
    }

    #[test]
    fn bad_parts_are_named() {
        let e = Schedule::parse("0 0 25 * * *", "UTC").unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().contains("hour field `25`"), "{e}");
        let e = Schedule::parse("61 0 * * *", "UTC").unwrap_err();
        assert!(e.to_string().contains("minute field `61`"), "{e}");
        let e = Schedule::parse("0 0 * * * * 2026", "UTC").unwrap_err();
        assert!(e.to_string().contains("found 7"), "{e}");
        let e = Schedule::parse("* * * FOO *", "UTC").unwrap_err();
        assert!(e.to_string().contains("month field `FOO`"), "{e}");
        let e = Schedule::parse("0 3 * * *", "Europe/Berlni").unwrap_err();
        assert!(e.is_config());
        assert!(
            e.to_string().contains("unknown time zone `Europe/Berlni`"),
            "{e}"
        );
    }

    #[test]
    fn daily_0230_on_spring_forward_runs_once_just_after_the_gap() {
        // 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let berlin = Tz::Europe__Berlin;
        let s = Schedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        let got = ticks(
            &s,
            at(berlin, 2026, 3, 28, 0, 0),
            at(berlin, 2026, 3, 31, 0, 0),
        );
        let got: Vec<String> = got.into_iter().map(utc).collect();
        assert_eq!(
            got,
            [
                "2026-03-28 01:30:00 UTC", // 02:30 CET
                "2026-03-29 01:00:00 UTC", // the first instant after the gap: 03:00 CEST
                "2026-03-30 00:30:00 UTC", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn daily_0230_on_fall_back_runs_once() {
        // 2026-10-25 in Berlin: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let berlin = Tz::Europe__Berlin;
        let s = Schedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        let got = ticks(
            &s,
            at(berlin, 2026, 10, 24, 0, 0),
            at(berlin, 2026, 10, 27, 0, 0),
        );
        let got: Vec<String> = got.into_iter().map(utc).collect();
        assert_eq!(
            got,
            [
                "2026-10-24 00:30:00 UTC", // 02:30 CEST
                "2026-10-25 00:30:00 UTC", // the first 02:30 (CEST) only
                "2026-10-26 01:30:00 UTC", // 02:30 CET
            ]
        );
    }

    #[test]
    fn hourly_fires_once_per_real_hour_across_both_transitions() {
        let berlin = Tz::Europe__Berlin;
        let s = Schedule::parse("0 0 * * * *", "Europe/Berlin").unwrap();
        for (day, hours) in [(29, 23), (25, 25)] {
            let month = if day == 29 { 3 } else { 10 };
            let from = at(berlin, 2026, month, day, 0, 0);
            let to = at(berlin, 2026, month, day + 1, 0, 0);
            let got = ticks(&s, from, to);
            // 23 real hours on spring-forward day, 25 on fall-back day: one tick each, no tick
            // twice, none skipped.
            assert_eq!(got.len(), hours, "2026-{month}-{day}");
            assert_eq!(got[0], from);
            for pair in got.windows(2) {
                assert_eq!(pair[1] - pair[0], 3_600_000, "{}", utc(pair[1]));
            }
        }
    }

    #[test]
    fn a_pattern_that_never_matches_has_no_tick() {
        let s = Schedule::parse("0 0 0 30 2 *", "UTC").unwrap();
        assert_eq!(s.next_after(0), None);
    }
}
