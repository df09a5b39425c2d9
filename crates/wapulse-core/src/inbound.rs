//! A session's own inbound message rate, and when its silence is
//! improbable: the deaf-session rule (`INBOUND_SILENCE`).
//!
//! The baseline is an exponentially weighted rate: a weighted count of
//! inbound messages over a weighted connected time, both decaying with the
//! time constant `inbound_baseline_window` (6 h by default). It lives in a
//! few numbers per session (fixed memory), moves only when an event
//! arrives (so it is part of the deterministic fold and restores exactly),
//! and counts only connected time: a session that was down for a night
//! comes back with the baseline it had.
//!
//! Under a Poisson stream of rate `λ`, no message for `g` has the chance
//! `exp(-λ g)`. A silence fires once that chance is below the configured
//! one: after `ln(1 / chance) / λ` (never before `inbound_silence_min_gap`).
//! The rate judged is the one the baseline had at the last event, so the
//! silence never lowers its own bar.
//!
//! The silence is connected time since the last inbound message: a
//! reconnect does not restart it (WAHA NOWEB reconnects every ~30 minutes
//! on purpose, and a deaf session stays deaf across them) and time spent
//! down does not count.

use serde::{Deserialize, Serialize};

use crate::thresholds::Thresholds;
use crate::time::{DurationMs, Timestamp};

/// The inbound baseline of one session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboundBaseline {
    /// When the weights were last brought forward.
    updated_at: Option<Timestamp>,
    /// Whether the session was connected since `updated_at`.
    connected: bool,
    /// Exponentially weighted count of inbound messages.
    weight: f64,
    /// Exponentially weighted connected time (ms).
    exposure_ms: f64,
    /// Connected time observed in all (ms, not weighted).
    observed_ms: u64,
    /// Connected time since the latest inbound message, up to
    /// `updated_at` (ms).
    silent_ms: u64,
    /// The latest inbound message.
    last_at: Option<Timestamp>,
}

/// A baseline's verdict on a silence, when it is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SilenceBar {
    /// The latest inbound message.
    pub last_inbound: Option<Timestamp>,
    /// Connected silence up to `counting_from`.
    pub silent_before: DurationMs,
    /// Since when the silence grows with the clock (the last event; the
    /// session is connected since).
    pub counting_from: Timestamp,
    /// The usual gap between two inbound messages (1 / rate).
    pub usual_gap: DurationMs,
    /// Silence that fires a warning.
    pub warning_after: DurationMs,
    /// Silence that fires a critical alert.
    pub critical_after: DurationMs,
}

impl SilenceBar {
    /// Connected time without an inbound message at `now`.
    pub fn silent_for(&self, now: Timestamp) -> DurationMs {
        DurationMs::from_millis(
            self.silent_before
                .as_millis()
                .saturating_add(now.since(self.counting_from).as_millis()),
        )
    }

    /// When the silence reaches `after`.
    pub fn reaches(&self, after: DurationMs) -> Timestamp {
        self.counting_from.plus(DurationMs::from_millis(
            after
                .as_millis()
                .saturating_sub(self.silent_before.as_millis()),
        ))
    }
}

impl InboundBaseline {
    /// The latest inbound message.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.last_at
    }

    /// The weighted count of messages the rate rests on.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Connected time observed (ms).
    pub fn observed(&self) -> DurationMs {
        DurationMs::from_millis(self.observed_ms)
    }

    /// Messages per hour, once any connected time was seen.
    pub fn rate_per_hour(&self) -> Option<f64> {
        (self.exposure_ms > 0.0).then(|| self.weight / self.exposure_ms * 3_600_000.0)
    }

    /// Whether it holds nothing (a session that never connected nor
    /// received anything).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn advance(&mut self, to: Timestamp, window: DurationMs) {
        let Some(from) = self.updated_at else {
            self.updated_at = Some(to);
            return;
        };
        if to <= from {
            return;
        }
        let dt = to.since(from).as_millis();
        if self.connected {
            let tau = window.as_millis() as f64;
            let decay = (-(dt as f64) / tau).exp();
            self.weight *= decay;
            self.exposure_ms = self.exposure_ms * decay + tau * (1.0 - decay);
            self.observed_ms = self.observed_ms.saturating_add(dt);
            self.silent_ms = self.silent_ms.saturating_add(dt);
        }
        self.updated_at = Some(to);
    }

    /// The session was (or stopped being) connected at `at`.
    pub fn set_connected(&mut self, connected: bool, at: Timestamp, window: DurationMs) {
        self.advance(at, window);
        self.connected = connected;
    }

    /// `count` inbound messages arrived at `at`. A late one counts
    /// without moving the weights back.
    pub fn record(&mut self, count: u32, at: Timestamp, window: DurationMs) {
        self.advance(at, window);
        self.weight += f64::from(count);
        if count > 0 {
            self.last_at = self.last_at.max(Some(at));
            // A late message shortens the silence to what followed it.
            let after = self.updated_at.map_or(0, |u| u.since(at).as_millis());
            self.silent_ms = self.silent_ms.min(after);
        }
    }

    /// The bar a silence must pass, once the baseline rests on enough
    /// messages and connected time; `None` for a quiet or new session, or
    /// one not connected.
    pub fn bar(&self, t: &Thresholds) -> Option<SilenceBar> {
        if !self.connected
            || self.weight < f64::from(t.inbound_baseline_min_messages)
            || self.observed_ms < t.inbound_baseline_min_history.as_millis()
            || self.exposure_ms <= 0.0
        {
            return None;
        }
        let per_ms = self.weight / self.exposure_ms;
        let after = |chance: f64| {
            let ms = ((1.0 / chance).ln() / per_ms).ceil();
            // A rate this low was refused by min_messages; saturate anyway.
            let ms = if ms.is_finite() && ms < 1e15 {
                ms as u64
            } else {
                u64::MAX / 4
            };
            DurationMs::from_millis(ms.max(t.inbound_silence_min_gap.as_millis()))
        };
        Some(SilenceBar {
            last_inbound: self.last_at,
            silent_before: DurationMs::from_millis(self.silent_ms),
            counting_from: self.updated_at?,
            usual_gap: DurationMs::from_millis((1.0 / per_ms).round() as u64),
            warning_after: after(t.inbound_silence_warning_chance),
            critical_after: after(t.inbound_silence_critical_chance),
        })
    }
}
