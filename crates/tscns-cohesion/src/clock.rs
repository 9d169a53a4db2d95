//! Time, injectable so tests can age a token without waiting an hour.

use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of "now".
pub trait Clock: Send + Sync {
    /// The current UTC time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved: for tests and the emulator's `--clock-offset`.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(t))
    }
    /// A clock showing the system time now.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }
    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, d: time::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g += d;
    }
    /// Sets the clock.
    pub fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Formats a time as Cohesion's profile `timestamp` does (`Tue, 25 Jan 2022 22:02:49 GMT`,
/// CohesionID-Docs Flusso-di-Autenticazione.md).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[t.month() as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses a profile `timestamp` (`Tue, 25 Jan 2022 22:02:49 GMT`). The weekday is checked.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let (wd, rest) = s.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u8 = parse_digits(parts[0], 1, 2)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|m| *m == parts[1])?;
    let month = time::Month::try_from(u8::try_from(m + 1).ok()?).ok()?;
    let year: i32 = i32::from(parse_digits::<u16>(parts[2], 4, 4)?);
    let hms: Vec<&str> = parts[3].split(':').collect();
    if hms.len() != 3 {
        return None;
    }
    let h: u8 = parse_digits(hms[0], 2, 2)?;
    let mi: u8 = parse_digits(hms[1], 2, 2)?;
    let se: u8 = parse_digits(hms[2], 2, 2)?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let tod = time::Time::from_hms(h, mi, se).ok()?;
    let t = time::PrimitiveDateTime::new(date, tod).assume_utc();
    if format_timestamp(t).split_once(',')?.0 != wd {
        return None;
    }
    Some(t)
}

fn parse_digits<T: std::str::FromStr>(s: &str, min: usize, max: usize) -> Option<T> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip() {
        let t = parse_timestamp("Tue, 25 Jan 2022 22:02:49 GMT").unwrap();
        assert_eq!(format_timestamp(t), "Tue, 25 Jan 2022 22:02:49 GMT");
        assert!(parse_timestamp("Wed, 25 Jan 2022 22:02:49 GMT").is_none());
        assert!(parse_timestamp("Tue, 25 Jan 2022 22:02:49 CET").is_none());
        assert!(parse_timestamp("Tue, 32 Jan 2022 22:02:49 GMT").is_none());
        assert!(parse_timestamp("").is_none());
    }

    proptest::proptest! {
        #[test]
        fn timestamp_never_panics(s in ".{0,40}") {
            let _ = parse_timestamp(&s);
        }

        #[test]
        fn timestamp_round_trips(secs in 0i64..4_000_000_000) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            proptest::prop_assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        }
    }
}
