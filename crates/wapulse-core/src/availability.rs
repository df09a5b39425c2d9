//! Availability from exact state intervals (issue 31's rules), pure.
//!
//! A session's [`Timeline`] is its state changes in *event* time (the
//! `at` the gateway stamped, not when wapulse received it). Between two
//! changes the session was in the earlier one's state; after the last, in
//! its state until `now`. Over a window, availability is the time it was
//! connected over the time it was *observed*:
//!
//! - observed time starts at its earliest event (a session created
//!   mid-window is not counted down before it existed);
//! - `stopped` time (an operator stopped it on purpose) and retired time
//!   are not observed: they count neither way;
//! - a late event (its `at` before changes already known) takes its place
//!   in the order, so the result does not depend on arrival order;
//! - the window's edges cut intervals exactly, to the millisecond.

use crate::event::{STATES, SessionState};
use crate::time::Timestamp;

/// What a stretch of a session's life counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// In this state.
    In(SessionState),
    /// Retired: no longer one of the fleet's sessions.
    Retired,
    /// An event earlier than any known before: the session is observed from
    /// here, in the phase it was already known in (a later event may have
    /// been known first), else in the assumed `connecting` of a session
    /// whose state is not known yet (also after a retirement: a new life).
    Seen,
}

impl Phase {
    /// What a change means after `before` (the phase in force).
    fn after(self, before: Option<Phase>) -> Phase {
        match (self, before) {
            (Phase::Seen, Some(Phase::In(state))) => Phase::In(state),
            (Phase::Seen, _) => Phase::In(SessionState::Connecting),
            (phase, _) => phase,
        }
    }

    /// Whether the stretch is observed time (not stopped, not retired).
    fn observed(self) -> bool {
        !matches!(self, Phase::In(SessionState::Stopped) | Phase::Retired)
    }

    /// Whether the stretch is connected time.
    fn connected(self) -> bool {
        self == Phase::In(SessionState::Connected)
    }
}

/// A session's changes of phase in event time, in order (equal instants
/// keep the order they were added in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    changes: Vec<(Timestamp, Phase)>,
}

/// Availability over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    /// Connected time in the window, in milliseconds.
    pub connected_ms: u64,
    /// Observed time in the window, in milliseconds.
    pub observed_ms: u64,
    /// Stretches of one phase overlapping the window.
    pub intervals: usize,
}

impl Availability {
    /// Connected over observed (0.0–1.0); `None` when nothing was observed.
    pub fn share(&self) -> Option<f64> {
        (self.observed_ms > 0).then(|| self.connected_ms as f64 / self.observed_ms as f64)
    }

    /// The sum of two (a label value's sessions together).
    pub fn plus(self, other: Availability) -> Availability {
        Availability {
            connected_ms: self.connected_ms + other.connected_ms,
            observed_ms: self.observed_ms + other.observed_ms,
            intervals: self.intervals + other.intervals,
        }
    }
}

impl Timeline {
    /// Adds a change at `at`, in its place in event time (after any change
    /// at the same instant).
    pub fn add(&mut self, at: Timestamp, phase: Phase) {
        let place = self.changes.partition_point(|(t, _)| *t <= at);
        self.changes.insert(place, (at, phase));
    }

    /// The changes, in order.
    pub fn changes(&self) -> &[(Timestamp, Phase)] {
        &self.changes
    }

    /// When the session was first seen (its earliest event).
    pub fn first_seen(&self) -> Option<Timestamp> {
        self.changes.first().map(|(t, _)| *t)
    }

    /// Availability over `[from, to)`, the last phase lasting until `now`
    /// (nothing is counted after `now`).
    pub fn over(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> Availability {
        let mut out = Availability::default();
        self.each_stretch(from, to, now, |phase, ms| {
            out.intervals += 1;
            if phase.observed() {
                out.observed_ms += ms;
                if phase.connected() {
                    out.connected_ms += ms;
                }
            }
        });
        out
    }

    /// Its current life only: the changes after its last retirement. A
    /// session that came back after it was retired starts afresh, and a
    /// reader who may see only the new life (a tenant's scope) learns
    /// nothing of whose the id was before.
    pub fn current_life(mut self) -> Timeline {
        if let Some(last) = self.changes.iter().rposition(|(_, p)| *p == Phase::Retired) {
            self.changes.drain(..=last);
        }
        self
    }

    /// The changes with each `Seen` resolved to the phase it stands for.
    pub fn resolved(&self) -> impl Iterator<Item = (Timestamp, Phase)> + '_ {
        let mut before = None;
        self.changes.iter().map(move |(at, phase)| {
            let now = phase.after(before);
            before = Some(now);
            (*at, now)
        })
    }
}

impl Timeline {
    /// Milliseconds spent in each state over `[from, to)` (up to `now`),
    /// in [`SessionState::ALL`] order; retired time is in none.
    pub fn spent(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> [u64; STATES] {
        let mut out = [0; STATES];
        self.each_stretch(from, to, now, |phase, ms| {
            if let Phase::In(state) = phase {
                out[state.index()] += ms;
            }
        });
        out
    }

    /// The outages that ended in `[from, to)` (up to `now`): each stretch
    /// away from `connected`, after having been connected, that came back
    /// to it, as (when it started, how long it lasted). Stopped and retired
    /// time end an outage without counting it.
    pub fn outages(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> Vec<(Timestamp, u64)> {
        let end = to.min(now);
        let mut out = Vec::new();
        let mut was_connected = false;
        let mut down_since: Option<Timestamp> = None;
        for (at, phase) in self.resolved() {
            if at >= end {
                break;
            }
            match phase {
                Phase::In(SessionState::Connected) => {
                    if let Some(start) = down_since.take()
                        && at >= from
                    {
                        out.push((start, at.since(start).as_millis()));
                    }
                    was_connected = true;
                }
                p if !p.observed() => {
                    down_since = None;
                    was_connected = false;
                }
                _ => {
                    if was_connected && down_since.is_none() {
                        down_since = Some(at);
                    }
                }
            }
        }
        out
    }

    fn each_stretch(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
        mut each: impl FnMut(Phase, u64),
    ) {
        let end = to.min(now);
        let mut phases = self.resolved().peekable();
        while let Some((start, phase)) = phases.next() {
            let stop = phases.peek().map_or(now, |(t, _)| *t).min(end);
            let a = start.max(from);
            if stop > a {
                each(phase, stop.since(a).as_millis());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn timeline(changes: &[(i64, Phase)]) -> Timeline {
        let mut tl = Timeline::default();
        for (at, phase) in changes {
            tl.add(t(*at), *phase);
        }
        tl
    }

    const UP: Phase = Phase::In(SessionState::Connected);
    const DOWN: Phase = Phase::In(SessionState::Disconnected);
    const STOPPED: Phase = Phase::In(SessionState::Stopped);

    #[test]
    fn the_window_cuts_intervals_exactly_at_its_edges() {
        // Up 0–10 h, down 10–12 h, up since 12 h; now is 24 h.
        let tl = timeline(&[(0, UP), (10 * H, DOWN), (12 * H, UP)]);
        let a = tl.over(t(9 * H + 1), t(13 * H), t(24 * H));
        assert_eq!(a.connected_ms, (H - 1) as u64 + H as u64);
        assert_eq!(a.observed_ms, (4 * H - 1) as u64);
        assert_eq!(a.intervals, 3);
        let day = tl.over(t(0), t(24 * H), t(24 * H));
        assert_eq!(day.share(), Some(22.0 / 24.0));
    }

    #[test]
    fn a_session_is_observed_from_its_first_event_only() {
        // Created 18 h into a 24 h window, up since: fully available.
        let tl = timeline(&[(18 * H, UP)]);
        let a = tl.over(t(0), t(24 * H), t(24 * H));
        assert_eq!(
            (a.connected_ms, a.observed_ms),
            (6 * H as u64, 6 * H as u64)
        );
        assert_eq!(a.share(), Some(1.0));
        assert_eq!(
            tl.over(t(0), t(18 * H), t(24 * H)).share(),
            None,
            "not yet seen"
        );
    }

    #[test]
    fn the_current_life_starts_after_the_last_retirement() {
        // Down most of a first life, retired, then up in a second one.
        let tl = timeline(&[
            (0, DOWN),
            (H, UP),
            (2 * H, Phase::Retired),
            (3 * H, DOWN),
            (4 * H, Phase::Retired),
            (6 * H, Phase::Seen),
            (7 * H, UP),
        ]);
        let life = tl.clone().current_life();
        assert_eq!(life.changes(), &[(t(6 * H), Phase::Seen), (t(7 * H), UP)]);
        assert_eq!(life.first_seen(), Some(t(6 * H)));
        let a = life.over(t(0), t(8 * H), t(8 * H));
        assert_eq!((a.connected_ms, a.observed_ms), (H as u64, 2 * H as u64));
        // The whole history counts the first lives' down time too.
        let all = tl.over(t(0), t(8 * H), t(8 * H));
        assert_eq!(
            (all.connected_ms, all.observed_ms),
            (2 * H as u64, 5 * H as u64)
        );
        // Never retired: all of it.
        let once = timeline(&[(0, DOWN), (H, UP)]);
        assert_eq!(once.clone().current_life(), once);
    }

    #[test]
    fn stopped_and_retired_time_count_neither_way() {
        let tl = timeline(&[
            (0, UP),
            (2 * H, STOPPED),
            (5 * H, DOWN),
            (6 * H, UP),
            (8 * H, Phase::Retired),
        ]);
        let a = tl.over(t(0), t(24 * H), t(24 * H));
        assert_eq!(a.observed_ms, 5 * H as u64, "0–2 h, 5–8 h");
        assert_eq!(a.connected_ms, 4 * H as u64);
    }

    #[test]
    fn a_late_event_takes_its_place_whatever_the_arrival_order() {
        let in_order = timeline(&[(0, UP), (3 * H, DOWN), (4 * H, UP)]);
        // The disconnection arrives last (a gateway's clock-skewed retry).
        let late = timeline(&[(0, UP), (4 * H, UP), (3 * H, DOWN)]);
        assert_eq!(in_order, late);
        assert_eq!(
            late.over(t(0), t(6 * H), t(6 * H)).connected_ms,
            5 * H as u64
        );
    }

    #[test]
    fn nothing_counts_after_now_and_a_restart_rebuilds_the_same_figures() {
        let tl = timeline(&[(0, UP), (H, DOWN)]);
        let a = tl.over(t(0), t(48 * H), t(2 * H));
        assert_eq!((a.connected_ms, a.observed_ms), (H as u64, 2 * H as u64));
        // After a restart the same changes are read back in any order.
        let again = timeline(&[(H, DOWN), (0, UP)]);
        assert_eq!(again.over(t(0), t(48 * H), t(2 * H)), a);
        assert_eq!(
            Availability::plus(a, a).share(),
            Some(0.5),
            "a label value: its sessions' totals"
        );
    }

    proptest::proptest! {
        /// Cut anywhere, two adjacent windows add up to the whole, and
        /// connected ≤ observed ≤ the window's length.
        #[test]
        fn windows_add_up_and_stay_within_their_length(
            changes in proptest::collection::vec((0i64..100_000, 0usize..9), 0..40),
            (a, b, c) in (0i64..120_000, 0i64..120_000, 0i64..120_000),
            now in 0i64..150_000,
        ) {
            let phases = [UP, DOWN, STOPPED, Phase::Retired, Phase::In(SessionState::Reconnecting),
                Phase::In(SessionState::LoggedOut), Phase::In(SessionState::Connecting),
                Phase::In(SessionState::QrRequired), Phase::In(SessionState::CircuitOpen)];
            let tl = timeline(&changes.iter().map(|(at, p)| (*at, phases[*p])).collect::<Vec<_>>());
            let mut cut = [a, b, c];
            cut.sort_unstable();
            let [from, mid, to] = cut;
            let whole = tl.over(t(from), t(to), t(now));
            let left = tl.over(t(from), t(mid), t(now));
            let right = tl.over(t(mid), t(to), t(now));
            proptest::prop_assert_eq!(whole.connected_ms, left.connected_ms + right.connected_ms);
            proptest::prop_assert_eq!(whole.observed_ms, left.observed_ms + right.observed_ms);
            proptest::prop_assert!(whole.connected_ms <= whole.observed_ms);
            proptest::prop_assert!(whole.observed_ms <= (to - from) as u64);
        }
    }

    #[test]
    fn a_sighting_keeps_the_phase_known_and_starts_observation_where_none_was() {
        // Known connected from 2 h (an event that arrived late); the first
        // event received (at 5 h) is a sighting: it changes nothing.
        let tl = timeline(&[(5 * H, Phase::Seen), (2 * H, UP)]);
        let a = tl.over(t(0), t(10 * H), t(10 * H));
        assert_eq!(
            (a.connected_ms, a.observed_ms),
            (8 * H as u64, 8 * H as u64)
        );
        // A sighting with nothing before it: `connecting` until a state.
        let tl = timeline(&[(0, Phase::Seen), (H, UP)]);
        let a = tl.over(t(0), t(2 * H), t(2 * H));
        assert_eq!((a.connected_ms, a.observed_ms), (H as u64, 2 * H as u64));
        // After a retirement, a sighting is a new life.
        let tl = timeline(&[(0, UP), (H, Phase::Retired), (2 * H, Phase::Seen)]);
        let spent = tl.spent(t(0), t(3 * H), t(3 * H));
        assert_eq!(spent[SessionState::Connecting.index()], H as u64);
        assert_eq!(spent[SessionState::Connected.index()], H as u64);
    }

    #[test]
    fn time_in_each_state_adds_up_to_what_was_observed() {
        let tl = timeline(&[(0, UP), (10 * H, DOWN), (12 * H, UP), (20 * H, STOPPED)]);
        let spent = tl.spent(t(H), t(24 * H), t(24 * H));
        assert_eq!(
            spent[SessionState::Connected.index()],
            (9 + 8) as u64 * H as u64
        );
        assert_eq!(spent[SessionState::Disconnected.index()], 2 * H as u64);
        assert_eq!(spent[SessionState::Stopped.index()], 4 * H as u64);
        let a = tl.over(t(H), t(24 * H), t(24 * H));
        let observed: u64 = spent.iter().sum::<u64>() - spent[SessionState::Stopped.index()];
        assert_eq!(observed, a.observed_ms);
    }

    #[test]
    fn an_outage_is_counted_where_it_ends_and_only_after_a_connection() {
        const RECONNECTING: Phase = Phase::In(SessionState::Reconnecting);
        // Never connected until 1 h (not an outage); down 5–5.5 h; a stop
        // at 8 h ends the next stretch without counting it.
        let tl = timeline(&[
            (0, DOWN),
            (H, UP),
            (5 * H, RECONNECTING),
            (5 * H + H / 4, DOWN),
            (5 * H + H / 2, UP),
            (7 * H, DOWN),
            (8 * H, STOPPED),
            (9 * H, UP),
        ]);
        let all = tl.outages(t(0), t(24 * H), t(24 * H));
        assert_eq!(all, vec![(t(5 * H), (H / 2) as u64)]);
        // Counted in the window where it ended.
        assert!(tl.outages(t(0), t(5 * H + H / 4), t(24 * H)).is_empty());
        assert_eq!(tl.outages(t(5 * H + 1), t(6 * H), t(24 * H)).len(), 1);
    }
}
