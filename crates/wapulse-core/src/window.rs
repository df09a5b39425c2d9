//! Bounded sliding-window counters and recent-sample rings.
//!
//! Both live in every [`Session`](crate::Session). A window count holds
//! its records on the heap, sized by use (most sessions have none: 24
//! bytes, nothing allocated), and is saved in the fixed form it had when
//! it was an inline array, so snapshots keep their layout. The sample ring
//! is a fixed array.

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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowCount(Vec<(i64, u32)>);

/// A [`WindowCount`] as saved: the fixed array it once was, unused slots
/// zeroed (snapshots are postcard, which has no room for another form).
#[derive(Serialize, Deserialize)]
struct Saved {
    slots: [(i64, u32); WINDOW_SLOTS],
    len: u8,
}

impl Serialize for WindowCount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut slots = [(0, 0); WINDOW_SLOTS];
        slots[..self.0.len()].copy_from_slice(&self.0);
        Saved {
            slots,
            len: self.0.len() as u8,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WindowCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = Saved::deserialize(deserializer)?;
        let len = usize::from(saved.len).min(WINDOW_SLOTS);
        Ok(Self(saved.slots[..len].to_vec()))
    }
}

impl WindowCount {
    /// The records held, `(ms, count)`.
    pub fn records(&self) -> &[(i64, u32)] {
        &self.0
    }

    /// A count holding `records` (the first [`WINDOW_SLOTS`]).
    pub fn from_records(mut records: Vec<(i64, u32)>) -> Self {
        records.truncate(WINDOW_SLOTS);
        records.shrink_to_fit();
        Self(records)
    }

    /// Records `count` occurrences at `at`, forgetting those that fell out
    /// of `window` before the newest record.
    pub fn record(&mut self, at: Timestamp, count: u32, window: DurationMs) {
        if count == 0 {
            return;
        }
        let at = at.as_millis();
        let newest = self.0.iter().map(|r| r.0).max().unwrap_or(i64::MIN).max(at);
        let horizon = Timestamp::from_millis(newest).minus(window).as_millis();
        self.0.retain(|r| r.0 > horizon);
        if at <= horizon {
            self.0.shrink_to_fit();
            return;
        }
        if self.0.len() < WINDOW_SLOTS {
            self.0.reserve_exact(1);
            self.0.push((at, count));
        } else if let Some(latest) = self.0.iter_mut().max_by_key(|r| r.0) {
            latest.0 = latest.0.max(at);
            latest.1 = latest.1.saturating_add(count);
        }
        if self.0.capacity() > self.0.len() + 4 {
            self.0.shrink_to_fit();
        }
    }

    /// Occurrences within `window` before `now` (an occurrence exactly
    /// `window` old has expired).
    pub fn count(&self, now: Timestamp, window: DurationMs) -> u32 {
        let horizon = now.minus(window).as_millis();
        self.0
            .iter()
            .filter(|s| s.0 > horizon)
            .fold(0u32, |acc, s| acc.saturating_add(s.1))
    }

    /// The first instant after `now` at which [`count`](Self::count) over
    /// `window` drops because a record expires; `None` when nothing held
    /// is still inside the window.
    pub fn next_expiry(&self, now: Timestamp, window: DurationMs) -> Option<Timestamp> {
        let horizon = now.minus(window).as_millis();
        self.0
            .iter()
            .filter(|s| s.0 > horizon)
            .map(|s| Timestamp::from_millis(s.0).plus(window))
            .min()
    }
}

/// How many recent samples a [`RecentSamples`] keeps.
pub const RECENT_SAMPLES: usize = 32;

/// The most recent [`RECENT_SAMPLES`] values (reconnect durations, in ms),
/// with exact percentiles over them.
///
/// Sized by use like [`WindowCount`], and saved in the fixed form it had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentSamples {
    /// The samples in ring order (slot `i` is the `i`-th held).
    values: Vec<u32>,
    /// The slot the next sample takes once all are in use.
    next: u8,
}

/// [`RecentSamples`] as saved: the fixed ring it once was.
#[derive(Serialize, Deserialize)]
struct SavedSamples {
    values: [u32; RECENT_SAMPLES],
    next: u8,
    len: u8,
}

impl Serialize for RecentSamples {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut values = [0; RECENT_SAMPLES];
        values[..self.values.len()].copy_from_slice(&self.values);
        SavedSamples {
            values,
            next: self.next,
            len: self.values.len() as u8,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RecentSamples {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedSamples::deserialize(deserializer)?;
        let len = usize::from(saved.len).min(RECENT_SAMPLES);
        Ok(Self {
            values: saved.values[..len].to_vec(),
            next: saved.next % RECENT_SAMPLES as u8,
        })
    }
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
        if self.values.len() < RECENT_SAMPLES {
            self.values.reserve_exact(1);
            self.values.push(value);
        } else {
            self.values[self.next as usize] = value;
        }
        self.next = ((self.next as usize + 1) % RECENT_SAMPLES) as u8;
    }

    /// How many samples are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no sample was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Nearest-rank percentiles over the held samples; `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.values.is_empty() {
            return None;
        }
        let mut buf = [0; RECENT_SAMPLES];
        let held = &mut buf[..self.values.len()];
        held.copy_from_slice(&self.values);
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
    fn a_window_is_sized_by_use_and_saved_in_its_fixed_form() {
        let hour = DurationMs::from_hours(1);
        let mut w = WindowCount::default();
        assert_eq!(w.0.capacity(), 0, "nothing allocated while empty");
        w.record(ts(0), 2, hour);
        assert_eq!(w.0.capacity(), 1, "one record, one slot");
        w.record(ts(10), 1, hour);
        // The form snapshots hold (postcard): the fixed array it once was,
        // unused slots zeroed, then the length.
        let saved = serde_json::to_value(&w).unwrap();
        let mut slots = vec![serde_json::json!([0, 0]); WINDOW_SLOTS];
        slots[0] = serde_json::json!([0, 2]);
        slots[1] = serde_json::json!([10_000, 1]);
        assert_eq!(saved, serde_json::json!({"slots": slots, "len": 2}));
        let back: WindowCount = serde_json::from_value(saved).unwrap();
        assert_eq!(back, w);
        // Records that expire give their room back.
        for i in 0..WINDOW_SLOTS as i64 {
            w.record(ts(20 + i), 1, hour);
        }
        w.record(ts(10_000), 1, hour);
        assert_eq!(w.records().len(), 1);
        assert!(w.0.capacity() <= 5, "{}", w.0.capacity());
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

    #[test]
    fn samples_are_sized_by_use_and_saved_as_the_fixed_ring() {
        let mut r = RecentSamples::default();
        r.push(5);
        assert_eq!(r.values.capacity(), 1);
        let saved = serde_json::to_value(&r).unwrap();
        let mut values = vec![0; RECENT_SAMPLES];
        values[0] = 5;
        assert_eq!(
            saved,
            serde_json::json!({"values": values, "next": 1, "len": 1})
        );
        // A full ring saved and read back evicts the same sample next.
        for v in 0..40 {
            r.push(100 + v);
        }
        let mut back: RecentSamples =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        r.push(1);
        back.push(1);
        assert_eq!(back, r);
        assert_eq!(r.percentiles().unwrap().p50, 123);
    }
}
