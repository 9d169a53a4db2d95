//! Realism and faults: latency, removal, reset by another application, corrupted or truncated
//! answers, a card that stops answering. All off by default.

use std::time::Duration;

use crate::Error;

/// Faults the simulated card shows. "After N" counts the APDUs the card answered since the
/// faults were set (from the profile at creation, or by [`crate::SimHandle::set_faults`]).
///
/// TOML table `[faults]`: `latency_ms`, `bit_rate`, `remove_after`, `reset_after`,
/// `corrupt_after`, `truncate_after`, `mute_after`, `mute_timeout_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Fixed delay before every answer (`latency_ms`).
    pub latency: Duration,
    /// Extra delay per byte exchanged (command plus answer, 8 bits each) at this many bits per
    /// second (`bit_rate`); `None` = no per-byte delay.
    pub bit_rate: Option<u64>,
    /// After this many APDUs the card leaves the reader and stays out until
    /// [`crate::SimHandle::insert`] (`remove_after`). In-process: `Error::CardRemoved`; over vpcd
    /// the card disconnects.
    pub remove_after: Option<u64>,
    /// After this many APDUs another application resets the card, once (`reset_after`): the
    /// security state is lost and the in-process transport answers `Error::CardReset` until
    /// `reconnect()`. Over vpcd the card only loses its security state.
    pub reset_after: Option<u64>,
    /// The answer to APDU number N+1 comes back with its first byte inverted, once
    /// (`corrupt_after`).
    pub corrupt_after: Option<u64>,
    /// The answer to APDU number N+1 comes back without its last byte, once (`truncate_after`).
    pub truncate_after: Option<u64>,
    /// After this many APDUs the card stops answering (`mute_after`): in-process the transport
    /// waits [`Faults::mute_timeout`] and returns `Error::Timeout`; over vpcd the card waits as
    /// long and then disconnects. It stays mute until [`crate::SimHandle::set_faults`] or
    /// [`crate::SimHandle::insert`].
    pub mute_after: Option<u64>,
    /// How long a mute card keeps the host waiting (`mute_timeout_ms`, default 200 ms).
    pub mute_timeout: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            bit_rate: None,
            remove_after: None,
            reset_after: None,
            corrupt_after: None,
            truncate_after: None,
            mute_after: None,
            mute_timeout: Duration::from_millis(200),
        }
    }
}

/// Longest delay a fault may add to one APDU: keeps every test bounded.
const MAX_DELAY: Duration = Duration::from_secs(60);

impl Faults {
    /// No faults at all.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Checks the values (bit rate not zero, delays at most 60 s).
    pub fn validate(&self) -> Result<(), Error> {
        if self.bit_rate == Some(0) {
            return Err(Error::value(
                "faults.bit_rate",
                "must be at least 1 bit per second",
            ));
        }
        if self.latency > MAX_DELAY {
            return Err(Error::value("faults.latency_ms", "must be at most 60000"));
        }
        if self.mute_timeout > MAX_DELAY {
            return Err(Error::value(
                "faults.mute_timeout_ms",
                "must be at most 60000",
            ));
        }
        Ok(())
    }

    /// The delay for one exchange of `bytes` bytes (command plus answer).
    pub fn delay_for(&self, bytes: usize) -> Duration {
        let per_byte = match self.bit_rate {
            Some(rate) if rate > 0 => {
                let micros = (bytes as u128 * 8 * 1_000_000) / u128::from(rate);
                Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
            }
            _ => Duration::ZERO,
        };
        (self.latency + per_byte).min(MAX_DELAY)
    }
}

/// What the fault machinery decides for one APDU, before the card sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The card processes the APDU (possibly mangling the answer).
    Process { corrupt: bool, truncate: bool },
    /// The card is out of the reader.
    Removed,
    /// Another application reset the card; the host must reconnect.
    Reset,
    /// The card does not answer.
    Mute,
}

/// The running state of the faults: how many APDUs since they were set, which one-shot faults
/// already fired.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultClock {
    pub(crate) answered: u64,
    pub(crate) reset_fired: bool,
    pub(crate) corrupt_fired: bool,
    pub(crate) truncate_fired: bool,
}

impl FaultClock {
    /// Decides the fate of the next APDU.
    pub(crate) fn gate(&mut self, faults: &Faults, removed: bool) -> Gate {
        let n = self.answered;
        let reached = |limit: Option<u64>| limit.is_some_and(|l| n >= l);
        if removed || reached(faults.remove_after) {
            return Gate::Removed;
        }
        if reached(faults.mute_after) {
            return Gate::Mute;
        }
        if !self.reset_fired && reached(faults.reset_after) {
            self.reset_fired = true;
            return Gate::Reset;
        }
        let corrupt = !self.corrupt_fired && reached(faults.corrupt_after);
        let truncate = !self.truncate_fired && reached(faults.truncate_after);
        self.corrupt_fired |= corrupt;
        self.truncate_fired |= truncate;
        Gate::Process { corrupt, truncate }
    }
}

/// Applies the answer faults to a raw R-APDU.
pub(crate) fn mangle(mut answer: Vec<u8>, corrupt: bool, truncate: bool) -> Vec<u8> {
    if corrupt {
        if let Some(first) = answer.first_mut() {
            *first = !*first;
        }
    }
    if truncate {
        answer.pop();
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_adds_fixed_and_per_byte_parts() {
        let f = Faults {
            latency: Duration::from_millis(5),
            bit_rate: Some(8000),
            ..Faults::none()
        };
        // 100 bytes = 800 bits at 8000 bit/s = 100 ms.
        assert_eq!(f.delay_for(100), Duration::from_millis(105));
        assert_eq!(Faults::none().delay_for(1000), Duration::ZERO);
    }

    #[test]
    fn one_shot_faults_fire_once_and_persistent_ones_stay() {
        let f = Faults {
            corrupt_after: Some(1),
            reset_after: Some(2),
            ..Faults::none()
        };
        let mut clock = FaultClock::default();
        assert_eq!(
            clock.gate(&f, false),
            Gate::Process {
                corrupt: false,
                truncate: false
            }
        );
        clock.answered += 1;
        assert_eq!(
            clock.gate(&f, false),
            Gate::Process {
                corrupt: true,
                truncate: false
            }
        );
        clock.answered += 1;
        assert_eq!(clock.gate(&f, false), Gate::Reset);
        assert_eq!(
            clock.gate(&f, false),
            Gate::Process {
                corrupt: false,
                truncate: false
            }
        );
        let removed = Faults {
            remove_after: Some(0),
            ..Faults::none()
        };
        assert_eq!(FaultClock::default().gate(&removed, false), Gate::Removed);
        assert_eq!(
            FaultClock::default().gate(&Faults::none(), true),
            Gate::Removed
        );
    }

    #[test]
    fn mangle_inverts_first_and_drops_last_byte() {
        assert_eq!(mangle(vec![0x90, 0x00], true, false), vec![0x6F, 0x00]);
        assert_eq!(mangle(vec![1, 0x90, 0x00], false, true), vec![1, 0x90]);
        assert_eq!(mangle(vec![], true, true), Vec::<u8>::new());
    }

    #[test]
    fn validate_rejects_zero_bit_rate() {
        let f = Faults {
            bit_rate: Some(0),
            ..Faults::none()
        };
        assert!(f
            .validate()
            .unwrap_err()
            .to_string()
            .contains("faults.bit_rate"));
    }
}
