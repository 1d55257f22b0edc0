//! Calendar arithmetic for timestamps written into outputs (UTC only, no clock read here):
//! seconds since the Unix epoch as a date and a time of day.

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    /// The date and time `unix` seconds after 1970-01-01T00:00:00Z. Pure.
    pub fn from_unix(unix: u64) -> Utc {
        let (year, month, day) = civil_from_days((unix / 86_400) as i64);
        let secs = (unix % 86_400) as u32;
        Utc {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        let t = |y, mo, d, h, mi, s| Utc {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        };
        assert_eq!(Utc::from_unix(0), t(1970, 1, 1, 0, 0, 0));
        // The images' SOURCE_DATE_EPOCH; a leap day; the last second of a leap year.
        assert_eq!(Utc::from_unix(1_767_225_600), t(2026, 1, 1, 0, 0, 0));
        assert_eq!(Utc::from_unix(951_782_400 + 3_723), t(2000, 2, 29, 1, 2, 3));
        assert_eq!(Utc::from_unix(1_735_689_599), t(2024, 12, 31, 23, 59, 59));
    }
}
