//! Bounded sliding-window counters and recent-sample rings.
//!
//! Both live inline in every [`Session`](crate::Session), so they are fixed
//! arrays: no heap allocation per session, a known memory cost, and a
//! `Clone` that is a plain copy.

use serde::{Deserialize, Serialize};

use crate::time::{DurationMs, Timestamp};

/// How many distinct occurrences a [`WindowCount`] keeps apart.
pub const WINDOW_SLOTS: usize = 16;

/// Counts occurrences over a sliding time window in bounded memory.
///
/// Each record is an instant with a count. Records older than the window
/// are dropped as new ones arrive. When all slots are in use, a new record is
/// merged into the latest one (its count added, its instant the later of
/// the two): the total is never lost, and the merged occurrences leave the
/// window a little later than they would have, which errs on the side of
/// keeping an alert up rather than hiding one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCount {
    slots: [(i64, u32); WINDOW_SLOTS],
    len: u8,
}

impl WindowCount {
    /// Records `count` occurrences at `at`, forgetting those that fell out
    /// of `window` before the newest record.
    pub fn record(&mut self, at: Timestamp, count: u32, window: DurationMs) {
        if count == 0 {
            return;
        }
        let newest = self.slots[..self.len as usize]
            .iter()
            .map(|s| s.0)
            .max()
            .unwrap_or(i64::MIN)
            .max(at.as_millis());
        let horizon = Timestamp::from_millis(newest).minus(window).as_millis();
        self.retain(|t| t > horizon);
        if at.as_millis() <= horizon {
            return;
        }
        let len = self.len as usize;
        if len < WINDOW_SLOTS {
            self.slots[len] = (at.as_millis(), count);
            self.len += 1;
        } else if let Some(latest) = self.slots.iter_mut().max_by_key(|s| s.0) {
            latest.0 = latest.0.max(at.as_millis());
            latest.1 = latest.1.saturating_add(count);
        }
    }

    /// Occurrences within `window` before `now` (an occurrence exactly
    /// `window` old has expired).
    pub fn count(&self, now: Timestamp, window: DurationMs) -> u32 {
        let horizon = now.minus(window).as_millis();
        self.slots[..self.len as usize]
            .iter()
            .filter(|s| s.0 > horizon)
            .fold(0u32, |acc, s| acc.saturating_add(s.1))
    }

    /// The first instant after `now` at which [`count`](Self::count) over
    /// `window` drops because a record expires; `None` when nothing held
    /// is still inside the window.
    pub fn next_expiry(&self, now: Timestamp, window: DurationMs) -> Option<Timestamp> {
        let horizon = now.minus(window).as_millis();
        self.slots[..self.len as usize]
            .iter()
            .filter(|s| s.0 > horizon)
            .map(|s| Timestamp::from_millis(s.0).plus(window))
            .min()
    }

    fn retain(&mut self, keep: impl Fn(i64) -> bool) {
        let mut w = 0;
        for r in 0..self.len as usize {
            if keep(self.slots[r].0) {
                self.slots[w] = self.slots[r];
                w += 1;
            }
        }
        for slot in &mut self.slots[w..self.len as usize] {
            *slot = (0, 0);
        }
        self.len = w as u8;
    }
}

/// How many recent samples a [`RecentSamples`] keeps.
pub const RECENT_SAMPLES: usize = 32;

/// The most recent [`RECENT_SAMPLES`] values (reconnect durations, in ms),
/// with exact percentiles over them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentSamples {
    values: [u32; RECENT_SAMPLES],
    next: u8,
    len: u8,
}

/// p50 / p90 / p99 of the recent samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
}

impl RecentSamples {
    /// Adds a sample, evicting the oldest when full.
    pub fn push(&mut self, value: u32) {
        self.values[self.next as usize] = value;
        self.next = ((self.next as usize + 1) % RECENT_SAMPLES) as u8;
        self.len = (self.len as usize + 1).min(RECENT_SAMPLES) as u8;
    }

    /// How many samples are held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no sample was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nearest-rank percentiles over the held samples; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.len == 0 {
            return None;
        }
        let mut sorted = self.values;
        let held = &mut sorted[..self.len as usize];
        held.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: the smallest value with at least p% at or below it.
            let n = held.len();
            let idx = (p * n).div_ceil(100).max(1) - 1;
            held[idx.min(n - 1)]
        };
        Some(Percentiles {
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn window_counts_and_expires() {
        let hour = DurationMs::from_hours(1);
        let mut w = WindowCount::default();
        w.record(ts(0), 2, hour);
        w.record(ts(600), 3, hour);
        assert_eq!(w.count(ts(600), hour), 5);
        assert_eq!(w.count(ts(3599), hour), 5);
        assert_eq!(
            w.count(ts(3600), hour),
            3,
            "exactly one window old has expired"
        );
        assert_eq!(w.count(ts(4200), hour), 0);
    }

    #[test]
    fn window_merges_when_full_without_losing_counts() {
        let hour = DurationMs::from_hours(1);
        let mut w = WindowCount::default();
        for i in 0..40 {
            w.record(ts(i), 1, hour);
        }
        assert_eq!(w.count(ts(40), hour), 40);
    }

    #[test]
    fn late_record_outside_window_is_ignored() {
        let hour = DurationMs::from_hours(1);
        let mut w = WindowCount::default();
        w.record(ts(10_000), 1, hour);
        w.record(ts(0), 5, hour);
        assert_eq!(w.count(ts(10_000), hour), 1);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let mut r = RecentSamples::default();
        assert_eq!(r.percentiles(), None);
        for v in 1..=10 {
            r.push(v * 1000);
        }
        let p = r.percentiles().unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (5000, 9000, 10000));
        for _ in 0..RECENT_SAMPLES {
            r.push(7);
        }
        assert_eq!(r.len(), RECENT_SAMPLES);
        assert_eq!(r.percentiles().unwrap().p99, 7, "old samples evicted");
    }
}
