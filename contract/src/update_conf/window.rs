//! Reboot windows: locksmith's `LOCKSMITHD_REBOOT_WINDOW_START` / `_LENGTH` (flatcar/locksmith
//! README "Reboot windows", `pkg/timeutil/periodic.go`), as pure arithmetic on unix seconds.
//!
//! - Start: `HH:MM` (daily) or `Day HH:MM` (weekly), the day one of `Sun` … `Sat` in any case,
//!   24-hour time. Weeks start on Sunday (Go's `time.Weekday`, which locksmith uses).
//! - Length: Go duration syntax (`1h30m`, `90m`, `2h`, `1.5h`), at least a second, shorter than
//!   the period (a day for a daily window, a week for a weekly one). locksmith also took `0` and
//!   negative lengths; a window that is open for an instant (or never) is one the engine would
//!   practically never reboot in, so they are refused here, where the engine, the cloud-config
//!   validator and the image spec all check them.
//! - A window includes both its start and its end instant, like locksmith's.
//! - Time is UTC. locksmith uses the machine's local time zone; our images have no time zone
//!   configured, which makes the two agree there.
//!
//! We are stricter than locksmith's `fmt.Sscanf("%d:%d")` about the time of day: one or two
//! digits each side of the colon and nothing else (no sign, no trailing text).
//!
//! No clock is read here: every function takes `now` as an argument.

use std::fmt;
use std::time::Duration;

const DAY_SECS: u64 = 86_400;
const WEEK_SECS: u64 = 7 * DAY_SECS;
/// 1970-01-01 was a Thursday: the Sunday 00:00 before it is 4 days earlier.
const EPOCH_WEEKDAY: u64 = 4;

/// The shortest window length: a second.
const MIN_LENGTH_NS: u64 = 1_000_000_000;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Why a reboot window setting was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The start is not `HH:MM` or `Day HH:MM`.
    #[error(
        "reboot window start {value:?}: {reason} (expected HH:MM or Day HH:MM, e.g. \"Thu 23:00\")"
    )]
    Start {
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The length is not a Go duration, or shorter than a second, or not shorter than the period.
    #[error("reboot window length {value:?}: {reason}")]
    Length {
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// A repeating reboot window: daily from `HH:MM`, or weekly from `Day HH:MM`, for a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebootWindow {
    /// 0 = Sunday … 6 = Saturday; `None` for a daily window.
    weekday: Option<u8>,
    /// Seconds after midnight (UTC) the window opens.
    start_secs: u32,
    /// How long it stays open.
    length: Duration,
}

impl RebootWindow {
    /// Parses locksmith's two settings. Pure.
    pub fn parse(start: &str, length: &str) -> Result<RebootWindow, WindowError> {
        let (weekday, start_secs) = parse_start(start)?;
        let bad_length = |reason: String| WindowError::Length {
            value: length.to_owned(),
            reason,
        };
        let (negative, length_ns) = parse_go_duration(length).map_err(bad_length)?;
        if negative && length_ns > 0 {
            return Err(bad_length("must not be negative".into()));
        }
        if length_ns < MIN_LENGTH_NS {
            return Err(bad_length(
                "must be at least 1s (a shorter window is open for an instant: no reboot would \
                 ever fall into it)"
                    .into(),
            ));
        }
        let window = RebootWindow {
            weekday,
            start_secs,
            length: Duration::from_nanos(length_ns),
        };
        if window.length >= Duration::from_secs(window.period_secs()) {
            let period = if weekday.is_some() { "week" } else { "day" };
            return Err(bad_length(format!(
                "must be shorter than the window's period (a {period})"
            )));
        }
        Ok(window)
    }

    /// The period: a day or a week, in seconds.
    pub fn period_secs(&self) -> u64 {
        if self.weekday.is_some() {
            WEEK_SECS
        } else {
            DAY_SECS
        }
    }

    /// How long the window stays open.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Seconds from the latest opening at or before `now` to `now`.
    fn since_start(&self, now: u64) -> u64 {
        let period = self.period_secs();
        // Position of `now` in its week (from Sunday 00:00) or day.
        let pos = if self.weekday.is_some() {
            (now % WEEK_SECS + EPOCH_WEEKDAY * DAY_SECS) % WEEK_SECS
        } else {
            now % DAY_SECS
        };
        let start = u64::from(self.weekday.unwrap_or(0)) * DAY_SECS + u64::from(self.start_secs);
        (pos + period - start) % period
    }

    /// Whether the window is open at `now` (unix seconds), its start and end included.
    pub fn contains(&self, now: u64) -> bool {
        Duration::from_secs(self.since_start(now)) <= self.length
    }

    /// The first opening strictly after `now` (unix seconds).
    pub fn next_start(&self, now: u64) -> u64 {
        now.saturating_add(self.period_secs() - self.since_start(now))
    }

    /// Seconds until the window is open: 0 while it is, else until [`Self::next_start`].
    pub fn secs_until_open(&self, now: u64) -> u64 {
        if self.contains(now) {
            0
        } else {
            self.next_start(now) - now
        }
    }
}

/// Checks a window start alone (`HH:MM` or `Day HH:MM`). Pure.
pub fn check_start(start: &str) -> Result<(), WindowError> {
    parse_start(start).map(drop)
}

/// Checks a window length alone: what some start takes (at least a second, shorter than a
/// week); a daily window's must also be shorter than a day ([`RebootWindow::parse`]). Pure.
pub fn check_length(length: &str) -> Result<(), WindowError> {
    RebootWindow::parse("Sun 00:00", length).map(drop)
}

impl fmt::Display for RebootWindow {
    /// `Thu 23:00 for 1h30m0s` / `23:00 for 2h0m0s` (the length in Go's format, whole seconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(day) = self.weekday {
            write!(f, "{} ", WEEKDAYS[usize::from(day)])?;
        }
        let secs = self.length.as_secs();
        write!(
            f,
            "{:02}:{:02} for {}h{}m{}s",
            self.start_secs / 3600,
            self.start_secs / 60 % 60,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// `HH:MM` or `Day HH:MM` → (weekday, seconds after midnight).
fn parse_start(value: &str) -> Result<(Option<u8>, u32), WindowError> {
    let bad = |reason: &str| WindowError::Start {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let fields: Vec<&str> = value.split_whitespace().collect();
    let (weekday, time) = match fields.as_slice() {
        [time] => (None, *time),
        [day, time] => {
            let day = WEEKDAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day))
                .ok_or_else(|| bad(&format!("unknown day {day:?} (Sun, Mon, … Sat)")))?;
            (Some(day as u8), *time)
        }
        [] => return Err(bad("empty")),
        _ => return Err(bad("too many fields")),
    };
    let number = |s: &str, max: u32, what: &str| -> Result<u32, WindowError> {
        let n = (!s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .ok_or_else(|| bad(&format!("bad time of day {time:?}")))?;
        if n > max {
            return Err(bad(&format!("{what} must be 0 to {max}")));
        }
        Ok(n)
    };
    let (h, m) = time
        .split_once(':')
        .ok_or_else(|| bad(&format!("bad time of day {time:?}")))?;
    Ok((
        weekday,
        number(h, 23, "hour")? * 3600 + number(m, 59, "minute")? * 60,
    ))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or `0`. Returns (negative,
/// nanoseconds); errors say what is wrong. Pure.
pub fn parse_go_duration(value: &str) -> Result<(bool, u64), String> {
    const UNITS: [(&str, u64); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),  // µs (micro sign)
        ("\u{3bc}s", 1_000), // μs (Greek mu)
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let invalid = || "not a duration like 1h30m, 90m or 2h (units h, m, s, ms, us, ns)".to_owned();
    let (negative, mut s) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if s == "0" {
        return Ok((negative, 0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let overflow = || "too long".to_owned();
    let mut total: u64 = 0;
    while !s.is_empty() {
        let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
        let int_len = digits(s);
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => r.split_at(digits(r)),
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("missing unit in {value:?} (h, m, s, ms, us, ns)"));
        }
        let scale = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| format!("unknown unit {unit:?} (h, m, s, ms, us, ns)"))?;
        let whole = if int.is_empty() {
            0
        } else {
            int.parse::<u64>().map_err(|_| overflow())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction, to nanosecond precision (Go truncates the same way).
        let mut unit_scale = scale;
        for d in frac.bytes() {
            unit_scale /= 10;
            if unit_scale == 0 {
                break;
            }
            part = part
                .checked_add(u64::from(d - b'0') * unit_scale)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        if total > i64::MAX as u64 {
            return Err(overflow());
        }
        s = rest;
    }
    Ok((negative, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Unix seconds of a UTC date and time (Howard Hinnant's days_from_civil).
    fn utc(y: i64, m: i64, d: i64, hh: u64, mm: u64, ss: u64) -> u64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days as u64 * DAY_SECS + hh * 3600 + mm * 60 + ss
    }

    /// The weekday of unix seconds `t` (0 = Sunday), computed independently of the module.
    fn weekday(t: u64) -> u64 {
        (t / DAY_SECS + 4) % 7
    }

    #[test]
    fn calendar_helper_is_right() {
        // locksmith's tests: Thu May 21 2015; 2024-01-06 was a Saturday, 2024-01-07 a Sunday.
        assert_eq!(utc(2015, 5, 21, 0, 0, 0), 1_432_166_400);
        assert_eq!(weekday(utc(2015, 5, 21, 0, 0, 0)), 4);
        assert_eq!(weekday(utc(2024, 1, 6, 12, 0, 0)), 6);
        assert_eq!(weekday(utc(2024, 1, 7, 0, 0, 0)), 0);
    }

    struct Case {
        name: &'static str,
        start: &'static str,
        length: &'static str,
        now: u64,
        want_open: bool,
        want_until_open: u64,
    }

    #[test]
    fn table() {
        let thu = |h, m, s| utc(2015, 5, 21, h, m, s);
        let fri = |h, m, s| utc(2015, 5, 22, h, m, s);
        let sat = |h, m, s| utc(2024, 1, 6, h, m, s);
        let sun = |h, m, s| utc(2024, 1, 7, h, m, s);
        let cases = [
            // locksmith's TestToStart cases, in UTC.
            Case {
                name: "daily in 15 minutes",
                start: "00:15",
                length: "10s",
                now: thu(0, 0, 0),
                want_open: false,
                want_until_open: 15 * 60,
            },
            Case {
                name: "daily now",
                start: "00:00",
                length: "1h",
                now: thu(0, 0, 0),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "daily started 1s ago",
                start: "00:00",
                length: "1h",
                now: thu(0, 0, 1),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "daily closing edge",
                start: "02:33",
                length: "10h",
                now: thu(12, 33, 0),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "daily just closed",
                start: "02:33",
                length: "10h",
                now: thu(12, 33, 1),
                want_open: false,
                want_until_open: 13 * 3600 + 59 * 60 + 59,
            },
            Case {
                name: "daily across midnight",
                start: "23:05",
                length: "11h",
                now: thu(9, 33, 1),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "weekly in 15 minutes",
                start: "Thu 00:15",
                length: "10s",
                now: thu(0, 0, 0),
                want_open: false,
                want_until_open: 15 * 60,
            },
            Case {
                name: "weekly now",
                start: "Thu 00:00",
                length: "1h",
                now: thu(0, 0, 0),
                want_open: true,
                want_until_open: 0,
            },
            // The README's example: Thursday after 11pm, or Friday before 12:30am.
            Case {
                name: "Thu 23:00 inside",
                start: "Thu 23:00",
                length: "1h30m",
                now: thu(23, 30, 0),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "Thu 23:00 Friday morning",
                start: "Thu 23:00",
                length: "1h30m",
                now: fri(0, 30, 0),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "Thu 23:00 just after",
                start: "Thu 23:00",
                length: "1h30m",
                now: fri(0, 30, 1),
                want_open: false,
                want_until_open: 7 * DAY_SECS - 5401,
            },
            Case {
                name: "Thu 23:00 one second early",
                start: "thu 23:00",
                length: "90m",
                now: thu(22, 59, 59),
                want_open: false,
                want_until_open: 1,
            },
            // Across the week boundary (weeks start on Sunday).
            Case {
                name: "Sat 23:00 wraps into Sunday",
                start: "Sat 23:00",
                length: "2h",
                now: sun(0, 59, 0),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "Sat 23:00 closed Sunday 1:00:01",
                start: "SAT 23:00",
                length: "2h",
                now: sun(1, 0, 1),
                want_open: false,
                want_until_open: 6 * DAY_SECS + 22 * 3600 - 1,
            },
            Case {
                name: "Sun 00:00 from Saturday",
                start: "Sun 00:00",
                length: "1h",
                now: sat(23, 0, 0),
                want_open: false,
                want_until_open: 3600,
            },
            Case {
                name: "Sun 00:00 last week's ended",
                start: "Sun 0:00",
                length: "1h",
                now: sat(0, 0, 0),
                want_open: false,
                want_until_open: DAY_SECS,
            },
            Case {
                name: "one second is two instants (start and end included)",
                start: "12:00",
                length: "1s",
                now: thu(12, 0, 1),
                want_open: true,
                want_until_open: 0,
            },
            Case {
                name: "one second, two seconds later",
                start: "12:00",
                length: "1s",
                now: thu(12, 0, 2),
                want_open: false,
                want_until_open: DAY_SECS - 2,
            },
        ];
        for c in cases {
            let w = RebootWindow::parse(c.start, c.length).unwrap();
            assert_eq!(w.contains(c.now), c.want_open, "{}", c.name);
            assert_eq!(w.secs_until_open(c.now), c.want_until_open, "{}", c.name);
        }
    }

    #[test]
    fn bad_values() {
        let cases = [
            ("25:00", "1h", "hour must be 0 to 23"),
            ("23:61", "1h", "minute must be 0 to 59"),
            ("14", "1h", "bad time of day \"14\""),
            ("foo 14:00", "1h", "unknown day \"foo\""),
            ("Thursday 14:00", "1h", "unknown day"),
            ("sat 14:00 1234", "1h", "too many fields"),
            ("sat", "1h", "bad time of day \"sat\""),
            ("", "1h", "empty"),
            ("-1:00", "1h", "bad time of day"),
            ("14:00x", "1h", "bad time of day"),
            ("sat 14:00", "1j", "unknown unit \"j\""),
            ("sat 14:00", "-1h", "must not be negative"),
            ("Blursday 25:61", "1h", "unknown day \"Blursday\""),
            ("12:00", "0", "must be at least 1s"),
            ("12:00", "-0", "must be at least 1s"),
            ("12:00", "0s", "must be at least 1s"),
            ("12:00", "999ms", "must be at least 1s"),
            ("sat 14:00", "90", "missing unit"),
            ("sat 14:00", "", "not a duration"),
            ("sat 14:00", "h", "not a duration"),
            ("14:00", "24h", "shorter than the window's period (a day)"),
            (
                "Sat 14:00",
                "168h",
                "shorter than the window's period (a week)",
            ),
            ("14:00", "9999999999999h", "too long"),
        ];
        for (start, length, want) in cases {
            let e = RebootWindow::parse(start, length).unwrap_err().to_string();
            assert!(e.contains(want), "{start:?} {length:?}: {e}");
        }
    }

    #[test]
    fn go_durations() {
        let ns = |s| parse_go_duration(s).unwrap();
        assert_eq!(ns("1h30m"), (false, 5_400_000_000_000));
        assert_eq!(ns("90m"), (false, 5_400_000_000_000));
        assert_eq!(ns("1.5h"), (false, 5_400_000_000_000));
        assert_eq!(ns("2h"), (false, 7_200_000_000_000));
        assert_eq!(ns("+1m1s"), (false, 61_000_000_000));
        assert_eq!(ns(".5s"), (false, 500_000_000));
        assert_eq!(ns("1.s"), (false, 1_000_000_000));
        assert_eq!(ns("1ms2us3ns"), (false, 1_002_003));
        assert_eq!(ns("1µs"), (false, 1_000));
        assert_eq!(ns("1μs"), (false, 1_000));
        assert_eq!(ns("-0"), (true, 0));
        assert_eq!(ns("-3s"), (true, 3_000_000_000));
        for bad in ["", "-", ".s", "1", "1d", "1h-1m", "1..5s", "s1"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
        // A window length may be fractional: it still closes on time.
        let w = RebootWindow::parse("00:00", "1.5s").unwrap();
        assert!(w.contains(1) && !w.contains(2));
    }

    #[test]
    fn start_and_length_alone() {
        assert_eq!(check_start("thu 23:00"), Ok(()));
        assert!(check_start("Blursday 25:61").is_err());
        assert!(check_start("23:60").is_err());
        assert_eq!(check_length("1h30m"), Ok(()));
        // Some start takes it: a weekly window's.
        assert_eq!(check_length("25h"), Ok(()));
        for bad in ["-1h", "0", "1d", "168h", "1 hour"] {
            assert!(check_length(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display() {
        let w = RebootWindow::parse("thu 23:00", "90m").unwrap();
        assert_eq!(w.to_string(), "Thu 23:00 for 1h30m0s");
        assert_eq!(
            RebootWindow::parse("7:05", "2h").unwrap().to_string(),
            "07:05 for 2h0m0s"
        );
    }

    /// Reference: is `now` within `length` seconds after some opening, found by walking the
    /// calendar back day by day (independent of the modular arithmetic under test).
    fn reference_open(
        day_of_week: Option<u64>,
        start_secs: u64,
        length_secs: u64,
        now: u64,
    ) -> bool {
        let today = now / DAY_SECS;
        (0..=8u64).any(|back| {
            let Some(day) = today.checked_sub(back) else {
                return false;
            };
            if day_of_week.is_some_and(|w| (day + 4) % 7 != w) {
                return false;
            }
            let start = day * DAY_SECS + start_secs;
            start <= now && now <= start + length_secs
        })
    }

    fn windows() -> impl Strategy<Value = (Option<u64>, u64, u64)> {
        (proptest::option::of(0u64..7), 0u64..24, 0u64..60).prop_flat_map(|(day, h, m)| {
            let period = if day.is_some() { WEEK_SECS } else { DAY_SECS };
            (Just(day), Just(h * 3600 + m * 60), 1..period)
        })
    }

    /// A time near a week boundary (Saturday → Sunday midnight) or anywhere.
    fn times() -> impl Strategy<Value = u64> {
        let sunday = utc(2024, 1, 7, 0, 0, 0);
        prop_oneof![
            (0u64..3000, 0u64..4 * DAY_SECS)
                .prop_map(move |(week, off)| { sunday + week * WEEK_SECS + off - 2 * DAY_SECS }),
            (DAY_SECS * 10)..(1u64 << 40),
        ]
    }

    fn parsed(day: Option<u64>, start_secs: u64, length_secs: u64) -> RebootWindow {
        let start = format!("{:02}:{:02}", start_secs / 3600, start_secs / 60 % 60);
        let start = match day {
            Some(d) => format!("{} {start}", WEEKDAYS[d as usize]),
            None => start,
        };
        RebootWindow::parse(&start, &format!("{length_secs}s")).unwrap()
    }

    proptest! {
        #[test]
        fn contains_matches_the_calendar((day, start, len) in windows(), now in times()) {
            let w = parsed(day, start, len);
            prop_assert_eq!(w.contains(now), reference_open(day, start, len, now));
        }

        #[test]
        fn next_start_is_the_next_opening((day, start, len) in windows(), now in times()) {
            let w = parsed(day, start, len);
            let next = w.next_start(now);
            prop_assert!(next > now && next - now <= w.period_secs());
            // It is an opening: on the right weekday at the start time...
            prop_assert_eq!(next % DAY_SECS, start);
            if let Some(d) = day {
                prop_assert_eq!(weekday(next), d);
            }
            // ...and the window is open there.
            prop_assert!(w.contains(next));
        }

        #[test]
        fn secs_until_open_opens_the_window((day, start, len) in windows(), now in times()) {
            let w = parsed(day, start, len);
            let wait = w.secs_until_open(now);
            prop_assert_eq!(wait == 0, w.contains(now));
            prop_assert!(w.contains(now + wait));
            if wait > 0 {
                // Not open earlier: the opening is exactly `wait` away.
                prop_assert_eq!(now + wait, w.next_start(now));
                prop_assert!(!reference_open(day, start, len, now + wait - 1));
            }
        }
    }
}
