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

/// IMF-fixdate (RFC 9110 § 5.6.7), the shape of Cohesion's profile `timestamp`
/// (`Tue, 25 Jan 2022 22:02:49 GMT`, CohesionID-Docs Flusso-di-Autenticazione.md).
const IMF_FIXDATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year repr:full sign:automatic] [hour]:[minute]:[second] GMT"
);
/// The same, with a one- or two-digit day (seen in the wild; RFC 9110's obsolete forms aside).
const IMF_LOOSE_DAY: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day padding:none] [month repr:short] [year repr:full sign:automatic] [hour]:[minute]:[second] GMT"
);

/// Formats a time as Cohesion's profile `timestamp` does (`Tue, 25 Jan 2022 22:02:49 GMT`,
/// CohesionID-Docs Flusso-di-Autenticazione.md).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(IMF_FIXDATE)
        .unwrap_or_default()
}

/// Parses a profile `timestamp` (`Tue, 25 Jan 2022 22:02:49 GMT`). The weekday is checked.
pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    let t = time::PrimitiveDateTime::parse(s, IMF_FIXDATE)
        .or_else(|_| time::PrimitiveDateTime::parse(s, IMF_LOOSE_DAY))
        .ok()?
        .assume_utc();
    // The weekday is parsed but not cross-checked by every `time` version: check it here.
    (format_timestamp(t).get(..3)? == s.get(..3)?).then_some(t)
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
        assert_eq!(
            parse_timestamp("Wed, 5 Jan 2022 01:02:03 GMT"),
            parse_timestamp("Wed, 05 Jan 2022 01:02:03 GMT")
        );
        assert!(parse_timestamp("Wed, 05 Jan 2022 01:02:03 GMT").is_some());
        assert!(parse_timestamp("Wed, 05 Jan 2022 1:02:03 GMT").is_none());
        assert!(parse_timestamp("Wed, 05 Jan 22 01:02:03 GMT").is_none());
        assert!(parse_timestamp("Wed, 05 Jan 2022 01:02:03 GMT x").is_none());
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
