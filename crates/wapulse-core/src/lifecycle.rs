//! The life of one alert: inactive → pending → firing → resolved.
//!
//! [`AlertLife::step`] is told, at an instant, whether the alert's
//! condition holds (and at which level) and moves the alert along:
//!
//! - a condition that appears goes **pending**, and **fires** once it has
//!   held for `for` (at once when `for` is zero);
//! - a pending condition that disappears is **cancelled** (nothing was
//!   sent, nothing is sent);
//! - a firing alert whose condition disappears **resolves** once it has
//!   stayed away for `keep_firing_for` (hysteresis);
//! - an alert that fires `flap_threshold` times within `flap_window` is
//!   **flapping**: that is said once, and the alert is then held firing
//!   until its condition has stayed away for `flap_quiet`, so a session
//!   that bounces pages once, not on every bounce.
//!
//! Firing and resolving strictly alternate, so a notifier that sends one
//! message per [`Transition::Fired`] and per [`Transition::Resolved`] can
//! never page twice for one alert without a resolve between.
//!
//! Everything is a plain function of the state, the condition, the instant
//! and the rules: the state serializes, and a restart that reloads it
//! continues exactly where it stopped.

use serde::{Deserialize, Serialize};

use crate::alert::{AlertCode, Level};
use crate::time::{DurationMs, Timestamp};
use crate::window::WindowCount;

/// How long conditions must hold, and what counts as flapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifeRules {
    /// How long a condition must hold before the alert fires.
    pub for_: DurationMs,
    /// How long a firing alert stays firing after its condition is gone.
    pub keep_firing_for: DurationMs,
    /// The window in which fires are counted for flapping.
    pub flap_window: DurationMs,
    /// Fires within `flap_window` that make an alert flapping (0: never).
    pub flap_threshold: u32,
    /// How long a flapping alert's condition must stay away before it
    /// resolves.
    pub flap_quiet: DurationMs,
}

impl Default for LifeRules {
    fn default() -> Self {
        Self {
            for_: DurationMs::from_mins(1),
            keep_firing_for: DurationMs::ZERO,
            flap_window: DurationMs::from_hours(1),
            flap_threshold: 4,
            flap_quiet: DurationMs::from_mins(15),
        }
    }
}

/// The default `for` of a code: zero for critical facts that will not go
/// away by waiting (a logged-out device, corrupt credentials, an open
/// breaker), one minute otherwise.
pub fn default_for(code: AlertCode) -> DurationMs {
    match code {
        AlertCode::LoggedOut | AlertCode::SessionCorruption | AlertCode::CircuitBreakerOpen => {
            DurationMs::ZERO
        }
        _ => DurationMs::from_mins(1),
    }
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Its condition does not hold (or it resolved).
    #[default]
    Inactive,
    /// Its condition holds, not yet for `for`.
    Pending,
    /// It fired and has not resolved.
    Firing,
}

impl Phase {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }
}

/// What a step did, for history and notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
pub enum Transition {
    /// The condition appeared; waiting for `for`.
    Pending,
    /// A pending condition went away before it fired.
    Cancelled,
    /// The alert fired.
    Fired,
    /// A firing alert changed level (warning ↔ critical).
    LevelChanged {
        /// The level before.
        from: Level,
    },
    /// The alert started flapping (said once).
    FlappingStarted,
    /// The alert resolved.
    Resolved,
}

impl Transition {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transition::Pending => "pending",
            Transition::Cancelled => "cancelled",
            Transition::Fired => "fired",
            Transition::LevelChanged { .. } => "level_changed",
            Transition::FlappingStarted => "flapping_started",
            Transition::Resolved => "resolved",
        }
    }
}

/// The lifecycle state of one alert (one code of one session, or one
/// fleet incident).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertLife {
    /// Where it is.
    pub phase: Phase,
    /// Its level while pending or firing (the last one it had otherwise).
    pub level: Level,
    /// When the condition began (while pending or firing).
    pub active_since: Option<Timestamp>,
    /// When it last fired (`startsAt`).
    pub fired_at: Option<Timestamp>,
    /// When it last resolved (`endsAt`).
    pub resolved_at: Option<Timestamp>,
    /// While firing: since when the condition has been gone.
    pub clear_since: Option<Timestamp>,
    /// Whether it is flapping (held firing until quiet).
    pub flapping: bool,
    /// Recent fires, for flapping.
    pub fires: Fires,
}

impl AlertLife {
    /// Moves the alert along given whether its condition holds at `now`
    /// (`Some(level)`) or not (`None`). Returns what happened, in order
    /// (at most two transitions: a fire may start flapping).
    pub fn step(
        &mut self,
        condition: Option<Level>,
        now: Timestamp,
        rules: &LifeRules,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        match (self.phase, condition) {
            (Phase::Inactive, None) => {}
            (Phase::Inactive, Some(level)) => {
                self.level = level;
                self.active_since = Some(now);
                self.clear_since = None;
                if rules.for_ == DurationMs::ZERO {
                    self.fire(now, rules, &mut out);
                } else {
                    self.phase = Phase::Pending;
                    out.push(Transition::Pending);
                }
            }
            (Phase::Pending, None) => {
                self.phase = Phase::Inactive;
                self.active_since = None;
                out.push(Transition::Cancelled);
            }
            (Phase::Pending, Some(level)) => {
                self.level = level;
                let since = self.active_since.unwrap_or(now);
                if now >= since.plus(rules.for_) {
                    self.fire(now, rules, &mut out);
                }
            }
            (Phase::Firing, Some(level)) => {
                self.clear_since = None;
                if level != self.level {
                    out.push(Transition::LevelChanged { from: self.level });
                    self.level = level;
                }
            }
            (Phase::Firing, None) => {
                let clear = *self.clear_since.get_or_insert(now);
                if now >= clear.plus(self.hold(rules)) {
                    self.phase = Phase::Inactive;
                    self.resolved_at = Some(now);
                    self.active_since = None;
                    self.clear_since = None;
                    self.flapping = false;
                    out.push(Transition::Resolved);
                }
            }
        }
        out
    }

    /// Ends the alert because its session was retired on purpose: a
    /// firing alert resolves now (no `keep_firing_for`, no flapping hold:
    /// nothing is left to come back), a pending one is cancelled. The
    /// fires are forgotten with it, so the state is
    /// [forgettable](Self::is_forgettable) at once.
    pub fn retire(&mut self, now: Timestamp) -> Vec<Transition> {
        let out = match self.phase {
            Phase::Inactive => Vec::new(),
            Phase::Pending => vec![Transition::Cancelled],
            Phase::Firing => {
                self.resolved_at = Some(now);
                vec![Transition::Resolved]
            }
        };
        self.phase = Phase::Inactive;
        self.active_since = None;
        self.clear_since = None;
        self.flapping = false;
        self.fires = Fires::default();
        out
    }

    fn hold(&self, rules: &LifeRules) -> DurationMs {
        if self.flapping {
            rules.keep_firing_for.max(rules.flap_quiet)
        } else {
            rules.keep_firing_for
        }
    }

    fn fire(&mut self, now: Timestamp, rules: &LifeRules, out: &mut Vec<Transition>) {
        self.phase = Phase::Firing;
        self.fired_at = Some(now);
        self.clear_since = None;
        out.push(Transition::Fired);
        if rules.flap_threshold > 0 {
            self.fires.record(now, rules.flap_window);
            if !self.flapping && self.fires.count(now, rules.flap_window) >= rules.flap_threshold {
                self.flapping = true;
                out.push(Transition::FlappingStarted);
            }
        }
    }

    /// The instant at which [`step`](Self::step) would act although the
    /// condition did not change: a pending alert's `for` running out, or a
    /// cleared firing alert's hold running out.
    pub fn deadline(&self, rules: &LifeRules) -> Option<Timestamp> {
        match self.phase {
            Phase::Pending => self.active_since.map(|s| s.plus(rules.for_)),
            Phase::Firing => self.clear_since.map(|c| c.plus(self.hold(rules))),
            Phase::Inactive => None,
        }
    }

    /// Whether the state carries nothing worth keeping at `now`: inactive,
    /// and no fire left in the flapping window.
    pub fn is_forgettable(&self, now: Timestamp, rules: &LifeRules) -> bool {
        self.phase == Phase::Inactive && self.fires.count(now, rules.flap_window) == 0
    }
}

/// An alert's recent fires, for flapping: (instant in ms, count) records,
/// at most [`WINDOW_SLOTS`](crate::window::WINDOW_SLOTS), those older than the window before the newest
/// forgotten; when full, a fire joins the newest record (so counts stay
/// whole and expire a little late, which errs on keeping an alert up).
///
/// Sized by use (most alerts hold one fire, 16 bytes, not room for
/// sixteen): with 100,000 alerts firing, each `AlertLife` is ~100 bytes.
/// Saved states written before it (`{"slots": [...], "len": n}`) still
/// load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "FiresForm")]
pub struct Fires(WindowCount);

/// How saved fires are read: today's list, or the fixed window of before.
#[derive(Deserialize)]
#[serde(untagged)]
enum FiresForm {
    List(Vec<(i64, u32)>),
    Window { slots: Vec<(i64, u32)>, len: u8 },
}

impl From<FiresForm> for Fires {
    fn from(form: FiresForm) -> Self {
        let records = match form {
            FiresForm::List(records) => records,
            FiresForm::Window { mut slots, len } => {
                slots.truncate(len as usize);
                slots
            }
        };
        Fires(WindowCount::from_records(records))
    }
}

impl Serialize for Fires {
    /// Saved as the list of its records.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.records().serialize(serializer)
    }
}

impl Fires {
    /// Records one fire at `at`, forgetting those out of `window` before
    /// the newest.
    pub fn record(&mut self, at: Timestamp, window: DurationMs) {
        self.0.record(at, 1, window);
    }

    /// Fires within `window` before `now` (one exactly `window` old has
    /// expired).
    pub fn count(&self, now: Timestamp, window: DurationMs) -> u32 {
        self.0.count(now, window)
    }
}

#[cfg(test)]
mod fires_tests {
    use super::*;
    use crate::window::WINDOW_SLOTS;

    #[test]
    fn fires_are_saved_as_a_list_and_old_saved_states_load() {
        let window = DurationMs::from_mins(10);
        let mut fires = Fires::default();
        for i in 0..170 {
            fires.record(
                Timestamp::from_millis(1_770_000_000_000 + i * 7_000),
                window,
            );
        }
        assert_eq!(fires.0.records().len(), WINDOW_SLOTS);
        let now = Timestamp::from_millis(1_770_000_000_000 + 170 * 7_000);
        let n = fires.count(now, window);
        assert!(n >= 85, "ten minutes of fires 7 s apart: {n}");
        // Saved as the list of records, read back the same.
        let saved = serde_json::to_value(&fires).unwrap();
        assert_eq!(saved.as_array().unwrap().len(), WINDOW_SLOTS);
        let again: Fires = serde_json::from_value(saved.clone()).unwrap();
        assert_eq!(again, fires);
        // A state saved with the fixed window of before loads as the same.
        let old = serde_json::json!({"slots": saved, "len": WINDOW_SLOTS});
        let loaded: Fires = serde_json::from_value(old).unwrap();
        assert_eq!(loaded, fires);
        assert_eq!(loaded.count(now, window), n);
    }
}
