//! Sends and error acks per minute over the failure window.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::time::{DurationMs, Timestamp};

/// Sends and error acks per minute over the failure window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Minutes {
    /// The minute (since the epoch) of the last bucket.
    last: i64,
    /// `(sends, errors)` per minute, the last bucket at the end.
    buckets: VecDeque<(u32, u32)>,
}

const MINUTE: i64 = 60_000;

impl Minutes {
    fn width(window: DurationMs) -> usize {
        (window.as_millis().div_ceil(MINUTE as u64)).clamp(1, 24 * 60) as usize
    }

    pub(super) fn record(&mut self, at: Timestamp, sends: u32, errors: u32, window: DurationMs) {
        let width = Self::width(window);
        let minute = at.as_millis().div_euclid(MINUTE);
        if self.buckets.is_empty() {
            self.last = minute;
            self.buckets.push_back((0, 0));
        }
        if minute > self.last {
            let gap = (minute - self.last).min(width as i64) as usize;
            for _ in 0..gap {
                self.buckets.push_back((0, 0));
            }
            self.last = minute;
        }
        while self.buckets.len() > width {
            self.buckets.pop_front();
        }
        let back = (self.last - minute) as usize;
        if back >= self.buckets.len() {
            // Older than the window: nothing left to count it in.
            return;
        }
        let i = self.buckets.len() - 1 - back;
        let bucket = &mut self.buckets[i];
        bucket.0 = bucket.0.saturating_add(sends);
        bucket.1 = bucket.1.saturating_add(errors);
    }

    /// `(sends, errors)` within the window before `now` (to the minute).
    pub(super) fn totals(&self, now: Timestamp, window: DurationMs) -> (u64, u64) {
        let width = Self::width(window) as i64;
        let minute = now.as_millis().div_euclid(MINUTE);
        let len = self.buckets.len() as i64;
        let mut totals = (0u64, 0u64);
        for (i, (s, e)) in self.buckets.iter().enumerate() {
            let bucket_minute = self.last - (len - 1 - i as i64);
            if bucket_minute > minute - width && bucket_minute <= minute {
                totals.0 += u64::from(*s);
                totals.1 += u64::from(*e);
            }
        }
        totals
    }

    /// When the oldest error still counted leaves the window.
    pub(super) fn next_error_expiry(
        &self,
        now: Timestamp,
        window: DurationMs,
    ) -> Option<Timestamp> {
        let width = Self::width(window) as i64;
        let minute = now.as_millis().div_euclid(MINUTE);
        let len = self.buckets.len() as i64;
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| *e > 0)
            .map(|(i, _)| self.last - (len - 1 - i as i64))
            .find(|m| *m > minute - width)
            .map(|m| Timestamp::from_millis((m + width) * MINUTE))
    }
}
