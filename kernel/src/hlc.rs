//! Hybrid logical clock: 48 bits of wall-clock milliseconds, 16 bits of
//! counter. Local events tick past both the wall clock and everything seen;
//! received entries are merged in, so an entry's HLC always exceeds the HLCs
//! of everything it causally follows, even on a node whose clock is behind.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An HLC value: `wall_ms << 16 | counter`.
pub type HlcTime = u64;

pub const COUNTER_BITS: u32 = 16;

/// Milliseconds part of an HLC value.
pub fn wall_ms(t: HlcTime) -> u64 {
    t >> COUNTER_BITS
}

/// The current wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("hlc {got_ms} ms is {ahead_ms} ms ahead of the local clock (bound {bound_ms} ms)")]
pub struct FutureDrift {
    pub got_ms: u64,
    pub ahead_ms: u64,
    pub bound_ms: u64,
}

#[derive(Debug)]
pub struct Hlc {
    last: Mutex<HlcTime>,
    max_drift: Duration,
}

impl Hlc {
    pub fn new(max_drift: Duration) -> Self {
        Hlc {
            last: Mutex::new(0),
            max_drift,
        }
    }

    /// A new timestamp for a local event: greater than every value this
    /// clock has produced or merged, and at least the wall clock.
    pub fn tick(&self) -> HlcTime {
        let wall = now_ms() << COUNTER_BITS;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = wall.max(*last + 1);
        *last
    }

    /// Rejects a remote timestamp too far in the future. Checked before the
    /// entry is accepted, so a skewed peer cannot drag our clock forward.
    pub fn check_drift(&self, t: HlcTime) -> Result<(), FutureDrift> {
        let now = now_ms();
        let got = wall_ms(t);
        let bound = self.max_drift.as_millis() as u64;
        if got > now.saturating_add(bound) {
            return Err(FutureDrift {
                got_ms: got,
                ahead_ms: got - now,
                bound_ms: bound,
            });
        }
        Ok(())
    }

    /// Folds in a timestamp seen on an accepted entry.
    pub fn merge(&self, t: HlcTime) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if t > *last {
            *last = t;
        }
    }

    pub fn max_drift(&self) -> Duration {
        self.max_drift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_strictly_monotone_within_a_millisecond() {
        let c = Hlc::new(Duration::from_secs(600));
        let mut prev = c.tick();
        for _ in 0..10_000 {
            let t = c.tick();
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn merge_moves_clock_past_remote() {
        let c = Hlc::new(Duration::from_secs(600));
        let remote = (now_ms() + 5_000) << COUNTER_BITS | 7;
        c.check_drift(remote).unwrap();
        c.merge(remote);
        assert!(c.tick() > remote);
    }

    #[test]
    fn drift_bound_rejects_far_future() {
        let c = Hlc::new(Duration::from_secs(600));
        let remote = (now_ms() + 700_000) << COUNTER_BITS;
        let err = c.check_drift(remote).unwrap_err();
        assert_eq!(err.bound_ms, 600_000);
        assert!(err.ahead_ms >= 699_000);
    }
}
